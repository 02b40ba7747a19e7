r"""Few-shot classification on bursty sequences (Reddy 2023; Chan et al. 2022).

  python -m research.main --config=configs/bursty_classification.py:cpu --workdir=runs/reddy
  python -m research.main --config=configs/bursty_classification.py:cpu --workdir=runs/reddy_b0 \
      --config.task.burstiness=0
  python -m research.main --config=configs/bursty_classification.py:cpu --workdir=runs/reddy_lstm \
      --config.model.name=lstm          # width chosen to match the Transformer's parameters
  python -m experiments.reddy2023      # the training curve, sweeps and printed numbers

Presets:
  tiny     seconds; for tests (gaussian source)
  cpu      Reddy's data (D=63, K=512, L=32, N=8, eps=0.1, B=2), a 2-layer, 1-head Transformer
           of width 64, Adam, 1000 steps: ICL jumps to ~1 near step 300. Measured 210-250 s
           per run (compile included) on 2 CPU cores shared with other jobs
  paper    Reddy's data and optimiser (SGD lr 0.01, batch 128, 1e5 steps); 2 layers whose MLPs
           stand in for Reddy's MLP classifier head (an accelerator or overnight CPU job)
  omniglot_tiny  Omniglot source, 28x28, tiny ResNet embedder; tests (mock data)
  chan     Chan's setup: Omniglot 105x105, 1603 rare / 10 common / 10 holdout classes,
           B=3 x 2 ways + 2 common fillers, p_bursty=0.9, ResNet (16,32,32,64) embedder,
           12-layer Transformer width 64, 8 heads; batch 32, Adam 3e-4 warmup-rsqrt, 5e5 steps
  chan_cpu Chan's sequences at 28x28 with a 4-layer Transformer; long on CPU (an accelerator job)
"""
import ml_collections

from configs import common


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  c = common.base(preset)

  c.task = ml_collections.ConfigDict()
  c.task.name = "classification"  # task registry key (research/tasks/__init__.py)
  c.task.source = "gaussian"    # gaussian (Reddy) | omniglot (Chan)
  c.task.num_context = 8        # N: (exemplar, label) pairs before the query
  c.task.num_labels = 32        # L: label vocabulary (model outputs); 0 = one per training class
  c.task.burstiness = 2         # B: copies of each bursty class (incl. the query's) in a bursty context; 0 = none
  c.task.ways = 0               # distinct classes repeated B times in a bursty context; 0 = N // B
  c.task.p_bursty = 1.0         # fraction of bursty training sequences (the rest: i.i.d. classes)
  c.task.zipf_alpha = 0.0       # Zipf exponent of class frequencies (0 = uniform)
  c.task.novel_fraction = 0.0   # gaussian: fraction of sequences of fresh classes with random labels
  c.task.n_common = 0           # common classes (Chan): fillers and non-bursty sequences use them
  c.task.loss_on = "query"      # query (Reddy) | all: every item's label is a target
  # gaussian source
  c.task.num_classes = 512      # K: training classes
  c.task.dim = 63               # D: exemplar dimension
  c.task.epsilon = 0.1          # within-class noise eps
  # omniglot source
  c.task.n_rare = 1603          # rare classes (bursty sequences)
  c.task.n_holdout = 10         # never-trained classes for the ICL probe
  c.task.augment = False        # x8 classes: left-right flip x 4 rotations (Chan's images_augmented)
  c.task.exemplars = "all"      # all: 20 drawings per class | single: the first drawing only
  c.task.image_size = 105       # 105 (native) | 28 (downsampled)
  c.task.pixel_noise = 0.0      # std of Gaussian pixel noise on images in [0, 1]
  c.task.split_seed = 1337      # numpy seed of the class order (Chan's default)
  c.task.data_dir = ""          # TFDS data dir holding omniglot (array_record); "" = TFDS default

  c.model = ml_collections.ConfigDict()
  c.model.name = "transformer"  # transformer | lstm (research/models/__init__.py)
  c.model.num_layers = 2
  c.model.width = 64            # Transformer residual width
  c.model.num_heads = 1
  c.model.mlp_ratio = 4.0       # MLP hidden = mlp_ratio * width (the MLPs do in-weights learning)
  c.model.positions = "learned"  # learned | rotary | none
  c.model.max_len = 0           # position table size; 0 = the task's sequence length
  c.model.dropout = 0.0
  c.model.attention_only = False
  c.model.use_layernorm = True
  common.transformer_features(c.model)
  c.model.cell = "lstm"         # lstm model: lstm | rnn (vanilla tanh RNN)
  c.model.lstm_width = 0        # lstm hidden width; 0 = match the Transformer's parameter count
  c.model.lstm_layers = 0       # lstm layers; 0 = num_layers
  c.model.resnet = ml_collections.ConfigDict()  # image exemplar embedder (omniglot source)
  c.model.resnet.blocks = (2, 2, 2, 2)          # residual blocks per stage (Chan)
  c.model.resnet.channels = (16, 32, 32, 64)    # channels per stage; the last is the token feature width
  c.model.resnet.strides = (1, 2, 2, 2)
  c.model.resnet.stem_channels = 64
  c.model.resnet.stem_kernel = 7
  c.model.resnet.stem_stride = 2
  c.model.resnet.stem_pool = True
  c.model.resnet.bottleneck = True              # Chan's SimpleResNet default
  c.model.resnet.norm = "group"                 # group | batch (batch statistics) | none
  c.model.resnet.groups = 8

  c.optim = common.optim(name="adam", weight_decay=0.0)

  c.train = common.train(
      batch_size=128, num_steps=1000, steps_per_call=25, log_every=250, eval_every=25,
      checkpoint_every=500)

  c.probe = ml_collections.ConfigDict()
  c.probe.num_prompts = 2000    # sequences per probe (icl, iwl, flip)
  c.probe.batch_size = 500
  c.probe.eval_sequences = 512  # sequences per periodic evaluation (train.eval_every)
  c.probe.ways = 4              # ICL / flip probes: distinct classes in context; 0 = task ways
  c.probe.shots = 2             # copies of each; 0 = N // ways
  c.probe.bootstrap = 1000      # resamples of the 5-95% interval
  c.probe.bootstrap_seed = 0

  c.mesh = common.mesh()

  # The recurrent and conv axes stay replicated: per-step collectives would dominate an
  # LSTM scan, and the small embedder convs are cheaper replicated.
  c.sharding = common.sharding(extra_rules=(
      ("lstm_gates", None), ("lstm_hidden", None), ("conv_h", None), ("conv_w", None),
      ("conv_in", None), ("conv_out", None)))

  if preset == "tiny":
    c.task.num_classes, c.task.dim, c.task.num_labels = 64, 16, 8
    c.task.num_context = 4
    c.probe.ways, c.probe.shots = 2, 2
    c.model.width, c.model.num_layers = 32, 2
    c.train.batch_size, c.train.num_steps = 16, 40
    c.train.steps_per_call, c.train.log_every, c.train.eval_every = 10, 20, 20
    c.train.checkpoint_every = 20
    c.optim.warmup_steps = 10
    c.probe.num_prompts, c.probe.batch_size, c.probe.eval_sequences = 64, 32, 32
    c.probe.bootstrap = 50
  elif preset == "paper":
    # Reddy: 2 attention-only layers, then a 3-layer MLP classifier on the query token. Here the
    # blocks keep their MLPs (mlp_ratio 8), which give the in-weights capacity instead.
    c.model.mlp_ratio = 8.0
    c.optim.name, c.optim.learning_rate, c.optim.schedule = "sgd", 0.01, "constant"
    c.optim.warmup_steps, c.optim.grad_clip_norm = 0, 0.0
    c.train.num_steps, c.train.log_every, c.train.checkpoint_every = 100_000, 1000, 10_000
    c.train.eval_every, c.train.steps_per_call = 500, 100
  elif preset in ("omniglot_tiny", "chan", "chan_cpu"):
    c.task.source = "omniglot"
    c.task.num_labels = 0             # one label per training class (Chan's 'ordered' labels)
    c.task.burstiness, c.task.ways, c.task.p_bursty = 3, 2, 0.9
    c.task.n_common = 10
    c.probe.ways, c.probe.shots = 2, 4  # Chan's ICL evaluation: 2-way 4-shot holdout
    c.model.num_layers, c.model.num_heads = 12, 8
    c.optim.learning_rate, c.optim.schedule, c.optim.warmup_steps = 3e-4, "warmup_rsqrt", 4000
    c.train.batch_size, c.train.num_steps = 32, 500_000
    c.train.log_every, c.train.checkpoint_every, c.train.eval_every = 1000, 10_000, 2000
    c.train.steps_per_call = 100
    if preset == "chan":
      # Chan's LSTM as they describe it: 12 layers of width 64, the Transformer's depth and
      # width. The other presets keep lstm_width = 0, a width that matches the Transformer's
      # parameter count, wider than 64 here (an LSTM layer of width 64 holds 33k parameters,
      # a Transformer block of width 64 with a 4x MLP 49k).
      c.model.lstm_width = 64
    if preset == "chan_cpu":
      c.task.image_size = 28
      c.model.num_layers, c.model.num_heads = 4, 4
      c.train.num_steps, c.optim.warmup_steps = 20_000, 1000
    if preset == "omniglot_tiny":
      c.task.image_size, c.task.n_rare, c.task.n_common, c.task.n_holdout = 28, 20, 4, 6
      c.model.num_layers, c.model.width, c.model.num_heads = 2, 32, 2
      c.model.resnet.blocks, c.model.resnet.channels = (1, 1), (8, 16)
      c.model.resnet.strides, c.model.resnet.stem_channels = (1, 2), 8
      c.model.resnet.stem_kernel, c.model.resnet.bottleneck = 3, False
      c.train.batch_size, c.train.num_steps, c.train.steps_per_call = 8, 20, 5
      c.train.log_every, c.train.checkpoint_every, c.train.eval_every = 10, 10, 10
      c.optim.warmup_steps = 5
      c.probe.num_prompts, c.probe.batch_size, c.probe.eval_sequences = 16, 16, 16
      c.probe.bootstrap = 20
  elif preset != "cpu":
    raise ValueError(f"unknown preset {preset!r}; choose one of: tiny, cpu, paper, "
                     "omniglot_tiny, chan, chan_cpu")
  return c


def get_sweep(name: str, *, preset: str = "") -> list[dict]:
  """Sweeps as data: lists of override dicts (used by experiments/)."""
  if name == "burstiness":  # Reddy Fig.: ICL / IWL vs B
    # Reddy's B in {0, 1, 2, 4} at N = 8: at least two classes in a bursty context. At the
    # preset's N, B = N would make every context label the query's (copied, no ICL to
    # learn): the tiny preset's N = 4 sweeps B in {0, 1, 2}.
    n = get_config(preset or "cpu").task.num_context
    return [{"task.burstiness": b} for b in (0, 1, 2, 4) if b <= n // 2]
  if name == "classes":  # Reddy Fig.: ICL / IWL vs K
    return [{"task.num_classes": k} for k in (32, 128, 512, 2048)]
  if name == "chan_grid":  # Chan: burstiness x Zipf x model family
    return [{"task.p_bursty": p, "task.zipf_alpha": a, "model.name": m}
            for p in (0.0, 0.9) for a in (0.0, 1.0) for m in ("transformer", "lstm")]
  raise ValueError(f"unknown sweep {name!r}; choose one of: burstiness, classes, chan_grid")
