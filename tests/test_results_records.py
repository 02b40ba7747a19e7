"""research.results_records: the runs under some directories read as rows: their columns and
names, the state column, a sweep's gone runs, --where filters, and what makes a run unreadable."""
import json

import pytest

from research import results, results_records
from research.errors import InputError
from results_fixtures import write_run, write_sweep


@pytest.fixture
def sweep_dir(tmp_path):
  return write_sweep(tmp_path / "scale")


def test_flatten_dots_nested_fields_and_keeps_lists_as_text():
  flat = results_records.flatten({"a": {"b": 1, "c": {"d": "x"}}, "e": [1, [2, None]], "f": None})
  assert flat == {"a.b": 1, "a.c.d": "x", "e": "[1, [2, null]]", "f": None}


def test_every_run_below_the_directories_is_one_row(sweep_dir, tmp_path):
  other = write_run(tmp_path / "solo", 32, 3e-4, [2.0, 1.5])
  rows = results_records.records([sweep_dir, other])
  assert [r["run"] for r in rows] == ["scale/runs/000_width=16", "scale/runs/001_width=64",
                                      "scale/runs/002_width=256", "solo"]
  r = rows[1]
  assert r["model.width"] == 64 and r["optim.learning_rate"] == 1e-3
  assert r["summary.num_params"] == 6400 and r["summary.final_loss"] == 2.0
  assert r["last.step"] == 30 and r["last.loss"] == 2.0  # the LAST metrics row
  assert r["sharding.rules"] == '[["a", null]]'
  # A run missing a file still has a row, with the columns it has.
  (tmp_path / "solo" / "summary.json").unlink()
  assert "summary.num_params" not in results_records.records([other])[0]


def test_runs_of_the_same_name_are_told_apart(tmp_path):
  """Two run directories named alike, each given itself (r6/run, r7/run): both were "run"."""
  a = write_run(tmp_path / "r6" / "run", 16, 1e-3, [2.0])
  b = write_run(tmp_path / "r7" / "run", 32, 1e-3, [2.0])
  assert [r["run"] for r in results_records.records([a, b])] == [str(a), str(b)]
  assert [r["run"] for r in results_records.records([a])] == ["run"]  # control: one, its name
  # Given twice (`results DIR DIR`, a sweep and its run): a row per root counted it twice.
  assert len(results_records.records([a, a, b, b.parent])) == 2


def test_a_probe_write_cut_by_a_kill_is_not_a_probe(tmp_path):
  """A process killed while writing probes/icl_regression.json leaves the hidden temporary
  .icl_regression.tmpPID.json (workdir.atomic_path): it was tabled as another probe's
  columns, or, half written, made every later table exit 6. Control: the probe is read."""
  run = write_run(tmp_path / "run", 16, 1e-3, [2.0])
  (run / "probes").mkdir()
  (run / "probes" / "icl_regression.json").write_text(json.dumps({"summary": {"error_at_d": 0.1}}))
  (run / "probes" / ".icl_regression.tmp26329.json").write_text('{"summary": {"error_at_d": 9}}')
  (run / "probes" / ".icl_regression.tmp999.json").write_text("{")
  [row] = results_records.records([run])
  assert row["probes.icl_regression.error_at_d"] == 0.1
  assert not any("tmp" in k for k in row)


def test_last_columns_merge_the_rows_of_the_last_step(tmp_path):
  """The final step logs a training row and then an eval row; the last line alone lost
  last.loss (the scaling-law runs' table had no training loss)."""
  run = write_run(tmp_path / "r", 8, 1e-3, [3.0])
  (run / "metrics.jsonl").write_text(
      '{"step": 10, "loss": 3.0, "eval_loss": 3.5}\n{"step": 20, "loss": 2.0}\n'
      '{"step": 20, "eval_loss": 2.5}\n')
  row = results_records.records([run])[0]
  assert (row["last.step"], row["last.loss"], row["last.eval_loss"]) == (20, 2.0, 2.5)
  (run / "metrics.jsonl").write_text(  # control: a metric missing at the last step stays out
      '{"step": 10, "loss": 3.0, "eval_loss": 3.5}\n{"step": 20, "loss": 2.0}\n')
  row = results_records.records([run])[0]
  assert row["last.loss"] == 2.0 and "last.eval_loss" not in row


@pytest.mark.parametrize("where, widths", [
    (["model.width>=64"], [64, 256]), (["model.width < 64"], [16]),
    (["model.width>16", "optim.learning_rate==0.001"], [64]),
    (["optim.name=adam"], [16, 64, 256]), (["optim.name!=adam"], []),
    (["model.width==1000"], []), (["model.fused_qkv==False"], [16, 64, 256]),
    (["model.fused_qkv=false"], [16, 64, 256]), (["model.fused_qkv!=True"], [16, 64, 256]),
    (["optim.learning_rate==.005"], [256]), (["model.width==064"], [64]),
    (["model.width!=inf"], [16, 64, 256]), (["optim.name==<adam"], [])])
def test_where_filters(sweep_dir, where, widths):
  assert [r["model.width"] for r in results_records.records([sweep_dir], where)] == widths


@pytest.mark.parametrize("where, match", [
    ("model.widht>=64", "no column 'model.widht'.*did you mean model.width"),
    ("model.width", "not FIELD OP VALUE"),
    ("optim.name>3", "does not compare"),
    # these matched no run ('no run matches; loosen the filter') or every run, as typos do:
    # width=>64 read as width == '>64', width==abc and width!=abc a number against text
    ("model.width=>64", r"two operators \('=' then '>'\).*'model.width>=64'"),
    ("model.width>>64", r"two operators \('>' then '>'\)"),
    ("model.width>", "no VALUE after '>'"),
    ("model.width==abc", "holds 16, which does not compare with 'abc'"),
    ("model.width!=abc", "does not compare with 'abc'"),
    ("model.fused_qkv==flase", "holds False, .*'flase'; compare model.fused_qkv with true or false")])
def test_bad_where_is_an_input_error(sweep_dir, where, match):
  with pytest.raises(InputError, match=match):
    results_records.records([sweep_dir], [where])


def test_the_state_column_tells_unfinished_and_failed_runs_from_finished(sweep_dir):
  """An interrupted sweep's runs, or members frozen at a non-finite loss, printed as rows
  like finished ones (their last step and loss), with nothing to tell them apart."""
  runs = sorted((sweep_dir / "runs").iterdir())
  (runs[1] / "summary.json").unlink()  # interrupted: no summary yet
  (runs[2] / "summary.json").write_text(json.dumps(
      {"final_step": 20, "error": "NonFiniteLossError: non-finite loss nan at step 20"}))
  states = [r["state"] for r in results_records.records([sweep_dir])]
  assert states == ["finished", "unfinished", "failed"]
  config = json.loads((runs[0] / "config.json").read_text())
  config["train"]["num_steps"] = 60  # extended: its summary is of the first 30 steps
  (runs[0] / "config.json").write_text(json.dumps(config))
  rows = results_records.records([sweep_dir], where=["state=unfinished"])
  assert [r["run"] for r in rows] == ["runs/000_width=16", "runs/001_width=64"]
  assert results.default_columns(rows)[:2] == ["run", "state"]
  (sweep_dir / "results.jsonl").write_text(json.dumps({"run": runs[1].name, "status": "failed"}))
  # A point failed without a summary:
  assert results_records.records([sweep_dir])[1]["state"] == "failed"
  # The same whichever directory holds it: above the sweep, its runs/, the run itself.
  for given in (sweep_dir.parent, sweep_dir / "runs", runs[1]):
    state = {r["dir"]: r["state"] for r in results_records.records([given])}
    assert state[str(runs[1]) if given != runs[1] else str(given)] == "failed", given


def test_the_sweeps_last_row_for_a_run_decides_failed(sweep_dir):
  """results.jsonl appends a row per attempt: a point that failed, then was rerun to done and
  later extended (unfinished by its files), is unfinished, not failed (its LAST row says
  done). A run its files say finished is failed where its last row says so (trial66a: an
  extension refused for changed data left the run finished at its old train.num_steps, and
  the table said `finished` beside the row's `failed`; the README: "failed: ... a sweep point
  whose run failed, as its results.jsonl row says")."""
  runs = sorted((sweep_dir / "runs").iterdir())
  config = json.loads((runs[1] / "config.json").read_text())
  config["train"]["num_steps"] = 60  # extended: its summary is of the first 30 steps
  (runs[1] / "config.json").write_text(json.dumps(config))
  refused = {"run": runs[0].name, "status": "failed", "refused": True,
             "error": "InputError: ... not the data this run trained on"}
  (sweep_dir / "results.jsonl").write_text(
      json.dumps({"run": runs[1].name, "status": "failed"}) + "\n"
      + json.dumps({"run": runs[1].name, "status": "done"}) + "\n"
      + json.dumps(refused) + "\n")
  states = [r["state"] for r in results_records.records([sweep_dir])]
  assert states == ["failed", "unfinished", "finished"]
  for given in (sweep_dir.parent, sweep_dir / "runs", runs[0]):  # whichever directory holds it
    assert {r["dir"]: r["state"] for r in results_records.records([given])}[str(runs[0])] \
        == "failed", given
  # Control: the sweep rerun to done records a done row after it: finished.
  (sweep_dir / "results.jsonl").write_text(
      json.dumps(refused) + "\n" + json.dumps({"run": runs[0].name, "status": "done"}) + "\n")
  assert [r["state"] for r in results_records.records([sweep_dir])][0] == "finished"
  # Control: the other order (done, then a failed rerun) is failed.
  (sweep_dir / "results.jsonl").write_text(
      json.dumps({"run": runs[1].name, "status": "done"}) + "\n"
      + json.dumps({"run": runs[1].name, "status": "failed"}) + "\n")
  assert [r["state"] for r in results_records.records([sweep_dir])][1] == "failed"
  # A failed point finished by hand (research.main) after the sweep last wrote its table: its
  # summary.json is the newer file, and it is finished (a review: it read failed for good).
  import os
  (sweep_dir / "results.jsonl").write_text(json.dumps(refused) + "\n")
  os.utime(sweep_dir / "results.jsonl", (1_000_000, 1_000_000))
  os.utime(runs[0] / "summary.json", (2_000_000, 2_000_000))
  assert [r["state"] for r in results_records.records([sweep_dir])][0] == "finished"
  os.utime(runs[0] / "summary.json", (500_000, 500_000))  # control: finished before the row
  assert [r["state"] for r in results_records.records([sweep_dir])][0] == "failed"


def test_a_gone_run_is_named_whichever_directory_holds_its_sweep(sweep_dir):
  """Given the sweep's parent, a recorded run whose folder is gone was left out without a word
  (exit 0); given the sweep, it was named (exit 6)."""
  import shutil
  name = sorted((sweep_dir / "runs").iterdir())[0].name
  (sweep_dir / "results.jsonl").write_text(json.dumps({"run": name, "status": "done"}))
  shutil.rmtree(sweep_dir / "runs" / name)
  for given in (sweep_dir, sweep_dir.parent):
    with pytest.raises(InputError, match=f"{name}: recorded in .* the directory is gone"):
      results_records.records([given])
  another = sweep_dir / "runs" / "001_width=64"
  assert len(results_records.records([another])) == 1  # another run: fine
  # A results.jsonl without runs/ beside it is no sweep: nothing of it is "gone".
  (sweep_dir / "runs" / name).mkdir()
  notes = sweep_dir.parent / "notes"
  notes.mkdir()
  (notes / "results.jsonl").write_text(json.dumps({"run": "000_width=16", "status": "done"}))
  assert len(results_records.records([sweep_dir.parent])) == 2


def test_a_point_that_failed_before_its_directory_existed_is_a_failed_row(sweep_dir):
  """A new user's trial: a burstiness sweep's B=4 point failed at its start (no run directory;
  results.jsonl said failed) and the table and figure showed the other three, exit 0, as a
  complete 3-point sweep. Now it is a row: failed, its overrides, the error."""
  import shutil
  rows = [{"run": "001_width=64", "status": "failed", "overrides": {"model.width": 64},
           "error": "IndexError: index is out of bounds"}]
  (sweep_dir / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  shutil.rmtree(sweep_dir / "runs" / "001_width=64")
  for given, prefix in ((sweep_dir, "runs/"), (sweep_dir.parent, "scale/runs/")):
    table = results_records.records([given])
    assert [r["run"] for r in table] == [prefix + n for n in
                                         ("000_width=16", "001_width=64", "002_width=256")]
    assert [r["state"] for r in table] == ["finished", "failed", "finished"]
    assert table[1]["model.width"] == 64
    assert table[1]["summary.error"] == "IndexError: index is out of bounds"
  # Named once when two given directories hold it, under the first (after the other runs).
  both = results_records.records([sweep_dir, sweep_dir.parent])
  assert [r["run"] for r in both].count("scale/runs/001_width=64") == 1 and len(both) == 3
  # Controls: a failed point that was rerun to done and whose folder was then deleted is
  # named gone (not tabled as failed); one whose folder exists is read from its files.
  (sweep_dir / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows + [
      {"run": "001_width=64", "status": "done"}]))
  with pytest.raises(InputError, match="001_width=64: recorded in .* the directory is gone"):
    results_records.records([sweep_dir])
  (sweep_dir / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  (sweep_dir / "runs" / "001_width=64").mkdir()
  (sweep_dir / "runs" / "001_width=64" / "config.json").write_text("{}")
  assert "summary.error" not in results_records.records([sweep_dir])[1]


def test_each_where_column_is_checked_against_every_run(sweep_dir, tmp_path):
  """A second filter's column was looked up among the runs the first left: a column only the
  other runs have was 'no column' (exit 2), and the filters' order changed the answer."""
  other = write_run(tmp_path / "solo", 32, 3e-4, [2.0, 1.5])
  cfg = json.loads((other / "config.json").read_text())
  cfg["task"]["extra_field"] = 7
  (other / "config.json").write_text(json.dumps(cfg))
  for where in (["model.width>=64", "task.extra_field==7"], ["task.extra_field==7", "model.width>=64"]):
    assert results_records.records([sweep_dir, other], where) == []


def test_where_compares_text_as_written_in_a_column_of_text_and_numbers(sweep_dir, tmp_path):
  """An empty text field (init_from='') and a column holding numbers in some runs and text in
  others (runs of two configs in one table) are filters, not typos."""
  other = write_run(tmp_path / "solo", 32, 3e-4, [2.0, 1.5])
  for run, value, source in ((sweep_dir / "runs" / "000_width=16", 5, ""), (other, "all", "/r")):
    cfg = json.loads((run / "config.json").read_text())
    cfg["task"]["max"], cfg["init_from"] = value, source
    (run / "config.json").write_text(json.dumps(cfg))
  widths = lambda *where: [r["model.width"] for r in results_records.records([sweep_dir, other],
                                                                             where)]
  assert widths("task.max==all") == [32] and widths("task.max==5") == [16]
  assert widths("task.max!=all") == [16] and widths("task.max>=5") == [16]
  assert widths("init_from==") == [16, 64, 256] and widths("init_from!=") == [32]


@pytest.mark.parametrize("file,text,needle", [
    ("metrics.jsonl", '{"step": 10, "loss": "2.5"}\n', "step 10's loss is '2.5', not a number"),
    ("metrics.jsonl", '{"step": "ten", "loss": 2.5}\n', "a row's step is 'ten', not a step number"),
    ("metrics.jsonl", '{"step": true, "loss": 2.5}\n', "a row's step is True"),
    ("metrics.jsonl", '{"step": 10, "loss": {"a": 1}}\n', "step 10's loss is {'a': 1}"),
    ("metrics.jsonl", '{"step": 10, "err": [1, "x"]}\n', "step 10's err is [1, 'x']"),
    ("summary.json", '{"num_params": "6400"}', "num_params is '6400', not a number"),
    ("summary.json", '{"final_loss": [1, null, "x"]}', "final_loss is [1, None, 'x']"),
])
def test_a_value_of_the_wrong_type_is_an_unreadable_run(sweep_dir, file, text, needle):
  """An edited value (a loss written as text, a step that is not a number) was tabled,
  sorted and plotted as if it were one, exit 0; now that run is named and left out (exit 6
  from the command), as a damaged file is."""
  run = sorted((sweep_dir / "runs").iterdir())[1]
  (run / file).write_text(text)
  unreadable = []
  rows = results_records.records([sweep_dir], unreadable=unreadable)
  assert len(rows) == 2 and [u[0] for u in unreadable] == [run], unreadable
  assert f"{run / file}: " in unreadable[0][1] and needle in unreadable[0][1], unreadable


def test_what_runs_write_passes_the_type_check(sweep_dir):
  """The control: the values research.metrics and train write (numbers, null for a NaN,
  true/false, per-position lists, nested per-layer lists) and summary text fields."""
  run = sorted((sweep_dir / "runs").iterdir())[1]
  (run / "metrics.jsonl").write_text(
      '{"step": 0, "loss": 2, "lr": 1e-3, "nan": null, "ok": true, "curve": [1.0, 0.5, null],'
      ' "per_layer": [[1, 2], [3, 4]], "empty": []}\n')
  (run / "summary.json").write_text(json.dumps(
      {"num_params": 6400, "final_loss": 2.0, "final_curve": [1.0, None], "probes":
       {"icl_regression": "probes/icl_regression.json"}, "error": "probes failed: x",
       "traceback": "...", "tokens_seen": 0}))
  unreadable = []
  assert len(results_records.records([sweep_dir], unreadable=unreadable)) == 3 and unreadable == []


def test_a_run_given_as_dot_is_named(sweep_dir, monkeypatch):
  """`research.results .` inside a run printed an empty run name."""
  run = next(p.parent for p in sweep_dir.rglob("config.json"))
  monkeypatch.chdir(run)
  assert [r["run"] for r in results_records.records(["."])] == [run.name]


def test_default_columns_are_the_varying_fields_less_the_schedules_last_rate():
  """The last logged learning rate differs with every step count (a schedule's value, not a
  setting): kept out of the default table; a field of two values varies, one of one does
  not (a mutation audit moved both unseen)."""
  row = lambda run, width, lr: {"run": run, "dir": f"/x/{run}", "state": "finished",
                                "model.width": width, "seed": 0, "last.step": 10,
                                "last.loss": 1.0 / width, "last.learning_rate": lr}
  assert results.default_columns([row("a", 16, 1e-3), row("b", 32, 2e-3)]) == [
      "run", "state", "model.width", "last.step", "last.loss"]
  assert results.varying([row("a", 16, 1e-3), row("b", 32, 1e-3), row("c", 32, 1e-3)]) == [
      "model.width", "last.loss"]


def test_a_resumes_changes_are_a_column_shown_by_default(sweep_dir):
  """A new user's trial: a run extended from 40 to 60 steps and one trained to 60 from the
  start (other schedules, other losses) had the same config columns in the table and CSV."""
  runs = sorted((sweep_dir / "runs").iterdir())
  (runs[0] / "config_changes.jsonl").write_text(
      json.dumps({"step": 30, "changes": ["train.num_steps: 30 -> 60"]}) + "\n"
      + json.dumps({"step": 60, "changes": ["optim.learning_rate: 0.001 -> 0.0005"]}) + "\n")
  rows = results_records.records([sweep_dir])
  assert rows[0]["config_changes"] == ("step 30: train.num_steps: 30 -> 60; "
                                       "step 60: optim.learning_rate: 0.001 -> 0.0005")
  assert "config_changes" not in rows[1]  # control: a run never changed has none
  assert "config_changes" in results.default_columns(rows)
  assert "config_changes" not in results.default_columns(rows[1:])  # control
