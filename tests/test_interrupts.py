"""Ctrl-C in any command: one line and exit 130; a second one while libraries' exit hooks
run quits at once, and an in-process caller keeps its own SIGINT handler (research/cli.py);
one during an XLA compile quits without JAX's exit hook. A reader that closes stdout (`| head`): quiet, exit 141."""
import subprocess
import sys
from pathlib import Path

import pytest

from research import cli

ROOT = Path(__file__).resolve().parents[1]


_CTRL_C_TWICE = """
import atexit, signal, sys, time
# SIGINT as a terminal gives it: a pytest-xdist worker ignores SIGINT and its children inherit
# that, so Python (and cli) would install no handler.
signal.signal(signal.SIGINT, signal.default_int_handler)
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
  removed, and the hook that re-sends an interrupt Python reports as unraisable) shows the
  traceback this prevents."""
  import signal
  import time
  code = _CTRL_C_TWICE if quick_exit else _CTRL_C_TWICE.replace(
      "cli.run_script(main)", "cli.signal.signal = lambda *a: None\n"
      "cli._redeliver_lost_interrupts = lambda previous: previous\ncli.run_script(main)")
  proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
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


# A first step compiling at Ctrl-C: 60 kernels of other shapes, seconds of XLA:CPU's compile.
_CTRL_C_IN_A_COMPILE = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal gives it (above)
import jax, jax.numpy as jnp
from research import cli
jax.config.update("jax_enable_compilation_cache", False)  # a cached program compiles at once
def many_kernels(x):
  return sum(jnp.sum(jnp.sin(x[:i] * i) + jnp.cos(x[i:2 * i] + i)) for i in range(1, 61))
def main(argv):
  lowered = jax.jit(many_kernels).lower(jnp.ones(1000))
  print("compiling", flush=True)
  lowered.compile()
sys.argv = ["script"]
cli.run_script(main)
"""


@pytest.mark.parametrize("quick_exit", [True, False])
def test_ctrl_c_during_a_compile_is_one_line_not_a_segfault(quick_exit):
  """JAX raises Ctrl-C in the thread that waits on XLA's compile but the compile goes on in a
  worker, and JAX's exit hook freed the client under it: a segmentation fault (exit 139 in a
  shell) once the compile ended (research.main Ctrl-C'd after its "model:" line,
  5 of 5 tries). The control (quick_exit False: the check that the interrupt stopped a
  compile answers no) shows that crash."""
  import signal
  import time
  code = _CTRL_C_IN_A_COMPILE if quick_exit else _CTRL_C_IN_A_COMPILE.replace(
      "cli.run_script(main)", "cli._left_a_compile_running = lambda e: False\n"
      "cli.run_script(main)")
  proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  assert proc.stdout.readline() == "compiling\n"
  time.sleep(0.3)
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate(timeout=120)
  if quick_exit:
    assert proc.returncode == 130 and err.strip().splitlines() == ["error: interrupted"], err
  else:
    assert proc.returncode < 0, (proc.returncode, err)  # killed by a signal (SIGSEGV: -11)


def test_only_an_interrupt_inside_jaxs_compiler_counts_as_one_left_running():
  """The innermost frame decides: an interrupt raised in the project's own code, or in JAX
  elsewhere (a dispatch, a trace), leaves no compile behind and exits by the usual hooks."""
  def raise_in(filename):
    try:
      exec(compile("raise KeyboardInterrupt", filename, "exec"), {})
    except KeyboardInterrupt as e:
      return e
  compiler = str(Path("site-packages") / "jax" / "_src" / "compiler.py")
  assert cli._left_a_compile_running(raise_in(compiler))
  assert not cli._left_a_compile_running(raise_in(str(Path("jax") / "_src" / "dispatch.py")))
  assert not cli._left_a_compile_running(raise_in(str(ROOT / "research" / "train.py")))
  assert not cli._left_a_compile_running(KeyboardInterrupt())  # raised nowhere: no traceback


@pytest.mark.parametrize("ignored", [False, True])
def test_ctrl_c_in_process_leaves_the_callers_sigint_handler(monkeypatch, ignored):
  """A notebook that calls a command and catches its SystemExit keeps its own Ctrl-C: the
  quick exit is installed only when the process really exits (by an exit hook). A process
  that ignores SIGINT (started by `cmd &` in a script; a pytest-xdist worker) keeps ignoring
  it: no quick exit is installed."""
  import atexit
  import signal
  mine = signal.SIG_IGN if ignored else signal.default_int_handler
  previous = signal.signal(signal.SIGINT, mine)  # set here: the worker's own may be either
  hooks = []
  monkeypatch.setattr(atexit, "register", lambda *a: hooks.append(a))

  def main(argv):
    raise KeyboardInterrupt

  monkeypatch.setattr(sys, "argv", ["script"])
  try:
    with pytest.raises(SystemExit) as e:
      cli.run_script(main)
    assert e.value.code == 130 and signal.getsignal(signal.SIGINT) is mine
  finally:
    signal.signal(signal.SIGINT, previous)
  if ignored:
    assert hooks == []
  else:
    assert len(hooks) == 1 and hooks[0][:2] == (signal.signal, signal.SIGINT)


# A main that prints more than a pipe holds, through either wrapper (cli.run: research.main,
# sweep, predict, aot; cli.run_script: the scripts).
_PRINTS = """
import sys, time
from research import cli
time.sleep(0.5)
main = lambda argv: print("row\\n" * 100000)
cli.run(main) if sys.argv[1] == "run" else cli.run_script(main)
"""


@pytest.mark.parametrize("wrapper", ["run", "run_script"])
def test_a_closed_stdout_reader_ends_the_command_quietly(wrapper):
  """`results DIR | head -1` printed "error: BrokenPipeError: [Errno 32] Broken pipe" and
  exited 5 (a disk failure): now silent, 141 as a Unix tool killed by SIGPIPE. The reader
  here is gone before the command prints anything; a broken pipe elsewhere is still exit 5."""
  proc = subprocess.Popen([sys.executable, "-c", _PRINTS, wrapper], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  proc.stdout.close()
  assert proc.wait(timeout=120) == 141
  assert proc.stderr.read() == ""
  other = ("import errno; from research import cli; "
           "cli.run_script(lambda argv: (_ for _ in ()).throw(BrokenPipeError(errno.EPIPE, 'x')))")
  proc = subprocess.run([sys.executable, "-c", other], cwd=ROOT, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 5 and "error: BrokenPipeError" in proc.stderr, proc.stderr


LOST_IN_A_CALLBACK = """
import os, signal, sys, time, weakref
from research import cli, preemption
if sys.argv[1] == "hook":
  cli.quiet_libraries()  # what every entry point installs
guard = preemption.Guard()
class Thing:
  pass
def callback(_):  # as JAX's GC callbacks: Python code run between the caller's bytecodes
  if sys.argv[2] == "term":
    os.kill(os.getpid(), signal.SIGTERM)
  else:
    signal.raise_signal(signal.SIGINT)
  for _ in range(10000):  # the handler runs here, inside the callback
    pass
try:
  with guard.interruptible("preempted while probing"):
    t = Thing()
    ref = weakref.ref(t, callback)
    del t  # the callback runs now
    # The hook re-sends the signal from a timer thread 10 ms later: 2 s covers that thread
    # starved on 2 loaded cores (at 0.2 s a full-suite run on a slow host finished the probes).
    time.sleep(2.0)
    print("probes finished")
except preemption.Preempted as e:
  print("stopped:", e)
except KeyboardInterrupt:
  print("stopped: interrupted")
"""


@pytest.mark.parametrize("signal_name", ["term", "int"])
def test_an_interrupt_raised_inside_a_callback_is_not_lost(signal_name):
  """A SIGTERM during probes or a Ctrl-C whose exception Python raised inside a weakref or GC
  callback was dropped with "Exception ignored in ..." and a traceback, and the run went on
  (exit 0 after finishing its probes). Entry points' hook raises the signal again. Negative
  control: without the hook, the same interrupt is lost."""
  run = lambda mode: subprocess.run([sys.executable, "-c", LOST_IN_A_CALLBACK, mode, signal_name],
                                    capture_output=True, text=True, timeout=60, cwd=ROOT)
  fixed, lost = run("hook"), run("plain")
  assert fixed.stdout.startswith("stopped:") and "Exception ignored" not in fixed.stderr, (
      fixed.stdout, fixed.stderr[-1000:])
  assert "probes finished" in lost.stdout and "Exception ignored" in lost.stderr, lost.stdout


TWO_EXIT_HOOKS = """
import atexit, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from research import cli
cli.quiet_libraries()
def second():
  time.sleep(0.3)
  print("second finished", flush=True)
def first():
  signal.raise_signal(signal.SIGINT)
  time.sleep(0.3)
atexit.register(second)
atexit.register(first)  # runs first
"""


def test_a_ctrl_c_in_one_exit_hook_leaves_the_others_to_finish():
  """Found by review: the hook that re-sends a dropped interrupt also caught an exit hook's
  KeyboardInterrupt (Python reports those as unraisable too), so each later hook (an async
  checkpoint save finishing) was cut in turn, silently. Exit hooks keep Python's handling."""
  proc = subprocess.run([sys.executable, "-c", TWO_EXIT_HOOKS], capture_output=True, text=True,
                        timeout=60, cwd=ROOT)
  assert "second finished" in proc.stdout, (proc.stdout, proc.stderr[-1000:])


_SIGTERM_AT_START = """
import sys, time
from research import cli
def main(argv):
  print("ready", flush=True)  # past cli.run: where research.main imports jax, parses its config
  time.sleep(2)
  from research import preemption  # the run's Guard, installed by train_and_evaluate
  print("guard set:", preemption.Guard().is_set(), flush=True)
sys.argv = ["main"]
cli.run(main, trains=TRAINS)
"""


@pytest.mark.parametrize("trains", [True, False])
def test_sigterm_before_a_runs_guard_preempts_that_run_in_commands_that_train(trains):
  """SIGTERM in research.main's first ~2 s (imports, config, JAX's start, before the run's
  preemption.Guard) killed it: exit 143, no line. A training command now keeps it for the
  run's Guard, which stops at its first check (checkpoint, one line, exit 0). Control: a
  command that does not train (research.results, aot, predict) keeps Python's default, as
  a killed reader must not exit 0."""
  import signal
  proc = subprocess.Popen([sys.executable, "-c", _SIGTERM_AT_START.replace("TRAINS", str(trains))],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  assert proc.stdout.readline() == "ready\n"
  proc.send_signal(signal.SIGTERM)
  out, err = proc.communicate(timeout=60)
  if trains:
    assert (proc.returncode, out) == (0, "guard set: True\n"), err[-2000:]
  else:
    assert proc.returncode == -signal.SIGTERM, (proc.returncode, err[-2000:])


@pytest.mark.parametrize("module,imports_jax", [("research.main", False), ("research.sweep", False),
                                                ("research.experiment", True)])  # the control
def test_the_training_commands_reach_cli_run_before_importing_jax(module, imports_jax):
  """cli.run holds an early SIGTERM for the run's Guard only once the command's module is
  imported: research.sweep imported jax first (through research.preemption), so a SIGTERM
  in its first ~1.4 s still killed it (exit 143, no line); now its window is ~0.1 s."""
  proc = subprocess.run([sys.executable, "-c", f"import sys, {module}; print('jax' in sys.modules)"],
                        capture_output=True, text=True, timeout=120, cwd=ROOT)
  assert proc.stdout.strip() == str(imports_jax), proc.stderr[-1000:]


# Records whether SIGTERM is held when the command's module first imports absl (the start of
# its own imports, ~0.1 s of them), then runs the module as `python -m` does.
_HELD_AT_IMPORTS = r"""
import importlib.abc, runpy, signal, sys
held = []
class Watch(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path, target=None):
    if name == "absl" and not held:
      held.append(signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL)
sys.meta_path.insert(0, Watch())
sys.argv = [sys.argv[1], "--help"]
try:
  runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
except SystemExit:
  pass
print("held:", held, file=sys.stderr)
"""


@pytest.mark.parametrize("module,held", [("research.main", True), ("research.sweep", True),
                                         ("research.results", False)])  # the control
def test_the_training_commands_hold_sigterm_before_their_own_imports(module, held):
  """A SIGTERM in research.main's or research.sweep's first ~0.1 s (their imports, before
  cli.run) killed them (exit 143, no line): they hold it first thing now, so the window is
  the interpreter's start (killed at 0.06 s, held from 0.08 s on this host). research.results
  does not train: Python's default."""
  proc = subprocess.run([sys.executable, "-c", _HELD_AT_IMPORTS, module], capture_output=True,
                        text=True, timeout=120, cwd=ROOT)
  assert f"held: [{held}]" in proc.stderr, proc.stderr[-2000:]


# ----------------------------------------------------------------------------- preemption.Guard
@pytest.fixture
def sigterm_recorded():
  """SIGTERM goes to a recorder while no Guard holds it (never Python's default, which would
  end pytest); the handler before the test is put back after it."""
  import signal
  got, before = [], signal.getsignal(signal.SIGTERM)
  recorder = lambda *_: got.append("recorder")
  signal.signal(signal.SIGTERM, recorder)
  from research import preemption
  preemption.take_pending_sigterm()  # none left over from another test
  try:
    yield recorder, got
  finally:
    signal.signal(signal.SIGTERM, before)
    preemption.take_pending_sigterm()


def test_a_sigterm_held_before_a_guard_preempts_that_guard_alone(sigterm_recorded):
  """research.main's start-up (hold_sigterm): a SIGTERM then is taken by the run's Guard,
  which is set from its start; taken once, so the next run (a sweep's next point, after a
  rerun) starts clean. The Guard puts back the handler it replaced."""
  import signal
  from research import preemption
  recorder, got = sigterm_recorded
  preemption.hold_sigterm()
  signal.raise_signal(signal.SIGTERM)
  with preemption.Guard() as guard:
    assert guard.is_set()
  with preemption.Guard() as guard:
    assert not guard.is_set()
    assert signal.getsignal(signal.SIGTERM) == guard._handle
  signal.signal(signal.SIGTERM, recorder)
  with preemption.Guard():
    pass
  assert signal.getsignal(signal.SIGTERM) is recorder  # restored on leaving
  assert got == []


def test_a_guards_interruptible_block_raises_at_once_and_only_inside(sigterm_recorded):
  """Inside guard.interruptible(message) a SIGTERM raises Preempted(message) at once, and only
  once (a second one during the block's clean-up does not cut it short); a SIGTERM before the
  block raises at its start; one after the block only sets the flag (the final checkpoint's
  save must never be cut)."""
  import signal
  from research import preemption
  cleaned = []
  with preemption.Guard() as guard:
    with pytest.raises(preemption.Preempted, match="^probing member 0$"):
      with guard.interruptible("probing member 0"):
        try:
          signal.raise_signal(signal.SIGTERM)
          cleaned.append("not reached")
        finally:
          signal.raise_signal(signal.SIGTERM)  # a second one while cleaning up
          cleaned.append("cleaned")
    assert cleaned == ["cleaned"] and guard.is_set()
    signal.raise_signal(signal.SIGTERM)  # after the block: the flag alone
    ran = []
    with pytest.raises(preemption.Preempted, match="^probing member 1$"):
      with guard.interruptible("probing member 1"):
        ran.append(True)
    assert ran == []  # set before the block: it never starts
  with preemption.Guard() as guard:  # control: no SIGTERM, the block runs through
    with guard.interruptible("probing"):
      ran.append(True)
    assert ran == [True] and not guard.is_set()
    signal.raise_signal(signal.SIGTERM)  # after the block (a final save): the flag alone
    assert guard.is_set()


def test_a_preempted_dropped_in_a_callback_is_raised_again(sigterm_recorded):
  """Python drops an exception raised in a GC or weakref callback; cli's hook calls the
  Preempted's `redeliver`, which sends SIGTERM again so that the handler raises it anew while
  the block lasts (and sends nothing once it ended)."""
  import signal
  from research import preemption
  sent = []
  with preemption.Guard() as guard:
    with guard.interruptible("probing"):
      try:
        signal.raise_signal(signal.SIGTERM)
      except preemption.Preempted as e:  # as if Python had dropped it
        dropped = e
      with pytest.raises(preemption.Preempted, match="^probing$"):
        dropped.redeliver(signal.raise_signal)
    dropped.redeliver(sent.append)
  assert sent == []
