"""The paths a command writes, checked before its work: a workdir it may create or write
into, and an output file (--out, --csv) that is writable, of the right kind, and never part
of a run's or a sweep's own record. Each refusal is one InputError naming the fix; without
these checks the same mistakes failed after the work, as I/O errors (exit 5), or replaced a
run's files.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterable

from research.errors import InputError

# Config fields that say where a host keeps its own files, which may differ between the
# processes of one run or the runs of one sweep: the compilation cache, prepared TFDS files,
# ginc's generated corpus (not which data: the run records that).
HOST_LOCAL = ("train.compile_cache_dir", "task.data_dir", "task.cache_dir")


def check_workdir(path: str | os.PathLike, flag: str = "--workdir") -> str:
  """A directory this process may create or write into, checked before anything is written;
  returns the path to use (`~` expanded: a shell leaves `--workdir=~/x` as it is)."""
  text = str(path)
  if not text:  # an unset shell variable: --workdir=$RUN would write into the current dir
    raise InputError(f"{flag}= is empty; pass a directory, e.g. {flag}=runs/NAME")
  check_local(text, flag)
  p = Path(text).expanduser()
  long = [part for part in p.parts if len(os.fsencode(part)) > 255]
  if long:
    raise InputError(f"{flag}={text}: the name {long[0][:40]}... is {len(os.fsencode(long[0]))} "
                     "bytes, over the 255 a file name may have; pass a shorter path")
  if p.is_symlink() and not p.exists():
    raise InputError(f"{flag}={text} is a symbolic link to {os.readlink(p)}, which does not "
                     "exist; create its target or pass another path")
  if p.exists() and not p.is_dir():
    raise InputError(f"{flag}={text} is a file, not a directory; pass a directory path")
  _check_creatable(p, flag, text, "directory")
  return str(p)


def check_local(path: str | os.PathLike, flag: str = "") -> None:
  """Refuses a gs:// (or any URL) path, naming the mount that replaces it. Every file of a
  run (its lock, config, metrics, probes, figures) is written with local file I/O, where
  Path("gs://B/run") is the local folder gs:/B/run: each host of a pod wrote its own copy on
  its own disk, and the run looked saved."""
  text = str(path)
  if "://" in text:
    scheme, _, rest = text.partition("://")
    given = f"{flag}=" if flag else ""  # "": a positional argument
    raise InputError(
        f"{given}{text}: a {scheme}:// URL is not supported (files are read and written with "
        f"local file I/O, where this is the local path {Path(text)}); mount the bucket (e.g. "
        f"with gcsfuse) and pass the mount's path, e.g. {given}/mnt/{rest.strip('/') or 'BUCKET'}")


def _check_creatable(start: Path, flag: str, text: str, what: str) -> None:
  """A `what` ("directory" or "file") can be made at `start`: its nearest existing
  ancestor is a directory this process can write into."""
  existing = start
  while not existing.exists():
    existing = existing.parent
  if not existing.is_dir():
    raise InputError(f"{flag}={text}: {existing} is a file, so the {what} cannot be created; "
                     "pass another path")
  if not _writable(existing):
    raise InputError(f"{flag}={text}: {existing} is not writable; pass a "
                     f"{'directory' if what == 'directory' else 'path'} you can write to")


def _writable(directory: Path) -> bool:
  """Whether an entry can be made in `directory`: tried (a directory made and removed at
  once), since os.access says yes to root on /proc, /sys and other pseudo-filesystems."""
  if not os.access(directory, os.W_OK | os.X_OK):
    return False
  try:
    probe = tempfile.mkdtemp(prefix=".write-check-", dir=directory)
  except OSError:
    return False
  with contextlib.suppress(OSError):
    os.rmdir(probe)
  return True


def check_output(text: str, flag: str, suffixes: Iterable[str] = (),
                 example: str = "out.json", rewrites: bool = False) -> Path:
  """A file path this command may write, checked before the work (a directory, a path below
  a file or an unwritable directory would otherwise fail after it, as an I/O error), and
  never a run's own record (_refuse_a_runs_own_file; `rewrites`: the command's own file)."""
  check_local(text, flag)
  path = Path(text).expanduser()
  if path.is_dir():
    raise InputError(f"{flag}={text} is a directory; name a file in it, e.g. "
                     f"{flag}={path / example}")
  if path.exists() and not path.is_file():
    # A device, pipe or socket (--out=/dev/null, /dev/stdout): every writer writes a file
    # beside the path and renames it over it (workdir.atomic_path), so the rename replaced
    # the node itself; run as root, --out=/dev/null made /dev/null a regular file for every
    # process on the host.
    raise InputError(f"{flag}={text} is not a regular file (a device, pipe or socket), and "
                     "the output is written as a new file renamed into its place; name a file, "
                     f"e.g. {flag}={example}")
  _check_creatable(path.parent, flag, text, "file")
  _refuse_a_runs_own_file(path, flag, text, example, rewrites)
  if suffixes and path.suffix.lower().lstrip(".") not in suffixes:
    raise InputError(f"{flag}={text}: {path.suffix or 'no extension'} is not a figure format; "
                     f"end the name with .png, .pdf or .svg")
  return path


def _refuse_a_runs_own_file(path: Path, flag: str, text: str, example: str,
                            rewrites: bool) -> None:
  """A file a run or sweep keeps its record in (`results --csv RUN/config.json` replaced a
  run's config with a CSV table, which then broke results and the sweep's rerun), or any
  file in its checkpoints/ or a sweep's ensemble/: refused, whether or not it exists yet (a
  summary.json written into an unfinished run would make it look finished). In a run's
  probes/, figures/ and tensorboard/: a file there already (`results --csv
  RUN/probes/icl_regression.json` replaced the probe's result, and results then could not
  read the run), and any probes/*.json (results reads each as a probe's scalars). A command
  that `rewrites` a file of its own there, checking its content itself (probe_checkpoints'
  rows), may name it. A run is what research/workdir.py says one is (a user's folder with
  its own config.json is none); the path is resolved, as the write will follow a symlink."""
  from research import workdir, workdir_layout
  own = {workdir.CONFIG, workdir.SUMMARY, workdir.METRICS, workdir.PERF, workdir.VOCABULARY,
         workdir.CHANGES, workdir.LOCK, workdir.RESULTS, workdir.SWEEP_RECORD, "results.csv"}
  def holds_a_run(d: Path) -> bool:
    return workdir.is_run_dir(d) or (d / workdir.RESULTS).exists()
  real = path.resolve()
  parent = real.parent
  if real.name in own and holds_a_run(parent):
    raise InputError(f"{flag}={text} would overwrite {real.name}, part of the record of the "
                     f"run or sweep in {parent}; name another file, e.g. "
                     f"{flag}={path.parent / example}")
  _refuse_an_experiments_own_file(real, flag, text, example, rewrites)
  for d in parent, *parent.parents:
    if d.name not in workdir_layout.RUN_FOLDERS + (workdir.ENSEMBLES,) or not holds_a_run(d.parent):
      continue
    kept = d.name.startswith(workdir.CHECKPOINTS) or d.name == workdir.ENSEMBLES
    if (kept or real.exists() and not (rewrites and real.suffix != ".json")
        or d.name == "probes" and real.suffix == ".json"):
      raise InputError(f"{flag}={text} is inside the {d.name}/ of the run or sweep in "
                       f"{d.parent}, which wrote it; name another file, e.g. "
                       f"{flag}={d.parent / example}")


def _refuse_an_experiments_own_file(real: Path, flag: str, text: str, example: str,
                                    rewrites: bool) -> None:
  """What an experiment or reproduce wrote: `results --csv EXP/scaling_laws.json` replaced the
  fit with a CSV table (exit 0), `--csv EXP/experiment.json` the folder's ownership mark. An
  experiment's folder is marked (workdir.EXPERIMENT): its mark, and any JSON / JSONL file
  already in it or below it (but one that a command `rewrites` as its own: a run's probe
  rows); reproduce's NAME/summary.json and summary.md beside NAME/run/, its index.md."""
  from research import workdir
  def experiments(d: Path) -> bool:  # an experiment's folder, or reproduce's NAME/run/ of seeds
    return (d / workdir.EXPERIMENT).is_file() or any(d.glob(f"seed_*/{workdir.EXPERIMENT}"))
  owner = next((d for d in (real.parent, *real.parent.parents)
                if (d / workdir.EXPERIMENT).is_file()), None)
  # Its data (result JSON, rows): a figure or table of a user's earlier command there may be
  # replaced by the same command again, and a figure is redrawn by rerunning the experiment.
  data = real.suffix.lower() in (".json", ".jsonl")
  if real.name == workdir.EXPERIMENT or owner is not None and real.exists() and data and not rewrites:
    where = owner or real.parent
    raise InputError(f"{flag}={text} would overwrite a file of the experiment in {where}; name "
                     f"another file, e.g. {flag}={where.parent / example}")
  reproduce = (real.name in ("summary.json", "summary.md") and experiments(real.parent / "run")
               or real.name == "index.md" and any(experiments(d / "run")
                                                  for d in real.parent.glob("*/")))
  if reproduce:
    raise InputError(f"{flag}={text} would overwrite {real.name}, written by "
                     f"experiments.reproduce in {real.parent}; name another file, e.g. "
                     f"{flag}={real.parent.parent / example}")

