"""The ladder's hand-built negative controls (experiments/claims/controls.py lists them in
CONTROLS): ladder.json files for a 4-size ladder written through the experiment's own
analysis (experiments/ladder.ladder_table), one curve per claim replaced by its null."""
from __future__ import annotations

import math
from pathlib import Path

from research.workdir import write_json

STEPS = 1000  # training length of every hand-built curve (controls.py uses it too)

LADDER_CHANCE = {"exact_match": 0.0, "token_accuracy": 0.1, "edit_distance": 3.0,
                 "log_likelihood": -9.0, "brier": 0.95}


def ladder_files(run_dir: Path, *, icl, prefix, loss, few_shot, sizes: int = 4,
                 num_steps: int = STEPS) -> dict:
  """The ladder's ladder.json for `sizes` sizes (2 layers and up, 1e5 x 4^i parameters) with
  log-spaced checkpoints, through the experiment's own analysis (experiments/ladder.py
  ladder_table). Curves of (size index, step, compute): icl -> ICL score (nats, SE 0.01),
  prefix -> the top head's prefix score, loss -> loss; few_shot(i, step, compute, task, k,
  metric) -> 0 (chance) .. 1 (perfect), with a 95% half-width of 2% of that span."""
  from experiments.ladder import ladder_table
  from research.analysis.emergence_plots import PERFECT
  from research.checkpoint import log_spaced_steps
  grid, tokens_per_step = 10, 32 * 128
  steps = sorted(set(log_spaced_steps(num_steps, grid)) | {num_steps})
  out = []
  for i in range(sizes):
    n = 100_000 * 4 ** i
    rows = []
    for step in steps:
      c = 6.0 * n * step * tokens_per_step
      cell = lambda task, k, m: (lambda v, h: [v, v - h, v + h])(
          LADDER_CHANCE[m] + (PERFECT[m] - LADDER_CHANCE[m]) * few_shot(i, step, c, task, k, m),
          0.02 * abs(PERFECT[m] - LADDER_CHANCE[m]))
      rows.append({
          "step": step, "tokens": step * tokens_per_step, "loss": loss(i, step, c),
          "icl_score": icl(i, step, c), "icl_score_se": 0.01, "prefix_baseline": 0.04,
          "heads": {"L0H0": {"prefix": 0.03}, "L1H0": {"prefix": prefix(i, step, c)}},
          "few_shot": {t: {str(k): {m: cell(t, k, m) for m in LADDER_CHANCE}
                           | {"chance": dict(LADDER_CHANCE)} for k in (0, 1, 2, 4, 8)}
                       for t in ("copy", "add", "lookup")}})
    out.append({"run": f"size{i}", "num_params": n, "num_layers": 2 + 2 * (i // 2),
                "width": 32 * (i + 1), "num_heads": 2, "num_steps": num_steps,
                "steps_per_call": grid, "rows": rows})
  res = {"preset": "tiny", "seed": 0, "few_shot_prompts": 100} | ladder_table(out)
  run_dir.mkdir(parents=True, exist_ok=True)
  write_json(run_dir / "ladder.json", res, indent=1)
  return res


def ladder_untrained(run_dir: Path) -> None:
  """Every checkpoint at initialisation: loss at log(259), no context use, no head
  specialised, every few-shot score at chance; loss and ICL score jitter by a little
  evaluation noise (so the frontier has points to fit)."""
  noise = lambda i, s: math.sin(7 * i + s)
  ladder_files(run_dir, icl=lambda i, s, c: 0.005 * noise(i, s), prefix=lambda i, s, c: 0.05,
               loss=lambda i, s, c: math.log(259) + 0.01 * noise(i, s),
               few_shot=lambda *a: 0.0)


def ladder_trained(run_dir: Path, **curves) -> None:
  """A ladder that shows every claim (the tests' PASS case; each control below replaces one
  curve): the ICL score and the top prefix head change together around step 130, loss a
  power law in compute, per-token skill growing with compute and k, exact match ~ its 4th
  power."""
  sig = lambda s: 1 / (1 + math.exp(-6 * math.log(s / 130)))
  skill = lambda c, k: min(1.0, (c / 3e13) ** 0.5) * (0.3 + 0.7 * k / 8)
  em = lambda i, s, c, t, k, m: skill(c, k) ** (4 if m == "exact_match" else 1)
  ladder_files(run_dir, **({"icl": lambda i, s, c: -sig(s), "prefix": lambda i, s, c: 0.05 +
                            0.6 * sig(s), "loss": lambda i, s, c: 1.5 + 30 * c ** -0.15,
                            "few_shot": em} | curves))


def ladder_ramp(run_dir: Path) -> None:
  """The ICL score (and the prefix head) changing at one steady rate over the whole run."""
  ladder_trained(run_dir, icl=lambda i, s, c: -s / STEPS,
                 prefix=lambda i, s, c: 0.05 + 0.6 * s / STEPS)


def ladder_prefix_ramp(run_dir: Path) -> None:
  """The ICL score's phase change of ladder_trained (around step 130), the top prefix head
  rising at one steady rate over the whole run, 0.05 + 0.6 s / 1000: it rises 0.11 over the
  70-260 window and ends it at 5x uniform attention (the old rule's PASS), yet holds only the
  window's 19% share of its rise: no head forms in the phase change."""
  ladder_trained(run_dir, prefix=lambda i, s, c: 0.05 + 0.6 * s / STEPS)


def ladder_line(run_dir: Path) -> None:
  """The loss falling as a straight line in ln compute (its frontier spans about 4 decades),
  by 24% of its first value: a falling curve that is no power law, which a power law with a
  small alpha (0.03) and E at 0 still fits within 0.9% at every point (26 of them)."""
  ladder_trained(run_dir, loss=lambda i, s, c: 3.0 - 0.05 * math.log(c))


def ladder_flat_k(run_dir: Path) -> None:
  """Few-shot scores above chance but the same at every k."""
  ladder_trained(run_dir, few_shot=lambda i, s, c, t, k, m: 0.5)


def ladder_last_k(run_dir: Path) -> None:
  """Few-shot scores at chance at every k but the largest (8), where they are ladder_trained's:
  exact match 1.00 at k = 8 at the larger sizes' last checkpoint, 0 at k = 0-4. A rise at one
  k, not a climb across k."""
  skill = lambda c: min(1.0, (c / 3e13) ** 0.5)
  ladder_trained(run_dir, few_shot=lambda i, s, c, t, k, m: 0.0 if k < 8 else skill(c) ** (
      4 if m == "exact_match" else 1))


def ladder_same(run_dir: Path) -> None:
  """Every metric leaves chance at the same compute (exact match no later than the others)."""
  ladder_trained(run_dir, few_shot=lambda i, s, c, t, k, m: 0.5 if c >= 1e13 else 0.0)


def ladder_decay(run_dir: Path) -> None:
  """The ICL score falling fastest from the first checkpoint and levelling off, -(1 -
  exp(-s / 40)) (time constant 4% of training): on log-spaced checkpoints an early window
  carries most of the drop in a few % of the steps, with no phase change in it."""
  ladder_trained(run_dir, icl=lambda i, s, c: -(1 - math.exp(-s / 40)))


def ladder_never(run_dir: Path) -> None:
  """Exact match at chance at every checkpoint, the continuous metrics a fifth of the way from
  chance to perfect at every one (nothing emerges; exact match never leaves chance)."""
  ladder_trained(run_dir, few_shot=lambda i, s, c, t, k, m: 0.0 if m == "exact_match" else 0.2)
