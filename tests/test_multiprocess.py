"""Two processes x 4 CPU devices (jax.distributed on localhost, gloo collectives)
train one 8-device mesh exactly like one process x 8 devices, and the pair's
checkpoints restore in a single process. The same code path as a TPU pod."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("loss", "grad_norm", "normalised_error")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _cmd(workdir, *extra):
  return [sys.executable, "-m", "research.main", "--config=configs/icl_regression.py:tiny",
          f"--workdir={workdir}", "--config.mesh.data=2", "--config.mesh.fsdp=2",
          "--config.mesh.tensor=2", "--config.train.compile_cache_dir=", *extra]


def _env(devices):
  return dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")


def _losses(workdir):
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  return np.array([[r["step"]] + [r[k] for k in KEYS] for r in rows])


def test_two_processes_match_one_process_and_checkpoints_move(tmp_path):
  single, pair = tmp_path / "single", tmp_path / "pair"
  port = _free_port()
  procs = [subprocess.Popen(
      _cmd(pair, f"--coordinator_address=localhost:{port}", "--num_processes=2",
           f"--process_id={i}"), cwd=ROOT, env=_env(4), stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE, text=True) for i in range(2)]
  ref = subprocess.run(_cmd(single), cwd=ROOT, env=_env(8), capture_output=True, text=True,
                       timeout=600)
  for p in procs:
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
  assert ref.returncode == 0, ref.stderr[-3000:]
  a, b = _losses(pair), _losses(single)
  assert a.shape == b.shape and a.shape[0] >= 2
  np.testing.assert_allclose(a, b, rtol=1e-5)
  # The pair's checkpoint (step 40) resumes in one process with 8 devices.
  more = subprocess.run(_cmd(pair, "--config.train.num_steps=60"), cwd=ROOT, env=_env(8),
                        capture_output=True, text=True, timeout=600)
  assert more.returncode == 0, more.stderr[-3000:]
  assert "resumed from checkpoint at step 40" in more.stderr
  assert _losses(pair)[-1, 0] == 60


BAD_ADDRESSES = [  # (address, what the line says); each segfaulted (rc 139) or hung before
    ("localhost:notaport", "the port 'notaport' is not an integer"),
    (":1234", "the host is empty"),
    ("localhost:99999", "the port 99999 is not in 1-65535"),
    ("localhost:0", "the port 0 is not in 1-65535"),
    ("localhost:", "the port '' is not an integer"),
    ("::1:1234", "an IPv6 host goes in brackets"),
    ("local host:1234", "it has whitespace"),
]


@pytest.mark.parametrize("process_id", [0, 1])
@pytest.mark.parametrize("address,needle", BAD_ADDRESSES)
def test_a_bad_coordinator_address_is_one_line_before_jax_starts(address, needle, process_id,
                                                                 tmp_path):
  proc = subprocess.run(
      _cmd(tmp_path / "run", f"--coordinator_address={address}", "--num_processes=2",
           f"--process_id={process_id}"), cwd=ROOT, env=_env(4), capture_output=True,
      text=True, timeout=60)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
  assert f"--coordinator_address={address} is not HOST:PORT ({needle}" in proc.stderr
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("process_id", [0, 1])
def test_a_run_that_does_not_assemble_ends_in_one_line(process_id, tmp_path):
  """Process 1 with no coordinator listening, or process 0 whose peer never starts, waited
  jax's 300 s and then aborted in C++ (exit 134, a stack trace). Now --coordinator_timeout
  ends it: exit 2, one line, no workdir. (The control, the pair that does assemble, is the
  first test of this file.)"""
  proc = subprocess.run(
      _cmd(tmp_path / "run", f"--coordinator_address=localhost:{_free_port()}",
           "--num_processes=2", f"--process_id={process_id}", "--coordinator_timeout=2"),
      cwd=ROOT, env=_env(4), capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(
      "error: the multi-process run did not assemble within --coordinator_timeout=2 s "
      f"(process {process_id} of 2 at --coordinator_address=localhost:"), proc.stderr
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra", [["--coordinator_timeout=0", "--num_processes=2",
                                    "--process_id=1", "--coordinator_address=localhost:1234"],
                                   ["--coordinator_timeout=30"]])
def test_a_coordinator_timeout_that_cannot_apply_is_refused(extra, tmp_path):
  proc = subprocess.run(_cmd(tmp_path / "run", *extra), cwd=ROOT, env=_env(4),
                        capture_output=True, text=True, timeout=60)
  assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
  assert "--coordinator_timeout=" in proc.stderr and "seconds >= 1" in proc.stderr
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra", [["--collective_timeout=0"], ["--collective_timeout=-5"], []])
def test_a_collective_timeout_that_cannot_apply_is_refused(extra, tmp_path):
  """Under a second in a pair; any value in a one-process run. (Control: 30 in a pair is
  taken: tests/test_multiprocess_lost_peer.py.)"""
  pair = ["--num_processes=2", "--process_id=1", "--coordinator_address=localhost:1234"]
  argv = [*extra, *pair] if extra else ["--collective_timeout=30"]
  proc = subprocess.run(_cmd(tmp_path / "run", *argv), cwd=ROOT, env=_env(4),
                        capture_output=True, text=True, timeout=60)
  assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
  assert proc.stderr.startswith("error: --collective_timeout=") and \
      "seconds >= 1, for a multi-process run" in proc.stderr
  assert not (tmp_path / "run").exists()


def test_a_multi_process_run_sets_xlas_collective_timeout_unless_xla_flags_does():
  """The flag reaches XLA as --xla_cpu_collective_timeout_seconds (without it, 1 trial of 4
  of test_multiprocess_lost_peer.py's kill and every SIGSTOP waited for jax's abort); a value
  already in XLA_FLAGS is kept, and both given is refused (one would be ignored). In a child: importing
  research.main defines its absl flags, which another test module's import may hold."""
  code = """if True:
    from research.errors import InputError
    from research.main import with_collective_timeout as timeout
    assert timeout("", 60, False) == "--xla_cpu_collective_timeout_seconds=60"
    assert timeout("--xla_force_host_platform_device_count=4", 30, True) == (
        "--xla_force_host_platform_device_count=4 --xla_cpu_collective_timeout_seconds=30")
    mine = "--xla_cpu_collective_timeout_seconds=900"
    assert timeout(mine, 60, False) == mine
    try:
      timeout(mine, 30, True)
    except InputError as e:
      assert "both set the collective timeout; drop one" in str(e)
    else:
      raise AssertionError("both given was taken")
    print("ok")"""
  proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                        timeout=60)
  assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_valid_coordinator_addresses_pass_the_check():
  """The control: HOST:PORT, an IPv4 or a bracketed IPv6 host, ports 1 and 65535."""
  code = ("from research.main import _check_processes as c\n"
          "for a in ('localhost:1234', '10.0.0.1:65535', '[::1]:1', 'host-0.cluster:8476'):\n"
          "  c(2, 1, a)\n"
          "print('ok')")
  proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                        timeout=60)
  assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr[-2000:]



# research.main's checks before jax.distributed, run in one process (research.main defines
# process-wide absl flags, which the test session's own modules define too).
_MAIN_CHECKS = r"""
import json, os, socket, sys, tempfile
import jax
from absl import flags
from research import main as m, train
from research.errors import InputError

def refused(fn, *args):
  try:
    fn(*args)
  except InputError as e:
    return str(e)
  return None

out = {}
m._check_processes(1, 0, None)  # --num_processes=1: a single-process run, nothing to join
m._check_processes(None, None, None)
out["process_id=2 of 2"] = refused(m._check_processes, 2, 2, "localhost:1234")
out["process_id=1 of 2"] = refused(m._check_processes, 2, 1, "localhost:1234")
out["[]:1234"] = refused(m._check_address, "[]:1234")
with socket.socket() as holder:  # process 0's port, held: an IPv6 address names it the same way
  holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
  holder.bind(("localhost", 0))
  holder.listen(1)
  port = holder.getsockname()[1]
  said = refused(m._check_port_free, f"[::1]:{port}")
  out["held [::1] port"] = said and said.replace(str(port), "PORT")
seen = {}
jax.distributed.initialize = lambda **kw: seen.update(kw)
m._join(7, coordinator_address="localhost:1", num_processes=2, process_id=1)
out["jax's own timeout"] = seen["initialization_timeout"]

class Joined(Exception):
  pass
def join(timeout, **where):
  raise Joined(f"joined within {timeout} s, {where}")
m._join = join
def run_main(*argv):
  flags.FLAGS.unparse_flags()
  flags.FLAGS(["research.main", "--config=configs/icl_regression.py:tiny",
               f"--workdir={tempfile.mkdtemp()}/run", *argv])
  try:
    m.main(["research.main"])
  except Exception as e:
    return f"{type(e).__name__}: {e}"
os.environ["TPU_WORKER_HOSTNAMES"] = "host-0,host-1"  # a TPU pod's runtime fills in the rest
out["pod runtime"] = run_main("--coordinator_timeout=5")
del os.environ["TPU_WORKER_HOSTNAMES"]
def fails(error):
  def train_and_evaluate(config, workdir):
    raise error
  return train_and_evaluate
train.train_and_evaluate = fails(FileNotFoundError(2, "No such file or directory", "data.csv"))
out["a missing file"] = run_main()
train.train_and_evaluate = fails(OSError(28, "No space left on device"))
out["a full disk"] = run_main()
print(json.dumps(out))
"""


def test_research_mains_checks_of_its_process_flags_and_errors():
  """--num_processes=1 is a single-process run; --process_id is in [0, N); '[]' is no host;
  process 0's held port is found for an IPv6 address too; jax's own join limit is ours + 60 s
  (its C++ abort must never be what the user sees); on a TPU pod's runtime (no --num_processes)
  --coordinator_timeout applies; a file missing during training stays FileNotFoundError
  (exit 2: the user's data), any other OSError becomes RunIOError (exit 5)."""
  env = dict(_env(1), JAX_PLATFORMS="cpu")
  env.pop("TPU_WORKER_HOSTNAMES", None)
  env.pop("JAX_COORDINATOR_ADDRESS", None)
  proc = subprocess.run([sys.executable, "-c", _MAIN_CHECKS], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert str(out["process_id=2 of 2"]).startswith(
      "--process_id=2 must be in [0, 2) with --num_processes=2")
  assert out["process_id=1 of 2"] is None
  assert "(the host is empty)" in str(out["[]:1234"])
  assert out["held [::1] port"] == (
      "process 0 cannot listen on port PORT of --coordinator_address=[::1]:PORT: another program "
      "holds it (an earlier run still going, or another process also given --process_id=0?); "
      "give every process the same free port")
  assert out["jax's own timeout"] == 67
  assert out["pod runtime"] == "Joined: joined within 5 s, {}"
  assert out["a missing file"] == "FileNotFoundError: [Errno 2] No such file or directory: 'data.csv'"
  assert out["a full disk"] == ("RunIOError: OSError: [Errno 28] No space left on device; "
                                "previous checkpoints are left untouched")

def _process_0_waiting_for_its_peer(tmp_path):
  """Process 0 of a pair whose process 1 never starts, once its coordinator listens (its
  client connecting or waiting)."""
  port = _free_port()
  proc = subprocess.Popen(
      _cmd(tmp_path / "run", f"--coordinator_address=localhost:{port}", "--num_processes=2",
           "--process_id=0", "--coordinator_timeout=30"), cwd=ROOT, env=_env(4),
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  deadline = time.monotonic() + 60
  while True:
    assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-2000:]
    with socket.socket() as s:
      if s.connect_ex(("localhost", port)) == 0:
        break
    time.sleep(0.2)
  return proc


def _stderr_within_15_s(proc, sent: str) -> str:
  try:
    return proc.communicate(timeout=15)[1]
  except subprocess.TimeoutExpired:
    proc.kill()
    pytest.fail(f"still waiting 15 s after {sent}: {proc.communicate()[1][-2000:]}")


def test_ctrl_c_while_waiting_for_the_other_processes_ends_at_once(tmp_path):
  """The main thread sat inside jax's connect, which never returns to Python: Ctrl-C did
  nothing until --coordinator_timeout (default 300 s), then the run reported that it did
  not assemble (exit 2). Now: exit 130 and `error: interrupted` at once, no workdir."""
  proc = _process_0_waiting_for_its_peer(tmp_path)
  time.sleep(1)
  sent = time.monotonic()
  proc.send_signal(signal.SIGINT)
  err = _stderr_within_15_s(proc, "Ctrl-C")
  assert proc.returncode == 130 and err == "error: interrupted\n", err[-2000:]
  assert time.monotonic() - sent < 10
  assert not (tmp_path / "run").exists()


def test_sigterm_while_waiting_for_the_other_processes_ends_at_once(tmp_path):
  """A SIGTERM before the run's handler only marks the run preempted (cli.run(trains=True)),
  and a process waiting for its peers waited out --coordinator_timeout (300 s) with it. Now:
  one line, exit 0, nothing written. (The Ctrl-C test above is its control path.)"""
  proc = _process_0_waiting_for_its_peer(tmp_path)
  proc.send_signal(signal.SIGTERM)
  err = _stderr_within_15_s(proc, "SIGTERM")
  assert proc.returncode == 0 and err.endswith(
      "preempted (SIGTERM) while the processes assembled: nothing was written; rerun every "
      "process's command to start\n"), err[-2000:]
  assert not (tmp_path / "run").exists()


def test_process_0_on_a_port_another_program_holds_is_one_line(tmp_path):
  """jax's coordinator could not bind: a traceback and exit 1, or a segfault (exit 139),
  at random. The control (a free port) is the first test of this file."""
  with socket.socket() as holder:
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("localhost", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    proc = subprocess.run(
        _cmd(tmp_path / "run", f"--coordinator_address=localhost:{port}", "--num_processes=2",
             "--process_id=0", "--coordinator_timeout=5"), cwd=ROOT, env=_env(4),
        capture_output=True, text=True, timeout=60)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert proc.stderr == (f"error: process 0 cannot listen on port {port} of --coordinator_address="
                         f"localhost:{port}: another program holds it (an earlier run still "
                         "going, or another process also given --process_id=0?); give every "
                         "process the same free port\n"), proc.stderr[-2000:]
  assert not (tmp_path / "run").exists()


def test_a_pair_too_large_for_the_host_is_refused_by_both_before_its_state(tmp_path):
  """On CPU the pair gathers its compiled step's needs and checks them against the memory
  its processes share (each alone is already too large here; the summing is
  tests/test_host_memory.py's): both exit 2 with the same one line, and the refused start
  leaves no workdir (process 1 used to make it first, so process 0 kept it as a user's folder
  and left .lock and checkpoints/ in it). Before, a multi-process run was not checked and the
  kernel killed it once it touched the memory. (The control, a pair that fits, is the first
  test of this file: it is checked the same way and trains.)"""
  port = _free_port()
  procs = [subprocess.Popen(
      _cmd(tmp_path / "run", f"--coordinator_address=localhost:{port}", "--num_processes=2",
           f"--process_id={i}", "--config.train.batch_size=268435456"), cwd=ROOT, env=_env(4),
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(2)]
  lines = []
  for p in procs:
    _, err = p.communicate(timeout=300)
    assert p.returncode == 2, err[-3000:]
    assert "Traceback" not in err
    lines.append([l for l in err.splitlines() if l.startswith("error:")])
  assert len(lines[0]) == 1 and lines[0] == lines[1], lines
  assert "of processes 0, 1 (of 2)" in lines[0][0]  # the machine's memory or a cgroup limit
  assert not (tmp_path / "run").exists()
