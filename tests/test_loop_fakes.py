"""research/loop.py alone, with fakes around it (clock, step, checkpointer, guard, progress):
which steps a loss check names, the eval cadence, the seconds a run records over sessions,
and what SIGTERM saves."""
import numpy as np
import pytest

from research import loop, preemption


class _Clock:
  """time.perf_counter for the loop: stands still unless moved, so seconds are exact."""
  def __init__(self, now=100.0):
    self.now = now

  def perf_counter(self):
    return self.now


class _FakeStep:
  label = ""

  def __init__(self, precompile_s=0.0, guard=None, stop_after=None):
    self.precompile_s, self.guard, self.stop_after = precompile_s, guard, stop_after
    self.windows, self.logged, self.evaluated = [], [], []

  def call(self, k):
    def f(state):
      if self.guard is not None and state + k == self.stop_after:
        self.guard.flag = True  # SIGTERM arrives during the call that ends at stop_after
      return state + k, {"loss": np.arange(state + 1, state + k + 1, dtype=np.float64)}
    return f

  def check(self, first, end, m):
    self.windows.append((first, end, list(m["loss"])))

  def log(self, end, m, rates):
    self.logged.append(end)
    return float(np.mean(m["loss"]))

  def evaluate(self, state, step):
    self.evaluated.append((state, step))


class _FakeCkpt:
  directory = "/ckpt"

  def __init__(self):
    self.saves = []

  def save(self, step, state, meta, force=False):
    self.saves.append((step, force, meta))
    return True

  def latest_step(self):
    return self.saves[-1][0] if self.saves else None

  def wait(self):
    pass

  def seal_committed(self):
    pass

  def close(self):
    pass


class _FakeGuard:
  flag = False

  def is_set(self):
    return self.flag


class _FakeProgress:
  def __init__(self):
    self.started = []

  def start(self, step):
    self.started.append(step)

  def measure(self, step, now=None):
    return {}


def _train_cfg(**kw):
  from ml_collections import ConfigDict
  return ConfigDict(dict(num_steps=7, steps_per_call=3, log_every=3, eval_every=0,
                         checkpoint_every=0, keep_log_spaced=False) | kw)


def _run_fake(monkeypatch, tr, start=0, prior=None, **step_kw):
  clock = _Clock()
  monkeypatch.setattr(loop, "time", clock)
  kind, ckpt, progress = _FakeStep(**step_kw), _FakeCkpt(), _FakeProgress()
  guard = step_kw.get("guard") or _FakeGuard()
  out = loop.run(kind, start, start=start, train=tr, ckpt=ckpt, writers=[], guard=guard,
                 progress=progress, prior=prior)
  return out, kind, ckpt, progress


def test_each_calls_losses_are_checked_as_the_steps_they_are(monkeypatch):
  # 7 steps, 3 a call: windows 1-3, 4-6, 7-7 (1-based steps, as the non-finite error names
  # them), and a resumed run from step 3 checks 4-6 and 7-7; the progress clock starts after
  # the first call's steps (its compile is not a rate).
  out, kind, _, progress = _run_fake(monkeypatch, _train_cfg())
  assert [(f, e) for f, e, _ in kind.windows] == [(1, 3), (4, 6), (7, 7)]
  assert [losses for _, _, losses in kind.windows] == [[1, 2, 3], [4, 5, 6], [7]]
  assert progress.started == [3] and kind.logged == [3, 6, 7] and out.step == 7
  out, kind, _, progress = _run_fake(monkeypatch, _train_cfg(), start=3)
  assert [(f, e) for f, e, _ in kind.windows] == [(4, 6), (7, 7)]
  assert progress.started == [6]


def test_periodic_eval_runs_at_its_cadence_and_at_the_last_step(monkeypatch):
  _, kind, _, _ = _run_fake(monkeypatch, _train_cfg(num_steps=10, steps_per_call=2,
                                                    eval_every=4))
  assert [s for _, s in kind.evaluated] == [4, 8, 10]
  assert all(state == s for state, s in kind.evaluated)  # the state trained to that step


def test_training_seconds_add_up_over_sessions():
  assert loop.totals({}, 1.5, 0.25) == {"train_wall_s": 1.5, "compile_s": 0.25}
  prior = {"train_wall_s": 2.0, "compile_s": 0.5}
  assert loop.totals(prior, 1.5, 0.25) == {"train_wall_s": 3.5, "compile_s": 0.75}
  assert loop.totals(prior, 1.5, None) == {"train_wall_s": 3.5, "compile_s": 0.5}
  assert loop.totals({"train_wall_s": 2.0}, 1.5, None) == {"train_wall_s": 3.5,
                                                           "compile_s": None}


def test_the_precompile_seconds_count_in_compile_and_wall_time(monkeypatch):
  # The clock stands still, so every second measured is the precompile's 3 s (CPU: the
  # host-memory check compiled the step before the loop), on top of a prior session's.
  prior = {"train_wall_s": 10.0, "compile_s": 1.0}
  out, _, ckpt, _ = _run_fake(monkeypatch, _train_cfg(), prior=prior, precompile_s=3.0)
  assert [(s, f) for s, f, _ in ckpt.saves] == [(7, False)]
  meta = ckpt.saves[0][2]
  assert (meta["step"], meta["train_wall_s"], meta["compile_s"]) == (7, 13.0, 4.0)
  assert (out.train_wall_s, out.compile_s) == (13.0, 4.0)


def test_sigterm_saves_the_current_step_when_the_newest_checkpoint_is_older(monkeypatch):
  # checkpoint_every 4, 2 steps a call: step 4 is saved; SIGTERM during the call ending at
  # step 6 makes the loop save step 6 (forced) before it stops.
  guard = _FakeGuard()
  clock = _Clock()
  monkeypatch.setattr(loop, "time", clock)
  kind, ckpt = _FakeStep(guard=guard, stop_after=6), _FakeCkpt()
  tr = _train_cfg(num_steps=10, steps_per_call=2, checkpoint_every=4)
  with pytest.raises(preemption.Preempted, match="at step 6"):
    loop.run(kind, 0, start=0, train=tr, ckpt=ckpt, writers=[], guard=guard,
             progress=_FakeProgress())
  assert [(s, f) for s, f, _ in ckpt.saves] == [(4, False), (6, True)]
  assert kind.windows[-1][:2] == (5, 6)  # its losses were checked before the save


def test_a_finished_run_restored_keeps_its_recorded_seconds_or_none(monkeypatch):
  """Restored at num_steps, nothing trains: the totals are the checkpoint's, and a checkpoint
  saved before the totals existed gives None (unknown), not 0 s."""
  out, kind, ckpt, _ = _run_fake(monkeypatch, _train_cfg(), start=7,
                                 prior={"train_wall_s": 5.0, "compile_s": 1.0})
  assert (out.step, out.train_wall_s, out.compile_s) == (7, 5.0, 1.0)
  assert kind.windows == [] and ckpt.saves == []
  out, _, _, _ = _run_fake(monkeypatch, _train_cfg(), start=7, prior={})
  assert (out.train_wall_s, out.compile_s) == (None, None)


def test_a_window_ends_when_its_steps_were_done_not_when_they_were_read(monkeypatch):
  """XLA:CPU runs a small program during its dispatch: the host read call i's metrics after
  dispatching call i+1, so window i held call i+1's seconds and the last window none (a
  trial: 713 steps/s, MFU 1014% at the last step, summary.json's final_mfu). Each call here
  takes 1 s a step during its dispatch; every window must read 1 step/s. Control: metrics
  not ready at dispatch (async) are timed when read, as before."""
  from research import metrics
  clock = _Clock()
  monkeypatch.setattr(loop, "time", clock)
  monkeypatch.setattr(metrics, "time", clock)

  class Sync(_FakeStep):
    def call(self, k):
      f = super().call(k)
      def run(state):
        clock.now += k  # the steps run during the dispatch
        return f(state)
      return run

    def log(self, end, m, rates):
      self.rates.append((end, rates.get("steps_per_s")))
      return super().log(end, m, rates)

  monkeypatch.setattr(metrics.jax, "process_count", lambda: 1)
  progress = metrics.Progress(total_steps=8, examples_per_step=1, tokens_per_step=1,
                              flops_per_step=1.0, peak_flops=0.0, num_devices=1)
  kind = Sync()
  kind.rates = []
  loop.run(kind, 0, start=0, train=_train_cfg(num_steps=8, steps_per_call=2, log_every=2),
           ckpt=_FakeCkpt(), writers=[], guard=_FakeGuard(), progress=progress)
  assert kind.rates == [(2, None), (4, 1.0), (6, 1.0), (8, 1.0)]

  class NotReady:  # a device array still computing at dispatch: read (and timed) later
    def is_ready(self):
      return False

  assert not loop._ready({"loss": NotReady()}) and loop._ready({"loss": np.zeros(2)})


def test_a_call_read_late_before_one_done_at_dispatch_gives_no_impossible_window(monkeypatch):
  """Call 2 not done at its dispatch (read, and timed, after call 3's dispatch), call 3 done
  at its own: call 2's window ended by call 3's done time, not at the later read; the window
  after it measures no time and is shown with the two windows' rates together, never as 2e9
  steps/s nor without rates (the final window's are summary.json's; two reviews' repros)."""
  from research import metrics

  class Tick:
    now = 100.0

    def perf_counter(self):
      self.now += 0.001  # every read of the clock is a little later
      return self.now

  clock = Tick()
  monkeypatch.setattr(loop, "time", clock)
  monkeypatch.setattr(metrics, "time", clock)
  monkeypatch.setattr(metrics.jax, "process_count", lambda: 1)
  script = iter([True, False, True, True, True])
  monkeypatch.setattr(loop, "_ready", lambda m: next(script))

  class Logged(_FakeStep):
    def log(self, end, m, rates):
      self.rates.append(rates.get("steps_per_s"))
      return super().log(end, m, rates)

  kind = Logged()
  kind.rates = []
  progress = metrics.Progress(total_steps=10, examples_per_step=1, tokens_per_step=1,
                              flops_per_step=1.0, peak_flops=0.0, num_devices=1)
  loop.run(kind, 0, start=0, train=_train_cfg(num_steps=10, steps_per_call=2, log_every=2),
           ckpt=_FakeCkpt(), writers=[], guard=_FakeGuard(), progress=progress)
  # every window after the first call's has rates (the one that measured no time: those of
  # it and the window before together), none beyond the steps run in the clock's ticks
  assert len(kind.rates) == 5 and kind.rates[0] is None and None not in kind.rates[1:]
  assert all(0 < r <= 2 / 0.001 for r in kind.rates[1:]), kind.rates
