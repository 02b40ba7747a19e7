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
           "lasso": "#e377c2", "lasso_tuned": "#17becf", "model_held_out": "#0b2e59"}
LABELS = {"model": "Transformer", "least_squares": "Least squares", "ridge": "Ridge",
          "dmmse": "dMMSE", "averaging": "Averaging", "nearest_neighbours": "3-nearest neighbours",
          "lasso": "Lasso (config's probe.lasso_alpha)",
          "lasso_tuned": "Lasso, alpha tuned per k (held-out prompts)",
          "model_held_out": "Transformer (held-out prompts)"}
# Curves without a fixed colour (the sparse probe's Lasso alpha grid, a new estimator): colours
# no fixed curve uses, each pair with its own marker. With the default cycle's 10 colours the
# sparse probe's 11 curves shared two (tuned Lasso = Averaging's purple, a trial).
SPARE_COLOURS = ("#bcbd22", "#7f7f7f", "#aec7e8", "#98df8a", "#ffbb78", "#c5b0d5")
MARKERS = ("o", "s", "^", "v", "D", "P")


def curve_styles(names) -> dict[str, dict]:
  """{curve: matplotlib line style}, no two alike in (colour, linestyle, marker): the model
  solid and thick, a fixed baseline dashed in its colour, any other dash-dotted in a spare
  colour with a marker (36 such curves before a style repeats)."""
  styles, spare = {}, 0
  for name in names:
    if name in ("model", "model_held_out"):
      styles[name] = dict(color=COLOURS[name], lw=2.2 if name == "model" else 1.8,
                          ls="-" if name == "model" else ":", marker=None)
    elif name in COLOURS:
      styles[name] = dict(color=COLOURS[name], lw=1.4, ls="--", marker=None)
    else:
      n = len(SPARE_COLOURS)
      styles[name] = dict(color=SPARE_COLOURS[spare % n], lw=1.2, ls="-.",
                          marker=MARKERS[(spare + spare // n) % len(MARKERS)])
      spare += 1
  return styles


def curve_label(name: str) -> str:
  """'Lasso alpha=0.01' for the grid's raw key lasso_alpha_0.01; LABELS' name otherwise."""
  if name.startswith("lasso_alpha_"):
    return f"Lasso alpha={name[len('lasso_alpha_'):]}"
  return LABELS.get(name, name)


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
  styles = curve_styles(res["curves"])
  for name, c in res["curves"].items():
    style = styles[name]
    # A marker on every point of a 41-point curve would hide the others: about 8 per curve.
    ax.plot(k, c["mean"], label=curve_label(name), ms=4, markevery=max(1, len(k) // 8),
            **style)
    ax.fill_between(k, c["lo"], c["hi"], color=style["color"], alpha=0.2, lw=0)
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
