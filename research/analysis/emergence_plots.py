"""Figures for arithmetic emergence and grokking, rendered from result files only.

  render_arithmetic_probe(probes/arithmetic.json, png)   one model: each metric with
      its 95% interval next to the chance level (the best input-independent
      predictor: answer statistics only; see answer_metrics.chance_levels)
  render_grokking(runs: {label: metrics.jsonl}, png)      progress measures over
      training for several runs (e.g. weight decay 1.0 vs 0)
  render_emergence_scale(emergence_scale.json, png)       each metric against
      parameters and training FLOPs, chance level, first size beyond chance

The numbers behind the scale figure (Wei et al. 2022; Schaeffer et al. 2023):
  beyond_chance / first_beyond_chance   when a metric leaves chance for good (margin below)
  sharpness                             how much of a metric's change is one step
  reversal                              whether a curve goes back beyond its noise
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker as mticker  # noqa: E402

from research import workdir  # noqa: E402
from research.analysis import plots  # noqa: E402

TITLES = {"exact_match": "exact match", "token_accuracy": "per-token accuracy",
          "edit_distance": "token edit distance",
          "log_likelihood": "log-likelihood\n(nats, sum over answer tokens)",
          "brier": "Brier score"}


def render_arithmetic_probe(probe_json, out_png) -> Path:
  res = json.loads(Path(probe_json).read_text())
  names = list(res["metrics"])
  fig, axes = plt.subplots(1, len(names), figsize=(2.3 * len(names), 2.8), dpi=110)
  splits = {"eval": res["metrics"]} | ({"train": res["train_metrics"]}
                                       if "train_metrics" in res else {})
  for ax, name in zip(axes, names):
    for i, (split, metrics) in enumerate(splits.items()):
      m = metrics[name]
      ax.bar(i, m["mean"], color="#1f77b4" if split == "eval" else "#aec7e8")
      err = [[max(0.0, m["mean"] - m["lo"])], [max(0.0, m["hi"] - m["mean"])]]
      ax.errorbar(i, m["mean"], yerr=err,
                  color="k", capsize=3, lw=1)
    ax.axhline(res["chance"][name], color="grey", ls=":", lw=1,
               label="chance (input-independent)")
    ax.set_xticks(range(len(splits)), list(splits))
    ax.set_title(TITLES.get(name, name), fontsize=8)
  axes[0].legend(fontsize=7, frameon=False)
  what = (f"{res['operation']} mod {res['modulus']}" if "modulus" in res
          else f"{res['num_digits']}-digit {res['operation']}")
  fig.suptitle(f"{what}, {res['num_shots']}-shot, step {res['step']}, "
               f"{res['num_problems']} problems ({res['split']}); 95% intervals\n"
               f"{res['chance_definition']}", fontsize=7)
  return plots.save_figure(fig, out_png)


def read_eval_rows(metrics_jsonl) -> list[dict]:
  """The `eval_*` rows of a run's metrics.jsonl, prefix stripped, sorted by step."""
  rows = {}
  for r in workdir.read_jsonl(metrics_jsonl):
    ev = {k[5:]: v for k, v in r.items() if k.startswith("eval_")}
    if ev:
      rows[r["step"]] = {"step": r["step"]} | ev
  return [rows[s] for s in sorted(rows)]


def key_freqs(row: dict) -> list[int]:
  """The key Fourier frequencies an evaluation row logged (eval `key_freq_<i>`), sorted."""
  return sorted(int(row[k]) for k in row if k.startswith("key_freq_") and k != "key_freq_share")


def first_step(rows: list[dict], key: str, threshold: float):
  """First logged step with rows[key] >= threshold (None if never)."""
  return next((r["step"] for r in rows if r.get(key, -1) >= threshold), None)


def render_grokking(runs: dict[str, str | Path], out_png, *, spectra: dict | None = None) -> Path:
  """Accuracy, loss, weight norm, Fourier losses, key frequencies (+ final spectra)."""
  data = {label: read_eval_rows(path) for label, path in runs.items()}
  panels = 5 + bool(spectra)
  fig, axes = plt.subplots(1, panels, figsize=(3.3 * panels, 3.1), dpi=110)
  styles = ["-", "--", ":", "-."]
  for (label, rows), ls in zip(data.items(), styles):
    s = [r["step"] for r in rows]
    get = lambda k: [r.get(k, float("nan")) for r in rows]
    axes[0].plot(s, get("train_accuracy"), ls, color="#1f77b4", label=f"train ({label})")
    axes[0].plot(s, get("test_accuracy"), ls, color="#d62728", label=f"test ({label})")
    axes[1].plot(s, get("train_loss"), ls, color="#1f77b4", label=f"train ({label})")
    axes[1].plot(s, get("test_loss"), ls, color="#d62728", label=f"test ({label})")
    axes[2].plot(s, get("weight_norm"), ls, color="k", label=label)
    axes[3].plot(s, get("restricted_loss"), ls, color="#2ca02c", label=f"restricted ({label})")
    axes[3].plot(s, get("excluded_loss"), ls, color="#9467bd", label=f"excluded ({label})")
    # The top-k set at each evaluation (sorted, so a dot moves only when the set changes).
    ks = [key_freqs(r) for r in rows]
    pts = [(st, f) for st, fs in zip(s, ks) for f in fs]
    if pts:
      axes[4].scatter(*zip(*pts), s=4, marker="o" if ls == "-" else "x", label=label)
  # Each panel says what its y axis counts: the key-frequency panel's dots are frequency
  # indices (1 .. p // 2), which a title alone left to be guessed.
  for ax, (title, ylabel) in zip(axes, (
      ("accuracy", "accuracy"), ("loss", "cross-entropy loss (nats)"),
      ("weight norm (L2, all params)", "L2 norm"),
      ("Fourier restricted / excluded loss", "cross-entropy loss (nats)"),
      ("key frequencies (largest embedding norms)", "frequency k"))):
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("step", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.legend(fontsize=6, frameon=False)
  axes[1].set_yscale("log")
  axes[3].set_yscale("log")
  axes[4].yaxis.set_major_locator(mticker.MaxNLocator(integer=True))  # frequencies are integers
  if spectra:
    for (label, norms), ls in zip(spectra.items(), styles):
      axes[5].plot(range(1, len(norms) + 1), norms, ls, marker=".", label=label)
    axes[5].set_title("final embedding norm per frequency", fontsize=8)
    axes[5].set_xlabel("frequency k", fontsize=8)
    axes[5].set_ylabel("embedding norm", fontsize=8)
    axes[5].legend(fontsize=6, frameon=False)
  return plots.save_figure(fig, out_png)


# --- emergence across model sizes -----------------------------------------------------
# The margin by which a metric must beat chance, in its better direction, to count
# as "above chance": more than SIGMAS interval half-widths (not noise) and more than
# FRACTION of the way from chance to a perfect score (not a negligible gain). The
# fraction makes one rule fit metrics of different units: 0.05 is ~0.05 exact match,
# 0.04 per-token accuracy, ~0.16 edits and ~0.38 nats on 3-digit addition.
SIGMAS, FRACTION = 3.0, 0.05
PERFECT = {"exact_match": 1.0, "token_accuracy": 1.0, "edit_distance": 0.0,
           "log_likelihood": 0.0, "brier": 0.0}
MARGIN_TEXT = (f"above chance: better than chance by > {SIGMAS:g} x the 95% interval half-width "
               f"and by > {FRACTION:g} x |perfect - chance|")


def beyond_chance(m: dict, chance: float, perfect: float, higher_is_better: bool, *,
                  sigmas: float = SIGMAS, fraction: float = FRACTION) -> bool:
  """m = {mean, lo, hi}: is the gain over chance, in the better direction, beyond the margin?"""
  gain = (m["mean"] - chance) * (1 if higher_is_better else -1)
  half = (m["hi"] - m["lo"]) / 2
  return bool(gain > sigmas * half and gain > fraction * abs(perfect - chance))


def first_for_good(beyond: list[bool]) -> int | None:
  """Where a metric "leaves chance": the first index from which EVERY later one (larger size,
  or more compute) is beyond chance; None if the last is not. The one rule for
  first_beyond_chance and experiments/ladder.abilities. Stricter than the first index beyond
  chance, on purpose: a one-size glitch (token accuracy 0, 0.3, 0, 0, 0.5, 0.9 against exact
  match 0, 0, 0, 0, 0.3, 0.8) put token accuracy's "leaves chance" at the glitch, and an
  ordering of two metrics read off it PASSed with no ordering in the data."""
  i = len(beyond)
  while i > 0 and beyond[i - 1]:
    i -= 1
  return i if i < len(beyond) else None


def first_beyond_chance(points: list[dict], chance: float, perfect: float,
                        higher_is_better: bool, **margin) -> int | None:
  """Index of the first point (sizes in increasing order) from which every point is beyond
  chance (first_for_good); None if the largest size is not."""
  return first_for_good([beyond_chance(m, chance, perfect, higher_is_better, **margin)
                         for m in points])


def sharpness(values: list[float], higher_is_better: bool, *, min_change: float = 0.0) -> dict:
  """The biggest improvement between adjacent sizes as a fraction of the net change
  from the smallest to the largest size (Schaeffer et al. 2023's argument: exact
  match puts its change in one step, continuous metrics spread theirs).

  1 means all of it in one step; 1/(n-1) an even spread over n sizes; above 1 the
  metric went back somewhere. `fraction` is None when the largest model is not
  better than the smallest by more than `min_change` (e.g. the two models' interval
  half-widths added): no resolved change to apportion.
  """
  sign = 1 if higher_is_better else -1
  gains = [sign * (b - a) for a, b in zip(values[:-1], values[1:])]
  net = sign * (values[-1] - values[0]) if values else 0.0
  if not gains or not net > max(min_change, 0.0):
    return {"fraction": None, "step": None, "net_change": net}
  i = max(range(len(gains)), key=gains.__getitem__)
  return {"fraction": gains[i] / net, "step": [i, i + 1], "net_change": net}


# A going-back smaller than this fraction of the curve's net change is not counted (reversal):
# it moves the sharpness reading by less, well inside the claims' margin. Its own constant,
# not FRACTION's chance margin, so that changing one does not silently move the other.
REVERSAL_FLOOR = 0.05


def reversal(points: list[dict], higher_is_better: bool, *, fraction: float = REVERSAL_FLOOR):
  """The largest resolved going-back of a curve (points {mean, lo, hi}, sizes ascending):
  {"drop", "from", "to"} for a later size worse than an earlier one by more than the two
  sizes' 95% half-widths added (the rule `sharpness` uses for a resolved net change) and by
  more than `fraction` of the net change; None when the curve is monotone within that.

  A curve that goes back is not a sharp rise: its biggest step then measures the zig-zag, and
  its sharpness fraction can exceed 1. The floor is there because a going-back smaller than
  5% of the net change moves the sharpness reading by less than that, well inside the claims'
  margin (half an even step: 10% over 6 sizes), e.g. a 0.999 -> 0.998 at the top of a curve."""
  sign = 1 if higher_is_better else -1
  mean = [p["mean"] for p in points]
  half = [(p["hi"] - p["lo"]) / 2 for p in points]
  floor = fraction * abs(mean[-1] - mean[0]) if mean else 0.0
  worst = None
  for i in range(len(mean)):
    for j in range(i + 1, len(mean)):
      drop = sign * (mean[i] - mean[j])
      if drop > half[i] + half[j] and drop > floor and (worst is None or drop > worst["drop"]):
        worst = {"drop": drop, "from": i, "to": j}
  return worst


def _fmt_count(x: float) -> str:
  if not x or not math.isfinite(x):
    return str(x)
  e = int(math.floor(math.log10(abs(x))))
  return f"{x:.0f}" if e < 3 else f"{x / 10 ** e:.2g}e{e}"


def no_sharpness(res: dict, metric: str) -> str | None:
  """Why `metric`'s curve in a result file has no sharpness to compare (None: it has one).

  Never above chance: at every size the metric is no better than the best input-independent
  predictor (the answers' statistics alone), so no size shows the ability, and its change is
  the model catching up with those statistics, not the task whose emergence the claim is
  about: Schaeffer et al. compare how one ability's measured progress looks under two metrics.
  Goes back beyond its noise (reversal): not a rise, so its biggest step
  measures a zig-zag (a fraction above 1 says so). No resolved net change: nothing to share."""
  sizes, sharp, name = res["sizes"], res["sharpness"][metric], metric.replace("_", " ")
  if res["first_beyond_chance"].get(metric) is None:
    if not any(s.get("above_chance", {}).get(metric) for s in sizes):
      return f"{name} never above chance at any size (its change is not the ability's)"
    return (f"{name} not above chance at every size from some size on (back at chance by the "
            "largest): it never leaves chance for good, so its change is not the ability's")
  back = reversal([s["metrics"][metric] for s in sizes], res["higher_is_better"][metric])
  if back is not None:
    return (f"{name} goes back {back['drop']:.4f} from {sizes[back['from']]['num_params']} to "
            f"{sizes[back['to']]['num_params']} params, beyond its intervals and 5% of its net "
            "change (not a rise)")
  if sharp["fraction"] is None:
    return f"{name} changed no more than its intervals (net {sharp['net_change']:+.4f})"
  return None


def render_emergence_scale(scale_json, out_png) -> Path:
  """Two rows (x = parameters, x = training FLOPs; log scale) by one column per metric:
  mean with its 95% interval per size, chance dashed, first size above chance dotted."""
  res = json.loads(Path(scale_json).read_text())
  sizes, names = res["sizes"], res["metrics"]
  rows = (("num_params", "parameters"), ("train_flops", "training FLOPs"))
  fig, axes = plt.subplots(len(rows), len(names), figsize=(3.0 * len(names), 5.8), dpi=110,
                           squeeze=False)
  for col, name in enumerate(names):
    mean = [s["metrics"][name]["mean"] for s in sizes]
    err = [[max(0.0, s["metrics"][name]["mean"] - s["metrics"][name]["lo"]) for s in sizes],
           [max(0.0, s["metrics"][name]["hi"] - s["metrics"][name]["mean"]) for s in sizes]]
    first = res["first_beyond_chance"][name]
    sharp = res["sharpness"][name]["fraction"]
    # Every panel spans chance to perfect (and the data), so the eye compares each
    # metric's progress on its own full scale, as Schaeffer et al. argue one should.
    span = [res["chance"][name], res["perfect"][name]]
    span += [s["metrics"][name][k] for s in sizes for k in ("lo", "hi")]
    pad = 0.04 * (max(span) - min(span) or 1.0)
    for row, (key, label) in enumerate(rows):
      ax = axes[row, col]
      x = [s[key] for s in sizes]
      ax.errorbar(x, mean, yerr=err, marker="o", ms=4, color="#1f77b4", capsize=3, lw=1.2,
                  label="model (95% interval)")
      ax.axhline(res["chance"][name], color="grey", ls="--", lw=1,
                 label="chance (input-independent)")
      if first is not None:
        ax.axvline(x[first], color="#d62728", ls=":", lw=1.5,
                   label=f"leaves chance ({_fmt_count(x[first])})")
      ax.set_xscale("log")
      # Under two decades matplotlib labels minor ticks too, and 4e3-6e4 parameters read
      # "4x10^3 6x10^3 10^4 2x10^4 ..." run together (a second trial): 1 and 3 per decade.
      ax.xaxis.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 3.0)))
      ax.xaxis.set_major_formatter(mticker.LogFormatterSciNotation(labelOnlyBase=False))
      ax.xaxis.set_minor_formatter(mticker.NullFormatter())
      ax.set_ylim(min(span) - pad, max(span) + pad)
      ax.set_xlabel(label, fontsize=8)
      ax.tick_params(labelsize=7)
      ax.legend(fontsize=6, frameon=False)
    better = "higher" if res["higher_is_better"][name] else "lower"
    # The claims' rule (a second trial: 295% on an untrained model whose text said n/a).
    shown = "n/a" if sharp is None or no_sharpness(res, name) else f"{sharp:.0%}"
    axes[0, col].set_title(f"{TITLES.get(name, name)} ({better} is better)\nbiggest step = "
                           + shown + " of the change", fontsize=8)
  task = res["task"]
  fig.suptitle(f"{task['what']}, {len(sizes)} sizes, {task['num_problems']} held-out problems "
               f"per size; {res['chance_definition']};\n{res['margin']['text']}", fontsize=8)
  return plots.save_figure(fig, out_png)
