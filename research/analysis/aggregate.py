"""research.results --over=FIELD (research/results.py checks the fields; the figure:
results_plots.py): the runs that differ only in FIELD (seeds, most often) as one row, each
figure their mean and spread, as a paper reports results over seeds.

Rows are grouped by every config field that varies between the runs except the --over fields,
whether shown or not, so that runs of two learning rates are never pooled because --columns
left the rate out. In a group of N runs a number becomes its mean, `X.sd` (sample standard
deviation, N - 1), `X.sem` (sd / sqrt(n)), `X.min`, `X.max` and `X.n` (the runs that have it:
an unfinished run may lack a probe); the printed cell is `mean ± sd`, with `(n=k)` where k < N.
A boolean becomes the count that hold it (`7/10`), a text its values with their counts
(`finished×9, failed×1`); a value every run of the group has, the same in each (a setting
they share, the parameter count), stays that value.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from typing import Sequence

NOT_SETTINGS = ("state", "summary", "last", "probes")  # first parts of columns a run produced


def is_setting(col: str) -> bool:
  """A config field's column (model.width, seed), not what the run produced or bookkeeping."""
  return (col.split(".")[0] not in NOT_SETTINGS
          and col not in ("run", "dir", "config_changes", "runs"))


def group_keys(rows: list[dict], over: Sequence[str]) -> list[str]:
  """Every config field that varies between the runs, less the --over fields."""
  keys = []
  for col in dict.fromkeys(c for r in rows for c in r):
    if is_setting(col) and col not in over:
      if len({json.dumps(r.get(col), sort_keys=True, default=str) for r in rows}) > 1:
        keys.append(col)
  return keys


def aggregate(rows: list[dict], over: Sequence[str], values: Sequence[str]) -> list[dict]:
  """One row per group (in the order of each group's first run): its keys, `runs` (how
  many), the --over values it pooled, and every column in VALUES summarised."""
  keys = group_keys(rows, over)
  groups: dict[str, list[dict]] = {}
  for r in rows:
    groups.setdefault(json.dumps([r.get(k) for k in keys], default=str), []).append(r)
  out = []
  for members in groups.values():
    row = {k: members[0].get(k) for k in keys}
    row["runs"] = len(members)
    for col in over:
      row[col] = json.dumps(sorted({m.get(col) for m in members}, key=str), default=str)
    for col in values:
      if col not in keys and col not in over and col != "run":
        row.update(_summary(col, [m.get(col) for m in members]))
    out.append(row)
  return out


def _summary(col: str, values: list) -> dict:
  present = [v for v in values if v is not None]
  if not present:
    return {col: None}
  if all(isinstance(v, bool) for v in present):
    return {col: f"{sum(present)}/{len(present)}"}
  if all(v == present[0] for v in present) and len(present) == len(values):
    return {col: present[0]}  # a setting shared by the group, the parameter count
  if all(isinstance(v, (int, float)) for v in present):
    finite = [float(v) for v in present if math.isfinite(v)]
    n = len(finite)
    if not n:
      return {col: present[0]}
    mean = math.fsum(finite) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1)) if n > 1 else None
    return {col: mean, f"{col}.sd": sd, f"{col}.sem": sd / math.sqrt(n) if sd is not None else None,
            f"{col}.min": min(finite), f"{col}.max": max(finite), f"{col}.n": n}
  counts = Counter(str(v) for v in present)
  if len(counts) == 1:
    return {col: present[0]}
  return {col: ", ".join(f"{v}×{c}" for v, c in counts.most_common())}


def cell(row: dict, col: str) -> str | None:
  """The printed cell: `mean ± sd` and `(n=k)` where some runs lack the figure; None where
  the column is not a summarised number (printed as it is)."""
  if f"{col}.n" not in row:
    return None
  mean, sd, n = row[col], row[f"{col}.sd"], row[f"{col}.n"]
  text = f"{mean:.4g} ± {sd:.2g}" if sd is not None else f"{mean:.4g}"
  return text + (f" (n={n})" if n < row["runs"] else "")
