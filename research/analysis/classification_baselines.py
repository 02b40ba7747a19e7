"""A classifier's test accuracy beside its null baseline (research/tasks/text_classification.py
and image_classification.py): the accuracy of always answering the training split's most
frequent label, the accuracy's Wilson interval, and balanced accuracy against its chance."""
from __future__ import annotations

import numpy as np

from research.analysis import answer_metrics as am

DEFINITION = ("test accuracy of always answering the most frequent label of the training "
              "split")
SUMMARY_KEYS = ("accuracy", "majority_accuracy", "above_majority", "accuracy_lo", "accuracy_hi",
                "balanced_accuracy", "chance_balanced", "roc_auc", "loss")


def baselines(y: np.ndarray, pred: np.ndarray, train_counts: np.ndarray) -> dict:
  """The accuracy against what a model that ignores its input scores on the same test rows.

  A new user's 90/10 CSV of random words scored 0.85 (text classification): a constant 'ham'
  on its 17/3 test split, and nothing said so. The best input-independent answer is the training split's
  most frequent label (what a constant model learns; a tie goes to the first in label
  order): `majority_accuracy` is its share of the test rows. `above_majority` asks the
  accuracy's Wilson 95% lower bound to clear it, so a run inside the noise of 20 rows is
  not read as learning. Balanced accuracy (the mean recall over the classes the test split
  holds) is 1/K for any constant answer among them, so it is reported with that chance."""
  n, correct = len(y), int(np.sum(pred == y))
  majority = int(np.argmax(train_counts))
  lo, hi = am.wilson_interval(correct, n)
  present = np.unique(y)
  recall = [float(np.mean(pred[y == c] == c)) for c in present]
  out = {"majority_label_id": majority,
         "majority_accuracy": float(np.mean(y == majority)) if n else float("nan"),
         "accuracy_lo": lo, "accuracy_hi": hi,
         "balanced_accuracy": float(np.mean(recall)) if recall else float("nan"),
         "chance_balanced": 1.0 / len(present) if len(present) else float("nan"),
         "balanced_accuracy_classes": int(len(present))}
  out["above_majority"] = bool(lo > out["majority_accuracy"])  # False on NaN (no test rows)
  return out


def probe_fields(y: np.ndarray, pred: np.ndarray, train_counts: np.ndarray,
                 rows: str) -> dict:
  """What a classification probe file records beside its accuracy (`baselines`, the training
  split's label counts and what the interval and the baseline are); `rows`: what the test
  items are ('rows', 'images')."""
  return baselines(y, pred, train_counts) | {
      "train_label_counts": np.asarray(train_counts).tolist(),
      "interval": f"Wilson 95% over the test {rows}", "majority_definition": DEFINITION}


def summary(res: dict) -> dict:
  """The probe's flat scalars (research.results' columns, the probe's console line)."""
  return {k: res[k] for k in SUMMARY_KEYS if k in res}
