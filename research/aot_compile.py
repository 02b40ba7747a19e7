"""A plan's XLA compile that Ctrl-C and SIGTERM stop at once (research.aot, --ladder, --tune).

A TPU compile holds the thread that calls it for seconds to minutes (a 64-chip cell: 10-15
min on a 2-core host), and Python runs signal handlers only when the main thread is back in
the interpreter: Ctrl-C ended as `error: interrupted` only when the compile returned (58 s
after it, on 14m for v5p:4x4x4), and SIGTERM met the failure-signal handler libtpu installs
when it loads, which printed a page of C++ stack trace (`*** SIGTERM received by PID ...`)
and exited 143. Here the compile runs in a worker thread while the main thread waits on it
in short timeouts, so a handler runs within one of them; once `stop_quickly` has been called
(the command, not an in-process caller such as a test or a notebook) both signals quit with
one line naming the compile and what is kept: SIGINT `error: interrupted (Ctrl-C) during the
compile of ...; ...`, exit 130, and SIGTERM `error: stopped (SIGTERM) ...`, exit 143 (also
between compiles: Ctrl-C said only `error: interrupted`, not that --ladder's plan cache keeps
the cells before it). They quit through os._exit: JAX's exit hook (clear_backends) frees the
client under a compile still running and crashes (research/cli.py's _left_a_compile_running).

Nothing is half-written by quitting at any moment: --out and each plan-cache entry are
written atomically (research/workdir.py's atomic_path: a temporary file renamed over the
entry; a stop mid-write can leave only the temporary `.KEY.tmpPID.json`, which no reader
takes for a plan), so the plan cache keeps the cells planned before the stop.
"""
from __future__ import annotations

import signal
import threading

from research import cli, errors

_WAIT_S = 0.1  # how often the main thread returns to the interpreter during a compile

_compiling: str | None = None  # what the compile running now is for ('14m@v5e:4x4 for v5p:4x4x4')
_kept = ""  # what a stop leaves behind, said in its line ("nothing was written")
_enabled = False


def stop_quickly(kept: str) -> None:
  """Makes SIGTERM, and Ctrl-C during a compile, quit at once with one line (the command's
  main calls it; `kept` says what is left written then). Installed again at each compile:
  libtpu replaces the SIGTERM handler when it loads, which may be later (--ladder resolves
  its slices itself)."""
  global _enabled, _kept
  _enabled, _kept = True, kept
  _install()


def reinstall() -> None:
  """The handlers again, if stop_quickly was called (research.aot.plan, before it traces)."""
  if _enabled:
    _install()


def _install() -> None:
  if threading.current_thread() is not threading.main_thread():
    return  # only the main thread may install handlers, and only it runs them
  signal.signal(signal.SIGTERM, _on_sigterm)
  # A command started with SIGINT ignored (`cmd &` in a script, nohup) keeps ignoring it.
  if signal.getsignal(signal.SIGINT) in (signal.default_int_handler, _on_sigint):
    signal.signal(signal.SIGINT, _on_sigint)


def _stop(code: int, what: str) -> None:
  """One line naming the compile it stopped in and what is kept (--ladder: the plan cache
  holds the cells before it and a rerun compiles the rest), then exit `code`."""
  during = f" during the compile of {_compiling}" if _compiling else ""
  # skip_cleanup: os._exit after the line, without the exit hooks that crash under a compile.
  cli.fail(code, f"{what}{during}; {_kept}", skip_cleanup=True)


def _on_sigterm(signum, frame) -> None:
  del signum, frame
  _stop(errors.EXIT_TERMINATED, "stopped (SIGTERM)")


def _on_sigint(signum, frame) -> None:
  # Ctrl-C says what SIGTERM says: it printed only `error: interrupted`, so the user who
  # pressed it was not told that a rerun of --ladder resumes from the plan cache.
  del signum, frame
  _stop(errors.EXIT_INTERRUPTED, "interrupted (Ctrl-C)")


def compiled(lowered, what: str):
  """lowered.compile() in a worker thread, the main thread waiting in _WAIT_S timeouts; its
  result, or the exception it raised (the TPU compiler's RESOURCE_EXHAUSTED among them)."""
  global _compiling
  if threading.current_thread() is not threading.main_thread():
    return lowered.compile()  # signals reach the main thread only: nothing to wait for here
  reinstall()
  done: dict = {}

  def work():
    try:
      done["result"] = lowered.compile()
    except BaseException as e:  # noqa: BLE001 -- handed to the waiting thread, raised there
      done["error"] = e

  worker = threading.Thread(target=work, name=f"compile {what}", daemon=True)
  _compiling = what
  try:
    worker.start()
    while worker.is_alive():
      worker.join(_WAIT_S)
  finally:
    _compiling = None
  if "error" in done:
    raise done["error"]
  return done["result"]
