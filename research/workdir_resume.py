"""What a start or a resume checks and writes in a run's workdir (research/train.py; an
ensemble's members through research/ensemble.py), on the file contract of research/workdir.py.

Before the restore, `check_has_config`; after it, `check_not_past`, `check_trains_changes` and
`check_readable`, refusals that leave every file as it was; then `record_start` (config.json, config_changes.jsonl, an
earlier attempt's files removed) and, in research/metrics.py, `repair_jsonl` (the logs cut back
to the resumed step). A rerun of a finished run keeps its training record
(`kept_training_record`).
"""
from __future__ import annotations

import json
from pathlib import Path

from absl import logging

from research.errors import InputError
from research.workdir import (BOOKKEEPING, CHANGES, CONFIG, METRICS, NO_STEP_NEEDED, PERF,
                              SUMMARY, VOCABULARY, check_metric_rows, config_differences,
                              config_json, read_json, read_jsonl, stopped_nonfinite,
                              unlink_quietly, write_text)


def check_has_config(workdir: str | Path) -> None:
  """Before resuming a workdir's checkpoints: its config.json, written before the first
  checkpoint, must be there; without it the config check would let any config continue."""
  if not (Path(workdir) / CONFIG).exists():
    raise InputError(f"{workdir} has checkpoints but no {CONFIG}, so nothing says which config "
                     f"wrote them; put the run's {CONFIG} back, or use a new --workdir "
                     f"(--config.init_from={workdir} starts it from this run's weights)")


def check_not_past(restored: int, num_steps: int, workdir: str | Path) -> None:
  """Refuses a resume whose train.num_steps is below the restored step: the loop would do
  nothing, and summary.json's final_step past num_steps never counts as finished."""
  if restored > num_steps:
    raise InputError(f"{workdir} holds a run at step {restored}, past its config's "
                     f"train.num_steps={num_steps}; give num_steps >= {restored} to continue "
                     "it, or use a new --workdir")


def check_trains_changes(workdir: str | Path, config, restored: int) -> None:
  """Refuses a resume at `restored` >= train.num_steps (a finished run, or one stopped while
  probing) whose config changes a RESUMABLE field that shapes training (outside
  workdir.NO_STEP_NEEDED: the learning rate, weight decay). Such a value applies from the
  resumed step on; with no step left it trained nothing, and config.json, then research.results
  and an experiment's result files, would have labelled the old values' numbers with it."""
  if restored < config.train.num_steps:
    return
  changes = config_differences(workdir, config, ignore=NO_STEP_NEEDED)
  if changes:
    raise InputError(
        f"{workdir} holds a run trained to step {restored} of train.num_steps="
        f"{config.train.num_steps}: no step is left to train with {'; '.join(changes)}, and "
        "its numbers were trained with the old values; raise train.num_steps above "
        f"{restored} to continue the run with the new values, or train them in a new workdir "
        f"(config.init_from={workdir} starts it from this run's weights)")


def kept_training_record(workdir: Path, summary: dict) -> dict:
  """SUMMARY for a rerun of a finished run, which trains nothing and re-probes, with what
  the run's summary recorded about its training kept (wall and compile time, an ensemble
  member's size and fate): the rerun's own seconds (a restore) silently replaced them. The
  final_* values the rerun read back from metrics.jsonl / perf.jsonl stand; those it found
  nothing for (a log removed since) are the summary's: they were dropped, and
  `research.results --columns summary.final_loss` then had no such column."""
  before = read_json(workdir / SUMMARY) or {}
  if before.get("final_step") != summary["final_step"]:
    return summary
  finals = {k: v for k, v in before.items() if k.startswith("final_") and k not in summary}
  # Only what training decided; a failed probe's error and traceback are the rerun's to clear.
  return {**summary, **finals, **{k: before[k] for k in TRAINING_RECORD if k in before}}


TRAINING_RECORD = ("train_wall_s", "compile_s", "ensemble_size", "frozen", "frozen_at_step",
                   "frozen_loss")


def record_start(workdir: str | Path, config, step: int, also: list[str] = ()) -> None:
  """Once the state is initialised or restored at `step` (process 0): the resumable fields
  this start changes (appended to config_changes.jsonl) and config.json, each written
  atomically; at step 0 the files of an earlier attempt go (vocabulary.json too: then
  research/workdir_vocabulary.py `record` writes the task's); at any step the summary of an
  earlier attempt stopped by a non-finite loss goes: this start retries it. (A summary whose
  error is its probes' stays: a rerun that trains nothing keeps its training record.)
  `also`: changes the config does not hold (research/run_environment: the resolved mesh)."""
  workdir = Path(workdir)
  if stopped_nonfinite(workdir):
    unlink_quietly(workdir / SUMMARY)
  # A start at step 0 resumes nothing: an earlier attempt's config.json is replaced, and its
  # rows (of that config, never checkpointed) go with it.
  changes = config_differences(workdir, config, ignore=BOOKKEEPING) if step else []
  if not step:
    for name in (METRICS, PERF, CHANGES, VOCABULARY):
      unlink_quietly(workdir / name)
  append_changes(workdir, step, changes + list(also) if step else [])
  write_text(workdir / CONFIG, config_json(config))


def append_changes(workdir: str | Path, step: int, changes: list[str]) -> None:
  """A resume's changes, logged and appended to config_changes.jsonl (written atomically);
  not again when the last row is the same at the same step (a rerun that saved no checkpoint
  since: a finished run, a resume preempted or failed before its next save)."""
  if changes:
    logging.warning("resuming at step %d with changed fields: %s", step, "; ".join(changes))
    row = {"step": step, "changes": changes}
    rows = read_jsonl(Path(workdir) / CHANGES)
    if rows[-1:] != [row]:
      write_text(Path(workdir) / CHANGES, "".join(json.dumps(r) + "\n" for r in rows + [row]))


def check_readable(workdir: str | Path, step: int = 0, log_every: int = 0) -> None:
  """Before a resume at `step` writes anything (config.json, config_changes.jsonl): a damaged
  line in metrics.jsonl, perf.jsonl or config_changes.jsonl raises InputError now, so the
  refused start changes nothing (and logs no "resumed from checkpoint" first). A metrics.jsonl
  with no row up to `step` (removed by hand) is warned of: the run went on, exit 0, and its
  finished metrics.jsonl began at the resume, a hole no command mentioned."""
  rows = {name: read_jsonl(Path(workdir) / name) for name in (METRICS, PERF, CHANGES)}
  for name in (METRICS, PERF):  # an edited value: a rerun of a finished run copied it on
    check_metric_rows(rows[name], Path(workdir) / name)
  if log_every and step >= log_every and not any(r.get("step", 0) <= step for r in rows[METRICS]):
    logging.warning("%s holds no row up to step %d, where the run resumes: its metrics before "
                    "it are gone (restore the file from a backup to keep them)",
                    Path(workdir) / METRICS, step)


def repair_jsonl(path: str | Path, upto_step: int) -> None:
  """Before a resume at `upto_step`: drop a torn last line, rows logged after the step
  (the killed run's tail, rewritten by this one) and repeated rows, and sort by step, so a
  resumed run leaves the file an uninterrupted one writes."""
  path = Path(path)
  if not path.exists():
    return
  rows, seen = [], set()
  for row in read_jsonl(path):
    key = json.dumps(row, sort_keys=True)
    if row.get("step", 0) <= upto_step and key not in seen:
      seen.add(key)
      rows.append(row)
  rows.sort(key=lambda r: r.get("step", 0))  # stable: a step's train row stays before its eval
  write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
