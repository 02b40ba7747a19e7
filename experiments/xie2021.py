"""GINC (Xie et al. 2021): in-context label accuracy vs examples, per model.

  python -m experiments.xie2021 --preset=cpu --workdir=runs/xie2021

Trains configs/ginc.py:PRESET with Transformers of three sizes and an LSTM (cpu:
2/3/4 layers at width 32/48/64 and a 2-layer LSTM matched to the parameter count
of a 2-layer width-64 Transformer; tiny: 1/2/2 layers at width 16/24/32 and a
2-layer LSTM matched to the width-32 one; paper: Xie's 4/12/16 layers at width 768
and a 6-layer LSTM), each in WORKDIR/<model>/ (normal run directories: rerunning reuses
them). Every run's probe (probes/ginc.json) gives next-token label accuracy vs the
number of examples n, per example length k, for in-distribution and
out-of-distribution concepts, and the ideal in-context learner's accuracy on the
same ID prompts. Writes WORKDIR/xie2021.json and WORKDIR/xie2021.png (accuracy vs
n, one panel per k and concept set, one line per model) and prints the claims' verdicts
on this seed as `reproduce xie2021` scores them (common.print_verdicts; each run's trend in
n, averaged over k and per k, is in its entry of xie2021.json).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from absl import flags

from experiments import common
from research import cli
from research.analysis.correlation import mean_over_k, rises_with_n
from research.errors import InputError
from research.workdir import METRICS, read_jsonl, write_json


PAPER = "Xie et al. 2021, GINC: ICL as implicit Bayesian inference (3 sizes + LSTM)"
PRESETS = {"tiny": "3 Transformers (1-2 layers, width 16-32) + LSTM, 20 steps each",
           "cpu": "3 Transformers + LSTM, 4000 steps of 16 x 256 tokens each, 1024 prompts per (n, k)",
           "paper": "GPT-2-small-sized models, 30k steps each"}


# name -> overrides of config.model (the largest is the config's own model).
MODELS = {
    "transformer_s": {"num_layers": 2, "width": 32, "num_heads": 2},
    "transformer_m": {"num_layers": 3, "width": 48, "num_heads": 4},
    "transformer_l": {"num_layers": 4, "width": 64, "num_heads": 4},
    "lstm": {"name": "lstm", "num_layers": 2, "width": 64, "num_heads": 4},
}
# The paper preset: Xie's GPT-2s of 4, 12 and 16 layers (width 768) and a 6-layer LSTM
# with the 4-layer Transformer's parameter count.
PAPER_MODELS = {
    "transformer_4l": {"num_layers": 4, "width": 768, "num_heads": 12},
    "transformer_12l": {"num_layers": 12, "width": 768, "num_heads": 12},
    "transformer_16l": {"num_layers": 16, "width": 768, "num_heads": 12},
    "lstm": {"name": "lstm", "num_layers": 4, "width": 768, "num_heads": 12, "lstm_layers": 6},
}
# The tiny preset's (layers, width) per model: three distinct sizes that still train in
# seconds. One cap (2 layers, width 32) made all three the same 30k-parameter model, so the
# larger-model claims and the legend compared one size with itself.
TINY_SIZES = {"transformer_s": (1, 16), "transformer_m": (2, 24), "transformer_l": (2, 32),
              "lstm": (2, 32)}
COLOURS = {"transformer_s": "#9ecae1", "transformer_m": "#3182bd", "transformer_l": "#08306b",
           "transformer_4l": "#9ecae1", "transformer_12l": "#3182bd",
           "transformer_16l": "#08306b", "lstm": "#d62728"}


def models_for(preset: str) -> dict:
  return PAPER_MODELS if preset == "paper" else MODELS


IDEAL = "ideal learner (Bayes, knows the format)"


def render(results: dict, out_png) -> Path:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from matplotlib import ticker

  from research.analysis.plots import save_figure

  first = next(iter(results.values()))["probe"]["accuracy"]
  sets, ks = list(first), list(first[next(iter(first))])
  # constrained layout: the legend goes below the panels and the figure grows to hold it (in a
  # panel, the tiny preset's one column cut the ideal learner's entry off at the right edge).
  fig, axes = plt.subplots(len(sets), len(ks), figsize=(3.0 * len(ks), 2.7 * len(sets)),
                           dpi=110, squeeze=False, sharey=True, layout="constrained")
  ideal = None
  for r, s in enumerate(sets):
    for c, k in enumerate(ks):
      ax = axes[r, c]
      for name, res in results.items():
        curve = res["probe"]["accuracy"][s][k]
        ax.plot(curve["n"], curve["accuracy"], marker="o", ms=3, color=COLOURS.get(name),
                label=f"{name} ({res['num_params'] / 1e3:.0f}k)")
      if "ideal" in curve:  # the same prompts for every model: one reference line
        ideal, = ax.plot(curve["n"], curve["ideal"], ls=":", color="black", lw=1, label=IDEAL)
      # n = 0, 1, 2, 4, ...: base 2 spaces the doublings evenly, and a tick at every n, as
      # written, names each point (base 10 showed only "0" and "10^0" for n = 0, 1, 2).
      ax.set_xscale("symlog", linthresh=1, base=2)
      shown = [n for n in curve["n"] if len(curve["n"]) <= 9 or n == 0 or n & (n - 1) == 0]
      ax.xaxis.set_major_locator(ticker.FixedLocator(shown))  # a long list: 0 and powers of 2
      ax.xaxis.set_major_formatter(ticker.FixedFormatter([str(n) for n in shown]))
      ax.xaxis.set_minor_locator(ticker.NullLocator())
      ax.tick_params(axis="x", labelsize=7)
      ax.set_title(f"{s.upper()} concepts, k = {k}", fontsize=9)
      ax.set_xlabel("examples n")
      if c == 0:
        ax.set_ylabel("label accuracy")
  handles, labels = axes[0, 0].get_legend_handles_labels()
  if ideal is not None and IDEAL not in labels:  # the first panel's set had no ideal curve
    handles, labels = handles + [ideal], labels + [IDEAL]
  # One row where the panels are wide enough (the cpu preset's four columns), else a column.
  fig.legend(handles, labels, loc="outside lower center", fontsize=7, frameon=False,
             ncol=len(labels) if len(ks) >= 3 else 1)
  return save_figure(fig, out_png)


def end_loss(run_dir: Path, tail: float = 0.25) -> dict | None:
  """Pretraining loss at the last step, read off a straight line fitted to the logged training
  losses of the last `tail` of training, with the standard error of that fitted value: one
  logged loss is a few batches' mean, too noisy to say whether two models end at equal loss."""
  import numpy as np
  rows = [r for r in read_jsonl(run_dir / METRICS) if "loss" in r]  # eval rows: eval_loss
  if not rows:
    return None
  last = rows[-1]["step"]
  pts = [(r["step"], r["loss"]) for r in rows if r["step"] >= (1 - tail) * last]
  if len(pts) < 4:
    return {"value": float(rows[-1]["loss"]), "se": None, "steps": [last, last], "points": 1}
  x, y = np.asarray(pts, float).T
  slope, icpt = np.polyfit(x, y, 1)
  resid = y - (slope * x + icpt)
  sd = float(np.sqrt((resid ** 2).sum() / (len(x) - 2)))
  se = sd * float(np.sqrt(1 / len(x) + (last - x.mean()) ** 2 / ((x - x.mean()) ** 2).sum()))
  return {"value": float(slope * last + icpt), "se": se, "steps": [int(x[0]), int(last)],
          "points": len(x)}


def run(preset: str, workdir, seed: int = 0, models=(), num_steps: int = 0) -> None:
  """Trains (or reuses) one run per model in WORKDIR/<model>; writes WORKDIR/xie2021.json and
  its figure. Raises config_check.ConfigError for an unknown model name."""
  import jax

  from configs import ginc as cfg_mod
  from research import config_check, models as model_registry, train

  root = Path(workdir)
  root.mkdir(parents=True, exist_ok=True)
  table = models_for(preset)
  unknown = [n for n in models if n not in table]
  if unknown:
    raise config_check.ConfigError(f"unknown model names {unknown} for the {preset} preset; "
                                   f"choose from: {', '.join(table)}")
  names = list(models) or list(table)
  results = {}
  for name in names:
    overrides = table[name]
    if overrides.get("name", "transformer") not in model_registry.REGISTRY:
      print(f"{name}: skipped (model {overrides['name']!r} is not in research/models)", flush=True)
      continue
    config = common.seeded(cfg_mod.get_config(preset), seed)
    config.model.update(overrides)
    if preset == "tiny":  # keep the tiny preset tiny whatever the size
      config.model.num_layers, config.model.width = TINY_SIZES[name]
      config.model.num_heads = 2
      # A loss logged every step: end_loss fits the last quarter's logged losses and needs 4
      # for a standard error, which 2 logged losses in 20 steps never gave, so the
      # larger-model claim had no end loss to compare sizes at.
      config.train.steps_per_call = config.train.log_every = 1
    if num_steps:
      config.train.num_steps = num_steps
    config_check.validate(config, jax.device_count())
    workdir = root / name
    t0 = time.perf_counter()
    summary = train.train_or_reuse(config, str(workdir))
    times = common.wall_times([summary], t0)
    probe = json.loads((workdir / "probes" / "ginc.json").read_text())
    num = probe["num_prompts"]
    trend = {k: rises_with_n(c, num) for k, c in probe["accuracy"]["id"].items()}
    pooled = mean_over_k(probe["accuracy"]["id"], num)
    results[name] = {"num_params": summary["num_params"], "final_loss": summary.get("final_loss"),
                     "end_loss": end_loss(workdir),
                     **times, "probe": probe, "id_trend": trend,
                     "id_mean_over_k": pooled, "id_trend_mean_over_k": rises_with_n(pooled, num),
                     "model": dict(config.model)}
    acc = probe["accuracy"]["id"]
    print(f"{name}: {summary['num_params']} params, final loss {summary.get('final_loss', 0):.3f}, "
          + "; ".join(f"k={k}: ID acc n={c['n'][0]}..{c['n'][-1]}: "
                      + " ".join(f"{a:.2f}" for a in c["accuracy"]) for k, c in acc.items())
          + f"; {common.wall_text(times)}", flush=True)
  # Each run's trend in n, averaged over k and per k, is in its entry; the verdicts are the
  # scorer's (experiments/claims/language.py), printed below as reproduce gives them.
  out = {"preset": preset, "seed": seed, "runs": results}
  write_json(root / "xie2021.json", out, indent=1, default=str)
  fig = render(results, root / "xie2021.png")
  common.print_verdicts("xie2021", root, preset)
  print(f"wrote {root / 'xie2021.json'} and {fig}")


def define_flags(fv) -> None:
  common.define_run_flags(fv, PRESETS)
  flags.DEFINE_list("models", [], "Subset of model names to run (default: all).", flag_values=fv)
  flags.DEFINE_integer("num_steps", 0, "Override train.num_steps (0 = preset).", lower_bound=0,
                       flag_values=fv)


def main(argv=None) -> int:
  args = common.parse_run_flags(define_flags, argv, __doc__, script=__file__,
                                results=("xie2021.json",))
  unknown = [n for n in args.models if n not in models_for(args.preset)]
  if unknown:
    raise InputError(f"--models: unknown {unknown} for the {args.preset} preset; choose from: "
                     + ", ".join(models_for(args.preset)))
  with common.owned(args.workdir, args.experiment, args.preset, args.seed):
    run(args.preset, args.workdir, args.seed, args.models, args.num_steps)
  return 0


if __name__ == "__main__":
  cli.run_script(main)
