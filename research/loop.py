"""The K-step training loop: one for a solo run (research/train.py) and a vmapped ensemble
(research/ensemble.py); they differ only in their `Step`.

One jit call runs K = `train.steps_per_call` steps. The host reads call i's metrics after
dispatching call i+1, so the device never waits for logging; before a periodic eval, a
checkpoint or a preemption save it reads them all, so no state is evaluated or checkpointed
whose losses were not checked. SIGTERM (research/preemption.py) is acted on between calls:
the loop saves the current step's checkpoint and raises Preempted, which entry points turn
into exit 0 (a rerun resumes).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Protocol

import jax
from absl import logging

from research import checkpoint as ckpt_lib
from research import errors
from research import metrics as metrics_lib
from research import preemption


class Step(Protocol):
  """What a solo run and an ensemble do differently inside the shared loop."""

  label: str  # prefixes the progress line ("" for a solo run)
  precompile_s: float  # compiled before the loop (on CPU, to check host memory): its seconds

  def call(self, num_steps: int) -> Callable[[Any], tuple[Any, Any]]:
    """A jitted state -> (state, device metrics) running `num_steps` steps (state donated)."""

  def check(self, first: int, end: int, metrics: Any) -> None:
    """Host metrics of steps first..end, before anything is logged: raise to stop the run."""

  def log(self, end: int, metrics: Any, rates: dict) -> float:
    """Writes the rows of the call ending at `end`; returns the loss for the progress line."""

  def evaluate(self, state: Any, step: int) -> None:
    """Periodic eval rows of the state at `step`."""


@dataclasses.dataclass
class Outcome:
  state: Any
  step: int  # the last step trained (start when a finished run was restored)
  compile_s: float | None  # first calls' wall time (compile + K steps), every session; None: no call
  # The loop's wall time over every session (totals), to the final checkpoint's save: the
  # figure that checkpoint's meta holds, so a summary rebuilt from it (a rerun of a finished
  # run whose summary.json was lost) says the same (it said 2.58 s of a run's 3.17 s: the
  # final save's wait, after the meta was written, was counted only the first time).
  train_wall_s: float | None = 0.0
  saved_totals: dict | None = None  # the totals in the last checkpoint this session saved


def totals(prior: dict, wall: float, compile_s: float | None) -> dict:
  """Training seconds summed over a run's sessions, carried from one to the next in each
  checkpoint's meta: a resumed run's summary.json counted its last session's alone (one
  preempted while probing, then rerun: 0.002 s for 3000 steps). `prior`: the restored meta
  ({} for a fresh run, or a checkpoint saved before these fields: its sessions uncounted)."""
  parts = [v for v in (prior.get("compile_s"), compile_s) if v is not None]
  return {"train_wall_s": prior.get("train_wall_s", 0.0) + wall,
          "compile_s": sum(parts) if parts else None}


def call_steps(train, step: int) -> int:
  """Steps the jit call starting after `step` runs: train.steps_per_call, fewer at the end
  (0 when none is left). The loop's, and the one train/ensemble compile ahead on CPU."""
  return max(min(train.steps_per_call, train.num_steps - step), 0)


def _close(ckpt: ckpt_lib.Checkpointer, writers) -> None:
  try:
    ckpt.close()
  finally:
    for w in writers:
      w.close()


def run(kind: Step, state, *, start: int, train, ckpt: ckpt_lib.Checkpointer, writers,
        guard: preemption.Guard, progress: metrics_lib.Progress, prior: dict | None = None,
        environment: dict | None = None) -> Outcome:
  """Trains `state` from step `start` to `train.num_steps` (config.train: cadences, K).
  `prior`: the restored checkpoint's meta, whose training seconds the totals continue.
  `environment` (research/run_environment.current) goes into every checkpoint's meta.

  Owns `ckpt` and `writers` from here on: both are closed when the loop ends, however it
  ends (the writers even when the checkpoint's last write failed: disk full).
  """
  # The clock starts at the step's compile where that came first (CPU: host_memory's check),
  # so that train_wall_s holds compile_s as it does on accelerators.
  prior, t0 = prior or {}, time.perf_counter() - getattr(kind, "precompile_s", 0.0)
  try:
    outcome = _loop(kind, state, start, train, ckpt, writers, guard, progress, prior, t0,
                    environment)
  except BaseException as failed:
    if errors.lost_peer(failed):
      # Closing waits on barriers with the lost process (a save's async_write_complete:
      # 100 s, then a warning); what was committed is saved, the rest cannot be.
      raise
    try:  # the loop's error is the one to report (it names the path; a full disk fails both)
      _close(ckpt, writers)
    except Exception as e:  # noqa: BLE001
      if isinstance(failed, preemption.Preempted):
        raise  # its "checkpoint saved" would be untrue: the failed write is the outcome
      logging.warning("closing the checkpointer and writers after the error failed too: %s", e)
    raise
  _close(ckpt, writers)
  if outcome.compile_s is None:  # a finished run restored: nothing trained, nothing to add
    # (None from a checkpoint saved before the totals: unknown, not 0 s)
    done = {"train_wall_s": prior.get("train_wall_s"), "compile_s": prior.get("compile_s")}
  elif outcome.saved_totals and outcome.saved_totals["step"] == outcome.step:
    done = {k: outcome.saved_totals[k] for k in ("train_wall_s", "compile_s")}
  else:  # not saved at its last step (no checkpointer write there): the time now
    done = totals(prior, time.perf_counter() - t0, outcome.compile_s)
  outcome = dataclasses.replace(outcome, **done)
  if guard.is_set():  # SIGTERM during the last calls or the final save, which completed
    raise preemption.Preempted(
        f"preempted (SIGTERM) after the final checkpoint (step {outcome.step}) was saved; "
        "probes not run; rerun the same command to probe")
  return outcome


def _loop(kind: Step, state, start: int, tr, ckpt, writers, guard, progress, prior: dict,
          t0: float, environment: dict | None) -> Outcome:
  calls: dict[int, Callable] = {}

  saved: dict = {}

  def save(step: int, force: bool = False) -> None:
    for w in writers:  # the rows of the steps it holds reach the disk before the checkpoint
      w.sync()
    meta = {"step": step, **totals(prior, time.perf_counter() - t0, compile_s)}
    if environment:
      meta["environment"] = environment
    if ckpt.save(step, state, meta, force=force):
      saved.clear()
      saved.update(meta)

  # (first step, last step, device metrics, when they were ready if known) not yet read
  pending = None

  def drain(next_ready: float | None = None):
    nonlocal pending
    if pending is None:
      return
    first, end, m, ready_at = pending
    pending = None
    m = jax.device_get(m)
    # A window ends when its call's steps were done, not when the host reads them: where the
    # call ran during its dispatch (XLA:CPU runs small programs there), the next call's steps
    # were done before this read, and a trial's last window held none (MFU 1014%). A call
    # read late whose successor was done at its dispatch was done by then too.
    done_at = ready_at if ready_at is not None else time.perf_counter()
    if next_ready is not None:
      done_at = min(done_at, next_ready)
    kind.check(first, end, m)
    if end % tr.log_every == 0 or end == tr.num_steps:
      rates = progress.measure(end, done_at)  # {} for a window inside the first call
      loss = kind.log(end, m, rates)
      if rates:
        logging.info("%s%s", kind.label, progress.line(end, loss, rates))
      else:
        logging.info("%sstep %d/%d | loss %.4g", kind.label, end, tr.num_steps, loss)
      ckpt.seal_committed()  # checksums of a finished async save, without waiting for the next

  step, compile_s = start, None
  keep = ckpt_lib.kept_steps(tr)  # train.keep_log_spaced: saved (and kept) at these too
  while step < tr.num_steps:
    if guard.is_set():
      drain()
      ckpt.wait()
      if ckpt.latest_step() != step:
        save(step, force=True)
        ckpt.wait()  # committed before saying so: a failed save is this loop's error (exit 5)
      raise preemption.Preempted(
          f"preempted (SIGTERM) at step {step}; checkpoint saved in {ckpt.directory}; "
          "rerun the same command to resume")
    k = call_steps(tr, step)
    if k not in calls:
      calls[k] = kind.call(k)
    state, m = calls[k](state)
    if compile_s is None:
      jax.block_until_ready(m)
      compile_s = time.perf_counter() - t0  # the precompile included (t0)
      progress.start(step + k)  # rates exclude the first call: its compile and its steps
      logging.info("%sfirst call (compile + %d steps): %.1fs", kind.label, k, compile_s)
    ready_at = time.perf_counter() if _ready(m) else None  # ran during its dispatch
    drain(ready_at)
    pending = (step + 1, step + k, m, ready_at)
    step += k
    if tr.eval_every and (step % tr.eval_every == 0 or step == tr.num_steps):
      drain()
      kind.evaluate(state, step)
    if ((tr.checkpoint_every and step % tr.checkpoint_every == 0) or step == tr.num_steps
        or step in keep):
      drain()  # never checkpoint a state whose losses were not checked
      save(step)
  drain()
  return Outcome(state=state, step=step, compile_s=compile_s, saved_totals=saved or None)


def _ready(metrics) -> bool:
  """Whether a call's metrics are computed already (host values, or device arrays that are
  ready: the call ran during its dispatch), without waiting for them."""
  return all(getattr(x, "is_ready", lambda: True)() for x in jax.tree.leaves(metrics))
