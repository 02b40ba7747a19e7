"""One K-step loop (research/loop.py) for solo runs and vmapped ensembles: both read call i's
metrics after dispatching call i+1, and both stop on SIGTERM with a checkpoint a rerun
resumes from exactly; SIGTERM ends a sweep instead of failing its current run."""
import json
import os
import signal

import jax
import numpy as np
import pytest

from research import checkpoint as ckpt_lib
from research import loop, preemption, sweep

SEEDS = [{"seed": 0}, {"seed": 1}]


def _config():
  from configs import icl_regression
  c = icl_regression.get_config("tiny")
  c.mesh.data = 1
  c.train.compile_cache_dir = ""
  c.train.num_steps, c.train.steps_per_call, c.train.log_every = 20, 5, 5
  c.train.checkpoint_every = 0  # only the final save (and a preemption's)
  c.train.eval_every = 0
  c.optim.decay_steps = 20  # = num_steps (the same schedule), so a rerun may ask for fewer steps
  return c


@pytest.fixture
def traced(monkeypatch):
  """Records each loop.run's Step kind and its dispatches and metric reads, in order;
  `sigterm_at[0] = (r, n)` sends this process SIGTERM right after the n-th dispatch of
  the r-th loop.run (both from 1)."""
  runs, sigterm_at = [], [None]
  real = loop.run

  def run(kind, state, **kwargs):
    events = []
    runs.append((type(kind).__name__, events))
    make, check = kind.call, kind.check

    def call(k):
      fn = make(k)

      def dispatch(s):
        out = fn(s)
        events.append("dispatch")
        if sigterm_at[0] == (len(runs), events.count("dispatch")):
          os.kill(os.getpid(), signal.SIGTERM)  # the Guard's handler only sets its flag
        return out
      return dispatch

    def read(first, end, m):
      events.append(f"read {end}")
      return check(first, end, m)

    kind.call, kind.check = call, read
    return real(kind, state, **kwargs)

  monkeypatch.setattr(loop, "run", run)
  return runs, sigterm_at


# 4 calls of 5 steps: call i's metrics are read only once call i+1 is dispatched (the last
# call's before the final checkpoint), so the device never waits for the host's logging.
DEFERRED = ["dispatch", "dispatch", "read 5", "dispatch", "read 10", "dispatch", "read 15",
            "read 20"]


def _final_params(run_dir, step=20):
  import orbax.checkpoint as ocp
  state = ocp.StandardCheckpointer().restore(run_dir / "checkpoints" / str(step) / "state")
  return [np.asarray(x) for x in jax.tree.leaves(state["params"])]


def test_an_ensemble_runs_the_shared_loop_and_sigterm_stops_its_sweep_resumably(tmp_path,
                                                                               traced):
  runs, sigterm_at = traced
  ref = sweep.run_sweep(_config(), SEEDS, tmp_path / "ref", ensemble="on",
                        devices=jax.devices()[:1])
  assert runs == [("_EnsembleStep", DEFERRED)]  # it no longer reads each call at once
  sigterm_at[0] = (2, 1)
  with pytest.raises(preemption.Preempted, match="preempted .SIGTERM. at step 5; checkpoint"):
    sweep.run_sweep(_config(), SEEDS, tmp_path / "cut", ensemble="on", devices=jax.devices()[:1])
  # Not a failure of the members: the sweep stops, records no row, and keeps the stacked
  # state of every member at the step it stopped.
  assert not (tmp_path / "cut" / "results.jsonl").exists()
  (ens_dir,) = (tmp_path / "cut" / "ensemble").iterdir()
  assert ckpt_lib.Checkpointer(ens_dir / "checkpoints", max_to_keep=1).all_steps() == [5]
  members = sorted((tmp_path / "cut" / "runs").iterdir())
  assert len(members) == 2 and not any((m / "summary.json").exists() for m in members)
  short = _config()
  short.train.num_steps = 3  # below the stacked checkpoint: refused, as for a solo run
  shortened = sweep.run_sweep(short, SEEDS, tmp_path / "cut", ensemble="on",
                              devices=jax.devices()[:1])
  assert all("at step 5, past its config's train.num_steps=3" in r["error"]
             for r in shortened.rows.values()), shortened.rows
  assert not any((m / "summary.json").exists() for m in members)
  cut = sweep.run_sweep(_config(), SEEDS, tmp_path / "cut", ensemble="on",
                        devices=jax.devices()[:1])
  assert [r["status"] for r in cut.rows.values()] == ["done", "done"]
  for name in ref.rows:  # the resumed members equal the uninterrupted ones, bit for bit
    a, b = tmp_path / "ref" / "runs" / name, tmp_path / "cut" / "runs" / name
    assert all(np.array_equal(x, y) for x, y in zip(_final_params(a), _final_params(b)))
    # metrics.jsonl holds only values of the training state: byte-for-byte equal.
    assert (a / "metrics.jsonl").read_bytes() == (b / "metrics.jsonl").read_bytes()


def test_a_solo_run_runs_the_shared_loop_and_sigterm_stops_a_sequential_sweep(tmp_path, traced):
  runs, sigterm_at = traced
  seeds = SEEDS + [{"seed": 2}]
  sigterm_at[0] = (2, 1)
  with pytest.raises(preemption.Preempted, match="at step 5"):
    sweep.run_sweep(_config(), seeds, tmp_path, ensemble="off", devices=jax.devices()[:1])
  assert runs[0] == ("_SoloStep", DEFERRED)
  # The second run stopped at its checkpoint and was not marked failed; the third never
  # started: SIGTERM ends the sweep (a rerun continues it), not just the current run.
  assert [kind for kind, _ in runs] == ["_SoloStep", "_SoloStep"]
  rows = sweep.Results(tmp_path / "results.jsonl").rows
  assert [r["status"] for r in rows.values()] == ["done"]
  second = tmp_path / "runs" / sweep.run_name(1, seeds[1])
  assert ckpt_lib.Checkpointer(second / "checkpoints", max_to_keep=1).all_steps() == [5]
  assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(
      sweep.run_name(i, seeds[i]) for i in range(2))


def test_the_loops_own_error_survives_a_close_that_fails_too(monkeypatch):
  """A full disk fails the loop's write (its error names the path) and then the
  checkpointer's close; the close's bare OSError used to replace the loop's error."""
  from research.errors import RunIOError
  closed = []

  class Closing:
    def __init__(self, name, error=None):
      self.name, self.error = name, error

    def close(self):
      closed.append(self.name)
      if self.error:
        raise self.error

  def loop_fails(*args):
    raise RunIOError("writing /run/metrics.jsonl failed: No space left on device")

  monkeypatch.setattr(loop, "_loop", loop_fails)
  disk_full = OSError(28, "No space left on device")
  with pytest.raises(RunIOError, match="metrics.jsonl"):
    loop.run(None, None, start=0, train=None, ckpt=Closing("ckpt", disk_full),
             writers=[Closing("writer")], guard=None, progress=None)
  assert closed == ["ckpt", "writer"]
  monkeypatch.setattr(loop, "_loop", lambda *a: loop.Outcome(None, 0, None))
  with pytest.raises(OSError, match="No space"):  # control: with no error of its own, close's
    loop.run(None, None, start=0, train=None, ckpt=Closing("ckpt", disk_full),
             writers=[Closing("writer")], guard=None, progress=None)

  def preempted(*args):
    raise preemption.Preempted("preempted (SIGTERM) at step 5; checkpoint saved in ...")

  monkeypatch.setattr(loop, "_loop", preempted)  # "checkpoint saved" must not survive a failed
  with pytest.raises(OSError, match="No space"):  # write: exit 5, not 0
    loop.run(None, None, start=0, train=None, ckpt=Closing("ckpt", disk_full),
             writers=[Closing("writer")], guard=None, progress=None)


def test_the_rows_of_a_checkpoints_steps_reach_the_disk_before_it(tmp_path, monkeypatch):
  """An OS crash or power loss keeps what was fsynced: a checkpoint that survives one while
  metrics.jsonl's last rows (only in the page cache) do not is resumed with a silent gap in
  the curve, since a resume cannot recompute rows at or below its step."""
  from research import metrics as metrics_lib
  from research import train
  from research.workdir import read_jsonl
  c = _config()
  c.train.checkpoint_every = 10
  events, fsynced = [], []
  real_sync, real_save, real_fsync = (metrics_lib.MetricsWriter.sync, ckpt_lib.Checkpointer.save,
                                      os.fsync)

  def sync(self):
    real_sync(self)
    events.append(("synced through", max(r["step"] for r in read_jsonl(self.path))))

  def save(self, step, *args, **kwargs):
    events.append(("save", step))
    return real_save(self, step, *args, **kwargs)

  monkeypatch.setattr(metrics_lib.MetricsWriter, "sync", sync)
  monkeypatch.setattr(ckpt_lib.Checkpointer, "save", save)
  monkeypatch.setattr(os, "fsync", lambda fd: fsynced.append(os.readlink(f"/proc/self/fd/{fd}"))
                      or real_fsync(fd))
  train.train_and_evaluate(c, str(tmp_path / "run"), devices=jax.devices()[:1])
  saves = [i for i, e in enumerate(events) if e[0] == "save"]
  assert [events[i][1] for i in saves] == [10, 20]
  assert all(i > 0 and events[i - 1] == ("synced through", events[i][1]) for i in saves), events
  assert str(tmp_path / "run" / "metrics.jsonl") in fsynced
  assert str(tmp_path / "run") in fsynced  # the new file's directory entry, once


@pytest.mark.parametrize("errno_name,fails", [("EINVAL", False), ("EIO", True), ("ENOSPC", True)])
def test_a_filesystem_that_cannot_sync_runs_on_but_a_failed_sync_is_exit_5(
    errno_name, fails, tmp_path, monkeypatch):
  """Some FUSE mounts answer fsync with EINVAL: the run goes on (their own guarantees hold).
  EIO or ENOSPC from fsync means written rows were lost: exit 5, as a failed write."""
  import errno
  from research import metrics as metrics_lib
  from research.errors import RunIOError
  w = metrics_lib.MetricsWriter(str(tmp_path), resume_step=0)
  w.write(5, {"loss": 1.0})

  def fsync(fd):
    raise OSError(getattr(errno, errno_name), os.strerror(getattr(errno, errno_name)))

  monkeypatch.setattr(os, "fsync", fsync)
  try:
    if fails:
      with pytest.raises(RunIOError, match="metrics.jsonl"):
        w.sync()
    else:
      w.sync()
  finally:
    monkeypatch.undo()  # TensorBoard's own close syncs too
    w.close()


def test_a_file_made_after_the_first_sync_gets_its_directory_entry_synced(tmp_path, monkeypatch):
  """perf.jsonl's first row can come after the first checkpoint (a window inside the first
  call has no rates): its directory entry must reach the disk too, not only metrics.jsonl's."""
  from research import metrics as metrics_lib
  synced, real = [], os.fsync
  monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}"))
                      or real(fd))
  w = metrics_lib.MetricsWriter(str(tmp_path), resume_step=0)
  w.write(5, {"loss": 1.0})
  synced.clear()
  w.sync()
  assert synced == [str(tmp_path / "metrics.jsonl"), str(tmp_path)]
  w.write(10, {"steps_per_s": 3.0}, perf=True)
  synced.clear()
  w.sync()
  assert sorted(synced) == sorted([str(tmp_path / "metrics.jsonl"),
                                   str(tmp_path / "perf.jsonl"), str(tmp_path)])
  synced.clear()
  w.sync()  # nothing new: the files only
  assert str(tmp_path) not in synced
  monkeypatch.undo()
  w.close()


def test_a_metrics_file_removed_mid_run_is_said_when_it_is_recreated(tmp_path, monkeypatch):
  """metrics.jsonl deleted while the run went on came back with the later rows alone, and
  nothing said the earlier ones were gone."""
  from research import metrics as metrics_lib
  warned = []
  monkeypatch.setattr(metrics_lib.logging, "warning", lambda msg, *a: warned.append(msg % a))
  w = metrics_lib.MetricsWriter(str(tmp_path), resume_step=0)
  w.write(5, {"loss": 1.0})
  w.write(10, {"loss": 0.9})
  assert not [m for m in warned if "removed while the run" in m]  # control: nothing removed
  (tmp_path / "metrics.jsonl").unlink()
  w.write(15, {"loss": 0.8})
  assert [m for m in warned if "metrics.jsonl was removed while the run was going: its rows "
          "before step 15 are gone" in m]
  w.close()


def test_a_logged_row_is_its_calls_mean_and_the_last_step_is_logged_off_cadence(tmp_path):
  """Two lines a mutation audit moved unseen: a training row is the mean over its jit
  call's steps (not the call's last step), and the final step is logged even when
  num_steps is no multiple of log_every. Reference: the same 6 steps one per call."""
  from research import train
  from research.workdir import read_jsonl

  def losses(k, log_every, d):
    c = _config()
    c.train.num_steps, c.train.steps_per_call, c.train.log_every = 6, k, log_every
    c.optim.warmup_steps, c.optim.decay_steps = 2, 6
    train.train_and_evaluate(c, str(tmp_path / d), devices=jax.devices()[:1])
    return {r["step"]: r["loss"] for r in read_jsonl(tmp_path / d / "metrics.jsonl") if "loss" in r}

  each = losses(1, 1, "each")
  assert sorted(each) == [1, 2, 3, 4, 5, 6]
  pairs = losses(2, 4, "pairs")
  assert sorted(pairs) == [4, 6]
  for end in (4, 6):
    np.testing.assert_allclose(pairs[end], np.mean([each[end - 1], each[end]]), rtol=1e-5)


@pytest.mark.parametrize("ensemble", ["on", "off"])
def test_an_extension_stopped_on_the_way_is_finished_by_the_rerun(tmp_path, traced, ensemble):
  """A finished sweep extended (num_steps 20 -> 30) and stopped by SIGTERM at step 25: its
  rows said done at step 20 until the new ones, and the rerun, finding config.json at 30,
  skipped every run as done (exit 0, runs left at step 25 with step 20's probes). Now the
  stopped extension has no done row and the rerun ends it, equal to an extension never
  stopped. Control: the same extension uninterrupted (ref)."""
  runs, sigterm_at = traced
  longer = _config()
  longer.train.num_steps = 30
  for name in ("ref", "cut"):
    sweep.run_sweep(_config(), SEEDS, tmp_path / name, ensemble=ensemble,
                    devices=jax.devices()[:1])
  sweep.run_sweep(longer, SEEDS, tmp_path / "ref", ensemble=ensemble, devices=jax.devices()[:1])
  table = tmp_path / "cut" / "results.jsonl"
  before = table.read_bytes()
  sigterm_at[0] = (len(runs) + 1, 1)
  with pytest.raises(preemption.Preempted, match="at step 25"):
    sweep.run_sweep(longer, SEEDS, tmp_path / "cut", ensemble=ensemble,
                    devices=jax.devices()[:1])
  kept = sweep.Results(table).rows
  assert [r["status"] for r in kept.values()] == ["training"] * 2, kept  # not done: trained on
  table.write_bytes(before)  # as the version before this one left it: done rows at step 20
  rows = sweep.run_sweep(longer, SEEDS, tmp_path / "cut", ensemble=ensemble,
                         devices=jax.devices()[:1]).rows
  assert [r["status"] for r in rows.values()] == ["done", "done"]
  for name in rows:
    a, b = tmp_path / "ref" / "runs" / name, tmp_path / "cut" / "runs" / name
    assert all(np.array_equal(x, y) for x, y in zip(_final_params(a, 30), _final_params(b, 30)))
    assert (a / "metrics.jsonl").read_bytes() == (b / "metrics.jsonl").read_bytes()


def test_a_moved_point_stopped_in_its_extension_keeps_its_run(tmp_path, traced):
  """Points [seed 1, seed 2] trained, seed 0 put in front, the sweep extended and stopped in
  seed 1's extension: a version that deleted the rows of runs trained on lost the way from
  seed 1 and 2 to their runs (000_seed=1, 001_seed=2, found through their rows' overrides),
  and the rerun trained them again from step 0 as 001_seed=1 and 002_seed=2. Now their rows
  stay (status training) and the rerun continues them."""
  runs, sigterm_at = traced
  longer = _config()
  longer.train.num_steps = 30
  sweep.run_sweep(_config(), SEEDS[1:] + [{"seed": 2}], tmp_path, ensemble="off",
                  devices=jax.devices()[:1])
  points = SEEDS + [{"seed": 2}]
  sigterm_at[0] = (len(runs) + 2, 1)  # the new seed 0 trains first; then seed 1's extension
  with pytest.raises(preemption.Preempted, match="at step 25"):
    sweep.run_sweep(longer, points, tmp_path, ensemble="off", devices=jax.devices()[:1])
  rows = sweep.run_sweep(longer, points, tmp_path, ensemble="off", devices=jax.devices()[:1]).rows
  assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
      "000_seed=0", "000_seed=1", "001_seed=2"]
  assert all(r["status"] == "done" for r in rows.values()) and len(rows) == 3
  for name in ("000_seed=1", "001_seed=2"):  # trained on from step 20, not again from 0
    steps = [json.loads(l)["step"] for l in (tmp_path / "runs" / name / "metrics.jsonl")
             .read_text().splitlines()]
    assert steps == [5, 10, 15, 20, 25, 30], (name, steps)
