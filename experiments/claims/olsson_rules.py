"""Olsson et al. 2022's curve rules, shared by the rows of experiments/claims/olsson.py: the
phase-change window found from the ICL-score curve and what tells it from the curves that also
give one (an exponential decay, evaluation noise)."""
from __future__ import annotations

from experiments.claims.rows import MOST_OF_DROP, NOISE_SIGMAS, robust_sd

# A window step is "steep" while the ICL score falls at least this fraction of its fastest rate.
STEEP_FRACTION = 0.25
# Evaluations after the window whose median must keep the drop: a median of 3 outvotes one.
MIN_AFTER = 3
# A head "rises" by this much prefix-matching score (research/probes/attention.rising_heads'
# default, the experiment's --min_rise).
MIN_RISE = 0.1


def training_steps(steps, num_steps=None) -> float:
  """The run's length in steps, what "X% of training" divides by: its recorded num_steps, or
  where a file has none the last evaluation's step (training starts at step 0). Not the
  evaluated span (last - first evaluation): tiny's evaluations at steps 10 and 20 of 20 made a
  10-20 window '100% of training' where the experiment printed 0.50 of it; Olsson's phase
  change is a small fraction of training, not of the evaluated steps."""
  return float(max(num_steps or 0, steps[-1], 1))


def share_text(part: float, total: float, what: str = "drop") -> str:
  """A window's share of the run's net drop, or 'no net drop' where the run did not fall (the
  share is then 0 by definition, and '-0.030 of -0.030 nats (0%)' read as a contradiction)."""
  return f"{part / total:.0%}" if total > 0 else f"no net {what}"


def phase_window(steps, icl, num_steps=None) -> dict | None:
  """The phase change found from the ICL-score curve: the contiguous span around its steepest
  fall where the score falls at >= STEEP_FRACTION of that fastest rate; `span`: its length as a
  fraction of training (training_steps(steps, num_steps)); with the drop it
  carries, that drop's fraction of the whole run's (first to last evaluation), and `noise`:
  the standard error of a difference of two evaluations, from the step-to-step changes
  outside the window (a robust spread around their median, so a steady trend is not noise;
  None with fewer than 4 of them); `after`: how many evaluations follow the window's end and
  `kept_after`: how far below the window's start their median stays (None without any)."""
  import numpy as np
  rates = [(icl[i] - icl[i + 1]) / (steps[i + 1] - steps[i]) for i in range(len(icl) - 1)]
  total = icl[0] - icl[-1]
  if not rates or max(rates) <= 0:
    return None
  top = max(range(len(rates)), key=lambda i: rates[i])
  lo = hi = top
  while lo > 0 and rates[lo - 1] >= STEEP_FRACTION * rates[top]:
    lo -= 1
  while hi < len(rates) - 1 and rates[hi + 1] >= STEEP_FRACTION * rates[top]:
    hi += 1
  drop = icl[lo] - icl[hi + 1]
  noise = step_noise(icl, lo, hi + 1)
  return {"start_step": steps[lo], "end_step": steps[hi + 1], "drop": drop, "total_drop": total,
          "share": drop / total if total > 0 else 0.0,
          "span": (steps[hi + 1] - steps[lo]) / training_steps(steps, num_steps),
          "at_first_eval": lo == 0, "noise": noise, "after": len(icl) - hi - 2,
          "kept_after": (icl[lo] - float(np.median(icl[hi + 2:]))) if hi + 2 < len(icl) else None}


def step_noise(values, lo: int = 0, hi: int = 0) -> float | None:
  """The standard error of a difference of two evaluations, from the curve's step-to-step
  changes outside evaluations lo..hi (a window): 1.4826 x their MAD, the normal standard
  deviation robust to a few jumps, around their median, so a steady trend is not noise; None
  with fewer than 4 of them."""
  import numpy as np
  d = np.diff(np.asarray(values, float))
  outside = d[[i for i in range(len(d)) if not lo <= i < hi]]
  return robust_sd(outside) if len(outside) >= 4 else None


def loss_at(curve: dict, step: float) -> float:
  import numpy as np
  return float(np.interp(step, curve["step"], curve["loss"]))


def drop_in_window(w: dict | None, t: dict) -> bool:
  """A sharp drop, most of the run's, in a short window (what a 1-layer model must not show)."""
  return (w is not None and w["drop"] >= t["icl_drop_2l"] and w["share"] > MOST_OF_DROP
          and w["span"] < t["window_max_fraction"])


def largest_fall(values) -> float:
  """The most a curve falls from an earlier evaluation to a later one (peak to later trough):
  its first-to-last fall for a curve that keeps what it loses, more for one that gives it back."""
  import numpy as np
  v = np.asarray(values, float)
  return float(np.max(np.maximum.accumulate(v) - v)) if len(v) else 0.0


def sharpest_drop(steps, values, max_fraction: float, num_steps=None) -> float:
  """The most a curve falls beyond its steady course within any span of under max_fraction of
  training (training_steps): the largest values[i] - values[j] - rate x (steps[j] - steps[i]) over i < j that
  close together, `rate` the median step-to-step fall per step (a steady trend, falling or
  rising, is no drop; a drop given back later is one); 0 for a curve that never falls."""
  import numpy as np
  s, v = np.asarray(steps, float), np.asarray(values, float)
  if len(v) < 2:
    return 0.0
  rate = float(np.median(-np.diff(v) / np.diff(s)))
  i, j = np.triu_indices(len(v), k=1)
  close = s[j] - s[i] < max_fraction * training_steps(steps, num_steps)
  falls = v[i] - v[j] - rate * (s[j] - s[i])
  return max(float(np.max(falls[close])) if close.any() else 0.0, 0.0)


def shows_drop(w: dict | None, t: dict, steps, values, num_steps=None) -> bool:
  """drop_in_window, or the same sharp drop given back later, or hidden beside a steeper step
  or in a trend: a window drop of >= the 2-layer threshold in a short window, most of the
  curve's largest fall; or a sharpest_drop of >= that threshold in a window shorter than the
  2-layer's longest. drop_in_window's share is of the first-to-last fall, so a 1-layer ICL
  score that fell 0.6 nats in 10% of training and climbed back (share 0) showed 'neither' (a
  transient drop is still one the model showed). phase_window sees only the span around the
  steepest single step: the same drop and climb beside a one-evaluation 0.28-nat dip, or on a
  curve trending down 1.5 nats over the run (the drop 47% of the largest fall), passed."""
  return drop_in_window(w, t) or (
      w is not None and w["drop"] >= t["icl_drop_2l"] and w["span"] < t["window_max_fraction"]
      and w["drop"] > MOST_OF_DROP * largest_fall(values)) or (
      sharpest_drop(steps, values, t["window_max_fraction"], num_steps) >= t["icl_drop_2l"])


def is_phase_change(w: dict | None, t: dict) -> bool:
  """drop_in_window, told from what else gives one: the window does not start at the first
  evaluation (early training's fast fall, an exponential decay, would pass), the run keeps at
  least half the window's drop (noise that falls and climbs back had 'share' 281%), and the
  drop is beyond NOISE_SIGMAS standard errors (a flat noisy curve passed 27% of draws at sd
  0.1). And the score is seen to stay down: Olsson's phase change leaves the model with its
  in-context learning for the rest of training, but a score flat at 0 that dips 1 nat at the
  last evaluation only passed (window 975-1000, noise 0, 'kept' by the last evaluation itself,
  the one in the window): now >= MIN_AFTER evaluations follow the window, their median keeping
  >= MOST_OF_DROP of its drop (one glitch cannot outvote them)."""
  return (drop_in_window(w, t) and not w["at_first_eval"]
          and w["total_drop"] >= MOST_OF_DROP * w["drop"]
          and w["after"] >= MIN_AFTER and w["kept_after"] >= MOST_OF_DROP * w["drop"]
          and w["noise"] is not None and w["drop"] > NOISE_SIGMAS * w["noise"])


def end_level(values) -> float:
  """Where a curve ends: the median of its last MIN_AFTER evaluations (one glitch at the last
  evaluation does not move it)."""
  import numpy as np
  return float(np.median(np.asarray(values[-MIN_AFTER:], float)))


def curve_noise(steps, values) -> float | None:
  """The standard error of a difference of two evaluations of a curve: phase_window's (from
  the step-to-step changes outside its window), or where it has none (no falling window, or
  fewer than 4 changes outside it), 1.4826 x the MAD of all its step-to-step changes; None with
  fewer than 4 changes."""
  w = phase_window(steps, values)
  return w["noise"] if w is not None and w["noise"] is not None else step_noise(values)


def heads_form(prefix_curve: dict, heads, steps, w: dict) -> dict:
  """How the ablated heads' summed prefix-matching score moves (prefix_curve: head -> score
  per evaluation of `steps`): `rise` over the phase window w, `total` over the run (first to
  last evaluation), `kept` by the last evaluation above the window's start; `forms`: a rise of
  >= MIN_RISE holding over MOST_OF_DROP of the whole run's and kept to >= MOST_OF_DROP of it
  (Olsson: induction heads form in the phase change, and stay)."""
  import numpy as np
  p = np.sum([np.asarray(prefix_curve[h], float) for h in heads], axis=0)
  lo, hi = list(steps).index(w["start_step"]), list(steps).index(w["end_step"])
  rise, total, kept = float(p[hi] - p[lo]), float(p[-1] - p[0]), float(p[-1] - p[lo])
  return {"rise": rise, "total": total, "kept": kept,
          "forms": bool(rise >= MIN_RISE and rise > MOST_OF_DROP * total
                        and kept >= MOST_OF_DROP * rise)}
