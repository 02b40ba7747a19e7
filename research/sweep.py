r"""Sweeps: one command runs a list of override dicts and keeps one results table.

  python -m research.sweep --config=configs/icl_regression.py:cpu --sweep=scale \
      --workdir=runs/scale [--config.a.b=v ...] [--ensemble=auto|on|off]

Sweeps are data beside the config: `get_sweep(name)` in the config file returns
a list of override dicts (see `product` and `zipped` for building them; a
`get_sweep(name, *, preset)` is also given the --config preset). Each run gets
`DIR/runs/NAME/`; `DIR/results.jsonl` holds one row per finished or failed run
(overrides, parameters, FLOPs, tokens, wall time, final metrics,
probe paths: where the run was when it trained, for a reader; code finds a run as
DIR/runs/NAME, `Results.run_dir`), rewritten atomically so a completed row is never lost, and
`DIR/results.csv` the same rows flat (`overrides.model.width`, `final.loss`; research/results.py
merges the runs' own files the same way). Rerunning
the command skips finished runs and resumes unfinished ones from their
checkpoints; a failing run is recorded with its error and the sweep goes on. Points added
to the list (anywhere in it) train alone on the rerun: a point keeps the run it has
(`Results.names`), and the shared settings are checked against every run it keeps.
"""
from __future__ import annotations

from research import preemption

if __name__ == "__main__":  # first: a SIGTERM during the imports below preempts the run
  preemption.hold_sigterm()

import contextlib  # noqa: E402 -- after the handler above
import hashlib
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Iterable

from absl import flags, logging

from research import cli, hardware, output_paths
from research import workdir as workdir_lib
from research import sweep_identity, sweep_rundirs, workdir_layout, workdir_lock, workdir_vocabulary
from research.errors import InputError, RunIOError
# The results table and its rows (research/sweep_results.py); run_name, Results,
# failed_runs and check_finished are this module's too, as its readers call them.
from research.sweep_results import (Results, _failed_row, _row, _same_point,  # noqa: F401
                                    check_finished, failed_runs, run_name)


def _define_flags() -> None:
  """Command-line flags, defined only when this module is the program: experiments and
  tests import it as a library, and absl flags are process-global."""
  global _SWEEP, _WORKDIR, _ENSEMBLE
  cli.define_config_flag()
  _SWEEP = flags.DEFINE_string("sweep", None, "Name passed to the config file's get_sweep().")
  _WORKDIR = flags.DEFINE_string("workdir", None, "Sweep directory.")
  _ENSEMBLE = flags.DEFINE_enum("ensemble", "auto", ["auto", "on", "off"],
                                "Train value-only sweeps as one vmapped program.")


def product(**axes: Iterable) -> list[dict]:
  """product(**{'model.width': [64, 128], 'seed': [0, 1]}) -> 4 override dicts."""
  keys = list(axes)
  return [dict(zip(keys, values)) for values in itertools.product(*axes.values())]


def zipped(**axes: Iterable) -> list[dict]:
  """zipped(**{'model.width': [64, 128], 'model.num_layers': [2, 4]}) -> 2 dicts."""
  keys = list(axes)
  return [dict(zip(keys, values)) for values in zip(*axes.values())]


def validate_points(configs: list, overrides: list[dict], num_devices: int) -> None:
  """config_check.validate of each point's config; a refusal names the point and what it
  sets (the line named only the fields, e.g. a width the base config set and a head count
  from get_sweep)."""
  from research import config_check
  for i, (cfg, point) in enumerate(zip(configs, overrides)):
    try:
      config_check.validate(cfg, num_devices)
    except InputError as e:
      if not point:
        raise
      sets = ", ".join(f"{k}={v!r}" for k, v in point.items())
      raise InputError(f"sweep point {i} of {len(configs)} ({sets}): {e}") from None


def apply_overrides(config, overrides: dict):
  """A copy of `config` with a sweep point's dotted overrides (research/cli.py's setter)."""
  return cli.apply_overrides(config, overrides, where="sweep override")


# Fields that change neither the stacked state nor its trajectory so far (bookkeeping, how
# long to train, when to evaluate, the probes run after training): an ensemble rerun with
# other values of them resumes from its checkpoint, as a solo run does. (Not the learning
# rate: the stacked state carries each member's own, set at its start.)
_RESUMABLE_FIELDS = [f for f in workdir_lib.RESUMABLE if f.startswith(("train.", "probe"))]


def _ensemble_key(config, names: list[str], overrides: list[dict]) -> str:
  """The stacked checkpoint belongs to exactly this member set and base config: a rerun
  with other members (or another model, task or optimiser) must not resume from it."""
  cfg = json.loads(config.to_json_best_effort(sort_keys=True))
  for field in _RESUMABLE_FIELDS:
    *parents, leaf = field.split(".")
    node = cfg
    for p in parents:
      node = node.get(p, {})
    node.pop(leaf, None)
  return hashlib.sha256(cli.point_key([cfg, names, overrides]).encode()).hexdigest()[:12]


def run_sweep(config, overrides: list[dict], workdir: str | Path, *, ensemble: str = "auto",
              devices=None, identity: dict | None = None, grid=None) -> Results:
  """Runs every override dict not already done; returns the results table. `identity`
  (the command's config file and --sweep name) is kept in DIR/sweep.json, and a sweep of
  another identity is refused there (sweep_identity.check; `grid(name)`: the points of another
  --sweep name of the same config file, None where it has none)."""
  import jax

  cli.refuse_repeated_points(overrides, "the sweep")  # an experiment's too, not only --sweep's
  # Every point is valid before the sweep directory is written or anything trains.
  configs = [apply_overrides(config, o) for o in overrides]
  validate_points(configs, overrides, len(devices or jax.devices()))
  # Points laid out for another slice than this one (TPU only): one warning per slice planned.
  for planned in dict.fromkeys(c.get("topology", "") for c in configs):
    if warning := hardware.planned_topology_warning(planned, devices or jax.devices()):
      logging.warning("sweep: %s", warning)
  workdir = Path(workdir)
  made = not workdir.exists()
  workdir.mkdir(parents=True, exist_ok=True)
  # Two sweeps in one directory would each rewrite results.jsonl from their own rows.
  lock = (workdir_lock.Lock(workdir, "a sweep") if jax.process_index() == 0
          else contextlib.nullcontext())
  with lock:  # before the ensemble check: a busy workdir is reported as busy, whatever its points
    try:
      if identity is not None:
        identity = sweep_identity.check(workdir, identity, overrides, grid)
      if ensemble == "on":
        _check_ensemble_on(config, overrides, workdir)
    except InputError:
      if made:  # a refusal leaves no directory behind
        workdir_layout.remove_if_unstarted(workdir)
      raise
    if identity is not None and jax.process_index() == 0:
      workdir_lib.write_json(workdir / workdir_lib.SWEEP_RECORD, identity)
    return _run_sweep(config, overrides, workdir, ensemble, devices)


def _check_ensemble_on(config, overrides: list[dict], workdir: Path) -> None:
  """--ensemble=on for points left to train that cannot share one program, read only: the
  same "finished" rule as _run_sweep (a summary.json of the same config, row or not)."""
  from research import ensemble as ens_lib
  results, todo = Results(workdir / workdir_lib.RESULTS), []
  for name, o in zip(results.names(overrides), overrides):
    run_dir = results.run_dir(name)
    finished = (run_dir / workdir_lib.SUMMARY).is_file() and (
        results.done(name) or workdir_lib.finished_summary(run_dir, apply_overrides(config, o))
        is not None)
    if not finished:
      todo.append(o)
  ok, why = ens_lib.can_ensemble(config, todo)  # the reason alone: the one fix is named here
  if todo and not ok:
    raise InputError(f"--ensemble=on but {why}; pass --ensemble=auto to run these points one "
                     "by one")


def _run_sweep(config, overrides: list[dict], workdir: Path, ensemble: str, devices) -> Results:
  from research import ensemble as ens_lib, train
  import jax

  results = Results(workdir / workdir_lib.RESULTS)
  names = results.names(overrides)
  for i, name in enumerate(names):
    if name != run_name(i, overrides[i]):
      logging.info("sweep: point %d keeps its run %s (its index moved: points were added "
                   "or removed before it)", i, name)
  sweep_rundirs.log_former_points(workdir, names)
  configs = [apply_overrides(config, o) for o in overrides]  # validated by run_sweep
  sweep_rundirs.check_configs([results.run_dir(name) for name in names])
  lost = set()  # a finished run whose record was deleted, moved or damaged since: run again
  for name in names:
    run_dir = results.run_dir(name)
    why = (sweep_rundirs.lost_record(run_dir)
           if results.done(name) or (run_dir / workdir_lib.SUMMARY).exists() else None)
    if why:
      logging.warning("sweep: %s %s: running it again (from its final checkpoint where it "
                      "has one)", name, why)
      results.train_again(name)
      lost.add(name)
  for name, cfg in zip(names, configs):  # a finished run a longer num_steps extends, as
    run_dir = results.run_dir(name)           # research.main's rerun extends it
    extended = sweep_rundirs.extends(run_dir, cfg) if results.done(name) else None
    if extended:
      logging.info("sweep: %s continues (%s)", name, "; ".join(extended))
      results.train_again(name)
      lost.add(name)  # trained on, not recorded again from its summary
  # and no run directory holds another config's run
  sweep_rundirs.check_same_runs([(results.run_dir(n), results.done(n), c)
                                 for n, c in zip(names, configs)])
  for name, cfg in zip(names, configs):
    # A row of a run extended since and stopped before its new end (by a version that kept the
    # row on disk until the new one): it is not done. The rerun skipped it as done, leaving it
    # at the step it stopped with its shorter run's probes, exit 0.
    if results.done(name) and workdir_lib.finished_summary(results.run_dir(name), cfg) is None:
      logging.info("sweep: %s continues (stopped before train.num_steps=%d)", name,
                   cfg.train.num_steps)
      results.train_again(name)
      lost.add(name)
  if lost and jax.process_index() == 0:  # after the checks: a refused rerun changes no row
    results.save()
  for i, (name, cfg) in enumerate(zip(names, configs)):
    # The one "finished and same config" rule (research/workdir.py) decides, not the row:
    # a sweep killed between a run's summary.json and its row records the row from the
    # summary instead of restoring the run to re-probe it.
    run_dir = results.run_dir(name)
    if not results.done(name) and name not in lost:
      summary = workdir_lib.finished_summary(run_dir, cfg)
      if summary is not None:
        results.put(_row(name, overrides[i], summary, summary.get("train_wall_s", 0.0), run_dir))
  todo = [i for i, n in enumerate(names) if not results.done(n)]
  ok, why = ens_lib.can_ensemble(config, [overrides[i] for i in todo])  # "on": checked first
  logging.info("sweep: %d runs, %d already done", len(names), len(names) - len(todo))
  if len(todo) > 1 and ensemble == "auto" and not ok:  # said: a trial took it for an ensemble
    logging.info("sweep: the %d runs to do train one by one, not as one vmapped ensemble: %s",
                 len(todo), why)
  t0 = time.perf_counter()
  peers = [results.run_dir(n) for n in names]  # a new point's data is checked against theirs
  started = (_started_ensemble(workdir, config, names, overrides, todo, results)
             if todo and ok else None)
  if todo and ok and ensemble != "off" and (len(todo) > 1 or started):
    group = started or todo  # a started ensemble's members: some may be done since
    dirs = [results.run_dir(names[i]) for i in group]
    members = [overrides[i] for i in group]
    key = _ensemble_key(config, [names[i] for i in group], members)
    if started:
      logging.info("sweep: continuing the ensemble of %d in %s (%d of its runs already done)",
                   len(group), workdir_lib.ENSEMBLES + "/" + key, len(group) - len(todo))
    elif jax.process_index() == 0:
      _record_members(workdir / workdir_lib.ENSEMBLES / key, [names[i] for i in group], members)
    try:
      summaries = ens_lib.train_ensemble(config, members, workdir / workdir_lib.ENSEMBLES / key,
                                         dirs, devices=devices,
                                         finished=[i not in todo for i in group],
                                         peers=peers)
    except _ENDS_THE_SWEEP:
      raise
    except Exception as e:  # noqa: BLE001 -- recorded per member; a rerun resumes it
      logging.error("ensemble of %d failed: %s", len(group), e)
      # the ensemble was refused, not each point: say the way out
      if isinstance(e, InputError) and not isinstance(e, workdir_vocabulary.OtherDataError):
        e = InputError(f"{e}; the points alone may fit: --ensemble=off trains them one at a time")
      for i, d in zip(group, dirs):
        if i in todo:
          results.put(_failed_row(names[i], overrides[i], d, e))
    else:
      wall = time.perf_counter() - t0
      for i, s, d in zip(group, summaries, dirs):
        if i in todo:
          results.put(_row(names[i], overrides[i], s, wall, d))
    _log_progress(results, names, 0.0, 0)
    return results
  for count, i in enumerate(todo, 1):
    run_dir = results.run_dir(names[i])
    start = time.perf_counter()
    try:
      summary = train.train_and_evaluate(configs[i], str(run_dir), devices=devices,
                                         peers=peers)
      results.put(_row(names[i], overrides[i], summary, time.perf_counter() - start, run_dir))
    except _ENDS_THE_SWEEP:
      raise
    except Exception as e:  # noqa: BLE001 -- one bad point must not end the sweep
      logging.error("run %s failed: %s", names[i], e)
      results.put(_failed_row(names[i], overrides[i], run_dir, e))
    elapsed = time.perf_counter() - t0
    _log_progress(results, names, elapsed / count * (len(todo) - count), len(todo) - count)
  return results


# Not one point's failure: SIGTERM stops the whole sweep (a rerun continues it), and a full
# or failing disk would fail every later point too.
_ENDS_THE_SWEEP = (preemption.Preempted, RunIOError)


_MEMBERS = "members.json"  # in ensemble/KEY: the runs it was started for, in order


def _record_members(ensemble_dir: Path, runs: list[str], members: list[dict]) -> None:
  ensemble_dir.mkdir(parents=True, exist_ok=True)
  workdir_lib.write_json(ensemble_dir / _MEMBERS, {"runs": runs, "overrides": members},
                         default=str)


def _started_ensemble(workdir: Path, config, names: list[str], overrides: list[dict],
                      todo: list[int], results: Results) -> list[int] | None:
  """The points of an ensemble this sweep trained to the end and stopped while probing (some
  members done since), to continue it: probe the others from its stacked state. The rerun
  trained them from step 0 as a new ensemble (its key names the runs to do), and their
  numbers moved in the last digits. Only when nothing would train and nothing of a finished
  member would be rewritten: the ensemble's checkpoint at num_steps, every member still to do
  holding its files from it (_probed_by), and every done member summarised by it. Otherwise
  None: the points left train as before."""
  from research import checkpoint as ckpt_lib
  found = []
  for record in (workdir / workdir_lib.ENSEMBLES).glob(f"*/{_MEMBERS}"):
    data = workdir_lib.read_json(record) or {}
    runs, members = data.get("runs"), data.get("overrides")
    if not (isinstance(runs, list) and all(isinstance(r, str) for r in runs)
            and len(set(runs)) == len(runs) and isinstance(members, list)
            and len(members) == len(runs) and set(runs) <= set(names)
            and {names[i] for i in todo} <= set(runs)):
      continue
    group = [names.index(r) for r in runs]
    if not all(_same_point(members[k], overrides[i]) for k, i in enumerate(group)):
      continue
    if record.parent.name != _ensemble_key(config, runs, [overrides[i] for i in group]):
      continue  # another config (its key)
    steps = ckpt_lib.complete_steps(record.parent / workdir_lib.CHECKPOINTS) or []
    end = config.train.num_steps
    if end not in steps:
      continue
    if all(_probed_by(results.run_dir(names[i]), len(runs), end, done=i not in todo)
           for i in group):
      found.append(group)
  return found[0] if len(found) == 1 else None  # two would be a guess


def _probed_by(run_dir: Path, size: int, end: int, done: bool) -> bool:
  """A member's folder holds what an ensemble of `size` trained to `end` left in it: done,
  its summary from that ensemble; to do, its config.json and either metrics rows up to `end`
  or the summary of its freeze (a deleted folder: neither; a solo attempt since: fewer rows)."""
  summary = workdir_lib.read_json(run_dir / workdir_lib.SUMMARY) or {}
  if done:
    return summary.get("ensemble_size") == size
  if not (run_dir / workdir_lib.CONFIG).is_file():
    return False
  rows = workdir_lib.read_jsonl(run_dir / workdir_lib.METRICS)
  return (max((r.get("step", 0) for r in rows), default=0) == end
          or summary.get("frozen") is True and summary.get("ensemble_size") == size)


def _log_progress(results: Results, names: list[str], eta_s: float, left: int) -> None:
  status = [results.rows.get(n, {}).get("status") for n in names]
  logging.info("sweep progress: %d/%d runs finished (%d done, %d failed), %d to go, ETA %.0fs",
               len(names) - left, len(names), status.count("done"), status.count("failed"),
               left, eta_s)


def main(argv) -> int:
  if len(argv) > 1:
    raise InputError(f"unexpected arguments {argv[1:]}; config overrides look like "
                     "--config.model.width=128")
  cli.require({"--config=FILE[:PRESET]": flags.FLAGS.config, "--sweep=NAME": _SWEEP.value,
               "--workdir=DIR": _WORKDIR.value})
  config = cli.config_from_flags()
  overrides = cli.load_sweep(flags.FLAGS.config, _SWEEP.value, seeds=True)
  cli.refuse_replaced(cli._OVERRIDES, overrides, "--config.", f"--sweep={_SWEEP.value}")
  workdir = output_paths.check_workdir(_WORKDIR.value)
  workdir_layout.check_kind(workdir, "sweep")
  try:
    identity = {"config": Path(cli.split_spec(flags.FLAGS.config)[0]).name, "sweep": _SWEEP.value}
    results = run_sweep(config, overrides, workdir, ensemble=_ENSEMBLE.value, identity=identity,
                        grid=lambda name: sweep_identity.grid(flags.FLAGS.config, name))
  except preemption.Preempted as e:  # a rerun continues the sweep
    print(str(e), file=sys.stderr, flush=True)
    return 0
  check_finished(results, results.names(overrides), workdir)
  return 0


if __name__ == "__main__":
  _define_flags()
  cli.run(main, trains=True)
