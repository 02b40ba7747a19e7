"""Induction-head score definitions on hand-built attention patterns and OV circuits."""
import numpy as np
import pytest

from research.probes import attention as scores


def _causal_uniform(length):
  a = np.tril(np.ones((length, length)))
  return a / a.sum(-1, keepdims=True)


def _pattern(length, target):
  """One-hot attention: query i attends to key target(i) (clipped causal)."""
  a = np.zeros((length, length))
  for i in range(length):
    a[i, min(max(target(i), 0), i)] = 1.0
  return a


def test_perfect_induction_pattern_scores_one_and_uniform_about_one_over_t():
  t = 16
  length = 2 * t
  induction = _pattern(length, lambda i: i - t + 1 if i >= t else i)
  previous = _pattern(length, lambda i: i - 1)
  uniform = _causal_uniform(length)
  attn = np.stack([induction, previous, uniform])[None]  # 1 x 3 heads x L x L
  pm = np.asarray(scores.prefix_matching_score(attn, t))
  np.testing.assert_allclose(pm[0], 1.0)
  assert pm[1] == 0.0  # previous-token head never hits i - T + 1 (T > 2)
  np.testing.assert_allclose(pm[2], scores.uniform_prefix_baseline(t), rtol=1e-6)
  # "about 1/t": mean of 1/(i+1) over the second copy lies between 1/(2T) and 1/T.
  assert 1 / length < pm[2] < 1 / t
  prev = np.asarray(scores.previous_token_score(attn))
  np.testing.assert_allclose(prev[1], 1.0)
  np.testing.assert_allclose(prev[2], np.mean(1 / (np.arange(1, length) + 1)), rtol=1e-6)
  assert prev[0] < 0.1  # the induction head is not a previous-token head


def test_scores_average_over_batch_and_half_strength_pattern():
  t = 8
  length = 2 * t
  induction = _pattern(length, lambda i: i - t + 1 if i >= t else i)
  mixed = 0.5 * induction + 0.5 * _causal_uniform(length)
  attn = np.stack([induction[None], mixed[None]])  # 2 batch x 1 head
  pm = float(np.asarray(scores.prefix_matching_score(attn, t))[0])
  expected = 0.5 * 1.0 + 0.5 * (0.5 + 0.5 * scores.uniform_prefix_baseline(t))
  np.testing.assert_allclose(pm, expected, rtol=1e-6)


def test_copying_score_on_hand_built_ov_circuits():
  v = 12
  assert scores.copying_score(np.eye(v)) == pytest.approx(1.0)
  assert scores.copying_score(-np.eye(v)) == pytest.approx(-1.0)
  rng = np.random.default_rng(0)
  low_rank = rng.normal(size=(v, 3)) @ rng.normal(size=(3, v))
  assert -1.0 <= scores.copying_score(low_rank) <= 1.0
  shift = np.roll(np.eye(v), 1, axis=0)  # attending to t raises t+1: no copying
  assert abs(scores.copying_score(shift)) < 1e-6


@pytest.mark.parametrize("v,k", [(40, 3), (5, 8)])
def test_the_copying_score_of_factors_is_that_of_their_product(v, k):
  """Heads' OV circuits are scored from their factors (K x K, not V x V: 20 GB a head at
  Pythia's vocabulary). A rank-K product's other V - K eigenvalues are 0; K > V works too."""
  rng = np.random.default_rng(1)
  for _ in range(5):
    left, right = rng.normal(size=(v, k)), rng.normal(size=(k, v))
    assert scores.copying_score_of_factors(left, right) == pytest.approx(
        scores.copying_score(left @ right), rel=1e-9, abs=1e-12)
  eye = np.eye(v)
  assert scores.copying_score_of_factors(eye, eye) == pytest.approx(1.0)
  # Control: a shift, which raises the next token, not the attended one, scores 0 factored too.
  assert abs(scores.copying_score_of_factors(np.roll(eye, 1, axis=0), eye)) < 1e-9


def test_icl_score_positions_and_sign():
  assert scores.icl_positions(512) == (50, 500)
  assert scores.icl_positions(64) == (6, 62)
  lpp = np.linspace(4.0, 2.0, 64)  # loss falls with position: context helps
  early, late = scores.icl_positions(64)
  np.testing.assert_allclose(float(scores.icl_score(lpp, early, late)), lpp[late] - lpp[early])
  assert float(scores.icl_score(lpp, early, late, half_window=1)) < 0
  assert float(scores.icl_score(np.full(64, 3.0), early, late, half_window=2)) == 0.0


def test_phase_change_detection_finds_the_steepest_window_and_rising_heads():
  steps = np.arange(0, 2000, 50)
  icl = np.where(steps < 800, -0.05, np.where(steps > 1000, -0.6, -0.05 - 0.55 * (steps - 800) / 200))
  w = scores.steepest_drop(steps, icl, window=4)
  assert 750 <= w["start_step"] <= 850 and 950 <= w["end_step"] <= 1050
  assert w["drop"] == pytest.approx(0.55, abs=0.06)
  heads = ["L0H0", "L1H0", "L1H1"]
  pm = np.stack([np.full_like(icl, 0.05), np.clip(-icl, 0.05, None), np.full_like(icl, 0.1)], -1)
  rising = scores.rising_heads(pm, w["start_index"], w["end_index"], heads, min_rise=0.1)
  assert [r["head"] for r in rising] == ["L1H0"]
  mask = scores.head_mask(2, 2, ["L1H0"])
  np.testing.assert_array_equal(mask, [[1, 1], [0, 1]])
  flat = scores.steepest_drop(steps, np.full(len(steps), -0.1), window=4)
  assert flat["drop"] == 0.0


def test_icl_early_position_is_never_the_unused_index_zero():
  """Loss_per_position[0] is unused, so a short context's early token is
  clamped to 1: at 5 tokens 5 * 50 / 512 rounds to 0 -> 1; late = min(4, round(4.88)) = 4.
  max(0, ...) passed (the tests used 64 and 512 tokens only)."""
  assert scores.icl_positions(5) == (1, 4)


def test_steepest_drop_smooths_three_evals_so_one_spike_is_not_the_drop():
  """Three evaluations are median-smoothed too (len >= 3): [1, 9, 0]
  with edge padding gives medians [1, 1, 0], so the steepest one-interval drop is 1 -> 0
  between indices 1 and 2 (drop 1), not the noisy 9 -> 0 (drop 9)."""
  w = scores.steepest_drop([0, 10, 20], [1.0, 9.0, 0.0], window=1)
  assert w == {"start_step": 10, "end_step": 20, "drop": 1.0, "start_index": 1, "end_index": 2}


def test_rising_heads_include_a_rise_of_exactly_min_rise():
  """The docstring's 'rises by >= min_rise' (a strict > passed); values
  exact in binary so the rise is exactly 0.5."""
  s = np.array([[0.0, 0.25, 0.0], [0.5, 0.5, 1.0]])
  out = scores.rising_heads(s, 0, 1, ["L0H0", "L0H1", "L1H0"], min_rise=0.5)
  assert [h["head"] for h in out] == ["L1H0", "L0H0"]
  assert out[1] == {"head": "L0H0", "rise": 0.5, "before": 0.0, "after": 0.5}
