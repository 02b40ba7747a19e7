"""Faults during training lose nothing: SIGKILL, SIGTERM, a corrupt checkpoint.

Every interrupted run, once resumed, must end bitwise identical (logged
losses and final parameters) to an uninterrupted run of the same config.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS = 300
# Logged values that are functions of the training state (timings are not).
STATE_KEYS = ("loss", "grad_norm", "learning_rate", "normalised_error")


def _cmd(workdir, cache):
  return [sys.executable, "-m", "research.main", "--config=configs/icl_regression.py:tiny",
          f"--workdir={workdir}", f"--config.train.num_steps={STEPS}",
          "--config.train.checkpoint_every=20", "--config.train.keep_checkpoints=2",
          f"--config.train.compile_cache_dir={cache}"]


def _env():
  return dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")


def _run(workdir, cache, **kw):
  return subprocess.run(_cmd(workdir, cache), cwd=ROOT, env=_env(), capture_output=True,
                        text=True, timeout=600, **kw)


def _metrics(workdir):
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [(r["step"],) + tuple(r[k] for k in STATE_KEYS) for r in rows]


def _final_params(workdir):
  import jax
  import orbax.checkpoint as ocp
  state = ocp.StandardCheckpointer().restore(workdir / "checkpoints" / str(STEPS) / "state")
  return [np.asarray(x) for x in jax.tree.leaves(state["params"])]


def _assert_identical(workdir, ref):
  # metrics.jsonl holds only values of the training state: byte-for-byte equal.
  assert (workdir / "metrics.jsonl").read_bytes() == (ref / "metrics.jsonl").read_bytes()
  assert len(_metrics(ref)) == STEPS // 20
  for a, b in zip(_final_params(workdir), _final_params(ref)):
    assert np.array_equal(a, b)
  assert not list((workdir / "checkpoints").glob("*tmp*")), "temporary directories left"


def _checkpoints(workdir):
  d = workdir / "checkpoints"
  return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.exists() else []


def _start_and_wait(workdir, cache, *, min_checkpoints=1):
  proc = subprocess.Popen(_cmd(workdir, cache), cwd=ROOT, env=_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None:
    if len(_checkpoints(workdir)) >= min_checkpoints:
      break
    time.sleep(0.02)
  assert proc.poll() is None, "run finished before it could be interrupted; lengthen it"
  return proc


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
  return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache):
  ref = tmp_path_factory.mktemp("ref")
  proc = _run(ref, cache)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return ref


def _kill_resume(tmp_path, cache, reference, delay):
  proc = _start_and_wait(tmp_path, cache)
  time.sleep(delay)  # a random moment: mid-step, mid-save or between saves
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert _checkpoints(tmp_path)[-1] < STEPS
  done = _run(tmp_path, cache)
  assert done.returncode == 0, done.stderr[-3000:]
  _assert_identical(tmp_path, reference)


def test_two_identical_runs_write_identical_metrics(tmp_path, cache, reference):
  proc = _run(tmp_path, cache)
  assert proc.returncode == 0, proc.stderr[-3000:]
  _assert_identical(tmp_path, reference)


def test_sigkill_then_resume_is_bitwise_identical(tmp_path, cache, reference):
  _kill_resume(tmp_path, cache, reference, delay=0.0)


# One random moment in the default suite beside the kill at once above; trials 1 and 2 and the
# 20 of the next test in the slow suite (-m slow).
@pytest.mark.parametrize("trial", [0] + [pytest.param(t, marks=pytest.mark.slow) for t in (1, 2)])
def test_sigkill_at_random_moments(tmp_path, cache, reference, trial):
  _kill_resume(tmp_path, cache, reference, delay=random.Random(trial).uniform(0.0, 0.6))


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(20))
def test_sigkill_at_random_moments_many(tmp_path, cache, reference, trial):
  _kill_resume(tmp_path, cache, reference, delay=random.Random(100 + trial).uniform(0.0, 1.5))


def test_sigterm_checkpoints_and_exits_cleanly(tmp_path, cache, reference):
  proc = _start_and_wait(tmp_path, cache)
  proc.send_signal(signal.SIGTERM)
  _, stderr = proc.communicate(timeout=120)
  assert proc.returncode == 0, stderr[-3000:]
  assert "preempted (SIGTERM) at step" in stderr
  step = int(stderr.split("preempted (SIGTERM) at step ")[1].split(";")[0])
  assert step in _checkpoints(tmp_path) and step < STEPS
  done = _run(tmp_path, cache)
  assert done.returncode == 0, done.stderr[-3000:]
  _assert_identical(tmp_path, reference)


def test_corrupt_latest_checkpoint_falls_back_to_previous(tmp_path, cache, reference):
  work = tmp_path / "run"
  shutil.copytree(reference, work)
  latest = work / "checkpoints" / str(STEPS)
  victim = max((p for p in latest.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
  victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 3])  # truncate
  # The run restarts from the newest readable checkpoint and retrains to the end.
  (work / "summary.json").unlink()
  proc = _run(work, cache)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "unreadable" in proc.stderr and f"checkpoint {STEPS}" in proc.stderr
  assert "resumed from checkpoint at step 280" in proc.stderr
  # The unreadable step is kept aside (left in place, Orbax would skip the new save at
  # that step), and the run's own final checkpoint equals the uninterrupted run's.
  assert len(list((work / "checkpoints.unreadable").glob(f"{STEPS}.*"))) == 1
  assert _checkpoints(work)[-1] == STEPS
  for a, b in zip(_final_params(work), _final_params(reference)):
    assert np.array_equal(a, b)


def test_no_readable_checkpoint_is_a_clear_error(tmp_path, cache, reference):
  work = tmp_path / "run"
  shutil.copytree(reference, work)
  for step in _checkpoints(work):
    for f in (work / "checkpoints" / str(step)).rglob("*"):
      if f.is_file() and f.stat().st_size > 100:
        f.write_bytes(b"")
  proc = _run(work, cache)
  assert proc.returncode == 4, proc.stderr[-3000:]
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and str(work / "checkpoints") in errors[0]


def test_unwritable_workdir_is_a_clear_error(tmp_path, cache):
  """A workdir the user named inside a file is bad input (exit 2), refused before any write."""
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  proc = _run(blocker / "run", cache)
  assert proc.returncode == 2, proc.stderr[-3000:]
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and "file" in errors[0] and "Traceback" not in proc.stderr


def test_disk_full_during_save_is_a_clear_error_and_loses_nothing(tmp_path, cache):
  """A tmpfs too small for the third checkpoint: exit 5, one line, older checkpoints usable."""
  disk = tmp_path / "disk"
  disk.mkdir()
  mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=900k", "tmpfs", str(disk)],
                           capture_output=True)
  if mounted.returncode:
    pytest.skip("cannot mount a small tmpfs here (needs root): " + mounted.stderr.decode()[:200])
  try:
    proc = _run(disk / "run", cache)
    assert proc.returncode == 5, proc.stderr[-3000:]
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0], proc.stderr[-3000:]
    assert proc.stderr.rstrip().splitlines()[-1] == errors[0], proc.stderr[-3000:]
    # No traceback at all: TensorStore's "Event loop is closed" reports from writes still in
    # flight after the failed save (timing dependent, seen in about half the runs) are
    # filtered by research/checkpoint_noise.py.
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    kept = _checkpoints(disk / "run")
    assert kept, "the checkpoints written before the disk filled are gone"
    shutil.copytree(disk / "run", tmp_path / "moved")  # "free some space": move the run
  finally:
    subprocess.run(["umount", str(disk)], check=True)
  proc = _run(tmp_path / "moved", cache)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert f"resumed from checkpoint at step {kept[-1]}" in proc.stderr
  assert not list((tmp_path / "moved" / "checkpoints").glob("*tmp*"))
