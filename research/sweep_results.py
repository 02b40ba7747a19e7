"""A sweep's results table (DIR/results.jsonl and its CSV): the run name of each point, the
row a run leaves, and what a finished sweep exits with. research/sweep.py runs the points.
"""
from __future__ import annotations

import hashlib
import json
import re
import traceback
from pathlib import Path

from absl import logging

from research import results as results_lib
from research import workdir as workdir_lib
from research.config_files import point_key
from research.errors import InputError, RunsFailedError
from research.results_records import flatten


_NAME_CHARS = 120
TRAINING = "training"  # a row's status while its run is trained on (Results.train_again)


def run_name(index: int, overrides: dict) -> str:
  """A new point's run name (a sweep's reader: Results.names, which keeps an earlier one):
  the index and each override's last key and value. One that would pass 120 characters
  keeps the overrides that fit whole and ends in how many were left out and a hash of them
  all (the pod ladder's 11 overrides were cut mid-word: '...,grad_accum_steps=1,topolog')."""
  parts = [f"{k.split('.')[-1]}={v}" for k, v in overrides.items()]

  def name(kept: list[str]) -> str:
    return re.sub(r"[^A-Za-z0-9_.=,-]", "_", f"{index:03d}_" + ",".join(kept))

  if len(name(parts)) <= _NAME_CHARS:
    return name(parts)
  digest = hashlib.sha256(point_key(overrides).encode()).hexdigest()
  for keep in range(len(parts) - 1, 0, -1):
    short = name(parts[:keep] + [f"and_{len(parts) - keep}_more_{digest[:8]}"])
    if len(short) <= _NAME_CHARS:
      return short
  return name([f"{len(parts)}_overrides_{digest[:8]}"])  # the first alone is too long


class Results:
  """results.jsonl, keyed by run name; every write replaces the file atomically."""

  def __init__(self, path: Path):
    self.path = path
    self.rows: dict[str, dict] = {row["run"]: row for row in workdir_lib.read_jsonl(path)}

  def run_dir(self, name: str) -> Path:
    """Where the run NAME is now: runs/NAME beside this table, never its row's `dir` (the
    place it trained in; a moved or copied sweep read the old place's files through it)."""
    return workdir_lib.sweep_run_dir(self.path.parent, name)

  def done(self, name: str) -> bool:
    return self.rows.get(name, {}).get("status") == "done"

  def names(self, overrides: list[dict]) -> list[str]:
    """The run name of each point: run_name(i, o), or, where no run or row has that name, the
    name of a row of the same overrides that no point of the list is named: a point inserted
    into the list shifts the index of the points after it, and those keep the runs they
    trained in (they were trained again under their new names, while the table kept their
    old rows beside them). A sweep's reader finds its rows through this, never run_name."""
    names = [run_name(i, o) for i, o in enumerate(overrides)]
    free = [n for n in self.rows if n not in set(names)]
    for i, o in enumerate(overrides):
      if names[i] in self.rows or self.run_dir(names[i]).exists():
        continue
      kept = next((n for n in free if _same_point(self.rows[n].get("overrides"), o)), None)
      if kept is not None:
        names[i] = kept
        free.remove(kept)
    return names

  def point_rows(self, overrides: list[dict]) -> list[dict]:
    """The row of every point, in the list's order (after run_sweep: each has one)."""
    return [self.rows[n] for n in self.names(overrides)]

  def put(self, row: dict) -> None:
    # Strict JSON, as summary.json: a frozen member's NaN loss is null here too (a row made
    # from the summary on a rerun, and one made in memory, are then the same).
    self.rows[row["run"]] = workdir_lib.finite_json(row)
    self.save()

  def train_again(self, name: str) -> None:
    """Marks NAME's row `training` (not done): a run trained on (extended, or run again) is
    not done until it records a new row, whatever stops it on the way (SIGTERM, a crash). The
    row stays, with its overrides: `names` finds a point whose index moved through it (a
    deleted row left the run to be trained again from step 0 under its new name). Written by
    the next `put` or `save`."""
    if name in self.rows:
      self.rows[name] = self.rows[name] | {"status": TRAINING}

  def save(self) -> None:
    workdir_lib.write_text(self.path, "".join(json.dumps(r) + "\n" for r in self.rows.values()))
    # The same rows flat (overrides.model.width, final.loss, ...) for pandas or a spreadsheet;
    # tracebacks stay in the JSONL only.
    results_lib.write_csv([flatten({k: v for k, v in r.items() if k != "traceback"})
                           for r in self.rows.values()], self.path.with_name("results.csv"))


def _same_point(recorded, overrides: dict) -> bool:
  """A row's overrides (read back from JSON: tuples are lists) are this point's."""
  return point_key(recorded) == point_key(overrides)


def _row(name: str, overrides: dict, summary: dict, wall: float, run_dir: Path) -> dict:
  """A finished run's row; an ensemble member that froze or whose probes raised carries
  `error` in its summary and is recorded as failed (retried by a rerun, as a solo failure)."""
  flops = summary.get("train_flops_per_token", 0) * summary.get("tokens_seen", 0)
  # The run's training seconds over all its sessions (loop.totals), as a row recorded from
  # an earlier summary has them: this session's time said 40 s for a point resumed at 90%.
  wall = summary.get("train_wall_s", wall)
  finals = {k[len("final_"):]: v for k, v in summary.items() if k.startswith("final_")}
  row = {"run": name, "status": "failed" if "error" in summary else "done",
         "overrides": overrides, "dir": str(run_dir),
         "num_params": summary.get("num_params"),
         "num_non_embedding_params": summary.get("num_non_embedding_params"),
         "train_flops_per_token": summary.get("train_flops_per_token"),
         "tokens": summary.get("tokens_seen"), "train_flops": flops, "wall_s": wall,
         "final": finals, "probes": summary.get("probes", {}),
         "frozen": summary.get("frozen", False)}
  # Ensemble members share one program: wall_s is the whole ensemble's.
  for k in ("ensemble_size", "frozen_at_step", "frozen_loss", "error", "traceback"):
    if k in summary:
      row[k] = summary[k]
  return row


def _failed_row(name: str, overrides: dict, run_dir: Path, e: Exception) -> dict:
  # refused: the point's input cannot run here (InputError: e.g. a pod size whose step needs
  # more memory than this host has), which a rerun as it stands would meet again.
  return {"run": name, "status": "failed", "overrides": overrides, "dir": str(run_dir),
          "error": f"{type(e).__name__}: {e}", "refused": isinstance(e, InputError),
          "traceback": traceback.format_exc()[-4000:]}


def failed_runs(results: Results, names: list[str]) -> list[str]:
  return [n for n in names if results.rows.get(n, {}).get("status") != "done"]


def check_finished(results: Results, names: list[str], workdir: Path) -> None:
  """A finished sweep's exit: 0 when every point is done; InputError (exit 2) when a point
  was refused as given, which a rerun would meet again; RunsFailedError (exit 6, a rerun
  retries them) for the other failures."""
  failed = failed_runs(results, names)
  logging.info("sweep finished: %d done, %d failed %s", len(names) - len(failed),
               len(failed), failed)
  refused = [n for n in failed if results.rows.get(n, {}).get("refused")]
  if refused:  # bad input: exit 2 naming it; "rerun to retry" would meet it again
    first = results.rows[refused[0]]["error"].split(": ", 1)[-1].splitlines()[0]
    others = [n for n in failed if n not in refused]
    raise InputError(f"{len(refused)} of {len(names)} runs were refused as given ({refused[0]}: "
                     f"{first})" + (f"; {len(others)} more failed ({', '.join(others)}), which a "
                                    "rerun retries" if others else "")
                     + f"; errors in {Path(workdir) / 'results.jsonl'}")
  if failed:
    raise RunsFailedError(f"{len(failed)} of {len(names)} runs failed: {', '.join(failed)} "
                          f"(errors in {Path(workdir) / 'results.jsonl'}); rerun the "
                          "command to retry them")
