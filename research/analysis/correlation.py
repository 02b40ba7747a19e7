"""Rank correlation for trend claims ("accuracy rises with n"), shared by every scorer."""
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
  """Spearman's rho with average ranks for ties; 0 when either side is constant or n < 2."""
  if len(x) != len(y):
    raise ValueError(f"spearman needs equal lengths, got {len(x)} and {len(y)}")
  if len(x) < 2:
    return 0.0
  rx, ry = average_ranks(x), average_ranks(y)
  rx, ry = rx - rx.mean(), ry - ry.mean()
  denom = np.sqrt((rx ** 2).sum() * (ry ** 2).sum())
  return float((rx * ry).sum() / denom) if denom > 0 else 0.0
