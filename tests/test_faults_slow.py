"""Issue 16's faults, reproduced as a user meets them (`python -m research.main` in a
subprocess) and shown fixed. Slow: `python -m pytest -q -m slow tests/test_faults_slow.py`.

Each test names the fault it injects; tests/test_faults.py has fast in-process versions.
"""
import csv
import errno
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

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu")


def _cmd(workdir, cache, steps=40, *extra, module="research.main", config="icl_regression.py:tiny"):
  return [sys.executable, "-m", module, f"--config=configs/{config}", f"--workdir={workdir}",
          f"--config.train.num_steps={steps}", "--config.train.checkpoint_every=20",
          "--config.train.keep_checkpoints=2", f"--config.train.compile_cache_dir={cache}",
          *extra]


def _run(cmd, timeout=600):
  return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def _start(cmd):
  return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, proc, timeout=300):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return
    assert proc.poll() is None, proc.stderr.read()[-3000:]
    time.sleep(0.01)
  raise AssertionError("timed out")


def _errors(stderr):
  return [l for l in stderr.splitlines() if l.startswith("error:")]


def _checkpoints(wd):
  d = wd / "checkpoints"
  return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.exists() else []


def _snapshot(directory):
  return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
          if p.is_file()}


def _steps(wd, name="metrics.jsonl"):
  return [json.loads(l)["step"] for l in (wd / name).read_text().splitlines()]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
  return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, cache):
  wd = tmp_path_factory.mktemp("finished") / "run"
  proc = _run(_cmd(wd, cache))
  assert proc.returncode == 0, proc.stderr[-3000:]
  return wd


def test_changed_config_is_refused_with_the_workdir_untouched(finished, cache, tmp_path):
  wd = shutil.copytree(finished, tmp_path / "run")
  before = _snapshot(wd)
  proc = _run(_cmd(wd, cache, 40, "--config.task.function=quadratic", "--config.seed=7"))
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert len(_errors(proc.stderr)) == 1 and "Traceback" not in proc.stderr
  assert "task.function: 'linear' -> 'quadratic'" in _errors(proc.stderr)[0]
  assert "--config.init_from=" in _errors(proc.stderr)[0]
  assert _snapshot(wd) == before


def test_checkpoints_without_config_json_are_refused_and_not_adopted(finished, cache, tmp_path):
  """Without a config.json to compare, the run is refused (exit 2) before the checkpoint is
  read, and config.json is not written from the refused config (it used to be reached only
  by the checkpoint's shape check, which another seed or task would pass)."""
  wd = shutil.copytree(finished, tmp_path / "run")
  (wd / "config.json").unlink()
  proc = _run(_cmd(wd, cache, 60, "--config.model.width=64"))
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert "has checkpoints but no config.json" in _errors(proc.stderr)[0]
  assert not (wd / "config.json").exists()


def test_two_concurrent_runs_one_is_refused(cache, tmp_path):
  wd = tmp_path / "run"
  first = _start(_cmd(wd, cache, 400))
  _wait_for(lambda: (wd / ".lock").exists() and (wd / ".lock").read_text(), first)
  second = _run(_cmd(wd, cache, 400))
  assert second.returncode == 2, second.stderr[-3000:]
  assert f"in use by a training run of PID {first.pid}" in _errors(second.stderr)[0]
  _, stderr = first.communicate(timeout=600)
  assert first.returncode == 0, stderr[-3000:]
  steps = _steps(wd)
  assert steps == sorted(set(steps)) and steps[-1] == 400


def _fill(directory: Path) -> None:
  """Fills the disk; a disk the run has already filled by itself is the same fault."""
  try:
    with open(directory / "filler", "wb") as f:
      while True:
        f.write(b"\0" * 65536)
        f.flush()
  except OSError as e:
    if e.errno != errno.ENOSPC:
      raise


@pytest.mark.parametrize("trial", range(10))
def test_disk_full_at_a_random_moment_exits_5_then_resumes(cache, tmp_path, trial):
  disk = tmp_path / "disk"
  disk.mkdir()
  mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)],
                           capture_output=True)
  if mounted.returncode:
    pytest.skip("cannot mount a small tmpfs (needs root): " + mounted.stderr.decode()[:200])
  wd = disk / "run"
  try:
    proc = _start(_cmd(wd, cache, 2000))
    _wait_for(lambda: _checkpoints(wd), proc)
    time.sleep(random.Random(trial).uniform(0.0, 1.0))
    _fill(disk)
    filled = time.time()
    try:
      _, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
      proc.kill()
      raise AssertionError("the run hung on a full disk")
    assert time.time() - filled < 30
    assert proc.returncode == 5, stderr[-3000:]
    errors = _errors(stderr)
    assert len(errors) == 1 and "No space left on device" in errors[0], stderr[-3000:]
    for block in stderr.split("Traceback (most recent call last):")[1:]:
      assert "/research/" not in block, block  # only the C++ threads' known chatter
    # Free the space and rerun: it resumes and finishes. The filler may be absent (the run
    # filled the disk first), so the tmpfs also grows.
    (disk / "filler").unlink(missing_ok=True)
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
    done = _run(_cmd(wd, cache, 2000))
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((wd / "summary.json").read_text())["final_step"] == 2000
    steps = _steps(wd)
    assert steps == sorted(set(steps)) and steps[-1] == 2000
  finally:
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_torn_last_lines_are_dropped_on_resume(cache, tmp_path, finished):
  wd = tmp_path / "run"
  proc = _start(_cmd(wd, cache, 40))
  _wait_for(lambda: 20 in _checkpoints(wd), proc)
  proc.kill()
  proc.wait()
  for name in ("metrics.jsonl", "perf.jsonl"):
    with (wd / name).open("a") as f:
      f.write('{"step": 40, "loss": 0.')
  done = _run(_cmd(wd, cache, 40))
  assert done.returncode == 0, done.stderr[-3000:]
  assert "torn last line" in done.stderr
  assert (wd / "metrics.jsonl").read_bytes() == (finished / "metrics.jsonl").read_bytes()


def test_flipped_byte_in_a_checkpoint_falls_back_with_a_warning(finished, cache, tmp_path):
  wd = shutil.copytree(finished, tmp_path / "run")
  step_dir = wd / "checkpoints" / "40"
  victim = max((p for p in (step_dir / "state").rglob("*") if p.is_file()),
               key=lambda p: p.stat().st_size)
  data = bytearray(victim.read_bytes())
  data[len(data) // 2] ^= 0x01
  victim.write_bytes(bytes(data))
  (wd / "summary.json").unlink()
  proc = _run(_cmd(wd, cache, 40))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "checkpoint 40" in proc.stderr and "checksum mismatch" in proc.stderr
  assert "resumed from checkpoint at step 20" in proc.stderr
  import orbax.checkpoint as ocp
  a, b = (ocp.StandardCheckpointer().restore(w / "checkpoints" / "40" / "state")
          for w in (wd, finished))
  import jax
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert np.array_equal(x, y)


def test_two_unreadable_checkpoints_in_a_row_are_quiet(finished, cache, tmp_path):
  wd = shutil.copytree(finished, tmp_path / "run")
  for step in (20, 40):
    for f in (wd / "checkpoints" / str(step)).rglob("*"):
      if f.is_file() and f.stat().st_size > 100:
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
  proc = _run(_cmd(wd, cache, 40))
  assert proc.returncode == 4, proc.stderr[-3000:]
  assert "Event loop is closed" not in proc.stderr and len(_errors(proc.stderr)) == 1
  assert "Metadata file does not exist" not in proc.stderr


def test_predict_works_after_the_csv_moved(cache, tmp_path):
  rng = np.random.default_rng(0)
  data = tmp_path / "reviews.csv"
  with data.open("w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["text", "label"])
    for _ in range(120):
      lab = str(rng.choice(["neg", "pos"]))
      w.writerow([f"the plot was {rng.choice({'neg': ['bad', 'dull'], 'pos': ['good', 'fine']}[lab])}",
                  lab])
  wd = tmp_path / "run"
  proc = _run(_cmd(wd, cache, 20, f"--config.task.path={data}",
                   config="text_classification.py:tiny"))
  assert proc.returncode == 0, proc.stderr[-3000:]
  predict = [sys.executable, "-m", "research.predict", f"--workdir={wd}",
             "--text=the plot was good", "--text=a dull plot"]
  before = _run(predict)
  assert before.returncode == 0, before.stderr[-3000:]
  data.rename(tmp_path / "elsewhere.csv")
  after = _run(predict)
  assert after.returncode == 0, after.stderr[-3000:]
  assert after.stdout == before.stdout


def _consistent(wd, keep=2):
  ckpts = _checkpoints(wd)
  assert len(ckpts) <= keep, ckpts
  assert not list((wd / "checkpoints").glob("*tmp*"))
  for d in ("probes", "figures"):
    assert not list((wd / d).glob(".*tmp*")) if (wd / d).exists() else True
  summary = wd / "summary.json"
  if summary.exists():
    json.loads(summary.read_text())


def _sigterm(cmd, wd, when):
  proc = _start(cmd)
  _wait_for(lambda: when(wd), proc)
  proc.send_signal(signal.SIGTERM)
  _, stderr = proc.communicate(timeout=300)
  return proc.returncode, stderr


PHASES = {
    # The lock names the process once the handler is installed: start-up, before training.
    "start-up": lambda wd: (wd / ".lock").exists() and (wd / ".lock").read_text(),
    "mid-loop": lambda wd: 20 in _checkpoints(wd),
    # The final step's save has begun (its temporary directory exists) or just committed.
    "final save": lambda wd: (wd / "checkpoints").exists() and any(
        p.name.startswith("400") for p in (wd / "checkpoints").iterdir()),
    # The final checkpoint is committed and the summary not yet written: the probes.
    "probes": lambda wd: 400 in _checkpoints(wd) and not (wd / "summary.json").exists(),
}


@pytest.mark.parametrize("phase", list(PHASES))
def test_sigterm_in_each_phase_ends_consistent_and_resumes(cache, tmp_path, phase):
  wd = tmp_path / "run"
  cmd = _cmd(wd, cache, 400, "--config.probe.num_prompts=20480", "--config.probe.batch_size=640")
  code, stderr = _sigterm(cmd, wd, PHASES[phase])
  assert code == 0, stderr[-3000:]
  assert "Traceback" not in stderr, stderr[-3000:]
  lines = [l for l in stderr.splitlines() if l.startswith("preempted (SIGTERM)")]
  assert len(lines) == 1 or (phase == "probes" and (wd / "summary.json").exists()), stderr[-3000:]
  _consistent(wd)
  done = _run(cmd)
  assert done.returncode == 0, done.stderr[-3000:]
  _consistent(wd)
  assert json.loads((wd / "summary.json").read_text())["final_step"] == 400
  steps = _steps(wd)
  assert steps == sorted(set(steps)) and steps[-1] == 400
