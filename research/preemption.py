"""SIGTERM (TPU/GPU preemption, a scheduler's kill) at any point of a run.

A run installs one `Guard` for its whole life (start-up, loop, final save, probes):
  * by default SIGTERM only sets a flag; the loop checks it between jit calls, saves a
    checkpoint of the current step and raises Preempted. Start-up and the final save
    are never cut in the middle (a save killed half-way is what left keep+1 checkpoints).
  * inside `guard.interruptible(what)` (host-side work whose outputs are written
    atomically: the probes) SIGTERM raises Preempted at once, so a long probe does not
    outlive the scheduler's grace period.
Entry points print Preempted's message and exit 0: rerunning the command continues.
"""
from __future__ import annotations

import contextlib
import signal
import threading


class Preempted(RuntimeError):
  """SIGTERM arrived; the run stopped in a state a rerun continues from. `redeliver`, when
  set, raises it again (research/cli.py calls it when Python dropped it in a callback)."""
  redeliver = None


_SIGTERM_PENDING: list[bool] = []


def hold_sigterm() -> None:
  """For the commands that train (research.main and research.sweep call it before their own
  imports, cli.run again): a SIGTERM before a run installs its Guard (and after, where the
  Guard puts this handler back) is kept for the next Guard, which stops its run at its first
  check (a checkpoint of the step, one line, exit 0). Python's default killed the process in
  research.main's first ~2 s (imports, config, JAX's start): exit 143, no line (a fault
  trial). Raising from the handler instead is not safe there: inside JAX's extension
  initialisation it aborted the process (exit 134) or a GC callback dropped it."""
  if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, lambda *_: _SIGTERM_PENDING.append(True))


def take_pending_sigterm() -> bool:
  """Whether a SIGTERM arrived before this run's Guard (hold_sigterm); cleared."""
  pending = bool(_SIGTERM_PENDING)
  _SIGTERM_PENDING.clear()
  return pending


class Guard:
  """Installs a SIGTERM handler (main thread only) until `restore()` / the with block ends."""

  def __init__(self):
    self._set, self._raise_in, self._raised, self._previous = False, None, False, None
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    # A SIGTERM that came before (a training command's start-up: hold_sigterm), kept
    # with one that came since the handler above was installed.
    self._set = take_pending_sigterm() or self._set

  def __enter__(self) -> "Guard":
    return self

  def __exit__(self, *exc) -> None:
    self.restore()

  def _handle(self, signum, frame):
    del signum, frame
    self._set = True
    if self._raise_in is not None and not self._raised:  # once: not again in its clean-up
      self._raised = True
      e = Preempted(self._raise_in)
      e.redeliver = self._redeliver
      raise e

  def _redeliver(self, send) -> None:
    """The Preempted raised inside a GC or weakref callback, which Python drops: while still
    inside the interruptible block, `send(SIGTERM)` again so that the handler raises it anew."""
    if self._raise_in is not None:
      self._raised = False
      send(signal.SIGTERM)

  def is_set(self) -> bool:
    """Whether any process got SIGTERM. Processes must agree: one that saves (a collective
    Orbax write) while another dispatches the next step would hang them both."""
    if _process_count() == 1:
      return self._set
    import numpy as np
    from jax.experimental import multihost_utils
    return bool(np.any(multihost_utils.process_allgather(np.array(self._set))))

  @contextlib.contextmanager
  def interruptible(self, message: str):
    """SIGTERM inside the block raises Preempted(message) at once (single-process runs:
    with several processes, one leaving a collective would hang the others, so they
    finish the block)."""
    if self.is_set():
      raise Preempted(message)
    if _process_count() > 1:
      yield
      return
    self._raise_in, self._raised = message, False
    try:
      yield
    finally:
      self._raise_in = None

  def restore(self) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None


def _process_count() -> int:
  # jax is imported here, not at the top: research.sweep imports this module, and its ~2 s
  # import of jax came before cli.run could hold an early SIGTERM for the run's Guard.
  import jax
  return jax.process_count()
