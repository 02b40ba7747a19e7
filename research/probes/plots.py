"""Figures of the induction-head experiment, rendered from metrics.jsonl eval rows."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from research.analysis.plots import save_figure  # noqa: E402

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def render_curves(runs: dict, out_png) -> Path:
  """Loss, ICL score and top prefix-matching score vs training tokens, windows shaded.

  runs: {label: {"rows": eval rows, "window": {start_step, end_step}, "tokens_per_step"}}.
  """
  fig, axes = plt.subplots(3, 1, figsize=(6.5, 7.5), dpi=110, sharex=True)
  for i, (label, run) in enumerate(runs.items()):
    colour = COLOURS[i % len(COLOURS)]
    tps = run["tokens_per_step"]
    tokens = np.array([r["step"] for r in run["rows"]]) * tps
    for ax, key in zip(axes, ("loss", "icl_score", "pm_max")):
      ax.plot(tokens, [r[key] for r in run["rows"]], color=colour, lw=1.4, label=f"{label}-layer")
      w = run["window"]
      ax.axvspan(w["start_step"] * tps, w["end_step"] * tps, color=colour, alpha=0.12, lw=0)
  axes[0].set_ylabel("held-out loss (nats)")
  axes[1].set_ylabel("ICL score (nats)")
  axes[2].set_ylabel("top prefix-matching score")
  axes[2].set_xlabel("training tokens")
  axes[0].legend(fontsize=8, frameon=False)
  axes[0].set_title("attention-only models; shaded: steepest ICL-score drop", fontsize=9)
  return save_figure(fig, out_png)


def render_head_maps(runs: dict, out_png) -> Path:
  """Per-head prefix-matching (layer x head) before and after each model's window."""
  layers = [len(r["before"]) for r in runs.values()]
  fig, axes = plt.subplots(len(runs), 2, figsize=(6.0, sum(0.45 * n + 0.9 for n in layers)),
                           dpi=110, squeeze=False, constrained_layout=True,
                           gridspec_kw={"height_ratios": [n + 1.2 for n in layers]})
  for row, (label, run) in enumerate(runs.items()):
    for col, key in enumerate(("before", "after")):
      ax = axes[row, col]
      data = np.asarray(run[key])
      im = ax.imshow(data, vmin=0, vmax=1, cmap="viridis", aspect="auto")
      for (i, j), v in np.ndenumerate(data):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="white" if v < 0.5 else "black")
      step = run["window"]["start_step" if key == "before" else "end_step"]
      ax.set_title(f"{label}-layer, {key} (step {step})", fontsize=8)
      ax.set_yticks(range(data.shape[0]))
      ax.set_xticks(range(data.shape[1]))
      ax.set_ylabel("layer", fontsize=7)
      ax.set_xlabel("head", fontsize=7)
  fig.colorbar(im, ax=axes, shrink=0.6, label="prefix-matching score")
  return save_figure(fig, out_png, tight=False)
