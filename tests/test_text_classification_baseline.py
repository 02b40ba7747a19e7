"""Text classification's null baseline: the probe's accuracy beside the test accuracy of
always answering the training split's most frequent label, its Wilson 95% interval, and
balanced accuracy against its chance 1/K. A new user's 90/10 CSV of random words read 0.85
with nothing saying that a constant 'ham' scores exactly that on its 17/3 test split."""
import csv
import json

import jax.numpy as jnp
import numpy as np
import pytest
from test_text_classification import _config, _csv, _probe, _run

from research import results_records
from research.analysis import answer_metrics as am
from research.analysis import classification_baselines
from research.tasks import text_classification as tc

SUMMARY = ("accuracy", "majority_accuracy", "above_majority", "accuracy_lo", "accuracy_hi",
           "balanced_accuracy", "chance_balanced", "loss")


def _noise_csv(tmp_path, shares, n=100):
  """Random words with no bearing on the label; labels in the given shares, e.g. 90/10."""
  rng = np.random.default_rng(0)
  words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda sigma".split()
  labels = [lab for lab, share in shares.items() for _ in range(round(n * share))]
  path = tmp_path / "noise.csv"
  with path.open("w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["text", "label"])
    for lab in labels:
      w.writerow([" ".join(rng.choice(words, 6)), lab])
  return path


def _fast(c, steps):
  """One jit call, one log, eval and checkpoint at the end: the run's fixed costs once."""
  c.train.num_steps = c.train.steps_per_call = steps
  c.train.log_every = c.train.eval_every = c.train.checkpoint_every = steps
  return c


def test_the_baseline_is_the_training_splits_majority_not_the_tests():
  """Train counts favour class 0, the test rows class 1: the baseline is the constant a model
  learns (class 0, 2 of 5 test rows), not the test split's own majority (a mutation audit:
  argmax over the test labels would read 0.6)."""
  y, pred = np.array([0, 0, 1, 1, 1]), np.zeros(5, int)
  got = classification_baselines.baselines(y, pred, np.array([8, 2]))
  assert got["majority_label_id"] == 0 and got["majority_accuracy"] == pytest.approx(0.4)
  assert (got["accuracy_lo"], got["accuracy_hi"]) == am.wilson_interval(2, 5)
  assert got["balanced_accuracy"] == 0.5 == got["chance_balanced"]
  assert got["above_majority"] is False


def test_twenty_of_twenty_is_not_above_a_majority_of_085():
  """The user's 17/3 test split: even a perfect classifier's Wilson lower bound (0.839) is
  under the constant's 0.85, so 20 rows cannot show learning; 40 perfect rows of a 50/50
  split can (0.91 > 0.5)."""
  y = np.array([0] * 17 + [1] * 3)
  got = classification_baselines.baselines(y, y.copy(), np.array([73, 7]))
  assert got["accuracy_lo"] == pytest.approx(0.8389, abs=1e-4) and got["majority_accuracy"] == 0.85
  assert got["above_majority"] is False and got["balanced_accuracy"] == 1.0
  y = np.array([0, 1] * 20)
  assert classification_baselines.baselines(y, y.copy(), np.array([80, 80]))["above_majority"] is True


@pytest.mark.parametrize("classes", [("neg", "pos"), ("neg", "pos", "meh")])
def test_a_constant_model_scores_the_baseline_exactly(tmp_path, classes):
  """A model answering the training majority on every row: accuracy = majority_accuracy,
  balanced accuracy = its chance 1/K, not above; the summary holds the flat scalars (ROC AUC
  only for two classes) and the file names the label."""
  task = tc.TextClassificationTask(
      _config(_csv(tmp_path, n=60, classes=classes), tokenizer="word", vocab_size=100).task,
      seed=0)
  k = len(classes)
  majority = int(np.argmax(task.train_label_counts))
  res = _probe(task, lambda t: jnp.zeros((t.shape[0], k)).at[:, majority].set(1.0))
  assert res["accuracy"] == res["majority_accuracy"] == pytest.approx(
      np.mean(task.test_labels == majority))
  assert res["majority_label"] == task.label_names[majority]
  assert res["balanced_accuracy"] == pytest.approx(1 / k) == res["chance_balanced"]
  assert res["above_majority"] is False
  assert list(res["summary"]) == list(SUMMARY[:7]) + (["roc_auc"] if k == 2 else []) + ["loss"]
  assert all(np.isscalar(v) for v in res["summary"].values())
  assert sum(res["train_label_counts"]) == task.num_train


def test_the_figure_draws_a_file_with_and_without_the_baseline(tmp_path):
  """The title carries the baseline; a probe file from before it still renders."""
  task = tc.TextClassificationTask(
      _config(_csv(tmp_path, n=60), tokenizer="word", vocab_size=100).task, seed=0)
  res = _probe(task, lambda t: jnp.zeros((t.shape[0], 2)).at[:, 0].set(1.0))
  old = {k: v for k, v in res.items() if k in (
      "kind", "step", "dataset", "labels", "num_examples", "accuracy", "loss",
      "confusion_matrix")}
  for name, obj in (("new", res), ("old", old)):
    (tmp_path / f"{name}.json").write_text(json.dumps(obj))
    tc.TextClassificationTask.render(tmp_path / f"{name}.json", tmp_path / f"{name}.png")
    assert (tmp_path / f"{name}.png").stat().st_size > 0


@pytest.mark.parametrize("shares", [{"ham": 0.9, "spam": 0.1},
                                    {"ham": 0.8, "spam": 0.1, "eggs": 0.1}])
def test_no_signal_scores_the_majority_and_is_not_above_it(tmp_path, shares, caplog):
  """The negative control, the user's report: random words, a 90/10 (and 80/10/10) file. The
  model answers the majority; the probe, metrics.jsonl, the console's probe line and
  research.results all show the baseline beside the accuracy."""
  c = _fast(_config(_noise_csv(tmp_path, shares)), 40)
  with caplog.at_level("INFO"):
    _run(c, tmp_path / "run")
  res = json.loads((tmp_path / "run" / "probes" / "text_classification.json").read_text())
  assert res["majority_label"] == "ham" and res["num_examples"] == 20
  assert res["accuracy"] == res["majority_accuracy"] and res["above_majority"] is False
  assert res["balanced_accuracy"] == pytest.approx(1 / len(shares)) == res["chance_balanced"]
  rows = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
  last = [r for r in rows if "eval_test_accuracy" in r][-1]
  assert last["eval_test_majority_accuracy"] == res["majority_accuracy"]
  line = next(l for l in caplog.text.splitlines() if "probe text_classification" in l)
  assert f"accuracy {res['accuracy']:.4g}; majority_accuracy {res['majority_accuracy']:.4g}; " \
         "above_majority False" in line
  (row,) = results_records.records([tmp_path / "run"])
  table = {k[len("probes.text_classification."):]: v for k, v in row.items()
           if k.startswith("probes.text_classification.")}
  assert table == res["summary"] and set(SUMMARY) <= set(table)
  assert ("roc_auc" in table) == (len(shares) == 2)


@pytest.mark.parametrize("classes", [("neg", "pos"), ("neg", "pos", "meh")])
def test_a_separable_file_is_above_the_majority(tmp_path, classes):
  """The positive control: a cue word names the class; 30 steps clear the baseline by more
  than the interval (measured: 0.95 [0.83, 0.99] against 0.45 binary, 0.90 [0.77, 0.96]
  against 0.325 for three classes)."""
  c = _fast(_config(_csv(tmp_path, n=200, classes=classes), tokenizer="word", vocab_size=100),
            30)
  c.optim.learning_rate, c.optim.warmup_steps = 1e-2, 0
  _run(c, tmp_path / "run")
  res = json.loads((tmp_path / "run" / "probes" / "text_classification.json").read_text())
  assert res["above_majority"] is True and res["accuracy_lo"] > res["majority_accuracy"]
  assert res["balanced_accuracy"] > res["chance_balanced"] == pytest.approx(1 / len(classes))
