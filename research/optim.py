"""Optimizers and learning-rate schedules built from an ``optim`` config block.

Public API::

    VALID                                  # allowed values of cfg.name / cfg.schedule
    make_schedule(cfg, num_steps) -> optax.Schedule
    make(cfg, num_steps) -> optax.GradientTransformation
    wd_mask(cfg) -> Callable[[params], pytree of bool]
    set_hyperparams(opt_state, **values) -> opt_state
    get_hyperparams(opt_state) -> dict
    current_lr(opt_state) -> jax.Array

Hyperparameter injection
------------------------
``make`` wraps the whole chain in ``optax.inject_hyperparams`` so the values an
ensemble may want to vary live in ``opt_state.hyperparams`` as float32 arrays:

* ``peak_lr``      -- the peak learning rate (``cfg.learning_rate``).
* ``weight_decay`` -- decoupled decay coefficient (adamw and sgd only).
* ``lr_factor``    -- the *unit* schedule (peak 1) evaluated at the step of the
                      most recent update. Derived from the step count every
                      update, so it is read-only.

The learning rate applied at step ``t`` is ``peak_lr * unit_schedule(t)``,
the same float32 computation as ``make_schedule(cfg, num_steps)(t)`` (which is
``float32(cfg.learning_rate) * unit_schedule(t)``); results are identical
except that XLA's cos may round 1 ulp differently under jit than eagerly.
We inject the peak rather than the schedule's output because optax recomputes
scheduled hyperparameters every step, which would silently discard overrides.

To give vmapped ensemble members different values, initialise the state under
``jax.vmap`` and then ``set_hyperparams(state, peak_lr=jnp.array([...]))``.
"""

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

VALID = {
    "name": ("adam", "adamw", "sgd"),
    "schedule": ("constant", "warmup_cosine", "warmup_linear", "warmup_rsqrt"),
}

# Hyperparameters that set_hyperparams may override (lr_factor is derived).
_OVERRIDABLE = ("peak_lr", "weight_decay")


def _check_choice(cfg, field: str) -> str:
  value = getattr(cfg, field)
  if value not in VALID[field]:
    raise ValueError(f"optim.{field}={value!r} is not valid; choose one of: "
                     f"{', '.join(VALID[field])}")
  return value


def _unit_schedule(cfg, num_steps: int) -> optax.Schedule:
  """Schedule with peak 1; make_schedule and make both scale it by the peak."""
  kind = _check_choice(cfg, "schedule")
  warmup = int(cfg.warmup_steps)
  end = float(cfg.end_lr_fraction)
  if warmup < 0:
    raise ValueError(f"optim.warmup_steps={warmup} must be >= 0")
  if not 0.0 <= end <= 1.0:
    raise ValueError(f"optim.end_lr_fraction={end} must be in [0, 1]")
  # decay_steps=0 means "decay until the end of training".
  decay_end = int(cfg.decay_steps) or int(num_steps)
  if kind in ("warmup_cosine", "warmup_linear") and decay_end <= warmup:
    raise ValueError(
        f"optim.decay_steps={cfg.decay_steps} (num_steps={num_steps} when 0) "
        f"must exceed optim.warmup_steps={warmup} for schedule={kind!r}")
  if kind == "warmup_rsqrt" and warmup == 0:
    # sqrt(warmup / step) is identically 0 without warmup; refuse, not guess.
    raise ValueError("optim.warmup_steps must be > 0 for schedule='warmup_rsqrt'")

  def schedule(step):
    t = jnp.asarray(step, jnp.float32)
    if kind == "constant":
      decayed = jnp.ones_like(t)
    elif kind == "warmup_rsqrt":
      decayed = jnp.sqrt(warmup / jnp.maximum(t, warmup))
    else:
      # Fraction of the decay phase done; clipped so the lr holds at the end
      # value after decay_end (and is 1 during warmup, masked below anyway).
      p = jnp.clip((t - warmup) / (decay_end - warmup), 0.0, 1.0)
      if kind == "warmup_cosine":
        decayed = end + (1.0 - end) * 0.5 * (1.0 + jnp.cos(math.pi * p))
      else:  # warmup_linear; this form gives exactly `end` at p == 1.
        decayed = (1.0 - p) + p * end
    if warmup == 0:
      return decayed
    return jnp.where(t < warmup, t / warmup, decayed)

  return schedule


def make_schedule(cfg, num_steps: int) -> optax.Schedule:
  """Learning rate as a function of the step: peak * unit schedule."""
  unit = _unit_schedule(cfg, num_steps)
  peak = float(cfg.learning_rate)
  # Same float32 product the optimizer computes, so the two agree exactly
  # (modulo 1-ulp jit-vs-eager differences in cos).
  return lambda step: jnp.asarray(peak, jnp.float32) * unit(step)


def _key_name(key) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def wd_mask(cfg) -> Callable[[Any], Any]:
  """Callable params -> same-structure tree of bools; True = apply decay.

  Path rules follow our Flax Linen naming: a norm module's name starts with
  'ln' or contains 'norm' (case-insensitive) and holds 'scale'/'bias'; biases
  are leaves named 'bias'; nn.Embed tables are leaves named 'embedding'.
  """
  norms, biases = bool(cfg.wd_exempt_norms), bool(cfg.wd_exempt_biases)
  embeds = bool(cfg.wd_exempt_embeddings)

  def decays(path, _) -> bool:
    names = [_key_name(k) for k in path]
    # flax nn.Partitioned boxes add a trailing `.value` attribute to the path.
    boxed = path and isinstance(path[-1], jax.tree_util.GetAttrKey)
    if boxed and names[-1] == "value":
      names = names[:-1]
    leaf = names[-1] if names else ""
    parent = names[-2].lower() if len(names) > 1 else ""
    if norms and leaf in ("scale", "bias") and (
        parent.startswith("ln") or "norm" in parent):
      return False
    if biases and leaf == "bias":
      return False
    if embeds and leaf == "embedding":
      return False
    return True

  return lambda params: jax.tree_util.tree_map_with_path(decays, params)


def make(cfg, num_steps: int) -> optax.GradientTransformation:
  """Full optimizer: [clip] -> adam/momentum -> [decoupled wd] -> -lr(t)."""
  name = _check_choice(cfg, "name")
  unit = _unit_schedule(cfg, num_steps)
  wd = float(cfg.weight_decay)
  clip = float(cfg.grad_clip_norm)
  momentum = float(cfg.momentum)
  if name == "adam" and wd != 0.0:
    raise ValueError(f"optim.weight_decay={wd} must be 0 for optim.name='adam'; "
                     "use optim.name='adamw' for decoupled weight decay")
  if wd < 0.0:
    raise ValueError(f"optim.weight_decay={wd} must be >= 0")
  if clip < 0.0:
    raise ValueError(f"optim.grad_clip_norm={clip} must be >= 0 (0 = off)")
  if not 0.0 <= momentum < 1.0:
    raise ValueError(f"optim.momentum={momentum} must be in [0, 1)")
  exempt = cfg.wd_exempt_norms or cfg.wd_exempt_biases or cfg.wd_exempt_embeddings
  # No mask when nothing is exempt keeps the state free of MaskedState nodes.
  mask = wd_mask(cfg) if exempt else None

  def inner(peak_lr, lr_factor, weight_decay=None):
    # Rebuilt by inject_hyperparams on every update with the current array
    # values; the chain's state structure does not depend on those values.
    parts = []
    if clip > 0.0:
      parts.append(optax.clip_by_global_norm(clip))  # on raw gradients
    if name in ("adam", "adamw"):
      parts.append(optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps))
    elif momentum > 0.0:  # nesterov is meaningless (ignored) without momentum
      parts.append(optax.trace(decay=momentum, nesterov=bool(cfg.nesterov)))
    if weight_decay is not None:
      # After the adaptive/momentum step, so decay is decoupled from the
      # gradient statistics but still scaled by lr(t) (as in optax.adamw).
      parts.append(optax.add_decayed_weights(weight_decay, mask))
    parts.append(optax.scale_by_learning_rate(peak_lr * lr_factor))
    return optax.chain(*parts)

  hps = dict(peak_lr=float(cfg.learning_rate), lr_factor=unit)
  if name != "adam":
    # Injected even when 0 so an ensemble can sweep it from a shared config.
    hps["weight_decay"] = wd
  # float32 regardless of param dtype: bf16 would round the lr itself.
  return optax.inject_hyperparams(inner, hyperparam_dtype=jnp.float32)(**hps)


def get_hyperparams(opt_state) -> dict:
  """The injected hyperparameters dict (searches wrappers like MultiSteps)."""
  found = optax.tree_utils.tree_get(opt_state, "hyperparams")
  if found is None:
    raise ValueError("opt_state holds no injected hyperparams; was it built "
                     "by research.optim.make?")
  return found


def current_lr(opt_state) -> jax.Array:
  """lr used by the most recent update (the step-0 lr right after init)."""
  hp = get_hyperparams(opt_state)
  return hp["peak_lr"] * hp["lr_factor"]


def set_hyperparams(opt_state, **values):
  """Return opt_state with injected hyperparameters replaced.

  Values may be scalars or, for a vmapped ensemble state, arrays with the
  ensemble's leading axis. Only peak_lr and weight_decay are settable.
  """
  hp = dict(get_hyperparams(opt_state))
  for key, value in values.items():
    if key not in _OVERRIDABLE or key not in hp:
      settable = [k for k in _OVERRIDABLE if k in hp]
      raise ValueError(f"cannot set hyperparameter {key!r}; settable here: "
                       f"{', '.join(settable)}")
    hp[key] = jnp.asarray(value, jnp.float32)
  return optax.tree_utils.tree_set(opt_state, hyperparams=hp)
