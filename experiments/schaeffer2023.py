r"""Emergence with model scale: exact match against continuous metrics (Wei et al. 2022;
Schaeffer et al. 2023).

  python -m experiments.schaeffer2023 --preset=cpu --workdir=runs/schaeffer2023
  python -m experiments.schaeffer2023 --preset=tiny --workdir=/tmp/emergence --sizes=0,1
  python -m experiments.schaeffer2023 --workdir=runs/large --sweep=scale_large \
      --set train.num_steps=6000

Trains every size of configs/arithmetic.py's sweep (default "scale": 6 sizes, 4k to
153k parameters on the cpu task) through research.sweep.run_sweep, so WORKDIR holds
results.jsonl and runs/NAME/ and a rerun reuses finished sizes and resumes the
rest (tiny: the first 3 sizes). Each run's probe (probes/arithmetic.json: exact match, per-token accuracy,
edit distance, log-likelihood summed over the answer tokens, Brier on the same
held-out problems, 95% intervals, chance levels) is then read back. Writes:
  WORKDIR/emergence_scale.json         per size: parameters, FLOPs, tokens, wall time,
                                   each metric; per metric: the first size above
                                   chance and the sharpness
  WORKDIR/figures/emergence_scale.png  each metric against parameters and training FLOPs
and prints a table, the first size above chance per metric, the sharpness, and the claims'
verdicts on this one seed (experiments/claims/emergence.py; reproduce aggregates the seeds).

Above chance: a metric beats its chance level (the best input-independent
predictor, i.e. a model that learned only the answers' statistics; see
research/analysis/answer_metrics.CHANCE_DEFINITIONS), in its better direction,
by more than 3 x its 95% interval half-width and by more than 0.05 x
|perfect - chance| (research/analysis/emergence_plots.SIGMAS,
FRACTION). Sharpness: the biggest improvement between adjacent sizes as a fraction
of the net change from the smallest to the largest model (n/a when that change is
within the two models' 95% half-widths added; not compared for a metric never above
chance or one going back beyond its noise: research/analysis/emergence_plots.no_sharpness,
the rule of the printed table, the figure and the claims alike);
Schaeffer's reading is that exact match (all answer digits right, ~ p^L) puts its change
in one step while per-token accuracy and edit distance spread theirs over the sizes.

cpu preset: ~3 minutes on 2 CPU cores (3000 steps per size; measured 3m10s, 15 s
to 64 s a size): room for more sizes or steps within a 30-minute budget.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from absl import flags

from configs import arithmetic
from experiments import common
from experiments.claims import emergence
from experiments.claims.rows import MIN_SEEDS
from research import cli
from research.analysis import emergence_plots as ep
from research.errors import InputError, RunsFailedError

PAPER = "Schaeffer et al. 2023, emergence vs metric (exact match against continuous metrics)"
PRESETS = {"tiny": "3 sizes of the tiny config", "cpu": "6 sizes, 3000 steps each"}


def sizes_table(rows: list[dict], probes: list[dict]) -> dict:
  """The result file's content from sweep rows and their probe results (sizes ascending)."""
  order = sorted(range(len(rows)), key=lambda i: rows[i]["num_params"])
  rows, probes = [rows[i] for i in order], [probes[i] for i in order]
  first = probes[0]
  names = list(first["metrics"])
  hib, chance = first["higher_is_better"], first["chance"]
  sizes = [{"run": r["run"], "overrides": r["overrides"], "num_params": r["num_params"],
            "num_non_embedding_params": r["num_non_embedding_params"],
            "train_flops": r["train_flops"], "tokens": r["tokens"], "wall_s": r["wall_s"],
            "metrics": {m: {k: p["metrics"][m][k] for k in ("mean", "lo", "hi")} for m in names},
            "above_chance": {m: ep.beyond_chance(p["metrics"][m], chance[m], ep.PERFECT[m], hib[m])
                             for m in names}}
           for r, p in zip(rows, probes)]
  first_above, sharp = {}, {}
  for m in names:
    points = [s["metrics"][m] for s in sizes]
    first_above[m] = ep.first_beyond_chance(points, chance[m], ep.PERFECT[m], hib[m])
    noise = sum((p["hi"] - p["lo"]) / 2 for p in (points[0], points[-1]))
    sharp[m] = ep.sharpness([p["mean"] for p in points], hib[m], min_change=noise)
  what = (f"{first['operation']} mod {first['modulus']}" if "modulus" in first
          else f"{first['num_digits']}-digit {first['operation']}")
  res = {
      "task": {"what": what, "operation": first["operation"], "answer_len": first["answer_len"],
               "num_shots": first["num_shots"], "num_problems": first["num_problems"],
               "split": first["split"], "step": first["step"],
               "held_out_fraction": first.get("held_out_fraction")},
      "metrics": names, "metric_definitions": first["metric_definitions"],
      "higher_is_better": hib, "chance": chance, "chance_definition": first["chance_definition"],
      "chance_definitions": first["chance_definitions"],
      "chance_computed": first["chance_computed"], "perfect": ep.PERFECT,
      "margin": {"sigmas": ep.SIGMAS, "fraction": ep.FRACTION, "text": ep.MARGIN_TEXT},
      "sizes": sizes, "first_beyond_chance": first_above, "sharpness": sharp,
  }
  # Each metric's sharpness says when the claims compare none (the printed n/a, the figure's):
  # a reader of this file alone saw fractions the verdicts refused to use (a second trial).
  for m in names:
    sharp[m]["not_compared"] = ep.no_sharpness(res, m)
  return res


def report(res: dict) -> None:
  names, sizes = res["metrics"], res["sizes"]
  short = {"exact_match": "exact", "token_accuracy": "tok acc", "edit_distance": "edit",
           "log_likelihood": "loglik", "brier": "brier"}
  print(f"\n=== emergence with scale: {res['task']['what']}, {res['task']['num_problems']} "
        f"problems per size, step {res['task']['step']} ===")
  head = f"{'params':>8} {'train FLOPs':>11} {'wall':>6} | " + " | ".join(
      f"{short.get(m, m):>17}" for m in names)
  print(head + "\n" + "-" * len(head))
  for s in sizes:
    cells = []
    for m in names:
      v = s["metrics"][m]
      mark = "*" if s["above_chance"][m] else " "
      cells.append(f"{v['mean']:.4f} ±{(v['hi'] - v['lo']) / 2:.4f}{mark}".rjust(17))
    print(f"{s['num_params']:>8} {s['train_flops']:>11.3g} {s['wall_s']:>5.0f}s | "
          + " | ".join(cells))
  print("chance:".ljust(28) + "| " + " | ".join(f"{res['chance'][m]:>16.4f} " for m in names))
  print(f"(± = half the 95% interval; * = {res['margin']['text']})")
  print("\nfirst size above chance:")
  for m in names:
    i = res["first_beyond_chance"][m]
    where = ("never" if i is None else
             f"{sizes[i]['num_params']} params, {sizes[i]['train_flops']:.3g} FLOPs ({sizes[i]['run']})")
    print(f"  {m:15s} {where}")
  print("\nsharpness (biggest step between adjacent sizes / change smallest -> largest):")
  for m in names:
    s = res["sharpness"][m]
    if s["fraction"] is None:
      print(f"  {m:15s} n/a (largest model not resolvably better than the smallest: change "
            f"{s['net_change']:+.4f}, within the two 95% half-widths)")
      continue
    a, b = s["step"]
    why = emergence.no_sharpness(res, m)  # the claims compare no sharpness of such a curve
    print(f"  {m:15s} {'n/a' if why else format(s['fraction'], '.2f')} (step "
          f"{sizes[a]['num_params']} -> {sizes[b]['num_params']} params: "
          f"{s['fraction']:.2f} of net change {s['net_change']:+.4f})"
          + (f"; not compared: {why}" if why else ""))
  # The claims' own verdicts on this one seed (a claim PASSes on every seed, >= MIN_SEEDS).
  print(f"\nclaims on this seed alone (seed {res.get('seed', '?')}; the verdict needs "
        f"{MIN_SEEDS} seeds: python -m experiments.reproduce schaeffer2023):")
  for r in emergence.schaeffer_rows(res, res.get("preset", "?")):
    rests = "1 seed" if r["seeds"] else "no seed"  # NOT_SHOWN: nothing measured it
    print(f"  {r['status']:9s} {rests:7s} {r['claim']}: "
          f"{r['ours'] if r['ours'] is not None else '-'}")


def run(preset: str, workdir, seed: int = 0, sweep: str = "scale", sizes=None,
        overrides: dict | None = None, ensemble: str = "auto", devices: int = 0) -> None:
  """Trains (or reuses) the sizes of configs/arithmetic.py's `sweep` (indices `sizes`;
  default all, tiny: 0,1,2) with `overrides` on every size; writes
  WORKDIR/emergence_scale.json and its figure."""
  import jax

  from research import config_check, sweep as sweep_lib, workdir as workdir_lib

  config = cli.apply_overrides(arithmetic.get_config(preset),
                               dict(overrides or {}) | {"seed": seed} | common.forced())
  sizes = (["0", "1", "2"] if preset == "tiny" else []) if sizes is None else sizes
  points = common.pick(cli.load_sweep(arithmetic.__file__, sweep), [str(i) for i in sizes],
                       "--sizes")
  cli.refuse_replaced(overrides or {}, points, "--set ", f"--sweep={sweep}")
  used = common.first_devices(devices)
  config_check.validate(config, len(used or jax.devices()))
  if config.task.operation not in ("add", "mul"):
    raise InputError("--set task.operation: the scale sweep reads digit-arithmetic probes; "
                     "task.operation must be add or mul")

  out = Path(workdir)
  t0 = time.perf_counter()
  results = sweep_lib.run_sweep(config, points, out, ensemble=ensemble, devices=used)
  rows = results.point_rows(points)
  failed, done, probes = [], [], []
  for r in rows:
    # The run's probe where the sweep is now, not the path its row recorded at training.
    path = workdir_lib.probe_file(results.run_dir(r["run"]), "arithmetic")
    probe = json.loads(path.read_text()) if r["status"] == "done" and path.is_file() else None
    if probe is not None and "chance_definition" in probe:
      done.append(r)
      probes.append(probe)
    else:
      why = (f"no probe file {path}" if probe is None else
             f"{path} predates held-out probes and input-independent chance")
      failed.append(r if r["status"] != "done" else r | {
          "error": f"{why} (delete the row from results.jsonl to retrain)"})
  if not done:
    raise RunsFailedError("every run failed: " + "; ".join(f"{r['run']}: {r['error']}"
                                                            for r in failed))
  res = {"preset": preset, "seed": seed, "sweep": sweep, "set": dict(overrides or {})} \
      | sizes_table(done, probes)
  res["failed"] = [{"run": r["run"], "error": r["error"]} for r in failed]
  # Runs a resume changed (a raised train.num_steps extends them: another schedule than the
  # preset's); common.owned prints them after the results too.
  res["config_changes"] = common.resumed_changes(out)
  res |= common.wall_times(rows, t0)
  (out / "emergence_scale.json").write_text(json.dumps(res, indent=1))
  fig = ep.render_emergence_scale(out / "emergence_scale.json",
                                  out / "figures" / "emergence_scale.png")
  report(res)
  for f in res["failed"]:
    print(f"FAILED {f['run']}: {f['error']}")
  print(f"\n{len(done)} sizes, {common.wall_text(res)}; wrote {out / 'emergence_scale.json'} "
        f"and {fig}")
  if failed:
    raise RunsFailedError(f"{len(failed)} of {len(rows)} sizes failed: "
                          + ", ".join(f["run"] for f in res["failed"])
                          + f" (errors in {out / 'emergence_scale.json'}); rerun to retry them")


def define_flags(fv) -> None:
  common.define_run_flags(fv, PRESETS)
  flags.DEFINE_string("sweep", "scale", "get_sweep() name in configs/arithmetic.py.",
                      flag_values=fv)
  flags.DEFINE_list("sizes", None, "Sweep indices to run, e.g. 0,1 (default all; tiny: 0,1,2).",
                    flag_values=fv)
  flags.DEFINE_multi_string("set", [], "Config override for every size, KEY=VALUE, e.g. "
                            "train.num_steps=1000 (repeatable).", flag_values=fv)
  flags.DEFINE_enum("ensemble", "auto", ("auto", "on", "off"),
                    "Train the sizes as one vmapped program when they allow it.", flag_values=fv)
  flags.DEFINE_integer("devices", 0, "Use the first N devices (0 = all).", lower_bound=0,
                       flag_values=fv)


def main(argv=None) -> int:
  args = common.parse_run_flags(define_flags, argv, __doc__, script=__file__,
                                results=("emergence_scale.json",))
  overrides = common.typed_overrides(arithmetic.get_config(args.preset), args.set)
  with common.owned(args.workdir, args.experiment, args.preset, args.seed):
    run(args.preset, args.workdir, args.seed, args.sweep, args.sizes, overrides, args.ensemble,
        args.devices)
  return 0


if __name__ == "__main__":
  cli.run_script(main)
