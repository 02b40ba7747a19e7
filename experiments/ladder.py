"""One language-model ladder, probed at every kept checkpoint: in-context learning and few-shot
abilities across scale and training time (issue 18; Pythia's design, Olsson et al. 2022's
phase change, Schaeffer et al. 2023's metric caveat).

  python -m experiments.ladder --preset=cpu --workdir=runs/ladder
  python -m experiments.reproduce ladder --preset=cpu     # the same, scored (experiments/claims)

Trains the ladder's sizes (configs/lm_ladder.py `--sweep=ladder`: byte-level Transformers on
this Python's standard library, context 128) as one research.sweep in WORKDIR/runs/, every size
with the same seed and so the same batches in the same order (a size with fewer steps sees a
prefix of them), keeping checkpoints at log-spaced steps. Then research.probe_checkpoints probes
every kept checkpoint of every size (ICL score, every head's prefix-matching score, k-shot
copy / add / lookup scored by exact match and the continuous metrics with 95% intervals; it
resumes, as the sweep does). Writes:
  WORKDIR/ladder.json    per size: parameters and one row per checkpoint {step, tokens,
                         compute = 6 x parameters x tokens, loss, icl_score (+ se), top_prefix,
                         prefix_baseline, few_shot}; the phase change per size; the
                         loss-vs-compute frontier and its power-law fit (FRONTIER_FORM); per
                         ability (task at its largest k) and metric, the smallest compute
                         from which the score is above chance by its interval at every
                         checkpoint of more compute
  WORKDIR/figures/ladder_<task>.png   per ability, the score over (parameters x tokens), one
                         panel per metric
  WORKDIR/figures/ladder_frontier.png loss against compute per size, the frontier and its fit

Phase change (per size, Olsson): research/probes/attention.steepest_drop of the ICL score over
PHASE_WINDOW consecutive log-spaced checkpoints (a factor ~4 in steps); reported with the drop it
carries, that drop's share of the whole run's (first to last checkpoint), the share of the
training steps the window spans, and the top prefix-matching score's rise over the window,
that rise's share of its whole-run rise, and its per-step rise in and before the window.
Above chance: research/probes/few_shot.above_chance (the whole 95% interval on the better side
of the metric's chance level, the best input-independent predictor).

cpu budget (issue 18: < 45 min on 2 cores). Measured per size on this machine (2 cores at load
~8, so process CPU seconds, which load inflates less than wall time; on 2 idle cores XLA's
threads make wall <= CPU seconds): one train step (batch 32 x 128 bytes) c1 0.07 s, c2 0.09,
c3 0.30, c4 0.41, c5 1.22; probing one checkpoint (256 held-out windows and the heads, then
100 few-shot prompts in each of the 15 (task, k) cells) c1 4.9 s, c2 6.5, c3 19, c4 26, c5 70.
c1 alone through this preset at 2000 steps (the sweep, then probe_run on its 9 checkpoints)
took 164 + 96 = 260 CPU s (327 + 193 s wall at load ~7): 80 s over steps x step cost plus
checkpoints x probe cost (compiles, reading the corpus twice), taken to scale with each size's
compile time (13-35 s). With CPU_STEPS and a checkpoint at each of 10, 20, 40, 70, ... and the
last step: c1 226 s, c2 273, c3 571, c4 611, c5 881, about 43 min for one seed estimated at
that load. Measured on 2 cores with little else running (2026-12-01): 29 min 24 s for one seed
(sweep 14.4 min, probes 15 min). c6 (~10M parameters, ~3.5x c5) is left out: extrapolated from
c5, its probes alone would take ~4 min a checkpoint. reproduce's cpu preset runs one seed
(SEEDS below).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

from configs import lm_ladder
from experiments import common
from research import cli
from research.errors import RunsFailedError
from research.workdir import write_json

PAPER = ("LM ladder: ICL phase change, few-shot abilities and emergence across scale and "
         "training (Olsson et al. 2022; Brown et al. 2020; Schaeffer et al. 2023)")
PRESETS = {
    # The wall time `--list` prints beside these is the one reproduce recorded
    # (experiments/wall_times.json); a time written here contradicted it.
    "tiny": "2 sizes (2 layers, width 16 / 32), 40 steps on 20 stdlib files, 8 few-shot "
            "prompts per cell, for tests",
    "cpu": "configs/lm_ladder.py's CPU sizes c1-c5 (0.09M-2.8M parameters; 1500, 1500, 1000, "
           "600, 200 steps), 100 few-shot prompts per cell at every kept checkpoint",
}
# cpu: steps per size, set so that one seed fits the 45 minutes (docstring: cpu budget).
CPU_STEPS = {"c1": 1500, "c2": 1500, "c3": 1000, "c4": 600, "c5": 200}
TINY_SIZES = {"t1": (2, 16, 2), "t2": (2, 32, 2)}
FEW_SHOT_PROMPTS = {"tiny": 8, "cpu": 100}
# reproduce's seeds for the cpu preset: one, so that `reproduce ladder --preset=cpu` fits the
# issue's 45 minutes (measured: one seed 30 min on 2 idle cores). A ladder is one data order
# (Pythia's design); its replication is `--seeds=0,1,2` (~1.5 h), and with one seed a claim
# that holds is UNREPLICATED, never PASS (experiments/claims: PASS needs >= 3 seeds).
SEEDS = {"cpu": (0,)}
PHASE_WINDOW = 2   # log-spaced checkpoint intervals in the phase-change window
FRONTIER_FORM = "loss = E + A * C^-alpha, C = 6 x parameters x training tokens (FLOPs)"
OUT = "ladder.json"

# What the ladder changes in the presets: checkpoints only at log-spaced steps and the end
# (each one is probed), no evaluation or sampling during training (the probes measure loss).
_COMMON = {"train.keep_log_spaced": True, "train.checkpoint_every": 0, "train.eval_every": 0,
           "train.steps_per_call": 10, "train.log_every": 50, "probe.generate_tokens": 0}
_TINY = {"task.source": "stdlib", "task.vocab_size": 0, "task.max_documents": 20,
         "train.num_steps": 40, "train.log_every": 20, "probe.eval_sequences": 16}


def make_points(preset: str) -> tuple[str, dict, list[dict]]:
  """(config preset, overrides of every size, one override dict per size)."""
  if preset == "tiny":
    return "tiny", _COMMON | _TINY, [
        {"model.num_layers": l, "model.width": w, "model.num_heads": h}
        for l, w, h in TINY_SIZES.values()]
  sizes = dict(zip(lm_ladder.CPU_SIZES, cli.load_sweep(lm_ladder.__file__, "ladder")))
  # Warmup a tenth of each size's run (the preset's 200 steps would be most of c5's).
  return preset, dict(_COMMON), [sizes[name] | {"train.num_steps": steps,
                                                "optim.warmup_steps": steps // 10}
                                 for name, steps in CPU_STEPS.items()]


# ----------------------------------------------------------------------------- analysis
def top_prefix(row: dict) -> float:
  return max(h["prefix"] for h in row["heads"].values())


def phase_change(rows: list[dict], num_steps: int, grid: int) -> dict | None:
  """Olsson's phase change on the log-spaced checkpoints of one size (None: fewer than
  PHASE_WINDOW + 1 of them)."""
  from research.checkpoint import log_spaced_steps
  from research.probes.attention import steepest_drop
  log_steps = set(log_spaced_steps(num_steps, grid)) | {num_steps}
  pts = [r for r in rows if r["step"] in log_steps]
  if len(pts) < PHASE_WINDOW + 1:
    return None
  steps, icl = [r["step"] for r in pts], [r["icl_score"] for r in pts]
  w = steepest_drop(steps, icl, PHASE_WINDOW)
  a, b = pts[w["start_index"]], pts[w["end_index"]]
  total = icl[0] - icl[-1]
  drop = a["icl_score"] - b["icl_score"]
  # The per-step fall before the window (first checkpoint to its start; None when it starts
  # at the first checkpoint) against the window's own: claims/ladder.py asks the curve to
  # steepen into the window, which a smooth decay (fastest at the start) never does.
  first = pts[0]
  before = (None if w["start_index"] == 0 else
            (first["icl_score"] - a["icl_score"]) / (a["step"] - first["step"]))
  # The top prefix-matching score over the same checkpoints, measured as the ICL score is:
  # its rise over the whole run, the window's share of it, its per-step rise in the window and
  # before it (None when the window starts at the first checkpoint). claims/ladder.py asks the
  # head to form IN the window (most of its rise there, steeper than before), which a head
  # rising at one rate over all training does not, whatever the window's own rise.
  prefix_total = pts[-1]["top_prefix"] - first["top_prefix"]
  prefix_rise = b["top_prefix"] - a["top_prefix"]
  prefix_before = (None if w["start_index"] == 0 else
                   (a["top_prefix"] - first["top_prefix"]) / (a["step"] - first["step"]))
  return {"start_step": a["step"], "end_step": b["step"], "drop": drop, "total_drop": total,
          "rate": drop / (b["step"] - a["step"]), "rate_before": before,
          "share": drop / total if total > 0 else 0.0,
          "step_share": (b["step"] - a["step"]) / max(steps[-1] - steps[0], 1),
          "noise": math.hypot(a["icl_score_se"], b["icl_score_se"]),
          "prefix_before": a["top_prefix"], "prefix_after": b["top_prefix"],
          "prefix_rise": prefix_rise, "prefix_total_rise": prefix_total,
          "prefix_share": prefix_rise / prefix_total if prefix_total > 0 else 0.0,
          "prefix_rate": prefix_rise / (b["step"] - a["step"]),
          "prefix_rate_before": prefix_before,
          "prefix_baseline": b["prefix_baseline"], "checkpoints": len(pts)}


def frontier(sizes: list[dict]) -> dict:
  """The loss-vs-compute frontier (each checkpoint whose loss is below every checkpoint of
  less compute, over all sizes) and its power-law fit: None, with the reason in `no_fit`, where
  scaling.fit_power_law refuses (fewer than 4 points: 3 parameters fit any 3 falling points
  exactly, so a step 3.0, 2.0, 1.999 would pass as a power law; or no dependence on compute)."""
  import numpy as np

  from research.analysis import scaling
  pts = sorted(((r["compute"], r["loss"], s["run"], r["step"]) for s in sizes
                for r in s["rows"] if r["compute"] > 0), key=lambda p: (p[0], p[1]))
  front, best = [], math.inf
  for c, loss, run, step in pts:
    if loss < best:
      front.append({"compute": c, "loss": loss, "run": run, "step": step})
      best = loss
  out = {"form": FRONTIER_FORM, "points": front, "fit": None, "no_fit": None, "line": None}
  x, y = np.array([p["compute"] for p in front]), np.array([p["loss"] for p in front])
  try:
    fit = scaling.fit_power_law(x, y)
  except ValueError as err:  # scaling's InputError (refused), or no frontier point at all
    out["no_fit"] = str(err)
  else:
    rel = np.abs(fit.predict(x) - y) / y
    out["fit"] = {"E": fit.E, "A": fit.A, "alpha": fit.alpha, "n_points": fit.n_points,
                  "max_rel_residual": float(rel.max()), "mean_rel_residual": float(rel.mean())}
    out["line"] = line_test(out["fit"], front)
  return out


def line_test(fit: dict, points: list[dict]) -> dict:
  """research/analysis/scaling_checks.against_line on the frontier POINTS: does the power law
  FIT beat loss = a - b ln C (its alpha -> 0 limit) by more than the points' noise?"""
  from research.analysis import scaling_checks
  return scaling_checks.against_line([p["compute"] for p in points],
                                     [p["loss"] for p in points], fit)


def _cell(cell: dict, metric: str) -> dict:
  """A probe row's few-shot cell ([mean, lo, hi] per metric) as few_shot.above_chance reads it."""
  mean, lo, hi = cell[metric]
  return {metric: {"mean": mean, "lo": lo, "hi": hi}, "chance": cell["chance"]}


def above_chance(cell: dict, metric: str) -> bool:
  from research.probes import few_shot
  return few_shot.above_chance(_cell(cell, metric), metric)


def abilities(sizes: list[dict]) -> dict:
  """Per task, at its largest k (in every size's rows): per metric the checkpoint where it
  leaves chance, the one of smallest compute from which every checkpoint of more compute (of
  any size) is above chance by its interval (None if the largest compute's is not):
  research/analysis/emergence_plots.first_for_good, the one rule schaeffer2023 uses too. The
  first checkpoint above chance alone let a one-checkpoint glitch order the metrics.
  `any_above_chance`: the first checkpoint above chance at all (where a glitch counts), the
  bound an ordering's later metric is held to (claims/ladder.py)."""
  from research.analysis.answer_metrics import METRICS
  from research.analysis.emergence_plots import first_for_good
  rows = sorted(((r["compute"], s, r) for s in sizes for r in s["rows"] if r.get("few_shot")),
                key=lambda t: t[0])
  out = {}
  if not rows:
    return out
  for task in rows[0][2]["few_shot"]:
    k = str(min(max(int(k) for k in r["few_shot"][task]) for _, _, r in rows))
    first, any_ = {}, {}
    at = lambda i: None if i is None else {
        "compute": rows[i][0], "run": rows[i][1]["run"], "num_params": rows[i][1]["num_params"],
        "step": rows[i][2]["step"], "tokens": rows[i][2]["tokens"]}
    for m in METRICS:
      above = [above_chance(r["few_shot"][task][k], m) for _, _, r in rows]
      first[m] = at(first_for_good(above))
      any_[m] = at(next((i for i, a in enumerate(above) if a), None))
    out[task] = {"k": int(k), "chance": rows[0][2]["few_shot"][task][k]["chance"],
                 "first_above_chance": first, "any_above_chance": any_}
  return out


def ladder_table(sizes: list[dict]) -> dict:
  """ladder.json's analysis from each size's {run, num_params, num_layers, width, num_heads,
  num_steps, steps_per_call, tokens_per_step, rows (research.probe_checkpoints rows)}."""
  from research.analysis.answer_metrics import HIGHER_IS_BETTER, METRICS
  out = []
  for s in sorted(sizes, key=lambda s: s["num_params"]):
    rows = [{"step": r["step"], "tokens": r["tokens"],
             "compute": 6.0 * s["num_params"] * r["tokens"], "loss": r["loss"],
             "icl_score": r["icl_score"], "icl_score_se": r["icl_score_se"],
             "top_prefix": top_prefix(r), "prefix_baseline": r["prefix_baseline"],
             **({"few_shot": r["few_shot"]} if r.get("few_shot") else {})}
            for r in sorted(s["rows"], key=lambda r: r["step"])]
    size = {k: v for k, v in s.items() if k != "rows"} | {"rows": rows}
    size["phase_change"] = phase_change(rows, s["num_steps"], s["steps_per_call"])
    out.append(size)
  return {"sizes": out, "frontier": frontier(out), "abilities": abilities(out),
          "metrics": list(METRICS), "higher_is_better": HIGHER_IS_BETTER,
          "phase_window": PHASE_WINDOW,
          "above_chance_rule": "the metric's whole 95% interval on the better side of its "
                               "chance level (the best input-independent predictor)"}


# ----------------------------------------------------------------------------- report
def _at(first: dict | None) -> str:
  return "never" if first is None else (f"{first['compute']:.2g} FLOPs ({first['run']}, "
                                        f"step {first['step']})")


def report(res: dict) -> None:
  print(f"\n=== LM ladder ({res['preset']}): {len(res['sizes'])} sizes ===")
  # The run's whole name (its size fields): cut to 10 characters it read "000_num_la" for
  # every size. A share of a net change that is not a fall (or rise) is no share: "0%" of a
  # window that held all of a rise read as a number.
  width = max((len(s["run"]) for s in res["sizes"]), default=4)
  print(f"{'size':<{width}} {'params':>9} {'steps':>6} {'loss':>7} {'ICL':>7} {'prefix':>7} | "
        "phase change (ICL score over log-spaced checkpoints)")
  for s in res["sizes"]:
    last, w = s["rows"][-1], s["phase_change"]
    share = lambda part, total, what: (f"{part / total:.0%} of its {what}" if total > 0
                                       else f"no net {what}")
    phase = ("n/a" if w is None else
             f"steps {w['start_step']}-{w['end_step']}: {w['drop']:+.3f} of {w['total_drop']:+.3f} "
             f"nats ({share(w['drop'], w['total_drop'], 'drop')}, {w['step_share']:.0%} of the "
             f"steps), top prefix {w['prefix_before']:.2f} -> {w['prefix_after']:.2f} "
             f"({share(w['prefix_rise'], w['prefix_total_rise'], 'rise')})")
    print(f"{s['run']:<{width}} {s['num_params']:>9} {last['step']:>6} {last['loss']:>7.3f} "
          f"{last['icl_score']:>+7.3f} {last['top_prefix']:>7.2f} | {phase}")
  fr = res["frontier"]
  fit = fr["fit"]
  print(f"\nfrontier: {len(fr['points'])} points; "
        + (f"no fit ({fr.get('no_fit')})" if fit is None else
           f"{fr['form']}: E={fit['E']:.3f}, A={fit['A']:.3g}, alpha={fit['alpha']:.3f} "
           f"(worst residual {fit['max_rel_residual']:.1%} of the loss)"))
  if fit is not None and fr.get("line"):
    ln = fr["line"]
    print(f"  against a line in ln C (loss = {ln['a']:.3f} - {ln['b']:.4f} ln C): rms log "
          f"residual {ln['rms_line']:.4f} vs the law's {ln['rms_law']:.4f}, F-test p = "
          f"{ln['p']:.2g}" + (" (line rejected)" if ln["line_rejected"] else " (indistinguishable from a line)"))
  print("\nleaves chance (above it at every checkpoint of more compute), per ability and metric:")
  for task, a in res["abilities"].items():
    print(f"  {task} (k={a['k']}):")
    for m, first in a["first_above_chance"].items():
      print(f"    {m:15s} {_at(first)}")


# ----------------------------------------------------------------------------- run
def run(preset: str, workdir, seed: int = 0) -> None:
  """Trains (or reuses) every size, probes every kept checkpoint, writes WORKDIR/ladder.json
  and the figures."""
  from research import probe_checkpoints, sweep as sweep_lib, workdir as workdir_lib
  from research.analysis import ladder_plots

  base, shared, points = make_points(preset)
  config = common.make_config(lm_ladder, base, shared, seed)
  out = Path(workdir)
  t0 = time.perf_counter()
  results = sweep_lib.run_sweep(config, points, out)
  sizes, failed = [], []
  for p, row in zip(points, results.point_rows(points)):
    if row["status"] != "done":
      failed.append(f"{row['run']}: {row.get('error', row['status'])}")
      continue
    # The run where this sweep is now: the row's "dir" is where it trained, and a copy probed
    # (and wrote into) the original's run through it.
    run_dir = results.run_dir(row["run"])
    probe_checkpoints.probe_run(run_dir, few_shot_prompts=FEW_SHOT_PROMPTS[preset])
    cfg = sweep_lib.apply_overrides(config, p)
    sizes.append({"run": row["run"], "num_params": row["num_params"],
                  "num_layers": cfg.model.num_layers, "width": cfg.model.width,
                  "num_heads": cfg.model.num_heads, "num_steps": cfg.train.num_steps,
                  "steps_per_call": cfg.train.steps_per_call,
                  "rows": workdir_lib.read_jsonl(run_dir / probe_checkpoints.OUT)})
  if not sizes:
    raise RunsFailedError("every size failed: " + "; ".join(failed))
  runs = results.point_rows(points)
  res = {"preset": preset, "seed": seed, "few_shot_prompts": FEW_SHOT_PROMPTS[preset]} \
      | ladder_table(sizes) | {"failed": failed} | common.wall_times(runs, t0)
  write_json(out / OUT, res, indent=1)
  figures = ladder_plots.render_all(out / OUT, out / "figures")
  report(res)
  print(f"\n{len(sizes)} sizes, {common.wall_text(res)}; wrote {out / OUT} and "
        + ", ".join(str(f) for f in figures))
  if failed:
    raise RunsFailedError(f"{len(failed)} of {len(points)} sizes failed: " + "; ".join(failed)
                          + "; rerun to retry them")


def define_flags(fv) -> None:
  common.define_run_flags(fv, PRESETS)


def main(argv=None) -> int:
  args = common.parse_run_flags(define_flags, argv, __doc__, script=__file__,
                                results=(OUT,))
  with common.owned(args.workdir, args.experiment, args.preset, args.seed):
    run(args.preset, args.workdir, args.seed)
  return 0


if __name__ == "__main__":
  cli.run_script(main)
