"""A run directory's state as resume and sweeps read it (research/workdir.py, workdir_resume,
workdir_layout): a run stopped by a non-finite loss before its first save trained nothing, a
metrics row's step must be a step number, a rerun keeps only the same final step's training
record, a fresh start removes an earlier attempt's files, an unfinished save is no checkpoint, a
directory in place of a run file is refused, an unstarted workdir's empty folders go with it."""
import json

import pytest

from research import errors, workdir, workdir_layout
from test_faults import _tiny


def test_a_solo_run_stopped_by_a_non_finite_loss_before_a_checkpoint_trained_nothing(tmp_path):
  """Its summary.json (nonfinite_at_step) is a failure the retry supersedes: a rerun with a
  fixed config (another optimiser) starts afresh. An ensemble member's error summary, a
  finished summary or a checkpoint are training to keep."""
  wd = tmp_path / "run"
  wd.mkdir()
  summary = wd / workdir.SUMMARY
  assert workdir.trained_nothing(wd)
  summary.write_text(json.dumps({"final_step": 6, workdir.NONFINITE_AT: 7}))
  assert workdir.stopped_nonfinite(wd) and workdir.trained_nothing(wd)
  (wd / workdir.CONFIG).write_text(workdir.config_json(_tiny()))
  workdir.check_same_config(wd, _tiny(**{"model.width": 48}))  # not refused: nothing to keep
  for other in ({"final_step": 6, "error": "NonFiniteLossError", "frozen": True},
                {"final_step": 40}):
    summary.write_text(json.dumps(other))
    assert not workdir.trained_nothing(wd)
  summary.write_text(json.dumps({"final_step": 6, workdir.NONFINITE_AT: 7}))
  (wd / workdir.CHECKPOINTS / "5").mkdir(parents=True)
  assert not workdir.trained_nothing(wd)


@pytest.mark.parametrize("step", [True, False, -1, "3", 2.0, None])
def test_a_metrics_row_whose_step_is_no_step_number_is_refused(tmp_path, step):
  """check_metric_rows: a step is a non-negative int; true/false (JSON booleans, which Python
  counts as ints) included among the refused."""
  path = tmp_path / workdir.METRICS
  workdir.check_metric_rows([{"step": 0, "loss": 1.0}, {"step": 3, "loss": [0.5, None]}], path)
  with pytest.raises(errors.InputError, match=rf"metrics.jsonl: a row's step is {step!r}, not a "
                     r"step number"):
    workdir.check_metric_rows([{"step": 0, "loss": 1.0}, {"step": step, "loss": 0.5}], path)


def test_a_rerun_keeps_the_training_record_only_of_the_same_final_step(tmp_path):
  """kept_training_record: the rerun of a finished run (same final_step) keeps its summary's
  training record and the final_* values the rerun found nothing for; the values it read
  back stand, and a probe's error goes. A summary of another final_step (a run extended
  since) gives nothing: its seconds and finals are another training's."""
  from research import workdir_resume
  (tmp_path / workdir.SUMMARY).write_text(json.dumps({
      "final_step": 40, "final_loss": 0.7, "final_accuracy": 0.9, "train_wall_s": 12.5,
      "compile_s": 3.0, "error": "probe failed", "probes": {"a": "x"}}))
  rerun = {"final_step": 40, "final_loss": 0.5, "train_wall_s": 0.25}
  assert workdir_resume.kept_training_record(tmp_path, rerun) == {
      "final_step": 40, "final_loss": 0.5, "final_accuracy": 0.9, "train_wall_s": 12.5,
      "compile_s": 3.0}
  extended = {"final_step": 60, "final_loss": 0.4, "train_wall_s": 20.0}
  assert workdir_resume.kept_training_record(tmp_path, extended) == extended


def test_a_start_at_step_0_removes_an_earlier_attempts_files(tmp_path):
  """record_start at step 0 (a start that trained nothing, replaced): the earlier attempt's
  rows, changes and vocabulary go with its config; at a resumed step they stay."""
  from research import workdir_resume
  c = _tiny()
  names = (workdir.METRICS, workdir.PERF, workdir.CHANGES, workdir.VOCABULARY)
  for name in names:
    (tmp_path / name).write_text('{"step": 0}\n')
  (tmp_path / workdir.CONFIG).write_text(workdir.config_json(_tiny(**{"model.width": 48})))
  workdir_resume.record_start(tmp_path, c, 0)
  assert [name for name in names if (tmp_path / name).exists()] == []
  assert (tmp_path / workdir.CONFIG).read_text() == workdir.config_json(c)
  for name in names:
    (tmp_path / name).write_text('{"step": 0}\n')
  workdir_resume.record_start(tmp_path, c, 20)
  assert all((tmp_path / name).read_text() == '{"step": 0}\n' for name in names)


def test_a_finished_run_with_only_an_unfinished_save_has_no_checkpoint(tmp_path):
  """Orbax writes a save into a temporary folder, renamed to the bare step once complete: a
  finished run whose checkpoints/ holds only such a folder (or a stray file) has no usable
  checkpoint, and is refused (exit 4) rather than restarted from step 0 over its metrics."""
  (tmp_path / workdir.SUMMARY).write_text(json.dumps({"final_step": 40}))
  ckpts = tmp_path / workdir.CHECKPOINTS
  (ckpts / "40.orbax-checkpoint-tmp-1712345678").mkdir(parents=True)
  (ckpts / "20").write_text("")
  with pytest.raises(errors.NoCheckpointError, match="finished at step 40"):
    workdir_layout.check_finished_has_checkpoints(tmp_path)
  (ckpts / "20").unlink()
  (ckpts / "20").mkdir()
  workdir_layout.check_finished_has_checkpoints(tmp_path)


@pytest.mark.parametrize("name", ["config.json", "summary.json", "metrics.jsonl", "perf.jsonl",
                                  "vocabulary.json", "config_changes.jsonl"])
def test_a_directory_in_place_of_any_run_file_is_refused(tmp_path, name):
  (tmp_path / name).mkdir()
  with pytest.raises(errors.InputError, match=rf"{name} is not a file \(the run's {name} goes "
                     r"there\); move it out"):
    workdir_layout.check_layout(tmp_path)


def test_an_unstarted_workdirs_nested_empty_folders_go_with_it(tmp_path):
  """remove_if_unstarted: .lock and every empty folder the refused start made, however deep
  (children before their parents), then the workdir itself; a file keeps its folders."""
  wd = tmp_path / "sweep"
  (wd / "runs" / "000_seed=0" / "checkpoints").mkdir(parents=True)
  (wd / "ensemble" / "abc").mkdir(parents=True)
  (wd / workdir.LOCK).write_text("")
  workdir_layout.remove_if_unstarted(wd)
  assert not wd.exists()
  (wd / "a" / "b" / "c").mkdir(parents=True)
  (wd / "a" / "note.txt").write_text("mine")
  (wd / "d" / "e").mkdir(parents=True)
  workdir_layout.remove_if_unstarted(wd)
  assert sorted(str(p.relative_to(wd)) for p in wd.rglob("*")) == ["a", "a/note.txt"]
