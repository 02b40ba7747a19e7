"""research/aot_compile.py: a plan's compile that Ctrl-C and SIGTERM stop at once, with one
line and the README's exit codes (130, 143), instead of after the compile (Ctrl-C, 58-90 s
on 14m for v5p:4x4x4) or with libtpu's page of C++ stack trace (SIGTERM)."""
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aot_fixtures import needs_libtpu
from research import aot_compile

ROOT = Path(__file__).resolve().parents[1]


def _start(code: str) -> subprocess.Popen:
  # SIGINT as a terminal gives it: a pytest-xdist worker ignores SIGINT and its children
  # inherit that (a command started so keeps ignoring it, as it should). Set in the child's
  # code: a preexec_fn forks a process JAX's threads run in (a deadlock warning).
  code = "import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n" + code
  return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen, signum: int) -> tuple[float, str]:
  """(seconds from the signal to the exit, stderr)."""
  t = time.monotonic()
  proc.send_signal(signum)
  _, err = proc.communicate(timeout=120)
  return time.monotonic() - t, err


# A compile that blocks its thread for a minute: the mechanism without libtpu.
_SLOW_COMPILE = """
import sys, time
from research import aot_compile, cli
class Lowered:
  def compile(self):
    time.sleep(60)
def main(argv):
  aot_compile.stop_quickly("nothing was written")
  print("compiling", flush=True)
  aot_compile.compiled(Lowered(), "tiny for v5e:2x2")
sys.argv = ["script"]
cli.run_script(main)
"""


_LADDER_KEPT = "the cells planned before it are in --plan_cache=C and a rerun compiles the rest"


@pytest.mark.parametrize("signum,code,line,kept", [
    (signal.SIGTERM, 143, "error: stopped (SIGTERM) during the compile of tiny for v5e:2x2; "
                          "nothing was written", "nothing was written"),
    (signal.SIGINT, 130, "error: interrupted (Ctrl-C) during the compile of tiny for v5e:2x2; "
                         "nothing was written", "nothing was written"),
    # --ladder's: Ctrl-C printed only "error: interrupted", SIGTERM this (trial66b, defect 5)
    (signal.SIGINT, 130, "error: interrupted (Ctrl-C) during the compile of tiny for v5e:2x2; "
                         + _LADDER_KEPT, _LADDER_KEPT),
    (signal.SIGTERM, 143, "error: stopped (SIGTERM) during the compile of tiny for v5e:2x2; "
                          + _LADDER_KEPT, _LADDER_KEPT)])
def test_a_signal_during_a_compile_quits_at_once_with_one_line(signum, code, line, kept):
  proc = _start(_SLOW_COMPILE.replace("nothing was written", kept))
  assert proc.stdout.readline() == "compiling\n"
  time.sleep(0.5)
  took, err = _stop(proc, signum)
  assert proc.returncode == code and err.splitlines() == [line], (proc.returncode, err)
  assert took < 2


def test_the_compile_result_or_its_error_comes_back_to_the_caller():
  class Lowered:
    def __init__(self, result):
      self.result = result

    def compile(self):
      if isinstance(self.result, Exception):
        raise self.result
      return self.result
  assert aot_compile.compiled(Lowered("program"), "x") == "program"
  with pytest.raises(RuntimeError, match="RESOURCE_EXHAUSTED"):  # aot.plan reads the refusal
    aot_compile.compiled(Lowered(RuntimeError("RESOURCE_EXHAUSTED: 20G of 16G")), "x")
  assert aot_compile._compiling is None


def test_ctrl_c_between_compiles_says_what_is_kept_as_sigterm_does():
  """Outside a compile (tracing the next cell, reading the plan cache) Ctrl-C raised the
  usual KeyboardInterrupt: `error: interrupted`, with no word of the plan cache."""
  code = ("import sys, time\nfrom research import aot_compile, cli\n"
          "def main(argv):\n"
          f"  aot_compile.stop_quickly({_LADDER_KEPT!r})\n"
          "  print('tracing', flush=True)\n  time.sleep(60)\n"
          "sys.argv = ['script']\ncli.run_script(main)\n")
  proc = _start(code)
  assert proc.stdout.readline() == "tracing\n"
  took, err = _stop(proc, signal.SIGINT)
  assert proc.returncode == 130 and err.splitlines() == [
      f"error: interrupted (Ctrl-C); {_LADDER_KEPT}"], (proc.returncode, err)
  assert took < 2


_AOT = ["research.aot", "--config=configs/lm_ladder.py:14m@v5e:4x4",
        "--topology=v5p:4x4x4"]  # 60-90 s of compile on a 2-core host


@pytest.mark.slow
@needs_libtpu
@pytest.mark.parametrize("signum,code,line", [
    (signal.SIGTERM, 143, "error: stopped (SIGTERM) during the compile of 14m@v5e:4x4 for "
                          "v5p:4x4x4; nothing was written"),
    (signal.SIGINT, 130, "error: interrupted (Ctrl-C) during the compile of 14m@v5e:4x4 for "
                         "v5p:4x4x4; nothing was written")])
def test_research_aot_stops_within_a_second_of_a_signal_during_a_compile(signum, code, line,
                                                                           tmp_path):
  """SIGTERM printed ~25 lines of libtpu's stack dump (`*** SIGTERM received by PID`,
  FailureSignalHandler) and exited 143; Ctrl-C ended only when the compile did."""
  out = tmp_path / "plan.json"
  proc = _start(f"import runpy, sys\nsys.argv = {[*_AOT, f'--out={out}']!r}\n"
                "runpy.run_module('research.aot', run_name='__main__', alter_sys=True)")
  started = time.monotonic()
  for text in proc.stderr:  # the data line comes before the trace, lower and compile
    if "lm corpus" in text:
      break
  time.sleep(8)  # into the compile (trace + lower: ~1 s)
  took, err = _stop(proc, signum)
  assert time.monotonic() - started < 40, "the compile ended before the signal"
  assert proc.returncode == code and err.splitlines() == [line], (proc.returncode, err)
  assert "SIGTERM received" not in err and "stack trace" not in err
  assert took < 2 and not out.exists() and list(tmp_path.iterdir()) == []
