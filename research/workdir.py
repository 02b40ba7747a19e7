"""The workdir contract: what a run directory holds, how it is written, who may write it.

  config.json     the run's config (written atomically, after a resume's restore succeeded)
  summary.json    written last: its presence at train.num_steps marks a finished run
  metrics.jsonl   one row per logging step / evaluation (values of the training state)
  perf.jsonl      throughput rows (wall-clock dependent)
  vocabulary.json the task's tokenizer and label names, when it has them (research.predict),
                  and the data it trained on (research/workdir_vocabulary.py)
  config_changes.jsonl  one row per resume that changed a RESUMABLE field: step, changes
  probes/*.json, figures/*.png   written atomically from the final state
  .lock           names the process (host, PID) that writes the directory
                  (research/workdir_lock.py)

Every "is this the same run / is it finished" question goes through `differences`,
`check_same_config` and `finished_summary`; every metrics reader through `read_jsonl`. What a
start or a resume checks and writes here: research/workdir_resume.py.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Iterator

from absl import logging

from research.errors import InputError, RunIOError

CONFIG, SUMMARY, METRICS, PERF = "config.json", "summary.json", "metrics.jsonl", "perf.jsonl"
VOCABULARY, LOCK, CHANGES = "vocabulary.json", ".lock", "config_changes.jsonl"
CHECKPOINTS = "checkpoints"
RESULTS, RUNS = "results.jsonl", "runs"  # a sweep's directory: its rows, and one run each
ENSEMBLES = "ensemble"  # and ensemble/KEY: the stacked training state of some of its runs
# (and ensemble/KEY/members.json, which runs: research/sweep.py continues it from there)
SWEEP_RECORD = "sweep.json"  # and which sweep it holds (its config file and --sweep name)
# An experiment script's directory (experiments/NAME.py): {"experiment": NAME}, so that its
# own runs and sweeps there are told from a research.main run's or a research.sweep's.
EXPERIMENT = "experiment.json"
PROBES = "probes"  # a run's probes/STEM.json (train.run_probes)
# summary.json's key of a solo run stopped by a non-finite loss (train._train writes it): a
# failure that a retry supersedes, unlike an ensemble member's freeze or a probe's error.
NONFINITE_AT = "nonfinite_at_step"


def sweep_run_dir(sweep_dir: str | Path, name: str) -> Path:
  """The run NAME of the sweep in SWEEP_DIR, where it is now: SWEEP_DIR/runs/NAME. A
  results.jsonl row's `dir` and `probes` paths say where the run was when it trained
  (absolute, or relative to that process's working directory) and are kept for a reader
  only: read through them, a moved sweep or one named relatively from elsewhere found no
  files, and a copy read the original's numbers."""
  return Path(sweep_dir) / RUNS / name


def probe_file(run_dir: str | Path, stem: str) -> Path:
  """Where a run's probe STEM is written: RUN_DIR/probes/STEM.json (derived from where the run
  is now, not from the path its summary or sweep row recorded)."""
  return Path(run_dir) / PROBES / f"{stem}.json"

# Fields that change no result file, only how the run is bookkept: a finished run written
# with other values of them is the same run (reused as is).
BOOKKEEPING = {
    "train.log_every": "which steps get a metrics row, not what they hold",
    "train.checkpoint_every": "when checkpoints are written, not what they hold",
    "train.keep_checkpoints": "how many old checkpoints stay on disk",
    "train.keep_log_spaced": "which old checkpoints stay on disk",
    "train.async_checkpoints": "whether saves overlap training; the bytes are the same",
    "train.compile_cache_dir": "where compiled programs are cached",
    "train.host_memory_check": "a check before training starts; the run is the same",
    "train.peak_flops": "only the MFU column of perf.jsonl",
}
# Fields a resumed run may change (a rerun in the same workdir with other values of them
# continues the run; config.json then records the new values; with no step left to train, only
# NO_STEP_NEEDED's). Everything else is refused: to branch a run, start a new workdir with
# --config.init_from=OLD_WORKDIR.
RESUMABLE = BOOKKEEPING | {
    "train.num_steps": "extends (or shortens, not below the newest checkpoint) a run; a "
                       "decaying schedule is recomputed for the new length and followed from "
                       "the resumed step on (README: Provenance)",
    "train.eval_every": "which steps get an evaluation row",
    "probe": "probes are computed from the final state after training; a rerun re-probes",
    "mesh": "the device layout: the checkpoint is resharded onto the new mesh",
    "sharding": "how arrays are laid out on the mesh, not their values",
    "task.data_dir": "where prepared TFDS files live, not which data",
    "optim.learning_rate": "recovering from a divergence (the non-finite loss error's advice); "
                           "applies from the resumed step, recorded in config_changes.jsonl",
    "optim.weight_decay": "as optim.learning_rate",
}
# Of RESUMABLE, what a rerun may change when no step is left to train (the run restored at
# its train.num_steps): none of these shaped the steps already trained. Bookkeeping and
# train.eval_every decide which rows are written, not what training does; train.num_steps is
# how far to train (raising it is how a run continues); probe is re-run from the final state
# by that very rerun; mesh, sharding and task.data_dir say where arrays and files live, not
# their values. Every other RESUMABLE field (optim.*) applies "from the resumed step": with
# none left it trains nothing, and config.json (research.results, an experiment's result
# files) would label numbers trained with the old value with the new one. Refused there
# (workdir_resume.check_trains_changes); a new RESUMABLE field is refused there until listed.
NO_STEP_NEEDED = BOOKKEEPING.keys() | {"train.num_steps", "train.eval_every", "probe", "mesh",
                                       "sharding", "task.data_dir"}


class ConfigChangedError(InputError):
  """A rerun's config differs from the one the workdir was trained with."""


# --- config provenance -------------------------------------------------------------
def config_json(config) -> str:
  return config.to_json_best_effort(indent=2, sort_keys=True)


def _ignored(dotted: str, ignore) -> bool:
  parts = dotted.split(".")
  return any(".".join(parts[:i]) in ignore for i in range(1, len(parts) + 1))


def differences(old: dict, new: dict, ignore=(), prefix: str = "", filled=()) -> list[str]:
  """'field: old -> new' for every leaf that differs, except fields under `ignore`; a field one
  side lacks is said 'absent', and one of `filled` (old's defaults of fields it lacked,
  research/config_defaults.py) 'absent (default X)'."""
  out = []
  for k in sorted(set(old) | set(new)):
    a, b, name = old.get(k), new.get(k), prefix + k
    if isinstance(a, dict) and isinstance(b, dict):
      out += differences(a, b, ignore, name + ".", filled)
    elif ((k in old) != (k in new) or a != b) and not _ignored(name, ignore):
      was = ("absent" if k not in old else f"absent (default {a!r})" if name in filled
             else repr(a))
      out.append(f"{name}: {was} -> {repr(b) if k in new else 'absent'}")
  return out


def read_object(path: str | Path, what: str, fix: str) -> dict | None:
  """A JSON object a run wrote (config.json, summary.json, a probe's file); None when the
  file is missing. Anything else (broken JSON, a list, a string: damaged or edited) is
  refused naming the file and FIX, never read as a run's record."""
  path = Path(path)
  try:
    text = path.read_text()
  except FileNotFoundError:
    return None
  except OSError as e:
    raise RunIOError(f"reading {path} failed: {e.strerror or e}") from None
  except UnicodeDecodeError:  # bytes that are not UTF-8: damaged, as broken JSON is
    raise InputError(f"{path} {what}, bytes that are not UTF-8 text; {fix}") from None
  if not text.strip():  # a crash between create and write, or a truncation
    raise InputError(f"{path} {what}, an empty file; {fix}")
  try:
    obj = json.loads(text)
  except json.JSONDecodeError as e:  # torn or edited: say where, so it can be looked at
    raise InputError(f"{path} {what}, broken JSON at line {e.lineno} column {e.colno}; "
                     f"{fix}") from None
  if not isinstance(obj, dict):
    raise InputError(f"{path} {what}, a JSON {_JSON_KINDS.get(type(obj), 'value')}; {fix}")
  return obj


_JSON_KINDS = {list: "list", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}


def saved_config(workdir: str | Path, fix: str | None = None) -> dict | None:
  """The workdir's config.json as a dict; None when there is none. A damaged or edited one
  is refused (with `fix`, or research.main's): nothing then says which config wrote the run."""
  fix = fix or (f"put the run's config.json back, or use a new --workdir (--config.init_from="
                f"{workdir} starts it from this run's weights)")
  saved = read_object(Path(workdir) / CONFIG, "does not hold a config (not a JSON object)", fix)
  task = None if saved is None else saved.get("task")
  if saved is not None and not (isinstance(task, dict) and isinstance(task.get("name"), str)):
    # {} or {"task": "lm"}: every field then differed from the rerun's config (2,000
    # characters of "another config"), or the readers failed on it.
    raise InputError(f"{Path(workdir) / CONFIG} is not a run's config (no task.name); {fix}")
  return saved


def is_run_dir(path: str | Path) -> bool:
  """PATH holds a run: its config.json is a run's config (a JSON object with task.name, as
  saved_config reads it). A folder with some other config.json (a user's project, a model
  download) holds none; one that cannot be read is taken for a run (nothing overwrites it)."""
  try:
    return saved_config(path) is not None
  except RunIOError:
    return True
  except InputError:
    return False


def config_differences(workdir: str | Path, config, ignore=RESUMABLE) -> list[str]:
  """differences between the workdir's config.json and `config`. A field config.json lacks (a
  run of a version from before the field) holds the value that version behaved as, its default
  (research/config_defaults.py): the same value is no change, another is said as one."""
  saved = saved_config(workdir)
  return [] if saved is None else saved_differences(saved, json.loads(config_json(config)),
                                                    ignore)


def saved_differences(saved: dict, new: dict, ignore=RESUMABLE) -> list[str]:
  """differences between a saved config (config.json's, or a checkpoint's record of it:
  research/run_environment.py) and `new` (config_json's), a field the saved one lacks at its
  default."""
  from research import config_defaults
  saved, filled = config_defaults.filled(saved)
  return differences(saved, new, ignore, filled=set(filled))


def trained_nothing(workdir: str | Path) -> bool:
  """No checkpoint (not even a partial one) and no summary (or a solo run's non-finite-loss
  summary): a start that failed before its first save (a config that did not fit, an
  interrupt during compilation, a non-finite loss). A rerun starts from step 0 whatever its
  config, so nothing of that attempt is kept to protect."""
  workdir = Path(workdir)
  # An ensemble member frozen late has an error summary too, and its training to keep.
  if (workdir / SUMMARY).exists() and not stopped_nonfinite(workdir):
    return False
  ckpts = workdir / CHECKPOINTS
  return not ckpts.exists() or (ckpts.is_dir() and not any(ckpts.iterdir()))


def stopped_nonfinite(workdir: str | Path) -> bool:
  """The run's summary.json records a solo run stopped by a non-finite loss (NONFINITE_AT)."""
  return NONFINITE_AT in (read_json(Path(workdir) / SUMMARY) or {})


def check_same_config(workdir: str | Path, config, ignore=RESUMABLE) -> None:
  """Refuses (ConfigChangedError, nothing written) a config that differs from the
  workdir's config.json in a field outside `ignore`, unless the run there trained nothing."""
  if trained_nothing(workdir):
    return
  diffs = config_differences(workdir, config, ignore)
  if diffs:
    shown = "; ".join(diffs[:6]) + (f"; (+{len(diffs) - 6} more)" if len(diffs) > 6 else "")
    # The same data under another spelling of its path (relative vs absolute, a moved copy) is
    # another config too: the run's record holds the path as given.
    moved = ""
    if all(d.startswith("task.path:") for d in diffs):
      was = str(saved_config(workdir)["task"].get("path"))
      moved = (f" If it is the same data file, give the path the run recorded, {was!r}"
               + ("" if Path(was).expanduser().is_absolute() else
                  " (from the directory the run was started in)") + ", or put the file back there.")
    raise ConfigChangedError(
        f"{workdir} holds a run of another config ({shown}); a resume may change only "
        "train.num_steps, cadences, probe, mesh and the learning rate (research/workdir.py "
        f"RESUMABLE).{moved} To branch from that run: a new --workdir with "
        f"--config.init_from={workdir}")


def finished_summary(workdir: str | Path, config) -> dict | None:
  """The one "finished and same config" rule: summary.json at train.num_steps without an
  error, and config.json equal to `config` up to bookkeeping fields. None otherwise."""
  summary = read_json(Path(workdir) / SUMMARY)
  if run_state(config, summary or {}) != "finished":
    return None
  if saved_config(workdir) is None or config_differences(workdir, config, BOOKKEEPING):
    return None
  return summary


def run_state(config, summary: dict) -> str:
  """A run's state from its config (a ConfigDict, or config.json's dict) and summary.json's
  dict ({} when absent): failed (an error: a member frozen at a non-finite loss), finished (at
  train.num_steps; finished_summary and research.results), or unfinished (no summary:
  interrupted, running or refused; or fewer steps)."""
  if "error" in summary:
    return "failed"
  steps = (config.get("train") or {}).get("num_steps")
  return "finished" if summary and summary.get("final_step") == steps else "unfinished"


# --- atomic writes ---------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
  """A temporary path beside `path` (same suffix, for writers that infer the format from
  it) that replaces `path` when the block succeeds; readers see the old file or the new
  one, never a part. Write failures become RunIOError naming the path."""
  path = Path(path)
  tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
  try:
    yield tmp
    os.replace(tmp, path)
  except OSError as e:
    unlink_quietly(tmp)
    raise RunIOError(f"writing {path} failed: {e.strerror or e}") from None
  except BaseException:
    unlink_quietly(tmp)
    raise


def write_text(path: str | Path, text: str) -> None:
  with atomic_path(path) as tmp:
    with open(tmp, "w") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())


def write_json(path: str | Path, obj, indent: int = 2, default=None, strict: bool = False) -> None:
  """``strict``: every non-finite float is written as null and anything else JSON has no
  value for raises, so the file parses with any JSON reader (NaN / Infinity are not JSON)."""
  if strict:
    obj = finite_json(obj)
  write_text(path, json.dumps(obj, indent=indent, default=default, allow_nan=not strict))


def finite_json(obj):
  """``obj`` with each non-finite float (NaN, +-inf, numpy's too) replaced by None."""
  if isinstance(obj, dict):
    return {k: finite_json(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [finite_json(v) for v in obj]
  if isinstance(obj, float) and not math.isfinite(obj):
    return None
  return obj


def read_json(path: str | Path) -> dict | None:
  """A JSON file written by write_json; None when missing or unreadable (a file of an
  older version torn by a crash counts as missing: the writer rewrites it)."""
  try:
    obj = json.loads(Path(path).read_text())
  except (OSError, ValueError):
    return None
  return obj if isinstance(obj, dict) else None


def experiment_of(directory: str | Path) -> str | None:
  """The experiment NAME whose mark (EXPERIMENT) DIRECTORY holds; None when unmarked. The
  one reader of the mark: research.main's and research.sweep's workdir checks and
  `reproduce` refuse another experiment's directory by it."""
  return (read_json(Path(directory) / EXPERIMENT) or {}).get("experiment")


def unlink_quietly(path: Path) -> None:
  with contextlib.suppress(OSError):
    path.unlink()


# --- JSONL: the one reader ------------------------------------------------------------
def is_metric_value(value) -> bool:
  """What a run writes as a metric: a number, true/false, null, or a list of them (a
  per-position curve, nested for a per-layer one)."""
  if value is None or isinstance(value, (bool, int, float)):
    return True
  return isinstance(value, list) and all(is_metric_value(v) for v in value)


EDITED_ROW = ("an edited or damaged line; restore the file from a backup or delete that line, "
              "then rerun")


def check_metric_rows(rows: list[dict], path: Path) -> None:
  """metrics.jsonl's (or perf.jsonl's) rows as research.metrics writes them: a step number
  and metrics. A string where a loss belongs would print, sort and plot as if it were one,
  and a finished run's rerun copied it into summary.json (so a rerun is no fix for it)."""
  for row in rows:
    step = row.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
      raise InputError(f"{path}: a row's step is {step!r}, not a step number: {EDITED_ROW}")
    bad = next((k for k, v in row.items() if not is_metric_value(v)), None)
    if bad is not None:
      raise InputError(f"{path}: step {step}'s {bad} is {row[bad]!r}, not a number: {EDITED_ROW}")


def resume_changes(run_dir: str | Path) -> list[str]:
  """What the resumes of the run in RUN_DIR changed, by step ('step 40: train.num_steps: 40 ->
  60'), from its config_changes.jsonl; [] for a run never changed on resume."""
  return [f"step {r.get('step')}: {c}" for r in read_jsonl(Path(run_dir) / CHANGES)
          if isinstance(r, dict) for c in r.get("changes") or []]


def read_jsonl(path: str | Path) -> list[dict]:
  """Rows of a JSONL file (metrics.jsonl, perf.jsonl, results.jsonl); [] when missing.

  A torn last line (the disk filled mid-write, the process died) is dropped with a
  warning; a bad line elsewhere is an edited file and is refused naming the line."""
  path = Path(path)
  try:
    # Undecodable bytes become U+FFFD, so a damaged line fails as JSON below, naming it.
    lines = path.read_text(errors="replace").splitlines()
  except FileNotFoundError:
    return []
  except OSError as e:
    raise RunIOError(f"reading {path} failed: {e.strerror or e}") from None
  rows = []
  for i, line in enumerate(lines):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except ValueError:
      row = None
    if isinstance(row, dict):
      rows.append(row)
    else:
      if row is not None or (i < len(lines) - 1 and any(l.strip() for l in lines[i + 1:])):
        raise InputError(f"line {i + 1} of {path} is not a JSON object; delete that line")
      logging.warning("%s: dropped a torn last line (%d characters) left by an interrupted "
                      "write", path, len(line))
  return rows
