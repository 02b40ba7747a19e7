"""What a sweep's rerun checks in each run directory before it trains (research/sweep.py): a
finished run whose record is lost since (run again), one a longer train.num_steps extends
(trained on, as research.main's rerun is), and directories that hold another config's run
(refused, every one named), and the runs of points the sweep no longer has (named)."""
from __future__ import annotations

import json
from pathlib import Path

from absl import logging

from research import workdir as workdir_lib
from research.errors import InputError, listed


def lost_record(run_dir: Path) -> str | None:
  """What is gone of a finished run's record: its summary.json (deleted, moved, torn) or a
  probe file it names. research.results then refused the run ('rerun that run') while the
  sweep's rerun skipped it as done."""
  summary = workdir_lib.read_json(run_dir / workdir_lib.SUMMARY)
  if summary is None:
    return f"has no readable {run_dir / workdir_lib.SUMMARY} (deleted, moved or torn?)"
  probes = summary.get("probes")
  for stem in (probes if isinstance(probes, dict) else ()):  # where the run is now
    path = workdir_lib.probe_file(run_dir, stem)
    if workdir_lib.read_json(path) is None:
      return f"has no readable probe file {path} (deleted or torn?)"
  return None


def check_configs(run_dirs: list[Path]) -> None:
  """A run directory whose config.json is damaged is refused with the sweep's fix (it named
  research.main's: a new --workdir, --config.init_from)."""
  for run_dir in run_dirs:
    workdir_lib.saved_config(run_dir, fix=f"put the run's config.json back, or delete "
                             f"{run_dir} for the sweep to train that point again")


def extends(run_dir: Path, cfg) -> list[str] | None:
  """The differences of a finished run's config from `cfg` when they only extend it: a longer
  train.num_steps, with other fields a finished run may take (workdir.NO_STEP_NEEDED: eval
  cadence, probes, mesh, ...). The sweep refused that (use another --workdir, or delete the
  run) where research.main's rerun trains on."""
  saved = workdir_lib.saved_config(run_dir)  # read once, compared twice
  steps = (saved or {}).get("train", {}).get("num_steps")
  if not isinstance(steps, int) or not cfg.train.num_steps > steps:
    return None
  new = json.loads(workdir_lib.config_json(cfg))
  if workdir_lib.saved_differences(saved, new, workdir_lib.NO_STEP_NEEDED):
    return None
  return workdir_lib.saved_differences(saved, new, workdir_lib.BOOKKEEPING)


def check_same_runs(runs: list[tuple[Path, bool, object]]) -> None:
  """Runs are found again by name, and a name holds only the sweep's own overrides:
  a rerun with other --config values (or another preset) in the same directory would
  reuse or resume runs trained under the old ones. Refuse that, naming the fields and every
  run directory it concerns (one at a time, a shorter num_steps was refused once per run); a
  run that is not finished may change what a solo resume may (workdir.RESUMABLE). `runs`:
  each point's (run directory, finished?, config)."""
  refused = []
  for run_dir, done, cfg in runs:
    diffs = workdir_lib.config_differences(
        run_dir, cfg, workdir_lib.BOOKKEEPING if done else workdir_lib.RESUMABLE)
    if diffs:
      refused.append((run_dir, done, diffs))
  if not refused:
    return
  run_dir, done, diffs = refused[0]
  what = (f"{run_dir} holds a {'finished' if done else 'started'} run of another config "
          f"({'; '.join(diffs[:5])}{'; ...' if len(diffs) > 5 else ''})")
  if len(refused) == 1:
    raise InputError(f"{what}; use another --workdir for these settings, or delete that run "
                     "directory to retrain it")
  others = [d.name for d, _, _ in refused[1:]]
  shown = listed(others)
  raise InputError(f"{what}, and so {'does' if len(others) == 1 else 'do'} {len(others)} more "
                   "of this sweep's run directories "
                   f"({shown}); use another --workdir for these settings, or delete those "
                   f"{len(refused)} run directories to retrain them")


def log_former_points(workdir: Path, names: list[str]) -> list[str]:
  """Warns of the run directories in WORKDIR/runs that no point of this sweep has (points
  removed from get_sweep since they trained): research.results and the figures still table
  them, which a new user's trial found said nowhere. Returns their names."""
  runs = Path(workdir) / workdir_lib.RUNS
  mine = set(names)
  former = sorted(d.name for d in runs.iterdir() if d.is_dir() and d.name not in mine) \
      if runs.is_dir() else []
  if former:
    one = len(former) == 1
    it = "it" if one else "them"
    logging.warning("sweep: %d run director%s in %s %s no point of this sweep (%s): "
                    "research.results still tables %s; move %s out to leave %s out",
                    len(former), "y" if one else "ies", runs, "is" if one else "are",
                    listed(former), it, it, it)
  return former
