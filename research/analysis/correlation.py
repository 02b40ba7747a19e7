"""Rank correlation and the trend test for claims such as "accuracy rises with n", shared by
the experiments (experiments/xie2021.py) and every scorer (experiments/claims/)."""
from __future__ import annotations

import numpy as np


def average_ranks(values) -> np.ndarray:
  """Ranks 0..n-1; tied values share the mean of the ranks they span."""
  v = np.asarray(values, float)
  order = np.argsort(v, kind="stable")
  ranks = np.empty(len(v))
  ranks[order] = np.arange(len(v), dtype=float)
  for value in np.unique(v):
    tied = v == value
    ranks[tied] = ranks[tied].mean()
  return ranks


def spearman(x, y) -> float:
  """Spearman's rho with average ranks for ties; 0 when either side is constant or n < 2; NaN
  when either holds a non-finite value."""
  if len(x) != len(y):
    raise ValueError(f"spearman needs equal lengths, got {len(x)} and {len(y)}")
  if len(x) < 2:
    return 0.0
  if not (np.isfinite(np.asarray(x, float)).all() and np.isfinite(np.asarray(y, float)).all()):
    return float("nan")  # a NaN has no rank (argsort put it last: the top value)
  rx, ry = average_ranks(x), average_ranks(y)
  rx, ry = rx - rx.mean(), ry - ry.mean()
  denom = np.sqrt((rx ** 2).sum() * (ry ** 2).sum())
  return float((rx * ry).sum() / denom) if denom > 0 else 0.0


def rises_with_n(curve: dict, num_prompts: int) -> dict:
  """Accuracy gain from the fewest to the most examples (n >= 1) with its binomial
  standard error, its rank correlation with n, the mean accuracy over n >= 1 minus
  zero-shot accuracy, and the largest fall from any n >= 1 to a later n beyond two standard
  errors of that difference (`largest_drop`, with the ns `drop_from`, `drop_to`; 0 when none
  is resolved). `curve` may carry `se` (a mean over k); else it is binomial."""
  n, acc = np.asarray(curve["n"]), np.asarray(curve["accuracy"])
  se = np.asarray(curve["se"]) if "se" in curve else np.sqrt(acc * (1 - acc) / num_prompts)
  zero = float(acc[n == 0][0]) if (n == 0).any() else float("nan")
  keep = n >= 1
  n, acc, se = n[keep], acc[keep], se[keep]
  if len(n) < 2:
    return {"gain": 0.0, "gain_se": 0.0, "spearman": 0.0, "mean_shots_minus_zero_shot": 0.0,
            "largest_drop": 0.0, "drop_from": None, "drop_to": None, "rises": False}
  rho = spearman(n, acc)
  gain, gain_se = float(acc[-1] - acc[0]), float(np.hypot(se[-1], se[0]))
  # A fall from any n to a later n that the probe resolves (beyond 2 SE of the difference):
  # first-to-last gain and a positive rho alone passed a rise that falls back (0.30, 0.60,
  # 0.60, 0.35 over n = 1..8: +0.05, rho 0.32), which is not accuracy rising with n.
  drop, drop_from, drop_to = 0.0, None, None
  for i in range(len(n)):
    for j in range(i + 1, len(n)):
      d = float(acc[i] - acc[j])
      if d > 2 * float(np.hypot(se[i], se[j])) and d > drop:
        drop, drop_from, drop_to = d, int(n[i]), int(n[j])
  return {"gain": gain, "gain_se": gain_se, "spearman": rho,
          "mean_shots_minus_zero_shot": float(acc.mean() - zero),
          "largest_drop": drop, "drop_from": drop_from, "drop_to": drop_to,
          # rises: a gain beyond two standard errors, a positive rank correlation, no
          # resolved fall from any n to a later n, and a number at every n: a NaN between the
          # first and the last n (an unmeasured cell) compares False with everything, so it
          # hid any fall and ranked as the top value (0.3, NaN, 0.4: rho 0.5, PASS)
          "rises": bool(gain > 2 * gain_se and rho > 0 and drop_from is None
                        and np.isfinite(acc).all() and np.isfinite(se).all())}


def mean_over_k(curves: dict, num_prompts: int) -> dict:
  """Accuracy averaged over example lengths k at the n every k has, with its standard
  error (independent prompts per k: binomial variances averaged)."""
  common = sorted(set.intersection(*(set(c["n"]) for c in curves.values())))
  at = lambda n: np.asarray([c["accuracy"][c["n"].index(n)] for c in curves.values()])
  acc = [float(at(n).mean()) for n in common]
  se = [float(np.sqrt((at(n) * (1 - at(n))).sum() / num_prompts) / len(curves)) for n in common]
  return {"n": common, "accuracy": acc, "se": se}
