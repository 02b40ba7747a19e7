"""Nanda's negative controls for the progress-measure row (experiments/claims/grokking.py
_nanda_progress): restricted and test loss flat at 4.6 nats plus evaluation noise, in fixed
draws that the fall from a curve's maximum to its last point passed (its maximum is the
largest of 41 noisy evaluations, not a level). Written through control_files.nanda_untrained;
controls.py names and scores them."""
from __future__ import annotations

import random
from pathlib import Path

from experiments.claims.control_files import STEPS, nanda_untrained

# random.Random(seed) draws restricted's 41 evaluations, then test's: two of the draws that
# passed the point-to-point fall (3 in 2,000 Gaussian draws, about 1 in 5 spiky ones).
MAXIMA_SEED, SPIKY_SEED = 1017, 5
# One of the AR(1) draws (rho 0.8, sd 0.02; 23 of 400 passed) that passed when the noise was
# read off the step-to-step changes alone.
WANDERING_SEED = 1


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
