"""One metric across many runs, from the flat table of research/results.py.

  plot(rows, "loss", by="model.width")                   loss vs step, a curve per run
  plot(rows, "loss", by="model.num_layers", x="model.width")   last loss vs width, a line
                                                         per num_layers value
  plot(rows, "loss", by="model.width", over=["seed"])    the mean curve of each width's
                                                         seeds, a band of ±1 sd

Curves are read from each run's metrics.jsonl (the row's `dir`); colours follow --by: a
colour bar for numbers (logarithmic when they span a decade or more, as model sizes and
learning rates do), a legend otherwise.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from absl import logging  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib import ticker as mticker  # noqa: E402
from matplotlib.backend_bases import FigureCanvasBase  # noqa: E402

from research.analysis import aggregate, plots  # noqa: E402
from research.errors import InputError, listed  # noqa: E402
from research.workdir import read_jsonl  # noqa: E402


def _is_number(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _spans_decade(values: list[float]) -> bool:
  return min(values) > 0 and max(values) / min(values) >= 10


# Fields whose 0 means no bound (configs/icl_regression.py: task.pool_size 0 is a fresh task
# per prompt, M = infinity): drawn right of the largest value with a tick of their own.
UNBOUNDED_AT_ZERO = ("task.pool_size",)

# Runs named in a legend when no --by colours them: more would hide the curves.
LEGEND_RUNS = 12


def _colouring(rows: list[dict], by: Optional[str], x: str = "step"):
  """(colour of each row, a function that draws the key on the axes)."""
  if by is None and x != "step":  # one line through every run's point: one colour
    return [plt.rcParams["axes.prop_cycle"].by_key()["color"][0]] * len(rows), \
        lambda fig, ax: None
  if by is None:  # a curve per run, each named (the lines had no key: which run was which?)
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colours = [cycle[i % len(cycle)] for i in range(len(rows))]

    def runs(fig, ax):
      if len(rows) <= LEGEND_RUNS:
        handles = [plt.Line2D([], [], color=c, label=r.get("run") or Path(str(r.get("dir"))).name)
                   for r, c in zip(rows, colours)]
        ax.legend(handles=handles, fontsize=7, title="run", title_fontsize=7)
    return colours, runs
  values = [r.get(by) for r in rows]
  if all(_is_number(v) for v in values) and len(set(values)) > 1:
    norm = (mcolors.LogNorm if _spans_decade(values) else mcolors.Normalize)(
        min(values), max(values))
    cmap = plt.get_cmap("viridis")
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    return [cmap(norm(v)) for v in values], \
        lambda fig, ax: fig.colorbar(mappable, ax=ax, label=by)
  levels = list(dict.fromkeys(map(str, values)))
  cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  colour = {v: cycle[i % len(cycle)] for i, v in enumerate(levels)}

  def legend(fig, ax):
    handles = [plt.Line2D([], [], color=colour[v], label=v) for v in levels]
    ax.legend(handles=handles, title=by, fontsize=8)
  return [colour[str(v)] for v in values], legend


def figure_formats() -> set[str]:
  """The file extensions matplotlib can write (png, pdf, svg, ...)."""
  return set(FigureCanvasBase.get_supported_filetypes())


def columns_read(rows: list[dict], metric: str, by: Optional[str] = None,
                 x: str = "step") -> list[tuple[str, str]]:
  """(column, flag) for every table column `plot` reads, for the caller to check: the table's
  column rules live in research/results_records.py, above this module."""
  cols = [(by, "--by")] if by is not None else []
  if x != "step":
    cols += [(x, "--x"), (_metric_column(rows, metric), "--plot")]
  return cols


def _metric_column(rows: list[dict], metric: str) -> str:
  """The table column of --plot METRIC against --x: METRIC itself where it is one or names
  a column group (summary.wall_s was looked up as 'last.summary.wall_s'), else last.METRIC."""
  if any(metric in r for r in rows) or metric.split(".")[0] in ("summary", "last", "probes"):
    return metric
  return f"last.{metric}"


def _step_metric(metric: str) -> str:
  """The metrics.jsonl column of --plot METRIC over steps: last.loss (the table's name, as
  --columns takes it) is the loss column, as loss is."""
  return metric[len("last."):] if metric.startswith("last.") else metric


def _curve(row: dict, metric: str) -> list[tuple]:
  return [(m["step"], m[metric]) for m in read_jsonl(Path(row["dir"]) / "metrics.jsonl")
          if "step" in m and _is_number(m.get(metric))]


def check_curves(rows: list[dict], metric: str, x: str = "step") -> None:
  """A --plot METRIC over steps needs the metric in some run's metrics.jsonl, against a
  column a run with numbers in both: checked by the caller before it prints anything (a bad
  --x printed the table and wrote the CSV, then exit 2)."""
  if x == "step":
    _curves_of(rows, metric)
  else:
    _check_points(rows, _metric_column(rows, metric), metric, x)


def _check_points(rows: list[dict], column: str, metric: str, x: str) -> None:
  """The flag at fault when no run has numbers in both X and COLUMN."""
  has_x = any(_is_number(r.get(x)) for r in rows)
  has_y = any(_is_number(r.get(column)) for r in rows)
  if not has_y:
    raise InputError(f"--plot {metric}: no run has a number in {column}; plot a numeric "
                     "column (e.g. --plot loss)")
  if not has_x:
    raise InputError(f"--x {x}: no run has a number in {x}; use a numeric column (e.g. "
                     "--x model.width) or --x step")
  if not any(_is_number(r.get(x)) and _is_number(r.get(column)) for r in rows):
    raise InputError(f"--x {x}: no run has numbers in both {x} and {column}")


def _curves_of(rows: list[dict], metric: str) -> list[list[tuple]]:
  """Each row's (step, METRIC) points, read once; none in any run is an InputError."""
  metric = _step_metric(metric)
  curves = [_curve(row, metric) for row in rows]
  if not any(curves):
    raise InputError(f"--plot {metric}: no run's metrics.jsonl has a {metric!r} column; "
                     "pick one of the last.* columns the table lists")
  return curves


def _curves(rows: list[dict], metric: str, ax, colours, groups=None) -> int:
  """Draws each run's curve, or with GROUPS (lists of row indices: --over) each group's mean
  at every step, over the runs that logged it, in a band of ±1 sample sd (a warning names a
  group whose runs did not all log every step: a run stopped early, a frozen member);
  returns how many runs had a curve."""
  curves = _curves_of(rows, metric)
  if groups is None:
    groups = [[i] for i in range(len(rows))]
  for members, colour in zip(groups, colours):
    have = [dict(curves[i]) for i in members if curves[i]]
    if not have:
      continue
    steps = sorted(set().union(*have))
    values = [[c[s] for c in have if s in c] for s in steps]
    mean = [math.fsum(v) / len(v) for v in values]
    ax.plot(steps, mean, color=colour, lw=1.4, alpha=0.9,  # one logged step: a point
            marker="o" if len(steps) == 1 else None, ms=5)
    if len(members) > 1:
      sd = [aggregate.sample_sd(v) or 0.0 for v in values]
      ax.fill_between(steps, [m - d for m, d in zip(mean, sd)], [m + d for m, d in zip(mean, sd)],
                      color=colour, alpha=0.2, lw=0)
      fewer = [(s, len(v)) for s, v in zip(steps, values) if len(v) < len(members)]
      if fewer:
        logging.warning("--plot %s: at step %d only %d of a row's %d runs logged it (a run "
                        "stopped early or froze): the mean and band there, and at %d other "
                        "steps, are of fewer runs", _step_metric(metric), fewer[0][0],
                        fewer[0][1], len(members), len(fewer) - 1)
  ax.set_xlabel("step")
  return sum(map(bool, curves))


def _points(rows: list[dict], metric: str, x: str, by: Optional[str], ax,
            colours) -> tuple[str, int]:
  """METRIC (a column, else last.METRIC) against column x, one line per --by value; returns
  the column and how many runs had numbers in both."""
  column = _metric_column(rows, metric)
  groups: dict[str, list] = {}
  members: dict[str, list] = {}
  for row, colour in zip(rows, colours):
    if _is_number(row.get(x)) and _is_number(row.get(column)):
      groups.setdefault(str(row.get(by)), []).append(
          (row[x], row[column], colour, row.get(f"{column}.sd") or 0.0))
      members.setdefault(str(row.get(by)), []).append(row)
  if not groups:
    _check_points(rows, column, metric, x)
  # Runs that share an x within one line (a scale sweep's sizes each have their own: the
  # fields that set the size differ there by design, and are no second variable).
  same_x = [[r for r in group if r[x] == v] for group in members.values()
            for v in {r[x] for r in group}]
  if differ := _differing_config([g for g in same_x if len(g) > 1], (x, by)):
    # A new user's trial: two sweeps of 400 and 1,500 steps drawn as one zig-zag line per
    # --by value, with nothing said of train.num_steps.
    logging.warning("--plot %s --x %s: the runs joined in one line also differ in %s; pass "
                    "--by %s (or --where) to draw them apart", metric, x, listed(differ, 3),
                    differ[0])
  finite = sorted({p[0] for ps in groups.values() for p in ps if p[0] > 0})
  x_inf = None
  if x in UNBOUNDED_AT_ZERO and finite and any(p[0] == 0 for ps in groups.values() for p in ps):
    # M = infinity drawn at 0, left of M = 4 (a new user's trial): two octaves right of the
    # largest value instead, its tick labelled as such (experiments/raventos2023.py's figure).
    x_inf = 4 * finite[-1]
    groups = {g: [(x_inf if p[0] == 0 else p[0], *p[1:]) for p in ps] for g, ps in groups.items()}
  for points in groups.values():
    points.sort(key=lambda p: p[0])
    xs, ys, cs, sds = zip(*points)
    ax.plot(xs, ys, color=cs[0], lw=1.0, alpha=0.6)
    ax.scatter(xs, ys, c=list(cs), s=24, zorder=3)
    if any(sds):  # --over: each point a mean, its bar ±1 sample sd
      ax.errorbar(xs, ys, yerr=sds, fmt="none", ecolor=cs[0], elinewidth=1, capsize=2)
  all_x = [p[0] for ps in groups.values() for p in ps]
  if _spans_decade(all_x):
    ax.set_xscale("log")
  if x_inf is not None:
    ticks = finite if len(finite) <= 8 else finite[::math.ceil(len(finite) / 8)]
    ax.set_xticks(ticks + [x_inf], [f"{t:g}" for t in ticks] + ["\u221e"])
    ax.xaxis.set_minor_locator(mticker.NullLocator())
  ax.set_xlabel(x + (f" (\u221e: {x} = 0)" if x_inf is not None else ""))
  return column, sum(map(len, groups.values()))


_NOT_CONFIG = ("run", "state", "dir")


def _differing_config(groups, drawn_by) -> list[str]:
  """The config fields (the table's columns outside summary.*, last.* and probes.*) whose
  value differs between the runs of a group, other than the line's x and --by columns."""
  out = []
  for group in groups:
    for col in dict.fromkeys(c for r in group for c in r):
      if (col in _NOT_CONFIG or col in drawn_by or col in out
              or col.split(".")[0] in ("summary", "last", "probes")):
        continue
      if len({json.dumps(r.get(col), sort_keys=True, default=str) for r in group}) > 1:
        out.append(col)
  return out


def _pooled(rows: list[dict], over) -> tuple[list[list[int]], list[dict]]:
  """--over: the indices of each group's runs (aggregate.groups), and one row per group (its
  settings, with its figures' means and sds), named by the settings that tell groups apart."""
  groups = aggregate.groups(rows, over)
  keys = aggregate.group_keys(rows, over)
  means = aggregate.aggregate(rows, over, list(dict.fromkeys(c for r in rows for c in r)))
  named = []
  for members, mean in zip(groups, means):
    name = ", ".join(f"{k.split('.')[-1]}={mean[k]}" for k in keys) or "all"
    named.append({**mean, "run": f"{name} ({len(members)} runs)"})
  return groups, named


def plot(rows: list[dict], metric: str, *, by: Optional[str] = None, x: str = "step",
         out: str | Path = "results.png", over=()) -> Path:
  """Draws `metric` for every row (run) and writes the figure through plots.save_figure;
  with OVER (config fields, e.g. ['seed']) the runs differing only there are drawn as their
  mean and ±1 sample sd (research/analysis/aggregate.py groups them). The columns of
  `columns_read` are assumed checked (research/results.py does)."""
  groups, shown = _pooled(rows, over) if over else (None, rows)
  colours, key = _colouring(shown, by, x)
  fig, ax = plt.subplots(figsize=(5.6, 3.8), dpi=110)
  if x == "step":
    label, drawn = _step_metric(metric), _curves(rows, metric, ax, colours, groups)
  else:
    label, drawn = _points(shown, metric, x, by, ax, colours)
    if over:  # each point a group: count its runs
      drawn = sum(r["runs"] for r in shown if _is_number(r.get(x)) and _is_number(r.get(label)))
  if drawn < len(rows):  # the title said "across 16 runs" over the 10 that have the columns
    logging.warning("--plot %s: %d of the %d runs have no %s%s and are not drawn", metric,
                    len(rows) - drawn, len(rows), label, "" if x == "step" else f" or {x}")
  values = [v for line in ax.get_lines() for v in line.get_ydata()]
  if values and _spans_decade(values):
    ax.set_yscale("log")
  ax.set_ylabel(label)
  left_out = f" ({len(rows) - drawn} without it left out)" if drawn < len(rows) else ""
  pooled = f", mean ± sd over {', '.join(over)}" if over else ""
  ax.set_title(f"{label} across {drawn} runs{left_out}" + (f" by {by}" if by else "") + pooled,
               fontsize=10)
  ax.grid(alpha=0.3)
  for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
    if isinstance(axis.get_major_locator(), mticker.FixedLocator):
      continue  # ticks set above (an unbounded value's)
    if scale == "linear":  # 0.00125-style labels of a learning-rate axis ran into each other
      axis.set_major_locator(mticker.MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
      axis.set_major_formatter(mticker.ScalarFormatter(useMathText=True))
      axis.get_major_formatter().set_powerlimits((-2, 4))
  key(fig, ax)
  return plots.save_figure(fig, out)
