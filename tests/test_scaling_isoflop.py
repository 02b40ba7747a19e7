"""research/analysis/scaling_isoflop.py's numbers pinned on synthetic IsoFLOP lines: each
bucket's minimum loss, and the curvature test's degrees of freedom (a mutation audit moved
both unseen: every other test reads the exponents, not L_opt nor the t test's bound)."""
import numpy as np
import pytest
from scipy import stats

from research.analysis import scaling, scaling_isoflop


def test_each_buckets_minimum_is_its_parabolas_vertex_value_near_the_laws_own():
  fit = scaling.ChinchillaFit(1.7, 400.0, 410.0, 0.34, 0.28, 0.0, 0)
  Ns = [scaling.compute_optimal(fit, c)[0] * np.geomspace(0.3, 3.0, 9)
        for c in np.geomspace(1e19, 1e23, 9)]
  N = np.concatenate(Ns)
  D = np.concatenate([c / (6 * n) for c, n in zip(np.geomspace(1e19, 1e23, 9), Ns)])
  iso = scaling_isoflop.isoflop_fit(N, D, fit.predict(N, D), 10.0 ** np.arange(18.75, 23.5, 0.5),
                                    num_resamples=0)
  assert len(iso.L_opt) >= 5
  for coeffs, n, loss, c in zip(iso.coeffs, iso.N_opt, iso.L_opt, iso.C):
    assert loss == pytest.approx(np.polyval(coeffs, np.log(n)), rel=1e-9)
    n_star = scaling.compute_optimal(fit, c)[0]  # the law's minimum on that IsoFLOP line
    assert loss == pytest.approx(float(fit.predict(n_star, c / (6 * n_star))), rel=0.01)


def test_the_curvature_test_has_n_minus_3_degrees_of_freedom():
  """A 5-point bucket whose curvature's t lies between the 3- and the 2-degree critical
  values is not significant at 5% (a parabola's 3 parameters leave n - 3)."""
  x = np.log(np.geomspace(1e6, 1e8, 5))
  noise = np.array([0.01, -0.012, 0.008, 0.011, -0.009])
  parabola = lambda a: a * (x - x.mean()) ** 2 + 3 + noise
  _, t = scaling_isoflop._curvature_t(x, parabola(0.02))
  crit2, crit3 = stats.t.ppf(0.95, 2), stats.t.ppf(0.95, 3)
  y = parabola(0.02 * (crit2 + crit3) / 2 / t)
  assert crit3 < scaling_isoflop._curvature_t(x, y)[1] < crit2
  N = np.exp(x)
  counted, rejected = scaling_isoflop._select([np.arange(5)], N, y, 6 * N * 1e3, 0.05)
  assert not counted and "curvature not significant" in rejected[0]["reason"]


def test_the_curvature_t_is_c2_over_its_standard_error_on_n_minus_3():
  """t = c2 / sqrt(s^2 [(V'V)^-1]_00) with s^2 = RSS / (n - 3), V = [x^2, x, 1], computed here
  by the normal equations: a mutation audit's RSS / (n - 2) (t too large by sqrt(6/5) at 8
  points) went unseen, the test above taking its t from _curvature_t itself."""
  x = np.log(np.geomspace(1e6, 1e9, 8))
  y = 0.05 * (x - x.mean()) ** 2 + 3 + np.array([0.01, -0.02, 0.015, 0.0, -0.01, 0.02, -0.005, 0.01])
  V = np.stack([x ** 2, x, np.ones_like(x)], axis=1)
  inv = np.linalg.inv(V.T @ V)
  beta = inv @ V.T @ y
  r = y - V @ beta
  t = beta[0] / np.sqrt(r @ r / (8 - 3) * inv[0, 0])
  p, got = scaling_isoflop._curvature_t(x, y)
  assert p == pytest.approx(beta, rel=1e-6) and got == pytest.approx(t, rel=1e-6)
  assert scaling_isoflop._curvature_t(x, 3 - 0.05 * (x - x.mean()) ** 2)[1] == -np.inf


def test_a_buckets_compute_is_the_geometric_mean_of_its_points():
  """The bucket's C: exp(mean(log C)) of its points (5e19 and 2e20 around 1e20 give 1e20; the
  arithmetic mean, 1.25e20, moved unseen in a mutation audit: every fixture's points sat on
  one exact IsoFLOP line, where both means agree)."""
  x = np.log(np.geomspace(1e6, 1e8, 6))
  N, L = np.exp(x), 0.05 * (x - x.mean()) ** 2 + 3
  C = np.array([5e19, 2e20] * 3)
  (row,), rejected = scaling_isoflop._select([np.arange(6)], N, L, C, 0.05)
  assert not rejected and row[0] == pytest.approx(1e20, rel=1e-12) and row[4] == 6


def test_the_per_bucket_level_makes_two_false_passes_as_rare_as_the_family_level():
  """P(Binomial(m, p) >= 2) = 1%: m = 2 buckets need both to pass, p^2 = 0.01, p = 0.1; m = 3,
  3 p^2 (1 - p) + p^3 = 0.01. (P(>= 1) = 1% would give 0.005 for m = 2.)"""
  assert scaling_isoflop.bucket_level(2) == pytest.approx(0.1, rel=1e-9)
  p = scaling_isoflop.bucket_level(3)
  assert 3 * p ** 2 * (1 - p) + p ** 3 == pytest.approx(0.01, rel=1e-9)
  assert scaling_isoflop.bucket_level(1) == 0.01


def _fake_selection(monkeypatch, kept_exponents, lost):
  """isoflop_fit's selection replaced: the data's own pick counts two buckets (exponent 0.5),
  then `lost` resamples keep one bucket and the others two, of the given exponents
  (buckets at log C = 0 and 1, so a resample's exponent is its second bucket's log N)."""
  rows = lambda a: [(1.0, 0.0, 2.0, (1, 0, 0), 5, None), (np.e, a, 2.0, (1, 0, 0), 5, None)]
  answers = iter([rows(0.5)] + [rows(0.5)[:1]] * lost + [rows(a) for a in kept_exponents])
  monkeypatch.setattr(scaling_isoflop, "_select", lambda *args: (next(answers), []))
  N = np.geomspace(1e7, 1e9, 10)
  return scaling_isoflop.isoflop_fit(N, 1e20 / (6 * N), 3 + 0.01 * np.log(N), [1e19, 1e21],
                                     num_resamples=len(kept_exponents) + lost)


def test_the_interval_is_the_5th_and_95th_order_statistics_counting_lost_resamples(monkeypatch):
  """20 resamples: the 5% end is the 2nd lowest (index int(0.05 * 20) = 1) and the 95% end the
  19th (index ceil(19) - 1 = 18) of all 20, a lost resample below the lowest and above the
  highest. One lost: [lowest kept, highest kept]; two lost: unbounded on both sides (a
  mutation audit moved either index by one unseen)."""
  kept = list(np.linspace(0.40, 0.58, 19))
  iso = _fake_selection(monkeypatch, kept, lost=1)
  assert iso.a == pytest.approx(0.5) and iso.resamples_used == 19
  assert iso.a_5_95 == pytest.approx((0.40, 0.58))
  iso = _fake_selection(monkeypatch, kept[1:], lost=2)
  assert iso.a_5_95 == (-np.inf, np.inf)
  iso = _fake_selection(monkeypatch, list(np.linspace(0.40, 0.59, 20)), lost=0)
  assert iso.a_5_95 == pytest.approx((0.41, 0.58))


def test_a_bucket_under_four_points_is_skipped_whatever_min_points():
  """min_points=3: a 3-point bucket is left out (not listed as rejected, not counted in the
  number of buckets that sets the per-bucket level), as the docstring says: at least 4."""
  fit = scaling.ChinchillaFit(1.7, 400.0, 410.0, 0.34, 0.28, 0.0, 0)
  cs, counts = (1e19, 1e20, 1e21), (9, 9, 3)
  Ns = [scaling.compute_optimal(fit, c)[0] * np.geomspace(0.3, 3.0, k) for c, k in zip(cs, counts)]
  N = np.concatenate(Ns)
  D = np.concatenate([c / (6 * n) for c, n in zip(cs, Ns)])
  iso = scaling_isoflop.isoflop_fit(N, D, fit.predict(N, D), [5e18, 5e19, 5e20, 5e21],
                                    min_points=3, num_resamples=0)
  assert len(iso.C) == 2 and iso.rejected == ()


def test_a_bucket_holds_its_lower_edge_and_not_its_upper():
  """Buckets are [lo, hi): with the edges at the smallest compute of each group of 9 points,
  each bucket holds its group's 9 ((lo, hi] moved the second group's smallest point into the
  first bucket and the first group's smallest out of it)."""
  fit = scaling.ChinchillaFit(1.7, 400.0, 410.0, 0.34, 0.28, 0.0, 0)
  Ns = [scaling.compute_optimal(fit, c)[0] * np.geomspace(0.3, 3.0, 9) for c in (1e19, 1e20, 1e21)]
  N = np.concatenate(Ns)
  D = np.concatenate([c / (6 * n) for c, n in zip((1e19, 1e20, 1e21), Ns)])
  C = 6.0 * N * D
  edges = [C[:9].min(), C[9:18].min(), C[18:].min(), C[18:].max() * 2]
  iso = scaling_isoflop.isoflop_fit(N, D, fit.predict(N, D), edges, num_resamples=0)
  assert list(iso.n_points) == [9, 9, 9] and iso.rejected == ()
