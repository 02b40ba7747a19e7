"""What every experiment script shares: its command line, config building, run-or-reuse.

Every paper's module (experiments/NAME.py, NAME as `python -m experiments.reproduce --list`
names it) exposes the same two things:
  run(preset, workdir, seed=0, **extras) -> None   trains (or reuses finished runs) and writes
                                                   its result files into workdir
  main(argv)                                       `python -m experiments.NAME --preset=...
                                                   --workdir=... [--seed=N] [extras]`
`main` parses absl flags into a private FlagValues (research/cli.parse_flags: several scripts
run as libraries in one process, e.g. reproduce, notebooks, tests) and `cli.run_script`
wraps it in the one error contract. No experiment script imports another: what two of them
share lives here or in research/.
"""
from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Callable, Iterable

from absl import flags

# config_check and train (JAX, Flax, Orbax: ~3 s) are imported where a run is built: reproduce's
# --help, --list and a mistyped NAME answer without them.
from research import cli, output_paths, workdir_layout
from research import workdir as workdir_lib
from research.errors import InputError


# ----------------------------------------------------------------------------- command line
SEED_RANGE = 2 ** 32  # config.seed's range (a uint32 key)


class SeedParser(flags.ArgumentParser):
  """--seed as reproduce's --seeds reads it: absl's integer flag answered --seed=a with
  Python's "invalid literal for int() with base 10: 'a'", took --seed=' 3' as 3, and left
  --seed=5000000000 to the config check, whose fix named --config.seed, a flag the scripts
  lack."""
  syntactic_help = "an integer in [0, 2**32)"  # --help's line under the flag

  def parse(self, argument) -> int:
    text = str(argument)  # the default, 0, comes as an int
    # isascii: str.isdigit() also accepts '²', which int() refuses (parse_seeds).
    if not (text.isascii() and text.isdigit()) or int(text) >= SEED_RANGE:
      raise ValueError("give the seed as a non-negative integer below 2**32, e.g. --seed=1")
    return int(text)

  def flag_type(self) -> str:
    return "int"


def define_run_flags(fv: flags.FlagValues, presets: Iterable[str], default: str = "cpu",
                     seed_help: str = "config.seed of every run (each seed is one replicate).",
                     ) -> None:
  """--preset, --workdir and --seed, the flags every experiment script has (`seed_help`: what
  the seed does in a script that trains no run)."""
  presets = tuple(presets)
  flags.DEFINE_enum("preset", default, presets, "Preset: " + ", ".join(presets) + ".",
                    flag_values=fv)
  flags.DEFINE_string("workdir", None, "Output directory (required).", flag_values=fv)
  flags.DEFINE(SeedParser(), "seed", 0, seed_help, flag_values=fv,
               serializer=flags.ArgumentSerializer())


def parse_seeds(values) -> tuple[int, ...] | None:
  """A --seeds list flag's values as non-negative ints (None: the flag not given)."""
  if values is None:
    return None
  # isascii: str.isdigit() also accepts '²', which int() then refuses with a traceback.
  if not values or not all(v.strip().isascii() and v.strip().isdigit() for v in values):
    raise InputError(f"--seeds={','.join(values)}: give seeds as non-negative integers, e.g. "
                     "--seeds=0,1,2")
  seeds = [int(v) for v in values]
  if max(seeds) >= SEED_RANGE:  # each run failed, exit 6
    raise InputError(f"--seeds={','.join(values)}: {max(seeds)} is out of range; seeds are "
                     "integers in [0, 2**32), e.g. --seeds=0,1,2")
  # A repeated seed (0,00 too) is refused with every list flag's repeats (cli.parse_flags).
  return tuple(seeds)


def experiment_name(script: str) -> str:
  """NAME of the script experiments/NAME.py (its `__file__`): the one place an experiment is
  named, for reproduce's NAME and the workdir's mark alike. A string the script repeated
  could disagree with its file name after a rename, and reproduce (which names it by its
  module) and the script would then mark one workdir as two experiments."""
  return Path(script).stem


def parse_run_flags(define: Callable[[flags.FlagValues], None], argv, doc: str,
                    empty_ok: tuple[str, ...] = (), *, script: str, results: tuple[str, ...]):
  """The script's flags (positional arguments refused); refuses, before anything is written,
  a missing or unwritable --workdir, and one that is (or is inside) a research.main run or a
  research.sweep directory, or another experiment's (workdir_layout.check_kind): `script` is
  the script's `__file__` (its NAME: experiment_name), `results` its result files (they mark
  a directory it wrote before EXPERIMENT did). `empty_ok`: list flags where `--x=` means
  none. Run the work in `owned(args.workdir, args.experiment)`."""
  name = experiment_name(script)
  args = cli.parse_flags(define, argv, doc, empty_ok)
  if not args.workdir:
    raise InputError("--workdir=DIR is required")
  args.workdir = output_paths.check_workdir(args.workdir)  # `~` expanded
  workdir_layout.check_kind(args.workdir, "experiment", name, results)
  cli.quiet_libraries()
  args.__dict__["experiment"] = name  # not a flag: FlagValues' setattr would look one up
  return args


@contextlib.contextmanager
def owned(workdir, name: str, preset: str | None = None, seed: int | None = None):
  """Marks WORKDIR as experiment NAME's (workdir.EXPERIMENT) for the block, so that a rerun
  reuses its runs and sweep there while other experiments are refused it (research.main and
  research.sweep refuse the runs and sweeps it holds by their own files). An input refused in
  the block (a flag the experiment checks itself) before anything else was written takes the
  mark, and a WORKDIR it made, away again; a user's existing folder keeps its contents.

  The mark keeps `preset` and `seed` too, and another of either is refused: scaling_laws
  --preset=cpu after --preset=tiny trained the cpu grid beside the tiny one (other run names),
  and research.results then listed both grids as one experiment's rows; --seed=1 where seed 0
  trained was refused by the run's own check with a fix the scripts have no flag for
  (--config.init_from), and besiroglu2024 (no run, a fit) replaced seed 0's result. A mark
  written before it kept them takes this one's."""
  workdir = Path(workdir)
  marker = workdir / workdir_lib.EXPERIMENT
  kept = {k: v for k, v in (("preset", preset), ("seed", seed)) if v is not None}
  mark = {"experiment": name} | kept
  made = not marker.exists()
  had = {} if made else (workdir_lib.read_json(marker) or {})
  for key, value in kept.items():
    if had.get(key) not in (None, value):
      how = ("; `python -m experiments.reproduce` gives each seed a directory of its own"
             if key == "seed" else "")
      raise InputError(f"{workdir} holds {name}'s runs of --{key}={had[key]}, and one directory "
                       f"keeps one {key}'s; run --{key}={value} in another directory, or rerun "
                       f"--{key}={had[key]} there{how}")
  # An existing WORKDIR and a user's own folders in it stay; only what the block made goes.
  before = {workdir, *workdir.rglob("*")} if made and workdir.exists() else set()
  if made:
    workdir.mkdir(parents=True, exist_ok=True)
    workdir_lib.write_json(marker, mark)
  try:
    yield
    if not made and any(had.get(k) is None for k in kept):  # a mark from before it kept them
      workdir_lib.write_json(marker, mark)
    say_resumed_changes(workdir)
  except InputError:
    if made and not any(p.is_file() and p.name not in (marker.name, workdir_lib.LOCK)
                        for p in workdir.rglob("*")):
      marker.unlink(missing_ok=True)
      workdir_layout.remove_if_unstarted(workdir, keep=before)  # the one undo of a refused start
    raise


def resumed_changes(workdir) -> dict[str, list[str]]:
  """{run directory (relative to WORKDIR): ['step 1500: train.num_steps: 1500 -> 2000', ...]}
  of every run under WORKDIR that a resume changed (its config_changes.jsonl)."""
  workdir, out = Path(workdir), {}
  for path in sorted(workdir.rglob(workdir_lib.CHANGES)):
    if changes := workdir_lib.resume_changes(path.parent):
      out[path.parent.relative_to(workdir).as_posix()] = changes
  return out


def say_resumed_changes(workdir) -> None:
  """A line on stdout, after the results, for runs a resume changed: a --set train.num_steps
  raised on a rerun extended the runs (a re-warmed schedule: numbers 2-6 intervals away from a
  run trained so from the start, a second trial measured) and said so only in a log line."""
  changed = resumed_changes(workdir)
  if changed:
    shown = "; ".join(f"{run}: {', '.join(c)}" for run, c in list(changed.items())[:4])
    more = f"; and {len(changed) - 4} more" if len(changed) > 4 else ""
    print(f"\nnote: {len(changed)} run{'s' if len(changed) > 1 else ''} here changed on resume "
          f"(config_changes.jsonl), so {'they differ' if len(changed) > 1 else 'it differs'} "
          f"from runs trained so from the start: {shown}{more}", flush=True)


def pick(items: list, indices: list[str], flag: str) -> list:
  """items[i] for each index given on the command line (all when none). -1 (Python's last)
  trained the last size silently, and 0,00 one size twice: refused."""
  if not indices:
    return items
  try:
    picked = [int(i) for i in indices]
  except ValueError:
    picked = [-1]
  if not all(0 <= i < len(items) for i in picked) or len(set(picked)) < len(picked):
    raise InputError(f"{flag}={','.join(indices)}: indices must be distinct integers in "
                     f"0..{len(items) - 1}")
  return [items[i] for i in picked]


# ----------------------------------------------------------------------------- configs
# Overrides that every config built here takes last, set only by `forced_overrides`: the
# negative controls' untrained runs (experiments/claims/controls.py) go through an experiment's
# real code path with a learning rate that cannot move a parameter.
_FORCED: dict = {}


def first_devices(n: int):
  """The first N devices for --devices=N (None: all). N above the host's count trained on
  the fewer there were without a word (or named a batch-size fix that was not the fault)."""
  import jax
  if n > jax.device_count():
    raise InputError(f"--devices={n} but this host has {jax.device_count()}; pass "
                     f"--devices={jax.device_count()} or fewer (0 = all)")
  return jax.devices()[:n] if n else None


@contextlib.contextmanager
def forced_overrides(overrides: dict):
  """Within the block, every config make_config / seeded builds (so every experiment's runs)
  takes `overrides` last."""
  saved = dict(_FORCED)
  _FORCED.update(overrides)
  try:
    yield
  finally:
    _FORCED.clear()
    _FORCED.update(saved)


def forced() -> dict:
  return dict(_FORCED)


def make_config(config_module, preset: str, overrides: dict | None = None, seed: int = 0):
  """config_module.get_config(preset) with dotted overrides (research/cli.py's loader and
  setter) and `seed`, validated for this host's devices."""
  import jax

  from research import config_check
  c = cli.config_from_module(config_module, preset, f"--preset={preset}")
  c = cli.apply_overrides(c, dict(overrides or {}) | {"seed": seed} | _FORCED)
  config_check.validate(c, jax.device_count())
  return c


def typed_overrides(config, texts: Iterable[str], flag: str = "--set") -> dict:
  """{'a.b': value} from the command line's repeated `--set a.b=TEXT`, each TEXT parsed as
  the type of the field it names in `config` (a bad field or value fails here, before any
  training)."""
  overrides = cli.overrides_from_args(texts, flag)
  if "seed" in overrides:  # make_config / run set it from --seed, last
    raise InputError(f"{flag} seed={overrides['seed']}: the run's seed is the --seed flag; "
                     f"use --seed={overrides['seed']}")
  parsed = cli.apply_overrides(config, overrides, text=True, flag=f"{flag} ")
  return {key: field_at(parsed, key) for key in overrides}


def field_at(config, key: str):
  """config's field at the dotted path 'a.b.c'."""
  node = config
  for part in key.split("."):
    node = node[part]
  return node


def seeded(config, seed: int):
  """An unlocked copy of `config` with config.seed = seed (for configs built by code)."""
  c = config.copy_and_resolve_references()
  c.seed = seed
  return cli.apply_overrides(c, _FORCED) if _FORCED else c


# ----------------------------------------------------------------------------- runs
def train_or_reuse(config, run_dir: Path, name: str | None = None) -> dict:
  """research/train.train_or_reuse with a line saying which (the one reuse rule:
  workdir.finished_summary)."""
  from research import train
  if workdir_lib.finished_summary(run_dir, config) is None:
    print(f"[{name or Path(run_dir).name}] training in {run_dir}", flush=True)
  return train.train_or_reuse(config, str(run_dir))


def classification_run(out: Path, name: str, config) -> dict:
  """A bursty-classification run trained (or reused) in OUT/name: its eval rows, probes and
  summary (Reddy's and Chan's experiments both read these)."""
  from research.analysis import classification_plots as cplots
  wd = Path(out) / name
  summary = train_or_reuse(config, wd, name)
  rows = cplots.read_eval_rows(wd / "metrics.jsonl")
  probe = json.loads((wd / "probes" / "classification.json").read_text())
  return {"name": name, "workdir": str(wd), "summary": summary, "rows": rows, "probe": probe}


# ----------------------------------------------------------------------------- wall time
def training_seconds(runs: Iterable[dict]) -> float:
  """The seconds the runs' training took, from what each run recorded when it trained: its
  summary.json's `train_wall_s` (the training loop's wall time over all its sessions,
  loop.totals; a research.sweep row's `wall_s` is that figure), an ensemble member counting
  its share (`ensemble_size` members each record the whole ensemble's seconds). A rerun that
  reuses the runs gives the same figure; a run that recorded none (a failed row) counts 0."""
  total = 0.0
  for r in runs:
    seconds = r.get("train_wall_s", r.get("wall_s"))
    if seconds is not None:
      total += seconds / (r.get("ensemble_size") or 1)
  return total


def wall_times(runs: Iterable[dict], t0: float) -> dict:
  """What an experiment's result file records of its time, one way for every script:
  `wall_s`, the training seconds of its runs (training_seconds: the same when a rerun reuses
  them; it was the call's own seconds, so a rerun's reuse, 1.7 s, replaced the ladder's
  42.2 s), and `call_wall_s`, this call's seconds since `t0` (training done now, the reuse
  checks, probes and analysis)."""
  return {"wall_s": training_seconds(runs), "call_wall_s": time.perf_counter() - t0}


def wall_text(times: dict) -> str:
  """'training 42 s (this call 45 s)', the line the scripts print."""
  return f"training {times['wall_s']:.0f} s (this call {times['call_wall_s']:.0f} s)"


def run_summaries(directory) -> list[dict]:
  """The summary.json of every run under `directory` (a run's: it records train_wall_s), for
  a caller that does not know which runs an experiment trained (experiments/reproduce.py)."""
  found = []
  for path in sorted(Path(directory).rglob(workdir_lib.SUMMARY)):
    summary = workdir_lib.read_json(path)
    if isinstance(summary, dict) and "train_wall_s" in summary:
      found.append(summary)
  return found


def print_verdicts(name: str, run_dir, preset: str) -> None:
  """This seed's claim verdicts by the scorer `reproduce NAME` applies (experiments/claims):
  a script's own quicker rule (no 2-SE margin) said 'holds here' where reproduce said FAIL."""
  from experiments.claims import CLAIMS
  from experiments.claims.rows import shown_status  # '(self-check)' marked, as reproduce does
  print(f"\nclaims on this run, as `python -m experiments.reproduce {name}` scores them "
        "(it aggregates the seeds):")
  for row in CLAIMS[name](Path(run_dir), preset)["claims"]:
    print(f"  {shown_status(row):9s} {row['claim']}: {'-' if row['ours'] is None else row['ours']}")
