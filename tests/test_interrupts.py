"""Ctrl-C in any command: one line and exit 130; a second one while libraries' exit hooks
run quits at once, and an in-process caller keeps its own SIGINT handler (research/cli.py)."""
import subprocess
import sys
from pathlib import Path

import pytest

from research import cli

ROOT = Path(__file__).resolve().parents[1]


_CTRL_C_TWICE = """
import atexit, sys, time
from research import cli
def shutdown():  # a library's exit hook that takes a while (Orbax finishing a save)
  print("hook", flush=True)
  time.sleep(30)
atexit.register(shutdown)
def main(argv):
  raise KeyboardInterrupt
sys.argv = ["script"]
cli.run_script(main)
"""


@pytest.mark.parametrize("quick_exit", [True, False])
def test_a_second_ctrl_c_during_exit_hooks_quits_quietly(quick_exit):
  """The first Ctrl-C prints one line; a second one while exit hooks run used to print the
  hook's KeyboardInterrupt traceback under it. The control (quick_exit False: the handler
  removed) shows the traceback this prevents."""
  import signal
  import time
  code = _CTRL_C_TWICE if quick_exit else _CTRL_C_TWICE.replace(
      "cli.run_script(main)", "cli.signal.signal = lambda *a: None\ncli.run_script(main)")
  # SIGINT as a terminal gives it: a pytest-xdist worker ignores SIGINT, and a child would
  # inherit that (Python then installs no KeyboardInterrupt handler, nor does cli).
  proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
  assert proc.stdout.readline() == "hook\n"  # the first line was printed; hooks are running
  time.sleep(0.2)
  t = time.monotonic()
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate(timeout=60)
  if quick_exit:
    assert proc.returncode == 130 and time.monotonic() - t < 20
    assert err.strip().splitlines() == ["error: interrupted"], err
  else:
    assert "Traceback" in err and "KeyboardInterrupt" in err, err


def test_ctrl_c_in_process_leaves_the_callers_sigint_handler(monkeypatch):
  """A notebook that calls a command and catches its SystemExit keeps its own Ctrl-C: the
  quick exit is installed only when the process really exits (by an exit hook)."""
  import atexit
  import signal
  before = signal.getsignal(signal.SIGINT)
  hooks = []
  monkeypatch.setattr(atexit, "register", lambda *a: hooks.append(a))

  def main(argv):
    raise KeyboardInterrupt

  monkeypatch.setattr(sys, "argv", ["script"])
  with pytest.raises(SystemExit) as e:
    cli.run_script(main)
  assert e.value.code == 130 and signal.getsignal(signal.SIGINT) is before
  assert len(hooks) == 1 and hooks[0][:2] == (signal.signal, signal.SIGINT)
