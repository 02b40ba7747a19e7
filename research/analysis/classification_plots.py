"""Figures of the few-shot classification task, rendered from result files.

  render_probe(probes/classification.json, png)   bars: ICL / in-weights / flipped accuracy
  training_curves(metrics.jsonl, png)             eval_* accuracies and attention measures vs step
  grid(cells, png)                                ICL and in-weights accuracy per sweep cell
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from research import workdir  # noqa: E402
from research.analysis.plots import save_figure  # noqa: E402

LABELS = {"icl": "ICL (novel classes)", "iwl": "in-weights (no support)",
          "flip": "flipped labels", "iwl_rare": "in-weights, rare", "iwl_common": "in-weights, common",
          "iwl_uniform": "in-weights, uniform classes"}


def render_probe(probe_json, out_png) -> Path:
  res = json.loads(Path(probe_json).read_text())
  probes = res["probes"]
  fig, ax = plt.subplots(figsize=(6.0, 3.6), dpi=110)
  names = list(probes)
  width = 0.38
  for j, (metric, colour) in enumerate((("acc_full", "#1f77b4"), ("acc_context", "#ff7f0e"))):
    xs, ys, err = [], [], [[], []]
    for i, n in enumerate(names):
      p = probes[n]
      if metric not in p:
        continue
      xs.append(i + (j - 0.5) * width)
      ys.append(p[metric])
      err[0].append(p[metric] - p[metric + "_lo"])
      err[1].append(p[metric + "_hi"] - p[metric])
    ax.bar(xs, ys, width, yerr=err, color=colour, capsize=2,
           label="full vocabulary" if metric == "acc_full" else "labels in context")
  if "flip" in probes:
    i = names.index("flip")
    ax.plot([i - width, i + width], [probes["flip"]["acc_full_original_label"]] * 2, "k--", lw=1,
            label="flip: predicts original label")
  ax.axhline(res["chance"]["full"], color="grey", lw=0.8, ls=":", label="chance (vocabulary)")
  ax.axhline(res["chance"]["context"], color="grey", lw=0.8, ls="-.", label="chance (context)")
  ax.set_xticks(range(len(names)), [LABELS.get(n, n) for n in names], fontsize=7)
  ax.set_ylim(0, 1.05)
  ax.set_ylabel("accuracy")
  ax.set_title(f"{res['source']}: B={res['burstiness']}, alpha={res['zipf_alpha']}, "
               f"{res['ways']}-way {res['shots']}-shot probes, step {res['step']}", fontsize=8)
  ax.legend(fontsize=6, frameon=False, loc="upper right")
  return save_figure(fig, out_png)


def read_eval_rows(metrics_jsonl) -> list[dict]:
  rows = workdir.read_jsonl(metrics_jsonl)
  return [r for r in rows if any(k.startswith("eval_") for k in r)]


def training_curves(metrics_jsonl, out_png, *, title: str = "") -> Path:
  """ICL / IWL accuracy over training, with the attention progress measures below."""
  rows = read_eval_rows(metrics_jsonl)
  steps = [r["step"] for r in rows]
  attn_keys = sorted({k for r in rows for k in r if k.startswith("eval_attn_")})
  fig, axes = plt.subplots(2 if attn_keys else 1, 1, figsize=(6.0, 5.2 if attn_keys else 3.0),
                           dpi=110, sharex=True, squeeze=False)
  ax = axes[0, 0]
  for k, label in (("eval_icl_accuracy", "ICL"), ("eval_icl_accuracy_context", "ICL (context labels)"),
                   ("eval_iwl_accuracy", "in-weights")):
    if rows and k in rows[0]:
      ax.plot(steps, [r[k] for r in rows], label=label)
  ax.set_ylabel("accuracy")
  ax.set_ylim(0, 1.02)
  ax.legend(fontsize=7, frameon=False)
  ax.set_title(title, fontsize=8)
  if attn_keys:
    ax2 = axes[1, 0]
    for k in attn_keys:
      ax2.plot(steps, [r.get(k, float("nan")) for r in rows], lw=1,
               label=k.removeprefix("eval_attn_"))
    ax2.set_ylabel("attention weight")
    ax2.legend(fontsize=5, frameon=False, ncol=2)
  axes[-1, 0].set_xlabel("step")
  return save_figure(fig, out_png)


def grid(cells: list[dict], out_png, *, row_key: str, col_key: str, title: str = "") -> Path:
  """cells: [{row_key: v, col_key: v, 'icl': acc, 'iwl': acc}] -> two heatmaps side by side,
  sharing the rows (named once, on the left) and a colour bar."""
  rows = sorted({c[row_key] for c in cells}, key=str)
  cols = sorted({c[col_key] for c in cells}, key=str)
  # A column label such as "p_bursty=0.0, alpha=0.0" goes on one line per part, and each column
  # gets the width of its longest line: on one line four of them overprinted each other.
  col_labels = [str(c).replace(", ", "\n") for c in cols]
  chars = max(len(line) for label in col_labels for line in label.split("\n"))
  lines = max(label.count("\n") + 1 for label in col_labels)
  panel_w = max(2.8, len(cols) * (0.065 * chars + 0.15))
  # constrained layout keeps the row label, the tick labels and the shared colour bar apart.
  fig, axes = plt.subplots(1, 2, figsize=(2 * panel_w + 1.6, 0.6 * len(rows) + 1.9 + 0.12 * lines),
                           dpi=110, sharey=True, layout="constrained")
  for ax, metric in zip(axes, ("icl", "iwl")):
    grid_ = [[next((c[metric] for c in cells if c[row_key] == r and c[col_key] == k), float("nan"))
              for k in cols] for r in rows]
    im = ax.imshow(grid_, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for i, r in enumerate(grid_):
      for j, v in enumerate(r):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="white" if v < 0.6 else "black")
    ax.set_xticks(range(len(cols)), col_labels, fontsize=7)
    ax.set_xlabel(col_key)
    ax.set_title({"icl": "ICL accuracy", "iwl": "in-weights accuracy"}[metric], fontsize=8)
  # The rows are the same in both panels: labelled on the left only (the right panel's label
  # sat on the left panel's tick labels).
  axes[0].set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=7)
  axes[0].set_ylabel(row_key)
  axes[1].tick_params(labelleft=False)
  fig.colorbar(im, ax=axes, fraction=0.03)
  fig.suptitle(title, fontsize=8)
  return save_figure(fig, out_png, tight=False)
