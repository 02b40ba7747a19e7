"""The scaling-law figure, rendered from experiments/scaling_laws.py's result file only.

  render_scaling_laws(scaling_laws.json, png)   three panels:
    loss vs tokens D per model size, with the fitted L(N, D) = E + A/N^alpha + B/D^beta
    IsoFLOP profiles: loss vs N in factor-2 bins of C = 6ND, the approach-3 prediction along
        each bin's C and, where the bin has an interior minimum, its approach-2 parabola
    the compute-optimal frontier N*(C): approach 3 (bootstrap 5-95% band) and approach 2
A fit the data could not support (``fit.reported`` false: too few points, no dependence on N,
D) draws no fitted lines; its reason is the title.
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from research.analysis import plots  # noqa: E402


def _reported(fit: dict) -> bool:
  return fit.get("reported", True)  # result files from before the field: always a fit


def _predict(fit: dict, N, D):
  v = {k: fit[k]["value"] for k in ("E", "A", "B", "alpha", "beta")}
  N, D = np.asarray(N, float), np.asarray(D, float)
  return v["E"] + v["A"] * N ** -v["alpha"] + v["B"] * D ** -v["beta"]


def _frontier(fit: dict, C):
  """N*(C) of the fitted law (research.analysis.scaling.compute_optimal's closed form)."""
  A, B, al, be = (fit[k]["value"] for k in ("A", "B", "alpha", "beta"))
  G = (al * A / (be * B)) ** (1.0 / (al + be))
  return G * (np.asarray(C, float) / 6.0) ** (be / (al + be))


def _loss_vs_tokens(ax, res):
  runs, fit = res["runs"], res["fit"]
  sizes = sorted({r["N"] for r in runs})
  cmap = plt.get_cmap("viridis")
  D_all = np.array([r["D"] for r in runs], float)
  dg = np.geomspace(D_all.min() / 1.5, D_all.max() * 1.5, 100)
  for i, n in enumerate(sizes):
    col = cmap(i / max(1, len(sizes) - 1))
    pts = sorted((r["D"], r["loss"]) for r in runs if r["N"] == n)
    first = next(r for r in runs if r["N"] == n)
    ax.scatter(*zip(*pts), color=col, s=18, zorder=3,
               label=f"N={n:.3g} ({first['num_layers']}x{first['width']})")
    if _reported(fit):
      ax.plot(dg, _predict(fit, n, dg), color=col, lw=1)
  if _reported(fit):
    ax.axhline(fit["E"]["value"], color="grey", ls="--", lw=0.8,
               label=f"fitted E={fit['E']['value']:.3f}")
  if res.get("source_entropy") is not None:
    ax.axhline(res["source_entropy"], color="k", ls=":", lw=0.8,
               label=f"source entropy {res['source_entropy']:.3f}")
  ax.set_xscale("log")
  ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # labels overlap under a decade
  ax.set_xlabel("tokens D")
  ax.set_ylabel("held-out loss (nats)")
  ax.set_title("loss vs tokens; lines: fitted L(N, D)", fontsize=9)
  ax.legend(fontsize=6, frameon=False)


def _isoflop_profiles(ax, res):
  runs, fit, iso = res["runs"], res["fit"], res["isoflop"]
  N, D, L = (np.array([r[k] for r in runs], float) for k in ("N", "D", "loss"))
  C = 6 * N * D
  edges = np.asarray(iso["edges"])
  usable = {round(np.log(b["C"]), 6): b for b in iso.get("buckets", [])}
  cmap = plt.get_cmap("plasma")
  lo, hi = np.log(edges[0]), np.log(edges[-1])
  for e0, e1 in zip(edges[:-1], edges[1:]):
    sel = (C >= e0) & (C < e1)
    if not sel.any():
      continue
    cb = float(np.exp(np.log(C[sel]).mean()))  # as scaling_isoflop.isoflop_fit labels a bucket
    col = cmap(0.85 * (np.log(cb) - lo) / (hi - lo))
    ax.scatter(N[sel], L[sel], color=col, s=18, zorder=3)
    if sel.sum() < 2:
      continue
    ng = np.geomspace(N[sel].min() / 1.3, N[sel].max() * 1.3, 60)
    if _reported(fit):
      ax.plot(ng, _predict(fit, ng, cb / (6 * ng)), color=col, lw=1, label=f"C={cb:.2g}")
    b = usable.get(round(np.log(cb), 6))
    if b is not None:
      c2, c1, c0 = b["coeffs"]
      x = np.log(ng)
      ax.plot(ng, c2 * x * x + c1 * x + c0, color=col, lw=1, ls="--")
      ax.scatter([b["N_opt"]], [b["L_opt"]], marker="x", color=col, s=40, zorder=4)
  ax.set_xscale("log")
  ax.set_xlabel("non-embedding parameters N")
  ax.set_ylabel("held-out loss (nats)")
  ax.set_title("IsoFLOP profiles (C = 6ND bins of x2); solid: approach 3,\n"
               "dashed + x: approach-2 parabola and minimum", fontsize=9)
  if ax.get_legend_handles_labels()[0]:  # no bin with two runs: nothing to label
    ax.legend(fontsize=6, frameon=False)


def _frontier_panel(ax, res):
  runs, fit, iso = res["runs"], res["fit"], res["isoflop"]
  C = np.array([6.0 * r["N"] * r["D"] for r in runs])
  ax.scatter(C, [r["N"] for r in runs], color="lightgrey", s=14, label="grid runs")
  cg = np.geomspace(C.min() / 3, C.max() * 3, 100)
  if _reported(fit):
    e = res["exponents"]["N_opt ~ C^a"]
    ax.plot(cg, _frontier(fit, cg), "k-", lw=1.5, label=f"approach 3: N* ~ C^{e:.2f}")
  band = [r for r in res["compute_optimal"] if "N_opt_5_95" in r]
  if band:
    ax.fill_between([r["C"] for r in band], [r["N_opt_5_95"][0] for r in band],
                    [r["N_opt_5_95"][1] for r in band], color="k", alpha=0.12, lw=0,
                    label="bootstrap 5-95%")
  if iso.get("buckets"):
    bc = np.array([b["C"] for b in iso["buckets"]])
    ax.scatter(bc, [b["N_opt"] for b in iso["buckets"]], marker="x", color="r", s=40, zorder=4,
               label=f"approach 2: N* ~ C^{iso['a']:.2f}")
    ax.plot(cg, np.exp(iso["log_intercept"]) * cg ** iso["a"], "r--", lw=1)
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_ylim(min(r["N"] for r in runs) / 10, max(r["N"] for r in runs) * 10)
  # Outside the grid's C range the lines are the fitted law extrapolated.
  for lo, hi in ((cg[0], C.min()), (C.max(), cg[-1])):
    ax.axvspan(lo, hi, color="0.9", zorder=0, lw=0)
  ax.text(0.02, 0.02, "shaded: outside the grid's C (extrapolated)", transform=ax.transAxes,
          fontsize=6, color="0.4")
  ax.set_xlabel("training FLOP C = 6ND")
  ax.set_ylabel("compute-optimal N* (non-embedding)")
  ax.set_title("compute-optimal frontier", fontsize=9)
  ax.legend(fontsize=6, frameon=False)


def render_scaling_laws(result_json, out_png) -> Path:
  res = json.loads(Path(result_json).read_text())
  fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), dpi=110)
  _loss_vs_tokens(axes[0], res)
  _isoflop_profiles(axes[1], res)
  _frontier_panel(axes[2], res)
  f = res["fit"]
  if not _reported(f):
    fig.suptitle(f"{res['task']['what']}: no L(N, D) fit reported: {f['reason']}", fontsize=8)
    return plots.save_figure(fig, out_png)

  def fmt(k, name):  # value [bootstrap 5-95%]: the SE is dominated by degenerate resamples
    band = f[k].get("p5_p95")
    return f"{name}={f[k]['value']:.3g}" + (f" [{band[0]:.3g}, {band[1]:.3g}]" if band else "")
  fig.suptitle(f"{res['task']['what']}: L = E + A/N^α + B/D^β, "
               + ", ".join(fmt(k, n) for k, n in (("E", "E"), ("alpha", "α"), ("beta", "β")))
               + f" (bootstrap 5-95%), A={f['A']['value']:.3g}, B={f['B']['value']:.3g}; "
               f"{f['n_points']} runs", fontsize=10)
  return plots.save_figure(fig, out_png)
