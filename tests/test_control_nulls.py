"""The negative controls' files are null where their docstrings say so (mutation audit 6C): an
untrained model's accuracies at chance with the chance levels the claims read, a constant
predictor's in-weights accuracy equal to its chance, a uniform embedding spectrum, a flat
curve. A control that is no longer null could let a claim PASS on its own control; these pin
the null values themselves, whatever the scorers make of them today."""
import json

import pytest


from experiments.claims import control_files as cf
from experiments.claims import language_controls as lc


def _read(path):
  return json.loads(path.read_text())


def test_olsson_untrained_has_no_head_to_ablate(tmp_path):
  """No head specialises, so none is ablated: an ablation on the control would hand the
  ablation claim an ICL-score change to read."""
  lc.olsson_untrained(tmp_path)
  for name, run in _read(tmp_path / "olsson2022.json")["runs"].items():
    assert run["ablation"]["heads"] == [] and "icl_change" not in run["ablation"], name
    assert set(run["icl_curve"]["icl_score"]) == {0.0}


def test_schaeffer_flat_and_untrained_ladder_curves_are_at_chance(monkeypatch, tmp_path):
  """'flat curve' (Schaeffer) and the untrained ladder: every metric at chance (0 on the
  chance-to-perfect scale) at every size, checkpoint, task and k. A constant curve above chance
  still FAILs the emergence claims, but it is no longer an untrained model."""
  from experiments.claims import ladder_controls
  seen = {}
  monkeypatch.setattr(cf, "schaeffer_files", lambda run_dir, curve, **kw: seen.update(s=curve))
  monkeypatch.setattr(ladder_controls, "ladder_files", lambda run_dir, **kw: seen.update(kw))
  cf.schaeffer_flat(tmp_path)
  ladder_controls.ladder_untrained(tmp_path)
  metrics = ("exact_match", "token_accuracy", "edit_distance", "log_likelihood", "brier")
  assert all(seen["s"](m, i) == 0.0 for m in metrics for i in range(6))
  assert all(seen["few_shot"](i, s, 1e12 * 4 ** i, t, k, m) == 0.0 for i in range(4)
             for s in (1, 100, 1000) for t in ("copy", "add", "lookup") for k in (0, 1, 8)
             for m in metrics)
  assert all(seen["prefix"](i, s, 1.0) == 0.05 for i in range(4) for s in (1, 1000))


# -------------------------------------------------- controls that clear every gate but their own
def _olsson(build, tmp_path):
  from experiments.olsson2022 import TARGETS
  build(tmp_path)
  runs = _read(tmp_path / "olsson2022.json")["runs"]
  return runs["2"], runs["1"], TARGETS


def _sd(xs):
  import statistics
  return statistics.stdev(xs)


def test_olsson_noise_controls_hold_their_noise_and_pass_every_other_gate(tmp_path):
  """Each noise control is null by its noise alone: a draw of sd 0.1 nats (0.01 for the
  losses) that clears every gate of its claim but the noise one. A smaller sd, or the two
  'independent' curves one draw, FAILs the claim for another reason and tests nothing."""
  from experiments.claims import olsson_rules as r
  # NOISE: 41 evaluations of sd 0.1; the steepest step falls >= 0.3 nats, most of the net fall,
  # in 2.5% of training (drop_in_window), but is 2.3 SE of the curve's own noise (< 3).
  two, _, t = _olsson(lc.olsson_noise, tmp_path / "noise")
  c = two["icl_curve"]
  assert 0.08 < _sd(c["icl_score"]) < 0.12
  w = r.phase_window(c["step"], c["icl_score"])
  assert r.drop_in_window(w, t) and 2 < w["drop"] / w["noise"] < 3, w
  # INDEP_NOISE: two independent draws of sd 0.1; the 2-layer ends >= 0.1 nats below the
  # 1-layer at the last evaluation (0.221) and on the medians of the last 3 (0.193).
  two, one, _ = _olsson(lc.olsson_indep_noise, tmp_path / "indep")
  a, b = two["icl_curve"]["icl_score"], one["icl_curve"]["icl_score"]
  assert 0.08 < _sd(a) < 0.12 and 0.08 < _sd(b) < 0.12 and a != b
  assert one["final"]["icl_score"] - two["final"]["icl_score"] >= 0.1
  assert r.end_level(b) - r.end_level(a) >= 0.1
  # LOSS_NOISE: losses at 4 nats plus sd 0.01; over the ICL window (425-575) the 2-layer loss
  # falls >= 3x the span before's and the 1-layer's (the old rule's PASS), 0.027 nats.
  two, one, _ = _olsson(lc.olsson_loss_noise, tmp_path / "loss")
  for run in (two, one):
    assert 0.006 < _sd(run["loss_curve"]["loss"]) < 0.014
  lc2, lc1 = two["loss_curve"], one["loss_curve"]
  inside = r.loss_at(lc2, 425) - r.loss_at(lc2, 575)
  assert inside >= 3 * max(r.loss_at(lc2, 275) - r.loss_at(lc2, 425), 1e-3)
  assert inside >= 3 * max(r.loss_at(lc1, 425) - r.loss_at(lc1, 575), 1e-3)
  assert 0.02 < inside < 0.035


def test_olsson_last_dip_is_one_evaluation_one_nat_down(tmp_path):
  """LAST_DIP: the 2-layer ICL score 0 at every evaluation but the last, -1.0 there: a 1-nat
  'drop' (over 3x the 0.3-nat threshold), 0.9 nats below the 1-layer's last evaluation."""
  two, one, _ = _olsson(lc.olsson_last_dip, tmp_path)
  assert two["icl_curve"]["icl_score"] == [0.0] * 40 + [-1.0]
  assert one["final"]["icl_score"] - two["final"]["icl_score"] == pytest.approx(0.9)


def test_nanda_glitch_controls_are_one_evaluation(tmp_path):
  """TEST_LAST_GLITCH / WD_LAST_GLITCH: the weight-decay run's test accuracy at chance (1/97)
  at every evaluation but the last, 1 there (the control run never above chance);
  TEST_RAMP_DIP: a steady rise from chance at step 0 to 1 at 60% of training, 1 after, but for
  one evaluation back at chance at 70% (after the rise is complete). Each is null by that one
  evaluation: two at the end, or a dip inside the ramp, are other controls."""
  from experiments.claims import grokking_controls as gc

  def curve(build):
    build(tmp_path / build.__name__)
    rows = [json.loads(line) for line in
            (tmp_path / build.__name__ / "wd_1" / "metrics.jsonl").read_text().splitlines()]
    res = _read(tmp_path / build.__name__ / "grokking.json")
    return {r["step"]: r["eval_test_accuracy"] for r in rows}, res["runs"]
  for build in (gc.nanda_test_last_glitch, gc.nanda_wd_last_glitch):
    acc, runs = curve(build)
    assert acc.pop(1000) == 1.0 and set(acc.values()) == {1 / 97}, build.__name__
  assert runs["wd=0"]["max_test_accuracy"] == 1 / 97
  acc, _ = curve(gc.nanda_test_ramp_dip)
  assert acc[0] == 1 / 97 and acc[300] == pytest.approx(1 / 97 + (1 - 1 / 97) / 2)
  assert acc.pop(700) == 1 / 97
  assert [s for s, a in acc.items() if a == 1.0] == [s for s in range(600, 1001, 25) if s != 700]
