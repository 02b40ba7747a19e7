"""research/analysis/scaling.py's numbers on hand-made inputs, each derived from its
definition: the bootstrap's standard errors and interval check, the compute-optimal
allocation, the fit's refit without one input (a mutation audit's survivors)."""
import numpy as np

from research.analysis import scaling


def test_bootstrap_standard_errors_are_the_sample_std():
  """se: the resamples' sample standard deviation (ddof 1): 1, 2, 3 -> 1.0 (the population
  std, 0.816, understated every SE by sqrt((n - 1) / n))."""
  fit = scaling.ChinchillaFit(1.0, 1.0, 1.0, 0.5, 0.5, 0.0, 3)
  samples = np.array([[1.0, 10.0, 0.0, 0.3, 0.2],
                      [2.0, 20.0, 0.0, 0.3, 0.4],
                      [3.0, 30.0, 0.0, 0.3, 0.6]])
  se = scaling.BootstrapResult(fit, samples, 0.0).se
  assert se["E"] == 1.0 and se["A"] == 10.0 and se["B"] == 0.0 and se["alpha"] == 0.0
  assert abs(se["beta"] - 0.2) < 1e-12


def test_an_estimate_within_rtol_of_its_interval_counts_as_inside_on_both_sides():
  """outside(): every resample at 1.0 gives the interval [1.0, 1.0]; an estimate 0.5e-4 below
  or above it is inside (rtol 1e-4 of the value), 2e-4 away outside (a mutation audit dropped
  the slack below the interval, unseen: the test's estimate was far above its interval)."""
  samples = np.tile([1.0, 300.0, 2000.0, 0.5, 0.4], (20, 1))

  def outside(E):
    return scaling.BootstrapResult(scaling.ChinchillaFit(E, 300.0, 2000.0, 0.5, 0.4, 0.0, 20),
                                   samples, 0.0).outside()
  assert outside(1.0) == [] and outside(1.0 - 0.5e-4) == [] and outside(1.0 + 0.5e-4) == []
  assert outside(1.0 - 2e-4) == ["E"] and outside(1.0 + 2e-4) == ["E"]


def test_the_bootstrap_draws_every_point(monkeypatch):
  """Resampling with replacement draws from all n points: 40 resamples of 12 points leave a
  given point out with probability (11/12)^480 ~ 1e-18. A mutation audit's draw from the first
  n - 1 (the last point never resampled, its weight moved to the others) went unseen. The
  refit is replaced by the full fit's parameters: only the resamples are checked."""
  N = np.repeat([1e7, 3e7, 1e8, 3e8], 3)
  D = np.tile([1e9, 3e9, 1e10], 4)
  fit = scaling.ChinchillaFit(1.7, 400.0, 400.0, 0.34, 0.28, 0.0, 12)
  drawn = []

  class Res:
    x = fit.theta

  def refit(Xi, yi, starts, delta, options=None):
    drawn.extend(map(tuple, Xi.T))
    return Res(), 1
  monkeypatch.setattr(scaling, "_multistart", refit)
  boot = scaling.bootstrap_chinchilla(N, D, fit.predict(N, D), num_resamples=40, fit=fit)
  assert len(drawn) == 40 * 12 and boot.samples.shape == (40, 5)
  assert set(drawn) == set(map(tuple, np.log(np.stack([N, D])).T))


def test_the_exponents_are_bounded_below_by_zero():
  """Rising losses (2 + 0.1 ln x): the best law with alpha >= 0 stops at the bound 0, where
  check_dependence refuses it; without the bound the optimiser fits a rising power law
  (alpha < 0) that every later check would have to catch."""
  x = np.geomspace(1e3, 1e6, 8)
  res, _ = scaling._multistart(np.log(x)[None], np.log(2 + 0.1 * np.log(x)),
                               scaling._power_law_grid(), 1e-3, polish=scaling.TIGHT)
  assert 0.0 <= res.x[2] <= 1e-6
