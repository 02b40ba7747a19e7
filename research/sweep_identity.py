"""Which sweep a sweep directory holds (DIR/sweep.json: its config file and --sweep name):
one directory keeps one sweep's results table, so a sweep of another identity is refused
there, except that sweeps of seeds alone (seeds:N, a config's own grid of seeds) make one
table and continue each other."""
from __future__ import annotations

from pathlib import Path

from research import config_files
from research import workdir as workdir_lib
from research.errors import InputError
from research.sweep_results import Results


def check(workdir: Path, identity: dict, overrides: list[dict], grid=None) -> dict:
  """`--sweep=scale` after `--sweep=seeds` in one DIR trained both into one results table
  (and the same config twice, as 000_seed=0 and 000_num_layers=2,...), exit 0. A DIR
  written before sweep.json existed takes the identity of its next sweep if every run in
  it is one of that sweep's points (else the wrong sweep would claim it). Returns the identity
  to record."""
  recorded = workdir_lib.read_json(workdir / workdir_lib.SWEEP_RECORD)
  if recorded not in (None, identity) and but_sweep(recorded) == but_sweep(identity) and \
      (mine := seeds_only(identity, overrides, grid)) and \
      (theirs := seeds_only(recorded, None, grid)):
    # Sweeps of seeds alone make one table: seeds:5 then seeds:10, the same sweep given more
    # seeds, or a config's own seeds grid then seeds:20. The one of more points is kept
    # (seeds:2 in a seeds:3 directory keeps seeds:3: a refusal's fix named --sweep=seeds:2).
    return identity if len(mine) > len(theirs) else recorded
  if recorded is not None and recorded != identity:
    # sweep.json keeps the config file's name, not its path or preset (a sweep continues
    # from any directory): the fix names the file, not a command line that would not run.
    was = " ".join(f"{k}={v}" for k, v in recorded.items())
    raise InputError(
        f"{workdir} holds another sweep ({was}), and one directory keeps one sweep's results; "
        f"pass another --workdir, or continue that sweep with --config=PATH/"
        f"{recorded.get('config', 'FILE')}[:PRESET] --sweep={recorded.get('sweep', 'NAME')}")
  runs = workdir / workdir_lib.RUNS
  if recorded is None and runs.is_dir():
    mine = set(Results(workdir / workdir_lib.RESULTS).names(overrides))
    other = sorted(d.name for d in runs.iterdir() if d.is_dir() and d.name not in mine)
    if other:
      raise InputError(f"{workdir} holds runs that are no point of --sweep={identity['sweep']} "
                       f"({other[0]}{', ...' if len(other) > 1 else ''}: another sweep's, made "
                       "before sweep.json recorded which); pass another --workdir")
  return identity


def seeds_only(identity: dict, points, grid) -> list[dict] | None:
  """The points of a sweep that varies the seed alone (seeds:N, or a config's grid of seed
  points), None for any other. `points`: the sweep's own, where known."""
  name = str(identity.get("sweep", ""))
  if points is None:
    points = config_files.seeds_sweep(name) if config_files.SEEDS.fullmatch(name) else grid and grid(name)
  return points if points and all(set(p) == {"seed"} for p in points) else None


def but_sweep(identity: dict) -> dict:
  return {k: v for k, v in identity.items() if k != "sweep"}


def grid(spec: str, name: str) -> list[dict] | None:
  """The points of `--sweep=name` for the config file of `spec`, None where it has no such."""
  try:
    return config_files.load_sweep(spec, name, seeds=True)
  except InputError:
    return None
