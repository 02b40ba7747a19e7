"""What a run's or a sweep's directory may hold, and where: checked before a start writes
anything (research.main, research.sweep, train.train_and_evaluate), and a refused start's
empty directories removed. The files themselves are research/workdir.py's.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

from research.errors import InputError, NoCheckpointError
from research.workdir import (CHANGES, CHECKPOINTS, CONFIG, ENSEMBLES, EXPERIMENT, LOCK,
                              METRICS, PERF, RESULTS, RUNS, SUMMARY, SWEEP_RECORD, VOCABULARY,
                              experiment_of, is_run_dir, read_json, trained_nothing)


def check_layout(workdir: str | Path) -> None:
  """Before a start writes anything: the run's files are files and its checkpoints a
  directory. A directory in a file's place failed after training (exit 5, summary.json); a
  file in place of checkpoints/ read as no checkpoint, so a finished run restarted from
  step 0, deleting its metrics, before its first save failed."""
  workdir = Path(workdir)
  for name in (CONFIG, SUMMARY, METRICS, PERF, VOCABULARY, CHANGES):
    path = workdir / name
    if path.exists() and not path.is_file():
      raise InputError(f"{path} is not a file (the run's {name} goes there); move it out of "
                       "the run directory and rerun")
  ckpts = workdir / CHECKPOINTS
  if ckpts.exists() and not ckpts.is_dir():
    raise InputError(f"{ckpts} is not a directory (the run's checkpoints go there); move it "
                     "out of the run directory and rerun")


def check_finished_has_checkpoints(workdir: str | Path) -> None:
  """A run that wrote its summary.json but has no complete checkpoint (checkpoints/ removed
  or emptied by hand) read as a start that trained nothing: it restarted from step 0,
  deleting its metrics.jsonl, while the old summary.json still said finished. Refused (exit
  4: no usable checkpoint). A summary with an error (an ensemble member frozen at a
  non-finite loss, which has no checkpoint) is a failed run that a rerun retries from 0, and
  a start killed before its first save has no summary: both still start afresh. Called after
  the config check (a run of another config is that refusal, exit 2, not this one)."""
  workdir = Path(workdir)
  summary_path = workdir / SUMMARY
  if not summary_path.is_file():
    return
  summary = read_json(summary_path)
  if summary is not None and "error" in summary:
    return
  ckpts = workdir / CHECKPOINTS
  # Orbax renames a save's temporary directory to the bare step number once it is complete.
  if ckpts.is_dir() and any(p.name.isdigit() and p.is_dir() for p in ckpts.iterdir()):
    return
  at = f" at step {summary['final_step']}" if "final_step" in (summary or {}) else ""
  unreadable = Path(f"{ckpts}.unreadable")  # where a resume moved checkpoints that failed to read
  moved = (f" ({unreadable} holds ones that failed to read)"
           if unreadable.is_dir() and any(unreadable.iterdir()) else "")
  raise NoCheckpointError(
      f"{workdir} holds a run that finished{at} ({SUMMARY}) but no usable checkpoint in "
      f"{ckpts}{moved} to continue or re-probe it from, and a start from step 0 would replace "
      f"its metrics; put its checkpoints back, use another --workdir, or move the run's files "
      f"out of {workdir} to train it again there")


RUN_FOLDERS = (CHECKPOINTS, CHECKPOINTS + ".unreadable", "probes", "figures", "tensorboard")


def _enclosing(workdir: Path, kind: str) -> str | None:
  """What a would-be run directory is inside of, if that is a run's own folder (its
  checkpoints/, probes/, ...) or a sweep's folder other than one of its runs, runs/NAME
  with the config.json the sweep wrote: research.results then read it as another run of the
  one above (a phantom row; `research.main --workdir=SWEEP/runs/zz` became a row of the
  sweep that no point of it made). A new run or sweep anywhere inside a run is refused too
  (research.results listed it beside the run); a run already there is continued
  (experiments/garg2022.py trains WORKDIR/sparse_linear inside its run). An experiment's or
  reproduce's directory is refused anywhere inside a run (is_run_dir: not a user's folder
  with a config.json of its own) or a sweep: research.results listed its runs as the
  enclosing one's."""
  path = workdir.resolve()
  for parent in path.parents:
    if kind in ("experiment", "reproduce") and (parent / CONFIG).is_file() and is_run_dir(parent):
      return f"inside the run {parent}"
    if ((parent / CONFIG).is_file() and path.relative_to(parent).parts[0] in RUN_FOLDERS):
      return f"inside the run {parent}'s {path.relative_to(parent).parts[0]}/"
    if (kind in ("run", "sweep") and not (path / CONFIG).is_file() and not _is_sweep(path)
        and (parent / CONFIG).is_file() and is_run_dir(parent)):
      # A new run or sweep in a run's folder: research.results listed it as a second row of
      # the first (or the sweep's runs beside it). A run or sweep already there (an
      # experiment's, as garg2022's WORKDIR/sparse_linear) may still be continued by hand.
      return (f"inside the run {parent} (research.results would list it beside that run's "
              "own row)")
    if _is_sweep(parent):
      if kind == "run" and path.parent == parent / RUNS:
        if (path / CONFIG).is_file():
          return None  # one of the sweep's runs, continued by hand
        return (f"a new folder in the sweep {parent}'s runs/, where only the sweep makes runs "
                "(research.results would list it as one of its rows)")
      return f"inside the sweep {parent} (its runs are {parent / RUNS}/NAME)"
  return None


def _is_sweep(path: Path) -> bool:
  return (path / RESULTS).is_file() and (path / RUNS).is_dir()


def sweep_folder(path: str | Path, task: str | None = None) -> str | None:
  """What PATH is when it is a sweep's folder that is not one of its runs (the sweep itself,
  runs/, ensemble/ or an ensemble's KEY), with the run folder to give instead; None
  otherwise. config.init_from at an ensemble read its members' stacked state as a run's
  (KeyError: 'params', exit 1); at the sweep or runs/: 'no checkpoints/ directory'. `task`:
  the task.name the command reads, so that the run named as the example is one it takes
  (research.predict on a sweep of lm runs named an lm run, which it then refused)."""
  path = Path(path).expanduser()
  for root in dict.fromkeys((path, path.parent, path.parent.parent)):
    if not _is_sweep(root):
      continue
    inside = path.relative_to(root).parts
    what = {(): "a sweep's directory", (RUNS,): "a sweep's runs/ folder",
            (ENSEMBLES,): "a sweep's ensemble/ folder"}.get(inside)
    ensemble = len(inside) == 2 and inside[0] == ENSEMBLES
    if ensemble:
      what = "a sweep's ensemble (the stacked training state of its members)"
    if what is None:
      return None
    runs = sorted(d.name for d in (root / RUNS).iterdir() if (d / CHECKPOINTS).is_dir())
    if task is not None:
      runs = [r for r in runs if _task_name(root / RUNS / r) == task]
      if not runs:
        return (f"{what}, and none of its runs is a task.name='{task}' run with a "
                "checkpoint; pass the --workdir of one")
    return (f"{what}, not a run; point it at "
            + ("one member's run folder" if ensemble else "one of the sweep's runs")
            + f", {root / RUNS}/NAME" + (f" (e.g. {root / RUNS / runs[0]})" if runs else ""))
  return None


def _task_name(run: Path) -> str | None:
  try:
    return json.loads((run / CONFIG).read_text())["task"]["name"]
  except (OSError, ValueError, KeyError, TypeError):
    return None


def check_run_to_read(path: str | Path, flag: str, kind: str, task: str | None = None) -> Path:
  """The directory of a run a command reads (research.predict, research.probe_checkpoints),
  refused in one line naming what it is instead: missing, a file, a sweep's folder (with a
  run of `task` to give; predict said only "holds no config.json" there, and for a missing
  path), or no run. `kind`: the run wanted, e.g. "an lm run"."""
  where = Path(path).expanduser()
  if not where.exists():
    raise InputError(f"{flag}={path} does not exist; pass the --workdir of {kind}")
  if not where.is_dir():  # was exit 5 in probe_checkpoints, "reading .../config.json failed"
    raise InputError(f"{flag}={path} is a file; pass the directory of {kind}")
  if folder := sweep_folder(where, task):
    raise InputError(f"{flag}={path} is {folder}")
  if not (where / CONFIG).is_file():
    raise InputError(f"{flag}={path} holds no config.json; pass the --workdir of {kind}")
  return where


def check_kind(workdir: str | Path, kind: str, owner: str = "", own_files=()) -> None:
  """Refuses a run's directory for a sweep, or a sweep's for a single run (kind: "run" or
  "sweep"). Either was accepted and mixed the two: a run's config.json and checkpoints
  beside a sweep's results.jsonl and runs/, which research.results then reads as one.

  kind "experiment" (the script experiments/`owner`.py) or "reproduce": a run's or a sweep's
  directory, or one inside them, is refused too. An experiment wrote its results, runs and
  figures into a finished research.main run (which then refused to continue: "holds a
  sweep"), and reproduce its NAME/ folders into a sweep (research.results listed their runs
  as the sweep's rows). An experiment's own directory (EXPERIMENT names `owner`; one written
  before that marker: it holds one of `own_files`, the experiment's result files) is its to
  reuse, runs, sweep and all; another experiment's is refused."""
  workdir = Path(workdir)
  sweep_files = [n for n in (RESULTS, RUNS) if (workdir / n).exists()]
  run_files = [n for n in (CONFIG, METRICS, CHECKPOINTS) if (workdir / n).exists()]
  if kind in ("experiment", "reproduce"):
    _check_experiment(workdir, kind, owner, own_files, sweep_files + run_files)
    return
  if kind == "run" and sweep_files:
    raise InputError(f"--workdir={workdir} holds a sweep ({', '.join(sweep_files)}); give the "
                     f"run its own directory beside it, e.g. --workdir={workdir}_single (not "
                     "inside: a sweep's folder holds its runs only), or continue "
                     "the sweep with research.sweep")
  where = _enclosing(workdir, kind)
  if where:
    raise InputError(f"--workdir={workdir} is {where}; give the {kind} a directory of its own")
  if kind == "sweep" and run_files:
    raise InputError(f"--workdir={workdir} holds a single run ({', '.join(run_files)}); give "
                     f"the sweep its own directory, e.g. --workdir={workdir}_sweep")


def _check_experiment(workdir: Path, kind: str, owner: str, own_files, found: list[str]) -> None:
  made_by = experiment_of(workdir)
  # sweep.json is written by research.sweep alone (an experiment's run_sweep keeps no
  # identity): such a directory is a user's sweep whatever experiment.json says. Its hint to
  # write the mark was followed, and scaling_laws then trained its grid into the user's
  # results table beside a sweep.json naming the user's config.
  record = (read_json(workdir / SWEEP_RECORD) or {}) if (workdir / SWEEP_RECORD).is_file() \
      else None  # (a torn one reads as {}: still research.sweep's)
  if record is not None:  # what it holds, by the record's own fields
    found = [*found, f"{SWEEP_RECORD}: research.sweep's"
             + "".join(f", {k}={v}" for k, v in record.items() if k in ("config", "sweep"))
             + (f"; its {EXPERIMENT} does not make it {made_by}'s" if made_by else "")]
  if record is None and kind == "experiment" and (made_by == owner or made_by is None and any(
      (workdir / f).exists() for f in own_files)):
    return  # its own earlier output: its runs are reused
  what = (f"a sweep ({', '.join(found)})" if record is not None else
          f"{made_by}'s experiment ({EXPERIMENT})" if made_by else
          f"a sweep ({', '.join(found)})" if {RESULTS, RUNS} & set(found) else
          f"a run ({', '.join(found)})" if found else None)
  mine = owner or "reproduce"
  where = _enclosing(workdir, kind)
  if where:  # first: a directory beside this one (the hint below) is inside it too
    raise InputError(f"--workdir={workdir} is {where}, which {mine}'s files would break; give "
                     f"{mine} a new directory outside it")
  if what:
    own = ("" if made_by or record is not None or kind != "experiment" else  # one of its own
           # from before the mark: an interrupted sweep of the experiment, no sweep.json
           f" (if {mine} itself wrote it, before {EXPERIMENT} existed: write "
           f"{{\"experiment\": \"{mine}\"}} into {workdir / EXPERIMENT} to resume it)")
    raise InputError(f"--workdir={workdir} holds {what}, which {mine}'s files would break; "
                     f"give {mine} a new directory, e.g. --workdir={workdir}_{mine}{own}")


def remove_if_unstarted(workdir: str | Path, *, refused: bool = False,
                        keep: frozenset[Path] | set[Path] = frozenset()) -> None:
  """Undoes a start refused before it wrote anything (a bad config.init_from, a model that
  does not fit): removes .lock and the empty directories the start made, and the workdir
  itself when that leaves it empty. Any other file stays where it is. Called while holding
  the lock: a process that starts meanwhile makes a new .lock, and the workdir stays.

  keep: the paths that were there before the start (an experiment's existing WORKDIR, itself
  and its user's folders, experiments/common.owned): they stay, empty or not.

  refused: the start (in a workdir it made) ended as bad input after writing config.json,
  e.g. a batch too large for the device, found by the first call's compile. If it trained
  nothing (no metrics row, checkpoint or summary), the files a start writes before training
  (config.json, vocabulary.json, TensorBoard's empty event file) go too: they stayed, with
  .lock, checkpoints/ and tensorboard/, though a bad input leaves the workdir untouched."""
  workdir = Path(workdir)
  if (workdir / CONFIG).exists():
    if not (refused and trained_nothing(workdir) and not (workdir / METRICS).exists()
            and not (workdir / PERF).exists()):
      return  # it started: its files are a run's
    for path in (workdir / CONFIG, workdir / VOCABULARY,
                 *(workdir / "tensorboard").glob("events.out.tfevents.*")):
      with contextlib.suppress(OSError):
        path.unlink()
  if workdir / LOCK not in keep:
    with contextlib.suppress(OSError):
      (workdir / LOCK).unlink()
  for path in sorted(workdir.rglob("*"), key=lambda p: len(p.parts), reverse=True):
    if path.is_dir() and not path.is_symlink() and path not in keep:
      with contextlib.suppress(OSError):
        path.rmdir()  # fails, and so keeps it, unless it is empty
  if workdir not in keep:
    with contextlib.suppress(OSError):
      workdir.rmdir()
