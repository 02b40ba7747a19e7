"""Headline claims of Garg et al. 2022 and Raventós et al. 2023: in-context regression.

Errors are the probes' normalised errors (squared error / d): predicting 0 scores 1 at every k
and under every input shift, the reference point of the zero-predictor control.
"""
from __future__ import annotations

import math
from pathlib import Path

from experiments.claims.rows import claim, existing, load, mean, not_shown, rounded

ZERO, UNTRAINED = "zero predictor", "untrained model"
# Raventós's null results beyond the zero predictor (experiments/claims/controls.py).
MIDWAY = "predictions midway between Ridge's and dMMSE's"
POOL_GLITCH = "one pool size nearer Ridge, dMMSE otherwise"
LS_LIKE = "least squares' error x 0.98 on the sparse task"  # Garg's sparse row
NAN_K = "model error NaN at one k, least squares' + 0.02 elsewhere"
# Garg et al. 2022 (REFERENCES.md): d = 20, 41 points; sparse linear s = 3.
GARG_D, GARG_POINTS, GARG_SPARSITY = 20, 41, 3
# Raventós et al. 2023 (REFERENCES.md): M* ~ 2^13-2^15 at D = 8, about linear in D (approx.).
# raventos2023 runs ONE D, so only M* at that D is measured: the growth with D is no claim of
# ours; at a D other than 8 the window is this range scaled by D / 8 on the paper's word.
RAVENTOS_M_STAR_D8 = (2 ** 13, 2 ** 15)


# ----------------------------------------------------------------------------- Garg 2022
def garg2022(run_dir: Path, preset: str) -> dict:
  path = run_dir / "probes" / "icl_regression.json"
  probe = load(path)
  d, ks, c = probe["n_dims"], probe["k"], probe["curves"]
  model, ls = c["model"]["mean"], c["least_squares"]["mean"]
  setup = ("" if preset == "paper" else f"restated for d={d}, {len(ks)} points ({preset} preset; "
           f"Garg: d={GARG_D}, {GARG_POINTS} points). ")
  # Every row reads the curves at every k: a NaN (a prediction that diverged, an error not
  # measured) at one k was skipped by max / min over k and PASSed 'tracks least squares at
  # every k', 'k < d' and '3-NN and averaging stay above' (NaN at k = 3, LS + 0.02 elsewhere).
  # (the sparse and shift probes have their own rows and their own checks)
  nonfinite = lambda names, at: [k for k in ks if at(k) and not all(
      math.isfinite(c[n]["mean"][k]) for n in names)]
  nf_below, nf_tracks, nf_ratio = (nonfinite(("model",), lambda k: k < d),
                                   nonfinite(("model", "least_squares"), lambda k: True),
                                   nonfinite(("model", "nearest_neighbours", "averaging"),
                                             lambda k: k >= 1))
  bad = sorted(set(nf_tracks + nf_ratio))
  at = setup + (f"non-finite errors at k = {bad}. " if bad else "")
  below = {k: abs(model[k] - (d - k) / d) for k in ks if k < d}
  above = [model[k] for k in ks if k >= d]
  gaps = {k: abs(model[k] - ls[k]) for k in ks}
  worst = max(gaps, key=gaps.get)
  ratios = {k: min(c["nearest_neighbours"]["mean"][k], c["averaging"]["mean"][k])
            / max(model[k], 1e-9) for k in ks if k >= 1}
  k_below = max(below, key=below.get) if below else None
  k_ratio = min(ratios, key=ratios.get)
  rows = [
      claim("k < d: error about (d-k)/d (least squares' under-determined error)", "(d-k)/d",
            rounded(below[k_below]) if below else None, "max_k<d |model-(d-k)/d| <= 0.1",
            below[k_below] <= 0.1 and not nf_below if below else None,
            at + (f"largest deviation at k={k_below}: model {model[k_below]:.3f} vs "
                     f"{(d - k_below) / d:.3f}" if below else "no k < d probed"),
            why="'about': a tenth of the zero predictor's error, which is 1",
            control=(ZERO, NAN_K)),
      claim("k >= d: error about 0", "~0", rounded(mean(above)) if above else None,
            "mean over k >= d <= 0.1", mean(above) <= 0.1 if above else None,
            at + (f"model at k=d: {model[d]:.3f}, at the last k: {model[-1]:.3f}"
                     if above else "no k >= d probed"),
            why="'about 0': a tenth of the zero predictor's error", control=ZERO),
      claim("Transformer tracks least squares at every k", "tracks LS", rounded(gaps[worst]),
            "max_k |model-LS| <= 0.1", gaps[worst] <= 0.1 and not nf_tracks,
            at + f"largest gap at k={worst}: model {model[worst]:.3f}, least squares "
            f"{ls[worst]:.3f}; it exceeds 0.1 at k = "
            + (", ".join(str(k) for k in ks if gaps[k] > 0.1) or "none"),
            why="'tracks': within a tenth of the zero predictor's error at every k",
            control=(ZERO, NAN_K)),
      claim("3-NN and averaging stay well above the Transformer", "well above",
            rounded(ratios[k_ratio], 2), "min over k >= 1 of baseline/model >= 2",
            ratios[k_ratio] >= 2 and not nf_ratio,
            at + f"smallest ratio at k={k_ratio}: model {model[k_ratio]:.3f}, 3-NN "
            f"{c['nearest_neighbours']['mean'][k_ratio]:.3f}, averaging "
            f"{c['averaging']['mean'][k_ratio]:.3f}",
            why="'well above' read as at least twice the model's error (ours)",
            control=(ZERO, NAN_K)),
  ]
  shift_path = run_dir / "distribution_shift.json"
  sparse_path = run_dir / "sparse_linear" / "probes" / "icl_regression.json"
  rows.append(_garg_sparse(sparse_path, setup))
  rows += _garg_shifts(shift_path, setup)
  return {"claims": rows, "results": [str(path)] + [str(p) for p in (sparse_path, shift_path)
                                                    if p.is_file()],
          "figures": existing(run_dir / "figures" / "icl_regression.png"), "notes": []}


def _garg_sparse(path: Path, setup: str) -> dict:
  """Garg Fig. 2 (sparse linear): the Transformer beats least squares below k = d and nearly
  matches Lasso, here Lasso with alpha tuned per k on held-out prompts (as a user would)."""
  name = "sparse linear: beats least squares below k = d and tracks the tuned Lasso"
  if not path.is_file():
    return not_shown(name, "below LS, ~Lasso", f"no {path}: rerun garg2022 (it trains the "
                     "sparse-linear run after the linear one)", control=ZERO)
  probe = load(path)
  d, c = probe["n_dims"], probe["curves"]
  if "lasso_tuned" not in c:
    return not_shown(name, "below LS, ~Lasso", f"{path} predates the tuned-Lasso baseline "
                     "(research/tasks/regression.py LASSO_ALPHAS): rerun garg2022", control=ZERO)
  model, lasso, ls = (c[n]["mean"] for n in ("model", "lasso_tuned", "least_squares"))
  # The tuned Lasso is scored on the held-out half of the prompts: the model is compared with
  # it there (a file from before that curve compares the model's mean over every prompt).
  held = c.get("model_held_out", {}).get("mean")
  model_there = held or model
  under = range(1, d)
  # A NaN at one k >= d was skipped by the max over k (PASS with the model undefined there).
  nonfinite = [k for k in range(len(model)) if not all(
      math.isfinite(x[k]) for x in (model, model_there, lasso, ls))]
  beats = mean(ls[k] - model[k] for k in under)
  to_lasso = max(abs(model_there[k] - lasso[k]) for k in range(len(model)))
  # 'Within a tenth of the zero predictor's error' on THIS task: with s of d weights nonzero
  # the zero predictor scores s/d (0.15 at Garg's d = 20, s = 3), not the dense task's 1, and
  # a fixed 0.1 passed least squares itself (within 0.086 of the tuned Lasso there). Measured
  # on the probe's own prompts: least squares predicts 0 at k = 0 (no examples), so its error
  # there is the zero predictor's.
  zero = ls[0]
  tol = 0.1 * zero
  ok = beats > 0 and all(model[k] < ls[k] for k in under) and to_lasso <= tol and not nonfinite
  return claim(name, "below LS, ~Lasso", f"least squares - model over 1 <= k < d: {beats:+.3f}; "
               f"max_k |model - tuned Lasso| {to_lasso:.3f}",
               "model < least squares at every 1 <= k < d, and max_k |model - tuned Lasso| <= "
               f"0.1 x the zero predictor's error = {tol:.3f}",
               ok, setup + (f"non-finite errors at k = {nonfinite}; " if nonfinite else "")
               + f"mean over 1 <= k < d: model {mean(model[k] for k in under):.3f}, "
               f"tuned Lasso {mean(lasso[k] for k in under):.3f}, least squares "
               f"{mean(ls[k] for k in under):.3f}; zero predictor (least squares at k = 0) "
               f"{zero:.3f}; sparse_linear run, {probe.get('num_prompts')} "
               f"fresh prompts; tuned Lasso's alpha per k {probe.get('lasso_tuned_alpha')} (chosen "
               "on half the prompts, scored on the other half, "
               + ("as the model is compared with it)" if held else "while this file has the "
                  "model's error over every prompt only: rerun garg2022 for the held-out one)"),
               why="'nearly matches' as for least squares: within a tenth of the zero "
               "predictor's error, measured on the sparse task (s/d, not 1)",
               control=(ZERO, LS_LIKE, NAN_K))


def _garg_shifts(path: Path, setup: str) -> list[dict]:
  """Garg Sec. 4: robust when the query leaves the examples' orthant and under x * 0.5;
  degrades under skewed covariance and when x is scaled x2-3."""
  names = ("robust to moderate shift (query in another orthant, x * 0.5)",
           "degrades under skewed covariance and input scaling x2-3")
  if not path.is_file():
    return [not_shown(n, "qualitative", f"no {path.name}: rerun garg2022 (it writes the "
                      "distribution-shift probe after training)", control=ZERO) for n in names]
  res = load(path)
  d = res["n_dims"]
  err = {s: mean(c["model"][d:]) for s, c in res["shifts"].items()}  # mean over k >= d
  base = err["none"]
  # Only the last position's query leaves the orthant: it is compared with the unshifted
  # error at that same position (the mean over k >= d includes the harder positions near d).
  base_at = {"orthant": res["shifts"]["none"]["model"][-1], "scale_0.5": base}
  if res.get("orthant_query") == "last":
    err["orthant"] = res["shifts"]["orthant"]["model"][-1]
  note = setup + (f"error / (d E[x^2]) (predicting 0 scores 1), mean over k >= d; orthant: the "
                  f"last position, whose query lies in the opposite orthant, against the "
                  f"unshifted error there ({base_at['orthant']:.3f}); {res['num_prompts']} "
                  "fresh tasks per shift")
  robust_max = {s: max(2 * b, b + 0.1) for s, b in base_at.items()}
  return [
      claim(names[0], "robust", f"orthant {err['orthant']:.3f} (no shift "
            f"{base_at['orthant']:.3f}), x0.5 {err['scale_0.5']:.3f} (no shift {base:.3f})",
            "each <= max(2 x its no-shift error, no-shift + 0.1) and <= 0.25",
            res.get("orthant_query") == "last" and all(
                err[s] <= min(robust_max[s], 0.25) for s in robust_max),
            note + ("" if res.get("orthant_query") == "last" else "; the file predates the "
                    "opposite-orthant query (examples and query shared an orthant): rerun"),
            why="robust = near the unshifted error and far below the zero predictor's 1",
            control=ZERO),
      claim(names[1], "degrades", f"skewed {err['skewed']:.3f}, x2 {err['scale_2']:.3f}, "
            f"x3 {err['scale_3']:.3f} (no shift {base:.3f})",
            "skewed and x3 each >= 2x no-shift + 0.02, and x3 > x2 > no shift",
            all(err[s] >= 2 * base + 0.02 for s in ("skewed", "scale_3"))
            and err["scale_3"] > err["scale_2"] > base, note,
            why="'degrades': at least double the unshifted error, beyond a 0.02 noise floor",
            control=ZERO),
  ]


# ----------------------------------------------------------------------------- Raventós 2023
def raventos2023(run_dir: Path, preset: str) -> dict:
  from experiments.raventos2023 import DISTANCE, FRESH, estimate_m_star
  path = run_dir / "raventos2023.json"
  res = load(path)
  pools = sorted(res["pools"], key=lambda p: p["M"])
  d = res["n_dims"]
  setup = ("" if preset == "paper" else
           f"{preset} preset: D={d}, K={res['n_points']}, {res['model']['num_layers']} layers / "
           f"width {res['model']['width']}, {res['num_steps']} steps (Raventós: D=8, K=16, "
           "8 layers / width 128, 500k steps). ")
  names = ("below the threshold the model's predictions track dMMSE's (smallest M)",
           "above the threshold the model's predictions track Ridge's (largest M)",
           "task-diversity threshold M* in Raventós's window (2^13-2^15 at D=8"
           + (")" if d == 8 else f"; here D={d}, the window scaled by D/8)"))
  # The claims are the finite pools': a failed M = inf run (fresh tasks) moves none of them.
  failed = [f for f in res.get("failed") or [] if f["M"] != FRESH]
  # A grid M with neither a pool nor a failure (a hand-edited or older file) was read as
  # measured: M* = 2^14 on pools 2, 8, 2^14 of grid 2, 8, 2^12, 2^14 was placed in
  # (2^12, 2^14], inside the window, where the pools bound it only to (8, 2^14].
  unmeasured = sorted(set(res["grid"]) - {p["M"] for p in pools} - {f["M"] for f in failed})
  if res.get("distance") != DISTANCE or not pools or failed or unmeasured or any(
      "d_noise" not in p for p in pools):
    why = ("the grid has no finite pool (M = inf alone: the claims compare pools)"
           if not pools and not res["grid"] and res.get("fresh_tasks") else
           "no pool finished" if not pools else
           f"pool sizes {[f['M'] for f in failed]} failed (the smallest / largest M and M* "
           "would silently move to other pools): rerun raventos2023" if failed else
           f"the grid's M = {unmeasured} have no pool and no failure recorded (the smallest / "
           "largest M and M* would be read off other pools): rerun raventos2023"
           if unmeasured else
           f"{path} compares error curves ({res.get('distance')}), not predictions: rerun "
           "raventos2023" if res.get("distance") != DISTANCE else
           f"{path} predates the distances' noise estimate: rerun raventos2023")
    return {"claims": [not_shown(n, "-", why, control=ZERO) for n in names],
            "results": [str(path)], "figures": [], "notes": [_fresh_note(res)]}

  def tracks(p, target, other):
    """Resolvably closer to target's predictions than to other's, and resolvably closer to
    target's than the two estimators' midpoint is.

    The distances are mean SQUARED prediction differences: a model on the segment a fraction t
    of the way from target to other is at t^2 R from target (R = Ridge-to-dMMSE), so the
    midpoint, which tracks neither, sits at R/4 from each, inside the old '<= R/2' gate, and
    'closer' between two distances of R/4 was decided by less than the probe's noise. Both
    gates now need a margin of d_noise, the probe's resolution for a difference of two of its
    distances (as estimate_m_star uses it): d_other - d_target > d_noise, and
    d_target < R/4 - d_noise (a model far from both, or midway, tracks neither)."""
    d_t, d_o, noise = p[f"d_{target}"], p[f"d_{other}"], p["d_noise"]
    return d_o - d_t > noise and d_t < p["ridge_to_dmmse"] / 4 - noise

  def described(p):
    pool = p.get("pool_tasks")
    pool_txt = ("" if not pool else f"; error on pool tasks: model {mean(pool['model']):.3f}, "
                f"dMMSE {mean(pool['dmmse']):.3f}, Ridge {mean(pool['ridge']):.3f}")
    return (f"M={p['M']}: to dMMSE {p['d_dmmse']:.3f}, to Ridge {p['d_ridge']:.3f}, Ridge to "
            f"dMMSE {p['ridge_to_dmmse']:.3f}{pool_txt}")

  lo, hi = pools[0], pools[-1]
  dist = f"distance = {DISTANCE}. "
  tol = ("d_{1} - d_{0} > noise, and d_{0} < Ridge-to-dMMSE / 4 - noise (the midpoint's "
         "distance: distances are squared)")
  why = ("'tracks' = resolvably nearer to it than to the alternative, and resolvably nearer "
         "to it than the two estimators' midpoint is")
  rows = [
      claim(names[0], "dMMSE", described(lo), tol.format("dMMSE", "Ridge"),
            tracks(lo, "dmmse", "ridge"), setup + dist + f"noise {lo['d_noise']:.3f}", why=why,
            control=(ZERO, MIDWAY)),
      claim(names[1], "Ridge", described(hi), tol.format("Ridge", "dMMSE"),
            tracks(hi, "ridge", "dmmse"), setup + dist + f"noise {hi['d_noise']:.3f}", why=why,
            control=(ZERO, MIDWAY)),
  ]
  lo_m, hi_m = (m * d / 8 for m in RAVENTOS_M_STAR_D8)
  grid = sorted(res["grid"])
  m_star = estimate_m_star(pools)
  # No crossing on the grid is a FAIL (the experiment ran and no M switched to Ridge), even
  # where M* could lie beyond the grid's top inside the window: that part was not measured.
  # The grid places M* in (the next smaller M, M*]: the whole bracket must lie in the window,
  # so a coarse grid cannot place it there by where its points fall (grid 2, 8, 32, 8192 put
  # a switch at 64 at 'M* = 8192'; judged at the bracket's middle, 2^20 above 1024 passed).
  # At the grid's smallest M nothing bounds it from below. M = 0 (fresh tasks: unlimited
  # diversity) is no bound from below.
  below = [m for m in grid if m_star is not None and 0 < m < m_star]
  ok, ours = ((bool(below) and lo_m / 2 <= below[-1] and m_star <= hi_m * 2, m_star)
              if m_star is not None else (False, f"none up to {grid[-1]}"))
  short = ("" if m_star is None else
           "; M* at the grid's smallest M: not bounded below" if not below else
           f"; M* in ({below[-1]}, {m_star}]"
           + (f", its top {m_star / (hi_m * 2):.1f}x above the window" if m_star > hi_m * 2
              else f", its bottom {lo_m / 2 / below[-1]:.1f}x below the window's low end"
              if below[-1] < lo_m / 2 else ""))
  margins = ", ".join(f"M={p['M']} {p['d_dmmse'] - p['d_ridge']:+.3f} (noise {p['d_noise']:.3f})"
                      for p in pools)
  rows.append(claim(
      names[2], f"{lo_m:.0f}-{hi_m:.0f}", ours,
      f"{lo_m / 2:.0f} <= M* <= {hi_m * 2:.0f} for every M* the grid allows: (next smaller "
      "M, M*] inside", ok,
      setup + f"one D ({d}) per run: M*'s growth with D (about linear, Raventós) is not "
      "measured here" + ("" if d == 8 else f"; the window at D={d} is their D=8 range x "
                         f"{d}/8 on that statement, untested") + ". "
      "M* = smallest M of the grid from which every M's predictions are closer to "
      "Ridge's than to dMMSE's by more than the probe's noise (90% bootstrap half-widths of the "
      "two distances, added); " + dist + f"grid {grid[0]}..{grid[-1]}" + short
      + ("" if m_star is not None else "; no M from which every larger M is resolvably closer "
         "to Ridge"
         + ("" if grid[-1] > hi_m * 2 else f" (M* above {grid[-1]}, inside the window, is not "
            "excluded: the grid stops there)"))
      + f"; d_dMMSE - d_Ridge: {margins}",
      why="Raventós's range is read off a plot (approx.): one octave beyond it either side",
      control=(ZERO, POOL_GLITCH)))
  return {"claims": rows, "results": [str(path)],
          "figures": existing(run_dir / "figures" / "raventos2023.png"),
          "notes": [res.get("ensemble", ""), _fresh_note(res)]}


def _fresh_note(res: dict) -> str:
  """The M = inf run beside the claims ('' without one): it has no dMMSE, so no claim."""
  fresh = res.get("fresh_tasks")
  if not fresh:
    return ""
  model, ridge = (mean(fresh["curves"][n]) for n in ("model", "ridge"))
  return (f"M = inf (a fresh task per prompt; no claim): model error {model:.3f}, Ridge "
          f"{ridge:.3f}; model to Ridge {fresh['d_ridge']:.3f} (90% half-width "
          f"{fresh['d_ridge_half_width']:.3f})")
