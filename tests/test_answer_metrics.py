"""Answer metrics of the arithmetic probes (research/analysis/answer_metrics.py) on hand-built
predictions: token edit distance, per-problem scores, Brier, chance levels, intervals."""
import math

import numpy as np
import pytest

from research.analysis import answer_metrics as am


def test_edit_distance_by_hand_and_against_naive():
  t = np.array([[1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3]])
  p = np.array([[1, 2, 3], [1, 2, 4], [2, 3, 0], [3, 2, 1]])
  # exact; one substitution; shifted (delete 1, append 0: 2 < Hamming 3); two substitutions
  np.testing.assert_array_equal(am.edit_distance(p, t), [0, 1, 2, 2])

  def naive(a, b):
    d = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
      prev, d[0] = d[0], i
      for j, y in enumerate(b, 1):
        prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
    return d[-1]

  rng = np.random.default_rng(0)
  a, b = rng.integers(0, 3, (200, 5)), rng.integers(0, 3, (200, 5))
  np.testing.assert_array_equal(am.edit_distance(a, b), [naive(x, y) for x, y in zip(a, b)])


def test_metrics_separate_exact_match_from_continuous_metrics():
  """Two 3-token problems; answers 1 2 3. Problem 0: greedy right. Problem 1: the
  model errs on the first token, so greedy output and teacher-forced argmax differ."""
  target = np.array([[1, 2, 3], [1, 2, 3]])
  greedy = np.array([[1, 2, 3], [0, 1, 2]])       # problem 1 drifts after its first error
  teacher = np.array([[1, 2, 3], [0, 2, 3]])      # given the true prefix, tokens 2-3 are right
  v = 4
  probs = np.full((2, 3, v), 0.1)
  probs[0, np.arange(3), target[0]] = 0.7         # p(target) 0.7 everywhere in problem 0
  probs[1, :, :] = [[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1], [0.1, 0.1, 0.1, 0.7]]
  m = am.per_problem(greedy, target, teacher, probs)
  np.testing.assert_allclose(m["exact_match"], [1, 0])
  np.testing.assert_allclose(m["token_accuracy"], [1, 2 / 3])
  np.testing.assert_allclose(m["edit_distance"], [0, 2])          # delete 0, insert 3
  np.testing.assert_allclose(m["log_likelihood"], [3 * math.log(0.7),
                                                   math.log(0.1) + 2 * math.log(0.7)])
  right, wrong = 0.3 ** 2 + 3 * 0.01, 0.9 ** 2 + 0.7 ** 2 + 2 * 0.01
  np.testing.assert_allclose(m["brier"], [right, (wrong + 2 * right) / 3])


def test_brier_and_chance_levels():
  v = 10
  uniform = np.full((1, 2, v), 1 / v)
  onehot = np.eye(v)[[[3, 4]]]
  t = np.array([[3, 4]])
  assert am.per_problem(t, t, t, onehot)["brier"][0] == pytest.approx(0)
  assert am.per_problem(t, t, t, uniform)["brier"][0] == pytest.approx(1 - 1 / v)
  # Every 3-digit string once: the best input-independent predictor is no better
  # than a uniform guesser.
  every = np.array([[int(c) for c in f"{i:03d}"] for i in range(1000)])
  ch = am.chance_levels(every, 10)
  assert ch["exact_match"] == pytest.approx(1e-3) and ch["token_accuracy"] == pytest.approx(0.1)
  assert ch["brier"] == pytest.approx(0.9) and ch["log_likelihood"] == pytest.approx(3 * math.log(0.1))
  # Edit distance: the best fixed string of all 1,000 (brute force: "012", 2.682), which the
  # search finds from its starts ("000", 2.700, the one chance was before it searched).
  best = min(am.edit_distance(np.tile(s, (1000, 1)), every).mean() for s in every)
  assert ch["edit_distance"] == pytest.approx(best) == pytest.approx(2.682)
  assert best < am.edit_distance(np.zeros_like(every), every).mean() - 0.01
  # By hand, answers 10, 10, 11, 02. Teacher-forced metrics condition on the true prefix:
  # p(d_0) = (1/4, 3/4); p(d_1 | 1) = (2/3, 1/3, 0), p(d_1 | 0) = (0, 0, 1).
  ch = am.chance_levels(np.array([[1, 0], [1, 0], [1, 1], [0, 2]]), 3)
  assert ch["exact_match"] == pytest.approx(0.5)                 # "10"
  assert ch["token_accuracy"] == pytest.approx((0.75 + (2 + 1) / 4) / 2)
  assert ch["edit_distance"] == pytest.approx((0 + 0 + 1 + 2) / 4)  # "10" vs each
  # mean log p(answer): p(10) = 3/4 * 2/3, p(11) = 3/4 * 1/3, p(02) = 1/4 * 1
  assert ch["log_likelihood"] == pytest.approx((2 * math.log(0.5) + 2 * math.log(0.25)) / 4)
  brier_1 = 0.75 * (1 - (2 / 3) ** 2 - (1 / 3) ** 2) + 0.25 * 0.0
  assert ch["brier"] == pytest.approx((1 - 0.25 ** 2 - 0.75 ** 2 + brier_1) / 2)


def test_intervals():
  lo, hi = am.wilson_interval(0, 10_000)
  assert lo == 0 and hi == pytest.approx(1.959964 ** 2 / (10_000 + 1.959964 ** 2), rel=1e-6)
  lo, hi = am.wilson_interval(5000, 10_000)
  assert (lo, hi) == pytest.approx((0.5 - 0.0098, 0.5 + 0.0098), abs=2e-4)
  rng = np.random.default_rng(0)
  x = rng.normal(size=10_000)
  s = am.summarise({"brier": x, "exact_match": (x > 0).astype(float)}, resamples=500, seed=0)
  half = 1.96 / math.sqrt(10_000)
  assert s["brier"]["hi"] - s["brier"]["lo"] == pytest.approx(2 * half, rel=0.15)
  assert s["brier"]["lo"] < s["brier"]["mean"] < s["brier"]["hi"]
  assert s["exact_match"]["interval"].startswith("Wilson")


def test_chance_predictor_breaks_ties_to_the_lowest_digit_and_crossfit_smooths_from_uniform():
  """Exact: a tie of the most frequent digit goes to the lowest (population 0, 1: it predicts
  0, so the held-out answer 1 scores token accuracy 0, p = 1/2 either way). Cross-fitted: each
  fold's p(d_0) = (count + V * 1/V) / (fold-out answers + V): ten answers all 0, V = 10,
  folds of 2: p(0) = (8 + 1) / (8 + 10) = 1/2, p(other) = 1/18."""
  tied = am._teacher_forced_exact(np.array([[1]]), 2, population_PxM=np.array([[0], [1]]))
  assert tied == pytest.approx({"token_accuracy": 0.0, "log_likelihood": math.log(0.5),
                                "brier": 0.25 + 0.25 - 2 * 0.5 + 1})
  fitted = am._teacher_forced_crossfit(np.zeros((10, 1), np.int64), 10)
  assert fitted == pytest.approx({"token_accuracy": 1.0, "log_likelihood": math.log(0.5),
                                  "brier": 0.25 + 9 / 18 ** 2 - 2 * 0.5 + 1})
