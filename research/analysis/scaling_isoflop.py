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
  a gets a bootstrap interval: the points are resampled within each counted bucket, the
  parabolas refitted and a re-estimated (resamples whose parabola in some bucket no longer
  opens upward have no vertex: they are counted, not used).
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


def isoflop_fit(N, D, L, C_bins: Sequence[float] = None, min_points: int = 5,
                level: float | None = None, num_resamples: int = 1000,
                seed: int = 0) -> IsoFlopResult:
  """``C_bins`` are bin *edges* in FLOP (the Besiroglu points do not sit on exact compute
  levels; default: 0.25-decade edges from 1e18 to 1e22); buckets with fewer than
  ``min_points`` points (and at least 4: a parabola and one residual) are skipped. ``level``:
  the one-sided per-bucket level of the curvature test (None: ``bucket_level``). Raises
  InputError with fewer than two counted buckets, or on repeated (N, D, L) rows."""
  N, D, L = (np.asarray(v, float) for v in (N, D, L))
  # A copied row would count twice in its bucket's parabola and its t-test.
  scaling_checks.check_duplicates(np.stack([N, D]), L, "N, D")
  C = 6.0 * N * D
  edges = np.asarray(C_bins if C_bins is not None else 10.0 ** np.arange(18, 22.01, 0.25))
  Cs, Ns, Ls, cf, ns, sels, rejected = [], [], [], [], [], [], []
  buckets = [sel for sel in ((C >= lo) & (C < hi) for lo, hi in zip(edges[:-1], edges[1:]))
             if sel.sum() >= max(min_points, 4)]
  level = bucket_level(len(buckets)) if level is None else level
  for sel in buckets:
    n = int(sel.sum())
    x, y = np.log(N[sel]), L[sel]
    cb = float(np.exp(np.log(C[sel]).mean()))
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
    Cs.append(cb)
    Ns.append(np.exp(xv))
    Ls.append(c0 - c1 * c1 / (4 * c2))
    cf.append((c2, c1, c0))
    ns.append(n)
    sels.append(np.flatnonzero(sel))
  if len(Cs) < 2:
    raise InputError(f"isoflop_fit: {len(Cs)} of {len(Cs) + len(rejected)} buckets have a "
                     "significant interior minimum, the exponent needs 2: add points per "
                     "bucket or buckets of compute")
  Cs, Ns, logC = np.array(Cs), np.array(Ns), np.log(Cs)
  a = _exponent(logC, np.log(Ns))
  b = float(np.polyfit(logC, np.log(Cs / (6.0 * Ns)), 1)[0])
  rng = np.random.default_rng(seed)
  boot = []
  for _ in range(num_resamples):
    xv = np.empty(len(sels))
    for j, idx in enumerate(sels):
      pick = idx[rng.integers(0, len(idx), len(idx))]
      x = np.log(N[pick])
      c2, c1, _ = np.polyfit(x, L[pick], 2) if len(np.unique(x)) >= 3 else (0.0, 0.0, 0.0)
      xv[j] = -c1 / (2 * c2) if c2 > 0 else np.nan
    if np.isfinite(xv).all():
      boot.append(_exponent(logC, xv))
  pct = tuple(float(v) for v in np.percentile(boot, [5, 95])) if boot else (np.nan, np.nan)
  return IsoFlopResult(a, b, Cs, Ns, np.array(Ls), cf, np.array(ns), pct, num_resamples,
                       len(boot), tuple(rejected))
