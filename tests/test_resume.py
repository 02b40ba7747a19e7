"""Train -> SIGKILL -> resume ends bitwise identical to an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Logged values that are functions of the training state (timings are not).
STATE_KEYS = ("loss", "grad_norm", "learning_rate", "normalised_error")


def _cmd(workdir, cache, steps=300):
  return [sys.executable, "-m", "research.main", "--config=configs/icl_regression.py:tiny",
          f"--workdir={workdir}", f"--config.train.num_steps={steps}",
          "--config.train.checkpoint_every=20", "--config.train.keep_checkpoints=2",
          f"--config.train.compile_cache_dir={cache}"]


def _env():
  return dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")


def _metrics(workdir):
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [(r["step"],) + tuple(r[k] for k in STATE_KEYS) for r in rows]


def _final_params(workdir):
  import orbax.checkpoint as ocp
  ckpt = ocp.StandardCheckpointer()
  state = ckpt.restore(workdir / "checkpoints" / "300" / "state")
  return state["params"]


def test_sigkill_then_resume_is_bitwise_identical(tmp_path):
  cache = tmp_path / "cache"
  ref, killed = tmp_path / "ref", tmp_path / "killed"
  subprocess.run(_cmd(ref, cache), cwd=ROOT, env=_env(), check=True, capture_output=True,
                 timeout=300)

  proc = subprocess.Popen(_cmd(killed, cache), cwd=ROOT, env=_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 240
  ckpt_dir = killed / "checkpoints"
  # Kill as soon as the first checkpoint is committed: the run is mid-flight.
  while time.time() < deadline and proc.poll() is None:
    if ckpt_dir.exists() and any(p.name.isdigit() for p in ckpt_dir.iterdir()):
      break
    time.sleep(0.05)
  assert proc.poll() is None, "run finished before it could be killed; lengthen it"
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  survivors = sorted(int(p.name) for p in ckpt_dir.iterdir() if p.name.isdigit())
  assert survivors and survivors[-1] < 300

  subprocess.run(_cmd(killed, cache), cwd=ROOT, env=_env(), check=True, capture_output=True,
                 timeout=300)
  assert _metrics(killed) == _metrics(ref)  # exact equality of every logged float
  for a, b in zip(*(jax_leaves(_final_params(d)) for d in (killed, ref))):
    assert np.array_equal(a, b)
  assert not list(ckpt_dir.glob("*tmp*")), "temporary checkpoint directories left behind"


def jax_leaves(tree):
  import jax
  return [np.asarray(x) for x in jax.tree.leaves(tree)]
