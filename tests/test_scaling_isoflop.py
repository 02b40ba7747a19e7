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
