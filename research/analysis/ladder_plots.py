"""Figures of the LM ladder (experiments/ladder.py), rendered from its ladder.json.

  ability maps  per ability (few-shot task at its largest k), one panel per metric: every
                probed checkpoint of every size placed at (training tokens, parameters),
                coloured by its score; black-edged squares are above chance by their interval
  frontier      loss against compute (6 x parameters x tokens) per size, the frontier and its
                fitted power law
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from research.analysis.emergence_plots import TITLES  # noqa: E402
from research.analysis.plots import save_figure  # noqa: E402


def _above(cell: dict, metric: str, higher_is_better: bool) -> bool:
  _, lo, hi = cell[metric]
  chance = cell["chance"][metric]
  return lo > chance if higher_is_better else hi < chance


def render_ability(res: dict, task: str, out_png) -> Path:
  """One ability's map over (parameters x training tokens), one panel per metric."""
  ability = res["abilities"][task]
  k, metrics, hib = str(ability["k"]), res["metrics"], res["higher_is_better"]
  fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.8), squeeze=False)
  for ax, m in zip(axes[0], metrics):
    pts = [(r["tokens"], s["num_params"], r["few_shot"][task][k])
           for s in res["sizes"] for r in s["rows"] if r.get("few_shot") and r["tokens"] > 0]
    x = np.array([p[0] for p in pts], float)
    y = np.array([p[1] for p in pts], float)
    v = np.array([p[2][m][0] for p in pts], float)
    edge = ["black" if _above(p[2], m, hib[m]) else "none" for p in pts]
    sc = ax.scatter(x, y, c=v, marker="s", s=90, cmap="viridis" if hib[m] else "viridis_r",
                    edgecolors=edge, linewidths=1.2)
    fig.colorbar(sc, ax=ax, label=f"{m} (chance {ability['chance'][m]:.3g})")
    first = ability["first_above_chance"][m]
    where = "never leaves chance" if first is None else (
        f"leaves chance: {first['compute']:.2g} FLOPs")
    ax.set(xscale="log", yscale="log", xlabel="training tokens", ylabel="parameters",
           title=f"{TITLES.get(m, m)}\n{where}")
    ax.tick_params(which="minor", labelbottom=False, labelleft=False)  # short ranges: no clutter
    sizes = sorted({s["num_params"] for s in res["sizes"]})
    ax.set_yticks(sizes, [f"{n / 1e6:.2g}M" for n in sizes])
  fig.suptitle(f"{task}, k = {k}: score over the ladder (black edge: above chance)")
  return save_figure(fig, out_png)


def render_frontier(res: dict, out_png) -> Path:
  fig, ax = plt.subplots(figsize=(6.5, 4.5))
  for s in res["sizes"]:
    rows = [r for r in s["rows"] if r["compute"] > 0]
    ax.plot([r["compute"] for r in rows], [r["loss"] for r in rows], "o-", ms=3, alpha=0.7,
            label=f"{s['num_params']:,} params")
  fr = res["frontier"]
  pts = fr["points"]
  if pts:
    ax.plot([p["compute"] for p in pts], [p["loss"] for p in pts], "ks", ms=5, mfc="none",
            label="frontier")
  if fr["fit"]:
    f = fr["fit"]
    c = np.geomspace(pts[0]["compute"], pts[-1]["compute"], 100)
    ln = fr.get("line") or {}
    # The law's caveat where the F-test kept the line (a second trial: the legend drew the
    # law bare while the claims said "indistinguishable from a line").
    caveat = ("" if not ln or ln["line_rejected"] else
              f"\n(indistinguishable from a line in ln C, p = {ln['p']:.2g})")
    ax.plot(c, f["E"] + f["A"] * c ** -f["alpha"], "k--",
            label=f"{f['E']:.2f} + {f['A']:.3g} C^-{f['alpha']:.3f}{caveat}")
  ax.set(xscale="log", xlabel="compute C = 6 N D (FLOPs)", ylabel="held-out loss (nats/byte)",
         title="Loss against compute over the ladder")
  ax.legend(fontsize=7)
  return save_figure(fig, out_png)


def render_all(ladder_json, out_dir) -> list[Path]:
  """Every ability map and the frontier figure into out_dir; returns their paths."""
  res = json.loads(Path(ladder_json).read_text())
  out = Path(out_dir)
  paths = [render_ability(res, task, out / f"ladder_{task}.png") for task in res["abilities"]]
  return paths + [render_frontier(res, out / "ladder_frontier.png")]
