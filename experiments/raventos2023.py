"""Raventós et al. 2023: the task-diversity threshold of in-context regression.

  python -m experiments.raventos2023 --preset=cpu --workdir=runs/raventos2023
  python -m experiments.raventos2023 --preset=tiny --workdir=/tmp/raventos
  python -m experiments.raventos2023 --preset=paper --workdir=runs/raventos_paper   # accelerator

Noisy linear regression (configs/icl_regression.py:raventos: y = w.x + eps, sigma^2 = 0.25,
D = 8, K = 16) pretrained on a finite pool of M tasks, for every M of the preset's grid. Each M
is a member of ONE vmapped ensemble (research/ensemble.py, through research.sweep.run_sweep):
the program holds the largest pool and member M draws its tasks from the pool's first M rows,
which are exactly the pool a solo run with task.pool_size=M builds (tested in
tests/test_ensemble.py). M = inf (--pools=...,inf; task.pool_size = 0: a fresh w per prompt,
Raventós's M = infinity) has no pool to share, so it trains alone after the ensemble; it is
compared with Ridge only (dMMSE over infinitely many Gaussian tasks is Ridge). WORKDIR holds
results.jsonl and runs/NAME/ (one per M, as solo runs would write them) and a rerun reuses
finished M. Each run's probe on fresh tasks (probes/icl_regression.json: w ~ N(0, I), never in
the pool) holds the model's error per k next to Ridge (lambda = sigma^2, Bayes-optimal for the
Gaussian prior) and dMMSE (the posterior mean under the uniform prior over that run's M tasks).

Distance of the model to a baseline (DISTANCE): the mean over k = 0..K-1 of the mean squared
difference between their predictions on the same fresh-task prompts, / D (Raventós compare
predictions, not error curves). M* = the smallest M of the
grid from which every M's model is resolvably closer to Ridge than to dMMSE (None when the largest
M's is not); the grid's spacing bounds its resolution. Writes WORKDIR/raventos2023.json and WORKDIR/figures/raventos2023.png,
and prints this seed's claim verdicts as `reproduce raventos2023` scores them (common.print_verdicts).

Presets (the model and budget shrink on CPU; D, K and sigma^2 stay Raventós's except on tiny):
  tiny   configs' tiny model (D = 5, K = 11), 40 steps, M in {2, 16, 128}; seconds, for tests
  cpu    D = 8, K = 16, 4 layers / width 64 / 2 heads, batch 128, 4000 steps (warmup to the
         midpoint, linear decay), M = 2^1, 2^3, ..., 2^15: unmeasured
  paper  the raventos preset (8 layers / width 128 / 2 heads, batch 256, 500k steps),
         M = 2^1 ... 2^20 and M = inf: an accelerator job
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from absl import flags

from configs import icl_regression
from experiments import common
from research import cli
from research.errors import InputError, RunsFailedError
from research.workdir import write_json

PAPER = "Raventós et al. 2023, task diversity and non-Bayesian ICL (M sweep, M*)"
PRESETS = {"tiny": "3 pool sizes of the tiny config, 40 steps",
           "cpu": "one 8-member ensemble of 4000 steps, D = 8",
           "paper": "a 20-member ensemble of 500k steps and a fresh-task (M = inf) run: an "
                    "accelerator job"}

FRESH = "inf"  # M = infinity: a fresh task per prompt (task.pool_size = 0), no pool to draw from

DISTANCE = ("mean over k of the mean squared difference between the model's and the estimator's predictions on the same fresh-task prompts, / D")


def training_note(pools: list[dict], fresh: dict | None = None) -> str:
  """How the pools trained, read off their runs (an ensemble member's summary records the
  ensemble's size; a reused or lone run trained solo)."""
  if not pools:
    return "M = inf (fresh tasks) as a solo run; no finite pool" if fresh else ""
  ens = [z for z in (p.get("ensemble_size") for p in pools) if z]
  return (f"{len(ens)} of {len(pools)} pool sizes trained as members of vmapped ensembles "
          f"(research/ensemble.py; ensemble sizes {sorted(set(ens)) or '-'}: one program holds "
          f"the largest pool, member M samples from its first M rows), {len(pools) - len(ens)} "
          "as solo runs" + ("; M = inf (fresh tasks: no pool to share) as a solo run" if fresh
                            else ""))


def pool_grid(preset: str) -> list:
  """The preset's pool sizes M, ascending, and FRESH (M = inf) last where it has it."""
  if preset == "tiny":
    return [2, 16, 128]
  if preset == "cpu":
    return [2 ** i for i in range(1, 16, 2)]
  if preset == "paper":
    return [2 ** i for i in range(1, 21)] + [FRESH]
  raise ValueError(f"unknown preset {preset!r}; choose one of: tiny, cpu, paper")


def parse_pools(pools) -> list:
  """--pools' entries: pool sizes M >= 1, and inf (FRESH) for a fresh task per prompt. `0`, the
  config's spelling of fresh tasks, reads as a pool of no task here, so it is refused with the
  spelling that means it; an unparsed entry is named, not a whole list's ValueError."""
  grid = []
  for m in pools:
    text = str(m).strip().lower()
    if text in (FRESH, "infinity", "∞"):
      grid.append(FRESH)
      continue
    try:
      value = int(text)
    except ValueError:
      value = 0
    if value < 1:
      raise InputError(f"--pools={','.join(map(str, pools))}: {m!r} is not a pool size; pool "
                       "sizes are integers >= 1, and inf trains on a fresh task per prompt (M = "
                       "infinity), e.g. --pools=4,64,1024,inf")
    grid.append(value)
  twice = sorted({str(m) for m in grid if grid.count(m) > 1})
  if twice:  # inf,INF or 2,02: one run each, the grid's count off by one
    raise InputError(f"--pools={','.join(map(str, pools))} gives M = {', '.join(twice)} more "
                     "than once; give each pool size once")
  return grid


def make_config(preset: str, seed: int = 0):
  """The base config of the sweep (task.pool_size is set per run)."""
  if preset == "tiny":
    c = icl_regression.get_config("tiny")
    c.task.function, c.task.noise_std = "noisy_linear", 0.5
  elif preset == "cpu":
    c = icl_regression.get_config("raventos")
    c.model.num_layers, c.model.width, c.model.num_heads = 4, 64, 2
    c.train.batch_size, c.train.num_steps = 128, 4000
    c.optim.warmup_steps = 2000          # Raventós: warmup to the midpoint, then linear decay
    c.train.log_every, c.train.checkpoint_every = 250, 2000
  elif preset == "paper":
    c = icl_regression.get_config("raventos")
  else:
    raise ValueError(f"unknown preset {preset!r}; choose one of: tiny, cpu, paper")
  c.preset = f"raventos2023:{preset}"
  c.seed = seed
  return c


def distances(probe: dict) -> dict:
  """Raventós's comparison on one fresh-task probe: the mean squared difference between the
  model's predictions and Ridge's / dMMSE's on the same prompts (mean over k), and how far
  apart the two estimators' own predictions are (the scale the choice is made on)."""
  over_k, half = _over_k(probe), _half_width(probe)
  d_ridge, d_dmmse = over_k("model_vs_ridge"), over_k("model_vs_dmmse")
  # Noise of the difference d_dmmse - d_ridge: the two distances' 90% bootstrap half-widths,
  # averaged over k (a mean over k spreads at most that much) and added (a sum of half-widths
  # bounds the paired difference's half-width whatever the two's correlation).
  noise = half("model_vs_ridge") + half("model_vs_dmmse")
  return {"d_ridge": d_ridge, "d_dmmse": d_dmmse, "ridge_to_dmmse": over_k("ridge_vs_dmmse"),
          "d_noise": noise, "closer_to": "ridge" if d_ridge < d_dmmse else "dmmse"}


def _over_k(probe: dict):
  curves = probe["curves"]
  return lambda name, key="mean": sum(curves[name][key]) / len(curves[name][key])


def _half_width(probe: dict):
  """A curve's 90% bootstrap half-width, averaged over k."""
  over_k = _over_k(probe)
  return lambda name: (over_k(name, "hi") - over_k(name, "lo")) / 2


def fresh_distance(probe: dict) -> dict:
  """The M = inf run against Ridge, the only estimator it has (no pool, so no dMMSE; the
  posterior mean over infinitely many Gaussian tasks is Ridge's), with its half-width."""
  return {"d_ridge": _over_k(probe)("model_vs_ridge"),
          "d_ridge_half_width": _half_width(probe)("model_vs_ridge")}


def estimate_m_star(points: list[dict]):
  """Smallest M from which the model's predictions are closer to Ridge's than to dMMSE's by
  more than the probe resolves (d_noise) at EVERY larger M of the grid too; None when the
  largest M is not. points: [{M, d_ridge, d_dmmse, d_noise}].

  A threshold is where the model switches for good: the first crossing let one pool's glitch
  (one M resolvably nearer Ridge, every other M nearer dMMSE) set M*."""
  m_star = None
  for p in sorted(points, key=lambda p: p["M"], reverse=True):
    if not p["d_dmmse"] - p["d_ridge"] > p["d_noise"]:
      break
    m_star = p["M"]
  return m_star


def render(res: dict, out_png) -> Path:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  from research.analysis import plots

  pools = res["pools"]
  ms = [p["M"] for p in pools]
  mean = lambda xs: sum(xs) / len(xs)
  fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=110)
  a1.plot(ms, [mean(p["curves"]["model"]) for p in pools], "o-", color="#d62728", label="model")
  a1.plot(ms, [mean(p["curves"]["dmmse"]) for p in pools], "s--", color="#2ca02c", label="dMMSE")
  a1.plot(ms, [mean(p["curves"]["ridge"]) for p in pools], "^--", color="#1f77b4", label="Ridge")
  a1.set_ylabel("error / D on fresh tasks (mean over k)")
  a2.plot(ms, [p["d_dmmse"] for p in pools], "s-", color="#2ca02c", label="model vs dMMSE predictions")
  a2.plot(ms, [p["d_ridge"] for p in pools], "^-", color="#1f77b4", label="model vs Ridge predictions")
  a2.set_ylabel("mean sq. prediction difference / D")
  fresh = res.get("fresh_tasks")
  if fresh:  # M = inf two octaves right of the largest pool, its tick labelled as such
    x_inf = 4 * max(ms, default=1)
    a1.plot([x_inf], [mean(fresh["curves"]["model"])], "o", mfc="none", color="#d62728",
            label="model at M = \u221e")
    a1.plot([x_inf], [mean(fresh["curves"]["ridge"])], "^", mfc="none", color="#1f77b4")
    a2.plot([x_inf], [fresh["d_ridge"]], "^", mfc="none", color="#1f77b4",
            label="model at M = \u221e vs Ridge")
  for ax in (a1, a2):
    ax.set_xscale("log", base=2)
    ax.set_xlabel("pretraining tasks M")
    if fresh:
      # Only ticks inside the pools' range: a tick outside would widen the axis to it.
      ticks = [t for t in ax.get_xticks() if min(ms, default=x_inf) <= t < x_inf / 2] + [x_inf]
      ax.set_xticks(ticks, [f"$2^{{{round(math.log2(t))}}}$" for t in ticks[:-1]] + ["\u221e"])
      ax.set_xlim(right=x_inf * 1.5)
    if res["m_star"] is not None:
      ax.axvline(res["m_star"], color="grey", ls=":", lw=1)
    ax.legend(fontsize=7, frameon=False)
  fig.suptitle(f"Raventós task diversity: D={res['n_dims']}, K={res['n_points']}, "
               f"M* = {res['m_star'] or 'none on this grid'} ({res['preset']} preset)",
               fontsize=10)
  return plots.save_figure(fig, out_png)


def run(preset: str, workdir, seed: int = 0, pools=(), steps: int = 0) -> None:
  """Trains (or reuses) one run per pool size M (default: the preset's grid) in
  WORKDIR/runs/; writes WORKDIR/raventos2023.json and its figure."""
  from research import sweep, workdir as workdir_lib

  config = make_config(preset, seed)
  if steps:
    config = cli.apply_overrides(config, {"train.num_steps": steps})
  grid = parse_pools(pools) if pools else pool_grid(preset)
  # Ascending, as the paper's axis: the table, the JSON and the figure's lines follow the grid
  # (--pools=64,2,16 drew the lines 64 -> 2 -> 16).
  finite = sorted(m for m in grid if m != FRESH)
  # The finite pools, then M = inf: the two sweeps below take the two parts.
  overrides = [{"task.pool_size": m} for m in finite] + (
      [{"task.pool_size": 0}] if FRESH in grid else [])
  out = Path(workdir)
  t0 = time.perf_counter()
  # auto: the finite pools as one ensemble. A fresh-task run cannot join it (the sweep would
  # fall back to one run per M), so it is a sweep of its own after theirs, in the same
  # directory and table. Not the whole grid again: that retried a failed ensemble's pools
  # one by one (20 solo 500k-step runs on `paper`) and reported them trained.
  results = None
  for part in (overrides[:len(finite)], overrides[len(finite):]):
    if part:
      results = sweep.run_sweep(config, part, out, ensemble="auto")
  pools, failed, fresh = [], [], None
  for o, row in zip(overrides, results.point_rows(overrides)):
    m = o["task.pool_size"] or FRESH
    # The probe files of the run where it is now, not the paths its row recorded at training
    # (after a move those named the old place: every M "failed" and pools: [] was written).
    run_dir = results.run_dir(row["run"])
    path = workdir_lib.probe_file(run_dir, "icl_regression")
    if row["status"] != "done" or not path.is_file():
      failed.append({"M": m, "error": row.get("error", f"no probe file {path}")})
      continue
    probe = json.loads(path.read_text())
    run_row = {"M": m, "run": row["run"], "num_params": row["num_params"],
               "ensemble_size": row.get("ensemble_size"), "wall_s": row["wall_s"],
               "probe": str(path)}
    if m == FRESH:
      fresh = run_row | {"curves": {n: probe["curves"][n]["mean"] for n in ("model", "ridge")}
                         } | fresh_distance(probe)
      continue
    pool_path = workdir_lib.probe_file(run_dir, "icl_regression_pool")
    pool_probe = json.loads(pool_path.read_text()) if pool_path.is_file() else None
    pools.append(run_row | {
                  "curves": {n: probe["curves"][n]["mean"] for n in ("model", "ridge", "dmmse")},
                  "pool_tasks_model_error": (sum(pool_probe["curves"]["model"]["mean"])
                                             / len(pool_probe["k"]) if pool_probe else None),
                  "pool_tasks": ({n: pool_probe["curves"][n]["mean"] for n in
                                  ("model", "ridge", "dmmse")} if pool_probe else None)}
                 | distances(probe))
  res = {"preset": preset, "seed": seed, "n_dims": config.task.n_dims, "n_points": config.task.n_points,
         "noise_var": config.task.noise_std ** 2, "num_steps": config.train.num_steps,
         "model": {k: config.model[k] for k in ("num_layers", "width", "num_heads")},
         "distance": DISTANCE, "ensemble": training_note(pools, fresh), "grid": finite,
         "pools": pools, "fresh_tasks": fresh, "m_star": estimate_m_star(pools), "failed": failed} \
      | common.wall_times(results.point_rows(overrides), t0)
  write_json(out / "raventos2023.json", res, indent=1)
  fig = render(res, out / "figures" / "raventos2023.png") if pools or fresh else None
  print(f"\n=== Raventós 2023: D={res['n_dims']}, K={res['n_points']}, sigma^2="
        f"{res['noise_var']:g}, {config.train.num_steps} steps ===")
  print(f"{'M':>8} {'model':>7} {'dMMSE':>7} {'Ridge':>7} {'msd dMMSE':>10} {'msd Ridge':>10}  closer")
  mean = lambda xs: sum(xs) / len(xs)
  for p in pools:
    c = p["curves"]
    print(f"{p['M']:>8} {mean(c['model']):7.3f} {mean(c['dmmse']):7.3f} {mean(c['ridge']):7.3f} "
          f"{p['d_dmmse']:10.3f} {p['d_ridge']:10.3f}  {p['closer_to']}")
  if fresh:
    c = fresh["curves"]
    print(f"{FRESH:>8} {mean(c['model']):7.3f} {'-':>7} {mean(c['ridge']):7.3f} {'-':>10} "
          f"{fresh['d_ridge']:10.3f}  (fresh tasks: Ridge is the Bayes estimator)")
  for f in failed:
    print(f"FAILED M={f['M']}: {f['error']}")
  print(f"M* (smallest M from which every M is closer to Ridge than to dMMSE; distance = {DISTANCE}): {res['m_star']}")
  print(f"wrote {out / 'raventos2023.json'}" + (f" and {fig}" if fig else ""))
  if pools or fresh:  # M = inf alone: the scorer says why it has no claim
    common.print_verdicts("raventos2023", out, preset)
  if failed:
    raise RunsFailedError(f"{len(failed)} of {len(grid)} pool sizes failed: M = "
                          + ", ".join(str(f["M"]) for f in failed)
                          + f" (errors in {out / 'raventos2023.json'}); rerun to retry them")


def define_flags(fv) -> None:
  common.define_run_flags(fv, PRESETS)
  flags.DEFINE_list("pools", [], "Pool sizes M, e.g. --pools=4,64,1024,inf (inf: a fresh task "
                    "per prompt, M = infinity; default: the preset's grid).", flag_values=fv)
  flags.DEFINE_integer("steps", 0, "Override train.num_steps (0 = preset).", lower_bound=0,
                       flag_values=fv)


def main(argv=None) -> int:
  args = common.parse_run_flags(define_flags, argv, __doc__, script=__file__,
                                results=("raventos2023.json",))
  with common.owned(args.workdir, args.experiment, args.preset, args.seed):
    run(args.preset, args.workdir, args.seed, args.pools, args.steps)
  return 0


if __name__ == "__main__":
  cli.run_script(main)
