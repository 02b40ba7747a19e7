"""Own labelled text that trains without error and misleads is said (research/data/text_checks.py):
each check with its control, a file that holds nothing of the kind, which says nothing."""
import csv

import numpy as np
import pytest

from research.data import text_checks


def test_a_class_of_a_few_rows_is_said_with_the_label_it_looks_like():
  names = ["1", "1.0", "NoDigit", "digit", "nodigit", "nodigt"]
  labels = np.array([0] * 40 + [1] + [2] * 2 + [3] * 50 + [4] * 50 + [5])
  message = text_checks.few_row_classes("config.task.path='d.csv'", names, labels)
  assert "'1.0' (1 row; a typo of '1'?)" in message
  assert "'nodigt' (1 row; a typo of 'nodigit'?)" in message
  assert "'NoDigit' (2 rows; a typo of 'nodigit'?)" in message
  assert "of 144 rows" in message and message.startswith("config.task.path='d.csv': class ")
  # a rare class like no other is named without a guess
  message = text_checks.few_row_classes("f", ["cat", "dog", "zebra"], np.array([0] * 9 + [1] * 9 + [2]))
  assert "'zebra' (1 row)" in message and "typo" not in message
  # numbers are compared as numbers only: 10 is not a typo of 1
  message = text_checks.few_row_classes("f", ["1", "10"], np.array([0] * 9 + [1]))
  assert "'10' (1 row)" in message and "typo" not in message
  # control: every class with FEW_ROWS rows or more
  assert text_checks.few_row_classes("f", ["a", "b"], np.array([0] * 5 + [1] * 5)) is None


def test_texts_cut_at_seq_len_are_counted_in_both_splits():
  message = text_checks.truncated("f", [10, 31, 32, 200], [5, 40], seq_len=32)
  assert message.startswith("f: 2 of 4 training and 1 of 2 test texts are longer than the 31 "
                            "tokens the model reads (config.task.seq_len=32; the longest has 200)")
  assert text_checks.truncated("f", [10, 31], [31], seq_len=32) is None  # control: all fit


def test_test_texts_the_training_split_holds_are_counted():
  message = text_checks.test_texts_in_training("f", ["a", "b", "c"], ["b", "b", "d"])
  assert message.startswith("f: 2 of 3 test texts are in the training split too")
  assert text_checks.test_texts_in_training("f", ["a", "b"], ["c", "d"]) is None  # control


@pytest.fixture
def task_config():
  from configs import text_classification
  return text_classification.get_config("tiny").task


def _write(path, rows):
  with open(path, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["text", "label"])
    w.writerows(rows)
  return str(path)


def test_the_task_says_each_at_every_seed(tmp_path, task_config, caplog):
  """The trial's files: a typo'd label trained as a third class at seeds 0-4 without a word
  (refused at seed 5, one line naming it), a file of repeated rows, texts longer than the model reads. Control:
  a clean file of short distinct texts logs no warning."""
  from research.tasks.text_classification import TextClassificationTask
  rng = np.random.default_rng(0)
  clean = [(f"text {i} {'digit' if i % 2 else 'word'}", "pos" if i % 2 else "neg")
           for i in range(60)]
  task_config.path = _write(tmp_path / "clean.csv", clean)
  with caplog.at_level("WARNING"):
    TextClassificationTask(task_config, seed=0)
  assert not caplog.records, caplog.text
  typo = clean[:-1] + [(clean[-1][0], "pso")]
  task_config.path = _write(tmp_path / "typo.csv", typo)
  warned = 0
  for seed in range(3):
    caplog.clear()
    with caplog.at_level("WARNING"):
      try:
        TextClassificationTask(task_config, seed=seed)
      except Exception as e:  # noqa: BLE001 -- the row in the test split: refused in one line
        assert "no row of class 'pso' (1 row)" in str(e) and not caplog.records
        continue
    assert "'pso' (1 row; a typo of 'pos'?)" in caplog.text
    warned += 1
  assert warned  # at least one seed kept the row for training, and said so
  caplog.clear()
  task_config.path = _write(tmp_path / "repeats.csv", clean[:20] * 3)
  with caplog.at_level("WARNING"):
    TextClassificationTask(task_config, seed=0)
  assert "test texts are in the training split too" in caplog.text
  caplog.clear()
  long = [("x" * int(rng.integers(40, 60)) + str(i % 2), str(i % 2)) for i in range(60)]
  task_config.path = _write(tmp_path / "long.csv", long)
  with caplog.at_level("WARNING"):
    TextClassificationTask(task_config, seed=0)
  assert f"tokens the model reads (config.task.seq_len={task_config.seq_len}" in caplog.text
