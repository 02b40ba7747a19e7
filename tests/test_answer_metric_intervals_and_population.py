"""research/analysis/answer_metrics.py at its edges: the log-likelihood floor, the Wilson
interval's range and empty case, what the bootstrap resamples, and chance levels read off a
population other than the scored rows (the arithmetic task's held-out problems against every
operand pair). tests/test_answer_metrics.py has the hand-built main cases."""
import math

import numpy as np
import pytest

from research.analysis import answer_metrics as am


def test_exact_match_needs_every_token_right():
  """One wrong token of three is a miss (the greedy answer 124 is not 123), however many of
  its tokens match; token accuracy and edit distance give it the partial credit."""
  target = np.array([[1, 2, 3], [1, 2, 3], [1, 2, 3]])
  greedy = np.array([[1, 2, 4], [1, 2, 3], [9, 2, 3]])
  probs = np.eye(10)[target]
  m = am.per_problem(greedy, target, greedy, probs)
  np.testing.assert_array_equal(m["exact_match"], [0, 1, 0])
  np.testing.assert_allclose(m["token_accuracy"], [2 / 3, 1, 2 / 3])
  np.testing.assert_array_equal(m["edit_distance"], [1, 0, 1])


def test_log_likelihood_is_exact_down_to_tiny_probabilities_and_finite_at_zero():
  """p(target) = 1e-12 is scored log(1e-12), not a floor's; p = 0 is floored at 1e-300
  (finite, so the mean over problems stays a number)."""
  target = np.array([[0, 1]])
  probs = np.zeros((1, 2, 2))
  probs[0, 0] = [1e-12, 1 - 1e-12]
  probs[0, 1] = [1.0, 0.0]
  ll = am.per_problem(target, target, target, probs)["log_likelihood"][0]
  assert ll == pytest.approx(math.log(1e-12) + math.log(1e-300))
  assert np.isfinite(ll)


def test_wilson_interval_of_no_trials_is_undefined():
  lo, hi = am.wilson_interval(0, 0)
  assert math.isnan(lo) and math.isnan(hi)


def test_wilson_interval_stays_within_zero_and_one():
  """At 0 or n hits the unclipped bounds stray past 0 or 1 by rounding (n = 16, 21, ...)."""
  for n in range(1, 120):
    for hits in (0, n):
      lo, hi = am.wilson_interval(hits, n)
      assert 0.0 <= lo <= hi <= 1.0, (hits, n, lo, hi)
  assert am.wilson_interval(16, 16)[1] == 1.0 and am.wilson_interval(0, 21)[0] == 0.0


def test_no_hits_have_a_lower_bound_of_exactly_zero():
  """0 of 100 gave (0, 3.5e-18, 0.037): a lower bound above the mean, which `lo > chance`
  reads as above a chance of exactly 0 (a trial's few-shot rows). Control: 1 hit is above 0."""
  for n in range(1, 400):
    assert am.wilson_interval(0, n)[0] == 0.0, n
    assert am.wilson_interval(n, n)[1] == 1.0, n
  assert am.wilson_interval(1, 100)[0] > 0.0


def test_wilson_interval_matches_its_formula_off_the_ends():
  """3 hits of 10, z = 1.96: centre (0.3 + z^2/20) / (1 + z^2/10), half-width
  z sqrt(0.021 + z^2/400) / (1 + z^2/10)."""
  z = am.Z95
  d = 1 + z * z / 10
  c, h = (0.3 + z * z / 20) / d, z * math.sqrt(0.3 * 0.7 / 10 + z * z / 400) / d
  assert am.wilson_interval(3, 10) == pytest.approx((c - h, c + h), rel=1e-12)
  assert am.wilson_interval(3, 10) == pytest.approx((0.1078, 0.6032), abs=1e-4)


def test_bootstrap_draws_every_problem():
  """One problem of four scores 1: some resample must include it, so the upper bound of the
  mean is above 0 (a draw over all but the last problem gives [0, 0])."""
  lo, hi = am.bootstrap_interval(np.array([0.0, 0.0, 0.0, 1.0]), 2000, seed=0)
  assert lo == 0.0 and 0.25 <= hi <= 0.75


def test_bootstrap_takes_exactly_the_resamples_asked_for():
  """One resample has one mean: both percentiles are it (a chunk's worth of resamples would
  spread them)."""
  lo, hi = am.bootstrap_interval(np.arange(10.0), 1, seed=0)
  assert lo == hi


def test_bootstrap_interval_is_central_at_its_level():
  """10,000 normal values: the 95% interval of the mean is +/- 1.96 / 100, the 90% one
  +/- 1.645 / 100; the tails are split evenly about the mean."""
  x = np.random.default_rng(1).normal(size=10_000)
  for level, z in ((0.95, 1.96), (0.90, 1.645)):
    lo, hi = am.bootstrap_interval(x, 4000, seed=0, level=level)
    assert hi - lo == pytest.approx(2 * z / 100, rel=0.06)
    assert (lo + hi) / 2 == pytest.approx(x.mean(), abs=0.002)


def test_summarise_uses_its_seed_and_wilson_on_the_hit_count():
  x = np.random.default_rng(2).normal(size=50)
  hits = (x > 0).astype(float)
  s0 = am.summarise({"brier": x, "exact_match": hits}, resamples=200, seed=0)
  s7 = am.summarise({"brier": x, "exact_match": hits}, resamples=200, seed=7)
  assert (s7["brier"]["lo"], s7["brier"]["hi"]) == am.bootstrap_interval(x, 200, 7)
  assert (s0["brier"]["lo"], s0["brier"]["hi"]) != (s7["brier"]["lo"], s7["brier"]["hi"])
  assert (s0["exact_match"]["lo"], s0["exact_match"]["hi"]) == am.wilson_interval(hits.sum(), 50)
  assert s0["brier"]["mean"] == pytest.approx(x.mean())
  assert s0["brier"]["interval"].startswith("bootstrap")


def test_only_exact_match_gets_the_wilson_interval():
  v = np.array([1.0, 0.0, 1.0, 1.0])
  s = am.summarise({m: v for m in am.METRICS}, resamples=100, seed=0)
  assert [s[m]["interval"].split()[0] for m in am.METRICS] == ["Wilson"] + ["bootstrap"] * 4


# ------------------------------------------------------------------ chance over a population
# Population (every answer the task can give, by frequency): 10, 10, 10, 02. Scored rows (the
# held-out problems): 02, 02, 10. A predictor that knows the population only:
#   exact match: always "10", the population's mode: right on 1 of 3 rows;
#   token accuracy: digit 0 -> 1 (3 of 4): right on 1 of 3; digit 1 given 1 -> 0, given 0 -> 2:
#     right on all 3: (1/3 + 1) / 2;
#   edit distance: "10" (0.5 on the population): 2, 2, 0 on the rows: 4/3.
POP = np.array([[1, 0], [1, 0], [1, 0], [0, 2]])
ROWS = np.array([[0, 2], [0, 2], [1, 0]])


def test_chance_over_a_population_is_its_predictor_scored_on_the_rows():
  ch = am.chance_levels(ROWS, 3, population=POP)
  assert ch["exact_match"] == pytest.approx(1 / 3)
  assert ch["token_accuracy"] == pytest.approx((1 / 3 + 1) / 2)
  assert ch["edit_distance"] == pytest.approx(4 / 3)
  # log p: p(02) = 1/4 * 1, p(10) = 3/4 * 1
  assert ch["log_likelihood"] == pytest.approx((2 * math.log(0.25) + math.log(0.75)) / 3)
  # Brier: digit 0 predicted (1/4, 3/4, 0); digit 1 is certain given its prefix (0 each)
  b0 = [(1 - 0.25) ** 2 + 0.75 ** 2, (1 - 0.25) ** 2 + 0.75 ** 2, 0.25 ** 2 + 0.25 ** 2]
  assert ch["brier"] == pytest.approx(np.mean(b0) / 2)


def test_chance_of_the_rows_alone_differs_from_the_populations():
  """The same rows scored by their own statistics: mode 02 (2 of 3), digit 0 -> 0."""
  ch = am.chance_levels(ROWS, 3)
  assert ch["exact_match"] == pytest.approx(2 / 3)
  assert ch["token_accuracy"] == pytest.approx((2 / 3 + 1) / 2)
  assert ch["edit_distance"] == pytest.approx(2 / 3)


def test_a_population_without_a_scored_rows_prefix_is_refused():
  """The counted predictor has no p(d | prefix) for a prefix the population never shows: an
  error, not a probability of 0/0."""
  with pytest.raises(ValueError, match="lacks an answer prefix"):
    am.chance_levels(np.array([[2, 0]]), 3, population=POP)


def test_crossfit_folds_are_a_random_partition_not_the_row_order():
  """Answers in a periodic order (row i has digit i % 5, as an enumeration would give):
  folds by row index would hold out every copy of one digit at a time and score it near
  p = 0; random folds score each digit at about its frequency 1/5."""
  answers = (np.arange(500) % 5)[:, None]
  fitted = am._teacher_forced_crossfit(answers, 5)
  assert fitted["log_likelihood"] == pytest.approx(math.log(0.2), abs=0.05)
  assert fitted["brier"] == pytest.approx(0.8, abs=0.02)
