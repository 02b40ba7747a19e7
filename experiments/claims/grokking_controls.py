"""Nanda's negative controls for the progress-measure row (experiments/claims/grokking.py
_nanda_progress): restricted and test loss flat at 4.6 nats plus evaluation noise, in fixed
draws that an earlier rule passed (the fall from a curve's maximum, the largest of 41 noisy
evaluations, not a level; the noise read off the step-to-step changes; a fall beyond the noise
but a hundredth of the level). Written through control_files.nanda_untrained;
controls.py names and scores them."""
from __future__ import annotations

import json
import random
from pathlib import Path

from experiments.claims.control_files import STEPS, _write, nanda_untrained

# random.Random(seed) draws restricted's 41 evaluations, then test's: two of the draws that
# passed the point-to-point fall (3 in 2,000 Gaussian draws, about 1 in 5 spiky ones).
MAXIMA_SEED, SPIKY_SEED = 1017, 5
# One of the AR(1) draws (rho 0.8, sd 0.02; 23 of 400 passed) that passed when the noise was
# read off the step-to-step changes alone.
WANDERING_SEED = 1
# Draws that passed with the fall gated by the noise alone, the noise's serial correlation
# allowed for (grokking._fall): AR(1) at rho 0.9, and a slow wave under white noise.
SLOW_AR_SEED, WAVE_SEED = 879, 22


def _flat(run_dir: Path, seed: int, noise) -> None:
  draw = random.Random(seed)
  steps = range(0, STEPS + 1, 25)
  restricted = {s: 4.6 + noise(draw) for s in steps}
  test = {s: 4.6 + noise(draw) for s in steps}
  nanda_untrained(run_dir, losses=lambda s: (restricted[s], test[s]))


def nanda_noisy_maxima(run_dir: Path) -> None:
  """Flat losses plus Gaussian noise (sd 0.02), a draw whose maxima sit high: restricted's
  half-fall step 500 before test's 675, each 'fall' from the maximum to the last value
  3.1 x the evaluation noise (0.071 and 0.073 nats against 0.023), so it passed; the levels
  either side of each step differ by noise."""
  _flat(run_dir, MAXIMA_SEED, lambda d: d.gauss(0.0, 0.02))


def nanda_spiky_losses(run_dir: Path) -> None:
  """Flat losses plus Gaussian noise (sd 0.02) with a 5% chance per evaluation of a 0.2-nat
  spike up or down: a spike is a maximum (or a last value) far beyond the median-based noise,
  and such draws passed 1 in 5; the medians either side of the step ignore it."""
  _flat(run_dir, SPIKY_SEED, lambda d: d.gauss(0.0, 0.02) + (
      0.2 * d.choice((-1, 1)) if d.random() < 0.05 else 0.0))


def nanda_wandering_losses(run_dir: Path) -> None:
  """Flat losses plus slowly wandering noise (AR(1), lag-1 correlation 0.8, sd 0.02): the
  step-to-step changes show a third of its level's spread, and medians of neighbouring
  evaluations move together, so the two sides of a half-fall step differed by 3 SE of that
  reading (restricted 0.018 nats at step 75 vs SE 0.006, test 0.022 at 900): it passed."""
  import math
  draw = random.Random(WANDERING_SEED)
  steps = list(range(0, STEPS + 1, 25))

  def wander():
    x, out = draw.gauss(0.0, 0.02), []
    for _ in steps:
      out.append(4.6 + x)
      x = 0.8 * x + math.sqrt(1 - 0.8 ** 2) * draw.gauss(0.0, 0.02)
    return dict(zip(steps, out))
  restricted, test = wander(), wander()
  nanda_untrained(run_dir, losses=lambda s: (restricted[s], test[s]))


def _drawn(run_dir: Path, seed: int, curve) -> None:
  """Flat losses plus curve(draw, n): n evaluations of noise, restricted's drawn first."""
  draw = random.Random(seed)
  steps = list(range(0, STEPS + 1, 25))
  restricted, test = (dict(zip(steps, curve(draw, len(steps)))) for _ in range(2))
  nanda_untrained(run_dir, losses=lambda s: (restricted[s], test[s]))


def ar1(draw: random.Random, n: int, rho: float, sd: float = 0.02) -> list[float]:
  """n evaluations at 4.6 nats plus stationary AR(1) noise (lag-1 correlation rho, sd sd)."""
  import math
  x, out = draw.gauss(0.0, sd), []
  for _ in range(n):
    out.append(4.6 + x)
    x = rho * x + math.sqrt(1 - rho ** 2) * draw.gauss(0.0, sd)
  return out


def nanda_slow_ar_losses(run_dir: Path) -> None:
  """Flat losses plus AR(1) noise at rho 0.9 (sd 0.02), a draw whose rho the curve's changes
  read low: restricted's 0.042-nat fall at step 325 against SE 0.006, test's 0.069 at 425
  against 0.015, so it passed; each fall is 1% of its 4.6-nat level, no halving."""
  _drawn(run_dir, SLOW_AR_SEED, lambda d, n: ar1(d, n, 0.9))


def nanda_wavy_losses(run_dir: Path) -> None:
  """Flat losses with a slow wave (0.02 nats, one period per run, a random phase) plus white
  noise (sd 0.01): the step-to-step changes see the white noise only, so the wave's 0.02-nat
  'falls' (restricted at step 250, test at 425) were 4-6 SE; each is 0.5% of its level."""
  import math

  def wave(d, n):
    phase = d.uniform(0, 2 * math.pi)
    return [4.6 + 0.02 * math.sin(2 * math.pi * i / n + phase) + d.gauss(0.0, 0.01)
            for i in range(n)]
  _drawn(run_dir, WAVE_SEED, wave)


def nanda_test_last_glitch(run_dir: Path) -> None:
  """Train accuracy >= 0.99 by step 25, test accuracy at chance but for the last evaluation, at
  1: with nothing after it to undo the rise, 'the rise that lasts' was a jump of 2.5%."""
  nanda_untrained(run_dir, lambda s: 1.0 if s == STEPS else 1 / 97, train_step=25)


def nanda_test_ramp_dip(run_dir: Path) -> None:
  """Train accuracy >= 0.99 by step 25, test accuracy rising steadily from chance to 1 over the
  first 60% of training, one evaluation back at chance at 70%: measured from the dip, the
  rise was 2% of training."""
  top, dip = 0.6 * STEPS, 0.7 * STEPS
  nanda_untrained(run_dir, lambda s: 1 / 97 if s == dip else 1 / 97 + (1 - 1 / 97) * min(
      1.0, s / top), train_step=25)


def nanda_wd_last_glitch(run_dir: Path) -> None:
  """The project's weight-decay glitch moved to the last evaluation (test accuracy 1 there,
  chance before), the control never above chance."""
  nanda_untrained(run_dir, lambda s: 1.0 if s == STEPS else 1 / 97, train_step=25)
  _control_max(run_dir, 1 / 97)


def nanda_control_nearly_groks(run_dir: Path) -> None:
  """The weight-decay run jumping from chance to 1 at 40% of training (a real grok), the
  weight-decay-0 control generalising to 0.949 test accuracy: 'never >= 0.95' read it as not
  grokking."""
  nanda_untrained(run_dir, lambda s: 1.0 if s >= 0.4 * STEPS else 1 / 97, train_step=25)
  _control_max(run_dir, 0.949)


def _control_max(run_dir: Path, acc: float) -> None:
  path = run_dir / "grokking.json"
  res = json.loads(path.read_text())
  res["runs"]["wd=0"] |= {"test_acc_095_step": None, "max_test_accuracy": acc}
  _write(path, res)
