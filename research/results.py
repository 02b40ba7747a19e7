"""Every run under some directories as one flat table, and one metric's curves across runs.

  python -m research.results DIR... [--where 'model.width>=64' ...] [--columns a,b,...]
      [--csv OUT.csv] [--plot METRIC --by FIELD [--x step|FIELD] [--out FIG.png]]

A run is a directory holding config.json (research.main's workdir, a sweep's
runs/NAME/, an experiment's run folders); every directory under DIR is searched.
One row per run:

  run         the run directory, relative to the DIR it was found under (one row if under two)
  state       finished, unfinished (interrupted, running, fewer steps) or failed
  a.b.c       every config field, dotted (`model.width`, `optim.learning_rate`)
  summary.k   every summary.json field (`summary.final_loss`, `summary.num_params`)
  last.k      what metrics.jsonl holds for the last step, its rows merged (`last.step`,
              `last.loss`, `last.eval_loss`)
  probes.p.k  a probe's own scalars, its probes/p.json "summary" (the regression probe's
              `probes.icl_regression.error_at_2d` and `.headline`: a seed sweep's verdicts)

The table printed shows --columns, or by default the run, its state, the config fields that
differ between runs, the parameter count, the last metrics and the probe scalars. --csv writes
every column. A run whose files cannot be read (an edited or damaged JSON file, a metric or
summary figure that is not a number) is left out and named on stderr after the table of the
others; the command exits 6. From Python, `load(dirs)` gives the table as a pandas DataFrame
(`pip install -e .[results]`), `records(dirs)` as a list of dicts without pandas.
--plot METRIC draws a metrics.jsonl column against the step for every run, coloured by --by
FIELD (a colour bar, logarithmic when the values span a decade or more; a legend when they are
not numbers), or with --x FIELD one point per run: METRIC's last value (or a summary field)
against that column, one line per --by value.
"""
from __future__ import annotations

import csv
import difflib
import json
import operator
import re
import sys
from pathlib import Path
from typing import Iterable, Sequence

from research import output_paths
from research.errors import InputError, ResearchError, RunsFailedError
from research.workdir import (RESULTS, RUNS, atomic_path, read_jsonl, read_object,
                              run_state, sweep_run_dir)

_OPS = {">=": operator.ge, "<=": operator.le, "!=": operator.ne, "==": operator.eq,
        "=": operator.eq, ">": operator.gt, "<": operator.lt}
_WHERE = re.compile(r"^\s*([\w.\-]+)\s*(>=|<=|!=|==|=|>|<)\s*(.*?)\s*$")


# ----------------------------------------------------------------------------- the table
def find_runs(dirs: Sequence[str | Path]) -> list[tuple[Path, Path]]:
  """(root, run_dir) for every directory with config.json under each root, sorted; a run under
  two roots (`results DIR DIR`, a sweep and its run) is listed once, not counted twice."""
  found, seen = [], set()
  for text in dirs:
    output_paths.check_local(text)
    root = Path(text)
    if not root.is_dir():
      raise InputError(f"{root}: not a directory; pass run or sweep directories "
                       "(folders holding config.json somewhere below)")
    runs = sorted({p.parent for p in root.rglob("config.json")})
    found += [(root, run) for run in runs if run.resolve() not in seen]
    seen.update(run.resolve() for run in runs)
  if not found:
    raise InputError(f"no run (a directory with config.json) under {', '.join(map(str, dirs))}; "
                     "pass the --workdir of research.main or research.sweep")
  return found


def flatten(tree: dict, prefix: str = "") -> dict:
  """{'a': {'b': 1}} -> {'a.b': 1}; lists become JSON text so every cell is a scalar."""
  out = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      out.update(flatten(value, name + "."))
    elif isinstance(value, (list, tuple)):
      out[name] = json.dumps(value)
    else:
      out[name] = value
  return out


def _read_json(path: Path) -> dict:
  return read_object(path, "is not a JSON object", "rerun that run or remove its directory") or {}


def record(root: Path, run_dir: Path, prefix_root: bool = False) -> dict:
  """One run's row: its name (relative to `root`; under root's name when several roots
  may hold the same relative names), config fields, summary fields and last metrics."""
  name = run_dir.relative_to(root).as_posix()
  if name == ".":  # the directory given is the run itself (`results .` inside it: its name)
    name = run_dir.resolve().name
  elif prefix_root:
    name = f"{root.name}/{name}"
  config = _read_json(run_dir / "config.json")
  summary = _read_json(run_dir / "summary.json")
  _check_summary(summary, run_dir / "summary.json")
  row = {"run": name, "state": run_state(config, summary), "dir": str(run_dir),
         **flatten(config), **flatten(summary, "summary.")}
  for probe in sorted((run_dir / "probes").glob("*.json")):  # a probe's own scalars
    summary = _read_json(probe).get("summary")
    if isinstance(summary, dict):
      row.update(flatten(summary, f"probes.{probe.stem}."))
  metrics = read_jsonl(run_dir / "metrics.jsonl")
  _check_metrics(metrics, run_dir / "metrics.jsonl")
  return row | flatten(last_step(metrics), "last.")


def _numbers(value) -> bool:
  """What a run writes as a metric: a number, true/false, null, or a list of them (a
  per-position curve, nested for a per-layer one)."""
  if value is None or isinstance(value, (bool, int, float)):
    return True
  return isinstance(value, list) and all(_numbers(v) for v in value)


_EDITED = "an edited or damaged file; rerun that run or remove its directory"


def _check_metrics(rows: list[dict], path: Path) -> None:
  """metrics.jsonl's rows as research.metrics writes them: a step number and metrics. A
  string where a loss belongs would print, sort and plot as if it were one."""
  for row in rows:
    step = row.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
      raise InputError(f"{path}: a row's step is {step!r}, not a step number: {_EDITED}")
    bad = next((k for k, v in row.items() if not _numbers(v)), None)
    if bad is not None:
      raise InputError(f"{path}: step {step}'s {bad} is {row[bad]!r}, not a number: {_EDITED}")


# summary.json's figures (research/train.py, research/ensemble.py); `final_*` are the last
# metrics. Its other fields (probes' files, a failed member's error) are text.
_SUMMARY_NUMBERS = ("final_step", "train_wall_s", "compile_s", "num_params",
                    "num_non_embedding_params", "train_flops_per_token", "tokens_seen",
                    "frozen_at_step", "frozen_loss")


def _check_summary(summary: dict, path: Path) -> None:
  bad = next((k for k, v in summary.items()
              if (k in _SUMMARY_NUMBERS or k.startswith("final_")) and not _numbers(v)), None)
  if bad is not None:
    raise InputError(f"{path}: {bad} is {summary[bad]!r}, not a number: {_EDITED}")


def last_step(metrics: list[dict]) -> dict:
  """Every metric logged at the run's last step, merged: the training row and the eval row
  of the final step are two lines of metrics.jsonl, and the last line alone lost the
  training loss."""
  if not metrics:
    return {}
  step = metrics[-1].get("step")
  merged = {}
  for row in metrics:
    if row.get("step") == step:
      merged.update(row)
  return merged


def records(dirs: Sequence[str | Path], where: Iterable[str] = (),
            unreadable: list | None = None) -> list[dict]:
  """Every run under `dirs` as one flat dict, filtered by `where` expressions. A run whose
  files cannot be read (a damaged or edited JSON file, an I/O error) raises, naming the file;
  given an `unreadable` list, it is left out and its (run directory, one-line reason) appended
  there, so one damaged run of a sweep's hundred does not hide the 99 (the command: exit 6)."""
  rows = []
  for root, run in find_runs(dirs):
    try:
      rows.append(record(root, run, prefix_root=len(dirs) > 1))
    except (ResearchError, OSError) as e:
      if unreadable is None:
        raise
      unreadable.append((run, str(e)))
  missing, failed = _sweep_records(dirs)
  for gone, why in missing:  # a done run whose folder is gone
    if unreadable is None:
      raise InputError(f"{gone}: {why}")
    unreadable.append((gone, why))
  names = [r["run"] for r in rows]
  for r in rows:  # r6/run and r7/run given as roots were both "run": name them by their path
    r["run"] = r["dir"] if names.count(r["run"]) > 1 else r["run"]
    # A point that failed without a summary (an exception in training; a non-finite loss
    # before this version wrote one) is unfinished by its files; its sweep's row says failed.
    failed_row = Path(r["dir"]).resolve() in failed
    r["state"] = "failed" if r["state"] == "unfinished" and failed_row else r["state"]
  table = rows  # each filter's column is checked against every run, not the ones left so far
  for expr in where:
    rows = [r for r in rows if _matches(r, expr, table)]
  return rows


def _sweep_records(dirs: Sequence[str | Path]) -> tuple[list[tuple[Path, str]], set[Path]]:
  """Runs a sweep's results.jsonl records whose directory is gone (left out of the table without
  a word before), and the resolved directories of those its last row for them says failed.
  Every sweep below a given directory counts, and the sweep above one given inside it
  (SWEEP/runs, SWEEP/runs/NAME), for its runs under that directory: the same run read as
  failed or unfinished, and a gone run was named or not, by which directory was given."""
  gone, named, last = [], set(), {}
  for given in map(Path, dirs):
    inside = given.resolve()
    # A sweep is results.jsonl beside runs/ (research/workdir_layout.py); a stray one is not.
    sweeps = {p.parent.resolve() for p in given.rglob(RESULTS) if (p.parent / RUNS).is_dir()}
    sweeps |= {a for a in inside.parents[:2] if (a / RESULTS).is_file() and (a / RUNS).is_dir()}
    for root in sorted(sweeps):
      try:
        rows = read_jsonl(root / RESULTS)
      except (ResearchError, OSError):
        continue  # not a sweep, or its table damaged: the runs found are what there is
      for row in rows:
        if not isinstance(row, dict) or not row.get("run"):
          continue
        run = sweep_run_dir(root, str(row["run"]))
        if not run.is_relative_to(inside):
          continue
        # Done rows only: a point refused at its start never had a directory, and its row
        # says why (failed); rerunning the sweep retrains a done run that is gone.
        # A run named by two given directories (a sweep and its parent) is one gone run.
        if row.get("status") == "done" and not run.is_dir() and run not in named:
          named.add(run)
          gone.append((run, f"recorded in {root / RESULTS} but the directory is gone; rerun "
                            "the sweep to train it again"))
        last[run] = row.get("status")
  return gone, {run for run, status in last.items() if status == "failed"}


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


def columns_of(rows: list[dict]) -> list[str]:
  """Column names in first-seen order."""
  return list(dict.fromkeys(k for r in rows for k in r))


def check_column(rows: list[dict], name: str, flag: str) -> None:
  cols = columns_of(rows)
  if name not in cols:
    close = difflib.get_close_matches(name, cols, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else \
        "columns are config fields (model.width), summary.* and last.*"
    raise InputError(f"{flag}: no column {name!r} in the runs' table; {hint}")


def _value(text: str):
  """A --where value: a number, true/false (or True/False, as the table prints them), or the text."""
  try:
    return json.loads({"True": "true", "False": "false"}.get(text, text))
  except ValueError:
    return text


def _matches(row: dict, expr: str, rows: list[dict]) -> bool:
  m = _WHERE.match(expr)
  if not m:
    raise InputError(f"--where {expr!r} is not FIELD OP VALUE (OP one of "
                     ">=, <=, >, <, ==, !=); write e.g. --where 'model.width>=64'")
  field, op, text = m.groups()
  check_column(rows, field, "--where")
  have, want = row.get(field), _value(text)
  if have is None:
    return False
  ordered = op in (">=", "<=", ">", "<")
  if ordered and isinstance(have, (int, float)) != isinstance(want, (int, float)):
    raise InputError(f"--where {expr!r}: {field} holds {have!r}, which does not compare with "
                     f"{want!r}; compare numbers with numbers")
  if isinstance(have, str) and not isinstance(want, str):
    want = text  # `task.name=regression` and `preset=1` compare as written
  return _OPS[op](have, want)


def varying(rows: list[dict]) -> list[str]:
  """Columns whose value differs between runs (bookkeeping `dir` left out)."""
  out = []
  for col in columns_of(rows):
    values = {json.dumps(r.get(col), sort_keys=True, default=str) for r in rows}
    if col not in ("run", "dir") and len(values) > 1:
      out.append(col)
  return out


def default_columns(rows: list[dict]) -> list[str]:
  """What tells runs apart and how they ended: the run, the config fields that vary, the
  parameter count, the last metrics (timings, which vary on every rerun, left out) and the
  probes' scalars."""
  config = [c for c in varying(rows) if c.split(".")[0] not in ("state", "summary", "last", "probes")]
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
  """A plain aligned text table, one line per run."""
  cells = [[_cell(r.get(c)) for c in cols] for r in rows]
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
  flags.DEFINE_list("columns", [], "columns to print (default: run + those that vary)",
                    flag_values=fv)
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
  fv = cli.parse_flags(_define, argv, __doc__, positional=True)
  dirs = fv.positional
  if not dirs:
    raise InputError("no directory given; run python -m research.results DIR... "
                     "(a research.main or research.sweep --workdir)")
  for flag, given in (("--by", fv.by is not None), ("--x", fv.x != "step"),
                      ("--out", fv.out is not None)):
    if given and fv.plot is None:
      raise InputError(f"{flag} is a setting of the plot; add --plot METRIC (e.g. --plot loss)")
  if fv.csv:
    output_paths.check_output(fv.csv, "--csv", example="table.csv")
  if fv.out:
    from research.analysis.results_plots import figure_formats
    output_paths.check_output(fv.out, "--out", figure_formats(), example="figure.png")
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
        f"{len(rows)} {'is' if len(rows) == 1 else 'are'}{matched}); repair or remove "
        f"{'those directories' if len(unreadable) > 1 else 'that directory'} and rerun")
  return 0


def _default_figure(dirs: Sequence[str], metric: str) -> Path:
  return Path(dirs[0]) / f"results_{metric}.png"


def _report(rows: list[dict], fv, dirs: Sequence[str]) -> None:
  """The table, and the CSV and figure asked for, of the runs that could be read."""
  for col in fv.columns:
    check_column(rows, col, "--columns")
  if fv.plot:  # before the table: a misspelt --by printed the whole table, then exit 2
    # matplotlib only when drawing
    from research.analysis.results_plots import check_curves, columns_read, plot
    for col, flag in columns_read(rows, fv.plot, fv.by, fv.x):
      check_column(rows, col, flag)
    check_curves(rows, fv.plot, fv.x)
  cols = fv.columns or default_columns(rows)
  print(format_table(rows, cols))
  if fv.csv:
    print(f"wrote {write_csv(rows, fv.csv)} ({len(rows)} runs, {len(columns_of(rows))} columns)")
  if fv.plot:
    out = fv.out or _default_figure(dirs, fv.plot)
    print(f"wrote {plot(rows, fv.plot, by=fv.by, x=fv.x, out=out)}")


if __name__ == "__main__":
  from research import cli
  cli.run_script(main)
