"""A Ctrl-C after a command's work is done, while the libraries' exit hooks run (JAX's
clean_up: about a second after the last line), ends the process at once with the command's
own exit code and no traceback (research/cli.py _quiet_ctrl_c_after)."""
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_CTRL_C_AT_EXIT = """
import atexit, signal, sys, time
# SIGINT as a terminal gives it (a pytest-xdist worker's children inherit SIGINT ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)
from research import cli
def clean_up():  # a library's exit hook that takes a while, registered at its import
  print("hook", flush=True)
  time.sleep(30)
atexit.register(clean_up)
def main(argv):
  print("result", flush=True)
  return CODE
sys.argv = ["script"]
RUN
"""


@pytest.mark.parametrize("runner", ["run_script", "run"])
@pytest.mark.parametrize("code", [0, 6])
@pytest.mark.parametrize("quiet", [True, False])
def test_a_ctrl_c_during_exit_hooks_after_the_work_is_quiet(runner, code, quiet):
  """Control (quiet False: the hook's handler not installed): Python prints "Exception
  ignored in atexit callback" and the KeyboardInterrupt traceback under the result."""
  run = "cli.run_script(main)" if runner == "run_script" else "cli.run(main)"
  script = _CTRL_C_AT_EXIT.replace("CODE", str(code)).replace("RUN", run)
  if not quiet:
    script = script.replace(run, f"cli._quiet_ctrl_c_after = lambda code: None\n{run}")
  proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  assert proc.stdout.readline() == "result\n"
  assert proc.stdout.readline() == "hook\n"  # the work is done; the exit hooks are running
  time.sleep(0.2)
  t = time.monotonic()
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate(timeout=60)
  if quiet:
    assert proc.returncode == code and time.monotonic() - t < 20, (proc.returncode, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
  else:
    assert "Traceback" in err and "KeyboardInterrupt" in err, err


def test_an_in_process_caller_keeps_its_ctrl_c_after_a_command_returns(monkeypatch):
  """The handler goes in only by an exit hook: a notebook that ran a command keeps Python's
  own Ctrl-C (KeyboardInterrupt) afterwards."""
  from research import cli
  monkeypatch.setattr(sys, "argv", ["script"])
  with pytest.raises(SystemExit) as e:
    cli.run_script(lambda argv: 0)
  assert e.value.code == 0
  assert signal.getsignal(signal.SIGINT) is not None
  assert getattr(signal.getsignal(signal.SIGINT), "__name__", "") != "quit_now"
