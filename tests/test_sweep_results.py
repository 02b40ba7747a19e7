"""research/sweep_results.py: the sweep's table, one row per point: which run a point keeps, the
run's own totals and final metrics, a point without a done row counted failed, and which
failures count as refused."""
import json

from research.errors import InputError


def test_names_keep_a_point_its_own_run_and_never_anothers(tmp_path):
  """Results.names: a new point of the same overrides as a row that another point of the list
  is named never takes that row (both would train as one run); a point whose run directory
  exists keeps it, and takes no older row of its overrides (a mutation audit)."""
  from research import sweep_results, workdir as workdir_lib
  path = tmp_path / "results.jsonl"
  path.write_text(json.dumps({"run": "000_seed=0", "status": "done", "overrides": {"seed": 0}})
                  + "\n")
  res = sweep_results.Results(path)
  assert res.names([{"seed": 0}, {"seed": 0}]) == ["000_seed=0", "001_seed=0"]
  # a point inserted before it: the old row is kept under its old name ...
  assert res.names([{"seed": 5}, {"seed": 0}]) == ["000_seed=5", "000_seed=0"]
  # ... unless the point's own run directory exists (it started under its new name)
  workdir_lib.sweep_run_dir(tmp_path, "001_seed=0").mkdir(parents=True)
  assert res.names([{"seed": 5}, {"seed": 0}]) == ["000_seed=5", "001_seed=0"]


def test_a_row_reads_the_runs_own_totals_and_final_metrics(tmp_path):
  """wall_s is the run's training seconds over all its sessions (summary train_wall_s), not
  this session's; final.* drops the 'final_' prefix; a summary with an error is failed."""
  from research import sweep_results
  summary = {"final_loss": 1.5, "final_step": 20, "train_wall_s": 90.0, "tokens_seen": 1000,
             "train_flops_per_token": 6.0, "num_params": 7}
  row = sweep_results._row("000_seed=0", {"seed": 0}, summary, 40.0, tmp_path)
  assert row["wall_s"] == 90.0 and row["final"] == {"loss": 1.5, "step": 20}
  assert row["train_flops"] == 6000.0 and row["status"] == "done"
  assert sweep_results._row("x", {}, {"final_loss": 1.0}, 40.0, tmp_path)["wall_s"] == 40.0
  assert sweep_results._row("x", {}, {"error": "froze"}, 1.0, tmp_path)["status"] == "failed"


def test_a_point_without_a_done_row_is_a_failed_run(tmp_path):
  """failed_runs: every name whose row is not 'done', a name with no row at all included (a
  point that never wrote one did not finish)."""
  from research import sweep_results
  path = tmp_path / "results.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in [
      {"run": "a", "status": "done"}, {"run": "b", "status": "failed"}, {"run": "c"}]))
  res = sweep_results.Results(path)
  assert sweep_results.failed_runs(res, ["a", "b", "c", "d"]) == ["b", "c", "d"]


def test_only_refused_input_marks_a_failed_row_refused(tmp_path):
  """A failed point is 'refused' (exit 2: a rerun would meet it again) only for InputError; a
  crash (a plain ValueError, a RuntimeError) is a failure a rerun retries (exit 6)."""
  from research import sweep_results
  row = lambda e: sweep_results._failed_row("000_seed=0", {"seed": 0}, tmp_path, e)
  assert row(InputError("no such file"))["refused"] is True
  assert row(ValueError("shapes differ"))["refused"] is False
  assert row(RuntimeError("XLA"))["refused"] is False
  assert row(ValueError("x"))["error"] == "ValueError: x" and row(ValueError("x"))["status"] == "failed"
