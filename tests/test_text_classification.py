"""Text classification: CSV/TFDS data, read-outs, evaluation files, prediction, and
fine-tuning from a language-model checkpoint (slow tests run the real trainer)."""
import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import checkpoint, config_check, experiment, init_from, predict, train
from research.data import text as text_lib
from research.errors import InputError
from research.tasks import text_classification as tc

ROOT = Path(__file__).resolve().parents[1]


def _csv(tmp_path, n=200, classes=("neg", "pos")):
  """Sentences whose label is given by one cue word among fillers."""
  rng = np.random.default_rng(0)
  cues = {"neg": ["bad", "awful", "dull"], "pos": ["good", "great", "fine"], "meh": ["okay", "so-so"]}
  filler = "the movie was a plot and acting".split()
  path = tmp_path / "reviews.csv"
  with path.open("w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["text", "label"])
    for _ in range(n):
      lab = str(rng.choice(classes))
      words = list(rng.choice(filler, 5)) + [str(rng.choice(cues[lab]))]
      rng.shuffle(words)
      w.writerow([" ".join(words), lab])
  return path


def _config(path="", **task):
  from configs import text_classification as tcc
  c = tcc.get_config("tiny")
  c.train.compile_cache_dir = ""
  c.mesh.data = 1
  c.task.path = str(path)
  c.task.update(task)
  return c


def test_csv_split_labels_and_batches(tmp_path):
  path = _csv(tmp_path, n=50, classes=("neg", "pos", "meh"))
  task = tc.TextClassificationTask(_config(path).task, seed=0)
  assert task.label_names == ["meh", "neg", "pos"] and task.io.output_dim == 3
  assert task.num_train == 40 and len(task.test_labels) == 10
  again = tc.TextClassificationTask(_config(path).task, seed=0)  # the split is a function of the seed
  np.testing.assert_array_equal(again.test_tokens, task.test_tokens)
  other = tc.TextClassificationTask(_config(path).task, seed=1)
  assert not np.array_equal(other.test_tokens, task.test_tokens)
  batch = jax.jit(lambda k: task.sample(k, 0, 8))(jax.random.key(0))
  tokens, lengths = np.asarray(batch["tokens"]), np.asarray(batch["lengths"])
  assert tokens.shape == (8, 32) and set(np.asarray(batch["labels"])) <= {0, 1, 2}
  for row, n in zip(tokens, lengths):  # text, EOS at the last real position, then padding
    assert row[n - 1] == text_lib.EOS and np.all(row[n:] == text_lib.PAD) and np.all(row[:n - 1] > 2)


@pytest.mark.parametrize("readout", ["last", "mean"])
def test_readout_reads_the_eos_position_or_the_mean_over_real_tokens(tmp_path, readout):
  task = tc.TextClassificationTask(_config(_csv(tmp_path, n=20), readout=readout).task, seed=0)
  out = jnp.arange(2 * 4 * 2, dtype=jnp.float32).reshape(2, 4, 2)
  got = np.asarray(task.logits(out, jnp.array([2, 4])))
  o = np.asarray(out)
  want = ([o[0, 1], o[1, 3]] if readout == "last" else [o[0, :2].mean(0), o[1].mean(0)])
  np.testing.assert_allclose(got, want)


def test_word_vocabulary_comes_from_the_training_split(tmp_path):
  task = tc.TextClassificationTask(
      _config(_csv(tmp_path, n=60), tokenizer="word", vocab_size=10).task, seed=0)
  assert task.tokenizer.vocab_size == 10 and task.io.vocab_size == 10


def test_config_errors_name_the_field(tmp_path):
  with pytest.raises(config_check.ConfigError, match="needs config.task.path"):
    config_check.validate(_config(""), 1)
  with pytest.raises(config_check.ConfigError, match="config.task.readout='max' is not valid"):
    config_check.validate(_config(_csv(tmp_path), readout="max"), 1)
  c = _config(_csv(tmp_path))
  c.init_from = str(tmp_path / "nowhere")
  # The one init_from check (research/init_from.py), made at config-check time for a text task.
  with pytest.raises(init_from.InitFromError, match="config.init_from=.*no checkpoints/"):
    config_check.validate(c, 1)


def _run(c, workdir):
  config_check.validate(c, 1)
  return train.train_and_evaluate(c, str(workdir), devices=jax.devices()[:1])


@pytest.mark.slow
def test_trains_on_csv_evaluates_and_predicts(tmp_path):
  c = _config(_csv(tmp_path))
  c.train.num_steps, c.optim.learning_rate = 120, 3e-3
  c.train.eval_every = 60
  summary = _run(c, tmp_path / "run")
  rows = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
  evals = [r for r in rows if "eval_test_accuracy" in r]
  assert [r["step"] for r in evals] == [60, 120]
  res = json.loads((tmp_path / "run" / "probes" / "text_classification.json").read_text())
  assert res["labels"] == ["neg", "pos"] and res["num_examples"] == 40
  cm = np.asarray(res["confusion_matrix"])
  assert cm.shape == (2, 2) and cm.sum() == 40
  assert res["accuracy"] == pytest.approx(np.trace(cm) / 40)
  assert res["accuracy"] == pytest.approx(evals[-1]["eval_test_accuracy"])
  assert 0 <= res["roc_auc"] <= 1 and len(res["roc"]["fpr"]) == len(res["roc"]["tpr"])
  assert (tmp_path / "run" / "figures" / "text_classification.png").exists()
  assert summary["final_loss"] < math.log(2)  # it learned something on the training batches
  exp, params, step = predict.load_run(tmp_path / "run")
  out = predict.predict_texts(exp, params, ["the movie was great", "an awful plot"])
  assert step == 120 and all(r["label"] in ("neg", "pos") for r in out)
  assert all(sum(r["probabilities"].values()) == pytest.approx(1.0) for r in out)
  lines = tmp_path / "lines.txt"
  lines.write_text("the movie was great\n\nan awful plot\n")
  proc = subprocess.run([sys.executable, "-m", "research.predict", f"--workdir={tmp_path / 'run'}",
                         f"--file={lines}", "--text=good acting", "--text=two\tparts\non lines"],
                        cwd=ROOT, capture_output=True,
                        text=True, timeout=300,
                        env={**__import__("os").environ, "JAX_PLATFORMS": "cpu"})
  assert proc.returncode == 0, proc.stderr[-2000:]
  printed = [l.split("\t") for l in proc.stdout.splitlines() if not l.startswith("#")]
  # one line and one text field per input: its tab and line break written \t, \n
  assert [p[-1] for p in printed] == ["good acting", "two\\tparts\\non lines",
                                      "the movie was great", "an awful plot"]
  assert {len(p) for p in printed} == {4}
  assert printed[2][0] == out[0]["label"] and float(printed[2][1]) == pytest.approx(
      out[0]["probability"], abs=1e-3)


@pytest.mark.slow
def test_trains_on_mock_tfds_imdb(tmp_path):
  import tensorflow_datasets as tfds
  c = _config(source="tfds", dataset="imdb_reviews", tokenizer="word", vocab_size=50,
              readout="mean")
  c.train.num_steps, c.train.eval_every = 20, 0
  with tfds.testing.mock_data(num_examples=48):
    _run(c, tmp_path)
  res = json.loads((tmp_path / "probes" / "text_classification.json").read_text())
  assert res["num_examples"] == 48 and res["labels"] == ["neg", "pos"]  # ClassLabel names
  assert "roc_auc" in res and np.asarray(res["confusion_matrix"]).sum() == 48


@pytest.mark.slow
def test_fine_tunes_from_a_language_model_checkpoint(tmp_path):
  from configs import lm as lm_config
  corpus = tmp_path / "corpus.txt"
  corpus.write_text("the movie was good and the acting was great. " * 60)
  lmc = lm_config.get_config("tiny")  # same tiny sizes, byte tokenizer and seq_len as tc tiny
  lmc.train.compile_cache_dir, lmc.mesh.data, lmc.task.path = "", 1, str(corpus)
  lmc.train.num_steps, lmc.train.eval_every = 20, 0
  _run(lmc, tmp_path / "lm")
  lm_params = {k: v for k, v in init_from._raw_params(tmp_path / "lm")[0].items()}

  c = _config(_csv(tmp_path))
  c.init_from = str(tmp_path / "lm")
  exp = experiment.Experiment(c, jax.devices()[:1])
  fresh = exp.init_state().params
  params = init_from.init_params_from(c.init_from, fresh, exp.param_sharding)
  for path, x in jax.tree_util.tree_leaves_with_path(params):
    key = checkpoint.tree_path(path)
    if key.startswith("read_out"):  # the new head: (width, 2) vs the LM's (width, 259)
      assert lm_params[key].shape != x.shape
    else:
      np.testing.assert_array_equal(np.asarray(x), lm_params[key])
  c.train.num_steps, c.train.eval_every = 20, 0
  summary = _run(c, tmp_path / "ft")
  assert summary["final_step"] == 20 and math.isfinite(summary["final_loss"])

  bad = _config(_csv(tmp_path))
  bad.init_from, bad.task.tokenizer = str(tmp_path / "lm"), "char"  # another vocabulary
  exp = experiment.Experiment(bad, jax.devices()[:1])
  v = exp.task.io.vocab_size
  with pytest.raises(init_from.InitFromError, match=rf"does not fit this model: token_embed/embedding "
                                                 rf"shape \(259, 32\) in checkpoint vs \({v}, 32\) here\. "
                                                 r"Use the same model sizes, tokenizer"):
    init_from.init_params_from(bad.init_from, exp.init_state().params, exp.param_sharding)


def test_init_from_a_run_of_another_vocabulary_is_refused(tmp_path):
  """Two word-tokenizer runs on CSVs of other words have embeddings of the same shape: init_from
  copied all 38 parameters, exit 0, each embedding row then standing for another word. Refused
  now (exit 2, naming both vocabularies, no workdir left); the same vocabulary still copies."""
  colours = tmp_path / "colours.csv"
  colours.write_text("text,label\n" + "".join(
      f"{'red blue green pink brown' if i % 2 else 'black white gray cyan teal'} sky,{'pos' if i % 2 else 'neg'}\n"
      for i in range(40)))
  first, other = (_config(path, tokenizer="word", vocab_size=12)
                  for path in (_csv(tmp_path, n=40), colours))
  for c in (first, other):
    c.train.num_steps, c.train.log_every, c.train.eval_every, c.optim.warmup_steps = 10, 10, 0, 0
  _run(first, tmp_path / "a")
  other.init_from = str(tmp_path / "a")
  with pytest.raises(init_from.InitFromError, match=(
      rf"init_from={tmp_path / 'a'} was trained with another tokenizer than this run builds \(word "
      rf"tokenizers of 12 ids; id 3 is '\w+' in {tmp_path / 'a' / 'vocabulary.json'}, '\w+' in "
      rf"this run's, to be saved in {tmp_path / 'b' / 'vocabulary.json'}\): .* Use that run's "
      r"tokenizer")) as e:
    _run(other, tmp_path / "b")
  assert e.value.exit_code == 2 and "\n" not in str(e.value) and not (tmp_path / "b").exists()
  first.init_from = str(tmp_path / "a")  # the control: the same data, the same vocabulary
  assert _run(first, tmp_path / "c")["final_step"] == 10
  assert json.loads((tmp_path / "c" / "vocabulary.json").read_text())["tokenizer"] == json.loads(
      (tmp_path / "a" / "vocabulary.json").read_text())["tokenizer"]


def test_init_from_a_run_of_other_labels_starts_the_head_fresh(tmp_path, monkeypatch):
  """Two byte-level runs with two labels each: the head fits by shape, and was copied though
  its row 0 scored 'neg' there and scores 'meh' here. Now a head of other label names (or
  order) starts fresh and the body is copied; the same labels still copy the head.
  The source named by a relative path, as a user types it (init_from=runs/NAME), reads the
  same parameters: Orbax read no metadata under it ("TypeError: argument of type
  'StepMetadata' is not iterable", exit 1, on every relative init_from)."""
  _run(_small(_config(_csv(tmp_path, n=40))), tmp_path / "a")
  source, _ = init_from._raw_params(tmp_path / "a")
  monkeypatch.chdir(tmp_path)
  relative, _ = init_from._raw_params("a")
  assert relative.keys() == source.keys() and all(
      np.array_equal(relative[k], source[k]) for k in source)
  for classes, same in ((("meh", "pos"), False), (("neg", "pos"), True)):
    (folder := tmp_path / "".join(classes)).mkdir()
    c = _config(_csv(folder, n=40, classes=classes))
    exp = experiment.Experiment(c, jax.devices()[:1])
    why = init_from.check_vocabulary(tmp_path / "a", exp.task, tmp_path / "b")
    assert (why == "") == same
    if not same:
      assert why.startswith("its labels ['neg', 'pos'] (") and "not this run's ['meh', 'pos']" in why
    fresh = exp.init_state().params
    params = init_from.init_params_from(str(tmp_path / "a"), fresh, exp.param_sharding, why)
    for path, x in jax.tree_util.tree_leaves_with_path(params):
      key = checkpoint.tree_path(path)
      want = source[key]
      if key.startswith("read_out") and not same:  # the fresh init, not the source's head
        want = np.asarray(checkpoint_leaf(fresh, path))
        assert not np.array_equal(source[key], want)  # trained: copying it would show
      np.testing.assert_array_equal(np.asarray(x), want, err_msg=key)


def test_init_from_a_run_of_the_same_labels_in_another_order_starts_the_head_fresh(tmp_path):
  """Row i of a classifier's head scores label i: the same names in another order (a TFDS
  dataset's ClassLabel order beside a CSV's sorted one, '10' before '2' sorted as text) score
  each other's classes, so that head starts fresh too; the same order copies it."""
  tokenizer = {"kind": "byte", "vocab_size": 259}

  class Task:
    def __init__(self, labels):
      self.labels = labels

    def vocabulary(self):
      return {"tokenizer": tokenizer, "labels": self.labels}
  (tmp_path / "a").mkdir()
  (tmp_path / "a" / "vocabulary.json").write_text(json.dumps(
      {"tokenizer": tokenizer, "labels": ["10", "2"]}))
  why = init_from.check_vocabulary(tmp_path / "a", Task(["2", "10"]), tmp_path / "b")
  assert why.startswith("its labels ['10', '2'] (") and why.endswith(
      "are not this run's ['2', '10'], in this order")
  assert init_from.check_vocabulary(tmp_path / "a", Task(["10", "2"]), tmp_path / "b") == ""


def _small(c):
  c.train.num_steps, c.train.log_every, c.train.eval_every, c.optim.warmup_steps = 10, 10, 0, 0
  return c


def checkpoint_leaf(tree, path):
  for part in path:
    tree = tree[part.key]
  return tree


@pytest.mark.parametrize("model", ["transformer", "lstm"])
def test_sequence_models_give_per_position_class_logits(tmp_path, model):
  from research import models
  c = _config(_csv(tmp_path, n=20))
  c.model.name = model
  config_check.validate(c, 1)
  task = tc.TextClassificationTask(c.task, seed=0)
  module = models.build(c.model, task.io).module
  x = jnp.zeros((3, task.seq_len), jnp.int32)
  params = jax.eval_shape(lambda: module.init(jax.random.key(0), x))
  out = jax.eval_shape(lambda p: module.apply(p, x), params)
  assert out.shape == (3, task.seq_len, 2)
  assert task.logits(jnp.zeros(out.shape), jnp.array([1, 5, 32])).shape == (3, 2)


def test_a_predicted_text_stays_one_tab_separated_field():
  """research.predict printed a --text with a tab and a line break as two lines of wrong
  columns (a user's trial); the slow test above runs the command. Control: plain text and
  non-ASCII are printed as given."""
  assert predict._one_field("a\tb\nc\rd\\e") == "a\\tb\\nc\\rd\\\\e"
  assert predict._one_field("un film génial") == "un film génial"



def test_predict_file_reads_one_text_per_non_blank_line(tmp_path):
  """research.predict --file: each line holding text is one text; a blank or whitespace-only
  line is none (as --text=" " is refused), so a file of only those holds no text."""
  f = tmp_path / "lines.txt"
  f.write_text("a great film\n   \n\t\nbad one\n\n", encoding="utf-8")
  assert predict._read_lines(str(f)) == ["a great film", "bad one"]
  f.write_text(" \n\t\n", encoding="utf-8")
  with pytest.raises(InputError, match="holds no text; put one text per line"):
    predict._read_lines(str(f))
  f.write_bytes(b"caf\xe9\n")
  with pytest.raises(InputError, match="is not UTF-8 text"):
    predict._read_lines(str(f))

def test_predicted_probabilities_stay_with_their_labels():
  """Label ids follow text_files.encode_labels (numbers numerically: '2' before '10'); each printed
  probability stays with its own label (sorted as text, a mutation audit moved them unseen)."""
  from types import SimpleNamespace
  from research import predict
  task = SimpleNamespace(label_names=["2", "10", "33"], seq_len=4,
                         tokenizer=SimpleNamespace(kind="byte", encode=lambda t: np.ones(3)),
                         encode=lambda texts: (np.zeros((len(texts), 4), np.int32), None),
                         probabilities=lambda fn, tokens, lengths: np.array([[0.1, 0.2, 0.7]]))
  exp = SimpleNamespace(task=task, predict_fn=lambda params: None,
                        config=SimpleNamespace(task=SimpleNamespace(name="text_classification")))
  (r,) = predict.predict_texts(exp, None, ["some text"])
  assert r["label"] == "33" and r["probability"] == pytest.approx(0.7)
  assert r["probabilities"] == pytest.approx({"2": 0.1, "10": 0.2, "33": 0.7})


def test_csv_test_share_is_rounded(tmp_path):
  """20% of 23 rows is 4.6: 5 test rows (rounded), 18 train (a mutation audit: int() floored
  it to 4)."""
  task = tc.TextClassificationTask(_config(_csv(tmp_path, n=23)).task, seed=0)
  assert len(task.test_labels) == 5 and task.num_train == 18


def test_a_csv_of_one_label_is_refused(tmp_path):
  path = _csv(tmp_path, n=20, classes=("pos",))
  with pytest.raises(InputError, match=r"has 1 label\(s\) \(pos\); a classifier needs at least 2"):
    tc.TextClassificationTask(_config(path).task, seed=0)


def test_tfds_labels_without_class_names_are_numbered_up_to_the_largest(monkeypatch):
  """A TFDS label feature without ClassLabel names: labels 0..2 give the names '0', '1', '2'
  (the largest label + 1 of them; a mutation audit dropped the + 1: 2 names for 3 classes)."""
  def records(name, split, data_dir="", limit=0):
    labels = [0, 2, 1, 0] if split == "train" else [1, 0]
    return [{"text": f"text {i}", "label": l} for i, l in enumerate(labels)], None
  monkeypatch.setattr(text_lib, "tfds_records", records)
  c = _config(source="tfds", dataset="unnamed")
  tr_x, tr_y, te_x, te_y, names, corpus = tc.load_split(c.task, seed=0)
  assert names == ["0", "1", "2"] and tr_y.tolist() == [0, 2, 1, 0] and te_y.tolist() == [1, 0]
  assert corpus == {"dataset": "unnamed", "examples": [4, 2]}


def _probe(task, logits_of_rows):
  """The task's probe with a model whose per-position logits are logits_of_rows(tokens)."""
  import ml_collections
  apply = lambda tokens: jnp.broadcast_to(logits_of_rows(tokens)[:, None],
                                          tokens.shape + (task.num_classes,))
  return task.probe(apply, jax.random.key(0), ml_collections.ConfigDict({"batch_size": 4}),
                    step=1)["text_classification"]


def test_probe_confusion_loss_and_roc_follow_their_definitions(tmp_path):
  """Two classes (neg=0, pos=1). A constant 'neg' model: confusion rows are the true label
  (every count in column 0), loss -log softmax([1, 0])[label]. A model scoring 'pos' when a pos
  cue word is in the text: accuracy 1 and ROC AUC 1 with class 1 positive (a mutation audit:
  a transposed confusion matrix, the loss of the predicted class, the AUC of column 0)."""
  task = tc.TextClassificationTask(
      _config(_csv(tmp_path, n=60), tokenizer="word", vocab_size=100).task, seed=0)
  y = np.asarray(task.test_labels)
  n0, n1 = int((y == 0).sum()), int((y == 1).sum())
  assert task.label_names == ["neg", "pos"] and n0 and n1
  res = _probe(task, lambda t: jnp.zeros((t.shape[0], 2)).at[:, 0].set(1.0))
  assert res["confusion_matrix"] == [[n0, 0], [n1, 0]]
  assert res["accuracy"] == pytest.approx(n0 / len(y))
  want = (n0 * np.log1p(np.exp(-1.0)) + n1 * np.log1p(np.exp(1.0))) / len(y)
  assert res["loss"] == pytest.approx(want, rel=1e-5)
  cues = jnp.asarray([task.tokenizer._ids[w] for w in ("good", "great", "fine")])
  oracle = lambda t: jnp.stack([jnp.zeros(t.shape[0]),
                                jnp.where(jnp.isin(t, cues).any(1), 4.0, -4.0)], 1)
  res = _probe(task, oracle)
  assert res["accuracy"] == 1.0 and res["confusion_matrix"] == [[n0, 0], [0, n1]]
  assert res["roc_auc"] == 1.0 and res["roc"]["tpr"][1] == 1.0 and res["roc"]["fpr"][1] == 0.0


def test_sample_draws_every_training_row(tmp_path):
  """Rows are drawn uniformly from all num_train rows (a mutation audit: randint up to
  num_train - 1 never drew the last one): 2 train rows, 64 draws show both, each with its own
  label and length."""
  path = tmp_path / "two.csv"
  path.write_text("text,label\naaaa,neg\nbb,pos\nc,neg\n")
  task = tc.TextClassificationTask(_config(path, test_fraction=0.34).task, seed=0)
  assert task.num_train == 2
  batch = jax.jit(lambda k: task.sample(k, 0, 64))(jax.random.key(0))
  seen = {(int(n), int(l)) for n, l in zip(np.asarray(batch["lengths"]), np.asarray(batch["labels"]))}
  rows = np.asarray(task.rows.gather(jnp.arange(2)))
  assert seen == {(int(r[task.seq_len]), int(r[task.seq_len + 1])) for r in rows}
  assert len(seen) == 2
