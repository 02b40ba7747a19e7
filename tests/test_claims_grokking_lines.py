"""experiments/claims/grokking.py, Nanda's rows at their edges: the early-train, jump and
control lines, the despiking, half-fall and serial-correlation rules, the fall's standard
error, and too few evaluations to score."""
import json
import math

import pytest

from claims_fixtures import write
from experiments.claims import grokking as nanda_claims
from test_claims_grokking import _progress_row, grokking


def test_nanda_train_early_is_at_most_5_percent_of_training(tmp_path):
  """Train accuracy >= 0.99 at step 125 of 2,500 is 5% of training: early (PASS); at 150 not
  (a mutation audit moved '<=' to '<' unseen)."""
  for step, status in ((125, "PASS"), (150, "FAIL")):
    grokking(tmp_path / str(step), train_step=step)
    assert nanda_claims.nanda2023(tmp_path / str(step), "cpu")["claims"][0]["status"] == status


def test_nanda_jump_within_a_fifth_of_training_at_its_line(tmp_path):
  """Test accuracy at chance to step 975, exactly on its 10% line (of the way from chance
  1/97 to 1) from 1000 to 1475, on its 90% line at 1500 and 1 after: 475 + 25 = 500 steps
  between the levels, a fifth of 2,500: a jump (PASS). Held on the 10% line to 1500, 525
  steps: not (a mutation audit moved '<=' to '<' unseen)."""
  floor = 1 / 97
  lo, hi = floor + 0.1 * (1 - floor), floor + 0.9 * (1 - floor)
  for last_lo, status in ((1475, "PASS"), (1500, "FAIL")):
    acc = lambda s: (floor if s < 1000 else lo if s <= last_lo else hi if s == last_lo + 25
                     else 1.0)
    grokking(tmp_path / status, test_step=last_lo + 50, test_acc=acc)
    row = nanda_claims.nanda2023(tmp_path / status, "cpu")["claims"][1]
    assert row["status"] == status and f"; {last_lo - 975} steps between 10% and 90%" in \
        row["ours"], row


def test_nanda_control_no_grokking_is_below_halfway_from_chance(tmp_path):
  """'No grokking' = the weight-decay-0 control's test accuracy always below halfway from
  chance 1/97 to 1 (0.50515): 0.5 is below it (PASS; a mutation audit: the line without its chance
  term, 0.49485, FAILed it), the line itself is not (FAIL; a mutation audit: '<=' passed it)."""
  half = 1 / 97 + 0.5 * (1 - 1 / 97)
  for mx, status in ((0.5, "PASS"), (half, "FAIL")):
    grokking(tmp_path / status)
    path = tmp_path / status / "grokking.json"
    res = json.loads(path.read_text())
    res["runs"]["wd=0"]["max_test_accuracy"] = mx
    write(path, res)
    row = nanda_claims.nanda2023(tmp_path / status, "cpu")["claims"][2]
    assert row["status"] == status and "always < 0.505" in row["tolerance"], row


def test_despike_end_points_follow_tukeys_rule():
  """An end evaluation beyond the gate becomes median(end, next, 3 next - 2 next-but-one), R's
  smooth(endrule="Tukey"): a steady rise 0..8 then 30 ends at median(30, 8, 24 - 14) = 10
  (a mutation audit: the 2 next - next-but-one extrapolation gave 9); the rise itself is
  unchanged."""
  v = [0, 1, 2, 3, 4, 5, 6, 7, 8, 30]
  assert nanda_claims.despike(v) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10]
  assert nanda_claims.despike([30, 8, 7, 6, 5, 4, 3, 2, 1, 0])[0] == 10


def test_half_drop_step_is_the_first_step_at_or_below_the_half_fall_line():
  """Maximum 4, last value 0: the half-fall line is 2, reached at step 300 (a mutation audit: '<'
  waited for 0 at 400); a curve that does not fall has no step."""
  steps = [100, 200, 300, 400, 500]
  assert nanda_claims.half_drop_step(steps, [4, 4, 2, 0, 0]) == 300
  assert nanda_claims.half_drop_step(steps, [0, 1, 2, 3, 4]) is None


def test_serial_correlation_is_one_plus_twice_the_lag1_correlation_of_centred_changes():
  """Changes 1, 0, -1 repeated (centred on their median 0): lag-1 products sum -2 over an
  energy 6, r = -1/3, rho = 1 + 2r = 1/3. A steady trend (+5 a step) moves the median, not r
  (a mutation audit: without the centring the trend read as rho 0.95). A clean step: r = 0, rho 1,
  clipped to MAX_RHO 0.95."""
  base = [0, 1, 1, 0, 1, 1, 0, 1, 1, 0]
  assert nanda_claims.serial_correlation(base) == pytest.approx(1 / 3)
  assert nanda_claims.serial_correlation([v + 5 * i for i, v in enumerate(base)]) == \
      pytest.approx(1 / 3)
  assert nanda_claims.serial_correlation([4, 4, 4, 4, 0, 0, 0, 0]) == 0.95


def test_fall_is_between_the_medians_with_the_median_standard_error():
  """A clean step 4 -> 0 at step 4 of 0..7, raw evaluation noise 0.2 (the SE of a difference
  of two evaluations): fall 4 from the level 4; rho 0.95 (a step's changes are r = 0), so one
  evaluation's sd is 0.2 / sqrt(2) / sqrt(1 - 0.95), and the SE of the difference of two
  medians of 4 is 1.2533 sd sqrt((1 + 0.95) / (1 - 0.95)) sqrt(1/4 + 1/4) = 3.5003."""
  fall, se, level = nanda_claims._fall(list(range(8)), [4, 4, 4, 4, 0, 0, 0, 0], 4, 0.2)
  assert (fall, level) == (4.0, 4.0)
  sd = 0.2 / math.sqrt(2) / math.sqrt(0.05)
  assert se == pytest.approx(1.2533 * sd * math.sqrt(1.95 / 0.05) * math.sqrt(0.5))
  assert se == pytest.approx(3.5003, abs=1e-4)
  assert nanda_claims._fall(list(range(8)), [4, 4, 4, 4, 0, 0, 0, 0], 7, 0.2)[0] == 0.0  # 1 after


def test_nanda_progress_each_loss_must_halve_from_its_own_level(tmp_path):
  """Restricted loss 4 -> 0 at step 400, test loss 12 -> 8 at 800 (noise-free): test's fall
  4 is beyond its noise but a third of its level 12, under the half a fall must be: FAIL
  (a mutation audit: test's fall held to half of restricted's level 4 passed it). Control: test
  12 -> 4 halves: PASS."""
  steps = list(range(0, 1001, 25))
  restricted = [4.0 if s < 400 else 0.0 for s in steps]
  for after, status in ((8.0, "FAIL"), (4.0, "PASS")):
    row = _progress_row(tmp_path / status, restricted,
                        [12.0 if s < 800 else after for s in steps], steps)
    assert row["status"] == status and row["ours"] == "restricted step 400, test step 800", row
    assert f"test {12 - after:.3f} of 12.000" in row["note"], row


def test_nanda_progress_interval_is_the_median_spacing_of_the_evaluations(tmp_path):
  """Evaluations every 25 steps and one extra at step 1: the interval an ordering must beat is
  the median spacing 25, not the smallest 1. Restricted's half-fall at 500 and
  test's at 525 are one interval apart: FAIL; two apart (550): PASS."""
  steps = [0, 1] + list(range(25, 1001, 25))
  restricted = [4.0 if s < 500 else 0.0 for s in steps]
  for at, status in ((525, "FAIL"), (550, "PASS")):
    row = _progress_row(tmp_path / status, restricted, [12.0 if s < at else 0.0 for s in steps],
                        steps)
    assert row["status"] == status and row["ours"] == f"restricted step 500, test step {at}", row
    assert "more than one evaluation interval (25)" in row["tolerance"], row


def test_nanda_paper_jump_step_is_read_within_half_either_side_of_10_14k(tmp_path):
  """The paper preset's 'jumps near 10-14k epochs', read off a plot: 5,000 to 21,000 (10k / 2
  to 14k x 1.5) PASS, a step outside FAILs (a mutation audit: 14k x 2 passed 21,025 unseen)."""
  for te, status in ((5000, "PASS"), (21000, "PASS"), (4975, "FAIL"), (21025, "FAIL")):
    grokking(tmp_path / str(te), test_step=te)
    row = nanda_claims.nanda2023(tmp_path / str(te), "paper")["claims"][2]
    assert row["claim"] == "test accuracy jumps near 10-14k epochs"
    assert row["status"] == status and row["tolerance"].startswith("5000-21000;"), row


def test_nanda_progress_on_two_evaluations_is_not_shown(tmp_path):
  """Two evaluations of the progress measures cannot place a fall between two levels: NOT
  SHOWN, not a FAIL of the claim (a mutation audit: '< 2' scored them FAIL); three are scored."""
  row = _progress_row(tmp_path / "two", [4.0, 0.0], [12.0, 0.0], [0, 25])
  assert row["status"] == "NOT_SHOWN" and "2 evaluations of the progress measures" in \
      row["note"] and "needs >= 3" in row["note"], row
  row = _progress_row(tmp_path / "three", [4.0, 0.0, 0.0], [12.0, 12.0, 0.0], [0, 25, 50])
  assert row["status"] == "FAIL" and row["ours"] == "restricted step 25, test step 50", row


def test_nanda_two_test_accuracy_evaluations_show_no_jump(tmp_path):
  """Test accuracy evaluated twice (steps 0 and 2,500) cannot tell a jump from a ramp, nor a
  lasting rise from a glitch: the grokking and weight-decay rows are NOT_SHOWN, not FAIL
  (a mutation audit: reading a curve from 2 evaluations FAILed both)."""
  grokking(tmp_path, every=2500)
  rows = nanda_claims.nanda2023(tmp_path, "cpu")["claims"]
  assert [rows[i]["status"] for i in (1, 2)] == ["NOT_SHOWN"] * 2, rows
  # The curve is there, with 2 evaluations: the note says so and how many it needs; "rerun"
  # (the tiny preset's note) fixed nothing, a rerun of the preset evaluates as rarely.
  for row in rows[1:3]:
    assert "evaluates test accuracy 2 times (every 2500 of 2500 steps" in row["note"], row
    assert "needs >= 3" in row["note"] and "rerun" not in row["note"], row


def test_nanda_missing_test_accuracy_curve_still_says_rerun(tmp_path):
  """The control of the case above: no metrics.jsonl at all is a missing file, which a rerun
  does write: 'rerun nanda2023', not a count of evaluations."""
  grokking(tmp_path)
  (tmp_path / "wd_1" / "metrics.jsonl").unlink()
  rows = nanda_claims.nanda2023(tmp_path, "cpu")["claims"]
  assert [rows[i]["status"] for i in (1, 2)] == ["NOT_SHOWN"] * 2, rows
  for row in rows[1:3]:
    assert "no eval_test_accuracy curve" in row["note"] and "(rerun nanda2023)" in row["note"]
    assert "evaluates test accuracy" not in row["note"], row


@pytest.mark.parametrize("share, status, shown", [
    (0.4952, "FAIL", "0.495"),    # tiny's: printed 0.50 beside '>= 0.5' FAIL before
    (0.49996, "FAIL", "0.49996"),  # as many digits as it takes to stay below the bar
    (0.5, "PASS", "0.50"),         # control: exactly at the bar passes and prints 0.50
    (0.52, "PASS", "0.52"),        # control: two decimals where they do not touch the bar
])
def test_nanda_key_frequency_share_never_prints_a_failing_value_on_the_bar(tmp_path, share,
                                                                         status, shown):
  grokking(tmp_path, share=share)
  row = nanda_claims.nanda2023(tmp_path, "cpu")["claims"][3]
  assert row["status"] == status and row["ours"].endswith(f": {shown} of the norm^2"), row
