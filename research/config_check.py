"""Config validation that runs before anything compiles.

Every failure is a `ConfigError` whose message is one line naming the field,
the bad value and the fix; `research.main` prints it and exits non-zero.
Unknown fields and wrong types are caught earlier by the locked, type-safe
ConfigDict (see `research.main`).
"""
from __future__ import annotations

from research import models, optim, sharding, tasks
from research.tasks import regression


class ConfigError(ValueError):
  pass


def _choice(cfg, section: str, field: str, valid) -> None:
  value = cfg[section][field]
  if value not in valid:
    raise ConfigError(f"config.{section}.{field}={value!r} is not valid; choose one of: "
                      + ", ".join(map(str, valid)))


def _positive(cfg, section: str, *fields: str, allow_zero: bool = False) -> None:
  for field in fields:
    value = cfg[section][field]
    if value < 0 or (value == 0 and not allow_zero):
      raise ConfigError(f"config.{section}.{field}={value!r} must be "
                        + ("non-negative" if allow_zero else "positive"))


def _regression(cfg) -> None:
  t = cfg.task
  _choice(cfg, "task", "function", regression.FUNCTIONS)
  _positive(cfg, "task", "n_dims", "relu_hidden", "tree_depth")
  _positive(cfg, "task", "noise_std", "pool_size", allow_zero=True)
  if t.n_points < 2:
    raise ConfigError(f"config.task.n_points={t.n_points} must be at least 2")
  if t.function == "noisy_linear" and t.noise_std <= 0:
    raise ConfigError("config.task.noise_std must be > 0 for function='noisy_linear' "
                      "(Raventós: 0.5); or use function='linear'")
  if t.function == "sparse_linear" and not 1 <= t.sparsity <= t.n_dims:
    raise ConfigError(f"config.task.sparsity={t.sparsity} must be in [1, n_dims={t.n_dims}]")
  if t.curriculum.enabled:
    for f in ("dims_start", "points_start", "every"):
      if t.curriculum[f] <= 0:
        raise ConfigError(f"config.task.curriculum.{f}={t.curriculum[f]} must be positive")


TASK_CHECKS = {"regression": _regression}


def _model(cfg) -> None:
  m = cfg.model
  _choice(cfg, "model", "name", sorted(models.REGISTRY))
  _positive(cfg, "model", "num_layers", "width", "num_heads", "mlp_ratio")
  _positive(cfg, "model", "max_len", allow_zero=True)
  _choice(cfg, "model", "positions", ("learned", "rotary", "none"))
  _choice(cfg, "model", "dtype", ("float32", "bfloat16"))
  if m.width % m.num_heads:
    raise ConfigError(f"config.model.width={m.width} is not divisible by "
                      f"config.model.num_heads={m.num_heads}; pick a width that is a multiple")
  if m.positions == "rotary" and (m.width // m.num_heads) % 2:
    raise ConfigError("config.model.positions='rotary' needs an even head width "
                      f"(width/num_heads = {m.width // m.num_heads})")
  if not 0 <= m.dropout < 1:
    raise ConfigError(f"config.model.dropout={m.dropout} must be in [0, 1)")


def _optim(cfg) -> None:
  _choice(cfg, "optim", "name", optim.VALID["name"])
  _choice(cfg, "optim", "schedule", optim.VALID["schedule"])
  _positive(cfg, "optim", "learning_rate")
  _positive(cfg, "optim", "warmup_steps", "decay_steps", "weight_decay", "momentum",
            "grad_clip_norm", "end_lr_fraction", allow_zero=True)
  if cfg.optim.name == "adam" and cfg.optim.weight_decay > 0:
    raise ConfigError("config.optim.weight_decay > 0 needs config.optim.name='adamw' "
                      "(decoupled decay) or 'sgd'; plain adam takes no weight decay")


def _train(cfg, num_devices: int) -> None:
  tr = cfg.train
  _positive(cfg, "train", "batch_size", "num_steps", "steps_per_call", "log_every",
            "keep_checkpoints")
  _positive(cfg, "train", "checkpoint_every", "eval_every", "peak_flops", allow_zero=True)
  for f in ("log_every", "checkpoint_every", "eval_every"):
    if tr[f] % tr.steps_per_call:
      raise ConfigError(f"config.train.{f}={tr[f]} must be a multiple of "
                        f"config.train.steps_per_call={tr.steps_per_call}")
  try:
    shape = sharding.mesh_shape(cfg.mesh, num_devices)
  except sharding.MeshError as e:
    raise ConfigError(str(e)) from None
  batch_shards = shape[0] * shape[1]
  if tr.batch_size % batch_shards:
    raise ConfigError(f"config.train.batch_size={tr.batch_size} is not divisible by "
                      f"mesh data x fsdp = {batch_shards}; use a multiple of it")


def validate(cfg, num_devices: int) -> None:
  """Raises ConfigError (one line) on the first invalid field."""
  if cfg.task.name not in tasks.REGISTRY:
    raise ConfigError(f"config.task.name={cfg.task.name!r} is not valid; choose one of: "
                      + ", ".join(sorted(tasks.REGISTRY)))
  TASK_CHECKS.get(cfg.task.name, lambda c: None)(cfg)
  _model(cfg)
  _optim(cfg)
  _train(cfg, num_devices)
  _positive(cfg, "probe", "num_prompts", "batch_size", "bootstrap", "knn")
