"""`reproduce all` runs each NAME in a child process: a SIGTERM or Ctrl-C sent to the parent
alone (a scheduler's kill of the main PID) reaches the child once, which stops as it does on
its own, and the parent waits for it (experiments/child_process.py). Before, SIGTERM killed
the parent (exit 143, no line) and left the child training with no parent, holding the
workdir's lock; Ctrl-C SIGKILLed the child (subprocess.run)."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_ALL = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal gives it
from experiments import child_process, reproduce
from research import cli
if not FORWARD:  # the control, as before: each NAME by subprocess.run, SIGTERM not handled
  import subprocess, types
  child_process.run = lambda cmd: (subprocess.run(cmd, cwd=child_process.ROOT).returncode, None)
  reproduce.signal = types.SimpleNamespace(signal=lambda *a: None, SIGTERM=signal.SIGTERM)
sys.argv = ["reproduce", "all", "--preset=tiny", "--workdir=WORKDIR"]
cli.run_script(reproduce.main)
"""


def _children(workdir: Path) -> list[int]:
  """PIDs of processes whose command line names WORKDIR (the parent's children)."""
  pids = []
  for entry in Path("/proc").iterdir():
    try:
      cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
      continue
    if entry.name.isdigit() and f"--workdir={workdir}" in cmd and " -c " not in f" {cmd}":
      pids.append(int(entry.name))
  return pids


@pytest.mark.parametrize("signum,forward", [
    (signal.SIGTERM, True),
    pytest.param(signal.SIGTERM, False, marks=pytest.mark.slow),
    pytest.param(signal.SIGINT, True, marks=pytest.mark.slow)])
def test_a_signal_to_the_parent_alone_stops_the_running_paper_and_waits_for_it(
    tmp_path, signum, forward):
  workdir = tmp_path / "all"
  script = _ALL.replace("FORWARD", str(forward)).replace("WORKDIR", str(workdir))
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, text=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  lines, training = [], threading.Event()

  def drain():  # the children write to the same pipe: read it to the end, in the background
    for line in proc.stderr:
      lines.append(line)
      if "step " in line and "/" in line:
        training.set()
  reader = threading.Thread(target=drain, daemon=True)
  reader.start()
  try:
    assert training.wait(timeout=300), "".join(lines[-20:])  # the first paper is training
    children = _children(workdir)
    assert children, "".join(lines[-20:])
    proc.send_signal(signum)
    proc.wait(timeout=300)
    time.sleep(1.0)
    left = [pid for pid in children if pid in _children(workdir)]
    if not forward:  # the control: the parent died without a word, its child trains on
      assert proc.returncode == -signal.SIGTERM and left, (proc.returncode, lines[-5:])
      return
    reader.join(timeout=30)
    err = "".join(lines)
    assert not left, err[-2000:]
    last = err.strip().splitlines()[-1]
    if signum == signal.SIGTERM:
      assert proc.returncode == 0, err[-2000:]
      assert "preempted (SIGTERM)" in err and "checkpoint" in err, err[-2000:]  # the child's
      assert last.startswith("preempted (SIGTERM) during garg2022"), last  # the parent's
      assert "rerun the same command to continue" in last
    else:
      assert proc.returncode == 130, err[-2000:]
      assert err.count("error: interrupted") == 1, err[-2000:]  # the child's, not repeated
  finally:
    for pid in _children(workdir):
      os.kill(pid, signal.SIGKILL)
    if proc.poll() is None:
      proc.kill()


def test_a_sigterm_between_two_papers_stops_before_the_next(tmp_path, monkeypatch):
  """No child running (the parent between two NAMEs): Python's default had ended it with exit
  143 and no line. Control: the papers before the signal ran, and their results stand."""
  from experiments import reproduce
  from research import preemption
  ran = []

  def one_paper(name, *args):
    ran.append(name)
    os.kill(os.getpid(), signal.SIGTERM)  # arrives while no child runs
    return {"status": "done, 0 s", "summary": None}
  monkeypatch.setattr(reproduce, "_reproduce_in_a_child", one_paper)
  previous = signal.getsignal(signal.SIGTERM)
  with pytest.raises(preemption.Preempted, match=r"preempted \(SIGTERM\) before raventos2023; "
                     "the papers after it were not run: rerun the same command to continue"):
    reproduce.reproduce_all("tiny", tmp_path)
  assert ran == ["garg2022"] and signal.getsignal(signal.SIGTERM) is previous
