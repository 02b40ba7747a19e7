"""The one command-line contract of every entry point, the config loader and the override setter.

Every `python -m ...` program (research.main, sweep, predict, aot, experiments.reproduce,
each experiment script, the benchmark) exits with the codes of research/errors.py (the
README's table: 2 bad input, 3 non-finite loss, 4 no checkpoint, 5 I/O, 6 some runs
failed, 7 another process of a multi-process run lost, 130 interrupted, 141 stdout's reader
gone, 143 research.aot stopped by SIGTERM) and prints one line
`error: MESSAGE` naming the input and the fix, never a traceback; only an unexpected
exception, a bug rather than an input, keeps it (exit 1).

Two ways in:
  * `run(main)`: absl `app.run` over the process-wide flags, for programs that take a
    config (`define_config_flag()`, then `config_from_flags()` inside main).
  * `run_script(main)`: `main(argv)` parses its own flags with `parse_flags(define, argv)`
    into a private `FlagValues`, because experiment scripts are also called as libraries
    with an argv list (reproduce, notebooks, tests), several in one process.

`load_config("configs/X.py[:PRESET]")`, the one config loader, lives in
research/config_files.py and `apply_overrides(config, {"a.b": value})`, the one dotted-override
setter, in research/config_overrides.py; both are re-exported here.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import traceback
from typing import Callable, Iterable

from absl import app, flags, logging
import ml_collections

from research import errors, preemption
from research.log_filters import DropLibraryChatter  # noqa: F401 (re-exported)
from research.config_overrides import apply_overrides, refuse_replaced  # noqa: F401 (re-exported: the one setter)
from research.config_files import (  # noqa: F401 (re-exported: the one loader)
    SEEDS, config_from_module, load_config, load_config_module, load_sweep, point_key,
    refuse_repeated_points, split_spec)
from research.errors import InputError, one_line  # noqa: F401 (one_line re-exported)
from research.flag_checks import (flag_error, given_repeatedly, check_list_values,  # noqa: F401
                                  refuse_repeated, require)


# ----------------------------------------------------------------------------- failing
def fail(code: int, message: str, *, skip_cleanup: bool = False) -> None:
  line = f"error: {one_line(message)}\n"
  if skip_cleanup:
    # The disk is full or gone: libraries' exit hooks (TensorBoard's final flush, Orbax's
    # async save threads) would retry their writes and print tracebacks after this line.
    # Nothing is lost by skipping them: metrics rows are flushed as written and a
    # checkpoint only exists once its directory was committed. Their dying threads may
    # also print at any moment, even inside this line (seen: Orbax's closed asyncio loop),
    # so stderr goes to /dev/null first and the line is written whole to a saved copy.
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    os.write(saved, line.encode())
    os._exit(code)
  sys.stderr.write(line)
  sys.stderr.flush()
  sys.exit(code)


def interrupted(interrupt: BaseException | None = None) -> None:
  """Ctrl-C: one line and exit 130. Libraries' exit hooks still run after it (Orbax
  finishing an async save, JAX's shutdown); a second Ctrl-C meanwhile quits at once and
  quietly instead of printing their tracebacks under the line (a checkpoint only exists
  once its directory was committed, so cutting a save short loses nothing saved). The
  quick exit is installed by an exit hook, which runs before the libraries' (registered
  earlier, run later), so an in-process caller that catches the SystemExit (a notebook)
  keeps its own Ctrl-C. An `interrupt` that stopped the wait for an XLA compile quits by
  that hook too, without the libraries' hooks (_left_a_compile_running)."""
  def quit_now(*_):
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)

  if interrupt is not None and _left_a_compile_running(interrupt):
    atexit.register(quit_now)
  # A process started with SIGINT ignored (`cmd &` in a script, nohup) keeps ignoring it.
  if (threading.current_thread() is threading.main_thread()
      and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
    atexit.register(signal.signal, signal.SIGINT, quit_now)
  fail(130, "interrupted")


def _quiet_ctrl_c_after(code: int) -> None:
  """The command's work is done and its exit code `code`: a Ctrl-C while the libraries' exit
  hooks run (JAX's clean_up takes about a second after the last line) printed "Exception
  ignored in atexit callback" with a KeyboardInterrupt traceback under the result, exit 0 (5
  of 5 tries). Now it ends the process at once with that code, quietly: nothing is left to
  write (the loop closes its checkpoints before returning). Installed by an exit hook, as in
  interrupted(), so that an in-process caller keeps its own Ctrl-C."""
  def quit_now(*_):
    for stream in (sys.stdout, sys.stderr):
      with contextlib.suppress(Exception):
        stream.flush()
    os._exit(code)

  if (threading.current_thread() is threading.main_thread()
      and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
    atexit.register(signal.signal, signal.SIGINT, quit_now)


_JAX_COMPILER = os.path.join("jax", "_src", "compiler.py")


def _left_a_compile_running(interrupt: BaseException) -> bool:
  """Whether Ctrl-C reached Python while it waited on XLA's compile (jax/_src/compiler.py
  the innermost frame: a run's first step compiling). JAX raises the KeyboardInterrupt but
  the compile goes on in a worker thread, and JAX's own exit hook (clear_backends) frees the
  client under it: "Fatal Python error: Segmentation fault", exit 139, a few seconds after
  the line (5 of 5 tries). Nothing of the run is being written then: the loop, which owns
  the checkpoints, closes them before an interrupt reaches cli."""
  tb, innermost = interrupt.__traceback__, None
  while tb is not None:
    innermost, tb = tb, tb.tb_next
  return innermost is not None and innermost.tb_frame.f_code.co_filename.endswith(_JAX_COMPILER)


def exit_code(e: BaseException) -> int:
  """The documented exit code of an exception; 1 for anything that is a bug, not an input."""
  if isinstance(e, errors.ResearchError):
    return e.exit_code
  if isinstance(e, (flags.Error, app.UsageError)):
    return errors.EXIT_INPUT
  if isinstance(e, FileNotFoundError):  # a file the user named (dataset, --file, workdir)
    return errors.EXIT_INPUT
  if isinstance(e, OSError):
    return errors.EXIT_IO
  return 1


def is_preemption(e: BaseException) -> bool:
  # Only a process that imported research.preemption can raise it (and cli must not
  # import it: it pulls in jax for every --help).
  module = sys.modules.get("research.preemption")
  return module is not None and isinstance(e, module.Preempted)


def out_of_memory(e: BaseException) -> bool:
  """XLA's RESOURCE_EXHAUSTED: the config needs more memory than the device has. The user's
  config (batch, model, a pod preset on a laptop) is the cause, not a bug."""
  return (errors.is_xla_runtime_error(e)
          and str(e).lstrip().startswith("RESOURCE_EXHAUSTED"))


def _fail_for(e: BaseException) -> None:
  if isinstance(e, BrokenPipeError) and _stdout_reader_gone():
    sys.exit(errors.EXIT_PIPE)
  if is_preemption(e):  # preemption.py: entry points print it and exit 0; a rerun continues
    sys.stderr.write(f"{one_line(e)}\n")
    sys.stderr.flush()
    sys.exit(0)
  if out_of_memory(e):
    fail(errors.EXIT_INPUT, f"{one_line(str(e).splitlines()[0])[:300].rstrip('.')}: this config needs more "
         "memory than the device has; lower train.batch_size (or raise "
         "train.grad_accum_steps), use a smaller model, or plan it first with python -m "
         "research.aot --config=...")
  if reason := errors.lost_peer(e):
    # Skipping the exit hooks skips jax's distributed shutdown, whose barrier waits for the
    # lost process until the heartbeat timeout (64 s in a trial) and then aborts in C++
    # (exit 134, a page of coordination-service log). A checkpoint only exists once
    # committed, and metrics rows are flushed as written: stopping here loses nothing saved.
    fail(errors.EXIT_PEER_LOST, f"{reason}: another process of this multi-process "
         "run stopped (killed, preempted or crashed), stopped answering for research.main's "
         "--collective_timeout, or the network between them failed, so this one stops too; "
         "its own log says why it stopped; rerun every process's command to resume from the "
         "newest checkpoint", skip_cleanup=True)
  if isinstance(e, errors.TaskCodeError):  # the traceback of the task's code, its own line
    traceback.print_exception(e.__cause__ or e)
    fail(1, one_line(e))
  code = exit_code(e)
  if code == 1:
    traceback.print_exc()
    fail(1, f"{type(e).__name__}: {e} (an internal error, not your input: please report it "
         "with the traceback above)")
  message = str(e) if isinstance(e, errors.ResearchError) else f"{type(e).__name__}: {e}"
  fail(code, message, skip_cleanup=code == errors.EXIT_IO)


# ----------------------------------------------------------------------------- chatter
def quiet_libraries(verbosity: int = logging.INFO) -> None:
  """The trainer's progress at `verbosity` on stderr, library chatter dropped; the same
  filter for every entry point (idempotent). Also re-delivers an interrupt lost in a
  callback (_redeliver_lost_interrupts)."""
  logging.use_absl_handler()
  logging.set_verbosity(verbosity)
  handler = logging.get_absl_handler()
  if not any(isinstance(f, DropLibraryChatter) for f in handler.filters):
    handler.addFilter(DropLibraryChatter())
  if not getattr(sys.unraisablehook, "redelivers_interrupts", False):
    sys.unraisablehook = _redeliver_lost_interrupts(sys.unraisablehook)


def _redeliver_lost_interrupts(previous):
  """A Ctrl-C (KeyboardInterrupt) or a SIGTERM during probes (preemption.Preempted) raised
  while Python runs a garbage-collection or weakref callback cannot leave it: Python printed
  "Exception ignored in: <function _xla_gc_callback ...>" with a traceback, dropped it, and
  the run went on to exit 0 (2 of 6 SIGTERMs during probes, a trial on 2026-12-06). Here the
  lost exception is not printed and its signal is sent again 10 ms later, from a thread: sent
  from here, its handler would run inside this hook and be dropped again."""
  def hook(unraisable):
    exc = unraisable.exc_value
    if "atexit" in (unraisable.err_msg or ""):
      # In an exit hook it ends that hook alone; sent again, it would end each later one
      # (an async checkpoint save finishing, JAX's shutdown) without a word.
      previous(unraisable)
      return
    default_sigint = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if isinstance(exc, KeyboardInterrupt) and default_sigint:
      resend(signal.SIGINT)
    elif callable(getattr(exc, "redeliver", None)):  # preemption.Preempted
      exc.redeliver(resend)
    else:
      previous(unraisable)

  def send(signum):
    # A real signal (it wakes a main thread blocked in a wait, which interrupt_main's
    # simulated one does not), only while Python handles it: if the run restored the
    # default SIGTERM action meanwhile, the signal would kill the process.
    if signal.getsignal(signum) not in (signal.SIG_DFL, signal.SIG_IGN, None):
      os.kill(os.getpid(), signum)

  def resend(signum):
    timer = threading.Timer(0.01, send, (signum,))
    timer.daemon = True  # never what keeps the interpreter from exiting
    timer.start()
  hook.redelivers_interrupts = True
  return hook


# ----------------------------------------------------------------------------- entry points
_OVERRIDES: dict[str, str] = {}  # this process's `--config.a.b=v` arguments: {'a.b': 'v'}


def define_config_flag(default: str | None = None) -> None:
  # Registered under the program's name (sys.argv[0]) so that --help, which lists the main
  # module's flags only, shows it.
  flags.DEFINE_string("config", default, "Config file and preset, e.g. configs/icl_regression"
                      ".py:cpu. Override fields with --config.a.b=VALUE.", module_name=sys.argv[0])


def _split_overrides(argv: list[str]) -> tuple[list[str], dict[str, str]]:
  """(argv without `--config.a.b=v`, those overrides): absl knows no dotted flags."""
  rest, given = [argv[0]], {}
  args = iter(argv[1:])
  for a in args:
    if a == "--":
      rest += [a, *args]
      break
    if a.startswith("--config."):
      if "=" not in a:
        value = next(args, None)
        if value is None or value.startswith("--"):
          raise InputError(f"{a} needs a value; write {a}=VALUE")
        a = f"{a}={value}"
      key, _, value = a[len("--config."):].partition("=")
      given.setdefault(key, []).append(value)
    else:
      rest.append(a)
  for key, values in given.items():
    if len(set(values)) > 1:  # all but the last would be dropped unread
      raise given_repeatedly(f"--config.{key}", len(values), values)
  return rest, {key: values[-1] for key, values in given.items()}


def _parse_absl(argv: list[str]) -> list[str]:
  asked = {"--help", "-h", "-?", "--helpshort", "--helpfull"} & set(argv[1:])
  if asked:  # absl's own help flags exit 1, the code of an internal error here
    app.usage(shorthelp="--helpfull" not in asked, writeto_stdout=True, exitcode=0)
  try:
    rest, overrides = _split_overrides(argv)
    _OVERRIDES.clear()
    _OVERRIDES.update(overrides)
    rest = flags.FLAGS(rest)
    refuse_repeated(flags.FLAGS)
    check_list_values(flags.FLAGS)
    return rest
  except InputError as e:  # our own checks name their fix; the scripts' say no more
    fail(errors.EXIT_INPUT, one_line(e))
  except flags.Error as e:
    fail(errors.EXIT_INPUT, f"{flag_error(e, flags.FLAGS)}; see --help for the flags")


def run(main: Callable[[list[str]], int | None], *, trains: bool = False) -> None:
  """app.run(main) with the error contract: flag errors and the research/errors.py classes
  become one line and their exit code. `trains` (research.main, research.sweep): a SIGTERM
  before a run's preemption.Guard preempts that run (preemption.hold_sigterm)."""
  if trains:
    preemption.hold_sigterm()

  def guarded(argv):
    quiet_libraries()
    try:
      result = main(argv)
      sys.stdout.flush()  # here, where a closed reader is caught, not at the interpreter's exit
      _quiet_ctrl_c_after(result if isinstance(result, int) else 0)
      return result
    except KeyboardInterrupt as e:
      interrupted(e)
    except Exception as e:  # noqa: BLE001 -- mapped to one line and an exit code
      _fail_for(e)

  app.run(guarded, flags_parser=_parse_absl)


def run_script(main: Callable[[list[str]], object]) -> None:
  """`main(sys.argv[1:])` with the error contract; an int result is the exit code."""
  quiet_libraries()
  if not flags.FLAGS.is_parsed():
    # The script's flags live in their own FlagValues; without this, absl's first log
    # line is preceded by "WARNING: Logging before flag parsing goes to stderr."
    flags.FLAGS.mark_as_parsed()
  try:
    result = main(sys.argv[1:])
    sys.stdout.flush()  # here, where a closed reader is caught, not at the interpreter's exit
    _quiet_ctrl_c_after(result if isinstance(result, int) else 0)
  except KeyboardInterrupt as e:
    interrupted(e)
  except SystemExit:
    raise
  except Exception as e:  # noqa: BLE001 -- mapped to one line and an exit code
    _fail_for(e)
  sys.exit(result if isinstance(result, int) else 0)


def _stdout_reader_gone() -> bool:
  """Whether stdout's reader closed it (`results DIR | head -1`: was "error: BrokenPipeError",
  exit 5, a disk failure). Then the command ends quietly, as a Unix tool killed by SIGPIPE;
  stdout goes to /dev/null so that the interpreter's last flush does not raise again. (A
  pipe without a reader polls as an error; the failed write may have emptied the buffer, so
  a second flush would not tell.)"""
  import select
  try:
    poll = select.poll()
    poll.register(sys.stdout.fileno(), select.POLLOUT)
    if not any(events & select.POLLERR for _, events in poll.poll(0)):
      return False
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
  except (OSError, ValueError, AttributeError):  # no real stdout: not a closed pipe
    return False
  return True


def parse_flags(define: Callable[[flags.FlagValues], None], argv: Iterable[str] | None,
                doc: str = "", empty_ok: Iterable[str] = (),
                positional: bool = False) -> flags.FlagValues:
  """A script's absl flags parsed from argv (no program name) into their own FlagValues.
  Positional arguments are refused unless `positional` (then they come back in
  `.positional`); --help prints `doc` and the flags."""
  fv = flags.FlagValues()
  define(fv)
  argv = list(sys.argv[1:] if argv is None else argv)
  if any(a in ("--help", "-h", "--helpshort", "--helpfull", "-?") for a in argv):
    print(doc.strip() + "\n\nflags:\n" + fv.get_help())
    sys.exit(0)
  try:
    rest = fv(["program", *argv])[1:]
  except flags.Error as e:
    raise InputError(f"{flag_error(e, fv)}; see --help for the flags") from None
  if rest and not positional:
    raise InputError(f"unexpected arguments {rest}; every option is a flag (see --help)")
  refuse_repeated(fv)
  check_list_values(fv, empty_ok)
  fv.__dict__["positional"] = rest  # not a flag: FlagValues' setattr would look one up
  return fv


def overrides_from_args(args: Iterable[str], flag: str = "--set") -> dict[str, str]:
  """{'a.b': 'v'} from ['a.b=v', ...] (an experiment script's repeated --set)."""
  given = {}
  for a in args:
    key, eq, value = a.partition("=")
    if not eq or not key:
      raise InputError(f"{flag} {a!r} is not FIELD=VALUE; write e.g. {flag} model.width=128")
    given.setdefault(key.strip(), []).append(value)
  for key, values in given.items():  # as research.main refuses --config.a.b given twice
    if len(values) > 1:
      raise given_repeatedly(f"{flag} {key}", len(values), values)
  return {key: values[0] for key, values in given.items()}


def config_from_flags() -> ml_collections.ConfigDict:
  """The --config file's config with this process's --config.a.b=v overrides applied."""
  spec = flags.FLAGS.config
  if not spec:
    raise InputError("--config=FILE[:PRESET] is required, e.g. "
                     "--config=configs/icl_regression.py:cpu")
  return apply_overrides(load_config(spec), _OVERRIDES, text=True, flag="--config.")


# ----------------------------------------------------------------------------- config loader
