"""Reproduce a paper's headline claims and score them: one command per paper, or all of them.

  python -m experiments.reproduce --list
  python -m experiments.reproduce NAME [--preset=cpu|paper|tiny] [--workdir=runs/reproduce]
                                       [--seeds=0,1,2]
  python -m experiments.reproduce all --preset=cpu       # every NAME, then WORKDIR/index.md
  python -m experiments.reproduce all --preset=cpu --gallery   # + the README gallery
  python -m experiments.reproduce NAME|all ... --record_wall_time  # + experiments/wall_times.json
  python -m experiments.reproduce gallery --preset=cpu   # the README gallery from WORKDIR only
  python -m experiments.reproduce --controls             # every claim on its negative control

NAME is a module experiments/NAME.py (PAPERS below); reproduce calls its
`run(preset, run/seed_<n>, seed=n)` for each seed of SEEDS[preset] (tiny: 0; cpu and paper: 0, 1,
2; `--seeds` overrides; a module's own SEEDS may set fewer for a preset, with its reason, and
`--list` shows it) into WORKDIR/NAME/run/seed_<n>/ (nothing is re-implemented here). A
module marked SEEDLESS (a deterministic fit) runs once, into WORKDIR/NAME/run/. Then it reads
the result files and checks each headline claim of the paper (experiments/claims/), every seed
scored and aggregated: "PASS 3/3" needs every seed and at least 3 of them; a claim holding on
fewer seeds is UNREPLICATED (a seed folder without its result file, interrupted, is not
scored and is named: summaries.summarize); a self-check (target computed by this project)
never counts as a paper PASS. WORKDIR/NAME/summary.json holds one row per claim {claim, paper, ours, tolerance
(with its reason), status, control, note, kind, seeds}, printed as a table and written to
WORKDIR/NAME/summary.md. Tolerances come from docs/REFERENCES.md; where a preset shrinks the
setup, the claim is restated for it and the note says so. Rerunning reuses finished runs (each
experiment skips or resumes them).

With `--record_wall_time` (the project's own gallery runs), when every seed trained from an
empty directory and was scored, the command records the wall time in
experiments/wall_times.json (with the seed count and the machine); `--list` and the gallery
read it from there. Without it a run leaves the checkout as it was (its summary.json has the
times).

`--controls` builds every claim's negative control (zero predictor, untrained model, flat or
linear curve, Chinchilla's disputed fit: experiments/claims/controls.py) in WORKDIR/controls,
scores it, prints claim, control and status, and exits 6 if any control PASSes. With
`--real_untrained` the untrained-model controls of reddy2023, chan2022, olsson2022, xie2021,
nanda2023 and ladder are the experiments themselves (tiny preset, a learning rate that moves no
parameter) instead of hand-built files at chance (a few minutes more).

`all` runs every NAME in its own process (one failure must not stop the rest), then writes
WORKDIR/index.md: one table per paper, with links to its figures and summary. A NAME without
the requested preset is skipped.

`--gallery` (or the `gallery` command, which trains nothing: it re-scores each NAME from the
result files in WORKDIR) rewrites the README section between the gallery markers
(experiments/gallery.py); a NAME with no results in WORKDIR keeps the section the README shows
for the preset, and the gallery's header lists those. A WORKDIR that is missing, or holds no
result of the preset while the README shows sections of another, is refused (exit 2, the README
untouched); so is `gallery --preset=P` when a NAME that has preset P has no result of it in
WORKDIR while the README shows a section of another preset for it (that section would become a
"not run" row; run `all --preset=P` first, it reuses finished runs), whereas a NAME without P
gets that row. After `all`, where a NAME failed, that failure is reported instead (exit 6,
naming it). The README gallery is only ever written this way.
"""
from __future__ import annotations

import importlib
import json
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from experiments import child_process, common, gallery, summaries
from research import cli, output_paths, workdir_layout
from research.errors import InputError, RunsFailedError, closest

ROOT = summaries.ROOT
PRESETS = ("tiny", "cpu", "paper")
SEEDS = {"tiny": (0,), "cpu": (0, 1, 2), "paper": (0, 1, 2)}

# Each NAME is the module experiments/NAME.py (PAPER, PRESETS, run). Order matters: chan2022
# reads reddy2023's class-count sweep (same workdir, same seed), so reddy2023 runs first in
# `all`. After the papers, this project's own experiments scored on the papers' criteria
# (ladder).
NAMES = ("garg2022", "raventos2023", "reddy2023", "chan2022", "olsson2022", "xie2021",
         "schaeffer2023", "nanda2023", "besiroglu2024", "ladder")


class _Papers(Mapping):
  """NAME -> its module, imported when first asked for: --help and a mistyped NAME import
  none (each module brings JAX, Flax, SciPy or matplotlib: `reproduce --help` took 5 s), a
  NAME's run only its own."""

  def __getitem__(self, name: str):
    if name not in NAMES:
      raise KeyError(name)
    return importlib.import_module(f"experiments.{name}")

  def __iter__(self):
    return iter(NAMES)

  def __len__(self) -> int:
    return len(NAMES)


PAPERS = _Papers()


def presets_of(name: str) -> tuple[str, ...]:
  """The reproduce presets NAME has (its module may have more, e.g. chan2022's chan_cpu)."""
  return tuple(p for p in PRESETS if p in PAPERS[name].PRESETS)


def seedless(name: str) -> bool:
  return getattr(PAPERS[name], "SEEDLESS", False)


def list_text() -> str:
  times, lines = summaries.read_wall_times(), []
  for name, module in PAPERS.items():
    lines.append(f"{name:14s} {module.PAPER}" + (" (seedless: runs once)" if seedless(name)
                                                 else ""))
    for p in PRESETS:
      what = module.PRESETS.get(p)
      own = "" if seedless(name) or default_seeds(name, p) == SEEDS[p] else \
          f"; seeds {','.join(map(str, default_seeds(name, p)))} by default"
      text = (f"{what}{own}; wall time: {summaries.wall_time_text(name, p, times)}" if what
              else "no such preset")
      lines.append(f"{'':14s}   {p:5s}: {text}")
  return "\n".join(lines)


def seed_runs(name: str, preset: str, run_dir: Path, seeds=None) -> list[tuple[int, Path]]:
  """(seed, directory) of every run reproduce makes of NAME."""
  if seedless(name):
    return [(0, run_dir)]
  return [(s, run_dir / f"seed_{s}") for s in (default_seeds(name, preset) if seeds is None
                                                else seeds)]


def default_seeds(name: str, preset: str) -> tuple[int, ...]:
  """SEEDS[preset], unless NAME's module sets its own for the preset (its SEEDS says why)."""
  return getattr(PAPERS[name], "SEEDS", {}).get(preset, SEEDS[preset])


def _fresh(path: Path) -> bool:
  return not path.exists() or not any(path.iterdir())


def reproduce(name: str, preset: str, workdir: Path, seeds=None, record: bool = False) -> dict:
  """Runs NAME for each seed, scores every seed's result files and writes the summary. With
  `record` (the command does, a notebook or test calling this does not), the wall time goes
  to experiments/wall_times.json when every seed trained from an empty directory."""
  if preset not in presets_of(name):
    raise ValueError(f"{name} has no {preset!r} preset; it has: {', '.join(presets_of(name))}")
  _check_same_preset(name, preset, Path(workdir))
  run_dir = Path(workdir) / name / "run"
  runs = seed_runs(name, preset, run_dir, seeds)
  for _, directory in runs:  # before any seed trains
    _check_not_anothers(name, directory)
  fresh = all(_fresh(d) for _, d in runs)
  t0, errors = time.perf_counter(), []
  for seed, directory in runs:
    directory.mkdir(parents=True, exist_ok=True)
    print(f"\n--- {name}, {preset} preset, seed {seed}: {directory}", flush=True)
    try:
      with common.owned(directory, name, preset, seed):  # `experiments.NAME --workdir=` reuses it
        PAPERS[name].run(preset, directory, seed=seed)
    except (Exception, SystemExit) as e:  # noqa: BLE001 -- scored as far as results exist
      if cli.is_preemption(e) or isinstance(e, InputError):
        raise  # a checkpoint saved (a rerun continues); or the input to fix, summary untouched
      errors.append(f"seed {seed}: {type(e).__name__}: {e}")
  # summary.json's wall_s: the training seconds its runs recorded (the same on a rerun that
  # reuses them, which took seconds and replaced it); this command's own in call_wall_s.
  times = common.wall_times(common.run_summaries(run_dir), t0)
  wall, machine = times["call_wall_s"], summaries.this_machine()
  s = summaries.summarize(name, preset, workdir, paper=PAPERS[name].PAPER, **times,
                          error="; ".join(errors) or None, machine=machine)
  # A reused, failed, unscorable or partly unfinished run measures nothing.
  if record and fresh and not s["error"] and not s["unfinished"]:
    summaries.record_wall_time(name, preset, wall, len(runs), machine)
  if seeds is not None and not seedless(name):  # --seeds=0 on a WORKDIR that also holds seed_1
    found = sorted(int(d.name[5:]) for d in run_dir.glob("seed_*") if d.name[5:].isdigit())
    if set(found) != set(seeds):
      print(f"scored seeds {', '.join(map(str, found))}: every seed_<n> folder in {run_dir} "
            f"counts, not only --seeds={','.join(map(str, seeds))} (move a folder out to leave "
            "it unscored)", flush=True)
  summaries.print_summary(s)
  return s


def _check_not_anothers(name: str, directory: Path) -> None:
  """A seed folder marked as another experiment's (its EXPERIMENT file) is refused, as the
  script refuses it: `reproduce garg2022` trained beside olsson2022's runs there, under its
  mark, exit 0."""
  from research import workdir as workdir_lib
  made_by = workdir_lib.experiment_of(directory)
  if made_by not in (None, name):
    raise InputError(f"{directory} holds {made_by}'s experiment ({workdir_lib.EXPERIMENT}), "
                     f"which {name}'s files would break; `reproduce {name}` trains each seed in "
                     f"WORKDIR/{name}/run/: move that folder out of it, or give another --workdir")


def _check_same_preset(name: str, preset: str, workdir: Path) -> None:
  """WORKDIR/NAME of another preset: its runs refuse the new config one seed at a time, and
  the summary scored from the old results was written under the new preset's name (exit 6)."""
  path = workdir / name / "summary.json"
  try:
    had = json.loads(path.read_text()).get("preset")
  except (OSError, ValueError, AttributeError):
    return  # none yet, or not readable: the runs' own checks decide
  if had not in (None, preset):
    raise InputError(f"--workdir={workdir} holds {name}'s results of the {had} preset "
                     f"({path}); run --preset={preset} in another --workdir, or rerun "
                     f"--preset={had}")


def reproduce_all(preset: str, workdir: Path, seeds=None, record: bool = False
                  ) -> dict[str, dict]:
  """{NAME: {'status', 'summary'}}, each NAME in its own process; writes WORKDIR/index.md."""
  workdir = Path(workdir).resolve()
  for name in NAMES:  # before hours of training, not one NAME at a time
    if preset in presets_of(name):
      _check_same_preset(name, preset, workdir)
  seed_flag = [] if seeds is None else [f"--seeds={','.join(map(str, seeds))}"]
  results = {}
  # A SIGTERM between two NAMEs (Python's default: exit 143, no line) stops before the next.
  between: list[int] = []
  previous = signal.signal(signal.SIGTERM, lambda signum, _: between.append(signum))
  try:
    for name in NAMES:
      child_process.stop_if_signalled(between[0] if between else None, f"before {name}")
      if preset not in presets_of(name):
        results[name] = {"status": f"skipped (no {preset} preset)"}
        continue
      results[name] = _reproduce_in_a_child(name, preset, workdir, seed_flag, record)
  finally:
    signal.signal(signal.SIGTERM, previous)
  index = summaries.write_index(workdir, preset, results)
  print(f"\nindex: {index}")
  for name, r in results.items():
    c = (r.get("summary") or {}).get("counts")
    print(f"  {name:14s} {r['status']}" + (f": {summaries.counts_text(c)}" if c else ""))
  return results


def _reproduce_in_a_child(name: str, preset: str, workdir: Path, seed_flag: list[str],
                          record: bool) -> dict:
  """`reproduce NAME` in its own process: {'status', 'summary'}."""
  t0 = time.perf_counter()
  returncode, stopped_by = child_process.run([
      sys.executable, "-m", "experiments.reproduce", name, f"--preset={preset}",
      f"--workdir={workdir}", *([] if seedless(name) else seed_flag),
      *(["--record_wall_time"] if record else [])])  # refused there
  child_process.stop_if_signalled(stopped_by, f"during {name} (its exit code {returncode})", returncode)
  path = workdir / name / "summary.json"
  summary = json.loads(path.read_text()) if path.is_file() else None
  status = "done" if returncode == 0 else f"exit {returncode}"
  return {"status": f"{status}, {time.perf_counter() - t0:.0f} s", "summary": summary}


def check_controls(workdir: Path, real_untrained: bool = False) -> int:
  """--controls: every claim scored on its negative control; raises RunsFailedError (exit 6)
  if any control PASSes (or a claim's control does not exercise it), else 0."""
  from experiments.claims import controls
  text, ok = controls.report(controls.run_controls(workdir, real_untrained=real_untrained))
  print(text)
  if not ok:
    raise RunsFailedError("a negative control PASSes (see the table above): that claim's "
                          "criterion cannot tell its result from a null one")
  return 0


def _define_flags(fv) -> None:
  from absl import flags
  flags.DEFINE_enum("preset", "cpu", PRESETS, "Preset of every experiment.", flag_values=fv)
  flags.DEFINE_string("workdir", "runs/reproduce", "Output directory.", flag_values=fv)
  flags.DEFINE_list("seeds", None, "Seeds to run, e.g. 0,1,2 (default: 0 on tiny, 0,1,2 on cpu "
                    "and paper; a seedless NAME runs once).", flag_values=fv)
  flags.DEFINE_bool("list", False, "Print each NAME with its presets and measured times.",
                    flag_values=fv)
  flags.DEFINE_bool("controls", False, "Score every claim on its negative control (built in "
                    "WORKDIR/controls); exit 6 if any control PASSes.", flag_values=fv)
  flags.DEFINE_bool("real_untrained", False, "With --controls: the untrained-model controls "
                    "are untrained runs of the experiments themselves (tiny preset).",
                    flag_values=fv)
  flags.DEFINE_bool("gallery", False, "With all: then rewrite the README gallery from the "
                    "results.", flag_values=fv)
  flags.DEFINE_bool("record_wall_time", False, "With NAME or all: store a from-scratch run's "
                    "wall time in experiments/wall_times.json (a tracked file, which --list "
                    "and the gallery read).", flag_values=fv)


def _refuse_unread_flags(args) -> None:
  """A flag the chosen mode does not read is refused, as the benchmark refuses its own:
  `garg2022 --gallery` left the README as it was, `--controls --seeds=5` and a seedless
  NAME's --seeds ran as if they were not given, all with exit 0."""
  given = [f for f in ("seeds", "gallery", "preset", "real_untrained", "controls", "workdir",
                      "record_wall_time") if args[f].present]
  name = args.positional[0] if len(args.positional) == 1 else None
  if not (args.list or args.controls) and name not in (*NAMES, "all", "gallery"):
    return  # the NAME itself is wrong or missing: main says that first
  unread = (given if args.list else
            [f for f in given if f in ("preset", "seeds", "gallery", "record_wall_time")]
            if args.controls else
            [f for f in given if f == "real_untrained" or f == "gallery" and name != "all" or
             f == "seeds" and (name == "gallery" or name in PAPERS and seedless(name))
             or f == "record_wall_time" and name == "gallery"])
  if unread[:1] == ["real_untrained"] and not args.list:
    raise InputError("--real_untrained changes only --controls; add --controls")
  if unread:
    mode = ("--list" if args.list else "--controls" if args.controls else
            f"`reproduce {name}`" if name else "this command")
    why = {"seeds": "the seeds to train (NAME or all; gallery trains nothing, and "
                    "besiroglu2024 fits published data, once)",
           "gallery": "all (`reproduce gallery` writes the gallery alone)",
           "real_untrained": "--controls", "preset": "NAME, all and gallery",
           "workdir": "NAME, all, gallery and --controls",
           "record_wall_time": "NAME and all, which train",
           "controls": "a run of its own (pass --list or --controls)"}[unread[0]]
    raise InputError(f"--{unread[0]} has no effect with {mode}: it applies to {why}; drop it")


def _workdir(text: str) -> Path:
  """--workdir for NAME, all and --controls: writable, and no run's or sweep's directory nor
  inside one (its NAME/ folders became rows of the sweep in research.results)."""
  workdir = output_paths.check_workdir(text)
  workdir_layout.check_kind(workdir, "reproduce")
  return Path(workdir)


def main(argv=None) -> int:
  """NAME | all | gallery, or --list; raises InputError for bad input, RunsFailedError when
  an experiment failed (research/cli.py turns them into exit 2 and 6)."""
  args = cli.parse_flags(_define_flags, argv, __doc__, positional=True)
  if (args.list or args.controls) and args.positional:
    raise InputError(f"unexpected arguments {args.positional}: --list and --controls take no "
                     "NAME; drop them, or run NAME without --list / --controls")
  seeds = common.parse_seeds(args.seeds)  # bad --seeds is an input error whatever the mode
  _refuse_unread_flags(args)
  if args.list:
    print(list_text())
    return 0
  if args.controls:
    return check_controls(_workdir(args.workdir) / "controls", args.real_untrained)
  choices = NAMES + ("all", "gallery")
  if not args.positional:
    raise InputError(f"no NAME given; give one of: {', '.join(choices)} (or --list)")
  if len(args.positional) != 1 or args.positional[0] not in choices:
    near = closest(args.positional[0], choices) if len(args.positional) == 1 else None
    raise InputError(f"NAME is {' '.join(args.positional)!r}"
                     + (f" (did you mean {near!r}?)" if near else "")
                     + f"; give one of: {', '.join(choices)} (or --list)")
  name = args.positional[0]
  # gallery writes nothing into WORKDIR: it only reads it
  workdir = Path(output_paths.check_workdir(args.workdir)) if name == "gallery" else \
      _workdir(args.workdir)
  if name not in ("all", "gallery") and args.preset not in presets_of(name):
    raise InputError(f"{name} has no {args.preset!r} preset; it has: "
                     f"{', '.join(presets_of(name))}")
  runnable = [n for n in NAMES if args.preset in presets_of(n)]  # the gallery may re-run
  if name == "gallery":
    print(f"gallery: {gallery.write_gallery(args.preset, workdir, NAMES, runnable=runnable)}")
    return 0
  if name == "all":
    if args.gallery:  # fail now, not after hours of training
      gallery.check_preset(args.preset)
      gallery.check_markers(ROOT / "README.md")
    results = reproduce_all(args.preset, workdir, seeds, record=args.record_wall_time)
    failed = [n for n, r in results.items() if not r["status"].startswith(("done", "skipped"))]
    kept = ""
    if args.gallery:
      try:
        print(f"gallery: {gallery.write_gallery(args.preset, workdir, NAMES, runnable=runnable)}")
      except InputError:
        if not failed:
          raise
        # A failed NAME left no summary: the refusal's "run all first" is what was just done;
        # the failure is the news (exit 6), the README stays as it was.
        kept = ("; the README gallery was left as it was (it would have shown them as "
                "'not run')")
    if failed:
      raise RunsFailedError(f"{len(failed)} of {len(results)} papers failed: "
                            + "; ".join(f"{n} ({results[n]['status']})" for n in failed)
                            + f"{kept}; see {workdir / 'index.md'}, rerun to resume them")
    return 0
  cli.quiet_libraries()
  s = reproduce(name, args.preset, workdir, seeds, record=args.record_wall_time)
  if s.get("error"):
    raise RunsFailedError(f"{name}: the experiment failed ({s['error']})" + (
        "" if s.get("kept") else  # the error names the summary it kept
        f"; the claims were scored from what it wrote ({workdir / name / 'summary.json'})"))
  if s.get("unfinished"):  # a seed that failed in an earlier invocation, or was interrupted
    raise RunsFailedError(f"{name}: {'; '.join(s['warnings'])}")
  return 0


if __name__ == "__main__":
  cli.run_script(main)
