"""Nanda et al. 2023's grokking claims (experiments/claims/grokking.py) on hand-built result
files: the jump, the weight-decay contrast, the progress measures and their null curves."""
import json
import math

import pytest

from claims_fixtures import seeds, write
from experiments import summaries
from experiments.claims import controls
from experiments.claims import grokking as nanda_claims


# ----------------------------------------------------------------------------- Nanda
def grokking(run_dir, train_step=50, test_step=1200, share=0.8, control_step=None, every=25,
             test_acc=None):
  """grokking.json and the weight-decay run's metrics.jsonl: test accuracy at chance until
  100 steps before test_step, then a jump to 1 by it (4% of training), or test_acc(step)."""
  jump = lambda s: (1.0 if s >= test_step else 1 / 97 if s < test_step - 100 else 0.5)
  test_acc = test_acc or (jump if test_step else lambda s: 0.4 * s / 2500)
  work = run_dir / "wd_1"
  work.mkdir(parents=True, exist_ok=True)
  (work / "metrics.jsonl").write_text("\n".join(json.dumps(
      {"step": s, "eval_test_accuracy": test_acc(s)}) for s in range(0, 2501, every)))
  run = lambda tr, te, mx: {"train_acc_099_step": tr, "test_acc_095_step": te,
                            "max_test_accuracy": mx, "final_key_freqs": [3, 9, 17, 30, 41],
                            "final": {"train_accuracy": 1.0, "test_accuracy": mx,
                                      "key_freq_share": share}, "workdir": str(work)}
  write(run_dir / "grokking.json", {
      "config": {"train": {"num_steps": 2500, "eval_every": every}, "task": {"modulus": 97},
                 "optim": {"weight_decay": 1.0, "learning_rate": 0.01}},
      "runs": {"wd=1": run(train_step, test_step, 1.0 if test_step else 0.4),
               "wd=0": run(train_step, control_step, 1.0 if control_step else 0.3)}})


@pytest.mark.parametrize("kw, expected", [
    ({}, ["PASS", "PASS", "PASS", "PASS", "NOT_SHOWN"]),
    # train accuracy at 8% of training: later than the paper's 5%
    ({"train_step": 200}, ["FAIL", "PASS", "PASS", "PASS", "NOT_SHOWN"]),
    # test catches up with train at once, weak frequencies, the control groks too
    ({"test_step": 100, "share": 0.2, "control_step": 300},
     ["PASS", "FAIL", "FAIL", "FAIL", "NOT_SHOWN"]),
    # nothing groks: the weight-decay-0 contrast is not shown by this run, a FAIL
    ({"train_step": 1000, "test_step": None}, ["FAIL", "FAIL", "FAIL", "PASS", "NOT_SHOWN"]),
    # Each line at its boundary (a mutation audit moved them unseen): the jump at exactly 3x
    # the train step groks, at 2.4x not; a 0.5 share of the norm dominates, 0.45 not.
    ({"train_step": 400}, ["FAIL", "PASS", "PASS", "PASS", "NOT_SHOWN"]),
    ({"train_step": 500}, ["FAIL", "FAIL", "PASS", "PASS", "NOT_SHOWN"]),
    ({"share": 0.5}, ["PASS", "PASS", "PASS", "PASS", "NOT_SHOWN"]),
    ({"share": 0.45}, ["PASS", "PASS", "PASS", "FAIL", "NOT_SHOWN"]),
])
def test_nanda_claims(tmp_path, kw, expected):
  grokking(tmp_path, **kw)
  rows = nanda_claims.nanda2023(tmp_path, "cpu")["claims"]
  assert [r["status"] for r in rows] == expected
  assert "evaluated every 25 steps (1.0% of training)" in rows[0]["note"]


@pytest.mark.parametrize("restricted_first, expected", [(True, "PASS"), (False, "FAIL")])
def test_nanda_progress_measure_from_metrics(tmp_path, restricted_first, expected):
  steps = [100 * i for i in range(1, 11)]
  early = [4, 4, 3, 1, 0.5, 0.5, 0.4, 0.4, 0.4, 0.4]   # half its fall by step 400
  late = [12, 12, 12, 12, 12, 12, 12, 3, 0.2, 0.1]       # half its fall by step 800
  restricted, test = (early, late) if restricted_first else (late, early)
  grokking(tmp_path / "run")
  (tmp_path / "run" / "wd_1" / "metrics.jsonl").write_text("\n".join(json.dumps(
      {"step": s, "eval_restricted_loss": r, "eval_test_loss": t})
      for s, r, t in zip(steps, restricted, test)))
  row = nanda_claims.nanda2023(tmp_path / "run", "cpu")["claims"][-1]
  assert row["status"] == expected
  assert row["ours"] == (f"restricted step {400 if restricted_first else 800}, "
                         f"test step {800 if restricted_first else 400}")


def test_nanda_a_steady_test_accuracy_ramp_is_not_a_jump(tmp_path):
  """Train at 0.99 by step 50, test accuracy climbing at one rate from chance to 1 (0.95 at
  step ~2375, 47x the train step): the two crossing steps passed it; its 10%->90% rise spans
  80% of training, not a jump."""
  grokking(tmp_path, test_step=2375, test_acc=lambda s: 1 / 97 + (1 - 1 / 97) * s / 2500)
  row = nanda_claims.nanda2023(tmp_path, "cpu")["claims"][1]
  assert row["status"] == "FAIL" and "80% of training" in row["ours"], row


def test_nanda_a_jump_long_after_train_still_groks(tmp_path):
  """Control: a jump at step 2200 (44x the train step), its rise in 5% of training: PASS. At
  the ramp's own 0.95 step (2375) the run ends 5% later, under the tenth a rise must be seen
  to last (a jump at the last evaluation passed before): FAIL."""
  grokking(tmp_path, test_step=2200)
  row = nanda_claims.nanda2023(tmp_path, "cpu")["claims"][1]
  assert row["status"] == "PASS" and "5% of training" in row["ours"], row
  grokking(tmp_path, test_step=2375)
  row = nanda_claims.nanda2023(tmp_path, "cpu")["claims"][1]
  assert row["status"] == "FAIL" and "no lasting 10%->90% rise" in row["ours"], row
  grokking(tmp_path, test_step=2200)
  (tmp_path / "wd_1" / "metrics.jsonl").unlink()   # no curve: a ramp cannot be told apart
  assert nanda_claims.nanda2023(tmp_path, "cpu")["claims"][1]["status"] == "NOT_SHOWN"


def _progress_row(tmp_path, restricted, test, steps):
  grokking(tmp_path / "run")
  (tmp_path / "run" / "wd_1" / "metrics.jsonl").write_text("\n".join(json.dumps(
      {"step": s, "eval_restricted_loss": r, "eval_test_loss": t})
      for s, r, t in zip(steps, restricted, test)))
  return nanda_claims.nanda2023(tmp_path / "run", "cpu")["claims"][-1]


def test_nanda_progress_on_noise_is_no_ordering(tmp_path):
  """Flat losses plus noise (sd 0.02; this draw: restricted's half-fall at step 25, test's at
  550) passed; their falls are within 3x the evaluation noise."""
  import random
  steps = list(range(0, 1001, 25))
  g = random.Random(2)
  noise = [(g.gauss(0, 0.02), g.gauss(0, 0.02)) for _ in steps]
  row = _progress_row(tmp_path, [4.6 + a for a, _ in noise], [4.6 + b for _, b in noise], steps)
  assert row["status"] == "FAIL" and row["ours"] == "restricted step 25, test step 550", row


def test_nanda_progress_one_interval_apart_is_no_ordering(tmp_path):
  """The same fall, restricted's half-fall one evaluation before test's: within the noise of
  where a crossing lands. Two intervals apart (the control): PASS."""
  steps = list(range(0, 1001, 25))
  fall = lambda at: [4.6 - 4.5 / (1 + math.exp(-(s - at) / 40)) for s in steps]
  assert _progress_row(tmp_path / "a", fall(490), fall(510), steps)["status"] == "FAIL"
  row = _progress_row(tmp_path / "b", fall(470), fall(530), steps)
  assert row["status"] == "PASS" and row["ours"] == "restricted step 475, test step 550", row


@pytest.mark.parametrize("build, ours", [
    (controls.nanda_noisy_maxima, "restricted step 500, test step 675"),
    # its spikes set aside (despike), the half-fall steps land elsewhere on the noise
    (controls.nanda_spiky_losses, "restricted step 750, test step 700"),
])
def test_nanda_progress_falls_are_between_levels_not_from_a_noisy_maximum(tmp_path, build, ours):
  """Flat losses plus noise whose maxima sit high (a Gaussian draw) or spike (a 5% chance of
  0.2 nats): the fall from the maximum to the last value beat 3x the evaluation noise (was
  PASS); the medians either side of each half-fall step are one level."""
  build(tmp_path / "run")
  row = nanda_claims.nanda2023(tmp_path / "run", "tiny")["claims"][-1]
  assert row["status"] == "FAIL" and row["ours"] == ours, row
  assert "median of the evaluations before that step" in row["tolerance"]


def test_nanda_progress_noise_alone_never_passes(tmp_path):
  """300 draws of flat losses plus spiky noise (sd 0.02, a 5% chance of a 0.2-nat spike per
  evaluation): the fall from the maximum passed about 1 in 5; none passes now. Control: the
  same noise on a grokking-like pair (restricted falls 4.6 -> 0 at step 400, test at 600,
  test rising by 3 nats as it memorises first) passes every draw."""
  import random
  steps = list(range(0, 1001, 25))
  sig = lambda s, at: 1 / (1 + math.exp(-(s - at) / 20))
  passed = {"flat": 0, "grokking": 0}
  for k in range(300):
    g = random.Random(k)
    e = lambda: g.gauss(0, 0.02) + (0.2 * g.choice((-1, 1)) if g.random() < 0.05 else 0.0)
    flat = [4.6 + e() for _ in steps], [4.6 + e() for _ in steps]
    grok = ([4.6 - 4.59 * sig(s, 400) + e() for s in steps],
            [4.6 + 3 * sig(s, 200) - 7.59 * sig(s, 600) + e() for s in steps])
    for name, (r, t) in (("flat", flat), ("grokking", grok)):
      passed[name] += _progress_row(tmp_path / name, r, t, steps)["status"] == "PASS"
  assert passed == {"flat": 0, "grokking": 300}, passed


def test_nanda_progress_wandering_noise_alone_never_passes(tmp_path):
  """200 draws of flat losses plus AR(1) noise (lag-1 correlation 0.8, sd 0.02): read off the
  step-to-step changes alone, the noise passed about 6% (23 of 400); none passes now. Control:
  a grokking-like pair under the same noise passes every draw, and the named control's draw
  FAILs."""
  import random
  steps = list(range(0, 1001, 25))
  sig = lambda s, at: 1 / (1 + math.exp(-(s - at) / 20))

  def wander(g):
    x, out = g.gauss(0, 0.02), []
    for _ in steps:
      out.append(x)
      x = 0.8 * x + 0.6 * g.gauss(0, 0.02)
    return out
  passed = {"flat": 0, "grokking": 0}
  for k in range(200):
    g = random.Random(k)
    e_r, e_t = wander(g), wander(g)
    flat = [4.6 + e for e in e_r], [4.6 + e for e in e_t]
    grok = ([4.6 - 4.59 * sig(s, 400) + e for s, e in zip(steps, e_r)],
            [4.6 + 3 * sig(s, 200) - 7.59 * sig(s, 600) + e for s, e in zip(steps, e_t)])
    for name, (r, t) in (("flat", flat), ("grokking", grok)):
      passed[name] += _progress_row(tmp_path / name, r, t, steps)["status"] == "PASS"
  assert passed == {"flat": 0, "grokking": 200}, passed
  assert nanda_claims.serial_correlation([4.6 + 0.01 * (-1) ** i for i in range(41)]) == 0.0
  controls.nanda_wandering_losses(tmp_path / "control")
  assert nanda_claims.nanda2023(tmp_path / "control", "cpu")["claims"][-1]["status"] == "FAIL"


@pytest.mark.parametrize("where", ["interior", "ends"])
def test_nanda_progress_flat_losses_with_a_spike_still_fail(tmp_path, where):
  """Flat losses plus noise (sd 0.02) with one real-run-sized spike each: +3 nats at step 300
  (restricted) and 700 (test), or at the ends (+0.3 nats at restricted's first evaluation,
  -0.3 at test's last): FAIL. The ends case passed: each end spike was the one evaluation on
  one side of a half-fall step, a one-evaluation 'level'."""
  import random
  steps = list(range(0, 1001, 25))
  for seed in range(5):
    g = random.Random(seed)
    r, t = [4.6 + g.gauss(0, 0.02) for _ in steps], [4.6 + g.gauss(0, 0.02) for _ in steps]
    if where == "interior":
      r[steps.index(300)] += 3
      t[steps.index(700)] += 3
    else:
      r[0] += 0.3
      t[-1] -= 0.3
    row = _progress_row(tmp_path / f"{where}{seed}", r, t, steps)
    assert row["status"] == "FAIL", (seed, row)


# A real cpu-preset run (seed 0, nanda2023 trained by this code; wd_1_final_freqs/metrics.jsonl,
# 4 significant figures): eval_restricted_loss and eval_test_loss at steps 25, 50, ..., 2500.
# Adam at lr 1e-2 spikes the losses for one evaluation at steps 525 and 1025 (train loss
# 0.001 -> 0.95 and -> 3.07 with them).
REAL_STEPS = list(range(25, 2501, 25))
REAL_RESTRICTED = [
    4.602, 4.657, 4.697, 4.023, 3.667, 3.434, 3.25, 3.094, 2.959, 2.839, 2.726, 2.617, 2.514,
    2.42, 2.333, 2.252, 2.177, 2.111, 2.045, 1.982, 4.464, 2.384, 2.383, 2.324, 2.25, 2.161,
    2.063, 1.961, 1.853, 1.742, 1.63, 1.519, 1.407, 1.296, 1.187, 1.095, 0.9904, 0.8886, 0.7884,
    0.6878, 7.46, 1.298, 0.7089, 0.4056, 0.1341, 0.03149, 0.0102, 0.005037, 0.003214, 0.00235,
    0.001824, 0.001444, 0.001139, 0.0008953, 0.0007007, 0.0005485, 0.0004303, 0.000337,
    0.0002647, 0.0002086, 0.0001643, 0.0001288, 0.0001007, 7.838e-05, 6.088e-05, 4.707e-05,
    3.62e-05, 2.782e-05, 2.139e-05, 1.646e-05, 1.284e-05, 9.891e-06, 7.374e-06, 5.584e-06,
    4.641e-06, 3.736e-06, 2.753e-06, 1.73e-06, 9.832e-07, 4.326e-07, 2.163e-07, 5.899e-08, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 1.721e-08, 0.01633, 0.0404, 0.02578, 0.01436, 0.008561, 0.005473,
    0.003619]
REAL_TEST = [
    5.582, 8.824, 14.76, 13.72, 13.13, 12.79, 12.66, 12.59, 12.55, 12.53, 12.51, 12.49, 12.49,
    12.52, 12.57, 12.65, 12.75, 12.86, 12.97, 13.1, 12.96, 6.601, 6.642, 6.94, 7.186, 7.421,
    7.643, 7.859, 8.07, 8.272, 8.462, 8.635, 8.781, 8.924, 9.05, 9.156, 9.206, 9.255, 9.274,
    9.254, 13.88, 3.611, 3.029, 2.219, 1.225, 0.4897, 0.2159, 0.1239, 0.0781, 0.05081, 0.03491,
    0.02553, 0.01919, 0.0146, 0.01132, 0.008834, 0.006815, 0.005268, 0.004028, 0.003018,
    0.002205, 0.001668, 0.001338, 0.001137, 0.001017, 0.0009424, 0.000866, 0.0007606, 0.0006344,
    0.0005277, 0.0004433, 0.0003818, 0.0003364, 0.0003017, 0.0002748, 0.0002528, 0.0002358,
    0.0002235, 0.0002075, 0.0001955, 0.0001831, 0.000174, 0.0001599, 0.0001434, 0.0001197,
    0.0001096, 9.204e-05, 8.57e-05, 6.018e-05, 4.658e-05, 3.77e-05, 3.138e-05, 2.67e-05,
    0.08906, 0.08713, 0.06017, 0.03825, 0.02609, 0.01909, 0.01442]


def test_nanda_progress_a_one_evaluation_spike_is_not_where_the_loss_falls(tmp_path):
  """The real run: the restricted loss falls 4.70 -> 0.69 nats by step 1000, spikes to 7.46
  at 1025 and is 1.30 at 1050. Measured from that spike as the curve's maximum, its half-fall
  step was 1050, after test's 550 (FAIL); the curve crosses its half-fall line at 375, as it
  does with the two spike evaluations replaced by their neighbours' mean."""
  spikes = (REAL_STEPS.index(525), REAL_STEPS.index(1025))
  r = REAL_RESTRICTED
  smooth = [(r[i - 1] + r[i + 1]) / 2 if i in spikes else x for i, x in enumerate(r)]
  for name, restricted in (("real", REAL_RESTRICTED), ("without the spikes", smooth)):
    row = _progress_row(tmp_path / name, restricted, REAL_TEST, REAL_STEPS)
    assert row["status"] == "PASS" and row["ours"] == "restricted step 375, test step 550", row


@pytest.mark.parametrize("build, ours", [
    (controls.nanda_slow_ar_losses, "restricted step 325, test step 425"),
    (controls.nanda_wavy_losses, "restricted step 250, test step 425"),
])
def test_nanda_progress_a_fall_halves_the_loss(tmp_path, build, ours):
  """Flat losses (4.6 nats) whose noise wanders beyond what the step-to-step changes show:
  AR(1) at rho 0.9 (a draw whose changes read its rho low) and a slow 0.02-nat wave under
  white noise. Each 'fall' was beyond 3 SE (PASS) but a hundredth of its level: FAIL. Control:
  the real cpu run, and a grokking-like pair under the same AR(1) noise, still PASS."""
  import random
  from experiments.claims.grokking_controls import SLOW_AR_SEED, ar1
  build(tmp_path / "null")
  row = nanda_claims.nanda2023(tmp_path / "null", "cpu")["claims"][-1]
  assert row["status"] == "FAIL" and row["ours"] == ours, row
  assert "the loss at least halves" in row["tolerance"] and " of 4.6" in row["note"], row
  real = _progress_row(tmp_path / "real", REAL_RESTRICTED, REAL_TEST, REAL_STEPS)
  assert real["status"] == "PASS" and "restricted 3.170 of 3.172" in real["note"], real
  steps = list(range(0, 1001, 25))
  g = random.Random(SLOW_AR_SEED)
  e_r, e_t = (ar1(g, len(steps), 0.9), ar1(g, len(steps), 0.9))
  sig = lambda s, at: 1 / (1 + math.exp(-(s - at) / 20))
  grok = _progress_row(tmp_path / "grok", [e - 4.59 * sig(s, 400) for s, e in zip(steps, e_r)],
                       [e + 3 * sig(s, 200) - 7.59 * sig(s, 600) for s, e in zip(steps, e_t)],
                       steps)
  assert grok["status"] == "PASS" and grok["ours"] == "restricted step 400, test step 600", grok


def test_despike_keeps_a_curve_and_sets_aside_a_spike():
  """A monotone fall and a rise that turns into a fall are unchanged; a one-evaluation spike
  (up or down) becomes its neighbours' level; an excursion held for two evaluations stays."""
  fall = [4.6, 4.6, 4.5, 4.0, 3.0, 1.5, 0.6, 0.2, 0.1, 0.1]
  turn = [5.5, 8.8, 14.8, 13.7, 13.1, 12.8, 12.7, 12.6, 12.5, 12.5]
  assert nanda_claims.despike(fall) == fall and nanda_claims.despike(turn) == turn
  spiky = [0.9, 0.8, 0.7, 7.5, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
  assert nanda_claims.despike(spiky)[3] == 0.7
  dip = [4.6, 4.6, 4.6, 0.1, 4.6, 4.6, 4.6, 4.6, 4.6, 4.6]
  assert nanda_claims.despike(dip) == [4.6] * 10
  held = [1.0, 0.9, 0.8, 7.5, 7.5, 0.6, 0.5, 0.4, 0.3, 0.2]
  assert nanda_claims.despike(held) == held


def test_nanda_seeds_and_missing_file(tmp_path):
  seeds(tmp_path / "nanda2023" / "run", 3, grokking)
  s = summaries.summarize("nanda2023", "cpu", tmp_path)
  assert s["claims"][0]["status"] == "PASS" and s["claims"][0]["seeds"] == "3/3"
  assert summaries.summarize("nanda2023", "cpu", tmp_path / "none")["error"]


def test_nanda_reads_the_runs_where_the_experiment_is_now(tmp_path):
  """grokking.json stores each run's workdir as it was at training: a moved experiment's
  grokking row read nothing (NOT_SHOWN) and a copy read the original's metrics."""
  import shutil
  grokking(tmp_path / "orig")
  statuses = lambda d: [r["status"] for r in nanda_claims.nanda2023(d, "cpu")["claims"]]
  expected = statuses(tmp_path / "orig")
  shutil.copytree(tmp_path / "orig", tmp_path / "copy")
  (tmp_path / "orig" / "wd_1" / "metrics.jsonl").write_text(json.dumps(
      {"step": 0, "eval_test_accuracy": 0.01}))  # the original edited: a steady non-jump
  assert statuses(tmp_path / "copy") == expected
  shutil.move(tmp_path / "copy", tmp_path / "moved")
  assert statuses(tmp_path / "moved") == expected


def test_nanda_weight_decay_run_must_grok_for_good(tmp_path):
  """A weight-decay run at chance but for one evaluation at 0.96, beside a control that never
  left chance, PASSed 'weight decay 0: no grokking, while the weight-decay run groks' (its 0.95
  step alone); its test accuracy has no lasting rise: FAIL. Control: the fixture's jump."""
  from experiments.claims.control_files import nanda_wd_glitch
  nanda_wd_glitch(tmp_path / "glitch")
  row = nanda_claims.nanda2023(tmp_path / "glitch", "cpu")["claims"][2]
  assert row["status"] == "FAIL" and "(no lasting rise)" in row["ours"], row
  grokking(tmp_path / "ok")
  assert nanda_claims.nanda2023(tmp_path / "ok", "cpu")["claims"][2]["status"] == "PASS"
