"""Every run under some directories as one flat table, and one metric's curves across runs.

  python -m research.results DIR... [--where 'model.width>=64' ...] [--columns a,b,...]
      [--over seed] [--csv OUT.csv] [--plot METRIC --by FIELD [--x step|FIELD] [--out FIG.png]]

A run is a directory holding config.json (research.main's workdir, a sweep's
runs/NAME/, an experiment's run folders); every directory under DIR is searched.
One row per run:

  run         the run directory, relative to the DIR it was found under (one row if under two)
  state       finished, unfinished (interrupted, running, fewer steps) or failed (its
              summary's error, or its sweep's last results.jsonl row for it)
  a.b.c       every config field, dotted (`model.width`, `optim.learning_rate`)
  config_changes  what a resume changed, by step (config_changes.jsonl: an extension's
              `train.num_steps: 40 -> 60`); shown by default when a run has one
  summary.k   every summary.json field (`summary.final_loss`, `summary.num_params`)
  last.k      what metrics.jsonl holds for the last step, its rows merged (`last.step`,
              `last.loss`, `last.eval_loss`)
  probes.p.k  a probe's own scalars, its probes/p.json "summary" (the regression probe's
              `probes.icl_regression.error_at_2d` and `.headline`: a seed sweep's verdicts;
              the classification probe's `probes.classification.icl.acc_full`)

The table printed shows --columns, or by default the run, its state, the config fields that
differ between runs, the parameter count, the last metrics and the probe scalars. --csv writes
every column. A run whose files cannot be read (an edited or damaged JSON file, a metric or
summary figure that is not a number) is left out and named on stderr after the table of the
others; the command exits 6. --over=FIELD[,FIELD] (e.g. seed) makes the runs that differ only
in those fields one row: `runs`, and each figure's mean ± sample standard deviation
(research/analysis/aggregate.py; --csv then writes the rows so made, with X.sd, X.sem, X.min,
X.max, X.n and X.nonfinite columns; --plot draws each row's mean with a ±1 sd band or error
bars). From Python, `load(dirs)` gives the table as a pandas DataFrame
(`pip install -e .[results]`), research/results_records.py's `records(dirs)` as a list of
dicts without pandas.
--plot METRIC draws a metrics.jsonl column against the step for every run, coloured by --by
FIELD (a colour bar, logarithmic when the values span a decade or more; a legend when they are
not numbers), or with --x FIELD one point per run: METRIC's last value (or a summary field)
against that column, one line per --by value.
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Iterable, Sequence

from research.analysis import aggregate
from research.errors import InputError, RunsFailedError
from research.results_records import check_column, columns_of, records
from research.workdir import atomic_path


# ----------------------------------------------------------------------------- the table
def load(dirs: Sequence[str | Path] | str | Path, where: Iterable[str] = ()):
  """The table as a pandas DataFrame, one row per run."""
  try:
    import pandas as pd
  except ImportError:
    raise InputError("research.results.load needs pandas: pip install pandas "
                     "(or pip install -e .[results])") from None
  if isinstance(dirs, (str, Path)):
    dirs = [dirs]
  return pd.DataFrame(records(dirs, where))


def varying(rows: list[dict]) -> list[str]:
  """Columns whose value differs between runs (bookkeeping `dir` left out)."""
  out = []
  for col in columns_of(rows):
    values = {json.dumps(r.get(col), sort_keys=True, default=str) for r in rows}
    if col not in ("run", "dir") and len(values) > 1:
      out.append(col)
  return out


WIDE = 40  # default columns past which the table gets a hint to choose some


def default_columns(rows: list[dict]) -> list[str]:
  """What tells runs apart and how they ended: the run, the config fields that vary, the
  parameter count, the last metrics (timings, which vary on every rerun, left out) and the
  probes' scalars."""
  config = [c for c in varying(rows) if aggregate.is_setting(c)]
  # A resumed run's changes whenever one run has them: runs that differ only there differ.
  config += [c for c in ("config_changes",) if c in columns_of(rows)]
  size = [c for c in ("summary.num_params",) if c in columns_of(rows)]
  last = [c for c in columns_of(rows) if c.startswith("last.") and c != "last.learning_rate"]
  probes = [c for c in columns_of(rows) if c.startswith("probes.")]
  return ["run", "state", *config, *size, *last, *probes]


def _cell(value) -> str:
  if value is None:
    return ""
  if isinstance(value, float):
    return f"{value:.4g}"
  return str(value)


def format_table(rows: list[dict], cols: Sequence[str]) -> str:
  """A plain aligned text table, one line per run (or per --over group: `mean ± sd` cells)."""
  cells = [[aggregate.cell(r, c) or _cell(r.get(c)) for c in cols] for r in rows]
  widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(cols)]
  lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
  lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths)) for line in cells]
  return "\n".join(line.rstrip() for line in lines)


def write_csv(rows: list[dict], path: str | Path) -> Path:
  """Every column of every run; missing cells empty."""
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:  # never half a file
    writer = csv.DictWriter(f, fieldnames=columns_of(rows), restval="")
    writer.writeheader()
    writer.writerows(rows)
  return path


# ----------------------------------------------------------------------------- command
def _define(fv) -> None:
  from absl import flags
  flags.DEFINE_multi_string("where", [], "FIELD OP VALUE filters, ANDed "
                            "(e.g. 'model.width>=64', 'optim.name==adam')", flag_values=fv)
  flags.DEFINE_list("columns", [], "columns to print after the run (default: those that vary)",
                    flag_values=fv)
  flags.DEFINE_list("over", [], "config fields to average over (e.g. seed): the runs that "
                    "differ only in them become one row, mean ± sd", flag_values=fv)
  flags.DEFINE_string("csv", None, "write the whole table (every column) to this CSV",
                      flag_values=fv)
  flags.DEFINE_string("plot", None, "metric to plot (a metrics.jsonl column, e.g. loss)",
                      flag_values=fv)
  flags.DEFINE_string("by", None, "colour the runs by this column (e.g. model.width)",
                      flag_values=fv)
  flags.DEFINE_string("x", "step", "x axis: step (curves) or a column (one point per run)",
                      flag_values=fv)
  flags.DEFINE_string("out", None, "figure path (default: DIR/results_METRIC.png)",
                      flag_values=fv)


def main(argv=None) -> int:
  from research import cli, output_paths
  given = list(sys.argv[1:] if argv is None else argv)
  if any(a == "--workdir" or a.startswith("--workdir=") for a in given):
    raise InputError("research.results takes its directories as arguments, not --workdir: "
                     "python -m research.results DIR... (each a research.main or research.sweep "
                     "--workdir)")
  fv = cli.parse_flags(_define, argv, __doc__, positional=True)
  if any(not d for d in fv.positional):  # an unset shell variable: it tabled the current dir
    raise InputError("an empty directory argument (an unset shell variable?); pass the "
                     "directory, e.g. python -m research.results runs/NAME")
  # `~` as every other command reads it (a shell leaves '~/x' quoted, and --csv=~/t.csv)
  dirs = [str(Path(d).expanduser()) for d in fv.positional]
  if not dirs:
    raise InputError("no directory given; run python -m research.results DIR... "
                     "(a research.main or research.sweep --workdir)")
  for flag, given in (("--by", fv.by is not None), ("--x", fv.x != "step"),
                      ("--out", fv.out is not None)):
    if given and fv.plot is None:
      raise InputError(f"{flag} is a setting of the plot; add --plot METRIC (e.g. --plot loss)")
  if fv.csv:
    fv.csv = str(output_paths.check_output(fv.csv, "--csv", example="table.csv"))
  if fv.out:
    from research.analysis.results_plots import figure_formats
    fv.out = str(output_paths.check_output(fv.out, "--out", figure_formats(), example="figure.png"))
  elif fv.plot is not None:  # the default place too: a read-only DIR was exit 5 after the table
    default = _default_figure(dirs, fv.plot)
    try:
      output_paths.check_output(str(default), "--out", example="figure.png")
    except InputError as e:
      raise InputError(f"the figure goes to {default} unless --out says otherwise, and "
                       + str(e).replace(f"--out={default}", str(default))
                       + "; or pass --out=FILE elsewhere") from None
  unreadable = []
  rows = records(dirs, fv.where, unreadable)
  if not rows and not unreadable:
    raise InputError(f"no run under {', '.join(dirs)} matches --where "
                     f"{' and '.join(fv.where)}; loosen the filter")
  for run, why in unreadable:  # first: a refused --columns below must not hide them
    print(f"not in the table: {run}: {why}", file=sys.stderr)
  if rows:
    _report(rows, fv, dirs)
  if unreadable:
    matched = "" if rows or not fv.where else "; no readable run matches --where"
    raise RunsFailedError(
        f"{len(unreadable)} run{'s' if len(unreadable) > 1 else ''} could not be read and "
        f"{'are' if len(unreadable) > 1 else 'is'} not in the table (listed above; "
        f"{len(rows)} {'is' if len(rows) == 1 else 'are'}{matched}); mend each as its line "
        "says, or rerun or remove that run")
  return 0


def _check_over(rows: list[dict], over: Sequence[str]) -> None:
  for col in over:
    check_column(rows, col, "--over")
    if not aggregate.is_setting(col):
      raise InputError(f"--over={col}: --over takes config fields the runs differ in "
                       "(e.g. --over=seed), not figures they produced; those are averaged")


def _default_figure(dirs: Sequence[str], metric: str) -> Path:
  return Path(dirs[0]) / f"results_{metric}.png"


def _report(rows: list[dict], fv, dirs: Sequence[str]) -> None:
  """The table, and the CSV and figure asked for, of the runs that could be read."""
  _check_over(rows, fv.over)
  table = aggregate.aggregate(rows, fv.over, columns_of(rows)) if fv.over else rows
  for col in fv.columns:  # with --over, the pooled table's too (runs, last.loss.sd)
    if col not in columns_of(table):
      check_column(rows, col, "--columns")
  if fv.plot:  # before the table: a misspelt --by printed the whole table, then exit 2
    # matplotlib only when drawing
    from research.analysis.results_plots import check_curves, columns_read, plot
    for col, flag in columns_read(rows, fv.plot, fv.by, fv.x):
      check_column(rows, col, flag)
    check_curves(rows, fv.plot, fv.x)
  if fv.plot and fv.by in fv.over:
    raise InputError(f"--by {fv.by} is averaged over (--over); colour by another field, or "
                     "leave it out of --over")
  if fv.plot and fv.x in fv.over:
    raise InputError(f"--x {fv.x} is averaged over (--over); put another field on the x axis, "
                     "or leave it out of --over")
  # The run first whatever was asked: rows without it could not be told apart.
  cols = ["run", *(c for c in fv.columns if c != "run")] if fv.columns else default_columns(rows)
  what = "rows" if fv.over else "runs"
  if fv.over:  # one row per setting: its keys, how many runs, the pooled values, the figures
    keys = aggregate.group_keys(rows, fv.over)
    cols = [*keys, "runs", *fv.over, *(c for c in cols if c not in keys and c not in fv.over
                                       and c not in ("run", "runs"))]
  print(format_table(table, cols))
  if fv.over:
    made = f"{len(table)} row{'' if len(table) == 1 else 's'}"
    print(f"note: {len(rows)} runs in {made}, each over its {', '.join(fv.over)} values: "
          "mean ± sample standard deviation of the finite values, (n=k) where only k of its "
          "runs have one; --csv writes sd, sem, min, max, n and nonfinite columns",
          file=sys.stderr)
    for names in aggregate.repeated(rows, fv.over):
      print(f"warning: {len(names)} runs share every setting and their {', '.join(fv.over)} "
            f"({', '.join(names[:3])}{' ...' if len(names) > 3 else ''}): one run's setting "
            "counted as several, its mean weighted towards it and its spread understated; "
            "give each run once (--where, or the directories)", file=sys.stderr)
    mixed = [i + 1 for i, r in enumerate(table) if aggregate.mixed_states(r)]
    if mixed:  # an unfinished run's last loss is from an earlier step than the others'
      print(f"note: row{'s' if len(mixed) > 1 else ''} {', '.join(map(str, mixed))} pool runs "
            "that did not all finish (see state); --where state==finished averages the "
            "finished ones alone", file=sys.stderr)
  if not fv.columns and len(cols) > WIDE:  # reproduce's WORKDIR: 223 columns, 5,394 characters
    print(f"note: {len(cols)} columns (what differs between these {len(rows)} runs, their last "
          "metrics and probes); choose some with --columns=run,state,summary.num_params,"
          "last.loss or fewer runs with --where (--csv writes them all)", file=sys.stderr)
  if fv.csv:
    print(f"wrote {write_csv(table, fv.csv)} ({len(table)} {what}, "
          f"{len(columns_of(table))} columns)")
  if fv.plot:
    out = fv.out or _default_figure(dirs, fv.plot)
    print(f"wrote {plot(rows, fv.plot, by=fv.by, x=fv.x, out=out, over=fv.over)}")


if __name__ == "__main__":
  from research import cli
  cli.run_script(main)
