"""Olsson 2022's scorer (experiments/claims/olsson.py) at its thresholds: each verdict exactly at
and just past its line, so a changed comparison, constant or window (a mutation audit changed
each unseen) turns a verdict. The curves are olsson_trained's (every claim PASSes) with one
replaced; tests/test_claims_olsson.py has the null curves and the noise rates."""
import json

import pytest

from experiments.claims import language_controls as lc
from experiments.claims import olsson

STEPS = list(range(0, 1001, 25))


def _rows(run_dir, edit=None, **curves):
  """olsson2022's rows for olsson_trained(**curves), the result file first passed to edit()."""
  lc.olsson_trained(run_dir, **curves)
  if edit:
    path = run_dir / "olsson2022.json"
    res = json.loads(path.read_text())
    edit(res)
    path.write_text(json.dumps(res))
  return {r["claim"]: r for r in olsson.olsson2022(run_dir, "tiny")["claims"]}


def _row(rows, start):
  return next(r for k, r in rows.items() if k.startswith(start))


@pytest.mark.parametrize("level, status", [(0.5, "PASS"), (0.49, "FAIL")])
def test_induction_heads_form_at_the_prefix_line_where_the_curve_ends(tmp_path, level, status):
  # The best head ends exactly at the 0.5 line, at the last evaluation and in the median of
  # the last 3: '>= the line' PASSes it (a strict '>' on the median FAILed it); 0.49 FAILs.
  rows = _rows(tmp_path, prefix=lc._prefix(L1H0=lambda s: 0.03 if s < 500 else level))
  assert _row(rows, "2-layer: induction heads form")["status"] == status


def _loss_bump(tmp_path, loss, **kw):
  return _row(_rows(tmp_path, loss=loss, **kw), "a bump in the training loss")


@pytest.mark.parametrize("ratio, status", [(3.1, "PASS"), (2.9, "FAIL")])
def test_loss_bump_is_three_times_the_fall_just_before(tmp_path, ratio, status):
  # The ICL window is steps 425-575 (150 steps); the loss falls 0.6 nats in it and 0.6/ratio
  # at one steady rate everywhere else (so in the 150 steps before): 'a bump' needs >= 3x.
  inside, before = 0.6, 0.6 / ratio
  loss = lambda s: 4.0 - before / 150 * s - (inside - before) / 150 * min(max(s - 425, 0), 150)
  row = _loss_bump(tmp_path, loss)
  assert row["status"] == status, row
  assert row["ours"].startswith(f"2-layer falls 0.60 nats in the window (steps 425-575) vs "
                                f"{before:.2f} in the span before")


def test_loss_bump_compares_with_the_span_just_before_not_early_training(tmp_path):
  # A fast early fall (1 nat over steps 125-275) ends before the 150 steps before the window
  # (275-425): the bump is against those 150 steps, flat, and PASSes; a 'before' span reaching
  # back twice the window's length took in the early fall and FAILed it.
  row = _loss_bump(tmp_path, lambda s: 5.0 - min(max(s - 125, 0), 150) / 150
                   - 0.8 * lc._sig(s))
  assert row["status"] == "PASS", row
  assert " vs 0.06 in the span before" in row["ours"], row


@pytest.mark.parametrize("back_at, status", [(650, "PASS"), (625, "FAIL")])
def test_loss_bump_is_kept_by_the_three_evaluations_after_the_window(tmp_path, back_at, status):
  # The loss steps down 0.8 nats in the window (425-575) and back up at `back_at`: the three
  # evaluations after the window's end (600, 625, 650) keep it only if two of them are down.
  # Counting the window's own last evaluation (575) among them PASSed the 625 case.
  row = _loss_bump(tmp_path, lambda s: 4.0 - 0.8 * (500 <= s < back_at))
  assert row["status"] == status, row


def test_loss_bump_is_the_fewest_layers_multi_layer_runs(tmp_path):
  # A 3-layer run beside the 2-layer one, its loss without a bump: the row scores the 2-layer
  # run (the smallest multi-layer model), as its text says, not the 3-layer one.
  def add_three(res):
    three = json.loads(json.dumps(res["runs"]["2"]))
    three["loss_curve"]["loss"] = [4.0 - 0.0005 * s for s in STEPS]
    res["runs"]["3"] = three
  row = _row(_rows(tmp_path, edit=add_three), "a bump in the training loss")
  assert row["status"] == "PASS" and row["ours"].startswith("2-layer falls"), row


def test_ablation_counts_a_drop_exactly_at_the_sharp_size(tmp_path):
  # The ICL score steps down exactly 0.3 nats (icl_drop_2l) at step 500 and the head forms
  # there: a drop of 'sharp' size is one to undo (ours 0.8 of it), not 'nothing to undo'.
  rows = _rows(tmp_path, icl=lambda s: -0.3 if s >= 500 else 0.0,
               prefix=lc._prefix(L1H0=lambda s: 0.83 if s >= 500 else 0.03))
  row = _row(rows, "2-layer: the heads rising in the window")
  assert row["status"] == "PASS" and row["ours"] == pytest.approx(0.8), row
  assert "nothing to undo" not in row["note"]


@pytest.mark.parametrize("best, status", [(0.2, "PASS"), (0.21, "FAIL")])
def test_one_layer_prefix_matching_at_its_ceiling(tmp_path, best, status):
  # prefix <= 0.2 (prefix_matching_1l_max): a 1-layer model whose best head reached exactly
  # 0.2 shows no induction head; 0.21 does.
  def set_best(res):
    res["runs"]["1"]["best_prefix_matching_ever"] = best
  rows = _rows(tmp_path, edit=set_best)
  assert _row(rows, "1-layer models train but show neither")["status"] == status


@pytest.mark.parametrize("last, end_gap, status", [
    (0.2, 0.1, "PASS"), (0.2, 0.099, "FAIL"), (0.2, 0.07, "FAIL"),
    (0.1, 0.2, "PASS"), (0.099, 0.2, "FAIL")])  # the last evaluation's own 0.1 line
def test_ends_below_the_one_layer_model_by_a_tenth_where_the_curves_end(tmp_path, last, end_gap,
                                                                         status):
  # The 1-layer score flat at 0; the 2-layer flat at -end_gap but -last at the last
  # evaluation only: the last evaluations differ by `last`, the medians of the last 3 by
  # end_gap; each must be >= 0.1 (exactly 0.1 PASSes, 0.099 FAILs; both curves noise-free).
  two = lambda s: -last if s == 1000 else -end_gap
  row = olsson._below_one_layer("2", *[
      {"final": {"icl_score": f(1000)},
       "icl_curve": {"step": STEPS, "icl_score": [f(s) for s in STEPS]}}
      for f in (two, lambda s: 0.0)], "")
  assert row["status"] == status, row


@pytest.mark.parametrize("back, status", [(0.3, "PASS"), (0.5, "FAIL")])
def test_loss_bump_keeps_half_of_its_fall(tmp_path, back, status):
  # The loss steps down 0.8 nats in the window and climbs `back` at step 600: the evaluations
  # after keep 0.5 (62%) or 0.3 (38%) of the fall; 'kept' needs >= 50% (MOST_OF_DROP).
  row = _loss_bump(tmp_path, lambda s: 4.0 - 0.8 * (s >= 500) + back * (s >= 600))
  assert row["status"] == status, row


@pytest.mark.parametrize("ratio, status", [(3.1, "PASS"), (2.9, "FAIL")])
def test_loss_bump_is_three_times_the_one_layer_fall(tmp_path, ratio, status):
  # The 2-layer loss falls 0.6 nats in the window (425-575) and nowhere else; the 1-layer
  # loss falls 0.6/ratio over the same steps: the bump needs >= 3x the 1-layer model's.
  ramp = lambda fall: lambda s: 4.0 - fall / 150 * min(max(s - 425, 0), 150)
  row = _loss_bump(tmp_path, ramp(0.6), one_loss=ramp(0.6 / ratio))
  assert row["status"] == status, row
  assert row["ours"].endswith(f"1-layer {0.6 / ratio:.2f} over the same steps"), row


@pytest.mark.parametrize("fall, status", [(0.1, "PASS"), (0.07, "FAIL")])
def test_one_layer_model_must_have_trained_a_tenth_of_a_nat(tmp_path, fall, status):
  # 'train but show neither': the 1-layer loss falls `fall` over the run; under 0.1 nats an
  # untrained model would show neither too.
  rows = _rows(tmp_path, one_loss=lambda s: 4.0 - fall * s / 1000)
  assert _row(rows, "1-layer models train but show neither")["status"] == status


def test_window_span_is_a_fraction_of_training_not_of_the_evaluated_steps():
  """tiny's olsson2022: evaluations at steps 10 and 20 of 20 training steps, the window 10-20:
  half of training (the experiment printed 0.50), not '100% of training' (the evaluated span,
  20 - 10, as the denominator). A file without its step count falls back to the last
  evaluation's step (training starts at 0)."""
  from experiments.claims import olsson_rules
  assert olsson_rules.phase_window([10, 20], [0.19, 0.163], 20)["span"] == 0.5
  assert olsson_rules.phase_window([10, 20], [0.19, 0.163])["span"] == 0.5
  assert olsson_rules.phase_window([0, 10, 20], [0.3, 0.19, 0.163], 20)["span"] == 0.5


def test_the_short_window_rule_reads_training_and_a_late_ramp_still_fails():
  """Evaluated over steps 500-1000 of 1,000: a 150-step fall (700-850) is 15% of training,
  short (it was 30% of the evaluated steps, and FAILed 'window < 25% of training'). Negative
  control: a steady ramp over the same evaluations is a 50% window starting at the first
  evaluation, no phase change (nor a short window) either way."""
  from experiments.claims import olsson_rules
  from experiments.olsson2022 import TARGETS
  steps = list(range(500, 1001, 25))
  step = [-min(max(s - 700, 0), 150) / 150 for s in steps]
  w = olsson_rules.phase_window(steps, step, 1000)
  assert (w["start_step"], w["end_step"], w["span"]) == (700, 850, 0.15)
  assert olsson_rules.drop_in_window(w, TARGETS)
  ramp = olsson_rules.phase_window(steps, [-(s - 500) / 500 for s in steps], 1000)
  assert ramp["span"] == 0.5 and ramp["at_first_eval"]
  assert not olsson_rules.drop_in_window(ramp, TARGETS)
  assert not olsson_rules.is_phase_change(ramp, TARGETS)
  # The 1-layer rule reads the same training length: the whole 150-step fall is one sharp
  # drop there (under 25% of the 1,000 steps); the evaluated span (500) allowed only 125.
  assert olsson_rules.sharpest_drop(steps, step, 0.25, 1000) == 1.0
  assert olsson_rules.sharpest_drop(steps, step, 0.125, 1000) < 1.0  # 125 steps: part of it


def test_phase_change_row_names_the_training_steps_and_no_net_drop(tmp_path):
  """The row prints the window's share of the run's recorded training steps with that count
  (2,000 here: the 425-575 window is 8% of them, 15% of the evaluated 1,000), and a run whose
  ICL score rose overall prints 'no net drop', not a 0% beside a window holding all of it."""
  from experiments.claims import olsson_rules
  def longer(res):
    res["runs"]["2"]["steps"] = 2000
  row = _row(_rows(tmp_path, edit=longer), "2-layer: a phase change")
  assert "in steps 425-575 (8% of 2000 training steps;" in row["ours"], row
  row = _row(_rows(tmp_path / "plain"), "2-layer: a phase change")
  assert "in steps 425-575 (15% of 1000 training steps;" in row["ours"], row
  assert olsson_rules.share_text(-0.03, -0.03) == "no net drop"
  assert olsson_rules.share_text(0.001, 0.001) == "100%"   # control: a real (tiny) net drop
  assert olsson_rules.share_text(0.5, 0.0) == "no net drop"


def test_prefix_score_just_under_the_line_is_not_printed_on_it(tmp_path):
  """A best head ending at 0.4996 FAILs '>= 0.5' and is printed 0.4996 (3 decimals gave 0.5,
  a passing number); the control at 0.5 PASSes and prints 0.5."""
  for level, status in ((0.4996, "FAIL"), (0.5, "PASS")):
    rows = _rows(tmp_path / status, prefix=lc._prefix(L1H0=lambda s: 0.03 if s < 500 else level))
    row = _row(rows, "2-layer: induction heads form")
    assert row["status"] == status and row["ours"] == level, row
