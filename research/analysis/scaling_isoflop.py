"""Hoffmann et al. 2022 approach 2 (IsoFLOP profiles) on binned compute, with its uncertainty.

In each compute bucket a parabola in x = log N is fitted to the loss; its vertex is that
bucket's N_opt; then log N_opt = a log C + const by least squares, and D_opt = C / (6 N_opt)
gives b. The plain procedure finds "minima" in noise: on the 240 Besiroglu points with the
losses permuted (no relation between N and loss), 200 permutations gave a median
a = 0.574, 5-95% [0.33, 0.79], and the real data's 0.464 lies inside that band. So here

  a bucket counts only if its parabola opens upward significantly (one-sided t-test of the
  x^2 coefficient at ``level``, from the parabola's own residuals) and its vertex lies inside
  the bucket's N range; the buckets that fail are returned with their reason. The per-bucket
  level is set from the number m of buckets tested so that null data (independent buckets)
  give the two buckets the exponent needs with probability FAMILY = 1%: with 12 buckets a 5%
  test passes two by chance in ~12% of datasets (measured: 29 of 200 permutations), the
  resulting 1.3% in 2 of 200; with the scaling_laws grid's 3 buckets of 4 points it is 5.8%
  (a fixed 1% would refuse even the noise-free known law there: t = 16-22 on 1 dof);
  a gets a bootstrap interval of the whole procedure (isoflop_fit's docstring): a bootstrap
  of the counted buckets alone, dropping resamples whose parabola stopped opening upward,
  described a selected subset (279 of 1000 resamples on the scaling_laws grid, where a
  bucket of 4 points resampled rarely keeps 4 distinct N).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
from scipy import optimize, stats

from research.analysis import scaling_checks
from research.errors import InputError

FAMILY = 0.01  # chance that null data yield an exponent (two buckets passing)


def bucket_level(m: int, family: float = FAMILY) -> float:
  """The per-bucket level p with P(Binomial(m, p) >= 2) = family."""
  if m < 2:
    return family
  return float(optimize.brentq(lambda p: stats.binom.sf(1, m, p) - family, 1e-12, 1.0))


@dataclasses.dataclass(frozen=True)
class IsoFlopResult:
  a: float  # N_opt ~ C^a
  b: float  # D_opt ~ C^b (= 1 - a, since D = C / 6N)
  C: np.ndarray  # per counted bucket: geometric-mean compute
  N_opt: np.ndarray  # argmin of the parabola
  L_opt: np.ndarray  # minimum of the parabola
  coeffs: list  # per bucket (c2, c1, c0) of L = c2 x^2 + c1 x + c0, x = log N
  n_points: np.ndarray
  a_5_95: tuple = (np.nan, np.nan)  # bootstrap percentiles of a (nan without resamples)
  resamples: int = 0  # bootstrap resamples drawn ...
  resamples_used: int = 0  # ... and those with an upward parabola in every bucket
  rejected: tuple = ()  # per bucket not counted: {"C", "n_points", "reason"}


def _curvature_t(x, y):
  """Parabola coefficients and the t statistic of c2 (its estimate over its standard error,
  from the residuals; inf for an exact parabola)."""
  p, cov = np.polyfit(x, y, 2, cov="unscaled")
  r = y - np.polyval(p, x)
  s2 = float(r @ r) / (len(x) - 3)
  se = np.sqrt(s2 * cov[0, 0])
  return p, (np.inf if se == 0 else p[0] / se) if p[0] > 0 else -np.inf


def _exponent(logC, logN):
  return float(np.polyfit(logC, logN, 1)[0])


def _select(buckets, N, L, C, level):
  """The procedure on given points: per bucket (an index array) the parabola in log N, counted
  when it opens upward significantly with its vertex inside; (counted, rejected) with counted
  rows (C, log N_opt, L_opt, coeffs, n, idx) and rejected {"C", "n_points", "reason"}."""
  counted, rejected = [], []
  for idx in buckets:
    n = len(idx)
    x, y = np.log(N[idx]), L[idx]
    cb = float(np.exp(np.log(C[idx]).mean()))
    if len(np.unique(x)) < 4:
      rejected.append({"C": cb, "n_points": n, "reason": "fewer than 4 distinct N"})
      continue
    (c2, c1, c0), t = _curvature_t(x, y)
    crit = stats.t.ppf(1 - level, n - 3)
    if not t > crit:
      rejected.append({"C": cb, "n_points": n, "reason": f"curvature not significant "
                       f"(t = {t:.2f} <= {crit:.2f}, one-sided {level:.3g})"})
      continue
    xv = -c1 / (2 * c2)
    if not x.min() <= xv <= x.max():
      rejected.append({"C": cb, "n_points": n, "reason": "minimum outside the bucket's N"})
      continue
    counted.append((cb, xv, c0 - c1 * c1 / (4 * c2), (c2, c1, c0), n, idx))
  return counted, rejected


def isoflop_fit(N, D, L, C_bins: Sequence[float] = None, min_points: int = 5,
                level: float | None = None, num_resamples: int = 1000,
                seed: int = 0) -> IsoFlopResult:
  """``C_bins`` are bin *edges* in FLOP (the Besiroglu points do not sit on exact compute
  levels; default: 0.25-decade edges from 1e18 to 1e22); buckets with fewer than
  ``min_points`` points (and at least 4: a parabola and one residual) are skipped. ``level``:
  the one-sided per-bucket level of the curvature test (None: ``bucket_level``). Raises
  InputError with fewer than two counted buckets, on repeated (N, D, L) rows, or on a
  non-finite input or loss.

  The interval bootstraps the whole procedure: each resample draws points within every
  bucket, selects the buckets again by the same rules and refits a. A resample left with
  fewer than two buckets has no exponent; it counts as lying beyond both ends (an exponent
  the data cannot pin down), so more than 5% of such resamples leave that end unbounded
  (inf), never an interval of the selected resamples only."""
  N, D, L = (np.asarray(v, float) for v in (N, D, L))
  bad = np.flatnonzero(~(np.isfinite(L) & np.isfinite(N) & np.isfinite(D) & (N > 0) & (D > 0)))
  if bad.size:
    # A NaN N or D gives a NaN compute, which falls in no bucket: the point would vanish
    # without a word, and a NaN loss would poison its bucket's parabola.
    raise InputError(f"isoflop_fit: {bad.size} of {len(L)} points (indices {bad[:10].tolist()})"
                     " have a non-finite loss or a non-positive or non-finite N or D; drop or "
                     "fix those points")
  # A copied row would count twice in its bucket's parabola and its t-test.
  scaling_checks.check_duplicates(np.stack([N, D]), L, "N, D")
  C = 6.0 * N * D
  edges = np.asarray(C_bins if C_bins is not None else 10.0 ** np.arange(18, 22.01, 0.25))
  buckets = [np.flatnonzero(sel) for sel in ((C >= lo) & (C < hi)
                                             for lo, hi in zip(edges[:-1], edges[1:]))
             if sel.sum() >= max(min_points, 4)]
  level = bucket_level(len(buckets)) if level is None else level
  counted, rejected = _select(buckets, N, L, C, level)
  if len(counted) < 2:
    raise InputError(f"isoflop_fit: {len(counted)} of {len(buckets)} buckets have a "
                     "significant interior minimum, the exponent needs 2: add points per "
                     "bucket or buckets of compute")
  Cs, logN, Ls, cf, ns, _ = (list(v) for v in zip(*counted))
  Cs, Ns, logC = np.array(Cs), np.exp(logN), np.log(Cs)
  a = _exponent(logC, np.array(logN))
  b = float(np.polyfit(logC, np.log(Cs / (6.0 * Ns)), 1)[0])
  rng = np.random.default_rng(seed)
  boot, lost = [], 0
  for _ in range(num_resamples):
    drawn = [idx[rng.integers(0, len(idx), len(idx))] for idx in buckets]
    kept, _ = _select(drawn, N, L, C, level)
    if len(kept) < 2:
      lost += 1
      continue
    boot.append(_exponent(np.log([k[0] for k in kept]), np.array([k[1] for k in kept])))
  pct = (np.nan, np.nan)
  if num_resamples:
    q = np.sort(boot)
    lo_k, hi_k = int(0.05 * num_resamples), int(np.ceil(0.95 * num_resamples)) - 1
    # Lost resamples sit below the lowest and above the highest kept exponent.
    lo = -np.inf if lo_k < lost else float(q[lo_k - lost])
    hi = np.inf if hi_k >= len(q) else float(q[hi_k])
    pct = (lo, hi)
  return IsoFlopResult(a, b, Cs, Ns, np.array(Ls), cf, np.array(ns), pct, num_resamples,
                       len(boot), tuple(rejected))
