"""Reddy 2023: abrupt emergence of in-context classification, and what data it needs.

  python -m experiments.reddy2023 --preset=cpu --workdir=runs/reddy2023   # + the K and B sweeps
  python -m experiments.reddy2023 --preset=cpu --workdir=runs/reddy2023 --sweeps=   # no sweeps
  python -m experiments.reddy2023 --preset=paper --workdir=runs/reddy_paper

Runs (each `research.train.train_and_evaluate` on configs/bursty_classification.py,
resumed / skipped when its workdir already holds a finished run):
  transformer   the preset (Reddy's data: D=63, K=512, L=32, N=8, eps=0.1, B=2)
  control_b0    the same with burstiness 0 (no class repeats in a context)
  lstm          the LSTM whose width matches the Transformer's parameter count
and, on the cpu and paper presets, the K (classes) and B (burstiness) sweeps.
Printed: the step where ICL accuracy crosses 0.5 and the width of its 10%->90% window,
the final probe accuracies (>= 2000 sequences) of every run, and the claims' verdicts on
this seed as `reproduce reddy2023` scores them (common.print_verdicts). Writes WORKDIR/results.json
and, in WORKDIR/figures, the training curve with the attention progress measures and the
K / B sweeps.
"""
from __future__ import annotations

from pathlib import Path

from absl import flags

from configs import bursty_classification
from experiments import common
from research import cli
from research.analysis import classification_plots as cplots
from research.errors import InputError
from research.workdir import read_json, write_json

PAPER = "Reddy 2023, abrupt emergence of in-context classification"
PRESETS = {"tiny": "3 runs of the tiny config",
           "cpu": "3 runs + the K and B sweeps (8 more runs)",
           "paper": "1e5 SGD steps per run, + the K and B sweeps: accelerator or overnight"}
RUNS = {"transformer": {}, "control_b0": {"task.burstiness": 0}, "lstm": {"model.name": "lstm"}}
SWEEPS = {"K": ("classes", "task.num_classes"), "B": ("burstiness", "task.burstiness")}


def crossing(steps, values, level: float):
  """First step where `values` reaches `level`, linearly interpolated; None if never."""
  prev = None
  for s, v in zip(steps, values):
    if v >= level:
      if prev is None or prev[1] >= level:
        return float(s)
      (s0, v0) = prev
      return float(s0 + (level - v0) * (s - s0) / (v - v0))
    prev = (s, v)
  return None


# The rise must be seen to last: the curve stays at the 90% level over at least this share of
# the run's steps after reaching it for good. Without it a rise at the last evaluation (one
# bad evaluation, nothing after it to undo it) was a jump.
LASTING_FRACTION = 0.1


def lasting_rise(steps, values, lo: float, hi: float):
  """(steps, values) from the last point below `lo` before the curve reaches `hi` for good
  (it stays >= hi to the last evaluation, over at least LASTING_FRACTION of the steps); None
  when it ends below hi, stays there for less, or has no point below `lo` before (no rise
  seen: it started above the 10% level). The first crossings alone called a one-evaluation
  glitch, or a rise that fell back, a jump."""
  if not values or values[-1] < hi:
    return None
  i = len(values) - 1
  while i > 0 and values[i - 1] >= hi:
    i -= 1
  j = i - 1
  while j >= 0 and values[j] >= lo:
    j -= 1
  if j < 0 or steps[-1] - steps[i] < LASTING_FRACTION * steps[-1]:
    return None
  return steps[j:], values[j:]


def between(steps, values, lo: float, hi: float) -> float:
  """Steps the curve, linearly interpolated between evaluations, spends in [lo, hi): how
  long it took to rise, however often it went up and down. The 10% and 90% crossings of the
  rise that lasts measured from a one-evaluation dip back to the floor: a ramp over 80% of
  training with one such dip near its end read as a jump within 4%."""
  total = 0.0
  for (s0, v0), (s1, v1) in zip(zip(steps, values), zip(steps[1:], values[1:])):
    if v0 == v1:
      total += (s1 - s0) if lo <= v0 < hi else 0.0
      continue
    # the part of [s0, s1] where the line through (s0, v0), (s1, v1) is within [lo, hi]
    at = lambda level: s0 + (level - v0) * (s1 - s0) / (v1 - v0)
    a, b = sorted((at(lo), at(hi)))
    total += max(0.0, min(b, s1) - max(a, s0))
  return total


def transition(run: dict, key: str = "eval_icl_accuracy", floor: float = 0.0) -> dict:
  """Crossings of 10 / 50 / 90% of the way from `floor` to 1 (floor 0: plain accuracy) on the
  rise that lasts (lasting_rise); None each when there is none. `window_10_90` is the rise's
  90% crossing less its 10% one; `in_band`, what the abrupt-jump claims read, the steps spent
  between the two levels before the curve stayed above 90% (between)."""
  steps = [r["step"] for r in run["rows"]]
  acc = [r[key] for r in run["rows"]]
  lo, mid, hi = (floor + x * (1 - floor) for x in (0.1, 0.5, 0.9))
  rise = lasting_rise(steps, acc, lo, hi)
  t10, t50, t90 = (crossing(*rise, level) if rise else None for level in (lo, mid, hi))
  final = next(k for k in range(len(acc) - 1, -1, -1) if k == 0 or acc[k - 1] < hi) if rise else 0
  return {"first_eval": acc[0] if acc else None, "max": max(acc) if acc else None,
          "step_10": t10, "step_50": t50, "step_90": t90,
          "window_10_90": (t90 - t10) if t10 is not None and t90 is not None else None,
          "in_band": between(steps[:final + 1], acc[:final + 1], lo, hi) if rise else None}


def probe_line(run: dict) -> str:
  p = run["probe"]["probes"]
  return (f"ICL {p['icl']['acc_full']:.3f} (context-restricted {p['icl']['acc_context']:.3f}) | "
          f"in-weights {p['iwl']['acc_full']:.3f} | flipped: follows context "
          f"{p['flip']['acc_context']:.3f}, original label {p['flip']['acc_full_original_label']:.3f}"
          f" | {run['summary']['num_params']} params, {run['summary']['train_wall_s']:.0f}s")


def _fmt(x, spec=".0f"):
  return "n/a" if x is None else format(x, spec)


def sweeps_for(preset: str) -> tuple[str, ...]:
  """The sweeps a preset runs by default: K and B where the budget allows them."""
  return ("K", "B") if preset in ("cpu", "paper") else ()


def run(preset: str, workdir, seed: int = 0, sweeps=None, runs=tuple(RUNS), steps: int = 0) -> None:
  """Trains (or reuses) `runs` and the `sweeps` (default: sweeps_for(preset)) in WORKDIR/NAME;
  writes WORKDIR/results.json and WORKDIR/figures."""
  sweeps = sweeps_for(preset) if sweeps is None else tuple(sweeps)
  for flag, given, valid in (("--runs", runs, RUNS), ("--sweeps", sweeps, SWEEPS)):
    if set(given) - set(valid):
      raise InputError(f"{flag}={','.join(given)}: unknown {sorted(set(given) - set(valid))}; "
                       f"choose from {','.join(valid)}")
  out = Path(workdir)
  base = {"train.num_steps": steps} if steps else {}
  make = lambda overrides: common.make_config(bursty_classification, preset, base | overrides, seed)
  c = make({})
  (out / "figures").mkdir(parents=True, exist_ok=True)
  runs = {name: common.classification_run(out, name, make(RUNS[name])) for name in runs}
  chance = 1.0 / c.task.num_labels
  results = {"preset": preset, "seed": seed, "chance_full": chance, "runs": {}}

  print("\n=== Reddy 2023 reproduction:", preset, "preset ===")
  print(f"data: D={c.task.dim} K={c.task.num_classes} L={c.task.num_labels} N={c.task.num_context} "
        f"eps={c.task.epsilon}; probes: {c.probe.ways}-way {c.probe.shots}-shot, "
        f"{c.probe.num_prompts} sequences; chance 1/L = {chance:.3f}")
  for name, run in runs.items():
    tr = transition(run)
    # The jump above label copying: context-restricted accuracy from 1/ways (picking any
    # label of the context) to 1, i.e. the induction mechanism itself.
    tr_ctx = transition(run, "eval_icl_accuracy_context", floor=1 / c.probe.ways)
    results["runs"][name] = {"transition": tr, "transition_context": tr_ctx,
                             "probe": run["probe"]["probes"], "summary": run["summary"]}
    print(f"\n[{name}] {probe_line(run)}")
    print(f"  ICL over training (eval every {c.train.eval_every} steps): first eval "
          f"{_fmt(tr['first_eval'], '.3f')}, crosses 0.5 at step {_fmt(tr['step_50'])}, "
          f"10%->90% window {_fmt(tr['step_10'])}->{_fmt(tr['step_90'])} "
          f"(width {_fmt(tr['window_10_90'])} steps); max {_fmt(tr['max'], '.3f')}")
    print(f"  above label copying (context-restricted, 1/{c.probe.ways} -> 1): 10%->90% window "
          f"{_fmt(tr_ctx['step_10'])}->{_fmt(tr_ctx['step_90'])} "
          f"(width {_fmt(tr_ctx['window_10_90'])} steps; {_fmt(tr_ctx['in_band'])} steps between "
          "the levels)")
    cplots.training_curves(Path(run["workdir"]) / "metrics.jsonl",
                           out / "figures" / f"training_{name}.png",
                           title=f"{name}: ICL / in-weights accuracy and attention measures")


  for sweep in sweeps:
    name, key = SWEEPS[sweep]
    cells = []
    for ov in bursty_classification.get_sweep(name, preset=preset):
      value = ov[key]
      r = common.classification_run(out, f"sweep_{name}_{value}", make(ov))
      p = r["probe"]["probes"]
      cells.append({sweep: value, "model": "transformer", "icl": p["icl"]["acc_full"],
                    "icl_lo": p["icl"]["acc_full_lo"], "icl_hi": p["icl"]["acc_full_hi"],
                    "iwl": p["iwl"]["acc_full"]})
      print(f"[sweep {sweep}={value}] {probe_line(r)}")
    cplots.grid(cells, out / "figures" / f"sweep_{sweep}.png", row_key="model", col_key=sweep,
                title=f"Reddy: ICL and in-weights accuracy vs {sweep}")
    results[f"sweep_{sweep}"] = cells
  # A sweep run here before and not asked for now stays recorded (its runs are here, of this
  # preset and seed: common.owned): `reproduce reddy2023` after `--sweeps=K` dropped the K
  # sweep from the file that chan2022's claim reads.
  previous = read_json(out / "results.json") or {}
  results |= {k: v for k, v in previous.items() if k.startswith("sweep_") and k not in results}
  write_json(out / "results.json", results, indent=1)
  common.print_verdicts("reddy2023", out, preset)
  print(f"\nresults: {out / 'results.json'}; figures: {out / 'figures'}")


def define_flags(fv) -> None:
  common.define_run_flags(fv, PRESETS)
  flags.DEFINE_integer("steps", 0, "Override train.num_steps (0 = preset).", lower_bound=0,
                       flag_values=fv)
  flags.DEFINE_list("sweeps", None, "Sweeps, a list of K,B (default: K,B on cpu and paper, "
                    "none on tiny; --sweeps= for none).", flag_values=fv)
  flags.DEFINE_list("runs", list(RUNS), "Runs to train.", flag_values=fv)


def main(argv=None) -> int:
  args = common.parse_run_flags(define_flags, argv, __doc__, empty_ok=("sweeps",),  # = none
                                script=__file__, results=("results.json",))
  with common.owned(args.workdir, args.experiment, args.preset, args.seed):
    run(args.preset, args.workdir, args.seed, args.sweeps, args.runs, args.steps)
  return 0


if __name__ == "__main__":
  cli.run_script(main)
