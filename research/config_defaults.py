"""The value of a field that a run's saved config.json lacks (written by a version from before the
field was added): what that version's code behaved as, since the code reads a field it added with
its default. One answer for every reader of a saved config: research.predict (an older run's
config made a valid one), the config check of a resume or rerun (workdir.config_differences,
where such a field at that value is no change, and at any other value is one) and
research.results (an older run's row beside newer ones: the values it ran with, not blanks).

Where the default comes from:
  run-level fields (seed, init_from), optim, train, mesh and the Transformer's feature fields:
      configs/common.py's blocks, which every preset starts from (a preset's own value of a new
      field is still a change for an older run, which trained with the block's default)
  anything else (task, probe, sharding, other model fields): the value that every shipped config
      of the run's task (configs.shipped(): each file's default and tiny presets) holds; a field
      they hold with different values, or some of them lack, has no default and its absence counts
      as a change.
A field is filled only where its section is in the saved config: a missing section is damage, for
the readers to name.
"""
from __future__ import annotations

import copy
import functools
import json


def filled(saved: dict) -> tuple[dict, list[str]]:
  """A copy of SAVED (config.json's dict) with each field it lacks and `defaults` knows set to
  that default, and the dotted names of the fields set."""
  out, added = copy.deepcopy(saved), []
  task, model = (saved.get(k) if isinstance(saved.get(k), dict) else {} for k in ("task", "model"))
  for name, value in _defaults(json.dumps(task.get("name")), json.dumps(saved.get("preset", "")),
                               json.dumps(model.get("name"))).items():
    *parents, leaf = name.split(".")
    node = out
    for part in parents:
      node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and leaf not in node:
      node[leaf] = copy.deepcopy(value)
      added.append(name)
  return out, added


def shipped_configs() -> tuple:
  """The shipped configs (configs/*.py), or none when the configs package is absent or broken
  (config_check compares a config's fields with them too)."""
  try:
    from configs import shipped
    return shipped()
  except Exception:  # noqa: BLE001 -- nothing to compare with
    return ()


@functools.lru_cache(maxsize=64)
def _defaults(task_json: str, preset_json: str, model_json: str) -> dict:
  """{dotted field: default} (JSON values) for a run of that task, preset and model."""
  configs = shipped_configs()
  try:
    from configs import common
  except Exception:  # noqa: BLE001 -- research without the configs package: none known
    return {}
  if not configs:  # the configs package broken: none known
    return {}
  task, preset = json.loads(task_json), json.loads(preset_json)
  out: dict = {}
  same_task = [_leaves(_as_json(c)) for c in configs if c.task.get("name") == task]
  for name in set().union(*same_task) if same_task else ():
    values = [leaves.get(name, _MISSING) for leaves in same_task]
    if _MISSING not in values and all(v == values[0] for v in values):
      out[name] = values[0]
  blocks = {"": common.base(str(preset)), "optim": common.optim(), "train": common.train(),
            "mesh": common.mesh()}
  if json.loads(model_json) == "transformer":
    import ml_collections
    features = ml_collections.ConfigDict()
    common.transformer_features(features)
    blocks["model"] = features
  # train.matmul_precision is filled with its default, auto (HIGHEST for float32), though
  # older versions left XLA's default: on CPU, where every run of theirs trained (none ran on
  # a TPU or GPU), the two compute the same float32 products (tests/test_matmul_precision.py),
  # so an older run is the run auto would train, and resumes or is reused as such.
  for section, block in blocks.items():
    for field, value in _as_json(block).items():
      out[f"{section}.{field}" if section else field] = value
  return out


_MISSING = object()


def _as_json(config) -> dict:
  return json.loads(config.to_json_best_effort())


def _leaves(node: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in node.items():
    out |= _leaves(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v}
  return out
