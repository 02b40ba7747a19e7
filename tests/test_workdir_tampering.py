"""A workdir edited or damaged by hand (found by a fault-injection probe): every such state
is refused with exit 2 and one line, or read as documented; nothing is silently changed."""
import json
import logging

import pytest

from research import errors, results_records, workdir, workdir_layout
from test_entry_points import TINY, _check, _drive
from test_faults import _copy, _snapshot, _tiny, _train, finished  # noqa: F401 (a fixture)


# {} and {"task": "lm"}: "holds a run of another config" and 2,000 characters of fields.


@pytest.mark.parametrize("damage", ["missing", "[]", "null", "{not json", "{}", '{"task": "lm"}'])
def test_checkpoints_without_a_config_are_not_resumed(finished, tmp_path, damage):
  """config.json is what the config check compares with: without it any config (another seed,
  another task) would continue the run and then be recorded as the run's config."""
  wd = _copy(finished, tmp_path / "run")
  if damage == "missing":
    (wd / "config.json").unlink()
  else:
    (wd / "config.json").write_text(damage)
  before = _snapshot(wd)
  with pytest.raises(errors.InputError, match="put the run's config.json back") as e:
    _train(_tiny(**{"train.num_steps": 60}), wd)
  assert "\n" not in str(e.value) and f"--config.init_from={wd}" in str(e.value)
  assert _snapshot(wd) == before


def test_num_steps_below_the_newest_checkpoint_is_refused(finished, tmp_path, caplog):
  wd = _copy(finished, tmp_path / "run")
  before = _snapshot(wd)
  with caplog.at_level(logging.INFO, logger="absl"), pytest.raises(
      errors.InputError, match=r"at step 40, past its config's train.num_steps=30; give "
      r"num_steps >= 40"):
    _train(_tiny(**{"train.num_steps": 30}), wd)
  # The log said "resumed from checkpoint at step 40" just before the refusal.
  assert "model: transformer" in caplog.text and "resumed" not in caplog.text, caplog.text
  assert {k: v for k, v in _snapshot(wd).items() if k != ".lock"} == {
      k: v for k, v in before.items() if k != ".lock"}
  assert _train(_tiny(), wd)["final_step"] == 40  # control: the run's own num_steps


def test_json_files_that_are_not_objects(finished, tmp_path):
  """Valid JSON of the wrong kind ([] for a config, a string row) was a traceback."""
  wd = _copy(finished, tmp_path / "run")
  assert results_records.records([wd])[0]["summary.final_step"] == 40  # control: intact
  (wd / "summary.json").write_text("[1, 2]")
  assert workdir.read_json(wd / "summary.json") is None  # readers: as if missing
  with pytest.raises(errors.InputError, match="summary.json is not a JSON object, a JSON list;"):
    results_records.records([wd])
  # What is wrong with the file is named: where broken JSON breaks, an empty file, bad bytes.
  for text, said in (('{"final_step": 40,\n oops}', "broken JSON at line 2 column 2;"),
                     ("\n", "an empty file;"), (b"\xff\xfe{}", "bytes that are not UTF-8")):
    path = wd / "summary.json"
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    with pytest.raises(errors.InputError, match=said):
      results_records.records([wd])
  (wd / "summary.json").unlink()
  metrics = wd / "metrics.jsonl"
  metrics.write_text('{"step": 20}\n"hello"\n{"step": 40}\n')
  with pytest.raises(errors.InputError, match="line 2 of .* is not a JSON object"):
    workdir.read_jsonl(metrics)
  metrics.write_text('{"step": 20}\n[3]\n')  # a whole last line, not a torn write
  with pytest.raises(errors.InputError, match="line 2"):
    workdir.read_jsonl(metrics)


@pytest.mark.parametrize("name", ["metrics.jsonl", "perf.jsonl"])
def test_a_refused_resume_changes_nothing(finished, tmp_path, name):
  """A damaged metrics line refuses the resume; before, config.json already held the new
  num_steps and config_changes.jsonl a row for a resume that never happened."""
  wd = _copy(finished, tmp_path / "run")
  (wd / name).write_text("garbage\n" + (wd / name).read_text())
  before = _snapshot(wd)
  with pytest.raises(errors.InputError, match=f"line 1 of .*{name} is not a JSON object"):
    _train(_tiny(**{"train.num_steps": 60}), wd)
  assert {k: v for k, v in _snapshot(wd).items() if k != ".lock"} == {
      k: v for k, v in before.items() if k != ".lock"}
  assert not (wd / "config_changes.jsonl").exists()


def test_a_start_that_trained_nothing_is_replaced(finished, tmp_path):
  """A start that failed before its first checkpoint (a pod preset out of memory on a laptop)
  left config.json, so the corrected command was refused as 'another config' with nothing to
  protect: it now starts afresh, replacing that attempt's config and rows."""
  wd = _copy(finished, tmp_path / "run")
  import shutil
  shutil.rmtree(wd / "checkpoints")
  (wd / "checkpoints").mkdir()
  (wd / "summary.json").unlink()
  old_rows = (wd / "metrics.jsonl").read_text()
  c = _tiny(**{"train.num_steps": 20})
  c.seed = 7
  assert _train(c, wd)["final_step"] == 20
  assert json.loads((wd / "config.json").read_text())["seed"] == 7
  assert not (wd / "config_changes.jsonl").exists()  # a fresh start, not a resume
  rows = workdir.read_jsonl(wd / "metrics.jsonl")
  assert rows and max(r["step"] for r in rows) == 20 and (wd / "metrics.jsonl").read_text() != old_rows
  # Control: with its checkpoints, the same change is refused and nothing is touched.
  wd2 = _copy(finished, tmp_path / "run2")
  before = _snapshot(wd2)
  with pytest.raises(workdir.ConfigChangedError, match="seed: 0 -> 7"):
    _train(c, wd2)
  assert {k: v for k, v in _snapshot(wd2).items() if k != ".lock"} == {
      k: v for k, v in before.items() if k != ".lock"}


@pytest.mark.parametrize("damage", ["removed", "emptied"])
def test_a_finished_run_without_checkpoints_is_not_restarted(finished, tmp_path, damage):
  """checkpoints/ removed from a finished run read as a start that trained nothing: the
  rerun restarted from step 0 and deleted metrics.jsonl at once, while summary.json still
  said finished at step 40 (finished_summary reused it). Now exit 4, nothing touched."""
  import shutil
  wd = _copy(finished, tmp_path / "run")
  shutil.rmtree(wd / "checkpoints")
  if damage == "emptied":
    (wd / "checkpoints").mkdir()
  before = _snapshot(wd)
  for c in (_tiny(), _tiny(**{"train.num_steps": 60})):  # the same command, and an extension
    with pytest.raises(errors.NoCheckpointError, match=r"holds a run that finished at step 40 "
                       r"\(summary.json\) but no usable checkpoint in .*use another --workdir") as e:
      _train(c, wd)
    assert e.value.exit_code == errors.EXIT_CHECKPOINT and "\n" not in str(e.value)
    assert _snapshot(wd) == before and (wd / "checkpoints").exists() == (damage == "emptied")
  # Another config is that refusal (exit 2), not "put its checkpoints back" (review 40).
  with pytest.raises(errors.InputError, match="model.width"):
    _train(_tiny(**{"model.width": 48}), wd)
  assert _snapshot(wd) == before
  # A failed run's summary (an ensemble member frozen at a non-finite loss: no checkpoint)
  # is retried from step 0, as a sweep's rerun does.
  (wd / "summary.json").write_text(json.dumps({"final_step": 9, "error": "NonFiniteLossError"}))
  # Its training (rows, the ensemble's checkpoints) is kept from another config (review 42:
  # accepted once any error summary counted as "trained nothing").
  with pytest.raises(errors.InputError, match="model.width"):
    _train(_tiny(**{"model.width": 48}), wd)
  assert _train(_tiny(), wd)["final_step"] == 40


def test_open_run_refuses_a_damaged_config_in_one_line(finished, tmp_path):
  """research.predict.open_run (predict, probe_checkpoints, notebooks) read config.json with
  json.loads: a JSONDecodeError traceback from the library call."""
  from research import predict
  wd = _copy(finished, tmp_path / "run")
  assert predict.open_run(wd).config.task.name  # control: intact
  (wd / "config.json").write_text("{not json")
  with pytest.raises(errors.InputError, match="put the run's config.json back"):
    predict.open_run(wd)


def test_rerunning_a_finished_run_keeps_its_training_record(finished, tmp_path):
  """The same command again restores step 40, trains nothing and re-probes: it wrote its own
  restore's seconds (0.001 s, compile None) over the run's train_wall_s and compile_s, and
  dropped what only an ensemble member's summary holds."""
  wd = _copy(finished, tmp_path / "run")
  before = json.loads((wd / "summary.json").read_text())
  assert before["train_wall_s"] > 0.1 and before["compile_s"] > 0  # control: real figures
  before["ensemble_size"] = 4  # as an ensemble member's summary has it
  before["error"], before["traceback"] = "probes failed: x", "..."  # its probes had failed
  (wd / "summary.json").write_text(json.dumps(before))
  after = _train(_tiny(), wd)
  assert after == json.loads((wd / "summary.json").read_text())
  for key in ("train_wall_s", "compile_s", "ensemble_size", "final_step", "final_loss"):
    assert after[key] == before[key], key
  assert after["probes"] and "error" not in after and "traceback" not in after  # re-probed


def test_a_resume_without_metrics_rows_says_they_are_gone(finished, tmp_path, monkeypatch):
  """metrics.jsonl removed, then the run extended: exit 0, and its metrics began at the
  resume without a word."""
  from research import workdir
  warned = []
  monkeypatch.setattr(workdir.logging, "warning", lambda msg, *a: warned.append(msg % a))
  wd = _copy(finished, tmp_path / "run")
  _train(_tiny(**{"train.num_steps": 60}), wd)
  assert not [w for w in warned if "holds no row" in w]  # control: its rows are there
  wd = _copy(finished, tmp_path / "gone")
  (wd / "metrics.jsonl").unlink()
  _train(_tiny(**{"train.num_steps": 60}), wd)
  assert [w for w in warned if "holds no row up to step 40, where the run resumes" in w]


def test_training_seconds_are_summed_over_sessions(finished, tmp_path):
  """A run preempted while probing (its final checkpoint saved, no summary.json) and rerun
  wrote its rerun's 0.002 s and compile None as the training time of all 40 steps; so did any
  resume, counting only its own session. Each checkpoint's meta now carries the totals."""
  wd = _copy(finished, tmp_path / "run")
  saved = json.loads((wd / "checkpoints" / "40" / "meta" / "metadata").read_text())
  assert saved["train_wall_s"] > 0.1 and saved["compile_s"] > 0  # the one session's
  (wd / "summary.json").unlink()
  after = _train(_tiny(), wd)
  # The same seconds as the checkpoint's: a summary rebuilt from it said 2.58 s of a run's
  # 3.17 s (the final save's wait had been counted after its meta was written).
  assert (after["train_wall_s"], after["compile_s"]) == (saved["train_wall_s"], saved["compile_s"])
  extended = _train(_tiny(**{"train.num_steps": 60}), wd)  # a second session that trains
  assert extended["train_wall_s"] > after["train_wall_s"]
  assert extended["compile_s"] > saved["compile_s"]  # its own first call added


@pytest.mark.parametrize("removed", [("metrics.jsonl",), ("metrics.jsonl", "perf.jsonl")])
def test_rerunning_a_finished_run_without_its_logs_keeps_its_final_values(finished, tmp_path,
                                                                        removed):
  """The rerun reads the final row back from the logs; with metrics.jsonl removed it found
  none and wrote summary.json without final_loss, final_grad_norm, ... (exit 0), and
  `research.results DIR --columns summary.final_loss` then exited 2 'no column'."""
  wd = _copy(finished, tmp_path / "run")
  before = json.loads((wd / "summary.json").read_text())
  finals = {k: v for k, v in before.items() if k.startswith("final_")}
  assert {"final_loss", "final_grad_norm", "final_learning_rate"} <= set(finals)  # control
  for name in removed:
    (wd / name).unlink()
  after = _train(_tiny(), wd)
  assert after == json.loads((wd / "summary.json").read_text())
  assert {k: v for k, v in after.items() if k.startswith("final_")} == finals
  assert results_records.records([wd])[0]["summary.final_loss"] == before["final_loss"]


@pytest.mark.parametrize("damage", ["summary.json", "metrics.jsonl", "checkpoints"])
def test_a_file_where_a_directory_goes_or_back_is_refused_before_writing(finished, tmp_path,
                                                                       damage):
  """summary.json as a directory failed after training (exit 5, half-finished); checkpoints/
  as a file read as no checkpoint: the finished run restarted from step 0, deleting its
  metrics.jsonl and perf.jsonl, before its first save failed."""
  wd = _copy(finished, tmp_path / "run")
  path = wd / damage
  if path.is_dir():
    import shutil
    shutil.rmtree(path)
    path.write_text("x")
  else:
    path.unlink()
    path.mkdir()
  before = _snapshot(wd)
  with pytest.raises(errors.InputError, match=f"{damage} is not a (file|directory) .*move it out"):
    _train(_tiny(**{"train.num_steps": 60}), wd)
  assert _snapshot(wd) == before and (wd / damage).exists()


def test_a_workdir_inside_a_run_or_a_sweep_is_refused(finished, tmp_path):
  """research.main accepted a run's checkpoints/ or a sweep's runs/ folder as --workdir:
  research.results then listed a phantom run inside the other."""
  sweep = tmp_path / "sweep"
  (sweep / "runs" / "000_x").mkdir(parents=True)
  (sweep / "runs" / "000_x" / "config.json").write_text("{}")
  (sweep / "runs" / "zz").mkdir()  # made by hand: no run of the sweep's yet
  (sweep / "results.jsonl").write_text("")
  for bad, needle in ((finished / "checkpoints", "inside the run .*'s checkpoints/"),
                      (finished / "probes" / "x", "inside the run .*'s probes/"),
                      (sweep / "runs", "inside the sweep"), (sweep / "other", "inside the sweep"),
                      # audit 40: a new runs/NAME became a row of the sweep no point made
                      (sweep / "runs" / "zz", "a new folder in the sweep .*'s runs/, where only "
                       "the sweep makes runs"),
                      (sweep / "runs" / "new", "a new folder in the sweep")):
    with pytest.raises(errors.InputError, match=needle):
      workdir_layout.check_kind(bad, "run")
  with pytest.raises(errors.InputError, match="inside the sweep"):
    workdir_layout.check_kind(sweep / "runs" / "000_x", "sweep")  # a sweep inside a sweep's run
  workdir_layout.check_kind(sweep / "runs" / "000_x", "run")  # control: a sweep's own run
  workdir_layout.check_kind(tmp_path / "new", "run")          # and a new directory
  # A new run or sweep inside a run (research.results listed it beside the run, exit 0 before);
  # control: a run already there (garg2022's WORKDIR/sparse_linear) is continued by hand.
  for kind in ("run", "sweep"):
    with pytest.raises(errors.InputError, match=f"inside the run {finished} .research.results"):
      workdir_layout.check_kind(finished / "sub" / "x", kind)
  nested = finished / "sparse_linear"
  nested.mkdir()
  (nested / "config.json").write_text((finished / "config.json").read_text())
  workdir_layout.check_kind(nested, "run")
  old_sweep = finished / "sw"  # and a sweep made there before the rule
  (old_sweep / "runs").mkdir(parents=True)
  (old_sweep / "results.jsonl").write_text("")
  workdir_layout.check_kind(old_sweep, "sweep")


@pytest.mark.parametrize("name", ["metrics.jsonl", "perf.jsonl", "config_changes.jsonl"])
def test_a_damaged_log_is_refused_before_resuming(finished, tmp_path, caplog, name):
  """Refused (exit 2, nothing changed), but after logging "resumed from checkpoint at step
  40"; a damaged config_changes.jsonl was found only when the resume appended to it."""
  wd = _copy(finished, tmp_path / "run")
  (wd / name).write_text('{"step": 1}\nnot json\n{"step": 2}\n')
  before = _snapshot(wd)
  with caplog.at_level(logging.INFO, logger="absl"), pytest.raises(
      errors.InputError, match=f"line 2 of .*{name} is not a JSON object"):
    _train(_tiny(**{"train.num_steps": 60, "optim.learning_rate": 2e-3}), wd)
  assert "model: transformer" in caplog.text and "resumed" not in caplog.text
  assert {k: v for k, v in _snapshot(wd).items() if k != ".lock"} == {
      k: v for k, v in before.items() if k != ".lock"}


def test_a_run_and_a_sweep_keep_their_own_directories(tmp_path):
  """Before: research.main into a sweep's directory and research.sweep into a run's were both
  accepted (exit 0), mixing config.json and checkpoints with results.jsonl and runs/."""
  sweep_dir, run_dir = tmp_path / "sweep", tmp_path / "run"
  (sweep_dir / "runs").mkdir(parents=True)
  (sweep_dir / "results.jsonl").write_text("")
  run_dir.mkdir()
  (run_dir / "config.json").write_text("{}")
  (run_dir / "metrics.jsonl").write_text("")
  [into_sweep] = _drive("research.main", [([TINY, f"--workdir={sweep_dir}"], sweep_dir)])
  _check("a run into a sweep's directory", into_sweep, 2,
         f"--workdir={sweep_dir} holds a sweep (results.jsonl, runs)")
  [into_run] = _drive("research.sweep", [([TINY, "--sweep=scale", f"--workdir={run_dir}"],
                                          run_dir)])
  _check("a sweep into a run's directory", into_run, 2,
         f"--workdir={run_dir} holds a single run (config.json, metrics.jsonl)")
  # Negative control: an empty or new directory is either kind's.
  for kind in ("run", "sweep"):
    workdir_layout.check_kind(tmp_path / "new", kind)
    workdir_layout.check_kind(tmp_path, kind)  # holds only the two directories above


def test_a_run_shortened_to_a_step_between_log_steps_says_it_has_no_final_metrics(
    finished, tmp_path, monkeypatch):
  """Preempted at step 30 (log steps 20, 40), then given num_steps=30: it finished with a
  summary.json without final_* values and without a word."""
  import shutil
  warned = []
  monkeypatch.setattr(workdir.logging, "warning", lambda msg, *a: warned.append(msg % a))
  from research import train
  monkeypatch.setattr(train.logging, "warning", lambda msg, *a: warned.append(msg % a))
  wd = tmp_path / "run"
  _train(_tiny(**{"train.checkpoint_every": 10, "train.keep_checkpoints": 4,
                  "train.steps_per_call": 10}), wd)
  shutil.rmtree(wd / "checkpoints" / "40")  # as if preempted at 30
  (wd / "summary.json").unlink()
  summary = _train(_tiny(**{"train.checkpoint_every": 10, "train.keep_checkpoints": 4,
                            "train.steps_per_call": 10, "train.num_steps": 30}), wd)
  assert summary["final_step"] == 30 and not [k for k in summary if k.startswith("final_")
                                               and k != "final_step"]
  assert [w for w in warned if "no metrics row or summary holds step 30, where this run now ends" in w]
  # Control: a finished run whose logs were removed keeps its summary's final_* (review 42:
  # the warning said they were gone).
  warned.clear()
  wd = _copy(finished, tmp_path / "logs_gone")
  for name in ("metrics.jsonl", "perf.jsonl"):
    (wd / name).unlink()
  assert "final_loss" in _train(_tiny(), wd)
  assert not [w for w in warned if "no metrics row or summary holds" in w]


def test_a_finished_runs_edited_metric_is_refused_not_copied_into_its_summary(finished, tmp_path):
  """A finished run whose last metrics row read "loss": "abc" (edited by hand) was rerun, exit
  0, and summary.json took final_loss "abc"; research.results then said 'rerun that run', the
  step that wrote it. Now the rerun refuses (exit 2, one line naming the file and the row)
  and changes nothing. Control: the row restored, the rerun rewrites the summary."""
  wd = _copy(finished, tmp_path / "run")
  metrics = wd / "metrics.jsonl"
  good = metrics.read_text()
  rows = [json.loads(l) for l in good.splitlines()]
  last = max(i for i, r in enumerate(rows) if "loss" in r)
  rows[last]["loss"] = "abc"
  metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
  before = _snapshot(wd)
  with pytest.raises(errors.InputError, match=rf"metrics.jsonl: step {rows[last]['step']}'s loss "
                     r"is 'abc', not a number: an edited or damaged line; restore the file"):
    _train(_tiny(), wd)
  assert {k: v for k, v in _snapshot(wd).items() if k != ".lock"} == {
      k: v for k, v in before.items() if k != ".lock"}
  metrics.write_text(good)
  assert isinstance(_train(_tiny(), wd)["final_loss"], float)


def test_a_summary_past_the_configs_num_steps_is_not_finished_at_it(finished):
  """workdir.run_state: finished only at train.num_steps exactly. A 40-step run read as the
  finished run of a 20-step config gave that point 40 steps' numbers (a sweep recorded its
  row from the summary); it is unfinished, and the resume refuses it (check_not_past)."""
  twenty = {"train": {"num_steps": 20}}
  assert workdir.run_state(twenty, {"final_step": 20}) == "finished"
  assert workdir.run_state(twenty, {"final_step": 40}) == "unfinished"
  assert workdir.run_state(twenty, {"final_step": 19}) == "unfinished"
  assert workdir.run_state(twenty, {}) == "unfinished"
  assert workdir.run_state(twenty, {"final_step": 20, "error": "NonFiniteLossError"}) == "failed"
  assert workdir.finished_summary(finished, _tiny())["final_step"] == 40
  assert workdir.finished_summary(finished, _tiny(**{"train.num_steps": 20})) is None
