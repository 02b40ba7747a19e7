"""GINC: in-context learning from a mixture of HMMs (Xie et al. 2021).

  python -m research.main --config=configs/ginc.py:cpu --workdir=runs/ginc
  python -m experiments.xie2021 --preset=cpu --workdir=runs/xie2021   (3 Transformer sizes + LSTM)

Presets:
  tiny   seconds; for tests
  cpu    Xie's HMMs (10 x 10 states, 50 words, 5 concepts, trans temp 0.1, start temp 10,
         value identity 0.9), 400 documents x 2048 tokens, context 256 (prompts up to
         n = 32 examples at k = 3), 4 layers / width 64, 4000 steps of 16 windows
         (16M tokens), 1024 prompts per (n, k). Prompts as in Xie's released generator
         (sampled walks, label = the concept's prediction). Measured (2026-11-30, 2 idle
         cores): this model 12.6 min; the four models of experiments/xie2021.py 27.6 min;
         ID accuracy averaged over k rises with n for all three Transformer sizes.
  paper  Xie's scale: 1000 documents x 10,240 tokens, context 1024, GPT-2 small-like
         (12 layers, width 768, 12 heads)
"""
import ml_collections

from configs import common


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  # seed: the HMM family, corpus, init and data order all derive from it
  c = common.base(preset)

  c.task = ml_collections.ConfigDict()
  c.task.name = "ginc"          # task registry key (research/tasks/__init__.py)
  c.task.vocab_size = 50        # words incl. the delimiter '/' (token 0)
  c.task.n_entities = 10        # hidden entities (Xie's "values")
  c.task.n_properties = 10      # hidden properties (Xie's "slots"); property 0 emits the delimiter
  c.task.n_concepts = 5         # in-distribution concepts (HMMs) of the pretraining mixture
  c.task.n_ood_concepts = 5     # concepts from the same prior, never in pretraining (OOD prompts)
  c.task.trans_temp = 0.1       # temperature of the permutation-mixture transition weights
  c.task.start_temp = 10.0      # temperature of the start distribution (high = near uniform)
  c.task.value_identity_coeff = 0.9  # entity transitions: weight of the identity (entities persist)
  c.task.n_docs = 400           # pretraining documents
  c.task.doc_len = 2048         # tokens per document
  c.task.seq_len = 256          # training window / model context
  c.task.prompt_mode = "sample"  # probe prompts: sample (Xie's released ID_sample) | argmax
  c.task.cache_dir = "~/.cache/research_ginc"  # generated corpus cache (.npz); "" = regenerate

  c.model = ml_collections.ConfigDict()
  c.model.name = "transformer"  # transformer | lstm (research/models/__init__.py)
  c.model.num_layers = 4
  c.model.width = 64
  c.model.num_heads = 4
  c.model.mlp_ratio = 4.0
  c.model.positions = "learned"  # learned | rotary | none
  c.model.max_len = 0           # position table size; 0 = the task's sequence length
  c.model.dropout = 0.0
  c.model.attention_only = False
  c.model.use_layernorm = True
  common.transformer_features(c.model)
  c.model.cell = "lstm"         # lstm model: lstm | rnn
  c.model.lstm_width = 0        # lstm hidden width; 0 = match the Transformer's parameter count
  c.model.lstm_layers = 0       # lstm layers; 0 = num_layers

  c.optim = common.optim(learning_rate=2e-3, warmup_steps=100, b2=0.99)

  c.train = common.train(batch_size=16, num_steps=4000)

  c.probe = ml_collections.ConfigDict()
  c.probe.num_examples = (0, 1, 2, 4, 8, 16, 32, 64)  # n: examples per prompt (those that fit)
  c.probe.example_lengths = (3, 5, 8, 10)  # k: tokens per example (k-1 inputs + 1 label)
  c.probe.num_prompts = 1024    # prompts per (n, k) and concept set (SE of accuracy <= 0.016)
  c.probe.batch_size = 256

  c.mesh = common.mesh()

  c.sharding = common.sharding(extra_rules=(("lstm_gates", None), ("lstm_hidden", None)))

  if preset == "tiny":
    c.task.n_docs, c.task.doc_len, c.task.seq_len = 16, 128, 32
    c.model.num_layers, c.model.width, c.model.num_heads = 1, 32, 2
    c.train.batch_size, c.train.num_steps, c.train.steps_per_call = 16, 20, 10
    c.train.log_every = 10
    c.optim.warmup_steps = 5
    c.probe.num_examples, c.probe.example_lengths = (0, 1, 2), (3,)
    c.probe.num_prompts, c.probe.batch_size = 16, 16
  elif preset == "paper":
    c.task.n_docs, c.task.doc_len, c.task.seq_len = 1000, 10_240, 1024
    c.model.num_layers, c.model.width, c.model.num_heads = 12, 768, 12
    c.optim.learning_rate, c.optim.warmup_steps = 8e-4, 1000
    c.train.batch_size, c.train.num_steps = 64, 30_000
    c.train.steps_per_call, c.train.log_every, c.train.checkpoint_every = 100, 500, 5000
    c.probe.num_examples = (0, 1, 2, 4, 8, 16, 32, 64)
  elif preset != "cpu":
    raise ValueError(f"unknown preset {preset!r}; choose one of: tiny, cpu, paper")
  return c


def get_sweep(name: str) -> list[dict]:
  """Sweeps as data: lists of override dicts (used by the sweep command)."""
  if name == "sizes":  # Xie: Transformers of 3 sizes and an LSTM
    return [{"model.num_layers": l, "model.width": w, "model.num_heads": h}
            for l, w, h in ((2, 32, 2), (3, 48, 4), (4, 64, 4))] + [
        {"model.name": "lstm", "model.num_layers": 2}]
  raise ValueError(f"unknown sweep {name!r}; choose one of: sizes")
