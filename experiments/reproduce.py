"""Reproduce a paper's headline claims and score them: one command per paper, or all of them.

  python -m experiments.reproduce --list
  python -m experiments.reproduce NAME [--preset=cpu|paper|tiny] [--workdir=runs/reproduce]
  python -m experiments.reproduce all --preset=cpu       # every NAME, then WORKDIR/index.md
  python -m experiments.reproduce all --preset=cpu --gallery   # + the README gallery
  python -m experiments.reproduce gallery --preset=cpu   # the README gallery from WORKDIR only
  python -m experiments.reproduce --controls             # every claim on its negative control

NAME runs the paper's experiment as a library (nothing is re-implemented here) in
WORKDIR/NAME/run/, then reads the result files it wrote and checks each headline claim of the
paper (experiments/claims/): WORKDIR/NAME/summary.json holds one row per claim
{claim, paper, ours, tolerance (with its reason), status, control, note, kind, seeds}, and the
same rows are printed as a table (and written to WORKDIR/NAME/summary.md). Result files of
several seeds (WORKDIR/NAME/run/seed_<n>/) are scored per seed and aggregated: "PASS 3/3" needs
every seed and at least 3 of them; a claim holding on fewer seeds is UNREPLICATED; a self-check
(target computed by this project) never counts as a paper PASS. Tolerances come from
docs/REFERENCES.md; where a preset shrinks the setup, the claim is restated for it and the
note says so. Rerunning reuses finished runs (each experiment skips or resumes them).

`--controls` builds every claim's negative control (zero predictor, untrained model, flat or
linear curve, Chinchilla's disputed fit: experiments/claims/controls.py) in WORKDIR/controls,
scores it, prints claim, control and status, and exits 6 if any control PASSes.

`all` runs every NAME in its own process (the experiments' absl flags must not meet in one
process, and one failure must not stop the rest), then writes WORKDIR/index.md: one table per
paper, with links to its figures and summary. A NAME without the requested preset is skipped.

`--gallery` (or the `gallery` command, which trains nothing: it re-scores each NAME from the
result files in WORKDIR, keeping the wall time its run measured) rewrites the README section
between the gallery markers (experiments/gallery.py): per paper its command, the wall time the
run took, the PASS / FAIL counts and the claim table, and its figures shrunk to small PNGs in
docs/gallery/. The README gallery is only ever written this way.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from experiments import claims
from research import cli
from research.errors import InputError, RunsFailedError

ROOT = Path(__file__).resolve().parents[1]

PRESETS = ("tiny", "cpu", "paper")
COLUMNS = ("claim", "paper", "ours", "tolerance", "status", "control", "note")


# ----------------------------------------------------------------------------- runners
# Each runs one experiment, as a library, for a reproduce preset into run_dir.

def _garg2022(preset: str, run_dir: Path) -> None:
  import jax

  from configs import icl_regression
  from research import config_check, train
  config = icl_regression.get_config(preset)
  config_check.validate(config, jax.device_count())
  train.train_or_reuse(config, str(run_dir))
  write_shift_probe(run_dir)
  # Garg's second function class: sparse linear, compared with Lasso by its own probe.
  sparse = icl_regression.get_config(preset)
  sparse.task.function = "sparse_linear"
  sparse.task.sparsity = GARG_SPARSITY.get(preset, sparse.task.sparsity)
  config_check.validate(sparse, jax.device_count())
  train.train_or_reuse(sparse, str(run_dir / "sparse_linear"))


# Non-zero coordinates of w for the sparse-linear run: Garg's s = 3 of d = 20; the cpu
# and tiny presets (d = 5) keep w sparse with s = 2.
GARG_SPARSITY = {"paper": 3, "cpu": 2, "tiny": 2}


def write_shift_probe(run_dir: Path) -> Path:
  """Garg's test-time distribution shifts on the finished run: run_dir/distribution_shift.json."""
  import jax

  from research import keys, predict
  exp, params, step = predict.load_run(run_dir)
  key = jax.random.fold_in(exp.root_key, keys.SHIFT_PROBE)  # not the probe's prompts
  res = exp.task.shift_probe(exp.predict_fn(params), key, exp.config.probe)
  path = Path(run_dir) / "distribution_shift.json"
  path.write_text(json.dumps(res | {"step": int(step)}, indent=1))
  d = res["n_dims"]
  tail = lambda c: sum(c[d:]) / max(len(c) - d, 1)  # mean error over k >= d
  for shift, curves in res["shifts"].items():
    print(f"shift {shift:10s}: error at k >= d: model {tail(curves['model']):.3f}, least squares "
          f"{tail(curves['least_squares']):.3f}", flush=True)
  return path


def _raventos2023(preset: str, run_dir: Path) -> None:
  from experiments import raventos2023
  raventos2023.main([f"--preset={preset}", f"--out={run_dir}"])


def _chan2022(preset: str, run_dir: Path) -> None:
  from experiments import chan2022
  chan_preset = "chan" if preset == "paper" else preset  # paper: Omniglot, Chan's setup
  chan2022.main([f"--preset={chan_preset}", f"--out={run_dir}"])


def _reddy2023(preset: str, run_dir: Path) -> None:
  from experiments import reddy2023
  reddy2023.main([f"--preset={preset}", f"--out={run_dir}"]
                 + (["--sweeps=K,B"] if preset in ("cpu", "paper") else []))


def _olsson2022(preset: str, run_dir: Path) -> None:
  from experiments import olsson2022
  olsson2022.run(preset, run_dir, layers=("1", "2") if preset == "tiny" else ("1", "2", "3"))


def _xie2021(preset: str, run_dir: Path) -> None:
  from experiments import xie2021
  xie2021.run(preset, run_dir)


def _schaeffer2023(preset: str, run_dir: Path) -> None:
  from experiments import emergence_scale  # written alongside; wired by its main(argv)
  emergence_scale.main([f"--preset={preset}", f"--out={run_dir}"]
                       + (["--sizes=0,1,2"] if preset == "tiny" else []))


def _nanda2023(preset: str, run_dir: Path) -> None:
  from configs import grokking as grokking_config
  from experiments import grokking
  grokking.run(grokking_config.get_config(preset), run_dir)


def _besiroglu2024(preset: str, run_dir: Path) -> None:
  """The 240-point refit (with bootstrap SEs) and the all-245-point refit in run_dir/all_points.
  tiny: L-BFGS from the 20 best grid starts and 10 resamples; cpu / paper: Besiroglu's
  procedure (all 4500 starts, 4000 resamples)."""
  from experiments import scaling_fit
  quick = preset == "tiny"
  for out, extra, boot in ((run_dir, [], 10 if quick else 4000),
                           (run_dir / "all_points", ["--all-points"], 0)):
    prev = out / "scaling_fit.json"
    if prev.is_file():  # resumable: the same fit is already there
      p = json.loads(prev.read_text())
      if (p["bootstrap"], p["top_starts"], p["all_points"]) == (boot, 20 if quick else None,
                                                                  bool(extra)):
        print(f"reusing {prev}")
        continue
    scaling_fit.main(extra + ["--bootstrap", str(boot), "--out", str(out)]
                     + (["--top-starts", "20"] if quick else []))


@dataclasses.dataclass(frozen=True)
class Spec:
  paper: str
  run: Callable[[str, Path], None]
  times: dict  # preset -> expected wall time (text); a preset absent here is unavailable


# Order matters: chan2022 reads reddy2023's class-count sweep (same workdir), so
# reddy2023 runs first in `all`.
SPECS = {
    "garg2022": Spec(
        "Garg et al. 2022, What Can Transformers Learn In-Context? (linear regression)",
        _garg2022,
        {"tiny": "18 s (measured, 2 busy shared cores, compile included)",
         "cpu": "13 min 15 s (measured by `reproduce garg2022 --preset=cpu` on 2 idle cores, "
                "2026-11-30: the linear run (6 min 45 s as the README main job), the "
                "distribution-shift probe and the sparse-linear run)",
         "paper": "~1 day on one GPU (configs/icl_regression.py)"}),
    "raventos2023": Spec(
        "Raventós et al. 2023, task diversity and non-Bayesian ICL (M sweep, M*)",
        _raventos2023,
        {"tiny": "33 s (measured, 2 busy shared cores: 3 runs)",
         "cpu": "39 min (measured by `reproduce all --preset=cpu` on 2 cores, 2026-11-30: one 8-member ensemble of 4000 steps, D=8)",
         "paper": "unmeasured (a 20-member ensemble of 500k steps: an accelerator job)"}),
    "reddy2023": Spec(
        "Reddy 2023, abrupt emergence of in-context classification",
        _reddy2023,
        {"tiny": "51 s (measured, 2 busy shared cores: 3 runs)",
         "cpu": "6 min 10 s (measured by `reproduce reddy2023 --preset=cpu` on 2 cores, "
                "2026-11-30: 3 runs + the K and B sweeps, 8 more runs)",
         "paper": "unmeasured (1e5 SGD steps per run, + K and B sweeps: accelerator or overnight)"}),
    "chan2022": Spec(
        "Chan et al. 2022, data properties drive emergent ICL (burstiness x Zipf x model)",
        _chan2022,
        {"tiny": "1 min 42 s (measured, 2 busy shared cores: 8 runs)",
         "cpu": "17 min 36 s (measured by `reproduce chan2022 --preset=cpu` on 2 cores, "
                "2026-11-30: 8 runs of 2000 steps, K = 2048)",
         "paper": "unmeasured (Omniglot `chan` preset, 8 runs of 5e5 steps; prepared TFDS "
                  "omniglot; an accelerator job)"}),
    "olsson2022": Spec(
        "Olsson et al. 2022, in-context learning and induction heads (1-3 layers)",
        _olsson2022,
        {"tiny": "28 s (measured, 2 busy shared cores: 1 and 2 layers)",
         "cpu": "1 min 44 s (measured by `reproduce olsson2022 --preset=cpu` on 2 idle cores, "
                "2026-11-30: 1, 2 and 3 layers)",
         "paper": "unmeasured (width 768, context 512, 20k steps x 3 models)"}),
    "xie2021": Spec(
        "Xie et al. 2021, GINC: ICL as implicit Bayesian inference (3 sizes + LSTM)",
        _xie2021,
        {"tiny": "24 s (measured, 2 busy shared cores: 4 runs)",
         "cpu": "27 min 34 s (measured by `reproduce xie2021 --preset=cpu` on 2 idle cores, "
                "2026-11-30: 3 Transformers + LSTM, 4000 steps of 16 x 256 tokens each, 1024 "
                "prompts per (n, k))",
         "paper": "unmeasured (GPT-2-small-sized models, 30k steps each)"}),
    "schaeffer2023": Spec(
        "Schaeffer et al. 2023, emergence vs metric (exact match against continuous metrics)",
        _schaeffer2023,
        {"tiny": "14 s (measured, 2 busy shared cores: 3 sizes)",
         "cpu": "3 min 02 s (measured by `reproduce schaeffer2023 --preset=cpu` on 2 cores, 2026-11-30: 6 sizes)"}),
    "nanda2023": Spec(
        "Nanda et al. 2023 / Power et al. 2022, grokking and progress measures",
        _nanda2023,
        {"tiny": "19 s (measured, 2 busy shared cores: 2 runs)",
         "cpu": ("5 min 26 s (measured by `reproduce nanda2023 --preset=cpu` on 2 cores, 2026-11-30: "
                 "wd 1.0, its replay with the final key frequencies, and the wd 0 control)"),
         "paper": "unmeasured (40k full-batch steps x 3 runs: wd 1.0, its replay, the control)"}),
    "besiroglu2024": Spec(
        "Besiroglu et al. 2024, Chinchilla scaling: a replication attempt (approach-3 refit)",
        _besiroglu2024,
        {"tiny": "3 s (measured)",
         "cpu": "42 s (measured by `reproduce all --preset=cpu` on 2 cores, 2026-11-30: 2 fits from all 4500 starts + 4000 bootstrap resamples)",
         "paper": "same as cpu (the paper's procedure is pure CPU fitting)"}),
}
NAMES = tuple(SPECS)


# ----------------------------------------------------------------------------- tables
def cell(v) -> str:
  if v is None:
    return "-"
  if isinstance(v, bool):
    return str(v)
  if isinstance(v, float):
    return f"{v:.4g}"
  if isinstance(v, (list, tuple)):
    return ", ".join(cell(x) for x in v)
  return str(v).replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict]) -> str:
  """The claim rows as a Markdown table (printed as is, and used in the index)."""
  lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
  lines += ["| " + " | ".join(cell(claims.shown_status(r) if c == "status" else r.get(c))
                              for c in COLUMNS) + " |" for r in rows]
  return "\n".join(lines)


def counts(rows: list[dict]) -> dict:
  return claims.counts(rows)


def counts_text(c: dict) -> str:
  """'3 PASS, 1 UNREPLICATED, 2 FAIL, 0 NOT_SHOWN, 1 self-check'."""
  return ", ".join(f"{c.get(s, 0)} {s}" for s in claims.STATUSES)


def this_machine() -> str:
  """Where a run happened, as the gallery prints it."""
  import platform
  import jax
  d = jax.devices()
  return (f"{len(d)} x {d[0].device_kind} ({d[0].platform}), {platform.machine()}, "
          f"{os.cpu_count()} CPU cores")


def summarize(name: str, preset: str, workdir: Path, *, wall_s: float | None = None,
              error: str | None = None, machine: str | None = None) -> dict:
  """Scores NAME from the result files in WORKDIR/NAME/run; writes summary.json and .md."""
  out = Path(workdir) / name
  run_dir = out / "run"
  try:
    scored = claims.score(name, run_dir, preset)
  except (FileNotFoundError, KeyError, IndexError, ValueError) as e:
    scored = {"claims": [], "results": [], "figures": [], "notes": []}
    error = error or f"could not read the results in {run_dir}: {type(e).__name__}: {e}"
  summary = {"name": name, "paper": SPECS[name].paper, "preset": preset, "run_dir": str(run_dir),
             "machine": machine or this_machine(),
             "claims": scored["claims"], "counts": counts(scored["claims"]),
             "results": scored["results"], "figures": scored["figures"],
             "notes": [n for n in scored["notes"] if n], "wall_s": wall_s, "error": error}
  out.mkdir(parents=True, exist_ok=True)
  (out / "summary.json").write_text(json.dumps(summary, indent=1))
  (out / "summary.md").write_text(_markdown(summary, out))
  return summary


def _markdown(s: dict, base: Path) -> str:
  """One paper's section: title, counts, table, notes, figure links relative to `base`."""
  c = s["counts"]
  lines = [f"## {s['name']}: {s['paper']}", "",
           f"preset `{s['preset']}`: {counts_text(c)}"
           + (f"; wall {s['wall_s']:.0f} s" if s.get("wall_s") is not None else ""), ""]
  if s.get("error"):
    lines += [f"**error:** {s['error']}", ""]
  if s["claims"]:
    lines += [table(s["claims"]), ""]
  lines += [f"note: {n}" for n in s["notes"]]
  for f in s["figures"]:
    rel = _relative(f, base)
    lines += ["", f"![{Path(f).name}]({rel})"]
  return "\n".join(lines) + "\n"


def _relative(path, base: Path) -> str:
  try:
    return str(Path(path).resolve().relative_to(Path(base).resolve()))
  except ValueError:
    return str(path)


def print_summary(s: dict) -> None:
  print(f"\n=== {s['name']} ({s['preset']} preset): {s['paper']} ===")
  if s.get("error"):
    print(f"error: {s['error']}")
  if s["claims"]:
    print(table(s["claims"]))
  for n in s["notes"]:
    print(f"note: {n}")
  c = s["counts"]
  print(f"{counts_text(c)}; summary: {Path(s['run_dir']).parent / 'summary.json'}")


def check_controls(workdir: Path) -> int:
  """--controls: every claim scored on its negative control; raises RunsFailedError (exit 6)
  if any control PASSes (or a claim's control does not exercise it), else 0."""
  from experiments.claims import controls
  from research.errors import RunsFailedError
  text, ok = controls.report(controls.run_controls(workdir))
  print(text)
  if not ok:
    raise RunsFailedError("a negative control PASSes (see the table above): that claim's "
                          "criterion cannot tell its result from a null one")
  return 0


def write_index(workdir: Path, preset: str, results: dict[str, dict]) -> Path:
  """WORKDIR/index.md: an overview table, then each paper's section (tables, figures)."""
  workdir = Path(workdir)
  lines = [f"# Reproductions ({preset} preset)", "",
           "| NAME | " + " | ".join(claims.STATUSES) + " | summary | status |",
           "|---|" + "---|" * len(claims.STATUSES) + "---|---|"]
  sections = []
  for name, r in results.items():
    s = r.get("summary")
    if s is None:
      lines.append(f"| {name} | " + "- | " * (len(claims.STATUSES) + 1) + f"{r['status']} |")
      continue
    c = s["counts"]
    lines.append(f"| {name} | " + " | ".join(str(c.get(k, 0)) for k in claims.STATUSES)
                 + f" | [summary.json]({name}/summary.json) | {r['status']} |")
    sections.append(_markdown(s, workdir))
  path = workdir / "index.md"
  path.write_text("\n".join(lines) + "\n\n" + "\n".join(sections))
  return path


# ----------------------------------------------------------------------------- commands
def list_text() -> str:
  lines = []
  for name, spec in SPECS.items():
    lines.append(f"{name:14s} {spec.paper}")
    for p in PRESETS:
      lines.append(f"{'':14s}   {p:5s}: {spec.times.get(p, 'no such preset')}")
  return "\n".join(lines)


def reproduce(name: str, preset: str, workdir: Path) -> dict:
  if preset not in SPECS[name].times:
    raise ValueError(f"{name} has no {preset!r} preset; it has: {', '.join(SPECS[name].times)}")
  run_dir = Path(workdir) / name / "run"
  run_dir.mkdir(parents=True, exist_ok=True)
  t0 = time.perf_counter()
  error = None
  try:
    SPECS[name].run(preset, run_dir)
  except (Exception, SystemExit) as e:  # noqa: BLE001 -- scored as far as results exist
    error = f"{type(e).__name__}: {e}"
  s = summarize(name, preset, workdir, wall_s=time.perf_counter() - t0, error=error)
  print_summary(s)
  return s


def reproduce_all(preset: str, workdir: Path) -> dict[str, dict]:
  """{NAME: {'status', 'summary'}}, each NAME in its own process; writes WORKDIR/index.md."""
  workdir = Path(workdir).resolve()
  results = {}
  for name in NAMES:
    if preset not in SPECS[name].times:
      results[name] = {"status": f"skipped (no {preset} preset)"}
      continue
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "experiments.reproduce", name,
                           f"--preset={preset}", f"--workdir={workdir}"], cwd=ROOT)
    path = workdir / name / "summary.json"
    summary = json.loads(path.read_text()) if path.is_file() else None
    status = "done" if proc.returncode == 0 else f"exit {proc.returncode}"
    results[name] = {"status": f"{status}, {time.perf_counter() - t0:.0f} s", "summary": summary}
  index = write_index(workdir, preset, results)
  print(f"\nindex: {index}")
  for name, r in results.items():
    c = (r.get("summary") or {}).get("counts")
    print(f"  {name:14s} {r['status']}" + (f": {counts_text(c)}" if c else ""))
  return results


def _define_flags(fv) -> None:
  from absl import flags
  flags.DEFINE_enum("preset", "cpu", PRESETS, "Preset of every experiment.", flag_values=fv)
  flags.DEFINE_string("workdir", "runs/reproduce", "Output directory.", flag_values=fv)
  flags.DEFINE_bool("list", False, "Print each NAME with its expected times.", flag_values=fv)
  flags.DEFINE_bool("controls", False, "Score every claim on its negative control (built in "
                    "WORKDIR/controls); exit 6 if any control PASSes.", flag_values=fv)
  flags.DEFINE_bool("gallery", False, "With all: then rewrite the README gallery from the "
                    "results.", flag_values=fv)


def main(argv=None) -> int:
  """NAME | all | gallery, or --list; raises InputError for bad input, RunsFailedError when
  an experiment failed (research/cli.py turns them into exit 2 and 6)."""
  args = cli.parse_flags(_define_flags, argv, __doc__)
  if args.list:
    print(list_text())
    return 0
  if args.controls:
    return check_controls(Path(args.workdir) / "controls")
  choices = NAMES + ("all", "gallery")
  if len(args.positional) != 1 or args.positional[0] not in choices:
    given = " ".join(args.positional) or "nothing"
    raise InputError(f"NAME is {given!r}; give one of: {', '.join(choices)} (or --list)")
  name, workdir = args.positional[0], Path(args.workdir)
  cli.check_workdir(workdir)
  if name not in ("all", "gallery") and args.preset not in SPECS[name].times:
    raise InputError(f"{name} has no {args.preset!r} preset; it has: "
                     f"{', '.join(SPECS[name].times)}")
  from experiments import gallery  # here: gallery.py imports this module
  if name == "gallery":
    print(f"gallery: {gallery.write_gallery(args.preset, workdir)}")
    return 0
  if name == "all":
    if args.gallery:  # fail now, not after hours of training
      gallery.check_markers(ROOT / "README.md")
    results = reproduce_all(args.preset, workdir)
    if args.gallery:
      print(f"gallery: {gallery.write_gallery(args.preset, workdir)}")
    failed = [n for n, r in results.items() if not r["status"].startswith(("done", "skipped"))]
    if failed:
      raise RunsFailedError(f"{len(failed)} of {len(results)} papers failed: "
                            + "; ".join(f"{n} ({results[n]['status']})" for n in failed)
                            + f"; see {workdir / 'index.md'}, rerun to resume them")
    return 0
  cli.quiet_libraries()
  s = reproduce(name, args.preset, workdir)
  if s.get("error"):
    raise RunsFailedError(f"{name}: the experiment failed ({s['error']}); the claims were "
                          f"scored from what it wrote ({workdir / name / 'summary.json'})")
  return 0


if __name__ == "__main__":
  cli.run_script(main)
