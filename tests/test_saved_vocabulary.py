"""The tokenizer and labels live in the workdir (vocabulary.json): predict reads them, never
the data file; a damaged or edited one is refused naming it."""
import csv
import json
import os
from pathlib import Path

import jax
import numpy as np
import pytest

from research import errors, predict, train, workdir


def _train(c, wd):
  return train.train_and_evaluate(c, str(wd), devices=jax.devices()[:1])


def _csv(path: Path, n: int = 120, seed: int = 0) -> Path:
  rng = np.random.default_rng(seed)
  cues = {"neg": ["bad", "awful"], "pos": ["good", "great"]}
  with path.open("w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["text", "label"])
    for _ in range(n):
      lab = str(rng.choice(["neg", "pos"]))
      w.writerow([f"the plot was {rng.choice(cues[lab])} {rng.choice(['ok', 'long'])}", lab])
  return path


@pytest.mark.parametrize("kind", ["byte", "char", "word"])
def test_tokenizer_state_round_trips(kind):
  from research.data import text as text_lib
  tok = text_lib.make_tokenizer(kind, ["the plot was good", "a dull film!"], 12)
  back = text_lib.tokenizer_from_state(json.loads(json.dumps(text_lib.tokenizer_state(tok))))
  for text in ("the film was good", "unseen words here"):
    np.testing.assert_array_equal(back.encode(text), tok.encode(text))
  assert back.vocab_size == tok.vocab_size


def test_predict_uses_the_saved_vocabulary_not_the_data_file(tmp_path):
  from configs import text_classification as tcc
  c = tcc.get_config("tiny")
  c.mesh.data, c.train.compile_cache_dir = 1, ""
  c.task.path, c.task.tokenizer, c.task.vocab_size = str(_csv(tmp_path / "a.csv")), "word", 12
  c.train.num_steps = 20
  _train(c, tmp_path / "run")
  texts = ["the plot was great", "awful long plot"]
  before = predict.predict_texts(*predict.load_run(tmp_path / "run")[:2], texts)
  os.rename(tmp_path / "a.csv", tmp_path / "moved.csv")
  after = predict.predict_texts(*predict.load_run(tmp_path / "run")[:2], texts)
  assert after == before  # identical probabilities, no data file read
  _csv(tmp_path / "a.csv", n=60, seed=1)  # an edited file: another vocabulary
  assert predict.predict_texts(*predict.load_run(tmp_path / "run")[:2], texts) == before
  c.train.num_steps = 40  # a resume on the edited data is refused
  with pytest.raises(errors.InputError, match="another vocabulary"):
    _train(c, tmp_path / "run")
  (tmp_path / "run" / workdir.VOCABULARY).unlink()  # negative control: rebuilt from the data
  assert predict.predict_texts(*predict.load_run(tmp_path / "run")[:2], texts) != before


@pytest.mark.parametrize("damage,needle", [
    ('{"tokenizer": 5}', '("tokenizer" is 5, not the tokenizer\'s state)'),  # AttributeError
    ('{"tokenizer": {"kind": "word", "vocab_size": 12, "words": ["a"]}}',  # KeyError
     '(no "labels" (a list of at least 2 label names))'),
    # one label: every prediction would be it, at probability 1
    ('{"tokenizer": {"kind": "word", "vocab_size": 12, "words": ["a"]}, "labels": ["pos"]}',
     '("labels" is ["pos"], not a list of at least 2 label names)'),
    ("garbage{", "does not hold the run's tokenizer and labels (not a JSON object)"),  # "absent"
    ('{"tokenizer": {"kind": "char"}, "labels": ["neg", "pos"]}', "(KeyError: 'chars')"),
    # Predicted "neg 0.842 neg=0.158": a label named twice.
    ('{"tokenizer": {"kind": "word", "vocab_size": 12, "words": ["a"]}, "labels": ["neg", "neg"]}',
     '("labels" is ["neg", "neg"], not distinct label names)'),
    # One label: every text predicted it with probability 1.
    ('{"tokenizer": {"kind": "word", "vocab_size": 12, "words": ["a"]}, "labels": ["neg"]}',
     '("labels" is ["neg"], not a list of at least 2 label names)')])
def test_a_damaged_saved_vocabulary_is_refused_naming_it(damage, needle, tmp_path):
  """Audit 34, D16: tracebacks, or (broken JSON) the task silently rebuilt from the data file,
  which predict promises never to read. The data file is here, so only a refusal passes."""
  from configs import text_classification as tcc
  c = tcc.get_config("tiny")
  c.mesh.data, c.train.compile_cache_dir = 1, ""
  c.task.path, c.task.tokenizer, c.task.vocab_size = str(_csv(tmp_path / "a.csv")), "word", 12
  run = tmp_path / "run"
  run.mkdir()
  (run / workdir.CONFIG).write_text(workdir.config_json(c))
  (run / workdir.VOCABULARY).write_text(damage)
  with pytest.raises(errors.InputError) as e:
    predict.open_run(run)
  message = str(e.value)
  assert e.value.exit_code == 2 and "\n" not in message
  assert message.startswith(f"{run / workdir.VOCABULARY} ") and needle in message, message
  assert message.endswith("; restore it from a backup of the run; or delete it to rebuild the "
                          "tokenizer and labels from the training data, right only if that "
                          "data is unchanged since training"), message


def test_an_edited_vocabulary_that_no_longer_fits_the_checkpoint_is_named(tmp_path):
  """A vocabulary.json still well formed but edited (a label added) was exit 4, 'checkpoint
  does not match this config ... use a new --workdir', naming neither file."""
  from configs import text_classification as tcc
  c = tcc.get_config("tiny")
  c.mesh.data, c.train.compile_cache_dir = 1, ""
  c.task.path, c.task.tokenizer, c.task.vocab_size = str(_csv(tmp_path / "a.csv")), "word", 12
  c.train.num_steps = 20
  run = tmp_path / "run"
  _train(c, run)
  assert predict.load_run(run)[2] == 20  # the control: as saved, it loads
  vocabulary = json.loads((run / workdir.VOCABULARY).read_text())
  vocabulary["labels"].append("meh")
  (run / workdir.VOCABULARY).write_text(json.dumps(vocabulary))
  with pytest.raises(errors.InputError) as e:
    predict.load_run(run)
  message = str(e.value)
  assert e.value.exit_code == 2 and "\n" not in message, message
  assert message.startswith(f"checkpoint 20 in {run} does not fit the model its config.json and "
                            "vocabulary.json describe (") and "read_out" in message, message
  assert message.endswith("edited since training; restore them from a backup of the run")


def _trained_lm_run(tmp_path):
  """An lm tiny run of 20 steps, char tokens, on a text file of 9 distinct characters in
  TMP/run: (config, the text file)."""
  from configs import lm
  corpus = tmp_path / "corpus.txt"
  corpus.write_text("abcdefgh " * 400)
  c = lm.get_config("tiny")
  c.mesh.data, c.train.compile_cache_dir, c.train.num_steps = 1, "", 20
  c.task.source, c.task.path, c.task.tokenizer = "file", str(corpus), "char"
  _train(c, tmp_path / "run")
  return c, corpus


def test_an_lm_run_whose_corpus_now_gives_other_characters_is_refused(tmp_path):
  """lm tasks are rebuilt from their data (no for_prediction): a corpus edited to as many
  distinct characters but other ones gave other token ids with the same shapes, silently."""
  c, corpus = _trained_lm_run(tmp_path)
  predict.load_run(tmp_path / "run")  # control: the same corpus loads
  corpus.write_text("ijklmnop " * 400)  # 9 distinct characters again, other ones
  with pytest.raises(errors.InputError, match="another vocabulary"):
    predict.load_run(tmp_path / "run")
  # No checkpoint at all was exit 4, "no complete checkpoint in ...", with no fix named.
  corpus.write_text("abcdefgh " * 400)
  import shutil
  shutil.rmtree(tmp_path / "run" / workdir.CHECKPOINTS)
  with pytest.raises(errors.InputError, match="no complete checkpoint to predict with; train"):
    predict.load_run(tmp_path / "run")


def test_a_damaged_vocabulary_is_refused_on_resume(tmp_path):
  """research.main resumed with vocabulary.json reading 'garbage' (read as absent), which
  research.predict then refused."""
  from configs import text_classification
  c = text_classification.get_config("tiny")
  c.mesh.data, c.train.compile_cache_dir, c.train.num_steps = 1, "", 20
  c.task.path = str(_csv(tmp_path / "a.csv"))
  wd = tmp_path / "run"
  _train(c, wd)
  (wd / "vocabulary.json").write_text("garbage")
  c.train.num_steps = 40
  with pytest.raises(errors.InputError, match="vocabulary.json does not hold the run's tokenizer"):
    _train(c, wd)
  assert (wd / "vocabulary.json").read_text() == "garbage"


def _trained_text_run(tmp_path):
  """A text_classification tiny run of 20 steps on a CSV: (config, the CSV, the workdir)."""
  from configs import text_classification
  c = text_classification.get_config("tiny")
  c.mesh.data, c.train.compile_cache_dir, c.train.num_steps = 1, "", 20
  data = _csv(tmp_path / "a.csv")
  c.task.path = str(data)
  wd = tmp_path / "run"
  _train(c, wd)
  return c, data, wd


def test_a_resume_on_changed_data_with_the_same_vocabulary_is_refused(tmp_path):
  """Every label of the CSV flipped (same tokenizer, same labels) and the run extended: exit
  0, 20 more steps trained on the flipped labels; a rerun of the finished run re-probed on
  them. Now refused naming the file, nothing written; the restored file continues."""
  c, data, wd = _trained_text_run(tmp_path)
  original = data.read_bytes()
  flipped = original.replace(b",neg", b",tmp").replace(b",pos", b",neg").replace(b",tmp", b",pos")
  data.write_bytes(flipped)
  before = {p: p.read_bytes() for p in wd.rglob("*") if p.is_file()}
  for steps in (20, 40):  # the rerun of the finished run, and its extension
    c.train.num_steps = steps
    with pytest.raises(errors.InputError) as e:
      _train(c, wd)
    assert e.value.exit_code == 2 and "\n" not in str(e.value)
    assert str(e.value).startswith(f"config.task.path={str(data)!r} is not the data this run "
                                   'trained on (sha256 "'), str(e.value)
    assert str(e.value).endswith("Restore the data the run trained on, or train on the new data "
                                 "in a new --workdir")
    assert {p: p.read_bytes() for p in wd.rglob("*") if p.is_file()} == before
  recorded = json.loads((wd / workdir.VOCABULARY).read_text())["data"]
  assert set(recorded) == {"path", "rows", "sha256"}
  data.write_bytes(original)  # the control: the data it trained on continues it
  assert _train(c, wd)["final_step"] == 40


def test_an_lm_corpus_replaced_by_one_of_the_same_characters_is_refused(tmp_path):
  """The same characters and as many bytes, other text: the extension trained on it (exit 0;
  probes/lm.json then recorded the same byte counts), and research.probe_checkpoints read its
  held-out windows. Now both are refused by the run's record of the file's SHA-256."""
  c, corpus = _trained_lm_run(tmp_path)
  corpus.write_text("hgfedcba " * 400)
  c.train.num_steps = 40
  with pytest.raises(errors.InputError, match=r"^config.task.path=.* is not the data this run "
                     r"trained on \(sha256 \"[0-9a-f]{12}\.\.\.\" -> \"[0-9a-f]{12}\.\.\.\"; "):
    _train(c, tmp_path / "run")
  with pytest.raises(errors.InputError, match="is not the data this run trained on"):
    predict.open_run(tmp_path / "run")  # research.probe_checkpoints' check: the same record


def test_a_run_recorded_before_the_data_was_is_resumed_and_records_it(tmp_path):
  """A vocabulary.json of an older version holds no data record: the run resumes and the
  data read now is recorded, so that a later change is refused."""
  c, data, wd = _trained_text_run(tmp_path)
  vocabulary = json.loads((wd / workdir.VOCABULARY).read_text())
  recorded = vocabulary.pop("data")
  (wd / workdir.VOCABULARY).write_text(json.dumps(vocabulary))
  c.train.num_steps = 40
  assert _train(c, wd)["final_step"] == 40
  assert json.loads((wd / workdir.VOCABULARY).read_text()) == vocabulary | {"data": recorded}
  _csv(data, seed=1)  # now recorded: a change is refused
  c.train.num_steps = 60
  with pytest.raises(errors.InputError, match="is not the data this run trained on"):
    _train(c, wd)


def test_a_run_without_a_data_record_is_checked_against_its_probes_corpus(tmp_path):
  """Review 40: a run without vocabulary.json (an ensemble member, a run of an older version)
  skipped the check, so probe_checkpoints read a changed corpus silently; a TFDS run of an
  older version recorded its dataset by name alone and was refused on a name now spelt with
  its version; a stdlib corpus read by another Python named no cause."""
  import types
  from research import workdir_vocabulary
  run = tmp_path / "run"
  (run / "probes").mkdir(parents=True)
  (run / "summary.json").write_text("{}")
  probe = lambda corpus: (run / "probes" / "lm.json").write_text(json.dumps({"corpus": corpus}))
  task = lambda corpus: types.SimpleNamespace(corpus=corpus, probe_name="lm",
                                              vocabulary=lambda: {"tokenizer": {}})
  probe({"bytes": [3600, 400], "sha256": "a" * 64})
  with pytest.raises(errors.InputError, match=r"is not the data this run trained on \(bytes "
                     r"\[3600, 400\] -> \[10, 10\]; sha256"):
    workdir_vocabulary.check(run, task({"bytes": [10, 10], "sha256": "b" * 64}))
  workdir_vocabulary.check(run, task({"bytes": [3600, 400], "sha256": "a" * 64}))  # the same
  probe({"dataset": "tiny_shakespeare", "bytes": [1, 2]})
  workdir_vocabulary.check(run, task({"dataset": "tiny_shakespeare/1.0.0", "bytes": [1, 2]}))
  with pytest.raises(errors.InputError, match="is not the data"):  # control: another dataset
    workdir_vocabulary.check(run, task({"dataset": "lm1b/1.1.0", "bytes": [1, 2]}))
  probe({"sha256": "a" * 64, "python": "3.11.4"})
  with pytest.raises(errors.InputError, match=r"Read it where the run did \(python \"3.11.4\" "
                     r"-> \"3.11.9\": the standard library of another Python is other text\)"):
    workdir_vocabulary.check(run, task({"sha256": "b" * 64, "python": "3.11.9"}))


def test_predict_file_skips_blank_and_whitespace_only_lines(tmp_path):
  """--file: one text per line; a line of spaces or a tab is no text (like an empty --text):
  it was classified as a text of its own. Only blank lines: refused."""
  path = tmp_path / "lines.txt"
  path.write_text("a great film\n   \n\t\n\nawful\n")
  assert predict._read_lines(str(path)) == ["a great film", "awful"]
  path.write_text("  \n\t\n")
  with pytest.raises(errors.InputError, match="holds no text"):
    predict._read_lines(str(path))


def test_predict_file_lines_end_at_newlines_only_and_skipped_ones_are_said(tmp_path, caplog):
  """A trial's 2-line file gave 4 predictions (str.splitlines splits at U+2028 and form feeds
  too) and blank lines were skipped without a word, so rows no longer lined up with the
  file's lines. Control: a plain LF or CRLF file reads as its lines, with no warning."""
  path = tmp_path / "lines.txt"
  path.write_text("the cat 5 sat\u2028on the mat\nno digit\x0cform feed 7\n", encoding="utf-8")
  with caplog.at_level("WARNING"):
    assert predict._read_lines(str(path)) == ["the cat 5 sat\u2028on the mat",
                                               "no digit\x0cform feed 7"]
  path.write_bytes(b"one\r\ntwo\r\n")
  with caplog.at_level("WARNING"):
    assert predict._read_lines(str(path)) == ["one", "two"]
  assert not caplog.records
  path.write_text("has 5 digits\n\nno digits\n")
  with caplog.at_level("WARNING"):
    assert predict._read_lines(str(path)) == ["has 5 digits", "no digits"]
  assert "1 blank line (line 2) skipped" in caplog.text
  caplog.clear()
  csv = tmp_path / "test.csv"
  csv.write_text("text,label\na film,pos\n")
  with caplog.at_level("WARNING"):
    predict._read_lines(str(csv))
  assert "a CSV's header and every column" in caplog.text


def test_the_same_bytes_read_by_another_python_or_root_are_the_same_data(tmp_path):
  """'python' and 'root' say where the data was read: the same SHA-256 elsewhere is accepted
  (a mutation audit: 'python' compared as data refused a stdlib run moved to another Python
  whose files are byte-identical)."""
  import types
  from research import workdir_vocabulary
  run = tmp_path / "run"
  run.mkdir()
  (run / "summary.json").write_text("{}")
  vocab = {"tokenizer": {"kind": "byte", "vocab_size": 259}, "labels": ["neg", "pos"]}
  (run / workdir.VOCABULARY).write_text(json.dumps(
      vocab | {"data": {"root": "/usr/lib/python3.11", "python": "3.11.4", "sha256": "a" * 64}}))
  task = lambda corpus, v=vocab: types.SimpleNamespace(corpus=corpus, probe_name="lm",
                                                       vocabulary=lambda: v)
  workdir_vocabulary.check(run, task({"root": "/opt/py", "python": "3.11.9", "sha256": "a" * 64}))
  with pytest.raises(errors.InputError, match="is not the data this run trained on"):
    workdir_vocabulary.check(run, task({"root": "/opt/py", "python": "3.11.9", "sha256": "b" * 64}))
  # the labels are part of the vocabulary: the same tokenizer with other labels is refused
  with pytest.raises(errors.InputError, match="another vocabulary or label set"):
    workdir_vocabulary.check(run, task({"sha256": "a" * 64}, vocab | {"labels": ["pos", "neg"]}))


def test_a_workdir_that_trained_nothing_is_not_checked(tmp_path):
  """No checkpoint and no summary: the rerun starts from step 0 and `record` replaces the file,
  so a vocabulary.json of another vocabulary is no refusal."""
  import types
  from research import workdir_vocabulary
  (tmp_path / workdir.VOCABULARY).write_text(json.dumps({"tokenizer": {"kind": "char"},
                                                          "labels": ["a", "b"]}))
  task = types.SimpleNamespace(corpus={"sha256": "b" * 64}, probe_name="text_classification",
                               vocabulary=lambda: {"tokenizer": {"kind": "byte"},
                                                   "labels": ["x", "y"]})
  workdir_vocabulary.check(tmp_path, task)  # no exception
  (tmp_path / "summary.json").write_text("{}")  # control: a run that trained is checked
  with pytest.raises(errors.InputError, match="another vocabulary or label set"):
    workdir_vocabulary.check(tmp_path, task)
