"""experiments/common.wall_times, the one way every experiment records its time: `wall_s` is
the training seconds its runs recorded when they trained (the same when a rerun reuses them),
`call_wall_s` this call's. Before, wall_s was the call's own seconds, so a rerun that reused
every run replaced the ladder's 42.2 s with 1.7 s and nanda2023's 22.4 s with 2.6 s.

The reruns themselves: tests/test_emergence_scale.py::test_tiny_sweep_end_to_end,
tests/test_scaling_laws.py::test_tiny_grid_end_to_end (default suite);
tests/test_ladder_experiment.py::test_tiny_ladder_end_to_end and
tests/test_grokking.py::test_grokking_experiment_runs_both_weight_decays (-m slow).
"""
import json
import time

import pytest

from experiments import common, summaries


def test_training_seconds_are_what_the_runs_recorded():
  solo = {"final_step": 10, "train_wall_s": 30.0}  # a run's summary.json
  row = {"run": "000_x", "status": "done", "wall_s": 12.0}  # a research.sweep row
  # Every member of an ensemble of 4 records the ensemble's 20 s: 5 s each, 20 s in all.
  members = [{"wall_s": 20.0, "ensemble_size": 4}] * 4
  failed = {"run": "001_y", "status": "failed", "error": "boom"}  # recorded no seconds
  assert common.training_seconds([solo, row, *members, failed]) == 30.0 + 12.0 + 20.0
  assert common.training_seconds([]) == 0.0
  # summary.json's own figure is preferred where a dict has both
  assert common.training_seconds([{"train_wall_s": 3.0, "wall_s": 99.0}]) == 3.0


def test_wall_times_keep_training_apart_from_the_call():
  t0 = time.perf_counter() - 2.0  # a call that has run 2 s (a rerun's reuse, say)
  times = common.wall_times([{"train_wall_s": 42.2}], t0)
  assert times["wall_s"] == 42.2 and 2.0 <= times["call_wall_s"] < 60
  assert common.wall_text(times).startswith("training 42 s (this call ")


def test_run_summaries_finds_the_runs_and_not_other_summaries(tmp_path):
  """reproduce does not know which runs an experiment trained: every run's summary.json under
  its run directory (runs/NAME, seed_<n>/L2, a replay), and not a summary.json of something
  else (reproduce's own lies above run/; one without train_wall_s is not a run's)."""
  for d, secs in (("seed_0/runs/000_a", 1.5), ("seed_0/runs/001_b", 2.5), ("seed_1/L2", 4.0)):
    (tmp_path / d).mkdir(parents=True)
    (tmp_path / d / "summary.json").write_text(json.dumps({"final_step": 5, "train_wall_s": secs}))
  (tmp_path / "seed_1" / "summary.json").write_text(json.dumps({"claims": []}))
  (tmp_path / "seed_1" / "L2" / "probes").mkdir()
  found = common.run_summaries(tmp_path)
  assert sorted(s["train_wall_s"] for s in found) == [1.5, 2.5, 4.0]
  assert common.training_seconds(found) == 8.0


def test_reproduce_summary_records_training_and_call_seconds(tmp_path):
  s = summaries.summarize("garg2022", "tiny", tmp_path, wall_s=42.2, call_wall_s=1.7)
  saved = json.loads((tmp_path / "garg2022" / "summary.json").read_text())
  assert (saved["wall_s"], saved["call_wall_s"]) == (42.2, 1.7) == (s["wall_s"], s["call_wall_s"])
  assert "training 42 s (this call 2 s)" in (tmp_path / "garg2022" / "summary.md").read_text()


@pytest.mark.parametrize("name", ["ladder", "nanda2023", "olsson2022", "xie2021", "raventos2023",
                                  "schaeffer2023", "scaling_laws", "reproduce"])
def test_every_script_that_writes_wall_s_uses_the_shared_helper(name):
  """No script times its own call as wall_s again (the per-script copies this replaced)."""
  import importlib
  import inspect
  source = inspect.getsource(importlib.import_module(f"experiments.{name}"))
  assert "common.wall_times(" in source
  assert '"wall_s": time.perf_counter()' not in source and 'res["wall_s"] = time' not in source
  assert '"wall_s": wall,' not in source


def test_a_recorded_wall_time_keeps_the_other_presets_and_experiments(tmp_path):
  """wall_times.json holds NAME -> PRESET -> time: recording garg2022's cpu time keeps its tiny
  time and ladder's, and replaces only garg2022/cpu."""
  path = tmp_path / "wall_times.json"
  summaries.record_wall_time("garg2022", "tiny", 12.34, 1, "m", path=path)
  summaries.record_wall_time("ladder", "cpu", 50.0, 1, "m", path=path)
  summaries.record_wall_time("garg2022", "cpu", 99.96, 3, "m", path=path)
  times = summaries.read_wall_times(path)
  assert {n: sorted(t) for n, t in times.items()} == {"garg2022": ["cpu", "tiny"],
                                                      "ladder": ["cpu"]}
  assert (times["garg2022"]["tiny"]["seconds"], times["garg2022"]["cpu"]["seconds"],
          times["garg2022"]["cpu"]["seeds"]) == (12.3, 100.0, 3)
