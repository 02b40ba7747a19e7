"""The ladder table of `python -m research.aot --ladder`: every pod size of a ladder config
(its POD_SIZES, preset `SIZE@TOPOLOGY`) planned on each topology by research/aot.py.

Each cell's plan is kept in a plan cache (one JSON per cell, named by the hash of the
resolved config, the topology and the jax / jaxlib / libtpu versions), so a rerun compiles
only the cells that are missing (a 64-chip compile takes 10-15 min on a 2-core host) and
says which came from the cache. A cached plan's fits? is decided again against the chip
table (research/hardware.py) each time it is read: the cache holds the compiler's bytes,
the capacity they are checked against is the table's.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

from absl import logging

from research import aot_eval, aot_hlo, aot_tune, cli, hardware, output_paths, workdir
from research.errors import InputError

# Part of the plan cache's key: bump it when plan() changes what a figure means, so that
# plans written before are computed again instead of being shown beside new ones.
PLAN_FORMAT = 10  # 3-5: collectives counted as research.aot_hlo says; 6: + runs, bytes received;
                 # 7: data-parallel microbatches reduced once a step (Experiment._per_data_shard);
                 # 8: the LM loss without a scatter in its gradient (less memory); 9: a TPU
                 # plan's total is the lower of XLA's peak and its sum (aot_memory.tpu_peak),
                 # refusals' "Used X of Y hbm" read, loop counters counted through copies;
                 # 10: bf16 runs' data-parallel gradients reduced in float32 in one
                 # microbatch too (Experiment._loss_and_grads)
# A cached plan must hold what the table and the report read.
_PLAN_FIELDS = ("num_params", "mesh", "remat", "batch_size", "grad_accum_steps", "compile_s",
                "memory_per_device", "flops", "collectives", "communication", "roofline")


def _versions() -> dict:
  """The compiler stack a plan was made with (installed distributions; None: absent)."""
  from importlib import metadata
  found = {}
  for dist in ("jax", "jaxlib", "libtpu"):
    try:
      found[dist] = metadata.version(dist)
    except metadata.PackageNotFoundError:
      found[dist] = None
  return found


def plan_key(config, topology: str) -> str:
  """What a plan depends on, hashed: the resolved config, the slice, the compiler versions."""
  text = json.dumps({"config": json.loads(workdir.config_json(config)), "topology": topology,
                     "versions": _versions(), "format": PLAN_FORMAT}, sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:32]


def cached_plan(config, topology: str, cache_dir: str, render=None):
  """(path, the plan cached for config on topology, or None). An unreadable or incomplete
  file (a write cut short, an older format, a field of the wrong shape that `render`, the
  caller's report, cannot show) counts as missing, with a warning."""
  if not cache_dir:
    return None, None
  key = plan_key(config, topology)
  path = Path(cache_dir).expanduser() / f"{key}.json"
  if not path.is_file():  # absent, or a directory in its place (ladder refuses to write there)
    return path, None
  found = workdir.read_json(path)
  if isinstance(found, dict) and found.get("plan_key") == key and all(f in found for f in _PLAN_FIELDS):
    found = _checked_again(found)
    if _renders(found, render):
      return path, found | {"from_cache": True}
  logging.warning("plan cache: %s is unreadable or incomplete; %s on %s counts as not planned",
                  path, config.get("preset", ""), topology)
  return path, None


def _checked_again(found: dict) -> dict:
  """A cached plan's memory verdict made again against today's chip table: the cache keeps
  what the compiler measured (bytes per chip), the capacity is the table's. Plans cached
  before the table held the compiler's usable HBM were checked against the decimal
  datasheet figure (v5e 16e9 B, 15.75 GiB usable: 16.1 GB read DOES NOT FIT)."""
  found = _roofline_again(found)
  chip, memory = hardware.chip_named(found.get("chip")), found.get("memory_per_device")
  if chip is None or not isinstance(memory, dict) or "total_bytes" not in memory:
    return found  # not a chip of the table (or a damaged plan: _renders decides)
  return found | {"memory_per_device": hardware.memory_fit(memory, chip)}


def _roofline_again(found: dict) -> dict:
  """The roofline made again from a cached plan's compute step and ICI bound: plans cached
  before it took the longer of the two (aot_hlo.roofline) kept a compute-only step, and the
  cache's figures are not recompiled for it (a 64-chip cell takes 10-15 min)."""
  r = found.get("roofline")
  try:
    return found | {"roofline": aot_hlo.roofline(
        r["step_s_at_peak"], r["peak_flops_per_device"], found["tokens_per_step"],
        r["num_steps"], found.get("communication"))}
  except (KeyError, TypeError):  # no roofline, or a damaged plan: _renders decides
    return found


def _renders(found: dict, render) -> bool:
  """Whether the table row and `render` can show a cached plan (it was a KeyError traceback)."""
  try:
    markdown([{"size": ""} | found])
    if render is not None:
      render(found)
  except (KeyError, TypeError, ValueError, AttributeError, IndexError):
    return False
  return True


def ladder(path: str, topologies: list[str], sizes: list[str], cache_dir: str = "",
           cached_only: bool = False, *, planner, render=None,
           tune: bool = False) -> tuple[list[dict], list[str]]:
  """(plans of every (size, topology) of a ladder config, cells left unplanned): each from
  `cache_dir` when there, else compiled and stored; a compile failure is a row too.
  cached_only: compile nothing; the cells not in the cache are the second value (their
  slices resolved by libtpu when it is installed).
  planner: research.aot's namespace (check_topology_name, topology_target, plan), passed in:
  this module sits below research.aot, and `python -m research.aot` runs as __main__, where
  importing research.aot again would define its flags twice.
  render: what the caller will print of each plan (research.aot.report), besides the table
  row: a cached plan it cannot show counts as missing.
  tune: each cell's row is the lightest layout that fits (research/aot_tune.py) instead of
  its preset's; every candidate compiled goes through the plan cache like a preset."""
  file, colon, _ = cli.split_spec(path)
  if colon and Path(file).expanduser().is_file():
    raise InputError(f"--ladder={path}: --ladder takes the file alone, every size of it; pass "
                     f"--ladder={file} (--sizes=... narrows it)")
  module = cli.load_config_module(path, "--ladder", usage="FILE.py, e.g. configs/lm_ladder.py")
  pod = list(getattr(module, "POD_SIZES", {}))
  if not pod:
    raise InputError(f"--ladder={path} defines no POD_SIZES; pass configs/lm_ladder.py")
  # A name given twice is one cell (the command refuses --sizes=14m,14m; a caller may repeat).
  topologies, sizes = list(dict.fromkeys(topologies)), list(dict.fromkeys(sizes))
  unknown = [s for s in sizes if s not in pod]
  if unknown:
    raise InputError(f"--sizes: {', '.join(unknown)} not in {path}; choose from {', '.join(pod)}")
  if cache_dir:  # --cached_only writes nothing there: a read-only (shared) cache will do
    cache_dir = (_cache_to_read(cache_dir) if cached_only
                 else output_paths.check_workdir(cache_dir, "--plan_cache"))
  for topology in topologies:  # a misspelt slice is exit 2 before any cache read or compile
    planner.check_topology_name(topology, "--topologies")
  targets = {}
  if importlib.util.find_spec("libtpu") is not None:
    # Every slice resolved first (milliseconds, nothing compiles), --cached_only too: a shape
    # the chip lacks (v5e:3x3) is exit 2 before the presets warn about its missing layout,
    # not "not yet planned".
    targets = {t: planner.topology_target(t, "--topologies") for t in dict.fromkeys(topologies)}
  cells = []
  for size in sizes or pod:
    for topology in topologies:
      config = cli.config_from_module(module, f"{size}@{topology}", f"--ladder={path}")
      # Tuning reads and writes the plans of the layouts it tries, the preset's only if it
      # tries it: read here too, it was read twice (and a damaged file warned about twice).
      cells.append((size, topology, config, *((None, None) if tune else
                                              cached_plan(config, topology, cache_dir, render))))
  missing = [c for c in cells if c[4] is None]
  if cached_only:
    return [{"size": c[0]} | c[4] for c in cells if c[4]], [f"{c[0]}@{c[1]}" for c in missing]
  # A directory where a cell's plan is to be written: its compile ran, then the write failed
  # (exit 5) and the compile was lost.
  def refuse_blocked(file, what: str) -> None:
    if file is not None and file.exists() and not file.is_file():
      raise InputError(f"--plan_cache={cache_dir}: {file}, where the plan of {what} is kept, is "
                       f"not a file; remove it (rm -r {file}) or pass another --plan_cache")

  for size, topology, _, file, _ in missing:
    refuse_blocked(file, f"{size}@{topology}")
  for topology in dict.fromkeys(c[1] for c in missing):  # no libtpu: named as the fix, now
    targets[topology] = targets.get(topology) or planner.topology_target(topology, "--topologies")

  def planned(config, topology, file, found, cell):
    if found is None:
      # A tune candidate's path is known only once the search reaches it; the plans made
      # before are kept in the cache, so a rerun after the fix compiles only what is left.
      refuse_blocked(file, f"{cell} (remat {config.model.get('remat', 'none')}, "
                     f"{config.train.grad_accum_steps} microbatches)")
      found = planner.plan(config, targets[topology])
      if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        workdir.write_json(file, found | {"plan_key": file.stem})
      found |= {"from_cache": False}
    elif not aot_eval.is_current(found) and targets.get(topology) is not None:
      # Cached before plans held this evaluation program: that program alone is compiled (its
      # train step is the cache's) and the cell's file completed.
      found = found | {"eval": planner.plan_eval(config, targets[topology])}
      if file is not None:
        workdir.write_json(file, {k: v for k, v in found.items() if k != "from_cache"})
    return found

  rows = []
  for size, topology, config, file, found in cells:
    if tune:
      logging.info("tuning %s@%s", size, topology)
      aot_tune.check(config, len(targets[topology].devices))  # a model without remat: one line
      found = aot_tune.tuned_row(config, len(targets[topology].devices), lambda c: planned(
          c, topology, *cached_plan(c, topology, cache_dir, render), f"{size}@{topology}"),
          logging.info)
    else:
      found = planned(config, topology, file, found, f"{size}@{topology}")
    rows.append({"size": size} | found)
    logging.info("planned%s: %s", " (from the plan cache)" if found["from_cache"] else "",
                 markdown(rows[-1:]).splitlines()[-1])
  return rows, []


def check_out(out: Path, text: str, cache_dir: str) -> None:
  """--out may not be the plan cache, a folder above it or a file in it: the file took the
  cache directory's place (--cached_only: every later run was refused, "is a file"), the
  cache, made first, took --out's (exit 5 after the compiles), or it replaced a cached plan."""
  cache, out = Path(cache_dir).expanduser().resolve() if cache_dir else None, out.resolve()
  if cache and (out == cache or out in cache.parents or cache in out.parents):
    raise InputError(f"--out={text} is --plan_cache={cache_dir}, a folder above it or a file in "
                     "it; write the plans to a file outside it, e.g. --out=ladder.json")


def _cache_to_read(cache_dir: str) -> str:
  """The plan cache --cached_only reads: a directory it can list, or nothing yet (every cell
  then unplanned); not a file."""
  path = Path(cache_dir).expanduser()
  if path.exists() and not path.is_dir():
    raise InputError(f"--plan_cache={cache_dir} is a file, not a directory; pass a directory path")
  if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
    raise InputError(f"--plan_cache={cache_dir} is not readable; pass a directory you can read")
  return str(path)


def _seconds(s: float) -> str:
  """Two decimals from 1 s up; below, three significant digits: 14m@v5p:8x8x8's 0.00123 s
  step at 40% MFU printed as 0.00 s (and 14m@v5p:4x4x4's 0.0098 s as 0.01 s)."""
  return f"{s:.2f}" if s >= 1 else f"{s:.3g}"


def _comms(c: dict | None) -> str:
  """'357 GB, >= 1.78 s': what a chip receives in a step's collectives and the least ICI
  time for it (research.aot_hlo.communication); '?' where not known (a refused program)."""
  if not c or c["received_bytes_per_step"] is None:
    return "?"
  text = hardware.bytes_text(c["received_bytes_per_step"])
  least = c["ici_s_per_step_at_least"]
  return text if least is None else f"{text}, >= {_seconds(least)} s"


def _eval_gb(r: dict) -> str:
  """The evaluation forward's per-chip GB with the optimiser state beside it (aot_eval); '?'
  for a plan cached before plans held it, '-' for a config with no evaluation to plan."""
  if not aot_eval.is_current(r):
    return "?"
  return "-" if not r["eval"] else f"{r['eval']['memory_per_device']['total_bytes'] / 1e9:.1f}"


def _fits(r: dict) -> str:
  """Both programs' verdict (aot_eval.fits); a plan cached before plans held the evaluation
  (--cached_only does not complete it) says so."""
  train = r["memory_per_device"]["fits"]
  if not aot_eval.is_current(r):
    return ("yes" if train else "**no**") + " (eval not planned)"
  both = aot_eval.fits(r)
  return "yes" if both else "?" if both is None else "**no** (eval)" if train else "**no**"


def markdown(rows: list[dict]) -> str:
  out = ["| size | params | topology | mesh (data/fsdp/tensor) | remat | batch x microbatches "
         "| per-chip GB (usable) | eval GB | fits? | step time at 40% MFU | tokens/s at 40% MFU "
         "| into a chip a step (ICI time) | compile |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
  for r in rows:
    m, mesh, roof = r["memory_per_device"], r["mesh"], r["roofline"]["mfu_40"]
    out.append(
        f"| {r['size']} | {hardware.millions(r['num_params'])} | {r['topology']} | "
        f"{mesh['data']}/{mesh['fsdp']}/{mesh['tensor']} | {r['remat']} | {r['batch_size']} x "
        f"{r['grad_accum_steps']} | {m['total_bytes'] / 1e9:.1f} ({m['capacity_bytes'] / 1e9:.1f})"
        f" | {_eval_gb(r)} | {_fits(r)} | {_seconds(roof['step_s'])} s"
        f"{' (ICI-bound)' if roof.get('bound') == 'communication' else ''} | "
        f"{roof['tokens_per_s']:,.0f} | {_comms(r['communication'])} | {r['compile_s']:.0f} s |")
  return "\n".join(out)


if __name__ == "__main__":
  # Run as a program it defined nothing to do and exited 0, whatever the arguments: the
  # ladder has one command, research.aot's --ladder mode.
  from research import errors
  cli.fail(errors.EXIT_INPUT, "research.aot_ladder is the library behind the ladder table, "
           "not a program; run python -m research.aot --ladder=configs/lm_ladder.py "
           "[--topologies=v5e:4x4] [--sizes=14m] [--markdown]")
