"""Output of Orbax and TensorStore that tells a user nothing they can act on, filtered at
the source so that a run's stderr keeps only what matters (research/checkpoint.py imports
this module once; the filters are process-wide and narrow: each drops one known message)."""
from __future__ import annotations

import logging as logging_std
import sys
import threading
from pathlib import Path

from absl import logging


class _DropMissingMetadataWarning(logging_std.Filter):
  """Orbax warns "Metadata file does not exist" for the root metadata of a checkpoint
  directory written without one, on every resume; nothing is wrong, nothing to fix."""

  def filter(self, record) -> bool:  # and "Given directory is read only", for every reader
    return not str(record.msg).startswith(("Metadata file does not exist",
                                           "Given directory is read only"))


def _is_closed_loop_callback(unraisable) -> bool:
  """TensorStore's write threads hand each write's result to Orbax's asyncio loop with
  call_soon_threadsafe; after a failed save Orbax closes that loop, and every write still
  in flight then raises "Event loop is closed" in a C++ thread, which reports it through
  PyErr_WriteUnraisable(NULL): a bare traceback per write (dozens, timing dependent) on
  the user's terminal around the one error line that names the failure
  (research/checkpoint.py's `_writing`)."""
  tb = unraisable.exc_traceback
  while tb is not None and tb.tb_next is not None:
    tb = tb.tb_next
  return (unraisable.object is None and threading.current_thread() is not threading.main_thread()
          and type(unraisable.exc_value) is RuntimeError
          and str(unraisable.exc_value) == "Event loop is closed"
          and tb is not None and tb.tb_frame.f_code.co_name == "_check_closed"
          and Path(tb.tb_frame.f_code.co_filename).parts[-2:] == ("asyncio", "base_events.py"))


def _install_closed_loop_filter() -> None:
  """Drops exactly those reports (the first one leaves one log line: a single write, and
  after the error line of an I/O failure stderr is /dev/null, research/cli.py's `fail`);
  every other unraisable exception still reaches the previous hook."""
  previous, seen = sys.unraisablehook, [0]

  def hook(unraisable):
    if not _is_closed_loop_callback(unraisable):
      return previous(unraisable)
    seen[0] += 1
    if seen[0] == 1:
      logging.warning("a TensorStore write finished after Orbax had closed its event loop "
                      "(after a failed save, or at exit); such reports are not printed")

  sys.unraisablehook = hook


def install() -> None:
  logging_std.getLogger("absl").addFilter(_DropMissingMetadataWarning())
  _install_closed_loop_filter()


install()
