"""research.results --over=FIELD (research/results.py checks the fields; the figure:
results_plots.py): the runs that differ only in FIELD (seeds, most often) as one row, each
figure their mean and spread, as a paper reports results over seeds.

Rows are grouped by every config field that varies between the runs (and by what a resume
changed, `config_changes`) except the --over fields, whether shown or not, so that runs of two
learning rates are never pooled because --columns left the rate out; a field a run lacks (a
sweep point that failed before its run existed) splits no group. In a group of N runs a
number becomes the mean of its finite values, `X.sd` (sample standard deviation, n - 1),
`X.sem` (sd / sqrt(n)), `X.min`, `X.max`, `X.n` (the runs with a finite value) and
`X.nonfinite` (NaN or inf: a diverged seed, counted, never averaged in); the printed cell is
`mean ± sd`, with `(n=k)` where k < N and `k non-finite`. A boolean becomes the count that hold
it (`7/10`, out of the runs that have it), a text its values with their counts (`finished×9,
failed×1`, `(none)×m` for runs without it); a setting every run of the group shares stays that
value.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from typing import Sequence

NOT_SETTINGS = ("state", "summary", "last", "probes")  # first parts of columns a run produced
NOT_POOLED = ("run", "dir")  # one per run: a row of many runs has none


def is_setting(col: str) -> bool:
  """A config field's column (model.width, seed), not what the run produced or bookkeeping."""
  return (col.split(".")[0] not in NOT_SETTINGS
          and col not in ("run", "dir", "config_changes", "runs"))


def _text(v) -> str:
  return json.dumps(v, sort_keys=True, default=str)


def group_keys(rows: list[dict], over: Sequence[str]) -> list[str]:
  """Every config field with two values or more among the runs that have it, and
  `config_changes` where runs differ in it, less the --over fields."""
  keys = []
  for col in dict.fromkeys(c for r in rows for c in r):
    if (is_setting(col) or col == "config_changes") and col not in over:
      if len({_text(r[col]) for r in rows if r.get(col) is not None}) > 1:
        keys.append(col)
  return keys


def groups(rows: list[dict], over: Sequence[str]) -> list[list[int]]:
  """The indices of each group's runs, in the order of each group's first run."""
  keys = group_keys(rows, over)
  at: dict[str, list[int]] = {}
  for i, r in enumerate(rows):
    at.setdefault(_text([r.get(k) for k in keys]), []).append(i)
  return list(at.values())


def sample_sd(values: Sequence[float]) -> float | None:
  """Standard deviation with n - 1; None for fewer than two values."""
  if len(values) < 2:
    return None
  mean = math.fsum(values) / len(values)
  return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def aggregate(rows: list[dict], over: Sequence[str], values: Sequence[str]) -> list[dict]:
  """One row per group (`groups`): its keys, `runs` (how many), the --over values it pooled,
  and every column in VALUES summarised."""
  keys = group_keys(rows, over)
  out = []
  for members in ([rows[i] for i in g] for g in groups(rows, over)):
    row = {k: members[0].get(k) for k in keys}
    row["runs"] = len(members)
    for col in over:
      row[col] = _listed([m.get(col) for m in members])
    for col in values:
      if col not in keys and col not in over and col not in NOT_POOLED:
        row.update(_summary(col, [m.get(col) for m in members]))
    out.append(row)
  return out


def repeated(rows: list[dict], over: Sequence[str]) -> list[list[str]]:
  """Runs a group pools that share their --over values too (the same seed twice: one command
  run in two directories, a copied sweep), by their `dir` (else `run`): each is counted as a
  run of its own, the mean weighted towards it and the spread understated (a trial: 3 runs
  of seeds 0, 0, 1 read as 3 replicates)."""
  out = []
  for g in groups(rows, over):
    at: dict[str, list[str]] = {}
    for i in g:
      at.setdefault(_text([rows[i].get(c) for c in over]), []).append(
          str(rows[i].get("dir") or rows[i].get("run")))
    out.extend(names for names in at.values() if len(names) > 1)
  return out


def _listed(values: list) -> str:
  """The --over values of a group, numbers in numeric order; consecutive integers as a range
  (seeds 0-11), a long list cut to its ends and count."""
  distinct = sorted({_text(v): v for v in values}.values(),
                    key=lambda v: (0, v, "") if _is_number(v) else (1, 0, str(v)))
  if len(distinct) > 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in distinct) \
      and distinct[-1] - distinct[0] == len(distinct) - 1:
    return f"{distinct[0]}-{distinct[-1]}"
  shown = [str(v) for v in distinct]
  if len(shown) > 6:
    shown = shown[:3] + ["...", shown[-1]] + [f"({len(distinct)} values)"]
  return ", ".join(shown)


def _is_number(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool)


def _summary(col: str, values: list) -> dict:
  present = [v for v in values if v is not None]
  if not present:
    return {col: None}
  if len(present) == len(values) and all(_text(v) == _text(present[0]) for v in present) \
      and (is_setting(col) or not isinstance(present[0], (bool, int, float))):
    return {col: present[0]}  # a setting the group shares (a figure's numbers are counted)
  if all(isinstance(v, bool) for v in present):
    return {col: f"{sum(present)}/{len(present)}"}
  if all(_is_number(v) for v in present):
    finite = [float(v) for v in present if math.isfinite(v)]
    n, sd = len(finite), sample_sd(finite)
    # An int every run shares (num_params, tokens_seen) stays that int: as a float mean it
    # printed 2.64e+04 for 26401 (and lost digits past 2**53).
    ints = all(isinstance(v, int) for v in present)  # min and max stay exact ints too
    low, high = (min(present), max(present)) if ints else (min(finite, default=None),
                                                           max(finite, default=None))
    return {col: low if ints and low == high else math.fsum(finite) / n if n else None,
            f"{col}.sd": sd,
            f"{col}.sem": sd / math.sqrt(n) if sd is not None else None,
            f"{col}.min": low, f"{col}.max": high,
            f"{col}.n": n, f"{col}.nonfinite": len(present) - n}
  counts = Counter(str(v) for v in present)  # texts, or booleans mixed with numbers
  if len(present) < len(values):
    counts["(none)"] = len(values) - len(present)
  return {col: ", ".join(f"{v}×{c}" for v, c in counts.most_common())}


def cell(row: dict, col: str) -> str | None:
  """The printed cell: `mean ± sd` (the mean alone when every run has the same value),
  `(n=k)` where only k runs have a finite value, `k non-finite`; None where the column is not
  a summarised number (printed as it is)."""
  if f"{col}.n" not in row:
    return None
  mean, sd, n, bad = row[col], row[f"{col}.sd"], row[f"{col}.n"], row[f"{col}.nonfinite"]
  text = "" if mean is None else str(mean) if isinstance(mean, int) else (
      f"{mean:.4g} ± {sd:.2g}" if sd else f"{mean:.4g}")
  notes = [f"n={n}"] * (n + bad < row["runs"] or bool(bad)) + [f"{bad} non-finite"] * bool(bad)
  return (text + (f" ({', '.join(notes)})" if notes else "")).strip()


def mixed_states(row: dict) -> bool:
  """A row pooling runs that did not all finish (its `state` a count of several values)."""
  return "×" in str(row.get("state", ""))
