"""The processes of one multi-process run agree on their command, checked once they have
assembled and before anything is written (research.main calls `check`). Kept apart from
research/main.py, which defines the command's flags when imported."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from research.errors import InputError


def _digest(text: str) -> int:
  return int.from_bytes(hashlib.sha256(text.encode()).digest()[:3], "little")  # an int32



def _differing(rows, names: list[str]) -> list[str]:
  """The names of `rows`' columns (one row per process) where a process differs from 0."""
  return [n for j, n in enumerate(names) if any(r[j] != rows[0][j] for r in rows)]


def check(config, workdir, num_processes) -> None:
  """Every process of a multi-process run was given the same config, --workdir and
  --num_processes, before anything is written. Another --config value on one process trained
  with it there while config.json recorded process 0's (another seed: other losses, exit 0);
  another --workdir hung both processes in the final checkpoint's save, SIGTERM too; another
  --num_processes was ignored. Each process holds only its own values, so what is compared
  is their digests (a field's name and value, where the configs have the same fields)."""
  import jax
  import numpy as np
  from jax.experimental import multihost_utils
  from research import output_paths
  from research import workdir as workdir_lib
  from research.results_records import flatten

  flat = {k: json.dumps(v) for k, v in
          flatten(json.loads(workdir_lib.config_json(config))).items()
          if k not in output_paths.HOST_LOCAL}  # the others must match: cadences are collective
  if flat.get("init_from", '""') != '""':  # the same run named relative or absolute
    flat["init_from"] = json.dumps(str(Path(json.loads(flat["init_from"])).resolve()))
  given = {"--workdir": str(Path(workdir).resolve()), "--num_processes": str(num_processes),
           "--config": json.dumps(flat, sort_keys=True)}
  rows = np.asarray(multihost_utils.process_allgather(
      np.array([_digest(v) for v in given.values()] + [len(flat)], np.int32))).tolist()
  differ = _differing(rows, [*given, "fields"])
  if not differ:
    return
  mine = {k: given[k] for k in differ if k in given and k != "--config"}
  if "--config" in differ and "fields" not in differ:  # the same fields: name those that differ
    names = sorted(flat)
    fields = _differing(np.asarray(multihost_utils.process_allgather(np.array(
        [_digest(f"{n}={flat[n]}") for n in names], np.int32))).tolist(), names)
    mine["--config"] = ", ".join(f"{n}={flat[n]}" for n in fields[:6]) + ", ..." * (len(fields) > 6)
  elif "--config" in differ:
    mine["--config"] = "other fields (another file or preset?)"
  shown = [f"config {v}" if k == "--config" else f"{k}={v}" for k, v in mine.items()]
  raise InputError(
      f"the processes of this run were given different {', '.join(k for k in given if k in differ)} "
      f"(this one, process {jax.process_index()}: {'; '.join(shown)}); give every process the "
      "same command but --process_id (nothing was written)")
