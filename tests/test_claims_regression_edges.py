"""experiments/claims/regression.py at its edges: Garg's rows read every k they name, both
baselines and the non-finite values; Raventos's grid read sorted, the M* window's inclusive
ends, the strict 'tracks' margins, a pool without its noise estimate."""
import pytest

from claims_fixtures import (GOOD_SHIFTS, LS, garg_probe, garg_shift, garg_sparse, raventos,
                             statuses, write)
from experiments import claims
from experiments.claims import regression


def _garg_rows(run_dir, model=None, **curves):
  """The four dense-task rows of a seed whose probe is the fixture's (model = least squares'
  error + 0.02, both baselines at 3.0) with `model` and the named curves replaced."""
  probe = garg_probe(model or [v + 0.02 for v in LS])
  for name, mean in curves.items():
    probe["curves"][name]["mean"] = mean
  write(run_dir / "probes" / "icl_regression.json", probe)
  return regression.garg2022(run_dir, "cpu")["claims"][:4]


def test_garg_a_non_finite_value_fails_only_the_rows_that_read_it(tmp_path):
  """'k < d' reads the model below d only: a NaN at k = d fails the rows over k >= d, every k
  and k >= 1, not it. '3-NN and averaging above' reads both baselines: a NaN in 3-NN's or
  averaging's curve (min(NaN, x) is NaN, which min over k skipped) is no PASS."""
  nan_at_d = [v + 0.02 for v in LS]
  nan_at_d[5] = float("nan")  # D = 5
  assert [r["status"] for r in _garg_rows(tmp_path / "a", nan_at_d)] == [
      "PASS", "FAIL", "FAIL", "FAIL"]
  for name in ("nearest_neighbours", "averaging"):
    baseline = [3.0] * 16
    baseline[3] = float("nan")
    rows = _garg_rows(tmp_path / name, **{name: baseline})
    assert [r["status"] for r in rows] == ["PASS", "PASS", "PASS", "FAIL"], name
    assert "non-finite errors at k = [3]" in rows[3]["note"]


def test_garg_k_at_least_d_counts_k_equal_d(tmp_path):
  """'k >= d: error about 0' averages k = d too: the model still at the zero predictor's 1 at
  k = d and 0.02 after is (1 + 10 x 0.02) / 11 = 0.109 over k = 5..15: FAIL (0.02 without k = d)."""
  model = [v + 0.02 for v in LS]
  model[5] = 1.0
  row = _garg_rows(tmp_path, model)[1]
  assert (row["claim"], row["status"], row["ours"]) == ("k >= d: error about 0", "FAIL", 0.109)
  model[5] = 0.15   # 'about 0' on the mean: (0.15 + 10 x 0.02) / 11 = 0.032, though k = d is 0.15
  row = _garg_rows(tmp_path / "b", model)[1]
  assert (row["status"], row["ours"]) == ("PASS", 0.032)


def test_garg_both_baselines_must_stay_well_above(tmp_path):
  """'3-NN and averaging stay well above': the nearer of the two baselines is compared with
  the model. Averaging at 3.0 but 3-NN at 1.5x the model's error is a ratio of 1.5: FAIL (the
  farther baseline alone gave 3.0 / 0.02 = 150)."""
  model = [v + 0.02 for v in LS]
  for near, far in (("nearest_neighbours", "averaging"), ("averaging", "nearest_neighbours")):
    row = _garg_rows(tmp_path / near, model, **{near: [1.5 * m for m in model],
                                                far: [3.0] * 16})[3]
    assert (row["status"], row["ours"]) == ("FAIL", 1.5), near


def test_garg_sparse_reads_k_0_apart_and_every_k_for_lasso(tmp_path):
  """At k = 0 (no examples) every predictor predicts 0: the model, least squares and the tuned
  Lasso all score the zero predictor's 0.4 there, so 'beats least squares' is over 1 <= k < d
  (k = 0 can only tie). 'Tracks the tuned Lasso' is over every k: 0.05 above it (and least
  squares, both 0) at k >= d is beyond 0.1 x 0.4 = 0.04: FAIL."""
  def row(name, model):
    probe = garg_sparse(model)
    probe["curves"]["lasso_tuned"]["mean"][0] = 0.4   # = least squares' at k = 0
    return regression._garg_sparse(write(tmp_path / name, probe), "")
  lasso = [0.4] + [0.5 * 0.4 * v for v in LS[1:]]
  tied = [v + 0.005 for v in lasso]
  tied[0] = 0.4
  assert row("tied.json", tied)["status"] == "PASS"
  late = [v + (0.05 if k >= 5 else 0.005) for k, v in enumerate(lasso)]
  late[0] = 0.4
  r = row("late.json", late)
  assert r["status"] == "FAIL" and "max_k |model - tuned Lasso| 0.050" in r["ours"]


def test_garg_shift_errors_average_k_from_d(tmp_path):
  """The no-shift error is the mean over k >= d, k = d included: 0.6 at k = d and 0.05 after
  is 1.1 / 11 = 0.1, so skewed covariance at 0.2 is below 2 x 0.1 + 0.02 (not degraded)."""
  res = garg_shift(GOOD_SHIFTS)
  res["shifts"]["none"]["model"][5] = 0.6
  rows = regression._garg_shifts(write(tmp_path / "s.json", res), "")
  assert rows[1]["status"] == "FAIL" and "(no shift 0.100)" in rows[1]["ours"]


@pytest.mark.parametrize("change", [
    {"orthant": 0.14},                           # <= max(2 x 0.05, 0.05 + 0.1) = 0.15
    {"none": 0.12, "scale_0.5": 0.23, "orthant": 0.2, "skewed": 0.5, "scale_2": 0.6,
     "scale_3": 0.7},                            # <= max(0.24, 0.22) = 0.24, under 0.25
])
def test_garg_robust_bound_is_the_larger_of_double_and_plus_a_tenth(tmp_path, change):
  rows = regression._garg_shifts(write(tmp_path / "s.json", garg_shift(GOOD_SHIFTS | change)), "")
  assert [r["status"] for r in rows] == ["PASS", "PASS"]


@pytest.mark.parametrize("change", [
    {"scale_3": 0.11, "scale_2": 0.1},   # skewed degrades (0.2), x3 not: 0.11 < 2 x 0.05 + 0.02
    {"scale_3": 0.3, "scale_2": 0.3},    # x3 no worse than x2: 'x3 > x2' is strict
])
def test_garg_degrades_needs_x3_beyond_the_floor_and_beyond_x2(tmp_path, change):
  rows = regression._garg_shifts(write(tmp_path / "s.json", garg_shift(GOOD_SHIFTS | change)), "")
  assert [r["status"] for r in rows] == ["PASS", "FAIL"]


def test_raventos_grid_in_any_order_is_read_sorted(tmp_path):
  """A grid written out of order (a pool appended after the grid, as the zero-predictor
  control appends 2^14) places M* in (next smaller M, M*] all the same: 2^13 below 2^15,
  not the last entry written before it (8)."""
  write(tmp_path / "raventos2023.json", raventos([2 ** 13, 2, 8, 2 ** 15], 2 ** 15))
  row = regression.raventos2023(tmp_path, "cpu")["claims"][2]
  assert (row["status"], row["ours"]) == ("PASS", 32768)
  assert "M* in (8192, 32768]" in row["note"] and "grid 2..32768" in row["note"]


def test_raventos_and_garg_bounds_are_inclusive(tmp_path):
  """The window's edges belong to it: M* in (2^12, 2^14], its bottom exactly the window's low
  end 2^13 / 2 = 4096, PASSes, and so does M* in (2^14, 2^16], its top the high end 2^15 x 2.
  'Degrades' is 'at least' 2 x no-shift + 0.02: skewed and x3 at exactly 2 x 0.0625 + 0.02 =
  0.145 (sums exact in binary) PASS."""
  write(tmp_path / "raventos2023.json", raventos([2, 2 ** 12, 2 ** 14], 2 ** 14))
  row = regression.raventos2023(tmp_path, "cpu")["claims"][2]
  assert (row["status"], row["ours"]) == ("PASS", 16384) and "M* in (4096, 16384]" in row["note"]
  write(tmp_path / "raventos2023.json", raventos([2 ** 12, 2 ** 14, 2 ** 16], 2 ** 16))
  row = regression.raventos2023(tmp_path, "cpu")["claims"][2]   # its top at 2^15 x 2
  assert (row["status"], row["ours"]) == ("PASS", 65536)
  shifts = GOOD_SHIFTS | {"none": 0.0625, "skewed": 0.145, "scale_3": 0.145, "scale_2": 0.1}
  rows = regression._garg_shifts(write(tmp_path / "s.json", garg_shift(shifts)), "")
  assert [r["status"] for r in rows] == ["PASS", "PASS"]


def test_garg_deviations_count_below_as_well_as_above(tmp_path):
  """'About', 'tracks' and 'nearly matches' are distances: a model 0.3 BELOW (d-k)/d and
  least squares' error at k = 2 (0.6) FAILs 'k < d' and 'tracks least squares' as 0.3 above
  would; on the sparse task a model 0.05 below the tuned Lasso at k = 2 is beyond 0.04."""
  model = [v + 0.02 for v in LS]
  model[2] = 0.3
  rows = _garg_rows(tmp_path, model)
  assert [(r["status"], r["ours"]) for r in rows[:3:2]] == [("FAIL", 0.3), ("FAIL", 0.3)]
  sparse = garg_sparse()
  sparse["curves"]["model"]["mean"][2] = sparse["curves"]["lasso_tuned"]["mean"][2] - 0.05
  row = regression._garg_sparse(write(tmp_path / "sparse.json", sparse), "")
  assert row["status"] == "FAIL" and "max_k |model - tuned Lasso| 0.050" in row["ours"]


@pytest.mark.parametrize("d_target, d_other, noise, r", [
    (0.125, 0.25, 0.125, 2.0),   # nearer by exactly the noise: not resolvably nearer
    (0.125, 0.75, 0.125, 1.0),   # exactly at R/4 - noise: not resolvably nearer than midway
])
def test_raventos_tracks_needs_strict_margins(tmp_path, d_target, d_other, noise, r):
  """Both 'tracks' gates are strict (values exact in binary): at the margin it is no PASS."""
  res = raventos([2, 2 ** 15], 2 ** 15)
  for p in res["pools"]:
    target, other = ("d_ridge", "d_dmmse") if p["M"] > 2 else ("d_dmmse", "d_ridge")
    p |= {target: d_target, other: d_other, "d_noise": noise, "ridge_to_dmmse": r}
  write(tmp_path / "raventos2023.json", res)
  assert statuses(regression.raventos2023(tmp_path, "cpu"))[:2] == ["FAIL", "FAIL"]


def test_raventos_a_pool_without_the_noise_estimate_is_not_scored(tmp_path):
  """One pool written before the distances' noise estimate (a file resumed across the
  change): nothing is scored on the others."""
  res = raventos([2, 32, 2 ** 13, 2 ** 15], 2 ** 15)
  del res["pools"][2]["d_noise"]
  write(tmp_path / "raventos2023.json", res)
  rows = regression.raventos2023(tmp_path, "cpu")["claims"]
  assert {r["status"] for r in rows} == {"NOT_SHOWN"}
  assert "predates the distances' noise estimate" in rows[0]["note"]


def test_garg_orthant_reads_the_last_position_only(tmp_path):
  """Only the last position's query leaves the examples' orthant: its error there (0.4) is
  the orthant row's, not the shifted curve's value at k = d (0.05, an in-orthant query)."""
  res = garg_shift(GOOD_SHIFTS)
  res["shifts"]["orthant"]["model"] = [1.0] * 5 + [0.05] * 10 + [0.4]
  rows = regression._garg_shifts(write(tmp_path / "s.json", res), "")
  assert rows[0]["status"] == "FAIL" and "orthant 0.400 (no shift 0.050)" in rows[0]["ours"]


def test_garg_about_is_a_tenth_of_the_zero_predictor(tmp_path):
  """'k < d: about (d-k)/d' allows 0.1: the model 0.15 above it at k = 2 (0.75 against 0.6)
  FAILs, 0.08 above PASSes."""
  for dev, status in ((0.15, "FAIL"), (0.08, "PASS")):
    model = [v + 0.02 for v in LS]
    model[2] = 0.6 + dev
    row = _garg_rows(tmp_path / status, model)[0]
    assert (row["status"], row["ours"]) == (status, dev), dev


def test_raventos_a_grid_m_without_a_pool_or_a_failure_is_not_read_as_measured(tmp_path):
  """Pools at 2, 8 and 2^14 of grid 2, 8, 2^12, 2^14, and no failure recorded: M* = 2^14 was
  placed in (2^12, 2^14] (PASS) off a pool that does not exist, where the pools bound it only
  to (8, 2^14]. Every row is NOT_SHOWN now, naming the M. Control: the same pools on their
  own grid score (the M* row FAILs: its bracket's bottom, 8, is below the window)."""
  res = raventos([2, 8, 2 ** 14], 2 ** 14)
  res["grid"] = [2, 8, 2 ** 12, 2 ** 14]
  write(tmp_path / "raventos2023.json", res)
  rows = regression.raventos2023(tmp_path, "cpu")["claims"]
  assert [r["status"] for r in rows] == ["NOT_SHOWN"] * 3
  assert "the grid's M = [4096] have no pool and no failure recorded" in rows[2]["note"]
  write(tmp_path / "raventos2023.json", raventos([2, 8, 2 ** 14], 2 ** 14))
  row = regression.raventos2023(tmp_path, "cpu")["claims"][2]
  assert row["status"] == "FAIL" and "M* in (8, 16384]" in row["note"], row
