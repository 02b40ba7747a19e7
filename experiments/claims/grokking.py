"""Headline claims of Nanda et al. 2023 (progress measures for grokking), checked against the
files experiments/nanda2023.py writes."""
from __future__ import annotations

import json
from pathlib import Path

from experiments.claims.emergence import FLAT, UNTRAINED
from experiments.claims.rows import (NOISE_SIGMAS, claim, existing, load, not_shown, robust_sd,
                                     vs_bar)

TEST_RAMP = "test accuracy rising at a steady rate from the start"
NOISY_LOSSES = "progress measures flat with evaluation noise"
NOISY_MAXIMA = "progress measures flat with evaluation noise, a draw with high maxima"
SPIKY_LOSSES = "progress measures flat with spiky evaluation noise"
WANDERING_LOSSES = "progress measures flat with slowly wandering (AR(1) 0.8) evaluation noise"
SLOW_AR_LOSSES = "progress measures flat with AR(1) 0.9 evaluation noise, a draw read as white"
WAVY_LOSSES = "progress measures flat with a slow 0.02-nat wave under white evaluation noise"
WD_GLITCH = "weight-decay run at 0.96 test accuracy for one evaluation, the control never"
TEST_LAST_GLITCH = "test accuracy at chance but for the last evaluation, at 1"
TEST_RAMP_DIP = "test accuracy rising steadily over 60% of training, one evaluation back at chance"
WD_LAST_GLITCH = "weight-decay run at 1 test accuracy at the last evaluation only, the control never"
CONTROL_NEARLY_GROKS = "the weight-decay-0 control generalising to 0.949, under the 0.95 line"
# Nanda et al. 2023 (REFERENCES.md): train accuracy ~100% within 1-2k of 40k epochs (<= 5%);
# test accuracy jumps near 10-14k epochs.
NANDA_EARLY_FRACTION = 0.05
NANDA_STEPS, NANDA_GROK = 40_000, (10_000, 14_000)
# 'Jumps': test accuracy's 10%->90% rise (of the way from chance to 1, on the rise that
# lasts: experiments/reddy2023.transition) within a fifth of training, as Reddy's 'abrupt'
# row. Nanda's jump (about 10k to 14k of 40k epochs) is a tenth of training; a steady ramp
# spans about 80% of it. The two crossing steps alone passed a ramp from step 0 that crossed
# 0.95 at step 950 with train at 0.99 by step 25.
NANDA_JUMP_FRACTION = 0.2
# 'Dominate': the key frequencies hold most of the embedding's norm^2.
KEY_FREQ_SHARE = 0.5


# Evaluations a curve needs before a jump can be told from a ramp (or a lasting rise from a
# glitch): a start, a middle and an end.
MIN_EVALS = 3


def _test_accuracy_evals(metrics: Path | None) -> list[dict] | None:
  """The evaluation rows of metrics.jsonl with test_accuracy; None without the file."""
  from research.analysis.emergence_plots import read_eval_rows
  if metrics is None or not metrics.is_file():
    return None
  return [r for r in read_eval_rows(metrics) if "test_accuracy" in r]


def _test_accuracy_jump(rows: list[dict] | None, chance: float) -> dict | None:
  """reddy2023.transition of eval_test_accuracy (floor: chance); None without the file or
  with fewer than MIN_EVALS evaluations of it."""
  from experiments.reddy2023 import transition
  if rows is None or len(rows) < MIN_EVALS:
    return None
  return transition({"rows": rows}, "test_accuracy", floor=chance)


def _too_few_evals(rows: list[dict] | None, metrics: Path | None, what: str, preset: str,
                   every, steps: int) -> str:
  """Why the curve cannot tell `what`: no file or metric (rerun nanda2023), or too few
  evaluations, which a rerun of the same preset does not change (the preset's schedule)."""
  from configs.grokking import get_config
  if not rows:
    return f"no eval_test_accuracy curve in {metrics} to tell {what} (rerun nanda2023)"
  cpu = get_config("cpu").train
  return (f"the {preset} preset evaluates test accuracy {len(rows)} time"
          f"{'s' if len(rows) != 1 else ''} (every {every} of {steps} steps, {metrics}); telling "
          f"{what} needs >= {MIN_EVALS}: a preset that evaluates more often shows it (cpu: "
          f"every {cpu.eval_every} of {cpu.num_steps} steps)")


def nanda2023(run_dir: Path, preset: str) -> dict:
  path = run_dir / "grokking.json"
  res = load(path)
  cfg = res["config"]
  steps, p = cfg["train"]["num_steps"], cfg["task"]["modulus"]
  every = cfg["train"].get("eval_every")
  key = f"wd={float(cfg['optim']['weight_decay']):g}"
  main = res["runs"][key]
  control = next((r for k, r in res["runs"].items() if k != key and k.startswith("wd=")), None)
  setup = ("" if preset == "paper" else
           f"{preset} preset: p={p}, lr {cfg['optim']['learning_rate']:g}, {steps} full-batch "
           "steps (Nanda: p=113, lr 1e-3, 40k). ")
  tr, te = main["train_acc_099_step"], main["test_acc_095_step"]
  final = main["final"]
  early = NANDA_EARLY_FRACTION * steps
  # The run's folder where the experiment is now (ROOT/wd_<value>[_final_freqs]): the stored
  # path names where it trained, and a moved or copied workdir read the original's rows.
  metrics = run_dir / Path(main["workdir"]).name / "metrics.jsonl" if main.get("workdir") else None
  evals = _test_accuracy_evals(metrics)
  jump = _test_accuracy_jump(evals, 1 / p)
  too_few = lambda what: _too_few_evals(evals, metrics, what, preset, every, steps)
  win = None if jump is None else jump["in_band"]
  grok_text = "test accuracy jumps to ~100% long after train (grokking)"
  grok_kw = dict(why="'long after': below the paper's smallest ratio (5x), above a tie; 'jumps': "
                 f"a 10%->90% rise within {NANDA_JUMP_FRACTION:.0%} of training (Nanda's is about "
                 "10%; a steady ramp spans about 80%; time between the levels, so a dip back to "
                 "chance does not restart the count)",
                 control=(UNTRAINED, TEST_RAMP, TEST_LAST_GLITCH, TEST_RAMP_DIP))
  if jump is None:
    grok = not_shown(grok_text, "10-14k vs 1-2k epochs", too_few("a jump from a ramp"),
                     **grok_kw)
  else:
    grok = claim(grok_text, "10-14k vs 1-2k epochs",
                 (f"never (max {main['max_test_accuracy']:.3f})" if te is None or tr is None
                  else f"step {te} = {te / max(tr, 1):.1f}x the train step")
                 + ("; no lasting 10%->90% rise" if win is None else
                    f"; {win:.0f} steps between 10% and 90% ({win / steps:.0%} of training)"),
                 f"test >= 0.95 reached, at >= 3x the train step, rising from below 10% of the "
                 f"way from chance to stay >= 90% over the last tenth of training or more, "
                 f"between the two levels for <= {NANDA_JUMP_FRACTION:.0%} of training",
                 te is not None and tr is not None and te >= 3 * max(tr, 1)
                 and win is not None and win <= NANDA_JUMP_FRACTION * steps,
                 setup + "paper ratio about 5-14x; the rise from eval_test_accuracy in "
                 "metrics.jsonl", **grok_kw)
  rows = [
      claim("train accuracy reaches ~100% early", f"<= {NANDA_EARLY_FRACTION:.0%} of training",
            f"never (final {final.get('train_accuracy', float('nan')):.3f})" if tr is None
            else f"step {tr} ({tr / steps:.1%})",
            f"train acc >= 0.99 at <= {NANDA_EARLY_FRACTION:.0%} of training",
            tr is not None and tr <= early,
            setup + (f"evaluated every {every} steps ({every / steps:.1%} of training)"
                     if every else "evaluation interval not recorded")
            + ("" if tr is None or tr <= early else f"; {tr - early:.0f} steps late"),
            why="the paper's 1-2k of 40k epochs", control=UNTRAINED),
      grok,
  ]
  if preset == "paper":
    lo, hi = NANDA_GROK
    rows.append(claim("test accuracy jumps near 10-14k epochs", f"{lo}-{hi}",
                      te if te is not None else "never", f"{lo // 2}-{hi * 3 // 2}",
                      te is not None and lo // 2 <= te <= hi * 3 // 2, "",
                      why="read off a plot (approx.): +/- 50%", control=UNTRAINED))
  text = "weight decay 0: no grokking, while the weight-decay run groks"
  # 'Groks' as the grokking row reads it: the weight-decay run's test accuracy >= 0.95 AND a
  # rise that lasts (reddy2023.transition: from below 10% of the way from chance, ending >= 90%
  # for good). The 0.95 crossing alone PASSed a weight-decay run at chance but for one
  # evaluation at 0.96, beside a control that never reached 0.95. 'No grokking': the control's
  # test accuracy never halfway from chance to 1 (it did not generalise); 'never >= 0.95'
  # alone PASSed a control at 0.949.
  wd0_kw = dict(why="the paper's grokking threshold on the weight-decay run, its rise lasting; "
                "the control never halfway from chance to 1 (Nanda: without weight decay the "
                "model memorises)", control=(UNTRAINED, WD_GLITCH, WD_LAST_GLITCH,
                                             CONTROL_NEARLY_GROKS))
  if control is None:
    rows.append(not_shown(text, "none", "control not run", **wd0_kw))
  elif jump is None:
    rows.append(not_shown(text, "none", too_few("a lasting rise from a glitch"), **wd0_kw))
  else:
    lasts = jump["step_90"] is not None
    half = 1 / p + 0.5 * (1 - 1 / p)
    rows.append(claim(text, "none in 40k epochs", f"max test acc {control['max_test_accuracy']:.3f}"
                      f"; weight-decay run {'never groks' if te is None else f'groks at {te}'}"
                      + ("" if lasts else " (no lasting rise)"),
                      f"the control's test acc always < {half:.3f} (halfway from chance), the "
                      "weight-decay run's reaches 0.95 and stays >= 90% of the way from chance",
                      te is not None and lasts and control["max_test_accuracy"] < half,
                      setup + "within the same number of steps", **wd0_kw))
  share = final.get("key_freq_share")
  nf = len(main["final_key_freqs"])
  uniform = nf / ((p - 1) // 2)
  rows.append(claim("a few key frequencies dominate the embedding", "a few (5 for p=113)",
                    None if share is None else f"{nf} freqs {main['final_key_freqs']}: "
                    f"{vs_bar(share, KEY_FREQ_SHARE)} of the norm^2",
                    f">= {KEY_FREQ_SHARE} of the embedding norm^2",
                    None if share is None else share >= KEY_FREQ_SHARE,
                    setup + f"uniform share would be {uniform:.2f}",
                    why="'dominate' = most of the norm", control=UNTRAINED))
  rows.append(_nanda_progress(metrics, setup))
  return {"claims": rows, "results": [str(path)],
          "figures": existing(run_dir / "grokking.png"), "notes": []}


def despike(values) -> list[float]:
  """The curve with each isolated one-evaluation spike set to the level around it. A spike:
  an evaluation beyond both its neighbours, on one side, by more than NOISE_SIGMAS x eval_noise
  (the SE of a difference of two evaluations) and by more than the neighbours differ from each
  other (it comes back to where it left; a turning point between two levels, such as the top
  of a rise that then falls, is kept); it becomes the median of the three. An end evaluation
  further than that gate from Tukey's end-point value, median(end, next, 3 next - 2
  next-but-one) of the despiked neighbours (R's smooth(endrule="Tukey")), becomes that value.
  A steady curve and plain noise within 3 SE are unchanged; an excursion held for two
  evaluations or more stays, as part of the curve."""
  v = [float(x) for x in values]
  if len(v) < 3:
    return v
  gate = NOISE_SIGMAS * eval_noise(v)
  med = lambda a, b, c: sorted((a, b, c))[1]
  out = list(v)
  for i in range(1, len(v) - 1):
    lo, hi = min(v[i - 1], v[i + 1]), max(v[i - 1], v[i + 1])
    if max(v[i] - hi, lo - v[i]) > max(gate, hi - lo):   # beyond both, by more than both
      out[i] = med(v[i - 1], v[i], v[i + 1])
  for end, nxt, nxt2 in ((0, 1, 2), (-1, -2, -3)):
    tukey = med(v[end], out[nxt], 3 * out[nxt] - 2 * out[nxt2])
    if abs(v[end] - tukey) > gate:
      out[end] = tukey
  return out


def half_drop_step(steps, values):
  """First step, after the curve's maximum, at which it has made half its fall from that
  maximum to its final value; None for a curve that does not fall. _nanda_progress gives it
  the despiked curve (despike)."""
  top = max(range(len(values)), key=lambda i: values[i])
  target = values[-1] + 0.5 * (values[top] - values[-1])
  if values[top] <= values[-1]:
    return None
  return next(steps[i] for i in range(top, len(values)) if values[i] <= target)


def eval_noise(values) -> float:
  """The standard error of a difference of two evaluations: 1.4826 x the median absolute
  deviation of the step-to-step changes around their median (a robust spread, so a curve's
  few steep steps and a steady trend are not counted as noise), as language.phase_window."""
  import numpy as np
  d = np.diff(np.asarray(values, float))
  return robust_sd(d) if len(d) else 0.0


def serial_correlation(values) -> float:
  """Lag-1 autocorrelation rho of a curve's evaluation noise, as an AR(1) process, from the
  lag-1 autocorrelation r of its step-to-step changes (for AR(1) noise r = -(1 - rho) / 2, so
  rho = 1 + 2 r; a level shift or a steady trend moves r not at all, a smooth fall raises it,
  which errs strict); clipped to [0, MAX_RHO] (white noise, or none, is rho 0)."""
  import numpy as np
  d = np.diff(np.asarray(values, float))
  d = d - np.median(d)
  energy = float(d @ d)
  if len(d) < 4 or energy == 0:
    return 0.0
  return min(max(1 + 2 * float(d[:-1] @ d[1:]) / energy, 0.0), MAX_RHO)


# A loss 'falls' when its level after the half-fall step is at most half its level before
# (_nanda_progress): a fall of MIN_FALL_SHARE or more of where it starts.
MIN_FALL_SHARE = 0.5
MAX_RHO = 0.95  # the standard error grows at most sqrt(1 + rho) / (1 - rho) = 27.9-fold
# The standard error of a median of n evaluations is MEDIAN_SE / sqrt(n) of one evaluation's
# sd (Gaussian, large n: sqrt(pi / 2)); at small n it over-states it (n = 1, 2, 3: 1.25, 0.89,
# 0.72 against the exact 1, 0.71, 0.67), so it errs strict.
MEDIAN_SE = 1.2533


def _fall(steps, values, at, noise=None) -> tuple[float, float, float]:
  """(the fall of a curve at its half-fall step `at`: the median of its evaluations before
  `at` minus the median of those from `at` on, the standard error of that difference, the
  median before: the level the fall starts from).
  The fall from the curve's maximum to its last value compared a selected extreme (the
  largest of n noisy evaluations, about sqrt(2 ln n) sd above the level) and one evaluation
  with the noise of two plain ones: flat losses plus Gaussian noise passed 3 draws in 2,000
  (41 or 101 evaluations), plus noise with a 5% chance of a 10-sd spike 1 in 5 (41) to 2 in 5
  (101). Medians of the two sides of the fall are levels, not points: neither an extreme nor
  a spike moves them (0 in 2,000 of either; a grokking-like pair passes as before). A side of
  one evaluation is no level: no fall (flat losses with a spike at restricted's first and
  test's last evaluation passed every draw on that one-evaluation 'level'). `noise`: the
  eval_noise of the raw evaluations, where `values` is the despiked curve (despike).
  Noise that wanders (AR(1), serial_correlation rho of the despiked curve) has a level sd of
  1 / sqrt(1 - rho) times what its step-to-step changes show, and a median of n evaluations
  holds n (1 - rho) / (1 + rho) independent ones: both scale the SE, by sqrt(1 + rho) /
  (1 - rho) in all (at rho 0 as before). Flat losses plus AR(1) noise passed 2% of draws at
  rho 0.6, 8% at 0.8, 12% at 0.9 (500 draws each, 100 evaluations); none now, and
  grokking-like pairs under the same noise and the real cpu runs still pass."""
  import numpy as np
  before = [v for s, v in zip(steps, values) if at is not None and s < at]
  after = [v for s, v in zip(steps, values) if at is not None and s >= at]
  rho = serial_correlation(values)
  sd = (eval_noise(values) if noise is None else noise) / np.sqrt(2)  # SE of a difference of 2
  sd = sd / np.sqrt(1 - rho)
  if len(before) < 2 or len(after) < 2:
    return 0.0, sd, 0.0
  se = MEDIAN_SE * sd * np.sqrt((1 + rho) / (1 - rho)) * np.sqrt(1 / len(before) + 1 / len(after))
  level = float(np.median(before))
  return level - float(np.median(after)), float(se), level


def _nanda_progress(metrics: Path | None, setup: str) -> dict:
  text = "restricted loss falls before test loss (progress measures)"
  kw = dict(why=f"an ordering of two steps, each on a fall beyond {NOISE_SIGMAS:g} SE of the "
            "evaluation noise, more than one evaluation interval apart: flat losses plus noise "
            "(sd 0.02) passed about half the draws; the fall between the levels on either side "
            "of the step, not from the maximum to the last point (3 in 2,000 draws passed that); "
            "a one-evaluation spike is neither the maximum nor a level (a real cpu run's, after "
            "its restricted loss had fallen, put that fall after test's); a fall halves the "
            "loss (noise that wanders slowly moved a hundredth of it beyond 3 SE)",
            control=(FLAT, NOISY_LOSSES, NOISY_MAXIMA, SPIKY_LOSSES, WANDERING_LOSSES,
                     SLOW_AR_LOSSES, WAVY_LOSSES))
  if metrics is None or not metrics.is_file():
    return not_shown(text, "before", f"no {metrics}", **kw)
  rows = [json.loads(line) for line in metrics.read_text().splitlines()]
  rows = [r for r in rows if "eval_restricted_loss" in r and "eval_test_loss" in r]
  if len(rows) < MIN_EVALS:
    return not_shown(text, "before", f"{len(rows)} evaluations of the progress measures in "
                     f"{metrics}: ordering their falls needs >= {MIN_EVALS} (the preset's "
                     "evaluation schedule, not a missing file: a rerun of it gives as few)", **kw)
  steps = [r["step"] for r in rows]
  restricted = [r["eval_restricted_loss"] for r in rows]
  test = [r["eval_test_loss"] for r in rows]
  # The curves with isolated one-evaluation spikes set to the level around them (despike):
  # a real cpu run (seed 0) had its restricted loss spike 0.69 -> 7.46 -> 1.30 nats at step
  # 1025 (train loss 0.001 -> 3.07 with it) after falling from 4.70 to 0.69; the spike was
  # the curve's maximum, so the half-fall step was measured from it (1050, after test's 550)
  # where the curve crosses its half-fall line at 375. The falls are the levels of the
  # despiked curves too: a spike is no level on either side of the step.
  levels_r, levels_t = despike(restricted), despike(test)
  t_restricted, t_test = half_drop_step(steps, levels_r), half_drop_step(steps, levels_t)
  # A half-fall step means something only on a fall beyond the evaluation noise (_fall: the
  # levels either side of it; the noise of the raw evaluations), and an ordering only when the
  # two steps are more than one evaluation interval apart (a single interval is where noise
  # moves a crossing).
  f_r, n_r, l_r = _fall(steps, levels_r, t_restricted, eval_noise(restricted))
  f_t, n_t, l_t = _fall(steps, levels_t, t_test, eval_noise(test))
  interval = sorted(b - a for a, b in zip(steps, steps[1:]))[(len(steps) - 1) // 2]
  # And each a fall of the loss, not a wobble of it: the level after is at most half the level
  # before (MIN_FALL_SHARE). Beyond the noise is not enough where the noise is no model of the
  # wobble: flat losses (4.6 nats) with a slow wave (0.02 nats, one period per run) plus white
  # noise passed 8% of draws, a random walk 0.6%, AR(1) noise at rho 0.95 0.15% (2,000 each,
  # 100 evaluations): each moves a few hundredths of a nat, 1% of the level; none passes now.
  # Nanda's falls, and the real cpu run's, are nearly all of it (seed 0: restricted 3.170 of
  # 3.172 nats, test 12.637 of 12.651).
  resolved = (f_r > NOISE_SIGMAS * n_r and f_t > NOISE_SIGMAS * n_t
              and f_r >= MIN_FALL_SHARE * l_r and f_t >= MIN_FALL_SHARE * l_t)
  name = lambda t: "never falls" if t is None else f"step {t}"
  return claim(text, "before", f"restricted {name(t_restricted)}, test {name(t_test)}",
               f"the step where each has made half its fall (one-evaluation spikes set "
               f"aside): restricted < test by more than one evaluation interval ({interval}); "
               f"each fall (median of the evaluations before that step minus median from it "
               f"on, 2 or more each side) > {NOISE_SIGMAS:g} SE and >= {MIN_FALL_SHARE:.0%} "
               "of the level before it (the loss at least halves)",
               t_restricted is not None and t_test is not None and resolved
               and t_test - t_restricted > interval,
               setup + "restricted loss: the loss with only the key Fourier frequencies kept "
               f"(Nanda); half-fall steps from the evaluations in metrics.jsonl; falls: "
               f"restricted {f_r:.3f} of {l_r:.3f} (SE {n_r:.3f}), test {f_t:.3f} of {l_t:.3f} "
               f"(SE {n_t:.3f})", **kw)
