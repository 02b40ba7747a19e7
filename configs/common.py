"""The config blocks every preset shares, each field defined (and commented) once.

big_vision's configs/common.py pattern: a config file builds its task and model blocks and
takes the optimiser, train loop, mesh and sharding blocks from here, passing only the
values where its setup differs from these defaults (`common.optim(name="adam")`).
A function returns a fresh ConfigDict per call, so presets never share mutable state.
"""
import ml_collections


def _block(defaults: dict, overrides: dict, what: str) -> ml_collections.ConfigDict:
  unknown = sorted(set(overrides) - set(defaults))
  if unknown:  # a typo would otherwise add a field that nothing reads
    raise ValueError(f"configs/common.py {what}(): unknown field(s) {unknown}; "
                     f"choose from {list(defaults)}")
  # Each field set once, in the defaults' order: ConfigDict(dict) would sort the keys, and
  # overwriting a default would cast an int override to the default's float.
  block = ml_collections.ConfigDict()
  for name, default in defaults.items():
    setattr(block, name, overrides.get(name, default))
  return block


def base(preset: str) -> ml_collections.ConfigDict:
  """The run-level fields every config starts from."""
  c = ml_collections.ConfigDict()
  c.preset = preset             # name of the preset this config came from (recorded)
  c.seed = 0                    # every random key derives from it via fold_in
  c.init_from = ""              # a run's workdir whose checkpoint initialises every parameter
                                # of equal path and shape (branching or fine-tuning a run)
  return c


def optim(**overrides) -> ml_collections.ConfigDict:
  """research/optim.py's optimiser and learning-rate schedule."""
  return _block(dict(
      name="adamw",             # adam | adamw | sgd
      learning_rate=1e-3,       # peak learning rate
      schedule="warmup_cosine",  # constant | warmup_cosine | warmup_linear | warmup_rsqrt
      warmup_steps=200,
      decay_steps=0,            # step where decay ends; 0 = train.num_steps
      end_lr_fraction=0.1,      # final lr as a fraction of the peak
      b1=0.9,
      b2=0.999,
      eps=1e-8,
      weight_decay=0.01,        # decoupled (adamw, sgd)
      momentum=0.0,             # sgd only
      nesterov=False,           # sgd only
      grad_clip_norm=1.0,       # global-norm clipping; 0 = off
      wd_exempt_norms=True,
      wd_exempt_biases=True,
      wd_exempt_embeddings=False,
  ), overrides, "optim")


def train(**overrides) -> ml_collections.ConfigDict:
  """research/train.py's loop: batch, steps, logging, evaluation and checkpoint cadence."""
  return _block(dict(
      batch_size=32,            # global batch, split over mesh data x fsdp
      grad_accum_steps=1,       # microbatches per step (gradients averaged); batch % (this x data x fsdp) == 0
      num_steps=2000,
      steps_per_call=50,        # train steps fused in one jit call (lax.scan): kills dispatch cost
      log_every=100,            # must be a multiple of steps_per_call
      eval_every=0,             # task evaluation every N steps (multiple of steps_per_call); 0 = off
      checkpoint_every=0,       # must be a multiple of steps_per_call; 0 = only at the end
      keep_checkpoints=2,
      keep_log_spaced=False,    # also save, and never delete, checkpoints at steps 1, 2, 4, 8, ...
                                # (each rounded up to a multiple of steps_per_call) and every
                                # checkpoint_every; keep_checkpoints then bounds only the others
      async_checkpoints=True,
      peak_flops=0.0,           # per-device peak FLOP/s for MFU; 0 = measure (CPU) or table
      compile_cache_dir="~/.cache/research_jax",  # persistent XLA cache; "" = off
      host_memory_check=True,   # on CPU: refuse (exit 2) a step that needs more RAM than is free
      matmul_precision="auto",  # auto | default | highest; auto: highest for float32 compute,
                                # XLA's default for bfloat16 (float32 matmuls at the default
                                # are one bf16 pass on TPU, TF32 on NVIDIA GPUs; exact on CPU)
  ), overrides, "train")


def mesh(**overrides) -> ml_collections.ConfigDict:
  """The device mesh research/train.py shards over."""
  return _block(dict(
      data=-1,                  # data-parallel size; -1 = all remaining devices
      fsdp=1,                   # parameter (embed axis) and batch sharding
      tensor=1,                 # mlp / heads / vocab sharding
  ), overrides, "mesh")


def sharding(extra_rules: tuple = ()) -> ml_collections.ConfigDict:
  """The Transformer's logical-axis rules, then `extra_rules` for a model's own axes."""
  c = ml_collections.ConfigDict()
  # logical axis -> mesh axes; a dim the mesh does not divide stays replicated.
  c.rules = (
      ("batch", ("data", "fsdp")), ("embed", "fsdp"), ("mlp", "tensor"),
      ("heads", "tensor"), ("kv", None), ("vocab", "tensor"), ("length", None),
      ("input", None), ("output", None), ("layers", None)) + tuple(extra_rules)
  return c


def transformer_features(model: ml_collections.ConfigDict) -> None:
  """The Transformer's compute / memory features (research/models/transformer.py), added
  in place so each config keeps its model fields in one block."""
  model.dtype = "float32"       # compute dtype: float32 | bfloat16 (params stay float32)
  model.remat = "none"          # none | full | dots: recompute block activations (dots: keep matmul outputs)
  model.scan_layers = False     # nn.scan over blocks: one block compiled; params stacked on a "layers" axis
  model.attention = "explicit"  # explicit (materialises the maps) | fused (jax.nn.dot_product_attention)
  model.fused_qkv = False       # one (embed, 3, heads, kv) projection instead of query/key/value
