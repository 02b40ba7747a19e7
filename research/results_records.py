"""The runs under some directories read as flat records: research/results.py's table, one
row per run, before it is shown.

`find_runs` finds every directory holding config.json under each one given; `record` reads
a run's files into one row (its columns: research/results.py's docstring), after checking that
they hold what runs write (a metric or summary figure that is not a number is an edited or
damaged file, named); `records` reads them all, names the runs a sweep's results.jsonl
recorded whose directory is gone, marks the points it says failed (and tables those that failed
before their directory existed), and applies the --where
filters (FIELD OP VALUE, each column checked against every run).
"""
from __future__ import annotations

import difflib
import json
import operator
import re
from pathlib import Path
from typing import Iterable, Sequence

from absl import logging

from research import config_defaults, config_overrides, output_paths, workdir_lock
from research.errors import InputError, ResearchError
from research.probes import checkpoint_rows
from research.workdir import (LOCK, RESULTS, RUNS, SUMMARY, check_metric_rows, is_metric_value,
                             read_jsonl, read_object, resume_changes, run_state, sweep_run_dir)

_OPS = {">=": operator.ge, "<=": operator.le, "!=": operator.ne, "==": operator.eq,
        "=": operator.eq, ">": operator.gt, "<": operator.lt}
_WHERE = re.compile(r"^\s*([\w.\-]+)\s*(>=|<=|!=|==|=|>|<)\s*(.*?)\s*$")


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
    for text in dirs:  # a run starting there writes its config.json once its state is built
      for lock in sorted(Path(text).rglob(LOCK)):
        if holder := workdir_lock.live_holder(lock.parent):
          raise InputError(f"no run under {text} has written its config.json yet: {holder} "
                           f"is starting in {lock.parent} (the file comes once its state is "
                           "built); rerun this command in a moment")
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


# Fields of the text tasks' configs that only one kind of source reads (configs/lm.py and
# text_classification.py mark them "tfds source:" / "csv source:"): a CSV run's row showed
# task.dataset imdb_reviews, the unused default, as if it had trained on IMDB.
_TFDS_ONLY = ("dataset", "train_split", "test_split", "eval_split", "text_key", "label_key",
              "data_dir", "max_examples")
_FILE_ONLY = ("path", "text_column", "label_column", "test_fraction", "valid_fraction")


def _drop_unread_task_fields(config: dict) -> dict:
  """config without the task fields its task.source does not read (left blank in the table)."""
  task = config.get("task")
  if not isinstance(task, dict) or task.get("source") not in ("tfds", "csv", "file", "stdlib",
                                                               "synthetic"):
    return config
  unread = set(_FILE_ONLY) if task["source"] == "tfds" else set(_TFDS_ONLY)
  if task["source"] == "synthetic":  # ids drawn from a stream: no file, no dataset
    unread |= set(_FILE_ONLY)
  return config | {"task": {k: v for k, v in task.items() if k not in unread}}


def record(root: Path, run_dir: Path, prefix_root: bool = False) -> dict:
  """One run's row: its name (relative to `root`; under root's name when several roots
  may hold the same relative names), config fields, summary fields and last metrics."""
  name = run_dir.relative_to(root).as_posix()
  if name == ".":  # the directory given is the run itself (`results .` inside it: its name)
    name = run_dir.resolve().name
  elif prefix_root:
    name = f"{root.name}/{name}"
  # A run of an older version lacks the fields added since: it ran with their defaults, so a
  # table beside newer runs shows those values, not blank cells (one answer: config_defaults).
  config = _drop_unread_task_fields(
      config_defaults.filled(_read_json(run_dir / "config.json"))[0])
  summary = _read_json(run_dir / "summary.json")
  _check_summary(summary, run_dir / "summary.json")
  row = {"run": name, "state": run_state(config, summary), "dir": str(run_dir),
         **flatten(config), **flatten(summary, "summary.")}
  # A probe's own scalars; not a hidden ".NAME.tmpPID.json" that a process killed while
  # writing left (workdir.atomic_path): it was tabled as another probe, or broke the table.
  probes = (p for p in (run_dir / "probes").glob("*.json") if not p.name.startswith("."))
  for probe in sorted(probes):
    summary = _read_json(probe).get("summary")
    if isinstance(summary, dict):
      row.update(flatten(summary, f"probes.{probe.stem}."))
  row.update(flatten(_last_checkpoint_probe(run_dir), "probes.checkpoints."))
  # A resume that changed a field (an extension's train.num_steps, a learning rate): its
  # config columns are the new values, as a run trained so from the start would show (a new
  # user's trial: an extended and a fresh 60-step run, other losses, the same row).
  if changes := resume_changes(run_dir):
    row["config_changes"] = "; ".join(changes)
  metrics = read_jsonl(run_dir / "metrics.jsonl")
  check_metric_rows(metrics, run_dir / "metrics.jsonl")  # a rerun refuses it too: no "rerun"
  return row | flatten(last_step(metrics), "last.")


_EDITED = "an edited or damaged file; rerun that run or remove its directory"


def _last_checkpoint_probe(run_dir: Path) -> dict:
  """research.probe_checkpoints' row of the newest checkpoint it probed, as scalars (its
  `step` says which): the ICL score, top head and few-shot counts of each run of a sweep in
  one table. The file is read as every JSONL file is (workdir.read_jsonl: a torn last line
  dropped, a bad line before it refused naming it); a row without the probe's fields (an
  older or another program's) gives no columns."""
  rows = [r for r in read_jsonl(run_dir / "probes" / "checkpoints.jsonl")
          if isinstance(r, dict) and type(r.get("step")) is int]
  if not rows:
    return {}
  try:
    return checkpoint_rows.summary(max(rows, key=lambda r: r["step"]))
  except (KeyError, TypeError, IndexError, ValueError):
    return {}


# summary.json's figures (research/train.py, research/ensemble.py); `final_*` are the last
# metrics. Its other fields (probes' files, a failed member's error) are text.
_SUMMARY_NUMBERS = ("final_step", "train_wall_s", "compile_s", "num_params",
                    "num_non_embedding_params", "train_flops_per_token", "tokens_seen",
                    "frozen_at_step", "frozen_loss")


def _check_summary(summary: dict, path: Path) -> None:
  bad = next((k for k, v in summary.items()
              if (k in _SUMMARY_NUMBERS or k.startswith("final_")) and not is_metric_value(v)), None)
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
  missing, failed, never_made = _sweep_records(dirs)
  for gone, why in missing:  # a done run whose folder is gone
    if unreadable is None:
      raise InputError(f"{gone}: {why}")
    unreadable.append((gone, why))
  if never_made:  # each among its sweep's runs, in the order the table lists runs
    rows += [_failed_point(given, run, row, prefix_root=len(dirs) > 1)
             for given, run, row in never_made]
    roots = [Path(d).resolve() for d in dirs]
    rows.sort(key=lambda r: (next((i for i, d in enumerate(roots)
                                   if Path(r["dir"]).resolve().is_relative_to(d)), len(roots)),
                             Path(r["dir"]).resolve()))
  names = [r["run"] for r in rows]
  for r in rows:  # r6/run and r7/run given as roots were both "run": name them by their path
    r["run"] = r["dir"] if names.count(r["run"]) > 1 else r["run"]
    # A point whose sweep's last row says failed is failed, whatever its files say: one that
    # failed without a summary (an exception in training; a non-finite loss before this
    # version wrote one) is unfinished by them, and one whose extension was refused (its data
    # changed) finished at its old train.num_steps (a new user's trial: `finished` beside a
    # results.jsonl row `failed`). A rerun that finishes it records a new row (done); a run
    # finished by hand (research.main) after the sweep last wrote its table is finished: its
    # summary.json is newer than that results.jsonl.
    at = failed.get(Path(r["dir"]).resolve())
    if at is not None and not (r["state"] == "finished" and _mtime(Path(r["dir"]) / SUMMARY) > at):
      r["state"] = "failed"
  table = rows  # each filter's column is checked against every run, not the ones left so far
  for expr in where:
    matches = _filter(expr, table)
    rows = [r for r in rows if matches(r)]
  return rows


def _failed_point(given: Path, run: Path, row: dict, prefix_root: bool) -> dict:
  """The table's row of a sweep point that failed before its run directory existed (a value
  the run's task could not build from): its overrides and the error its results.jsonl row
  holds. It was left out of the table and the figure without a word, exit 0 (a new user's
  trial: a 4-point sweep tabled as a complete 3-point one)."""
  name = run.relative_to(given.resolve()).as_posix()
  name = f"{given.resolve().name}/{name}" if prefix_root else name
  overrides = row.get("overrides") if isinstance(row.get("overrides"), dict) else {}
  return {"run": name, "state": "failed", "dir": str(given / run.relative_to(given.resolve())),
          **flatten(overrides), "summary.error": str(row.get("error", "no error recorded"))}


def _sweep_records(dirs: Sequence[str | Path]):
  """(gone, failed, never_made) from the sweeps' results.jsonl: the runs it records done whose
  directory is gone (left out of the table without a word before); the resolved directories
  of those its last row for them says failed, each with its results.jsonl's mtime; and
  (given directory, run directory, row) of the points it says failed that never had a
  directory. Every sweep below a given directory
  counts, and the sweep above one given inside it (SWEEP/runs, SWEEP/runs/NAME), for its runs
  under that directory: the same run read as failed or unfinished, and a gone run was named
  or not, by which directory was given."""
  gone, named, last, never_made = [], set(), {}, {}
  for given in map(Path, dirs):
    inside = given.resolve()
    # A sweep is results.jsonl beside runs/ (research/workdir_layout.py); a stray one is not.
    sweeps = {p.parent.resolve() for p in given.rglob(RESULTS) if (p.parent / RUNS).is_dir()}
    sweeps |= {a for a in inside.parents[:2] if (a / RESULTS).is_file() and (a / RUNS).is_dir()}
    for root in sorted(sweeps):
      try:
        rows = read_jsonl(root / RESULTS)
      except (ResearchError, OSError) as e:  # the runs found are what there is; said (it was
        logging.warning("%s; its runs are tabled from their own folders, without what it "
                        "records of failed or deleted runs", e)  # skipped without a word)
        continue
      for row in rows:
        if not isinstance(row, dict) or not row.get("run"):
          continue
        run = sweep_run_dir(root, str(row["run"]))
        if not run.is_relative_to(inside):
          continue
        # A done run that is gone is named (rerunning the sweep retrains it); a point refused
        # or failed at its start never had a directory, and is tabled from its row.
        # A run named by two given directories (a sweep and its parent) is one gone run.
        if row.get("status") == "done" and not run.is_dir() and run not in named:
          named.add(run)
          gone.append((run, f"recorded in {root / RESULTS} but the directory is gone; rerun "
                            "the sweep to train it again"))
        elif row.get("status") == "failed" and not run.is_dir():  # its last failure's row,
          never_made[run] = (never_made.get(run, (given,))[0], run, row)  # the first root
        last[run] = (row.get("status"), _mtime(root / RESULTS))
  return (gone, {run: at for run, (status, at) in last.items() if status == "failed"},
          [point for run, point in never_made.items() if last[run][0] == "failed"])


def _mtime(path: Path) -> float:
  try:
    return path.stat().st_mtime
  except OSError:
    return float("-inf")


def columns_of(rows: list[dict]) -> list[str]:
  """Column names in first-seen order."""
  return list(dict.fromkeys(k for r in rows for k in r))


def check_column(rows: list[dict], name: str, flag: str) -> None:
  cols = columns_of(rows)
  if name not in cols:
    close = list(dict.fromkeys(config_overrides.abbreviated(name, cols)
                               + difflib.get_close_matches(name, cols, n=3, cutoff=0.5)))[:3]
    hint = f"did you mean {', '.join(close)}?" if close else \
        "columns are config fields (model.width), summary.*, last.* and probes.*"
    raise InputError(f"{flag}: no column {name!r} in the runs' table; {hint}")


def _value(text: str):
  """A --where value: a number (.001 and 016 too), true/false (or True/False, as the table
  prints them), or the text."""
  try:
    return json.loads({"True": "true", "False": "false"}.get(text, text))
  except ValueError:
    pass
  try:
    return float(text)
  except ValueError:
    return text


def _kind(value) -> str:
  return ("bool" if isinstance(value, bool) else "number" if isinstance(value, (int, float))
          else "text")


def _filter(expr: str, rows: list[dict]):
  """The row predicate of one --where expression, checked against every run's column."""
  m = _WHERE.match(expr)
  if not m:
    raise InputError(f"--where {expr!r} is not FIELD OP VALUE (OP one of "
                     ">=, <=, >, <, ==, !=); write e.g. --where 'model.width>=64'")
  field, op, text = m.groups()
  check_column(rows, field, "--where")
  kinds = {_kind(r[field]) for r in rows if r.get(field) is not None}
  ordered = op in (">=", "<=", ">", "<")
  rest = text.lstrip("<>=!").strip()
  if (not text and ordered) or (text[:1] in ("<", ">", "=", "!") and _kind(_value(rest)) == "number"):
    # 'width>', or 'width=>64' (read as width == '>64': no run matched, 'loosen the filter')
    raise InputError(f"--where {expr!r}: " + (f"no VALUE after {op!r}" if not text else
                     f"two operators ({op!r} then {text[0]!r})") + "; write one of >=, <=, >, "
                     f"<, ==, != and a value, e.g. --where '{field}>={rest or 64}'")
  want = _value(text)
  if (kinds and _kind(want) not in kinds and kinds <= {"number", "bool"}
      and (kinds == {"bool"} or _kind(want) == "text")) or (
          ordered and _kind(want) == "number" and kinds and "number" not in kinds):
    # a column of numbers (or of booleans) against text never matches (==) or always does
    # (!=): a typo ('width==abc', 'fused_qkv==flase'); text columns compare as written
    have = next(r[field] for r in rows if r.get(field) is not None)
    raise InputError(f"--where {expr!r}: {field} holds {have!r}, which does not compare with "
                     f"{want!r}; compare " + (f"{field} with true or false" if kinds == {"bool"} else
                                              "numbers with numbers"))

  def matches(row: dict) -> bool:
    have, value = row.get(field), want
    if have is None:
      return False
    if ordered and _kind(have) != _kind(value):
      return False  # a text run of a mixed column is not above or below a number
    if _kind(have) == "text" and _kind(value) != "text":
      value = text  # `task.name=regression` and `preset=1` compare as written
    return _OPS[op](have, value)
  return matches
