"""Scaling-law fits: Chinchilla approach 3 (Besiroglu et al. 2024); approach 2: scaling_isoflop.py

Model (Hoffmann et al. 2022):  L(N, D) = E + A / N^alpha + B / D^beta.

Fitting follows Besiroglu et al. 2024 ("Chinchilla Scaling: A replication attempt") exactly:
parameters theta = (a, b, e, alpha, beta) with A = e^a, B = e^b, E = e^e; residual
r = logsumexp(a - alpha log N, b - beta log D, e) - log L; objective = sum of Huber(delta=1e-3)
over points (a sum, not a mean: with scipy's default absolute/relative tolerances the scale of the
objective changes where L-BFGS-B stops); L-BFGS-B from every start of the grid
alpha, beta in {0, .5, .., 2}, e in {-1, -.5, .., 1}, a, b in {0, 5, .., 25}; keep the best.
That grid has 6*6*5*5*5 = 4500 starts (alpha/beta take 5 values, not 6).

Departures from the replication, each because null data got confident numbers without them
(scaling_checks.py has the measurements): alpha, beta >= 0 (L-BFGS-B bounds); the best start
is polished with the bootstrap's ``TIGHT`` tolerances; a fit is refused (InputError) with
repeated rows, fewer distinct points than parameters + 1, N and D varying together, or no
dependence on the inputs or on one of them.

Everything is plain NumPy/SciPy. The objective and its analytic gradient are vectorised over data
points (and over starts, for the cheap grid screen used by ``top_starts``).
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import itertools
import time
from typing import Optional

import numpy as np
from scipy.optimize import minimize

from research.analysis import scaling_checks
# The data file and its loader live in scaling_data.py, re-exported: callers use scaling.*.
from research.analysis.scaling_data import (  # noqa: F401
    CSV_NAME, ChinchillaData, besiroglu_subset, default_csv_path, load_chinchilla_csv)


# ----------------------------------------------------------------------------- BLAS threads
# SciPy's L-BFGS-B calls OpenBLAS on 5-vectors. When the cores are busy (other jobs, pytest-xdist)
# OpenBLAS's worker threads spin and every iteration costs ~7 ms instead of ~0.06 ms (measured on
# the 2-core dev box: a 100-start fit took 23 s instead of 0.6 s). So the fits pin OpenBLAS to one
# thread for the *calling thread only* (openblas_set_num_threads_local, OpenBLAS >= 0.3.27) and
# restore it afterwards. Without OpenBLAS (or off Linux) this is a no-op.
_BLAS_SETTERS = None


def _blas_setters():
  global _BLAS_SETTERS
  if _BLAS_SETTERS is None:
    _BLAS_SETTERS = []
    try:
      with open("/proc/self/maps") as fh:
        paths = {ln.split()[-1] for ln in fh if "openblas" in ln.lower()}
    except OSError:
      paths = set()
    for path in sorted(p for p in paths if p.startswith("/") and ".so" in p):
      try:
        fn = ctypes.CDLL(path).openblas_set_num_threads_local
      except (OSError, AttributeError):
        continue
      fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_int]
      _BLAS_SETTERS.append(fn)
  return _BLAS_SETTERS


@contextlib.contextmanager
def single_threaded_blas():
  setters = _blas_setters()
  previous = [fn(1) for fn in setters]
  try:
    yield
  finally:
    for fn, n in zip(setters, previous):
      fn(n)


# ----------------------------------------------------------------------------- objective
# Generic form used by both fits: K power-law terms plus a constant,
#   log pred = logsumexp(c_k - alpha_k X_k (k < K), e),   X_k = log inputs,
# with theta = (c_1..c_K, e, alpha_1..alpha_K). For K = 2 this is Besiroglu's (a, b, e, alpha, beta).

def _huber_lse(theta: np.ndarray, X: np.ndarray, logy: np.ndarray, delta: float):
  """Summed Huber loss of the log residuals and its analytic gradient (single theta)."""
  K = X.shape[0]
  T = np.empty((K + 1, X.shape[1]))
  T[:K] = theta[:K, None] - theta[K + 1:, None] * X
  T[K] = theta[K]
  m = T.max(axis=0)  # stabilised log-sum-exp; W are the softmax weights = d lse / d T
  W = np.exp(T - m)
  s = W.sum(axis=0)
  W /= s
  r = m + np.log(s) - logy
  g = np.clip(r, -delta, delta)  # Huber'(r); also Huber(r) = g * (r - g/2) in both regimes
  f = float(g @ (r - 0.5 * g))
  GW = W * g
  grad = np.concatenate([GW.sum(axis=1), -np.einsum("kn,kn->k", GW[:K], X)])
  return f, grad


def _log_residuals(theta: np.ndarray, X: np.ndarray, logy: np.ndarray) -> np.ndarray:
  """log pred - log y at ``theta``, in log space throughout: a fit whose coefficient
  overflows exp() (A = e^800 against N^-alpha) still has finite residuals."""
  K = X.shape[0]
  T = np.vstack([theta[:K, None] - theta[K + 1:, None] * X, np.full((1, X.shape[1]), theta[K])])
  return np.logaddexp.reduce(T, axis=0) - logy


def _huber_lse_batch(thetas: np.ndarray, X: np.ndarray, logy: np.ndarray, delta: float):
  """Objective only, for many thetas at once (S, P) -> (S,); used to screen the start grid."""
  K = X.shape[0]
  T = np.empty((thetas.shape[0], K + 1, X.shape[1]))
  T[:, :K] = thetas[:, :K, None] - thetas[:, K + 1:, None] * X[None]
  T[:, K] = thetas[:, K, None]
  m = T.max(axis=1)
  r = m + np.log(np.exp(T - m[:, None]).sum(axis=1)) - logy
  g = np.clip(r, -delta, delta)
  return (g * (r - 0.5 * g)).sum(axis=1)


def _multistart(X, logy, starts, delta, top_starts=None, options=None, polish=None):
  """L-BFGS-B from each start (or from the ``top_starts`` starts with the lowest initial
  objective); ``options`` go to scipy (None = scipy defaults, as Besiroglu et al.); the
  exponents are bounded below by 0. ``polish``: options of one more L-BFGS-B run from the best
  optimum (the point fit's; see fit_chinchilla). Returns (best scipy result, starts run)."""
  _check_finite(X, logy)
  K = X.shape[0]
  bounds = [(None, None)] * (K + 1) + [(0.0, None)] * K
  starts = np.asarray(starts, dtype=float)
  if top_starts is not None and top_starts < len(starts):
    f0 = _huber_lse_batch(starts, X, logy, delta)
    starts = starts[np.argsort(f0, kind="stable")[:top_starts]]
  best = None
  with single_threaded_blas():
    for x0 in starts:
      res = minimize(_huber_lse, x0, args=(X, logy, delta), jac=True, method="L-BFGS-B",
                     options=options, bounds=bounds)
      if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
        best = res
    if best is not None and polish is not None:
      res = minimize(_huber_lse, best.x, args=(X, logy, delta), jac=True, method="L-BFGS-B",
                     options=polish, bounds=bounds)
      if np.isfinite(res.fun) and res.fun <= best.fun:
        best = res
  if best is None:
    raise ValueError(f"no start of the fit grid ({len(starts)} starts) reached a finite "
                     f"objective on {X.shape[1]} points; check the data for extreme values "
                     "or pass a grid of starts nearer the data's scale")
  return best, len(starts)


def _check_finite(X, logy):
  """The fit works on logs: a non-positive or non-finite input or loss makes every
  start's objective non-finite, so say which points are at fault before fitting."""
  n = logy.shape[0]
  if n == 0:
    raise ValueError("scaling fit: no data points; pass at least as many points as "
                     "parameters to fit")
  bad = ~(np.isfinite(logy) & np.isfinite(X).all(axis=0))
  if bad.any():
    raise ValueError(f"scaling fit: {int(bad.sum())} of {n} points (indices "
                     f"{np.flatnonzero(bad)[:10].tolist()}) have a non-positive or "
                     "non-finite loss or input (the fit is in log space); drop or fix "
                     "those points")


# Tolerances that make L-BFGS-B run until the objective stops changing at machine precision.
TIGHT = {"ftol": 1e-15, "gtol": 1e-12}


# ----------------------------------------------------------------------------- 1-D power law
@dataclasses.dataclass(frozen=True)
class PowerLawFit:
  E: float
  A: float
  alpha: float
  loss: float
  n_points: int

  def predict(self, x):
    return self.E + self.A * np.asarray(x, dtype=float) ** (-self.alpha)


def fit_power_law(x, y, delta: float = 1e-3, grid=None, top_starts=None) -> PowerLawFit:
  """Fit y = E + A x^-alpha with the same log-space Huber objective as ``fit_chinchilla``
  (and its refusals: fewer than 4 distinct x, repeated rows, no dependence on x).
  ``grid``: (S, 3) starts over (a = log A, e = log E, alpha); default a small product grid."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  grid = _power_law_grid() if grid is None else grid
  X, logy = np.log(x)[None], np.log(y)
  _check_finite(X, logy)
  scaling_checks.check_points(X, logy, 3, "x")
  res, _ = _multistart(X, logy, grid, delta, top_starts, polish=TIGHT)
  a, e, alpha = res.x
  scaling_checks.check_dependence(logy, _log_residuals(res.x, X, logy), {"alpha": alpha}, "x")
  return PowerLawFit(float(np.exp(e)), float(np.exp(a)), float(alpha), float(res.fun), len(x))


def _power_law_grid() -> np.ndarray:
  """fit_power_law's default starts (a, e, alpha): 150, a product grid like Besiroglu's."""
  return np.array(list(itertools.product(np.arange(0, 30, 5.0), np.arange(-1, 1.5, 0.5),
                                         np.arange(0, 2.5, 0.5))))


def _rss_without(theta, X, logy, k, delta) -> float:
  """Residual sum of squares (log residuals) of the two-input law THETA refitted without input
  k's term, for scaling_checks.check_term: from the full fit's other parameters and the 20
  best starts of fit_power_law's grid, polished as the full fit. An under-fitted reduced law
  would make input k look needed, hence the full fit's own point among the starts."""
  K = X.shape[0]
  keep = [j for j in range(K) if j != k]
  warm = np.concatenate([theta[keep], theta[K:K + 1], theta[K + 1:][keep]])
  starts = np.vstack([warm, _power_law_grid()])  # (a, e, alpha): one input left
  res, _ = _multistart(X[keep], logy, starts, delta, 20, polish=TIGHT)
  return float((_log_residuals(res.x, X[keep], logy) ** 2).sum())


# ----------------------------------------------------------------------------- Chinchilla approach 3
@dataclasses.dataclass(frozen=True)
class ChinchillaFit:
  E: float
  A: float
  B: float
  alpha: float
  beta: float
  loss: float  # summed Huber objective at the optimum
  n_points: int
  n_starts: int = 0
  seconds: float = 0.0

  @property
  def theta(self) -> np.ndarray:
    """(a, b, e, alpha, beta), the optimiser's parametrisation."""
    return np.array([np.log(self.A), np.log(self.B), np.log(self.E), self.alpha, self.beta])

  def predict(self, N, D):
    N, D = np.asarray(N, float), np.asarray(D, float)
    return self.E + self.A * N ** (-self.alpha) + self.B * D ** (-self.beta)


def besiroglu_grid() -> np.ndarray:
  """All 4500 starts (a, b, e, alpha, beta) of Besiroglu et al.'s initialisation grid."""
  ab = np.arange(0, 30, 5.0)
  e = np.arange(-1, 1.5, 0.5)
  ex = np.arange(0, 2.5, 0.5)
  return np.array(list(itertools.product(ab, ab, e, ex, ex)))


def _fit_from_theta(theta, loss, n, n_starts=0, seconds=0.0) -> ChinchillaFit:
  a, b, e, alpha, beta = (float(v) for v in theta)
  return ChinchillaFit(float(np.exp(e)), float(np.exp(a)), float(np.exp(b)), alpha, beta,
                       float(loss), n, n_starts, seconds)


def fit_chinchilla(N, D, L, delta: float = 1e-3, grid=None, top_starts: Optional[int] = None,
                   options: Optional[dict] = None) -> ChinchillaFit:
  """Approach-3 fit as Besiroglu et al. 2024 (see module docstring).

  ``grid``: (S, 5) array of starts (a, b, e, alpha, beta); default ``besiroglu_grid()``.
  ``top_starts=K`` is an approximation: the objective is evaluated on the whole grid (one
  vectorised pass) and L-BFGS-B runs only from the K starts with the lowest initial
  objective. Measured on the 240 Besiroglu points: every K in 2..500 reached the optimum of
  all 4500 starts (same objective to 1e-11; E, alpha, beta to 4 digits; A, B within 0.04%,
  the spread between the full grid's own starts), K = 1 was 0.3% off in A; on all 245
  points K >= 10 matched. K = 100 takes ~0.6 s vs ~20 s (2 cores). This is not guaranteed
  in general: a start with a poor initial objective can still descend into the best basin.
  ``options``: scipy L-BFGS-B options of the starts; None keeps scipy's defaults, as in the
  replication. The objective is ~1e-3 while scipy's ftol acts as an absolute tolerance of
  2.2e-9 below |f| = 1, so a default run stops on a flat valley floor: different starts agree
  on E, alpha, beta to 4 digits but on A, B only to ~0.1%. So the best start is then polished
  with ``TIGHT``, the bootstrap's tolerances: a point fit stopped early can lie outside its own
  bootstrap interval (rising data: E 0.8163 against [0.0, 0.1765]).
  Raises InputError (scaling_checks.py): repeated rows, fewer than 6 distinct (N, D), log D
  a (near-)linear function of log N, or no dependence of the loss on N and D or on either
  alone (the law without that term fits as well: ``_rss_without``).
  """
  t0 = time.perf_counter()
  N, D, L = (np.asarray(v, float) for v in (N, D, L))
  X, logy = np.stack([np.log(N), np.log(D)]), np.log(L)
  _check_finite(X, logy)
  scaling_checks.check_points(X, logy, 5, "N, D")
  res, n_run = _multistart(X, logy, besiroglu_grid() if grid is None else grid,
                           delta, top_starts, options, polish=TIGHT)
  without = {name: _rss_without(res.x, X, logy, k, delta) for k, name in enumerate("ND")}
  scaling_checks.check_dependence(logy, _log_residuals(res.x, X, logy),
                                  {"alpha": res.x[3], "beta": res.x[4]}, "N, D", without)
  return _fit_from_theta(res.x, res.fun, len(L), n_run, time.perf_counter() - t0)


@dataclasses.dataclass(frozen=True)
class BootstrapResult:
  fit: ChinchillaFit  # fit on the full (non-resampled) data
  samples: np.ndarray  # (num_resamples, 5) columns E, A, B, alpha, beta
  seconds: float
  names: tuple = ("E", "A", "B", "alpha", "beta")

  @property
  def se(self) -> dict:
    return dict(zip(self.names, self.samples.std(axis=0, ddof=1)))

  def percentile(self, q) -> dict:
    return dict(zip(self.names, np.percentile(self.samples, q, axis=0).T))

  def outside(self, q=(5, 95), rtol: float = 1e-4) -> list:
    """Parameters whose full-data estimate lies outside its own bootstrap ``q`` interval by
    more than ``rtol`` of its value (the optimiser's precision: noise-free points give refits
    that differ from the full fit only there). A point estimate outside its interval means
    the fit or its resamples did not converge to the same optimum: do not report it bare."""
    out = []
    for k, (lo, hi) in self.percentile(list(q)).items():
      v, slack = getattr(self.fit, k), rtol * abs(getattr(self.fit, k))
      if not lo - slack <= v <= hi + slack:
        out.append(k)
    return out


def bootstrap_chinchilla(N, D, L, num_resamples: int = 4000, seed: int = 0, delta: float = 1e-3,
                         fit: Optional[ChinchillaFit] = None, grid=None,
                         top_starts: Optional[int] = None, resample_top_starts: int = 0,
                         options: Optional[dict] = TIGHT) -> BootstrapResult:
  """Bootstrap standard errors: refit on ``num_resamples`` resamples (with replacement).

  Speed-up (an approximation to refitting each resample from the whole grid): each resample
  is warm-started from the full-data optimum ``fit`` (computed here with ``grid``/
  ``top_starts`` if not given), optionally plus its ``resample_top_starts`` best grid starts.
  The warm start needs tight tolerances (``options=TIGHT``, the default): with scipy's default
  ftol, L-BFGS-B stops ~12 iterations from the warm start, still next to it, and the SEs come
  out 10-40x too small (alpha 0.0005). With TIGHT, 200 resamples gave the same SEs to 3-4
  digits as warm start + the 20 best grid starts per resample, at 1/70 of the cost.
  """
  t0 = time.perf_counter()
  N, D, L = (np.asarray(v, float) for v in (N, D, L))
  X, logy = np.stack([np.log(N), np.log(D)]), np.log(L)
  _check_finite(X, logy)
  scaling_checks.check_points(X, logy, 5, "N, D")  # also with a ``fit`` given
  if fit is None:
    fit = fit_chinchilla(N, D, L, delta=delta, grid=grid, top_starts=top_starts)
  rng = np.random.default_rng(seed)
  warm = fit.theta[None]
  base = besiroglu_grid() if grid is None else np.asarray(grid, float)
  out = np.empty((num_resamples, 5))
  for i in range(num_resamples):
    idx = rng.integers(0, len(L), size=len(L))
    Xi, yi = X[:, idx], logy[idx]
    starts = warm
    if resample_top_starts:
      f0 = _huber_lse_batch(base, Xi, yi, delta)
      starts = np.vstack([warm, base[np.argsort(f0, kind="stable")[:resample_top_starts]]])
    res, _ = _multistart(Xi, yi, starts, delta, options=options)
    a, b, e, alpha, beta = res.x
    out[i] = np.exp(e), np.exp(a), np.exp(b), alpha, beta
  return BootstrapResult(fit, out, time.perf_counter() - t0)


# ----------------------------------------------------------------------------- compute-optimal
def compute_optimal(fit: ChinchillaFit, C):
  """Minimise L(N, D) subject to C = 6 N D. With a = beta/(alpha+beta), b = alpha/(alpha+beta):
  N* = G (C/6)^a, D* = G^-1 (C/6)^b, G = (alpha A / (beta B))^(1/(alpha+beta)).
  Returns (N*, D*, D*/N* tokens per parameter); NaN unless A, B, alpha, beta are all > 0:
  else no interior optimum exists (and G would be a complex power of a negative number)."""
  C = np.asarray(C, dtype=float)
  if not optimum_exists(fit):
    return tuple(np.full(C.shape, np.nan) for _ in range(3))
  s = fit.alpha + fit.beta
  G = (fit.alpha * fit.A / (fit.beta * fit.B)) ** (1.0 / s)
  N_opt = G * (C / 6.0) ** (fit.beta / s)
  D_opt = (C / 6.0) ** (fit.alpha / s) / G
  return N_opt, D_opt, D_opt / N_opt


def optimum_exists(fit: ChinchillaFit) -> bool:
  """Whether compute_optimal has an answer: A, B, alpha, beta all positive and finite."""
  v = np.array([fit.A, fit.B, fit.alpha, fit.beta], dtype=float)
  return bool(np.isfinite(v).all() and (v > 0).all())
