"""config.init_from (research/train.py): `init_params_from(DIR, params, shardings)` copies each
parameter of the new model whose path and shape match one in DIR's newest checkpoint; the head
keeps its fresh init when its shape differs (a new task's); other mismatches raise InitFromError.
Before that, `check_vocabulary`: a text run copies token embeddings and the read-out only from a
run whose saved tokenizer (DIR/vocabulary.json) gives the same ids, and a classifier's head only
from a run of the same label names in the same order, an image classifier's from one of the same
TFDS dataset (else the head starts fresh, logged).

The checkpoint's checksums are verified first (research/checkpoint.py); only its parameters are
restored.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from research import errors, output_paths, workdir_layout
from research.checkpoint import Checkpointer, tree_path
from research.models import transformer
from research.data.text import NUM_SPECIAL
from research.workdir import CHECKPOINTS, CONFIG, VOCABULARY, read_object

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
    raise InitFromError(f"config.init_from={str(workdir)!r} has no checkpoints/ directory; "
                        "point it at the --workdir of a run that saved a checkpoint")
  return directory


def check_vocabulary(source: str | Path, task, workdir: str | Path) -> str:
  """Refuses init_from a run whose saved tokenizer (SOURCE/vocabulary.json) is not the one this
  run's task built (saved in WORKDIR/vocabulary.json at its start): the embedding rows and the
  LM read-out are indexed by token id, so with other ids of the same count every parameter fit
  by shape and was copied, each row then standing for another token. Runs without a saved
  vocabulary (no text task, or an older version's) are matched by shape alone.

  Returns why the classifier head must start fresh though its shape fits ('' if it need not):
  both runs saved label names, and they differ (other classes of the same count, or the same
  in another order), or both are image classifiers of other TFDS datasets (whose label
  indices are their classes), so the head's row for class i would score another class here. A
  new label set is a new head, as one of another count is: fine-tuning keeps the body."""
  mine_all = task.vocabulary() if hasattr(task, "vocabulary") else {}
  mine = mine_all.get("tokenizer")
  path = Path(source).expanduser() / VOCABULARY
  saved = None if mine is None else read_object(
      path, "does not hold the run's tokenizer (not a JSON object)",
      "restore it from a backup of that run, or start without config.init_from")
  theirs = (saved or {}).get("tokenizer")
  if theirs is None or _same(theirs, mine):
    labels = ((saved or {}).get("labels"), mine_all.get("labels"))
    # A run that recorded no label names (an older version's, or a task without them) is
    # matched by shape alone, as before; an image classifier's by its dataset (below).
    if None in labels or list(labels[0]) == list(labels[1]):
      return _other_dataset(source, task)
    return (f"its labels {_short(labels[0])} ({path}) are not this run's {_short(labels[1])}, "
            "in this order")
  if not isinstance(theirs, dict):
    raise InitFromError(f"{path} is damaged (its 'tokenizer' is no tokenizer's record); restore "
                        "it from a backup of that run, or start without config.init_from")
  mine_at = f"this run's, to be saved in {Path(workdir) / VOCABULARY}"
  raise InitFromError(
      f"config.init_from={source} was trained with another tokenizer than this run builds "
      f"({_difference(theirs, mine, str(path), mine_at)}): its token embeddings and read-out "
      "would stand for other tokens here. Use that run's tokenizer on text of the same "
      "vocabulary (task.tokenizer='byte' has the same ids on any text), or start this run "
      "without config.init_from")


def _dataset_classes(task_config) -> str | None:
  """What an image classifier's head rows stand for: the label indices of its TFDS dataset
  (config.task.dataset, which every image run's config.json holds; no label names are saved),
  by the dataset's name without its version (a version does not renumber the classes). None
  for other tasks. Another dataset's classes start the head fresh even where they happen to
  mean the same (mnist_corrupted's digits): a fresh head only retrains, a copied head of
  other classes scores them silently (mnist's row 0 is the digit 0, fashion_mnist's a T-shirt)."""
  task_config = task_config if hasattr(task_config, "get") else {}
  if task_config.get("name") != "image_classification" or not task_config.get("dataset"):
    return None
  return str(task_config.get("dataset")).split(":")[0]


def _other_dataset(source: str | Path, task) -> str:
  """Why the head starts fresh ('' if it need not): both are image classifiers, of the label
  indices of other datasets."""
  mine = _dataset_classes(getattr(task, "cfg", None))
  if mine is None:
    return ""
  path = Path(source).expanduser() / CONFIG
  saved = read_object(path, "does not hold a config (not a JSON object)",
                      "restore it from a backup of that run, or start without config.init_from")
  theirs = _dataset_classes((saved or {}).get("task"))
  if theirs is None or theirs == mine:  # a run without config.json: by shape, as before
    return ""
  return (f"its classes are TFDS dataset {theirs!r}'s labels ({path}), not this run's "
          f"{mine!r}'s")


def _short(labels, shown: int = 6) -> str:
  return "[" + ", ".join(map(repr, labels[:shown])) + (", ..." if len(labels) > shown else "") + "]"


def _same(a, b) -> bool:
  return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _difference(theirs: dict, mine: dict, theirs_at: str, mine_at: str) -> str:
  """Where two tokenizer states first differ, in words."""
  (kind, size), here = ((d.get("kind"), d.get("vocab_size")) for d in (theirs, mine))
  if (kind, size) != here:
    return (f"a {kind} tokenizer of {size} ids in {theirs_at}, a {here[0]} tokenizer of "
            f"{here[1]} ids in {mine_at}")
  key = "words" if "words" in theirs else "chars"
  for i, (a, b) in enumerate(zip(theirs.get(key, []), mine.get(key, []))):
    if a != b:
      return (f"{kind} tokenizers of {size} ids; id {i + NUM_SPECIAL} is {a!r} in {theirs_at}, "
              f"{b!r} in {mine_at}")
  return f"{kind} tokenizers of {size} ids, {theirs_at} not the same as {mine_at}"


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
  # Absolute: Orbax reads no item metadata under a relative path (init_from=runs/NAME, as a
  # user types it, ended in "TypeError: argument of type 'StepMetadata' is not iterable").
  path = (directory / str(step) / "state").absolute()
  with ocp.StandardCheckpointer() as checkpointer:
    md = checkpointer.metadata(path)
    tree = getattr(getattr(md, "item_metadata", md), "tree", None)
    if tree is None:
      raise InitFromError(f"checkpoint {step} in {directory} has no readable parameter "
                          "metadata (written by another Orbax, or damaged); resume that run once "
                          "to write a new checkpoint, or pick another run")
    if "params" not in tree:  # a sweep's ensemble (its members' stacked state) moved elsewhere
      raise InitFromError(f"config.init_from={workdir} holds no run's parameters (a sweep's "
                          "ensemble?); point it at one member's run folder, SWEEP/runs/NAME")
    device = jax.local_devices()[0]
    target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(
        tuple(m.shape), m.dtype, sharding=jax.sharding.SingleDeviceSharding(device)), tree)
    params = checkpointer.restore(path, target)["params"]
  return {tree_path(p): np.asarray(x) for p, x in jax.tree_util.tree_leaves_with_path(params)}, step


def init_params_from(workdir: str, params, shardings, fresh_head: str = ""):
  """`params` with every shared parameter replaced by the one in workdir's checkpoint; the
  head's too unless `fresh_head` says why it starts fresh (check_vocabulary)."""
  source, step = _raw_params(workdir)
  # scan_layers / fused_qkv store the same weights elsewhere: read them in this model's layout.
  source = _flat(transformer.match_layout(_nested(source), _nested(
      {tree_path(p): x for p, x in jax.tree_util.tree_leaves_with_path(params)})))
  copied, fresh, errors, leaves = [], [], [], []
  for path, x in jax.tree_util.tree_leaves_with_path(params):
    k = tree_path(path)
    src = source.get(k)
    head = any(part in HEAD for part in k.split("/"))
    if src is None or (head and fresh_head):
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
  (logging.warning if unused or fresh_head else logging.info)(
      "init_from %s (step %d): copied %d parameters, fresh %s%s, not used %s", workdir, step,
      len(copied), fresh, f" (the head: {fresh_head})" if fresh_head else "",
      unused[:12] + [f"+{len(unused) - 12} more"] * (len(unused) > 12))
  new = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params), leaves)
  return jax.device_put(new, shardings)
