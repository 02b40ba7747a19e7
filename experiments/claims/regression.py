"""Headline claims of Garg et al. 2022 and Raventós et al. 2023: in-context regression."""
from __future__ import annotations

from pathlib import Path

from experiments.claims.rows import claim, explain_fail, not_shown, rounded, load, mean, existing


# ----------------------------------------------------------------------------- Garg 2022
def garg2022(run_dir: Path, preset: str) -> dict:
  path = run_dir / "probes" / "icl_regression.json"
  probe = load(path)
  d, ks, c = probe["n_dims"], probe["k"], probe["curves"]
  model, ls = c["model"]["mean"], c["least_squares"]["mean"]
  setup = ("" if preset == "paper" else
           f"restated for d={d}, {len(ks)} points ({preset} preset; Garg: d=20, 41 points). ")
  below = [abs(model[k] - (d - k) / d) for k in ks if k < d]
  above = [model[k] for k in ks if k >= d]
  gap = max(abs(a - b) for a, b in zip(model, ls))
  ratios = [min(c["nearest_neighbours"]["mean"][k], c["averaging"]["mean"][k]) / max(model[k], 1e-9)
            for k in ks if k >= 1]
  rows = [
      claim("k < d: error about (d-k)/d (least squares' under-determined error)", "(d-k)/d",
            rounded(max(below)) if below else None, "max_k<d |model-(d-k)/d| <= 0.1",
            max(below) <= 0.1 if below else None,
            setup + "ours = the largest deviation over k < d; 0.1 reads 'about' (ours)"),
      claim("k >= d: error about 0", "~0", rounded(mean(above)) if above else None,
            "mean over k >= d <= 0.1", mean(above) <= 0.1 if above else None,
            setup + (f"model at k=d: {model[d]:.3f}" if d < len(model) else "no k >= d probed")),
      explain_fail(claim(
          "Transformer tracks least squares at every k", "tracks LS", rounded(gap),
          "max_k |model-LS| <= 0.1", gap <= 0.1,
          setup + f"largest gap at k={max(ks, key=lambda k: abs(model[k] - ls[k]))}"), preset,
          "least squares' error falls from 1/d to exactly 0 between k=d-1 and k=d, and a model "
          "trained for the preset's budget (cpu: 8k steps; Garg: 500k) has not yet sharpened "
          "that corner, while it is within 0.1 of least squares at the other k."),
      claim("3-NN and averaging stay well above the Transformer", "well above",
            rounded(min(ratios), 2), "min over k >= 1 of baseline/model >= 2", min(ratios) >= 2,
            setup + "'well above' read as at least twice the model's error (ours)"),
  ]
  shift_path = run_dir / "distribution_shift.json"
  sparse_path = run_dir / "sparse_linear" / "probes" / "icl_regression.json"
  rows.insert(4, _garg_sparse(sparse_path, setup))
  rows += _garg_shifts(shift_path, setup)
  return {"claims": rows, "results": [str(path)] + [str(p) for p in (sparse_path, shift_path)
                                                    if p.is_file()],
          "figures": existing(run_dir / "figures" / "icl_regression.png"), "notes": []}


def _garg_sparse(path: Path, setup: str) -> dict:
  """Garg Fig. 2: on sparse linear functions the Transformer's error curve is close to
  Lasso's (and so, where Lasso beats least squares, below least squares)."""
  name = "sparse linear: the Transformer is close to Lasso"
  if not path.is_file():
    return not_shown(name, "close to Lasso", f"no {path}: rerun garg2022 (it trains the "
                     "sparse-linear run after the linear one)")
  probe = load(path)
  d, c = probe["n_dims"], probe["curves"]
  model, lasso, ls = (c[n]["mean"] for n in ("model", "lasso", "least_squares"))
  to_lasso = mean(abs(a - b) for a, b in zip(model, lasso))
  to_ls = mean(abs(a - b) for a, b in zip(model, ls))
  adv = mean(ls[k] - lasso[k] for k in range(1, d))
  return claim(name, "close to Lasso", f"mean |model - Lasso| {to_lasso:.3f}, mean |model - "
               f"least squares| {to_ls:.3f}", "mean over k of |model - Lasso| <= 0.05 and "
               "closer to Lasso than to least squares", to_lasso <= 0.05 and to_lasso < to_ls,
               setup + f"sparse_linear run, {probe.get('num_prompts', '?')} fresh prompts. "
               f"Lasso's advantage over least squares at 1 <= k < d here: {adv:+.3f} (Garg's "
               "d = 20, s = 3 gives Lasso a wide margin; at d = 5 the two are close, so the "
               "check is the distance to Lasso, not a margin over least squares)")


def _garg_shifts(path: Path, setup: str) -> list[dict]:
  """Garg Sec. 4: robust to moderate input shifts, degrades when x is scaled x2-3."""
  moderate = ("orthant", "skewed", "scale_0.5")
  names = ("robust to moderate distribution shift (orthant, skewed covariance, x * 0.5)",
           "degrades under input scaling x2-3")
  if not path.is_file():
    return [not_shown(n, "qualitative", f"no {path.name}: rerun garg2022 (it writes the "
                      "distribution-shift probe after training)") for n in names]
  res = load(path)
  d = res["n_dims"]
  err = {s: mean(c["model"][d:]) for s, c in res["shifts"].items()}  # mean over k >= d
  base = err["none"]
  note = setup + ("error / (d E[x^2]) at k >= d, mean over k, "
                  f"{res['num_prompts']} fresh tasks per shift; least squares stays at 0")
  return [
      claim(names[0], "robust", ", ".join(f"{s} {err[s]:.3f}" for s in moderate)
            + f" (no shift {base:.3f})", "each <= no-shift error + 0.1",
            all(err[s] <= base + 0.1 for s in moderate), note),
      claim(names[1], "degrades", f"x2 {err['scale_2']:.3f}, x3 {err['scale_3']:.3f} "
            f"(no shift {base:.3f})", "x3 >= 3x the no-shift error and x3 > x2 > no shift",
            err["scale_3"] >= 3 * base and err["scale_3"] > err["scale_2"] > base, note),
  ]


# ----------------------------------------------------------------------------- Raventós 2023
def raventos2023(run_dir: Path, preset: str) -> dict:
  path = run_dir / "raventos2023.json"
  res = load(path)
  pools = sorted(res["pools"], key=lambda p: p["M"])
  d = res["n_dims"]
  setup = ("" if preset == "paper" else
           f"{preset} preset: D={d}, K={res['n_points']}, {res['model']['num_layers']} layers / "
           f"width {res['model']['width']}, {res['num_steps']} steps (Raventós: D=8, K=16, "
           "8 layers / width 128, 500k steps). ")
  dist = f"distance = {res['distance']}. "
  lo, hi = pools[0] if pools else None, pools[-1] if pools else None
  rows = [
      claim("below the threshold the model tracks dMMSE on new tasks (smallest M)", "dMMSE",
            None if lo is None else f"M={lo['M']}: |m-dMMSE| {lo['d_dmmse']:.3f} vs "
                                    f"|m-Ridge| {lo['d_ridge']:.3f}",
            "closer to dMMSE than to Ridge", None if lo is None else lo["d_dmmse"] < lo["d_ridge"],
            setup + dist),
      explain_fail(claim(
          "above the threshold the model tracks Ridge on new tasks (largest M)", "Ridge",
          None if hi is None else f"M={hi['M']}: |m-Ridge| {hi['d_ridge']:.3f} vs "
                                  f"|m-dMMSE| {hi['d_dmmse']:.3f}",
          "closer to Ridge than to dMMSE", None if hi is None else hi["d_ridge"] < hi["d_dmmse"],
          setup + dist), preset,
          "the largest pools need the longest training (they are closest to fresh tasks), and "
          f"{res['num_steps']} steps leave that model above both baselines (model "
          + (f"{mean(hi['curves']['model']):.3f}, dMMSE {mean(hi['curves']['dmmse']):.3f}, "
             f"Ridge {mean(hi['curves']['ridge']):.3f} mean error / D), where dMMSE has "
             "already come close to Ridge, so 'closer to' is decided by a small gap."
             if hi is not None and "curves" in hi else "-)")),
  ]
  # Raventós: M* ~ 2^13-2^15 at D = 8 and grows about linearly with D; approx. -> one octave.
  lo_m, hi_m = 2 ** 13 * d / 8, 2 ** 15 * d / 8
  m_star = res["m_star"]
  grid = sorted(res["grid"])
  covered = bool(grid) and grid[-1] > hi_m * 2  # the grid reaches past the tolerance window
  rows.append(explain_fail(claim(
      f"task-diversity threshold M* ~ 2^13-2^15 at D=8, ~linear in D (here D={d})",
      f"{lo_m:.0f}-{hi_m:.0f}" if d != 8 else "8192-32768",
      m_star if m_star is not None else (f"none up to {grid[-1]}" if covered else None),
      f"{lo_m / 2:.0f} <= M* <= {hi_m * 2:.0f} (one octave beyond the approx. range)",
      lo_m / 2 <= m_star <= hi_m * 2 if m_star is not None else (False if covered else None),
      setup + "M* = smallest M of the grid closer to Ridge than to dMMSE; " + dist
      + f"grid {grid[0]}..{grid[-1]} (resolution = grid spacing)"
      + ("" if m_star is not None else "; no M reached Ridge" if covered
         else "; no M reached Ridge and the grid stops below the threshold range")), preset,
      "M* is a property of the model and its training budget as well as of D: the preset's "
      f"{res['model']['num_layers']}-layer / width-{res['model']['width']} model trained "
      f"{res['num_steps']} steps switches to Ridge at M* = {m_star}, Raventós's 8-layer / "
      "width-128 model trained 500k steps at 2^13-2^15."))
  return {"claims": rows, "results": [str(path)],
          "figures": existing(run_dir / "figures" / "raventos2023.png"),
          "notes": [res.get("ensemble", "")]}
