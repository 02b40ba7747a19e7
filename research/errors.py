"""The project's error vocabulary: one exception class per exit code.

Every entry point (research.main, research.sweep, research.predict, research.aot,
experiments.*) maps these to the same exit codes and prints one line
`error: MESSAGE` on stderr, never a traceback. Raise them with a message that
names the input and the fix, e.g.
`InputError("--config=configs/nope.py: no such file; pass configs/NAME.py[:PRESET]")`.

Modules keep their own, more specific classes (ConfigError, CheckpointError, ...) by
subclassing these, so callers can catch either.
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_INPUT = 2        # bad input: config, flags, data files, workdir contents
EXIT_NONFINITE = 3    # training produced a non-finite loss
EXIT_CHECKPOINT = 4   # no usable checkpoint to resume from
EXIT_IO = 5           # the disk or a writer failed (full, read-only, gone)
EXIT_RUN_FAILED = 6   # a sweep, ensemble or reproduce finished, but some runs failed (or could not be read)
EXIT_PEER_LOST = 7    # another process of a multi-process run stopped (killed, crashed) or its link broke
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT): what a shell reports for a process it ended
EXIT_PIPE = 141       # stdout's reader closed it (`| head`): what a Unix tool killed by SIGPIPE returns
EXIT_TERMINATED = 143  # research.aot stopped by SIGTERM (research/aot_compile.py), as a shell reports it


def closest(name: str, choices, cutoff: float = 0.6) -> str | None:
  """The choice `name` most likely misspells (difflib's ratio >= cutoff), or None: the one
  "did you mean" for flags, presets, sweeps, experiment names and config files."""
  import difflib
  folded = {str(c).lower(): str(c) for c in choices}  # 1B misspells 1b
  near = difflib.get_close_matches(str(name).lower(), list(folded), n=1, cutoff=cutoff)
  return folded[near[0]] if near else None


# What a collective says when the process at the other end is gone: gloo (CPU) reads a reset
# or closed TCP connection, or fails writing to it, or waited longer than the collective
# timeout (research.main's --collective_timeout) for a process that stopped answering; the
# coordination service names a task that stopped sending heartbeats. The connection phrases
# count only in gloo's own errors: a host callback's "Connection reset by peer"
# (CpuCallback) is this process's own failure.
_GLOO_PEER_GONE = ("Connection reset by peer", "Connection closed by peer", "Broken pipe",
                   "Application timeout caused pair closure", "Timed out waiting")
_SERVICE_PEER_GONE = ("heartbeat timeout", "stopped sending heartbeats")


def is_xla_runtime_error(e: BaseException) -> bool:
  """An error XLA's runtime raised (jax.errors.JaxRuntimeError; XlaRuntimeError in older jax),
  told by name so that this module never imports jax."""
  return type(e).__name__ in ("JaxRuntimeError", "XlaRuntimeError")


def _says_peer_gone(text: str) -> bool:
  return (("Gloo" in text and "CpuCallback" not in text
           and any(p in text for p in _GLOO_PEER_GONE))
          or any(p in text for p in _SERVICE_PEER_GONE))


def lost_peer(e: BaseException) -> str:
  """Why another process of this multi-process run is gone, if a runtime error in `e` or in
  what it wraps (a checkpoint save's error wraps its collective's) says so: the error's
  first line without gloo's source location, e.g. 'UNKNOWN: Gloo AllGather failed: Read
  error [127.0.0.1]:30080: Connection reset by peer'; '' otherwise (and in a one-process
  run, where there is no other process to lose). Such an error used to print a traceback as
  "an internal error ... please report it", then wait in jax's shutdown for the lost
  process and abort (exit 134)."""
  import re
  import sys
  seen, todo = set(), [e]
  while todo:  # e, and what it was raised from or while handling, depth first
    e = todo.pop()
    if e is None or id(e) in seen:
      continue
    seen.add(id(e))
    text = str(e).strip()
    if is_xla_runtime_error(e) and _says_peer_gone(text):
      # Asked last: on any other error (a bad flag) it would start JAX's backends.
      jax = sys.modules.get("jax")
      if jax is None or jax.process_count() <= 1:
        return ""
      return re.sub(r"\[[\w./-]+\.(?:cc|h):\d+\] ?", "", text.splitlines()[0])[:300]
    todo += [e.__context__, e.__cause__]
  return ""


def listed(items, shown: int = 4) -> str:
  """The first `shown` items joined by commas, and how many more ("a, b and 3 more")."""
  items = list(items)
  return ", ".join(map(str, items[:shown])) + (
      f" and {len(items) - shown} more" if len(items) > shown else "")


def one_line(message) -> str:
  """A message as the one line an entry point prints (newlines and runs of spaces folded)."""
  return " ".join(str(message).split())


class ResearchError(Exception):
  """Base class; `exit_code` says how an entry point ends."""
  exit_code = 1


class InputError(ResearchError, ValueError):
  """Something the user typed or supplied is wrong; the message names it and the fix."""
  exit_code = EXIT_INPUT


class NoCheckpointError(ResearchError):
  """No usable checkpoint to resume from (checkpoint.CheckpointError: one that fails to read)."""
  exit_code = EXIT_CHECKPOINT


class RunIOError(ResearchError, OSError):
  """A write or a writer thread failed (disk full, read-only, removed)."""
  exit_code = EXIT_IO


class TaskCodeError(ResearchError):
  """A task's own code (its probe or render) raised after training: its traceback is printed
  (the bug is in that code) with a line naming the task, never "an internal error, not
  your input" (a task a researcher wrote is theirs)."""
  exit_code = 1


class RunsFailedError(ResearchError):
  """Some runs of a sweep, ensemble or reproduce failed; the message names them."""
  exit_code = EXIT_RUN_FAILED
