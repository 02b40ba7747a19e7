"""config.init_from (research/train.py): `init_params_from(DIR, params, shardings)` copies each
parameter of the new model whose path and shape match one in DIR's newest checkpoint; the head
keeps its fresh init when its shape differs (a new task's); other mismatches raise InitFromError.

The checkpoint's checksums are verified first (research/checkpoint.py); only its parameters are
restored.
"""
from __future__ import annotations

import functools
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from research import errors, output_paths, workdir_layout
from research.checkpoint import Checkpointer, tree_path
from research.models import transformer
from research.workdir import CHECKPOINTS

HEAD = ("read_out", "head")


class InitFromError(errors.InputError):
  pass


def _nested(flat: dict) -> dict:
  tree: dict = {}
  for key, x in flat.items():
    *scopes, leaf = key.split("/")
    functools.reduce(lambda node, scope: node.setdefault(scope, {}), scopes, tree)[leaf] = x
  return tree


def _flat(tree: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in tree.items():
    out |= _flat(v, f"{prefix}{k}/") if isinstance(v, dict) else {f"{prefix}{k}": np.asarray(v)}
  return out


def check_init_from(workdir: str | Path) -> Path:
  """init_from's checkpoints/ directory, which must exist (the cheap check, run first)."""
  output_paths.check_local(workdir, "config.init_from")  # a URL as a Path cannot exist
  if where := workdir_layout.sweep_folder(workdir):  # an ensemble's checkpoints are no run's
    raise InitFromError(f"config.init_from={workdir} is {where}")
  if not (directory := Path(workdir).expanduser() / CHECKPOINTS).is_dir():
    raise InitFromError(f"{workdir} has no checkpoints/ directory; init_from / --workdir "
                        "must be the workdir of a run that saved a checkpoint")
  return directory


def _raw_params(workdir: str | Path) -> tuple[dict[str, np.ndarray], int]:
  """{'block_0/attn/query/kernel': array, ...} of the newest checkpoint in workdir."""
  directory = check_init_from(workdir)
  ck = Checkpointer(directory, max_to_keep=1_000_000, async_save=False, read_only=True)
  try:
    step = ck.latest_step()
    corrupt = ck.verify(step) if step is not None else None
  finally:
    ck.close()
  if step is None:
    raise InitFromError(f"no complete checkpoint in {directory}")
  if corrupt:  # never fine-tune from damaged weights
    raise InitFromError(f"checkpoint {step} in {directory} is damaged ({corrupt}); resume that "
                        "run once (it falls back to its previous checkpoint) or pick another")
  path = directory / str(step) / "state"
  with ocp.StandardCheckpointer() as checkpointer:
    md = checkpointer.metadata(path)
    tree = getattr(getattr(md, "item_metadata", md), "tree", md)
    if "params" not in tree:  # a sweep's ensemble (its members' stacked state) moved elsewhere
      raise InitFromError(f"config.init_from={workdir} holds no run's parameters (a sweep's "
                          "ensemble?); point it at one member's run folder, SWEEP/runs/NAME")
    device = jax.local_devices()[0]
    target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(
        tuple(m.shape), m.dtype, sharding=jax.sharding.SingleDeviceSharding(device)), tree)
    params = checkpointer.restore(path, target)["params"]
  return {tree_path(p): np.asarray(x) for p, x in jax.tree_util.tree_leaves_with_path(params)}, step


def init_params_from(workdir: str, params, shardings):
  """`params` with every shared parameter replaced by the one in workdir's checkpoint."""
  source, step = _raw_params(workdir)
  # scan_layers / fused_qkv store the same weights elsewhere: read them in this model's layout.
  source = _flat(transformer.match_layout(_nested(source), _nested(
      {tree_path(p): x for p, x in jax.tree_util.tree_leaves_with_path(params)})))
  copied, fresh, errors, leaves = [], [], [], []
  for path, x in jax.tree_util.tree_leaves_with_path(params):
    k = tree_path(path)
    src = source.get(k)
    head = any(part in HEAD for part in k.split("/"))
    if src is None:
      fresh.append(k)
      leaves.append(x)
    elif tuple(src.shape) != tuple(x.shape):
      if not head:
        errors.append(f"{k} shape {tuple(src.shape)} in checkpoint vs {tuple(x.shape)} here")
      fresh.append(k)
      leaves.append(x)
    else:
      copied.append(k)
      leaves.append(np.asarray(src, dtype=x.dtype))
  if errors:
    raise InitFromError(
        f"config.init_from={workdir!r} (checkpoint {step}) does not fit this model: "
        + "; ".join(errors[:8]) + (f" (+{len(errors) - 8} more)" if len(errors) > 8 else "")
        + ". Use the same model sizes, tokenizer (vocabulary) and model.max_len as that run")
  if not copied:
    raise InitFromError(f"config.init_from={workdir!r}: no parameter of this model is in its "
                        "checkpoint (different model family?)")
  unused = sorted(set(source) - set(copied) - set(fresh))  # a deeper source's block_1: said
  (logging.warning if unused else logging.info)(
      "init_from %s (step %d): copied %d parameters, fresh %s, not used %s", workdir, step,
      len(copied), fresh, unused[:12] + [f"+{len(unused) - 12} more"] * (len(unused) > 12))
  new = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params), leaves)
  return jax.device_put(new, shardings)
