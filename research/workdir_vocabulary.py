"""A run's vocabulary.json: the task's tokenizer and label names, and the data it trained on.

  {"tokenizer": {...}, "labels": [...], "data": {...}}

Written at the run's first start (`record`, process 0), before its first checkpoint;
research.predict rebuilds a text_classification task from the tokenizer and labels without
its data. "data" is the task's `corpus`: what it read, with its sizes and the file's SHA-256
(csv / file sources; stdlib: of the files read) or the TFDS dataset's name/config/version.
Every resume, extension or rerun of the run and research.probe_checkpoints rebuild the task
from its data and `check` it against this record: a data file edited since the run started
(same vocabulary: flipped labels, other text of the same characters) was trained on, or
probed, silently.
"""
from __future__ import annotations

import json
from pathlib import Path

from absl import logging

from research.errors import InputError
from research.output_paths import HOST_LOCAL
from research.workdir import (CONFIG, VOCABULARY, read_json, read_object, trained_nothing,
                              write_json)

DATA = "data"
WHERE = ("path", "root", "python")  # where the data was read: the same bytes elsewhere are the same
_FIX = ("restore it from a backup of the run (this run's data gives it again only if "
        "unchanged since training)")


def task_data(task) -> dict | None:
  """What the task read (its `corpus`), as JSON; None for a task that read no data (one
  rebuilt from its saved vocabulary for predict) or has no vocabulary."""
  corpus = getattr(task, "corpus", None) if hasattr(task, "vocabulary") else None
  return json.loads(json.dumps(corpus)) if isinstance(corpus, dict) else None


def check(workdir: str | Path, task) -> None:
  """Refuses a task whose data now gives another vocabulary or label set than the one the
  run saved at its first start (before a restore would fail on the embedding's shape), or
  that read other data than the run recorded (same vocabulary: other text or labels)."""
  if trained_nothing(workdir):  # `record` replaces it
    return
  vocabulary = task.vocabulary() if hasattr(task, "vocabulary") else None
  path = Path(workdir) / VOCABULARY
  # Damaged is refused, not read as absent: the run went on with it, and predict refused it.
  saved = None if vocabulary is None else read_object(
      path, "does not hold the run's tokenizer and labels (not a JSON object)", _FIX)
  if saved is not None and {k: v for k, v in saved.items() if k != DATA} != vocabulary:
    raise InputError(
        f"the task's data now gives another vocabulary or label set than the one saved in "
        f"{path} when this run started: the data file changed. Restore "
        "it, or train on the new data in a new --workdir")
  recorded, now = (saved or {}).get(DATA), task_data(task)
  older = recorded is None and now is not None and getattr(task, "probe_name", None)
  if older:
    # A run of an older version (or without vocabulary.json: an ensemble member of one): the
    # corpus its final probe recorded (lm: sizes, a TFDS dataset by its name alone, no hash).
    path = Path(workdir) / "probes" / f"{task.probe_name}.json"
    recorded = (read_json(path) or {}).get("corpus")
  if recorded is not None and not isinstance(recorded, dict):
    raise InputError(f"{path} is damaged ({DATA!r} is not a record of the data); {_FIX}")
  if recorded is None or now is None:
    return
  if older and "/" not in str(recorded.get("dataset", "/")):
    now = {**now, "dataset": str(now.get("dataset", "")).split("/")[0]}
  # Keys both hold: an older record has fewer (a new key is no change of the data).
  both = sorted(set(recorded) & set(now))
  changed = _changes(recorded, now, [k for k in both if k not in WHERE])
  if changed:
    what = _named(now)
    moved = _changes(recorded, now, [k for k in both if k in WHERE and k != "path"])
    fix = ("Restore the data the run trained on" if not moved else
           f"Read it where the run did ({'; '.join(moved)}: the standard library of another "
           "Python is other text)")
    raise InputError(f"{what} is not the data this run trained on ({'; '.join(changed)}; "
                     f"recorded in {path}): it changed since the run started. {fix}, or "
                     "train on the new data in a new --workdir")


class OtherDataError(InputError):
  """A new point of a sweep reads other data than the sweep's runs did (not the ensemble's
  fault: training the points one by one is refused the same)."""


def check_peers(workdir: str | Path, task, config, peers) -> None:
  """Refuses a new run of a sweep whose task reads other data than a run the sweep keeps
  recorded with the same task settings (another seed or width of one experiment). Each run
  checks only its own record (`check`), so a point added, or a seed more, after the CSV was
  edited trained on the new file, exit 0, and research.results pooled it with the old runs
  (a trial: seed 3 on 300 rows averaged with seeds 0-2 on 500)."""
  now = task_data(task)
  if now is None or not trained_nothing(workdir):  # a started run: `check` holds it to its own
    return
  task_fields = _task_fields(config.task.to_dict())
  for peer in map(Path, peers):
    if peer.resolve() == Path(workdir).resolve():
      continue
    recorded = _data_record(peer / VOCABULARY)
    if not isinstance(recorded, dict):
      continue
    if "sha256" in now and _same_file(recorded.get("path"), now.get("path")):
      # One file, whatever else the points vary (seq_len, test_fraction): its bytes must match.
      # (A stdlib corpus has no path: its records differ by the settings that choose files.)
      keys = ["sha256"]
    else:
      saved = read_json(peer / CONFIG) or {}
      if not isinstance(saved.get("task"), dict) or _task_fields(saved["task"]) != task_fields:
        continue  # other settings: other data is meant
      keys = sorted(k for k in set(recorded) & set(now) if k not in WHERE)
    changed = _changes(recorded, now, keys)
    if changed:
      raise OtherDataError(
          f"{_named(now)} is not the data the sweep's run {peer.name} trained on "
          f"({'; '.join(changed)}; recorded in {peer / VOCABULARY}): the file changed since, "
          "and this new point would train on other data and be tabled with it. Restore the "
          "data, or sweep the new data in a new --workdir")


def _named(now: dict) -> str:
  """The data a record describes, as a message names it."""
  return (f"config.task.path={now['path']!r}" if "path" in now else
          f"TFDS dataset {now['dataset']!r}" if "dataset" in now else "the task's data")


def _changes(recorded: dict, now: dict, keys) -> list[str]:
  """'sha256 "a1b2..." -> "c3d4..."' for each of `keys` whose recorded value differs."""
  return [f"{k} {_shown(recorded[k])} -> {_shown(now[k])}" for k in keys
          if k in recorded and k in now and recorded[k] != now[k]]


def _same_file(a, b) -> bool:
  """Two records' paths name one file (a.csv and ./a.csv too); False where either has none."""
  if not isinstance(a, str) or not isinstance(b, str):
    return False
  return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


_RECORDS: dict = {}  # path -> ((mtime_ns, size), its data record): each file parsed once


def _data_record(path: Path):
  """A run's recorded data, read once per file version: every new point of a sweep checks every
  kept run, and a word tokenizer's vocabulary.json is hundreds of KB."""
  try:
    st = path.stat()
  except OSError:
    return None
  stamp = (st.st_mtime_ns, st.st_size)
  if _RECORDS.get(path, (None,))[0] != stamp:
    _RECORDS[path] = (stamp, (read_json(path) or {}).get(DATA))
  return _RECORDS[path][1]


def _task_fields(task: dict) -> dict:
  """A task's settings as JSON, less the fields that say only where this host keeps things."""
  local = {k.split(".", 1)[1] for k in HOST_LOCAL if k.startswith("task.")}
  return {k: v for k, v in json.loads(json.dumps(task)).items() if k not in local}


def _shown(value) -> str:
  """A recorded value in a message: a SHA-256's first 12 digits, others up to 60 characters."""
  text = json.dumps(value)
  return text[:13] + '..."' if isinstance(value, str) and len(value) == 64 else text[:60]


def record(workdir: str | Path, task, step: int) -> None:
  """Once the state is initialised or restored at `step` (process 0, after
  workdir_resume.record_start, which removes an earlier attempt's file at step 0): the task's
  vocabulary and data, when the workdir holds none yet."""
  if not hasattr(task, "vocabulary"):
    return
  workdir = Path(workdir)
  saved, data = read_json(workdir / VOCABULARY), task_data(task)
  if saved is not None and (DATA in saved or data is None):
    return
  if saved is not None:  # an older version's run; `check` found the same vocabulary
    # Recording the data read now (rather than never) refuses a change from here on; what
    # steps before `step` read is not known.
    logging.warning("%s holds no record of the data the run trained on (an older version's "
                    "run): recording the data read at step %d", workdir / VOCABULARY, step)
  write_json(workdir / VOCABULARY, (saved or task.vocabulary()) | (
      {DATA: data} if data is not None else {}), indent=0)
