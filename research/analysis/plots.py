"""Figures rendered from result files (never from in-memory training state)."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from research.workdir import atomic_path  # noqa: E402

# Stable colours per estimator so every figure of the project reads the same.
COLOURS = {"model": "#1f77b4", "least_squares": "#ff7f0e", "ridge": "#2ca02c",
           "dmmse": "#d62728", "averaging": "#9467bd", "nearest_neighbours": "#8c564b",
           "lasso": "#e377c2"}
LABELS = {"model": "Transformer", "least_squares": "Least squares", "ridge": "Ridge",
          "dmmse": "dMMSE", "averaging": "Averaging", "nearest_neighbours": "3-nearest neighbours",
          "lasso": "Lasso"}


def save_figure(fig, out_png: str | Path, *, tight: bool = True, **savefig_kwargs) -> Path:
  """The one way a figure is written: lays it out (`tight=False` for figures whose colour bar
  spans several axes; a figure made with a layout engine of its own, e.g.
  `layout="constrained"`, keeps it), writes it atomically (creating the folder; a reader never
  sees half a PNG, research/workdir.py) and closes it; returns its path."""
  # tight_layout() would replace a constrained layout, which is what places a legend or colour
  # bar outside the panels inside the figure.
  if tight and fig.get_layout_engine() is None:
    fig.tight_layout()
  out = Path(out_png)
  out.parent.mkdir(parents=True, exist_ok=True)
  try:
    with atomic_path(out) as tmp:
      fig.savefig(tmp, **savefig_kwargs)
  finally:
    plt.close(fig)
  return out


def render_probe(probe_json: str | Path, out_png: str | Path) -> Path:
  """Garg-style: normalised squared error vs in-context examples, with intervals."""
  res = json.loads(Path(probe_json).read_text())
  k = res["k"]
  fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=110)
  for name, c in res["curves"].items():
    colour = COLOURS.get(name)
    ax.plot(k, c["mean"], label=LABELS.get(name, name), color=colour,
            lw=2.2 if name == "model" else 1.4, ls="-" if name == "model" else "--")
    ax.fill_between(k, c["lo"], c["hi"], color=colour, alpha=0.2, lw=0)
  d = res["n_dims"]
  ax.axvline(d, color="grey", lw=0.8, ls=":")
  ax.set_xlabel("in-context examples k")
  ax.set_ylabel("squared error / d")
  ax.set_ylim(bottom=0, top=min(1.6, ax.get_ylim()[1]))
  ax.set_title(f"{res.get('function', '')} regression, d={d}, step {res['step']} "
               f"({res.get('source', 'prior')} tasks)", fontsize=9)
  ax.legend(fontsize=7, frameon=False)
  return save_figure(fig, out_png)


def render_ginc_probe(probe_json: str | Path, out_png: str | Path) -> Path:
  """Xie et al.: label accuracy vs examples in the prompt, per example length k, beside the
  ideal (Bayes) learner, for in-distribution and out-of-distribution concepts."""
  res = json.loads(Path(probe_json).read_text())
  sets = list(res["accuracy"])
  fig, axes = plt.subplots(1, len(sets), figsize=(4.5 * len(sets), 3.4), dpi=110, squeeze=False)
  for ax, name in zip(axes[0], sets):
    for k, curve in res["accuracy"][name].items():
      line, = ax.plot(curve["n"], curve["accuracy"], marker="o", ms=3, label=f"k={k}")
      if "ideal" in curve:
        ax.plot(curve["n"], curve["ideal"], ls=":", lw=1, color=line.get_color())
    if any("ideal" in c for c in res["accuracy"][name].values()):
      ax.plot([], [], ls=":", color="grey", label="ideal learner (Bayes)")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("examples in the prompt n")
    ax.set_ylabel("label accuracy")
    ax.set_title(f"GINC {name.upper()} concepts, step {res['step']}", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
  return save_figure(fig, out_png)
