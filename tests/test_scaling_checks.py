"""research/analysis/scaling_checks.py through the fits that call it: null data (too few
points, repeated rows, constant, noisy or rising losses) get an InputError naming the reason
instead of an exponent with a standard error; the known law 1.7 + 300 N^-0.5 + 2000 D^-0.4 on the
same grid is the control each refusal must leave alone. The Besiroglu fit: tests/test_scaling.py."""
import numpy as np
import pytest

from research.analysis import scaling
from research.errors import InputError

# The probe's grid: 6 sizes x 4 budgets, and its known law (the control every refusal below
# must leave alone).
GRID_N, GRID_D = (a.ravel() for a in np.meshgrid(
    [5.5e3, 1.1e4, 2.2e4, 4.4e4, 8.9e4, 1.78e5], [5e5, 1e6, 2e6, 4.1e6], indexing="ij"))
KNOWN = dict(E=1.7, A=300.0, B=2000.0, alpha=0.5, beta=0.4)


def _known_law(N=GRID_N, D=GRID_D):
  return KNOWN["E"] + KNOWN["A"] * N ** -KNOWN["alpha"] + KNOWN["B"] * D ** -KNOWN["beta"]


def test_known_law_is_recovered_on_the_probe_grid():
  fit = scaling.fit_chinchilla(GRID_N, GRID_D, _known_law(), top_starts=20)
  for k, v in KNOWN.items():
    assert getattr(fit, k) == pytest.approx(v, rel=1e-3), k


@pytest.mark.parametrize("budgets", [1, 2])
def test_fewer_than_three_levels_of_an_input_are_refused(budgets):
  """8 sizes at one or two token budgets passed the distinct-points check and gave E 2.668,
  beta 0.945 (true 1.7, 0.4) with SEs of 1e-4 (the D term merges into E); three budgets fit."""
  N = np.geomspace(5.5e3, 1.78e5, 8)
  for k in (budgets, 3):
    NN, DD = (a.ravel() for a in np.meshgrid(N, 1e6 * 2.0 ** np.arange(k), indexing="ij"))
    L = _known_law(NN, DD)
    if k == budgets:
      with pytest.raises(InputError, match=rf"not identified \({k} distinct values? of D"):
        scaling.fit_chinchilla(NN, DD, L, top_starts=20)
    else:  # control: three levels of D identify the law
      assert scaling.fit_chinchilla(NN, DD, L, top_starts=20).beta == pytest.approx(0.4, rel=1e-2)


@pytest.mark.parametrize("n", [1, 2, 4, 5])
def test_fewer_points_than_parameters_plus_one_are_refused(n):
  # Before: 1 point fitted with objective 4.7e-28, 2 points gave alpha SE 1.5e-07, 4 points
  # alpha 1.396 SE 0.0144 while other starts reach the same objective with alpha 0.27-2.59.
  idx = np.arange(n) * 4  # one budget per size: n distinct (N, D)
  with pytest.raises(InputError, match=rf"not identified \({n} distinct \(N, D\) points for 5"):
    scaling.fit_chinchilla(GRID_N[idx], GRID_D[idx], _known_law()[idx], top_starts=20)
  # Replicates at the same (N, D) do not identify the law either.
  with pytest.raises(InputError, match="not identified"):
    scaling.fit_chinchilla(np.repeat(GRID_N[idx], 3), np.repeat(GRID_D[idx], 3),
                           np.repeat(_known_law()[idx], 3) * np.tile([1, 1.01, 0.99], n),
                           top_starts=20)


def test_six_points_of_the_known_law_are_a_fit():
  idx = np.array([0, 5, 10, 15, 16, 23])
  fit = scaling.fit_chinchilla(GRID_N[idx], GRID_D[idx], _known_law()[idx], top_starts=50)
  assert fit.n_points == 6 and fit.alpha == pytest.approx(0.5, rel=1e-2)


def test_power_law_needs_more_points_than_parameters():
  # Three parameters fit any three falling points exactly: a step 3.0, 2.0, 1.999 was a fit.
  with pytest.raises(InputError, match=r"not identified \(3 distinct \(x\) points for 3"):
    scaling.fit_power_law([1e9, 1e10, 1e11], [3.0, 2.0, 1.999])
  x = np.geomspace(1e9, 1e12, 4)
  assert scaling.fit_power_law(x, 2 + 300 * x ** -0.3).alpha == pytest.approx(0.3, rel=1e-3)


def test_constant_loss_has_no_exponent():
  # Before: alpha = beta = 2 (the start grid's value, zero gradient there), SE ~1e-14.
  with pytest.raises(InputError, match="same at every point"):
    scaling.fit_chinchilla(GRID_N, GRID_D, np.full(24, 2.5), top_starts=20)
  with pytest.raises(InputError, match="same at every point"):
    scaling.fit_power_law(np.geomspace(1e9, 1e12, 8), np.full(8, 2.5))  # was alpha 2.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noise_around_a_constant_has_no_exponent(seed):
  L = 2.5 + 0.05 * np.random.default_rng(seed).standard_normal(24)
  with pytest.raises(InputError, match="no dependence on"):
    scaling.fit_chinchilla(GRID_N, GRID_D, L, top_starts=20)
  x = np.geomspace(1e9, 1e12, 8)
  with pytest.raises(InputError, match="no dependence on x"):
    scaling.fit_power_law(x, 2.5 + 0.05 * np.random.default_rng(seed).standard_normal(8))


def test_rising_loss_has_no_exponent():
  # Before: alpha -0.064 (SE 0.0008), beta -0.036, and compute_optimal's N* negative or nan.
  with pytest.raises(InputError, match=r"no dependence on N.*at the bound 0"):
    scaling.fit_chinchilla(GRID_N, GRID_D, 2.0 + 0.1 * np.log(GRID_N) + 0.05 * np.log(GRID_D),
                           top_starts=20)
  x = np.geomspace(1e9, 1e12, 8)
  with pytest.raises(InputError, match="no dependence on x"):
    scaling.fit_power_law(x, 2 + 0.1 * np.log(x))  # was alpha -0.025


@pytest.mark.parametrize("noise", [0.0, 0.002, 0.01])
def test_a_loss_that_ignores_one_input_has_no_law_in_it(noise):
  """Before: L = 1.7 + 40 N^-0.34, no D term, got beta = 1.500 (a start value) with SE 2e-15
  noise-free, beta 0.001 / 0.996 / 0.574 at noise 0.002, and a compute-optimal allocation;
  the dropped-term F-test refuses it. Control: the known law with both terms on this grid."""
  rng = np.random.default_rng(3)
  for trial in range(3):
    L = 1.7 + 40 * GRID_N ** -0.34 + noise * rng.standard_normal(24)
    with pytest.raises(InputError, match=r"(does not depend on|no dependence on) D\b"):
      scaling.fit_chinchilla(GRID_N, GRID_D, L, top_starts=50)
  # The same with the roles swapped: a loss of D alone has no exponent of N.
  L = 1.7 + 2000 * GRID_D ** -0.4 + noise * rng.standard_normal(24)
  with pytest.raises(InputError, match=r"(does not depend on|no dependence on) N\b"):
    scaling.fit_chinchilla(GRID_N, GRID_D, L, top_starts=50)
  fit = scaling.fit_chinchilla(GRID_N, GRID_D, _known_law() + noise * rng.standard_normal(24),
                               top_starts=50)
  assert fit.beta == pytest.approx(0.4, abs=0.1) and fit.alpha == pytest.approx(0.5, abs=0.05)


def test_inputs_that_vary_together_are_refused():
  """Before: D = 20 N at 12 sizes (a compute-optimal design) gave alpha 0.510 [0.455, 0.529],
  beta 0.308 (true 0.34, 0.28) noise-free: which power law in N is N's and which D's is not
  identified. Control: three D per N (D/N = 10, 20, 40) identifies the same law."""
  N = np.geomspace(1e5, 1e8, 12)
  law = lambda N, D: 1.7 + 400 * N ** -0.34 + 400 * D ** -0.28
  for fit in (scaling.fit_chinchilla, lambda N, D, L: scaling.bootstrap_chinchilla(
      N, D, L, num_resamples=2, fit=scaling.ChinchillaFit(1.7, 400, 400, 0.34, 0.28, 0, 12))):
    with pytest.raises(InputError, match=r"N and D vary together \(log D is a linear function "
                                         r"of log N.*several D per N"):
      fit(N, 20 * N, law(N, 20 * N))
  NN, DD = (a.ravel() for a in np.meshgrid(N[::2], [10, 20, 40], indexing="ij"))
  DD = DD * NN
  fit = scaling.fit_chinchilla(NN, DD, law(NN, DD), top_starts=50)
  assert (fit.alpha, fit.beta) == (pytest.approx(0.34, rel=1e-3), pytest.approx(0.28, rel=1e-3))


def test_compute_optimal_without_an_optimum_is_nan_not_complex():
  for alpha, beta in ((0.0, 0.4), (-0.1, 0.4), (0.5, -0.3)):
    fit = scaling.ChinchillaFit(1.7, 300.0, 2000.0, alpha, beta, 0.0, 0)
    assert not scaling.optimum_exists(fit)
    out = np.array(scaling.compute_optimal(fit, [1e21, 1e22]))
    assert out.dtype == float and np.isnan(out).all()


def test_bootstrap_flags_an_estimate_outside_its_interval():
  fit = scaling.ChinchillaFit(0.8163, 300.0, 2000.0, 0.5, 0.4, 0.0, 24)
  samples = np.tile([0.1, 300.0, 2000.0, 0.5, 0.4], (50, 1))
  samples[:, 0] = np.linspace(0.0, 0.1765, 50)
  assert scaling.BootstrapResult(fit, samples, 0.0).outside() == ["E"]
  known = scaling.fit_chinchilla(GRID_N, GRID_D, _known_law(), top_starts=20)
  boot = scaling.bootstrap_chinchilla(GRID_N, GRID_D, _known_law(), num_resamples=20, fit=known)
  assert boot.outside() == []


def test_duplicated_rows_are_refused():
  # Before: tiling 24 points 3x shrank the alpha SE from 0.040 to 0.022.
  N, D, L = (np.tile(v, 3) for v in (GRID_N, GRID_D, _known_law()))
  with pytest.raises(InputError, match="48 of 72 rows repeat an earlier"):
    scaling.fit_chinchilla(N, D, L, top_starts=20)
  fit = scaling.fit_chinchilla(GRID_N, GRID_D, _known_law(), top_starts=20)
  with pytest.raises(InputError, match="repeat an earlier"):
    scaling.bootstrap_chinchilla(N, D, L, num_resamples=2, fit=fit)
  with pytest.raises(InputError, match="repeat an earlier"):
    scaling.fit_power_law([1e9, 1e10, 1e10, 1e11, 1e12], [3.0, 2.5, 2.5, 2.2, 2.1])


def _line_rejections(curve, n, sigma=0.01, reps=40):
  """How many of REPS noisy draws of CURVE on n log-spaced points reject the line. The law's
  start is fit_power_law's on the noiseless curve (one multistart fit, not one per draw: the
  test's cost); against_line refits it to each draw by least squares."""
  from research.analysis import scaling_checks
  rng, c, out = np.random.default_rng(0), np.logspace(9, 14, n), 0
  start = vars(scaling.fit_power_law(c, curve(c)))
  for _ in range(reps):
    y = curve(c) * np.exp(sigma * rng.standard_normal(n))
    out += scaling_checks.against_line(c, y, start)["line_rejected"]
  return out


def test_line_test_gains_power_with_points_and_rejects_no_line():
  # Before: a 2x rms rule passed E=1.7, alpha=0.05 at 1% noise 0-1 times in 10, worse with
  # more points. Measured with this function (40 draws each): 11/40 at 6 points, 36/40 at
  # 20; a line with the same noise 1/40 at 6, 0/40 at 20 (the same counts as a multistart
  # fit per draw gave, at 16x the cost).
  law = lambda c: 1.7 + 30 * c ** -0.05
  line = lambda c: 3.0 - 0.05 * np.log(c)
  at6, at20 = _line_rejections(law, 6), _line_rejections(law, 20)
  assert at20 >= 32 and at20 > at6 + 15
  assert _line_rejections(line, 20) <= 3 and _line_rejections(line, 6) <= 3


def test_line_test_never_passes_an_exact_line_and_refuses_bad_input():
  from research.analysis import scaling_checks
  # Before: an exact line gave RSS 0 for both models (the law's clamped to the line's), so
  # F = inf and "line rejected"; 3 of 116 exact lines passed the frontier claim.
  for base in (2.0, 10.0, np.e):
    x = base ** np.arange(20.0, 28.0)
    y = 5 - 0.03 * np.log(x)
    out = scaling_checks.against_line(x, y, vars(scaling.fit_power_law(x, y)))
    assert not out["line_rejected"] and out["rms_law"] > out["rms_line"]
  # Unsorted x: the line's start is the chord between the extreme x, not the first and last.
  x = 10.0 ** np.array([12, 9, 14, 10, 13, 11.0])
  y = 3.0 - 0.05 * np.log(x)
  assert not scaling_checks.against_line(x, y, {"E": 1.0, "A": 5.0, "alpha": 0.1})["line_rejected"]
  good = {"E": 1.0, "A": 5.0, "alpha": 0.1}
  for xs, ys, fit in (([1, 2, 3, 4], [3, 2, 1, 0], good), ([1, 1, 2, 2], [3, 2, 1, 0.5], good),
                      ([1, 2, 3, 4], [3, 2, 1, 0.5], {**good, "alpha": float("nan")})):
    with pytest.raises(InputError, match="power law against a line"):
      scaling_checks.against_line(xs, ys, fit)


def _collinear_X(share):
  """log N at 8 sizes and log D = log N + eps, eps orthogonal to log N and scaled so that
  1 - r^2 (the share of log D's variance independent of log N) is exactly `share`."""
  logn = np.log(np.geomspace(1e5, 1e8, 8))
  zn = logn - logn.mean()
  eps = np.tile([1.0, -1.0], 4)
  eps -= eps @ zn / (zn @ zn) * zn
  eps *= np.sqrt(share / (1 - share) * (zn @ zn) / (eps @ eps))
  return np.stack([logn, logn + np.log(20) + eps])


@pytest.mark.parametrize("share, refused", [(5e-4, True), (2e-3, False)])
def test_collinear_inputs_are_refused_below_a_thousandth(share, refused):
  """COLLINEAR = 1e-3: at s = 1.03 (1 - r^2 = 1e-4) the exponents were already wrong
  noise-free, so a share of 5e-4 is refused; 2e-3 (s = 1.1 recovered both) is not."""
  from research.analysis import scaling_checks
  X = _collinear_X(share)
  logy = np.log(1.7 + 400 * np.exp(X[0]) ** -0.34 + 400 * np.exp(X[1]) ** -0.28)
  if refused:
    with pytest.raises(InputError, match=r"only 0.0005 of its variance .* under 0.001"):
      scaling_checks.check_points(X, logy, 5, "N, D")
  else:
    scaling_checks.check_points(X, logy, 5, "N, D")


def _residuals(n, rss):
  """n residuals with sum of squares rss, and log losses with rss0 = 1 about their mean."""
  r = np.tile([1.0, -1.0], n // 2)
  y = np.linspace(-1, 1, n)
  return (y - y.mean()) / np.sqrt(((y - y.mean()) ** 2).sum()), r * np.sqrt(rss / n)


@pytest.mark.parametrize("margin, refused", [(0.98, True), (1.02, False)])
def test_dependence_f_test_at_its_one_percent_line(margin, refused):
  """check_dependence's F-test of the 5-parameter law (2 per term + E) against a constant:
  F = ((rss0 - rss1) / 4) / (rss1 / (n - 5)) on (4, n - 5) df, refused unless p < 1%. At 2%
  below the critical F it is refused and says its p; 2% above it is a fit. (A 4-parameter
  count, df1 = p, or a 5% level each move the line.)"""
  from scipy import stats
  from research.analysis import scaling_checks
  n, exps = 24, {"alpha": 0.3, "beta": 0.3}
  fc = margin * stats.f.isf(0.01, 4, n - 5)
  rss1 = 1.0 / (1 + 4 * fc / (n - 5))  # F = (1 - rss1) / 4 / (rss1 / (n - 5)) = fc
  logy, resid = _residuals(n, rss1)
  if refused:
    p = stats.f.sf(fc, 4, n - 5)
    assert 0.01 < p < 0.012
    with pytest.raises(InputError, match=rf"F-test p = {p:.2g} >= 0.01, 24 points"):
      scaling_checks.check_dependence(logy, resid, exps, "N, D")
  else:
    scaling_checks.check_dependence(logy, resid, exps, "N, D")


@pytest.mark.parametrize("margin, refused", [(0.98, True), (1.02, False)])
def test_dropped_term_f_test_at_its_one_percent_line(margin, refused):
  """check_term: the law without one term (2 parameters fewer) against the full law,
  F = (gain / 2) / (rss1 / (n - p)) on (2, n - p) df; refused unless p < 1%."""
  from scipy import stats
  from research.analysis import scaling_checks
  n, p, rss1 = 24, 5, 0.05
  fc = margin * stats.f.isf(0.01, 2, n - p)
  rss_without = rss1 + 2 * fc * rss1 / (n - p)
  call = lambda: scaling_checks.check_term("D", "N, D", rss_without, 1.0, rss1, n, p)
  if refused:
    with pytest.raises(InputError, match=rf"p = {stats.f.sf(fc, 2, n - p):.2g} >= 0.01"):
      call()
  else:
    call()


def test_line_test_statistic_degrees_of_freedom_and_level():
  """against_line's F = (RSS_line - RSS_law) / (RSS_law / (n - 3)) on (1, n - 3) df, the line
  rejected at p < 1% only: recomputed from the rms it returns, on draws whose p falls on
  either side of 1% and one between 1% and 5% (not rejected)."""
  from scipy import stats
  from research.analysis import scaling_checks
  n, c = 8, np.logspace(9, 14, 8)
  curve = lambda c: 1.7 + 30 * c ** -0.05
  start = vars(scaling.fit_power_law(c, curve(c)))
  rng, seen = np.random.default_rng(0), set()
  for _ in range(40):
    y = curve(c) * np.exp(0.01 * rng.standard_normal(n))
    out = scaling_checks.against_line(c, y, start)
    rss_line, rss_law = n * out["rms_line"] ** 2, n * out["rms_law"] ** 2
    f = max(rss_line - rss_law, 0) / (rss_law / (n - 3))
    assert out["f"] == pytest.approx(f, rel=1e-6, abs=1e-9)
    assert out["p"] == pytest.approx(stats.f.sf(f, 1, n - 3), rel=1e-6, abs=1e-12)
    assert out["line_rejected"] == (out["p"] < 0.01)
    seen.add("low" if out["p"] < 0.01 else "mid" if out["p"] < 0.05 else "high")
  assert seen == {"low", "mid", "high"}, seen


def test_a_term_gaining_only_rounding_explains_nothing():
  """Noise-free data without a term's dependence: both fits reach the data to rounding (rss
  1e-20, a gain of 4e-20 against rss0 = 0.67 measured). That gain is none (F = 0, refused),
  not an F of 38 and p ~1e-7; a gain of 1e-6 at that rss is a real one."""
  from research.analysis import scaling_checks
  with pytest.raises(InputError, match=r"does not depend on D: .*p = 1 >= 0.01"):
    scaling_checks.check_term("D", "N, D", 5e-20, 0.67, 1e-20, 24, 5)
  scaling_checks.check_term("D", "N, D", 1e-6, 0.67, 1e-20, 24, 5)


def test_the_collinear_and_bound_lines_are_strict(monkeypatch):
  """Refused below COLLINEAR (a share exactly at it is accepted, one a billionth under it is
  not) and at an exponent up to AT_BOUND (one exactly at 1e-6 is refused, 2e-6 is a fit):
  a mutation audit moved either comparison (< to <=, <= to <) unseen."""
  from research.analysis import scaling_checks
  X = _collinear_X(2e-3)
  logy = np.log(1.7 + 400 * np.exp(X[0]) ** -0.34 + 400 * np.exp(X[1]) ** -0.28)
  line = scaling_checks.COLLINEAR
  monkeypatch.setattr(scaling_checks, "_independent_share", lambda X: [1.0, line])
  scaling_checks.check_points(X, logy, 5, "N, D")
  monkeypatch.setattr(scaling_checks, "_independent_share", lambda X: [1.0, line * (1 - 1e-9)])
  with pytest.raises(InputError, match="N and D vary together"):
    scaling_checks.check_points(X, logy, 5, "N, D")
  logy, resid = _residuals(24, 0.01)  # F far above the 1% line: only the bound decides
  with pytest.raises(InputError, match=r"no dependence on N: the best fit puts alpha at the bound"):
    scaling_checks.check_dependence(logy, resid, {"alpha": 1e-6, "beta": 0.3}, "N, D")
  scaling_checks.check_dependence(logy, resid, {"alpha": 2e-6, "beta": 0.3}, "N, D")


def test_line_test_needs_four_distinct_x():
  """Three distinct x (four points, one x repeated) are refused, as the law has 3 parameters;
  a mutation audit's 3-point floor went unseen (the test refused only 2); four is a test."""
  from research.analysis import scaling_checks
  fit = {"E": 1.7, "A": 30.0, "alpha": 0.3}
  x = np.array([1e9, 1e10, 1e11, 1e11])
  y = np.array([1.7 + 30 * v ** -0.3 for v in x]) * np.array([1.0, 1.01, 0.99, 1.0])
  with pytest.raises(InputError, match="3 distinct x; the F-test needs at least 4"):
    scaling_checks.against_line(x, y, fit)
  x[-1] = 1e12
  assert set(scaling_checks.against_line(x, y, fit)) >= {"f", "p", "line_rejected"}
