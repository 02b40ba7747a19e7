r"""Next-token language modelling on real text: a local file or a TFDS corpus.

  python -m research.main --config=configs/lm.py:cpu --workdir=runs/lm \
      --config.task.source=file --config.task.path=corpus.txt
  python -m research.main --config=configs/lm.py:shakespeare --workdir=runs/shakespeare
  python -m research.sweep --config=configs/lm.py:cpu --sweep=scale --workdir=runs/lm_scale \
      --config.task.path=corpus.txt

The TFDS presets read `tfds.data_source` (array_record, no TensorFlow at run
time); prepare the dataset once where there is internet (`tfds build
tiny_shakespeare --file_format=array_record`) and copy the TFDS data dir here
(config.task.data_dir or TFDS_DATA_DIR). A missing dataset stops with that command.

Presets:
  tiny         seconds; tests (a small text file or mock TFDS data)
  cpu          byte-level, 4 layers / width 128 (0.88M params), context 128, batch 32, 2000
               steps, for a ~1 MB file (--config.task.path=FILE). Measured 0.83 steps/s
               (3.4k tokens/s) on 2 CPU cores shared with other jobs (load ~13): ~40 min;
               compile ~1-2 min (cached after the first run)
  shakespeare  char-level tiny_shakespeare (TFDS), the cpu model, 5000 steps
  lm1b         byte-level lm1b (TFDS, first 2M sentences), 8 layers / width 512, context 256,
               100k steps: an accelerator job
Model sizes for scaling laws: presets xs, s, m, l (file source, byte-level, cpu
training setup) or `--sweep=scale` (the same sizes as one sweep).
"""
import ml_collections

from configs import common

# (num_layers, width, num_heads) of the scaling presets / sweep.
SIZES = {"xs": (2, 64, 2), "s": (4, 128, 4), "m": (6, 192, 6), "l": (8, 256, 8)}


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  c = common.base(preset)

  c.task = ml_collections.ConfigDict()
  c.task.name = "lm"            # task registry key (research/tasks/lm.py)
  c.task.source = "file"        # file | tfds | stdlib (this Python's own .py files) | synthetic
                                # (uniform random ids: AOT plans, throughput)
  c.task.path = ""              # file source: a UTF-8 text file (any local corpus); stdlib source:
                                # a directory of .py files, "" = this interpreter's standard library
  c.task.valid_fraction = 0.05  # file: the last fraction of the text is held out; stdlib: this
                                # fraction of the files, chosen by a hash of each file's path
  c.task.dataset = "tiny_shakespeare"  # tfds source: dataset name (lm1b, tiny_shakespeare, ...)
  c.task.train_split = "train"  # tfds source: training split
  c.task.eval_split = "validation"  # tfds source: held-out split (lm1b: test)
  c.task.text_key = "text"      # tfds source: text feature(s), comma-separated to join
  c.task.data_dir = ""          # TFDS data dir; "" = TFDS default (or TFDS_DATA_DIR)
  c.task.max_documents = 0      # tfds / stdlib source: read the first N records / files per split; 0 = all
  c.task.tokenizer = "byte"     # byte (UTF-8, 259 ids) | char (characters of the training text)
  c.task.vocab_size = 0         # synthetic source: vocabulary size (e.g. 50304, Pythia's)
  c.task.seq_len = 128          # L: tokens per training sequence (context length)
  c.task.window = "random"      # random (any offset) | chunks (non-overlapping packed rows)
  c.task.placement = "auto"     # where the token stream lives: auto (device if <= 16 MiB) | device | host
  c.task.synthetic_fraction = 0.0  # file / tfds / stdlib: share of training bytes that are k-shot
                                # documents of the few-shot probe's tasks (copy, add, lookup; k = 1-8;
                                # research/probes/few_shot.py), mixed in at fixed places; held-out text
                                # stays the corpus's own

  c.model = ml_collections.ConfigDict()
  c.model.name = "transformer"  # transformer | lstm (research/models/__init__.py)
  c.model.num_layers = 4
  c.model.width = 128           # residual stream width (GPT-2 n_embd)
  c.model.num_heads = 4
  c.model.mlp_ratio = 4.0       # MLP hidden = mlp_ratio * width
  c.model.positions = "learned"  # learned | rotary | none
  c.model.max_len = 0           # position table size; 0 = seq_len (fine-tuning needs equal tables)
  c.model.dropout = 0.0
  c.model.attention_only = False
  c.model.use_layernorm = True
  common.transformer_features(c.model)
  c.model.cell = "lstm"         # lstm model: lstm | rnn
  c.model.lstm_width = 0        # lstm hidden width; 0 = match the Transformer's parameter count
  c.model.lstm_layers = 0       # lstm layers; 0 = num_layers

  c.optim = common.optim(
      learning_rate=3e-3, b2=0.95, weight_decay=0.1, wd_exempt_embeddings=True)

  c.train = common.train(eval_every=500, checkpoint_every=500, keep_checkpoints=3)

  c.probe = ml_collections.ConfigDict()
  c.probe.eval_sequences = 256  # held-out windows for eval loss (0 = all of them)
  c.probe.batch_size = 64       # windows per evaluation forward pass
  c.probe.generate_tokens = 200  # length of the sampled continuation in probes/lm.json
  c.probe.temperature = 0.8     # sampling temperature; 0 = greedy

  c.mesh = common.mesh()

  c.sharding = common.sharding()

  if preset == "tiny":
    c.task.seq_len = 32
    c.model.num_layers, c.model.width, c.model.num_heads = 2, 32, 2
    c.train.batch_size, c.train.num_steps, c.train.steps_per_call = 8, 40, 10
    c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 20, 20, 20
    c.optim.warmup_steps = 10
    c.probe.eval_sequences, c.probe.batch_size, c.probe.generate_tokens = 8, 8, 16
  elif preset == "shakespeare":
    c.task.source, c.task.dataset, c.task.tokenizer = "tfds", "tiny_shakespeare", "char"
    c.train.num_steps = 5000
  elif preset == "lm1b":
    c.task.source, c.task.dataset, c.task.eval_split = "tfds", "lm1b", "test"
    c.task.max_documents, c.task.window, c.task.seq_len = 2_000_000, "chunks", 256
    c.model.num_layers, c.model.width, c.model.num_heads = 8, 512, 8
    c.train.batch_size, c.train.num_steps, c.train.steps_per_call = 256, 100_000, 100
    c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 500, 5000, 5000
    c.optim.learning_rate, c.optim.warmup_steps = 1e-3, 2000
  elif preset in SIZES:
    c.model.num_layers, c.model.width, c.model.num_heads = SIZES[preset]
  elif preset != "cpu":
    raise ValueError(f"unknown preset {preset!r}; choose one of: tiny, cpu, shakespeare, lm1b, "
                     + ", ".join(SIZES))
  return c


def get_sweep(name: str) -> list[dict]:
  """Sweeps as data: lists of override dicts (used by research.sweep)."""
  if name == "scale":
    return [{"model.num_layers": l, "model.width": w, "model.num_heads": h}
            for l, w, h in SIZES.values()]
  raise ValueError(f"unknown sweep {name!r}; choose one of: scale")
