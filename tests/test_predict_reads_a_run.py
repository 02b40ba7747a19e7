"""research.predict reading a run: the config it rebuilds on one device, and a checkpoint
that a training run in the same workdir deletes while predict reads it."""
import pytest

from research import errors, workdir
from test_faults import _copy, _tiny, finished  # noqa: F401 (a fixture)


def test_predict_reads_a_runs_config_for_one_device_without_init_from(tmp_path):
  """research.predict rebuilds a run on one device from its config.json: the mesh it trained
  on (4 data x 2 tensor) becomes one device's, and its init_from is dropped (the run's own
  checkpoint holds every parameter), whatever config.json says; the rest is the run's."""
  from research import predict
  c = _tiny(**{"mesh.data": 4, "mesh.tensor": 2, "model.width": 48})
  c.init_from = str(tmp_path / "the_run_it_started_from")
  run = tmp_path / "run"
  run.mkdir()
  (run / workdir.CONFIG).write_text(workdir.config_json(c))
  got = predict.saved_run_config(run)
  assert (got.mesh.data, got.mesh.fsdp, got.mesh.tensor, got.init_from) == (1, 1, 1, "")
  assert (got.model.width, got.train.batch_size) == (48, c.train.batch_size)


def test_predict_reads_again_when_a_checkpoint_goes_while_being_read(finished, tmp_path,
                                                                      monkeypatch):
  """A run training in the workdir saves a newer checkpoint and deletes the one predict listed
  (keep-latest-N) while predict reads it: exit 4, "no readable checkpoint ... restore from a
  backup, or retrain", with the newer one there (review 42)."""
  import shutil
  from research import checkpoint, predict
  wd = _copy(finished, tmp_path / "run")
  shutil.rmtree(wd / "checkpoints" / "20")  # keep-latest-1: only the newest
  seen, mismatches = [], checkpoint.Checkpointer.mismatches

  def racing(self, step, abstract):
    seen.append(step)
    if len(seen) == 2:  # inside restore, before Orbax reads 40: the trainer saves 60, drops 40
      shutil.copytree(wd / "checkpoints" / "40", wd / "checkpoints" / "60")
      shutil.rmtree(wd / "checkpoints" / "40")
    return mismatches(self, step, abstract)

  monkeypatch.setattr(checkpoint.Checkpointer, "mismatches", racing)
  _, params, step = predict.load_run(wd)
  assert step == 60 and params
  # Control: a checkpoint damaged in place (nothing changed on disk meanwhile) is damage.
  monkeypatch.setattr(checkpoint.Checkpointer, "mismatches", mismatches)
  for f in (wd / "checkpoints" / "60" / "state").rglob("*"):
    if f.is_file() and f.stat().st_size > 100:
      f.write_bytes(b"x" * 10)
  with pytest.raises(checkpoint.CheckpointError, match="restore the run's checkpoints from a backup"):
    predict.load_run(wd)


@pytest.mark.parametrize("lost", [2, 3])
def test_predict_reads_a_vanishing_checkpoint_three_times_at_most(tmp_path, monkeypatch, lost):
  """Each read whose checkpoint a training run deleted meanwhile is tried again from a fresh
  listing, three reads in all: two lost reads then a good one load; three lost end in one
  RunIOError line (exit 5), not a fourth try or a None for the caller to unpack."""
  from types import SimpleNamespace
  from research import checkpoint, predict
  exp = SimpleNamespace(abstract_state=None, state_sharding=None)
  monkeypatch.setattr(predict, "open_run", lambda workdir: exp)
  monkeypatch.setattr(checkpoint, "abstract_like", lambda *args: None)
  reads = []

  def restore_newest(workdir, abstract):
    reads.append(workdir)
    if len(reads) <= lost:
      raise FileNotFoundError(2, "No such file or directory", str(workdir / "checkpoints" / "40"))
    return SimpleNamespace(params="the params"), 60

  monkeypatch.setattr(predict, "_restore_newest", restore_newest)
  if lost == 2:
    assert predict.load_run(tmp_path) == (exp, "the params", 60)
  else:
    with pytest.raises(errors.RunIOError, match=r"deleted while being read, three times") as e:
      predict.load_run(tmp_path)
    assert e.value.exit_code == 5
  assert len(reads) == 3


def test_predict_says_when_the_model_read_less_than_the_text(tmp_path, caplog):
  """A 95,000-character text was cut to its first 31 tokens, and a text of words the run
  never saw (every id UNK, punctuation too) got a confident label, without a word (a
  trial). Now each row says how many tokens the model read and a warning names the text.
  Control: a short text of known words warns of nothing."""
  import jax
  from configs import text_classification as tcc
  from research import predict, train
  from test_saved_vocabulary import _csv
  c = tcc.get_config("tiny")
  c.mesh.data, c.train.compile_cache_dir = 1, ""
  c.task.path, c.task.tokenizer, c.task.vocab_size = str(_csv(tmp_path / "a.csv")), "word", 12
  c.train.num_steps = 20
  train.train_and_evaluate(c, str(tmp_path / "run"), devices=jax.devices()[:1])
  exp, params, _ = predict.load_run(tmp_path / "run")
  L = exp.task.seq_len
  caplog.clear()
  known, long, unknown, empty = predict.predict_texts(
      exp, params, ["the plot was good", "the plot was good " * 500, "zzzz qqqq", "!!! ???"])
  assert (known["tokens"], known["tokens_read"], known["unknown_tokens"]) == (4, 4, 0)
  assert (long["tokens"], long["tokens_read"]) == (2000, L - 1)
  assert unknown["unknown_tokens"] == unknown["tokens_read"] == 2
  assert empty["unknown_tokens"] == empty["tokens_read"] == 6  # each mark is a word token
  text = caplog.text
  assert "text 1" not in text, text
  assert f"text 2: 2000 word tokens, of which the model reads the first {L - 1}" in text, text
  assert "text 3: none of its 2 word tokens is in the run's vocabulary" in text, text
  assert "text 4: none of its 6 word tokens" in text, text
