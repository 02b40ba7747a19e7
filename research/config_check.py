"""Config validation that runs before anything compiles.

Each task checks its own `config.task` fields (`check_config` on the task class, called
through the task registry); this module checks the model, optimiser, training and probe fields.
Every failure is a `ConfigError` whose message is one line naming the field,
the bad value and the fix; every entry point prints it and exits 2 (research/cli.py).
Unknown fields and wrong types in an override are caught earlier, by research/cli.py's
override setter; in the config file itself, `_shared_sections` checks the sections every
config shares (run level, optim, train, mesh, sharding) against configs/common.py's blocks
and its top-level fields against the shipped configs', naming the closest with the
setter's hint.
"""
from __future__ import annotations

import math
import re

from research import hardware, models, optim, sharding, tasks
from research.config_defaults import shipped_configs
from research.cli import one_line
from research.config_overrides import coerce, did_you_mean, leaf_paths, type_name
from research.errors import closest
from research.models import lstm, resnet, transformer
from research.tasks.fields import (INT32_MAX, ConfigError, choice, integer,  # noqa: F401 (ConfigError: the public name)
                                   positive)


def _model_extras(cfg) -> None:
  """Fields of the LSTM and of the ResNet embedder / classifier, when the config has them."""
  m = cfg.model
  if m.name == "lstm":
    choice(cfg, "model", "cell", lstm.CELLS)
    positive(cfg, "model", "lstm_width", "lstm_layers", allow_zero=True)
  if "resnet" in m:
    r = m.resnet
    if r.norm not in resnet.NORMS:
      raise ConfigError(f"config.model.resnet.norm={r.norm!r} is not valid; choose one of: "
                        + ", ".join(resnet.NORMS))
    if not len(r.blocks) == len(r.channels) == len(r.strides) or not len(r.blocks):
      raise ConfigError(f"config.model.resnet.blocks/channels/strides need one entry per stage; got "
                        f"{tuple(r.blocks)}, {tuple(r.channels)}, {tuple(r.strides)}")
    if min(tuple(r.blocks) + tuple(r.channels) + tuple(r.strides)) < 1:
      raise ConfigError("config.model.resnet.blocks/channels/strides must be positive")


def _model(cfg) -> None:
  m = cfg.model
  _model_extras(cfg)
  choice(cfg, "model", "name", sorted(models.REGISTRY))
  integer(cfg, "model", "num_layers", "width", "num_heads", "max_len")
  positive(cfg, "model", "num_layers", "width", "num_heads", "mlp_ratio")
  positive(cfg, "model", "max_len", allow_zero=True)
  choice(cfg, "model", "positions", transformer.POSITIONS)
  choice(cfg, "model", "dtype", ("float32", "bfloat16"))
  if m.width % m.num_heads:
    raise ConfigError(f"config.model.width={m.width} is not divisible by "
                      f"config.model.num_heads={m.num_heads}; pick a width that is a multiple")
  if m.positions == "rotary" and (m.width // m.num_heads) % 2:
    raise ConfigError("config.model.positions='rotary' needs an even head width "
                      f"(width/num_heads = {m.width // m.num_heads})")
  if not 0 <= m.dropout < 1:
    raise ConfigError(f"config.model.dropout={m.dropout} must be in [0, 1)")
  if m.name == "transformer":
    _transformer_features(cfg)


def _transformer_features(cfg) -> None:
  m = cfg.model
  choice(cfg, "model", "remat", ("none", *transformer.REMAT_POLICIES))
  choice(cfg, "model", "attention", ("explicit", "fused"))
  if m.attention == "fused" and m.dropout > 0:
    raise ConfigError(f"config.model.attention='fused' has no attention dropout but "
                      f"config.model.dropout={m.dropout}; use attention='explicit' or dropout=0")


def _optim(cfg) -> None:
  choice(cfg, "optim", "name", optim.VALID["name"])
  choice(cfg, "optim", "schedule", optim.VALID["schedule"])
  positive(cfg, "optim", "learning_rate")
  positive(cfg, "optim", "weight_decay", "momentum", "grad_clip_norm", "end_lr_fraction",
           allow_zero=True)
  positive(cfg, "optim", "warmup_steps", "decay_steps", allow_zero=True, at_most=INT32_MAX)
  positive(cfg, "optim", "eps")
  for f in ("b1", "b2"):
    if not 0 <= cfg.optim[f] < 1:
      raise ConfigError(f"config.optim.{f}={cfg.optim[f]!r} must be in [0, 1)")
  if not 0 <= cfg.optim.end_lr_fraction <= 1:
    raise ConfigError(f"config.optim.end_lr_fraction={cfg.optim.end_lr_fraction!r} must be in [0, 1]")
  _schedule(cfg)
  if cfg.optim.name == "adam" and cfg.optim.weight_decay > 0:
    raise ConfigError("config.optim.weight_decay > 0 needs config.optim.name='adamw' "
                      "(decoupled decay) or 'sgd'; plain adam takes no weight decay")


def _schedule(cfg) -> None:
  """The schedule's phases fit together (research/optim.py would refuse them at build time,
  after compilation started)."""
  o, steps = cfg.optim, cfg.train.num_steps
  warmup, decay_end = int(o.warmup_steps), int(o.decay_steps) or int(steps)
  if o.schedule in ("warmup_cosine", "warmup_linear") and decay_end <= warmup:
    where = (f"config.optim.decay_steps={o.decay_steps}" if o.decay_steps else
             f"config.train.num_steps={steps} (decay ends there when optim.decay_steps=0)")
    raise ConfigError(f"{where} must exceed config.optim.warmup_steps={warmup} for "
                      f"schedule={o.schedule!r}; lengthen the decay or shorten the warmup")
  if o.schedule == "warmup_rsqrt" and warmup == 0:
    raise ConfigError("config.optim.warmup_steps=0 with schedule='warmup_rsqrt' would give a "
                      "zero learning rate; set warmup_steps > 0")


def _train(cfg, num_devices: int) -> None:
  tr = cfg.train
  positive(cfg, "train", "batch_size", "num_steps", "steps_per_call", "log_every",
           "keep_checkpoints", at_most=INT32_MAX)
  positive(cfg, "train", "checkpoint_every", "eval_every", allow_zero=True, at_most=INT32_MAX)
  positive(cfg, "train", "peak_flops", allow_zero=True)
  choice(cfg, "train", "matmul_precision", ("auto", "default", "highest"))
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
  positive(cfg, "train", "grad_accum_steps", at_most=INT32_MAX)
  # Every microbatch is spread over all of data x fsdp, like the whole batch.
  if tr.batch_size % (tr.grad_accum_steps * batch_shards):
    raise ConfigError(f"config.train.batch_size={tr.batch_size} is not divisible by "
                      f"config.train.grad_accum_steps x mesh data x fsdp = "
                      f"{tr.grad_accum_steps} x {batch_shards}; use a multiple of it")


def _sharding_rules(cfg) -> None:
  """Each rule is (logical axis, mesh axis | tuple of mesh axes | None), as sharding.py reads it."""
  for rule in cfg.sharding.rules if "sharding" in cfg else ():
    ok = isinstance(rule, (tuple, list)) and len(rule) == 2 and isinstance(rule[0], str)
    target = rule[1] if ok else None
    targets = target if isinstance(target, (tuple, list)) else (target,)
    if not ok or not all(t is None or t in sharding.MESH_AXES for t in targets):
      raise ConfigError(f"config.sharding.rules entry {rule!r} is not (logical axis, mesh axis); "
                        f"mesh axes are {', '.join(sharding.MESH_AXES)}, a tuple of them or "
                        "None, e.g. ('mlp', 'tensor')")


def _same_kind(value, default) -> bool:
  """The override setter's rule (an int where a float is held is fine; a bool is no int)."""
  try:
    coerce(default, value)
  except TypeError:
    return False
  return True


def _shared_sections(cfg) -> None:
  """The sections every config takes from configs/common.py: a section or field missing, a
  field no code reads (a typo in the file: it would be ignored, and the default used
  silently) or a value of another kind than the block's default is refused, naming it."""
  try:
    from configs import common
  except ImportError:  # research installed without the configs package: nothing to compare
    return
  blocks = {"optim": common.optim(), "train": common.train(), "mesh": common.mesh()}
  _no_unknown_fields(cfg, {**blocks, "sharding": common.sharding()}, set(common.base("")))
  for field, default in common.base("").items():
    if field not in cfg:
      raise ConfigError(f"config.{field} is missing; start the config from configs/common.py's "
                        "base(preset), which defines the run-level fields")
    if field != "preset" and not _same_kind(cfg[field], default):
      raise ConfigError(f"config.{field}={cfg[field]!r} must be {type_name(default)}")
  for section, block in blocks.items():
    if section not in cfg:
      raise ConfigError(f"config.{section} is missing; add c.{section} = common.{section}() "
                        "(configs/common.py)")
    for field, default in block.items():
      if field not in cfg[section]:
        raise ConfigError(f"config.{section}.{field} is missing; build the section with "
                          f"common.{section}(...) (configs/common.py), which defines every field")
      value = cfg[section][field]
      if not _same_kind(value, default):
        raise ConfigError(f"config.{section}.{field}={value!r} must be {type_name(default)} "
                          f"(configs/common.py's default: {default!r})")


def _no_unknown_fields(cfg, blocks: dict, base: set) -> None:
  """A top-level field or one in a shared section that nothing reads (`c.sead = 3`,
  `c.sharding.rulez`) is refused, as an override of it is (research/config_overrides.py,
  whose hint names the closest known field). Known: configs/common.py's blocks and, at the
  top level, the fields and sections of the shipped configs of this task, as _known_fields
  compares task fields (a config's own: grokking's init_scale, lm_ladder's topology), or of
  any shipped config for a new task; without shipped configs the top level is not compared."""
  shipped, task = shipped_configs(), cfg.get("task")
  name = task.get("name") if hasattr(task, "get") else None
  pool = [c for c in shipped if c.task.name == name]
  whose = "this task's shipped configs" if pool else "the shipped configs"
  top = base.union(*(c.keys() for c in pool or shipped)) if shipped else set()
  known = {f"{s}.{f}" for s, block in blocks.items() for f in block} | top
  known |= {p for s in top - set(blocks) if hasattr(cfg.get(s), "items")
            for p in leaf_paths(cfg[s], f"{s}.")}  # `c.n_dims`: did you mean 'task.n_dims'?
  unknown = [(f, f"the top-level fields are those of {whose} (configs/*.py): "
              + ", ".join(sorted(top))) for f in cfg if top and f not in top]
  unknown += [(f"{s}.{f}", f"the fields are configs/common.py's {s}(): {', '.join(block)}")
              for s, block in blocks.items() if hasattr(cfg.get(s), "items")
              for f in cfg[s] if f not in block]
  for path, fields in unknown[:1]:
    hint = did_you_mean(path, sorted(known))
    raise ConfigError(f"config.{path} is not a field (nothing reads it, so its value would be "
                      f"ignored); {hint + ' ' if hint else ''}{fields}")


def _known_fields(cfg) -> None:
  """The task, model and probe fields against the shipped configs (configs/*.py): a field
  that no shipped config of this task has (the model's: of any task) is refused as a likely
  misspelling (`c.task.n_point = 7` leaves n_points at its default). A task with no shipped
  config (a new one) is left to its check_config."""
  reference = shipped_configs()
  same_task = [c for c in reference if c.task.name == cfg.task.name]
  for section, pool in (("task", same_task), ("probe", same_task), ("model", reference)):
    known = set().union(*(leaf_paths(c[section], f"{section}.") for c in pool
                         if section in c))
    if not known or section not in cfg:
      continue
    for path in sorted(set(leaf_paths(cfg[section], f"{section}.")) - known):
      near = closest(path, sorted(known))
      hint = f"did you mean {near.partition('.')[2]}? " if near else ""
      raise ConfigError(
          f"config.{path} is not a field of any shipped config of this "
          f"{'model' if section == 'model' else 'task'} (it would be ignored); {hint}a field "
          f"your code reads goes into the shipped config file too, with a comment (configs/)")


def _text_fields() -> set:
  """The fields every shipped config holds as a string (a choice such as model.remat, a path)."""
  kinds: dict = {}
  for c in shipped_configs():
    for path, value in _leaves(c, "config"):
      kinds.setdefault(path, set()).add(isinstance(value, str))
  return {path for path, is_str in kinds.items() if is_str == {True}}


def _leaves(node, prefix: str):
  for field in node.keys():
    try:  # a field computed from others (configs/grokking.py: init_scale from model.width)
      value = node[field]
    except (ArithmeticError, ValueError, TypeError) as e:
      raise ConfigError(f"{prefix}.{field} is computed from other fields of the config, and "
                        f"their values make it fail ({e}); give those fields valid values "
                        "(its config file says which they are)") from None
    if hasattr(value, "items"):
      yield from _leaves(value, f"{prefix}.{field}")
    else:
      yield f"{prefix}.{field}", value


def _no_quoted_bools(cfg) -> None:
  """'False' in quotes is a non-empty string, which reads as true: a switch silently on. A
  text field is no switch: model.remat='True' is left to its choice check, which names the
  valid values ("write True without quotes" would be refused as a bool there)."""
  text = _text_fields()
  for path, value in _leaves(cfg, "config"):
    if path not in text and isinstance(value, str) and value.strip().lower() in ("true", "false"):
      raise ConfigError(f"{path}={value!r} is a string, which reads as true; write "
                        f"{value.strip().capitalize()} without quotes")


def validate(cfg, num_devices: int) -> None:
  """Raises ConfigError (one line) on the first invalid field: a task.name no task has, or a
  config of another task, first; then a field no shipped config has (a misspelling), before
  any other refusal, which may be of the default the misspelling left (`c.task.paht = FILE`
  was refused as "config.task.source='csv' needs config.task.path=FILE")."""
  _no_quoted_bools(cfg)
  _shared_sections(cfg)
  for section in ("task", "model"):
    if section not in cfg:
      raise ConfigError(f"config.{section} is missing; start from a config in configs/ (e.g. "
                        "configs/icl_regression.py), which defines every section")
  try:
    try:
      _validate(cfg, num_devices)  # first: a switched task.name is named as such
    except _NotThisTasksConfig:
      raise
    except ConfigError:  # any other refusal comes after a misspelt field's (the file's
      _known_fields(cfg)  # `c.task.paht = FILE` was refused as needing config.task.path)
      raise
    _known_fields(cfg)
  except (KeyError, AttributeError) as e:  # a field the checks read is not in the file
    field = str(e.args[0]).strip("'\"") if e.args else ""
    raise ConfigError(f"the config has no field {field!r} that the code reads; start from a "
                      "config in configs/ (e.g. configs/icl_regression.py), which defines "
                      "every field of its model and probes") from None


def _topology(name) -> None:
  """config.topology (the slice a ladder preset's layout was planned for, SIZE@TOPOLOGY):
  a name research.aot can compile for, so that a typo fails here, not as a run on the
  default layout."""
  if not hardware.is_topology_name(str(name)):
    raise ConfigError(f"config.topology={name!r} is not a TPU topology name; write CHIP:SHAPE "
                      f"with CHIP one of {', '.join(hardware.topology_prefixes())}, e.g. "
                      "v5e:4x4 or v5p:4x4x4 (configs/lm_ladder.py's presets: SIZE@TOPOLOGY)")
  if problem := hardware.topology_dims_problem(str(name)):
    raise ConfigError(f"config.topology={name!r}: {problem}")


def _lacks_field(task: str, e: Exception) -> str:
  """The line for a task field its check_config read and the config lacks. ml_collections'
  KeyError text (`'flip_prob'\\nDid you mean "flip_prb" instead of "flip_prob"?`, inside an
  AttributeError for attribute access) was printed raw."""
  inner = e.args[0] if e.args and isinstance(e.args[0], KeyError) else e
  text = str(inner.args[0]) if isinstance(inner, KeyError) and inner.args else ""
  m = re.match(r"'?([\w.]+)'?(?:\nDid you mean \"([\w.]+)\")?", text)
  if not m:
    return (f"config.task.name={task!r}: config.task lacks that task's fields ({one_line(e)}); "
            "use the config file written for it (configs/*.py)")
  field, close = m.groups()
  has = f" (it has {close!r}: a misspelling in the config file?)" if close else ""
  return (f"config.task.name={task!r}: the task's check_config reads a field {field!r} that "
          f"this config lacks{has}; use the config file written for that task (configs/*.py), "
          "each field spelled as the task reads it")


class _NotThisTasksConfig(ConfigError):
  """task.name is no task, or its check_config reads a field the config lacks (a config of
  another task, --config.task.name switched): said before any field the task does not know."""


def _validate(cfg, num_devices: int) -> None:
  if cfg.task.name not in tasks.REGISTRY:
    raise _NotThisTasksConfig(f"config.task.name={cfg.task.name!r} is not valid; choose one "
                              "of: " + ", ".join(sorted(tasks.REGISTRY))
                              + " (a new task is added to REGISTRY in research/tasks/__init__.py)")
  try:
    tasks.check_config(cfg)
  except (KeyError, AttributeError) as e:  # --config.task.name switched to another task, or a
    raise _NotThisTasksConfig(_lacks_field(cfg.task.name, e)) from None  # field the file misspells
  if "seed" in cfg and not 0 <= cfg.seed < 2 ** 32:  # the key is a uint32 (ensembles store it so)
    raise ConfigError(f"config.seed={cfg.seed!r} must be an integer in [0, 2**32); e.g. "
                      "--config.seed=0")
  if "bootstrap_seed" in cfg.probe and not 0 <= cfg.probe.bootstrap_seed < 2 ** 32:
    raise ConfigError(f"config.probe.bootstrap_seed={cfg.probe.bootstrap_seed!r} must be an "
                      "integer in [0, 2**32) (numpy's seed); e.g. --config.probe.bootstrap_seed=0")
  if cfg.get("topology"):
    _topology(cfg.topology)
  _model(cfg)
  _train(cfg, num_devices)  # before the schedule, which reads train.num_steps
  _optim(cfg)
  _sharding_rules(cfg)
  positive(cfg, "probe", *(f for f in ("num_prompts", "batch_size", "bootstrap", "knn")
                            if f in cfg.probe))  # the fields a task's probe uses
  for f, low in (("lasso_alpha", 0.0), ("ridge_lambda", -1.0)):
    if f in cfg.probe and not (math.isfinite(cfg.probe[f]) and cfg.probe[f] >= low):
      raise ConfigError(f"config.probe.{f}={cfg.probe[f]!r} must be a finite number >= {low}")
