"""Scaling laws L(N, D) on a synthetic language (not one paper's claims: no reproduce NAME).

  python -m experiments.scaling_laws --preset=cpu --workdir=runs/scaling_laws
  python -m experiments.scaling_laws --preset=tiny --workdir=/tmp/scaling_laws
  python -m experiments.scaling_laws --preset=cpu --workdir=runs/scaling_seeds --seeds=0,1,2

It trains every (size, token budget) point of configs/scaling_laws.py's sweep
(`scaling_grid`, or `scaling_grid_tiny` for the tiny preset) through research.sweep.run_sweep,
so WORKDIR holds results.jsonl and runs/NAME/, and a rerun reuses finished points and resumes the
rest. The task is a second-order Markov token stream (configs/scaling_laws.py says why). Each
point's loss is the held-out eval loss at its last step (the task's evaluate(): `eval_loss` in
runs/NAME/metrics.jsonl, a fixed set of sequences never trained on); if a run has none (eval
turned off) its last logged training loss is used and the point says so (`loss_source`).
Then, with N = non-embedding parameters, D = tokens trained on and C = 6ND:
  approach 3  L(N, D) = E + A/N^alpha + B/D^beta, Besiroglu et al.'s Huber / L-BFGS fit from
              research.analysis.scaling, bootstrap SEs (and 5-95% intervals of N*, D*/N*)
  frontier    N*(C), D*(C), tokens per parameter at each decade of C the grid spans
  approach 2  IsoFLOP buckets (factor-2 bins of C: the grid doubles N and D, so its
              anti-diagonals fall in one bin each); a parabola in log N per bucket with
              >= 4 points, N_opt ~ C^a over the buckets whose parabola has a significant
              interior minimum (research/analysis/scaling_isoflop.py), with a bootstrap
              5-95% interval on a
and the source's entropy (the Bayes loss on the same eval sequences: the floor E should sit
on). Writes WORKDIR/scaling_laws.json and WORKDIR/figures/scaling_laws.png (rendered from the
JSON by research/analysis/scaling_plots.py) and prints a summary. The bootstrap resamples one
training seed's points; `--seeds` trains the grid once per seed into WORKDIR/seed_<n>/ and
writes WORKDIR/scaling_laws_seeds.json: each quantity per seed, its seed spread against the
seeds' bootstrap bands, and each point's loss spread (research/analysis/scaling_seeds.py). The same fit on the
Chinchilla data (Besiroglu et al. 2024's refit) is experiments/besiroglu2024.py.

cpu preset: 6 sizes (5.5k-178k non-embedding parameters) x 4 budgets (0.5M-4.1M tokens) = 24
runs; the measured wall time is in the closing note of issue 4. The tiny preset's 4 runs cannot
identify 5 parameters: it is a smoke test and reports "no fit" with that reason, as any grid
whose losses do not depend on N, D does (research/analysis/scaling_checks.py).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from absl import flags

from configs import scaling_laws as grid_config
from experiments import common
from research import cli, workdir
from research.analysis import scaling, scaling_isoflop
from research.errors import InputError, RunsFailedError
from research.workdir import write_json

PRESETS = {"tiny": "4 runs (scaling_grid_tiny)", "cpu": "24 runs: 6 sizes x 4 token budgets"}
PARAMS = ("E", "A", "B", "alpha", "beta")
BUCKET_RATIO = 2.0  # IsoFLOP bin width: the grid's step in N and in D


# ----------------------------------------------------------------------------- grid points
def held_out_loss(run_dir: Path, num_steps: int) -> tuple[float, str, float]:
  """(loss the fit uses, where it came from, last training loss) of one finished run."""
  rows = workdir.read_jsonl(run_dir / "metrics.jsonl")
  evals = [r for r in rows if "eval_loss" in r and r["step"] == num_steps]
  train = [r for r in rows if "loss" in r]
  train_loss = float(train[-1]["loss"])
  if evals:
    return float(evals[-1]["eval_loss"]), "eval_loss", train_loss
  return train_loss, "train_loss", train_loss


def source_entropy(config) -> float | None:
  """Bayes loss on the task's eval sequences: the true next-token NLL, averaged over positions
  1..L-1 as the eval loss is (tokens 0 and 1 are uniform, so position 1 costs log V). None
  with copied spans (--set task.repeat_prob>0): the Markov tables alone are not the source."""
  if config.task.repeat_prob > 0:
    return None
  import jax
  import jax.numpy as jnp

  from research import tasks

  task = tasks.build(config.task, config.seed)
  tok = task.eval_sets()[0]
  logp = jax.nn.log_softmax(task.next_logits(tok[:, :-2], tok[:, 1:-1]), axis=-1)
  nll = -jnp.take_along_axis(logp, tok[:, 2:, None], axis=-1)[..., 0]
  return float((jnp.log(task.vocab) + nll.sum(1)).mean() / (tok.shape[1] - 1))


def train_grid(out: Path, config, overrides,
               devices: int = 0) -> tuple[list[dict], list[dict], list[dict]]:
  """Runs the sweep; returns (points, failed, the sweep's row of every point) in sweep order."""
  from research import sweep

  results = sweep.run_sweep(config, overrides, out, devices=common.first_devices(devices))
  points, failed = [], []
  for o, r in zip(overrides, results.point_rows(overrides)):
    if r["status"] != "done":
      failed.append({"run": r["run"], "error": r.get("error", "")})
      continue
    cfg = sweep.apply_overrides(config, o)
    steps = int(cfg.train.num_steps)
    # The run where this sweep is now: the row's "dir" is where it trained (a moved sweep
    # found no metrics there, a copy read the original's).
    loss, src, train_loss = held_out_loss(results.run_dir(r["run"]), steps)
    n, d = r["num_non_embedding_params"], r["tokens"]
    points.append({"run": r["run"], "num_layers": cfg.model.num_layers,
                   "width": cfg.model.width, "num_heads": cfg.model.num_heads,
                   "num_steps": steps, "N": n, "num_params": r["num_params"], "D": d,
                   "C": 6.0 * n * d, "train_flops": r["train_flops"], "loss": loss,
                   "loss_source": src, "train_loss": train_loss, "wall_s": r["wall_s"]})
  return points, failed, results.point_rows(overrides)


# ----------------------------------------------------------------------------- analysis
def isoflop(N, D, L) -> dict:
  """Approach 2 on factor-2 bins of C (edges from the smallest C down by sqrt 2)."""
  C = 6.0 * N * D
  lo = np.log(C.min()) - 0.5 * np.log(BUCKET_RATIO)
  n_bins = int(np.ceil((np.log(C.max()) - lo) / np.log(BUCKET_RATIO))) + 1
  edges = np.exp(lo + np.log(BUCKET_RATIO) * np.arange(n_bins + 1))
  out = {"edges": edges.tolist(), "bucket_ratio": BUCKET_RATIO, "min_points": 4}
  try:
    iso = scaling_isoflop.isoflop_fit(N, D, L, edges, min_points=4)
  except ValueError as err:
    return out | {"error": str(err)}
  intercept = float(np.mean(np.log(iso.N_opt) - iso.a * np.log(iso.C)))
  buckets = [{"C": float(c), "N_opt": float(n), "L_opt": float(l), "coeffs": [float(v) for v in cf],
              "n_points": int(k)}
             for c, n, l, cf, k in zip(iso.C, iso.N_opt, iso.L_opt, iso.coeffs, iso.n_points)]
  return out | {"a": iso.a, "a_5_95": list(iso.a_5_95), "resamples": iso.resamples,
                "resamples_used": iso.resamples_used, "b": iso.b, "log_intercept": intercept,
                "buckets": buckets, "rejected": list(iso.rejected)}


def analyse(points: list[dict], bootstrap: int, top_starts, seed: int) -> dict:
  """Approach 3 with its bootstrap and frontier, and approach 2. A fit the data cannot
  support (too few points, no dependence on N, D: scaling.fit_chinchilla's InputError) is
  reported as such, with its reason and no numbers, so the tiny grid (4 points for 5
  parameters) still runs end to end."""
  N, D, L = (np.array([p[k] for p in points], float) for k in ("N", "D", "loss"))
  try:
    fit = scaling.fit_chinchilla(N, D, L, top_starts=top_starts)
  except InputError as err:
    return {"fit": {"reported": False, "reason": str(err), "n_points": len(L)},
            "bootstrap": {"resamples": 0, "seed": seed, "seconds": 0.0},
            "exponents": None, "compute_optimal": [], "isoflop": isoflop(N, D, L)}
  C = 6.0 * N * D
  decades = 10.0 ** np.arange(np.floor(np.log10(C.min())), np.ceil(np.log10(C.max())) + 1)
  n_opt, d_opt, tpp = scaling.compute_optimal(fit, decades)
  boot, se, pct, lohi, outside = None, {}, {}, {}, []
  if bootstrap > 0:
    boot = scaling.bootstrap_chinchilla(N, D, L, num_resamples=bootstrap, seed=seed, fit=fit)
    se = {k: float(v) for k, v in boot.se.items()}
    # With ~20 points a few resamples lose E or B (A, B run off to 1e10+ while alpha or beta
    # goes to 0); the SE (a std) is then dominated by them, the percentiles are not.
    pct = {k: [float(v[0]), float(v[1])] for k, v in boot.percentile([5, 95]).items()}
    outside = boot.outside()
    # 5-95% intervals of the frontier: each resample's parameters through compute_optimal
    # (a degenerate resample may overflow; the percentiles do not care).
    with np.errstate(all="ignore"):
      per = np.array([np.stack(scaling.compute_optimal(scaling.ChinchillaFit(*s, 0.0, 0), decades))
                      for s in boot.samples])  # (R, 3, len(decades))
      lohi = {"N_opt": np.nanpercentile(per[:, 0], [5, 95], axis=0),
              "tokens_per_param": np.nanpercentile(per[:, 2], [5, 95], axis=0)}
  frontier = []
  for i, (c, n, d, t) in enumerate(zip(decades, n_opt, d_opt, tpp)):
    row = {"C": float(c), "N_opt": float(n), "D_opt": float(d), "tokens_per_param": float(t),
           "loss": float(fit.predict(n, d)),
           # Not extrapolated: the budget and the optimum's N and D all lie in the grid.
           "inside_grid": bool(C.min() <= c <= C.max() and N.min() <= n <= N.max()
                               and D.min() <= d <= D.max())}
    for k, v in lohi.items():
      row[f"{k}_5_95"] = [float(v[0, i]), float(v[1, i])]
    frontier.append(row)
  s = fit.alpha + fit.beta
  resid = L - fit.predict(N, D)
  return {
      "fit": {k: {"value": float(getattr(fit, k)), "se": se.get(k), "p5_p95": pct.get(k),
                  "outside_p5_p95": k in outside}
              for k in PARAMS}
             | {"reported": True, "objective": fit.loss, "n_points": fit.n_points,
                "n_starts": fit.n_starts,
                "top_starts": top_starts, "seconds": fit.seconds,
                "residual_rms": float(np.sqrt(np.mean(resid ** 2))),
                "residual_max_abs": float(np.abs(resid).max())},
      "bootstrap": {"resamples": bootstrap, "seed": seed,
                    "seconds": boot.seconds if boot else 0.0},
      "exponents": {"N_opt ~ C^a": fit.beta / s, "D_opt ~ C^b": fit.alpha / s},
      "compute_optimal": frontier,
      "isoflop": isoflop(N, D, L),
  }


def report(res: dict) -> None:
  print(f"\n=== scaling laws: {res['task']['what']}, {len(res['runs'])} runs ===")
  print(f"N = {res['N_definition']}; D = tokens trained on; loss = {res['loss_definition']}")
  print(f"{'size (L x W)':>12} {'N':>8} {'steps':>6} {'D':>9} {'C=6ND':>9} {'loss':>7} "
        f"{'train':>7} {'wall':>6}")
  for p in res["runs"]:
    mark = "" if p["loss_source"] == "eval_loss" else " (train loss)"
    print(f"{p['num_layers']:>5} x {p['width']:<5} {p['N']:>8} {p['num_steps']:>6} "
          f"{p['D']:>9.3g} {p['C']:>9.3g} {p['loss']:>7.4f} {p['train_loss']:>7.4f} "
          f"{p['wall_s']:>5.0f}s{mark}")
  f = res["fit"]
  reported = f.get("reported", True)
  if not reported:
    print(f"\nL(N, D) = E + A/N^alpha + B/D^beta, {f['n_points']} points: no fit reported: "
          f"{f['reason']}")
  else:
    print(f"\nL(N, D) = E + A/N^alpha + B/D^beta ({f['n_points']} points, {f['n_starts']} "
          f"L-BFGS starts, {res['bootstrap']['resamples']} bootstrap resamples):")
    print(f"  SEs and bands resample these {f['n_points']} points of ONE training seed "
          f"(seed {res['seed']}: initialisations, batches, the source's tables); they leave "
          "out seed-to-seed variation, which --seeds=0,1,2 measures")
    for k in PARAMS:
      se, band = f[k]["se"], f[k]["p5_p95"]
      print(f"  {k:<6} {f[k]['value']:10.4g}" + (f"  SE {se:9.3g}" if se is not None else "")
            + (f"  5-95% [{band[0]:.4g}, {band[1]:.4g}]" if band else "")
            + ("  OUTSIDE its own 5-95% interval: not converged alike, do not use"
               if f[k].get("outside_p5_p95") else ""))
    print(f"  residuals L - fit: rms {f['residual_rms']:.4f}, max |.| "
          f"{f['residual_max_abs']:.4f}")
  if res["source_entropy"] is not None:
    print(f"  source entropy (Bayes loss on the eval set): {res['source_entropy']:.4f}"
          + (f"; E - entropy = {f['E']['value'] - res['source_entropy']:+.4f}" if reported
             else ""))
  if reported:
    e = res["exponents"]
    print(f"  approach 3: N_opt ~ C^{e['N_opt ~ C^a']:.3f}, D_opt ~ C^{e['D_opt ~ C^b']:.3f}")
  _report_isoflop(res["isoflop"])
  ratio = res.get("measured_flops_over_6ND")
  if ratio:
    print(f"  measured training FLOPs / 6ND: {ratio['min']:.3f}-{ratio['max']:.3f} (attention "
          "and embeddings add to 6N per token, most for the smallest models)")
  if not reported:
    return
  print(f"\ncompute-optimal (C = 6ND; * = C, N* and D* all inside the grid's ranges, "
        "else extrapolated):")
  print(f"{'C':>9} {'N*':>10} {'D*':>10} {'D*/N*':>8} {'loss':>7}   N* 5-95%")
  for r in res["compute_optimal"]:
    band = r.get("N_opt_5_95")
    band = f"   [{band[0]:.3g}, {band[1]:.3g}]" if band else ""
    print(f"{r['C']:9.0e} {r['N_opt']:10.3g} {r['D_opt']:10.3g} {r['tokens_per_param']:8.2f} "
          f"{r['loss']:7.4f}{'*' if r['inside_grid'] else ' '}{band}")


def _report_isoflop(iso: dict) -> None:
  if "error" in iso:
    print(f"  approach 2: n/a ({iso['error']})")
  else:
    end = lambda v, inf: inf if v is None or abs(v) == float("inf") else f"{v:.3f}"
    lo, hi = (end(v, inf) for v, inf in zip(iso["a_5_95"], ("-inf", "inf")))
    print(f"  approach 2: N_opt ~ C^{iso['a']:.3f} (bootstrap 5-95% [{lo}, {hi}]; "
          f"{iso['resamples'] - iso['resamples_used']} of {iso['resamples']} resamples kept "
          f"fewer than 2 buckets: beyond both ends) over {len(iso['buckets'])} IsoFLOP buckets "
          "with a significant interior minimum"
          + "".join(f"; C={r['C']:.3g} ({r['n_points']} points): {r['reason']}"
                    for r in iso["rejected"]))


def run(preset: str, workdir, seed: int = 0, sweep: str | None = None,
        overrides: dict | None = None, bootstrap: int = 1000, top_starts: int | None = None,
        devices: int = 0) -> None:
  """Trains (or reuses) every point of `sweep` (default scaling_grid, tiny:
  scaling_grid_tiny) with `overrides` on each; fits and writes WORKDIR/scaling_laws.json and
  its figure. `seed` is the runs' config.seed and the bootstrap's seed."""
  import jax

  from research import config_check, sweep as sweep_lib

  out = Path(workdir)
  name = sweep or ("scaling_grid_tiny" if preset == "tiny" else "scaling_grid")
  base = dict(overrides or {})
  config = cli.apply_overrides(grid_config.get_config(preset), base | {"seed": seed})
  points_overrides = cli.load_sweep(grid_config.__file__, name)
  cli.refuse_replaced(base, points_overrides, "--set ", f"--sweep={name}")
  common.first_devices(devices)  # refused before any point is checked or trained
  for o in points_overrides:  # every point, before the first one trains
    config_check.validate(sweep_lib.apply_overrides(config, o), devices or jax.device_count())
  t0 = time.perf_counter()
  points, failed, runs = train_grid(out, config, points_overrides, devices)
  if len(points) < 2:
    raise RunsFailedError(f"{len(points)} finished runs, a fit needs 2; failed: "
                          + "; ".join(f"{f['run']}: {f['error']}" for f in failed))
  sources = sorted({p["loss_source"] for p in points})
  if len(sources) > 1:  # one fit must not mix held-out and training losses
    lacking = [p["run"] for p in points if p["loss_source"] != "eval_loss"]
    raise InputError(f"runs {lacking} have no eval_loss at their final step, the others do; set "
                     "train.eval_every to divide every run's num_steps and rerun")
  t = config.task
  res = {"preset": preset, "seed": seed, "sweep": name, "set": base,
         "task": {"what": f"2nd-order Markov stream, V={t.vocab_size}, context {t.seq_len}",
                  "vocab_size": t.vocab_size, "seq_len": t.seq_len,
                  "markov_scale": t.markov_scale, "skip_scale": t.skip_scale,
                  "repeat_prob": t.repeat_prob, "eval_sequences": t.eval_sequences,
                  "tokens_per_step": config.train.batch_size * t.seq_len},
         "source_entropy": source_entropy(config), "runs": points, "failed": failed,
         "N_definition": "non-embedding parameters (Kaplan et al.'s convention; Chinchilla and "
                         "Besiroglu et al. count all parameters, `num_params` in runs)",
         "loss_definition": ("held-out eval loss at each run's last step" if sources == ["eval_loss"]
                             else "last training-window loss (no eval_loss was logged)"),
         "measured_flops_over_6ND": {
             "min": min(p["train_flops"] / p["C"] for p in points),
             "max": max(p["train_flops"] / p["C"] for p in points)}}
  res |= analyse(points, bootstrap, top_starts, seed)
  res |= common.wall_times(runs, t0)
  write_json(out / "scaling_laws.json", res, indent=1, strict=True)
  from research.analysis import scaling_plots
  fig = scaling_plots.render_scaling_laws(out / "scaling_laws.json",
                                          out / "figures" / "scaling_laws.png")
  report(res)
  for f in failed:
    print(f"FAILED {f['run']}: {f['error']}")
  print(f"\n{len(points)} runs, {common.wall_text(res)}; wrote {out / 'scaling_laws.json'} "
        f"and {fig}")
  if failed:
    raise RunsFailedError(f"{len(failed)} runs failed: " + ", ".join(f["run"] for f in failed)
                          + f" (errors in {out / 'scaling_laws.json'}); rerun to retry them")


def run_seeds(preset: str, workdir, seeds, **kwargs) -> dict:
  """run() once per seed into WORKDIR/seed_<n>/ (each a complete one-seed workdir), then the
  seeds' fits side by side (research/analysis/scaling_seeds.py) in
  WORKDIR/scaling_laws_seeds.json. A seed whose runs failed is left out of the summary and
  reported at the end (exit 6); a rerun reuses every finished run."""
  from research import workdir as workdir_lib
  from research.analysis import scaling_seeds
  out, per_seed, failed = Path(workdir), {}, []
  for seed in seeds:
    print(f"\n--- scaling laws, {preset} preset, seed {seed}: {out / f'seed_{seed}'}", flush=True)
    try:
      run(preset, out / f"seed_{seed}", seed, **kwargs)
    except RunsFailedError as err:
      failed.append(f"seed {seed}: {err}")
      continue
    per_seed[seed] = workdir_lib.read_object(
        out / f"seed_{seed}" / "scaling_laws.json", "this seed's fit",
        f"delete it and rerun with --seeds: the runs are reused and the fit rewritten")
  summary = {"preset": preset, "seeds_asked": list(seeds), "failed": failed,
             **scaling_seeds.summarize(per_seed)}
  write_json(out / "scaling_laws_seeds.json", summary, indent=1, strict=True)
  scaling_seeds.report(summary)
  if failed:
    raise RunsFailedError("; ".join(failed))
  return summary


def define_flags(fv) -> None:
  common.define_run_flags(fv, PRESETS)
  flags.DEFINE_string("sweep", None, "get_sweep() name (default scaling_grid, tiny: "
                      "scaling_grid_tiny).", flag_values=fv)
  flags.DEFINE_multi_string("set", [], "Config override for every run, KEY=VALUE, e.g. "
                            "optim.learning_rate=1e-3 (repeatable).", flag_values=fv)
  flags.DEFINE_integer("bootstrap", 1000, "Bootstrap resamples (0: no SEs).", lower_bound=0,
                       flag_values=fv)
  flags.DEFINE_integer("top_starts", None, "L-BFGS only from the K best of the 4500 grid starts "
                       "(default: all).", lower_bound=1, flag_values=fv)
  flags.DEFINE_integer("devices", 0, "Use the first N devices (0 = all).", lower_bound=0,
                       flag_values=fv)
  flags.DEFINE_list("seeds", None, "Train the whole grid once per seed, e.g. 0,1,2, into "
                    "WORKDIR/seed_<n>/, and compare the seeds' fits (instead of --seed).",
                    flag_values=fv)


def main(argv=None) -> int:
  args = common.parse_run_flags(define_flags, argv, __doc__, script=__file__,
                                results=("scaling_laws.json", "scaling_laws_seeds.json"))
  overrides = common.typed_overrides(grid_config.get_config(args.preset), args.set)
  seeds = common.parse_seeds(args.seeds)
  kwargs = dict(sweep=args.sweep, overrides=overrides, bootstrap=args.bootstrap,
                top_starts=args.top_starts, devices=args.devices)
  if seeds is not None and args["seed"].present:
    raise InputError(f"--seed={args.seed} and --seeds={','.join(args.seeds)}: give one of them")
  with common.owned(args.workdir, args.experiment, args.preset, args.seed):
    if seeds is None:
      run(args.preset, args.workdir, args.seed, **kwargs)
    else:
      run_seeds(args.preset, args.workdir, seeds, **kwargs)
  return 0


if __name__ == "__main__":
  cli.run_script(main)
