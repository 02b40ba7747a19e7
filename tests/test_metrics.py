"""research/metrics.py's numbers: the progress line's rates over each logging window, the
CPU peak kept across processes, and the rows read back at one step."""
import json
import os
import platform

import pytest

from research import metrics


class _Clock:
  def __init__(self, now):
    self.now = now

  def perf_counter(self):
    return self.now


def test_rates_cover_the_steps_and_seconds_of_each_window_alone(monkeypatch):
  """start(10) at t=100 (after the first call), a log at step 30 at t=104, the next at step
  40 at t=106: 20 steps in 4 s, then 10 in 2 s, each window 5 steps/s on its own."""
  clock = _Clock(100.0)
  monkeypatch.setattr(metrics, "time", clock)
  p = metrics.Progress(total_steps=100, examples_per_step=8, tokens_per_step=8 * 32,
                       flops_per_step=1e9, peak_flops=1e11, num_devices=1)
  p.start(10)
  clock.now = 104.0
  r = p.measure(30)
  assert r == pytest.approx({"steps_per_s": 5.0, "examples_per_s": 40.0, "tokens_per_s": 1280.0,
                             "eta_s": 14.0, "mfu": 0.05})  # eta: 70 steps left at 5/s
  clock.now = 106.0
  r = p.measure(40)
  assert r["steps_per_s"] == pytest.approx(5.0) and r["eta_s"] == pytest.approx(12.0)
  assert p.measure(40) == {}  # nothing trained since: no rates
  # No peak known (an unknown device): no MFU.
  q = metrics.Progress(total_steps=100, examples_per_step=1, tokens_per_step=1,
                       flops_per_step=1.0, peak_flops=0.0, num_devices=1)
  q.start(0)
  clock.now = 107.0
  assert "mfu" not in q.measure(10)


def test_the_cpu_peak_is_the_best_ever_measured_on_this_cpu(tmp_path, monkeypatch):
  """A measurement under load (3e9) does not replace the kept best (5e9): MFU would inflate;
  a better one (7e9) raises it, and the file keeps it."""
  monkeypatch.setenv("HOME", str(tmp_path))
  key = f"{metrics._cpu_model()}|{os.cpu_count()}|{platform.machine()}"
  path = tmp_path / ".cache" / "research_jax" / "cpu_peak.json"
  path.parent.mkdir(parents=True)
  path.write_text(json.dumps({key: 5e9, "other cpu|2|x": 1.0}))
  monkeypatch.setattr(metrics, "measure_matmul_peak", lambda reps=8: 3e9)
  assert metrics._cpu_peak.__wrapped__()[0] == 5e9
  assert json.loads(path.read_text())[key] == 5e9
  monkeypatch.setattr(metrics, "measure_matmul_peak", lambda reps=8: 7e9)
  assert metrics._cpu_peak.__wrapped__()[0] == 7e9
  assert json.loads(path.read_text()) == {key: 7e9, "other cpu|2|x": 1.0}


def test_the_rows_logged_at_a_step_are_that_steps_alone(tmp_path):
  """logged_at(20) merges step 20's metrics and perf rows; step 10's evaluation is not
  step 20's (summary.json's final_* read back on a rerun)."""
  w = metrics.MetricsWriter(str(tmp_path), resume_step=0)
  w.write(10, {"loss": 2.0})
  w.write(10, {"eval_acc": 0.5})
  w.write(10, {"steps_per_s": 3.0}, perf=True)
  w.write(20, {"loss": 1.0})
  w.write(20, {"steps_per_s": 4.0}, perf=True)
  w.close()
  assert metrics.logged_at(tmp_path, 20) == {"loss": 1.0, "steps_per_s": 4.0}
  assert metrics.logged_at(tmp_path, 10) == {"loss": 2.0, "eval_acc": 0.5, "steps_per_s": 3.0}
  assert w.latest() == {"loss": 1.0, "steps_per_s": 4.0}
