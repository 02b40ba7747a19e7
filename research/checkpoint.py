"""Orbax is used here and in research/init_from.py only: periodic asynchronous saves,
keep-latest-N, atomic commits (Orbax writes to a temporary directory and renames it when
complete, so a killed save is never restored), and restore onto an abstract sharded target
(arrays land in their sharding).

Integrity: once a save has committed, process 0 writes `STEP/checksums.json` (SHA-256 of every
file of the step, whichever process wrote it: sharded multi-process saves are covered). Restore
verifies it first; a mismatch (a flipped bit on disk) is treated as an unreadable checkpoint. A
step without it (killed between commit and checksum) is restored unverified, said in a log
line, and sealed then: damage after that is found.

Log-spaced keeping (`train.keep_log_spaced`, Pythia's schedule for probing training dynamics
later): `kept_steps` names the steps saved and never deleted; keep-latest-N bounds only the
others (a preemption save, an extended run's old final step).
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils

from research import checkpoint_noise  # noqa: F401 -- installs its filters
from research import errors

CHECKSUMS = "checksums.json"


class CheckpointError(errors.NoCheckpointError, RuntimeError):
  pass


class CheckpointWriteError(errors.RunIOError):
  """A save failed (disk full, unwritable directory); older checkpoints are intact."""


@contextlib.contextmanager
def _writing(directory: Path, what: str, steps: list[int]):
  """Turns Orbax/TensorStore write failures (raised from its async threads as
  ValueError/RuntimeError) into one OSError naming the directory and the cause."""
  try:
    yield
  except CheckpointError:
    raise
  except Exception as e:  # noqa: BLE001 -- Orbax re-raises writer errors untyped
    cause = _write_cause(" ".join(str(e).split()))
    complete = complete_steps(directory)
    raise CheckpointWriteError(
        f"{what} in {directory} failed: {cause}; complete checkpoints still there: "
        f"{complete if complete is not None else steps or 'none'}") from e


# The OS errors a save meets, each with what frees it; the rest are named by their strerror.
_FIXES = {errno.ENOSPC: "free space on that disk", errno.EDQUOT: "free space or raise the quota",
          errno.EFBIG: "raise the file-size limit, ulimit -f",
          errno.EROFS: "make the directory writable", errno.EACCES: "make the directory writable"}


def _write_cause(text: str) -> str:
  """The OS reason of a failed write, and its fix, from TensorStore's text: its explicit code
  (os_error_code=N, OS error N), else the OS message that comes last (TensorStore's reason
  ends the text; 300 characters of it cut 'File too large' off after a long path), with the
  start of the text; else the text's first 300 characters."""
  code = re.search(r"(?:os_error_code='?|OS error )(\d+)", text)
  if code:
    n = int(code.group(1))
  else:
    at = {text.rfind(os.strerror(n)): n for n in errno.errorcode if os.strerror(n) in text
          and not os.strerror(n).startswith("Unknown error")}
    if not at:
      return text[:300]
    n = at[max(at)]
  fix = f" ({_FIXES[n]}, then rerun to resume)" if n in _FIXES else ""
  return f"{os.strerror(n)}{fix}" + ("" if code else f" [{text[:120]}]")


def complete_steps(directory: Path) -> list[int] | None:
  """Committed step directories (Orbax renames a save's tmp dir on success)."""
  try:
    return sorted(int(p.name) for p in Path(directory).iterdir() if p.name.isdigit())
  except OSError:
    return None


def log_spaced_steps(num_steps: int, grid: int) -> list[int]:
  """Steps 1, 2, 4, 8, ... <= num_steps, each rounded UP to a multiple of `grid` (the loop
  stops only there: train.steps_per_call) or to num_steps if that comes first; equal
  roundings merge. grid 10, 100 steps: [10, 20, 40, 70]."""
  out, p = set(), 1
  while p <= num_steps:
    out.add(min(num_steps, -(-p // grid) * grid))
    p *= 2
  return sorted(out)


@dataclasses.dataclass(frozen=True)
class KeptSteps:
  """Steps whose checkpoints are saved and never deleted: `steps` listed, and every multiple
  of `every` (0: none). A rule, not the set: every train.checkpoint_every of a 2**31-step run
  listed was a set of a billion steps built at each start."""
  steps: frozenset = frozenset()
  every: int = 0

  def __contains__(self, step: int) -> bool:
    # As Orbax's EveryNSteps decides (step 0 too: a preemption before the first call).
    return step in self.steps or bool(self.every and step % self.every == 0)

  def __bool__(self) -> bool:
    return bool(self.steps or self.every)

  def policies(self) -> list:
    cm = ocp.checkpoint_managers
    return ([cm.CustomSteps(sorted(self.steps))]
            + ([cm.EveryNSteps(self.every)] if self.every else []))


def kept_steps(train) -> KeptSteps:
  """Steps whose checkpoints a run saves and keeps for good under train.keep_log_spaced:
  the log-spaced ones, every train.checkpoint_every, and the last; none when it is off."""
  if not train.get("keep_log_spaced", False):
    return KeptSteps()
  listed = log_spaced_steps(train.num_steps, train.steps_per_call) + [train.num_steps]
  return KeptSteps(frozenset(listed), int(train.checkpoint_every))


class Checkpointer:
  def __init__(self, directory: str | Path, *, max_to_keep: int, async_save: bool = True,
               keep_steps=(), read_only: bool = False):
    """keep_steps: steps never deleted (or a KeptSteps); `max_to_keep` (latest N) bounds the others. read_only:
    a reader (probes, predict, init_from) cleans nothing up: that deleted a live run's save."""
    self.directory = Path(directory).absolute()
    policy = None
    if not isinstance(keep_steps, KeptSteps):
      keep_steps = KeptSteps(frozenset(keep_steps))
    if keep_steps:
      cm = ocp.checkpoint_managers
      policy = cm.AnyPreservationPolicy([cm.LatestN(max_to_keep), *keep_steps.policies()])
      max_to_keep = None  # Orbax takes either a policy or max_to_keep
    options = ocp.CheckpointManagerOptions(  # read_only: Orbax's own values, without its warnings
        max_to_keep=None if read_only else max_to_keep, preservation_policy=policy,
        save_interval_steps=0 if read_only else 1, enable_async_checkpointing=async_save,
        cleanup_tmp_directories=not read_only, create=not read_only, read_only=read_only)
    self._mngr = ocp.CheckpointManager(self.directory, options=options,
                                       item_names=("state", "meta"))
    self._unsealed: list[int] = []  # saved steps whose checksums are not yet written

  @classmethod
  def for_training(cls, directory: str | Path, train) -> "Checkpointer":
    """A run's checkpointer, as config.train says: keep latest N, async, log-spaced."""
    return cls(directory, max_to_keep=train.keep_checkpoints,
               async_save=train.async_checkpoints, keep_steps=kept_steps(train))

  def all_steps(self) -> list[int]:
    return sorted(self._mngr.all_steps())

  def latest_step(self) -> int | None:
    steps = self.all_steps()
    return steps[-1] if steps else None

  def save(self, step: int, state: Any, meta: dict, *, force: bool = False) -> bool:
    """Whether Orbax saved it (it skips a step it already holds)."""
    # Orbax finishes the previous async save first, so its failure surfaces here.
    with _writing(self.directory, f"a checkpoint save at step <= {step}", self.all_steps()):
      self._mngr.wait_until_finished()
      self._seal()
      saved = self._mngr.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=force)
    if saved:
      self._unsealed.append(step)
    return bool(saved)

  def seal_committed(self) -> None:
    """Seals the saved steps now if no async save is still in progress (cheap: a flag);
    the training loop calls it at every log step, so a run killed long after a save still
    leaves that save verifiable, rather than only once the next save has started."""
    if self._unsealed and not self._mngr.is_saving_in_progress():
      with _writing(self.directory, "writing checkpoint checksums", self.all_steps()):
        self._seal()

  def _seal(self) -> None:
    """Writes checksums.json into every committed step saved since the last call (after
    wait_until_finished: an async save is complete only then)."""
    steps, self._unsealed = self._unsealed, []
    if jax.process_index() != 0:
      return
    for s in steps:
      step_dir = self.directory / str(s)
      if step_dir.is_dir():  # not already deleted by keep-latest-N
        sums = _file_sums(step_dir)
        tmp = step_dir / f".{CHECKSUMS}.tmp{os.getpid()}"
        tmp.write_text(json.dumps(sums, indent=0, sort_keys=True))
        tmp.replace(step_dir / CHECKSUMS)

  def verify(self, step: int) -> str | None:
    """Why checkpoint `step`'s files do not match the checksums saved with it; None when
    they match (or when it has no checksums: logged)."""
    step_dir = self.directory / str(step)
    try:
      saved = json.loads((step_dir / CHECKSUMS).read_text())
    except FileNotFoundError:
      logging.warning("checkpoint %d has no %s (saved by an older version, or killed before "
                      "it was written): restored unverified", step, CHECKSUMS)
      return None
    except (OSError, ValueError) as e:
      return f"{CHECKSUMS} unreadable ({e})"
    found = _file_sums(step_dir)
    bad = sorted(f for f in set(saved) | set(found) if saved.get(f) != found.get(f))
    if bad:
      return (f"checksum mismatch in {', '.join(bad[:3])}"
              + (f" (+{len(bad) - 3} more files)" if len(bad) > 3 else ""))
    return None

  def restore(self, abstract_state: Any, step: int | None = None, *,
              seal: bool = False) -> tuple[Any, dict, int]:
    """Restores `step` (default: the newest complete checkpoint).

    seal: the run's own trainer (holding the workdir's lock) writes the checksums of a restored
    checkpoint that has none and moves unreadable ones aside; readers never write into a run.

    A checkpoint that fails to read (truncated or missing files) is skipped
    with a warning and the previous one is tried. Skipped checkpoints newer than the
    one restored are moved (when `seal`) to `<directory>.unreadable/` (kept, not deleted): left in
    place they would stay the newest step, and Orbax silently skips every later save
    at or below it, so the run's own final checkpoint would never be written.
    """
    steps = [s for s in self.all_steps() if step is None or s == step]
    if not steps:
      raise CheckpointError(f"no complete checkpoint in {self.directory}")
    errors = []
    for s in reversed(steps):
      corrupt = self.verify(s)
      if corrupt:
        logging.warning("checkpoint %d in %s is unreadable (%s); trying an older one",
                        s, self.directory, corrupt)
        errors.append(f"step {s}: {corrupt}")
        continue
      mismatch = self.mismatches(s, abstract_state)
      if mismatch:
        raise CheckpointError(
            f"checkpoint {s} in {self.directory} does not match this config: "
            + "; ".join(mismatch[:8]) + (f" (+{len(mismatch) - 8} more)" if len(mismatch) > 8 else "")
            + ". Resume with the config that wrote it, or use a new --workdir")
      unsealed = not (self.directory / str(s) / CHECKSUMS).exists()
      try:
        out = self._mngr.restore(s, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
        if errors and seal:  # the trainer, which will save past them; a reader moves nothing
          self._quarantine([t for t in steps if t > s])
        if seal and unsealed:  # sealed now: damage from here on is found (unverified only once)
          with contextlib.suppress(OSError):  # a read-only copy: stays unverified
            self._unsealed.append(s)
            self._seal()
        return out["state"], dict(out["meta"] or {}), s
      except Exception as e:  # noqa: BLE001 -- any read failure means "corrupt"
        msg = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
        logging.warning("checkpoint %d in %s is unreadable (%s); trying an older one",
                        s, self.directory, msg)
        errors.append(f"step {s}: {msg}")
    raise CheckpointError(f"no readable checkpoint in {self.directory}: " + "; ".join(errors))

  def _quarantine(self, bad_steps: list[int]) -> None:
    aside = self.directory.with_name(self.directory.name + ".unreadable")
    if jax.process_index() == 0:
      aside.mkdir(exist_ok=True)
      for s in bad_steps:
        target = aside / f"{s}.{int(time.time())}"
        shutil.move(str(self.directory / str(s)), str(target))
        logging.warning("moved unreadable checkpoint %d to %s", s, target)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices("checkpoint_quarantine")
    self._mngr.reload()

  def mismatches(self, step: int, abstract_state: Any) -> list[str]:
    """Paths whose presence or shape differ between checkpoint `step` and the target."""
    try:
      md = ocp.StandardCheckpointer().metadata(self.directory / str(step) / "state")
    except Exception:  # noqa: BLE001 -- unreadable metadata: let restore report it
      return []
    tree = getattr(getattr(md, "item_metadata", md), "tree", None)
    if tree is None:
      return []
    on_disk = {tree_path(p): tuple(getattr(x, "shape", ()))
               for p, x in jax.tree_util.tree_leaves_with_path(tree)}
    wanted = {tree_path(p): tuple(x.shape)
              for p, x in jax.tree_util.tree_leaves_with_path(abstract_state)}
    out = [f"{k} missing in checkpoint" for k in wanted if k not in on_disk]
    out += [f"{k} only in checkpoint" for k in on_disk if k not in wanted]
    out += [f"{k} shape {on_disk[k]} in checkpoint vs {wanted[k]} in config"
            for k in wanted if k in on_disk and on_disk[k] != wanted[k]]
    return out

  def wait(self) -> None:
    with _writing(self.directory, "finishing a save", self.all_steps()):
      self._mngr.wait_until_finished()
      self._seal()

  def close(self) -> None:
    try:
      self.wait()
    finally:
      self._mngr.close()


def _file_sums(step_dir: Path) -> dict[str, str]:
  """{relative path: sha256} of every file of a step directory but the checksums."""
  out = {}
  for f in sorted(step_dir.rglob("*")):
    rel = f.relative_to(step_dir).as_posix()
    if f.is_file() and rel != CHECKSUMS and not f.name.startswith(f".{CHECKSUMS}"):
      with f.open("rb") as fh:
        out[rel] = hashlib.file_digest(fh, "sha256").hexdigest()
  return out


def tree_path(path) -> str:
  """'params/block_0/attn/...' whatever the container types (Orbax stores dicts)."""
  parts = []
  for p in path:
    for attr in ("key", "idx", "name"):
      if hasattr(p, attr):
        parts.append(str(getattr(p, attr)))
        break
    else:
      parts.append(str(p))
  return "/".join(parts)


def abstract_like(tree: Any, shardings: Any) -> Any:
  """ShapeDtypeStructs carrying the target shardings, for restore."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                      tree, shardings)
