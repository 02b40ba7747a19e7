"""research/analysis/correlation.py: Spearman's rho with average ranks."""
import numpy as np
import pytest

from research.analysis.correlation import average_ranks, spearman


def test_monotone_and_reversed():
  assert spearman([1, 2, 4, 8], [0.1, 0.2, 0.5, 0.9]) == pytest.approx(1.0)
  assert spearman([1, 2, 4, 8], [0.9, 0.5, 0.2, 0.1]) == pytest.approx(-1.0)


def test_ties_take_the_mean_rank():
  np.testing.assert_allclose(average_ranks([3, 1, 3, 2]), [2.5, 0, 2.5, 1])
  # Pearson correlation of the average ranks, computed by hand:
  # x ranks (0, 1, 2, 3), y = (0.5, 0.5, 0.7, 0.6) -> ranks (0.5, 0.5, 3, 2).
  rx, ry = np.arange(4.0), np.array([0.5, 0.5, 3, 2])
  expected = np.corrcoef(rx, ry)[0, 1]
  assert spearman([1, 2, 4, 8], [0.5, 0.5, 0.7, 0.6]) == pytest.approx(expected)
  # Order of appearance must not matter for tied values.
  assert spearman([1, 2, 3], [0.5, 0.5, 0.9]) == spearman([2, 1, 3], [0.5, 0.5, 0.9])


def test_degenerate_inputs():
  assert spearman([1], [2]) == 0.0
  assert spearman([1, 2, 3], [0.4, 0.4, 0.4]) == 0.0
  with pytest.raises(ValueError, match="equal lengths"):
    spearman([1, 2], [1])


def test_a_rise_within_two_standard_errors_is_no_rise_and_curves_pool_their_errors():
  """rises_with_n needs the gain beyond 2 SE (a 1-SE rise passed a mutation unseen), and the
  mean of K independent curves has SE sqrt(sum of variances) / K (not / sqrt(K))."""
  from research.analysis import correlation
  r = correlation.rises_with_n({"n": [1, 2, 3, 4], "accuracy": [0.50, 0.52, 0.54, 0.56]}, 200)
  assert 0.045 < r["gain_se"] < 0.055 and r["rises"] is False
  curves = {k: {"n": [1, 2], "accuracy": [0.5, 0.5]} for k in ("a", "b")}
  np.testing.assert_allclose(correlation.mean_over_k(curves, 100)["se"], [np.sqrt(0.005) / 2] * 2)
