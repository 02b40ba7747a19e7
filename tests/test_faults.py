"""Fast fault checks (default suite): provenance, one process per workdir, torn JSONL lines,
checkpoint checksums, a reader beside a live run's save (writers that fail instead of hanging:
tests/test_writer_faults.py; the saved tokenizer: tests/test_saved_vocabulary.py).
tests/test_faults_slow.py runs the same faults through `python -m research.main`."""
import json
import re
import os
from pathlib import Path

import jax
import numpy as np
import pytest

from research import checkpoint, errors, experiment, init_from, metrics, train, workdir, workdir_lock
from run_fixtures import tiny_regression as _tiny

ROOT = Path(__file__).resolve().parents[1]


def _train(c, wd):
  return train.train_and_evaluate(c, str(wd), devices=jax.devices()[:1])


def _snapshot(directory: Path) -> dict:
  return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
          if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """A finished tiny run (40 steps, checkpoints at 20 and 40), copied by tests that change it."""
  wd = tmp_path_factory.mktemp("finished") / "run"
  _train(_tiny(**{"train.checkpoint_every": 20}), wd)
  return wd


def _copy(src: Path, dst: Path) -> Path:
  import shutil
  shutil.copytree(src, dst)
  return dst


# --- provenance ------------------------------------------------------------------------
def test_a_changed_config_is_refused_and_the_workdir_is_untouched(finished, tmp_path):
  wd = _copy(finished, tmp_path / "run")
  before = _snapshot(wd)
  with pytest.raises(workdir.ConfigChangedError, match=r"seed: 0 -> 7; task.function: 'linear' -> "
                     r"'quadratic'.*--config.init_from=") as e:
    _train(_changed(), wd)
  assert isinstance(e.value, errors.InputError) and e.value.exit_code == 2
  assert "\n" not in str(e.value)
  assert _snapshot(wd) == before  # byte for byte, not even the lock file


def _changed():
  c = _tiny()
  c.task.function, c.seed = "quadratic", 7
  return c


def test_resumable_fields_extend_a_run_and_are_recorded(finished, tmp_path):
  wd = _copy(finished, tmp_path / "run")
  c = _tiny(**{"train.checkpoint_every": 20, "train.num_steps": 60})
  assert workdir.finished_summary(wd, c) is None  # 40 steps of a 60-step config
  summary = _train(c, wd)
  assert summary["final_step"] == 60
  assert json.loads((wd / "config.json").read_text())["train"]["num_steps"] == 60
  changes = workdir.read_jsonl(wd / workdir.CHANGES)
  assert changes == [{"step": 40, "changes": ["train.num_steps: 40 -> 60"]}]
  assert workdir.finished_summary(wd, c)["final_step"] == 60
  cadence = _tiny(**{"train.checkpoint_every": 5, "train.num_steps": 60})
  assert workdir.finished_summary(wd, cadence) is not None  # bookkeeping: the same run
  c.optim.learning_rate *= 2
  assert workdir.finished_summary(wd, c) is None


def test_a_finished_run_refuses_a_learning_rate_no_step_would_train_with(finished, tmp_path):
  """A rerun of a finished run with another learning rate or weight decay trained nothing,
  exit 0, and config.json then recorded the new values beside the old ones' numbers
  (research.results tabled them under the new lr). Now refused, every file as it was, by
  research.main's path and the experiments' (train_or_reuse) alike."""
  wd = _copy(finished, tmp_path / "run")
  before = _snapshot(wd)
  c = _tiny(**{"train.checkpoint_every": 20})  # adam: no weight decay (an adamw run's: as lr)
  c.optim.learning_rate *= 2
  for start in (_train, lambda c, wd: train.train_or_reuse(c, str(wd), devices=jax.devices()[:1])):
    with pytest.raises(errors.InputError, match=r"trained to step 40 of train.num_steps=40: no "
                       r"step is left to train with optim.learning_rate: 0.001 -> 0.002, "
                       r".*raise train.num_steps above 40 .*"
                       r"config.init_from=") as e:
      start(c, wd)
    assert e.value.exit_code == 2 and "\n" not in str(e.value)
    assert _snapshot(wd) == before
  c.train.num_steps = 60  # the control: with steps left, the new values train them
  assert _train(c, wd)["final_step"] == 60
  assert workdir.read_jsonl(wd / workdir.CHANGES) == [{"step": 40, "changes": [
      "optim.learning_rate: 0.001 -> 0.002", "train.num_steps: 40 -> 60"]}]


def test_a_field_only_one_config_has_is_a_difference_even_at_none():
  """workdir.differences: a field one side lacks differs whatever the other's value, None too
  (a field added at None that no default fills is not the run's config), said 'absent'."""
  old = {"seed": 0, "task": {"name": "regression", "noise": 0.1}}
  new = {"seed": 0, "task": {"name": "regression", "noise": 0.1, "data_dir": None}}
  assert workdir.differences(old, new) == ["task.data_dir: absent -> None"]
  assert workdir.differences(new, old) == ["task.data_dir: None -> absent"]
  assert workdir.differences(new, old, ignore={"task.data_dir"}) == []
  assert workdir.differences(old, old) == []
  assert workdir.differences({"seed": 1}, {"seed": 2}, filled={"seed"}) == [
      "seed: absent (default 1) -> 2"]


def test_the_fields_a_resume_and_a_finished_runs_rerun_may_change(tmp_path):
  """workdir.RESUMABLE: a resume may change the learning rate and the weight decay (the
  non-finite loss error's advice), the data's location, the mesh and the cadences, nothing
  that made the run another one. workdir.NO_STEP_NEEDED: with no step left to train, every
  one of those but the optimiser's (which would label the old numbers with new values)."""
  from configs import lm
  from research import cli, workdir_resume
  c = lm.get_config("tiny")  # a TFDS-capable task: it has task.data_dir
  wd = tmp_path / "run"
  (wd / workdir.CHECKPOINTS / "20").mkdir(parents=True)  # it trained: the check applies
  (wd / workdir.CONFIG).write_text(workdir.config_json(c))
  where = {"task.data_dir": "/data/tfds", "mesh.data": 1, "train.eval_every": 10}
  optimiser = {"optim.learning_rate": 0.001, "optim.weight_decay": 0.05}
  resumed = cli.apply_overrides(c, {**where, **optimiser})
  workdir.check_same_config(wd, resumed)  # a resume at step 20 of 40 takes all of them
  workdir_resume.check_trains_changes(wd, resumed, restored=20)
  with pytest.raises(workdir.ConfigChangedError, match=r"holds a run of another config "
                     r"\(model.num_layers: 2 -> 3\)"):
    workdir.check_same_config(wd, cli.apply_overrides(c, {**where, "model.num_layers": 3}))
  workdir_resume.check_trains_changes(wd, cli.apply_overrides(c, where), restored=40)
  for field, value in optimiser.items():  # at step 40 of 40, each optimiser field is refused
    with pytest.raises(errors.InputError, match=rf"no step is left to train with {field}: "):
      workdir_resume.check_trains_changes(wd, cli.apply_overrides(c, {**where, field: value}),
                                          restored=40)


def test_a_start_refused_before_writing_leaves_no_workdir_behind(finished, tmp_path):
  """A new workdir whose start is refused inside training (init_from a run whose weights
  do not fit) is removed again: no .lock, no empty checkpoints/ mistaken for a run."""
  bad = _tiny()
  bad.model.width, bad.init_from = 2 * bad.model.width, str(finished)
  wd = tmp_path / "new" / "run"
  with pytest.raises(init_from.InitFromError, match="does not fit this model"):
    _train(bad, wd)
  assert not wd.exists() and (tmp_path / "new").exists()  # only what the run created goes
  wd.mkdir()
  (wd / "notes.txt").write_text("mine")  # control: a workdir the user made stays as it was
  with pytest.raises(init_from.InitFromError):
    _train(bad, wd)
  assert sorted(p.name for p in wd.iterdir()) == [workdir.LOCK, "checkpoints", "notes.txt"]


# --- one process per workdir ------------------------------------------------------------
def test_a_second_process_is_refused_naming_the_holder(tmp_path):
  held = workdir_lock.Lock(tmp_path, "a training run")
  held.acquire()
  try:
    with pytest.raises(workdir_lock.WorkdirBusyError,
                       match=rf"in use by a training run of PID {os.getpid()} on host"):
      _train(_tiny(), tmp_path)
  finally:
    held.release()
  assert not (tmp_path / "config.json").exists()
  with workdir_lock.Lock(tmp_path, "a training run"):  # released: the next one takes it
    pass
  assert (tmp_path / workdir.LOCK).read_text() == ""


# --- torn lines ---------------------------------------------------------------------------
def test_read_jsonl_drops_a_torn_last_line_only(tmp_path, monkeypatch):
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 20, "loss": 1.0}\n{"step": 40, "lo')
  warnings = []
  monkeypatch.setattr(workdir.logging, "warning", lambda *a: warnings.append(a))
  assert workdir.read_jsonl(path) == [{"step": 20, "loss": 1.0}]
  assert len(warnings) == 1 and "torn" in warnings[0][0]
  path.write_text('{"step": 20}\n{"step": 4\n{"step": 60}\n')  # an edited file, not a tear
  with pytest.raises(errors.InputError, match="line 2 of .* is not a JSON object"):
    workdir.read_jsonl(path)


def test_resume_repairs_torn_duplicate_and_later_rows(finished, tmp_path):
  wd = _copy(finished, tmp_path / "run")
  reference = (wd / "metrics.jsonl").read_bytes()
  rows = (wd / "metrics.jsonl").read_text().splitlines()
  # A second writer's duplicates out of order, a row after the checkpoint, a torn tail.
  (wd / "metrics.jsonl").write_text("\n".join([rows[1], rows[0], rows[0], rows[1]]) + "\n"
                                    + '{"step": 60, "loss": 9}\n{"step": 80, "lo')
  (wd / "perf.jsonl").write_text((wd / "perf.jsonl").read_text() + '{"step": 4')
  import shutil
  shutil.rmtree(wd / "checkpoints" / "40")
  (wd / "summary.json").unlink()
  _train(_tiny(**{"train.checkpoint_every": 20}), wd)
  assert (wd / "metrics.jsonl").read_bytes() == reference
  perf = [r["step"] for r in workdir.read_jsonl(finished / "perf.jsonl")]
  assert [r["step"] for r in workdir.read_jsonl(wd / "perf.jsonl")] == perf


# --- checkpoint integrity --------------------------------------------------------------------
def _flip_a_byte(step_dir: Path) -> Path:
  victim = max((p for p in (step_dir / "state").rglob("*") if p.is_file()),
               key=lambda p: p.stat().st_size)
  data = bytearray(victim.read_bytes())
  data[len(data) // 2] ^= 0x01
  victim.write_bytes(bytes(data))
  return victim


def _restore(wd, seal=False):
  exp = experiment.Experiment(_tiny(), jax.devices()[:1])
  ck = checkpoint.Checkpointer(wd / "checkpoints", max_to_keep=3)
  try:
    return ck.restore(checkpoint.abstract_like(exp.abstract_state, exp.state_sharding), seal=seal)
  finally:
    ck.close()


def test_a_flipped_byte_falls_back_to_the_previous_checkpoint(finished, tmp_path, monkeypatch):
  wd = _copy(finished, tmp_path / "run")
  warnings = []
  monkeypatch.setattr(checkpoint.logging, "warning", lambda *a: warnings.append(a[0] % a[1:])
                      if "unreadable" in a[0] else None)  # absl's: Orbax's go there too
  assert _restore(wd)[2] == 40 and not warnings  # negative control: intact, no warning
  victim = _flip_a_byte(wd / "checkpoints" / "40")
  state, _, step = _restore(wd)
  assert step == 20
  assert any("checkpoint 40" in w and "checksum mismatch" in w and victim.name in w
             for w in warnings), warnings
  # A reader (predict) moved it aside too: a read-only command changed the run directory.
  assert (wd / "checkpoints" / "40").is_dir() and not (wd / "checkpoints.unreadable").exists()
  assert _restore(wd, seal=True)[2] == 20  # the trainer, which will save past it, moves it
  assert len(list((wd / "checkpoints.unreadable").glob("40.*"))) == 1


def test_a_checkpoint_without_checksums_restores_unverified_once(finished, tmp_path):
  """Killed between a save's commit and its checksums: restored unverified, and sealed then,
  so that damage after that restore is found (it used to stay unverified for good)."""
  wd = _copy(finished, tmp_path / "run")
  sums = wd / "checkpoints" / "40" / checkpoint.CHECKSUMS
  sums.unlink()
  assert _restore(wd)[2] == 40
  assert not sums.exists()  # control: a reader (predict, probes) never writes into a run
  assert _restore(wd, seal=True)[2] == 40  # the trainer, holding the workdir's lock, seals it
  assert sums.exists()
  _flip_a_byte(wd / "checkpoints" / "40")
  assert _restore(wd)[2] == 20  # the damage is found: the previous checkpoint is restored


def test_a_finished_async_save_is_sealed_before_the_next_save(tmp_path):
  """Checksums used to be written only when the next save began, so the newest checkpoint of
  a killed run was always restored unverified; the loop now seals it at its next log step."""
  ck = checkpoint.Checkpointer(tmp_path / "checkpoints", max_to_keep=3, async_save=True)
  try:
    ck.save(1, {"w": np.arange(4.0)}, {"step": 1})
    while ck._mngr.is_saving_in_progress():
      pass
    sums = tmp_path / "checkpoints" / "1" / checkpoint.CHECKSUMS
    assert not sums.exists()  # control: nothing seals a committed save by itself
    ck.seal_committed()
    assert sums.exists() and ck.verify(1) is None
  finally:
    ck.close()


def test_the_loop_seals_a_checkpoint_at_its_next_log_step(tmp_path, monkeypatch):
  """Tiny run, log every 20, checkpoints at 20 and 40 (saved synchronously so the test has no
  race): when the save at 40 begins, step 20 already has its checksums."""
  seen = {}
  save = checkpoint.Checkpointer.save

  def spy(self, step, *a, **k):
    if step == 40:
      seen[40] = (self.directory / "20" / checkpoint.CHECKSUMS).is_file()
    return save(self, step, *a, **k)

  monkeypatch.setattr(checkpoint.Checkpointer, "save", spy)
  _train(_tiny(**{"train.checkpoint_every": 20, "train.async_checkpoints": False}),
         tmp_path / "run")
  assert seen == {40: True}


# --- writers fail, never hang -----------------------------------------------------------------
def test_readers_leave_a_live_runs_save_in_progress(finished, tmp_path):
  """probe_checkpoints, predict and init_from opened the run's checkpoints/ as the trainer
  does: Orbax's cleanup deleted the live run's STEP.orbax-checkpoint-tmp, whose save then
  failed (exit 5), and a run without checkpoints/ got an empty one."""
  import time
  wd = _copy(finished, tmp_path / "run")
  in_flight = wd / "checkpoints" / "60.orbax-checkpoint-tmp"
  (in_flight / "state").mkdir(parents=True)

  def kept(seconds=3.0):  # Orbax's cleanup runs in the background, even past close()
    end = time.monotonic() + seconds
    while in_flight.is_dir() and time.monotonic() < end:
      time.sleep(0.05)
    return in_flight.is_dir()
  assert init_from._raw_params(wd)[1] == 40 and kept()  # init_from's reader
  reader = checkpoint.Checkpointer(wd / "checkpoints", max_to_keep=1, read_only=True)
  assert reader.all_steps() == [20, 40] and kept()  # probe_checkpoints' and predict's
  reader.close()
  checkpoint.Checkpointer(tmp_path / "none" / "checkpoints", max_to_keep=1, read_only=True).close()
  assert not (tmp_path / "none").exists()
  checkpoint.Checkpointer(wd / "checkpoints", max_to_keep=3).close()  # control: the trainer's
  assert not kept(seconds=30)


def _small_checkpoints(directory: Path, steps) -> None:
  ck = checkpoint.Checkpointer(directory, max_to_keep=10, async_save=False)
  for step in steps:
    ck.save(step, {"w": np.full((4,), step, np.float32)}, {"step": step})
  ck.close()  # sealed: checksums.json in every step


def test_a_file_added_to_a_sealed_checkpoint_is_a_mismatch(tmp_path):
  """The checksums cover the step's files both ways: one missing, or one that was not
  there when it was sealed, is damage."""
  _small_checkpoints(tmp_path / "checkpoints", [1])
  ck = checkpoint.Checkpointer(tmp_path / "checkpoints", max_to_keep=10, read_only=True)
  try:
    assert ck.verify(1) is None  # control: as sealed
    (tmp_path / "checkpoints" / "1" / "state" / "stray").write_bytes(b"x")
    assert ck.verify(1) == "checksum mismatch in state/stray"
  finally:
    ck.close()


def test_the_trainer_moves_aside_only_the_damaged_steps_newer_than_the_one_restored(tmp_path):
  """A damaged newest step 3 falls back to 2; the trainer (seal) moves 3 aside and keeps 2,
  the checkpoint it resumes from, and 1."""
  _small_checkpoints(tmp_path / "checkpoints", [1, 2, 3])
  _flip_a_byte(tmp_path / "checkpoints" / "3")
  ck = checkpoint.Checkpointer(tmp_path / "checkpoints", max_to_keep=10)
  try:
    abstract = {"w": jax.ShapeDtypeStruct((4,), np.float32)}
    state, meta, step = ck.restore(abstract, seal=True)
    assert step == 2 and meta == {"step": 2}
    np.testing.assert_array_equal(state["w"], np.full((4,), 2, np.float32))
    assert ck.all_steps() == [1, 2]
  finally:
    ck.close()
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == ["1", "2"]
  assert [p.name.split(".")[0] for p in (tmp_path / "checkpoints.unreadable").iterdir()] == ["3"]


def test_a_seal_killed_mid_write_leaves_the_checkpoint_readable(tmp_path):
  """A process killed while sealing leaves `.checksums.json.tmpPID` beside the checksums:
  not one of the step's files, so the step is not read as damaged (and not skipped)."""
  _small_checkpoints(tmp_path / "checkpoints", [1, 2])
  (tmp_path / "checkpoints" / "2" / f".{checkpoint.CHECKSUMS}.tmp4242").write_text("{")
  ck = checkpoint.Checkpointer(tmp_path / "checkpoints", max_to_keep=10, read_only=True)
  try:
    assert ck.verify(2) is None
    _, _, step = ck.restore({"w": jax.ShapeDtypeStruct((4,), np.float32)})
    assert step == 2
  finally:
    ck.close()


def test_restoring_a_named_step_restores_that_step_or_refuses(tmp_path):
  """restore(step=S), as the checkpoint probe reads each step it labels: never an older
  checkpoint in its place (its row would carry S's label and another step's numbers)."""
  _small_checkpoints(tmp_path / "checkpoints", [1, 3])
  abstract = {"w": jax.ShapeDtypeStruct((4,), np.float32)}
  ck = checkpoint.Checkpointer(tmp_path / "checkpoints", max_to_keep=10, read_only=True)
  try:
    state, _, step = ck.restore(abstract, step=1)
    assert step == 1 and state["w"][0] == 1
    with pytest.raises(checkpoint.CheckpointError, match="no complete checkpoint"):
      ck.restore(abstract, step=2)  # deleted by keep-latest-N, say
    _flip_a_byte(tmp_path / "checkpoints" / "3")
    with pytest.raises(checkpoint.CheckpointError, match="no readable checkpoint"):
      ck.restore(abstract, step=3)
  finally:
    ck.close()


def test_a_data_path_spelled_otherwise_is_refused_with_the_recorded_path(tmp_path):
  """The same data under another spelling of its path (absolute for relative, a moved copy)
  is another config: the refusal says which path the run recorded and where it is read from.
  Control: with another field changed too, no such hint."""
  from configs import text_classification
  c = text_classification.get_config("tiny")
  c.task.path = "mydata/reviews.csv"
  (tmp_path / "checkpoints" / "20").mkdir(parents=True)
  (tmp_path / workdir.CONFIG).write_text(workdir.config_json(c))
  moved = c.copy_and_resolve_references()
  moved.task.path = "/elsewhere/reviews.csv"
  with pytest.raises(workdir.ConfigChangedError, match=re.escape(
      "If it is the same data file, give the path the run recorded, 'mydata/reviews.csv' (from "
      "the directory the run was started in), or put the file back there.")):
    workdir.check_same_config(tmp_path, moved)
  moved.model.width += 8
  with pytest.raises(workdir.ConfigChangedError) as e:
    workdir.check_same_config(tmp_path, moved)
  assert "same data file" not in str(e.value)
