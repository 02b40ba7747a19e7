"""Induction heads and the phase change (Olsson et al. 2022) on synthetic text.

  python -m research.main --config=configs/induction.py:cpu --workdir=runs/induction_L2
  python -m experiments.olsson2022 --preset=cpu --workdir=runs/olsson2022   (1, 2, 3 layers)

Presets:
  tiny   seconds; for tests
  cpu    2-layer attention-only, width 64, 4 heads, V = 64, L = 64, batch 32,
         eval every 25 steps (the dense schedule), a few minutes per model on 2 CPU cores
  paper  Olsson's small attention-only models: width 768, 12 heads, context 512
         (on synthetic data here; real text needs the language-model data source)
"""
import ml_collections

from configs import common


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  c = common.base(preset)

  c.task = ml_collections.ConfigDict()
  c.task.name = "induction"     # task registry key (research/tasks/__init__.py)
  c.task.vocab_size = 64        # V: token vocabulary of the bigram source
  c.task.seq_len = 64           # L: context length (ICL score: tokens round(L*50/512), round(L*500/512))
  c.task.markov_scale = 1.0     # std of the logits' bigram term (previous token)
  c.task.skip_scale = 1.0       # std of the logits' skip-bigram term (token two back); 0 = first-order
  c.task.span_len = 8           # second-half spans that may be replaced by a copy
  c.task.repeat_prob = 0.75     # probability that a span is a copy of a first-half span
  c.task.eval_sequences = 256   # held-out sequences for the dense ICL score / loss per position
  c.task.repeated_sequences = 64  # repeated-random-token sequences for the attention scores

  c.model = ml_collections.ConfigDict()
  c.model.name = "transformer"  # attention scores need the Transformer's attention maps
  c.model.num_layers = 2        # Olsson: 1, 2, 3 attention-only layers
  c.model.width = 64            # residual stream width
  c.model.num_heads = 4
  c.model.mlp_ratio = 4.0       # unused when attention_only
  c.model.positions = "learned"  # learned | rotary | none
  c.model.max_len = 0           # position table size; 0 = the task's sequence length
  c.model.dropout = 0.0
  c.model.attention_only = True  # Olsson's attention-only toy models
  c.model.use_layernorm = True
  common.transformer_features(c.model)

  c.optim = common.optim(learning_rate=2e-3, warmup_steps=100, b2=0.99)

  c.train = common.train(steps_per_call=25, eval_every=25)

  c.probe = ml_collections.ConfigDict()
  c.probe.num_sequences = 512   # sequences for the final loss-per-position curves
  c.probe.batch_size = 128

  c.mesh = common.mesh()

  c.sharding = common.sharding()

  if preset == "tiny":
    c.task.vocab_size, c.task.seq_len, c.task.span_len = 16, 32, 4
    c.task.eval_sequences, c.task.repeated_sequences = 16, 8
    c.model.width, c.model.num_heads = 32, 2
    c.train.batch_size, c.train.num_steps, c.train.steps_per_call = 16, 20, 10
    c.train.log_every = c.train.eval_every = 10
    c.optim.warmup_steps = 5
    c.probe.num_sequences, c.probe.batch_size = 16, 16
  elif preset == "paper":
    c.task.vocab_size, c.task.seq_len, c.task.span_len = 2048, 512, 32
    c.model.width, c.model.num_heads = 768, 12
    c.train.batch_size, c.train.num_steps = 64, 20_000
    c.train.steps_per_call, c.train.log_every, c.train.eval_every = 50, 200, 100
    c.train.checkpoint_every = 2000
  elif preset != "cpu":
    raise ValueError(f"unknown preset {preset!r}; choose one of: tiny, cpu, paper")
  return c


def get_sweep(name: str) -> list[dict]:
  """Sweeps as data: lists of override dicts (used by the sweep command)."""
  if name == "layers":
    return [{"model.num_layers": n} for n in (1, 2, 3)]
  raise ValueError(f"unknown sweep {name!r}; choose one of: layers")
