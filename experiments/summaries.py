"""Reproduce's written record: each NAME's scored summary, the index, the measured wall times.

Used by experiments/reproduce.py (which runs the experiments) and experiments/gallery.py
(which rewrites the README from what reproduce wrote); it imports neither.

  WORKDIR/NAME/summary.json, summary.md   one row per claim, scored from WORKDIR/NAME/run
  WORKDIR/index.md                        every NAME's table and figures
  experiments/wall_times.json             {NAME: {preset: {seconds, seeds, machine, date}}}:
                                          the wall time of the last reproduce run of NAME
                                          with --record_wall_time that trained every seed
                                          from an empty directory
"""
from __future__ import annotations

import datetime
import json
import os
import sys
from pathlib import Path

from experiments import claims
from research import workdir as workdir_lib

ROOT = Path(__file__).resolve().parents[1]
WALL_TIMES = ROOT / "experiments" / "wall_times.json"
COLUMNS = ("claim", "paper", "ours", "tolerance", "status", "control", "note")


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


def counts_text(c: dict) -> str:
  """'3 PASS, 1 UNREPLICATED, 2 FAIL, 0 NOT_SHOWN, 1 self-check'."""
  return ", ".join(f"{c.get(s, 0)} {s}" for s in claims.STATUSES)


def minutes(seconds: float | None) -> str:
  if seconds is None:
    return "-"
  m, s = divmod(round(seconds), 60)
  return f"{m} min {s:02d} s" if m else f"{s} s"


def this_machine() -> str:
  """Where a run happened, as the gallery prints it."""
  import platform
  import jax
  d = jax.devices()
  return (f"{len(d)} x {d[0].device_kind} ({d[0].platform}), {platform.machine()}, "
          f"{os.cpu_count()} CPU cores")


# ----------------------------------------------------------------------------- summaries
def summarize(name: str, preset: str, workdir: Path, *, paper: str = "",
              wall_s: float | None = None, call_wall_s: float | None = None,
              error: str | None = None, machine: str | None = None) -> dict:
  """Scores NAME from the result files in WORKDIR/NAME/run (every finished run/seed_<n>/, or
  run/ itself); writes summary.json and .md. An unfinished seed is not scored, caps the
  claims at UNREPLICATED (claims.score) and is named in "unfinished" (a warning line each). A scoring that fails keeps a summary.json that holds
  verdicts: it is not replaced by one without any. wall_s: the training seconds of the runs
  (experiments/common.wall_times), call_wall_s: the reproduce command's."""
  out = Path(workdir) / name
  run_dir = out / "run"
  try:
    scored = claims.score(name, run_dir, preset)
  except (FileNotFoundError, KeyError, IndexError, ValueError) as e:
    scored = {"claims": [], "results": [], "figures": [], "notes": [], "seeds": 0,
              "unfinished": []}
    what = (f"{e.filename} is missing" if isinstance(e, FileNotFoundError) and e.filename
            else f"{type(e).__name__}: {e}")
    error = error or f"could not read the results in {run_dir}: {what}"
  result = claims.RESULT_FILES[name]
  warnings = [f"{d.name} is unfinished (no {result}: interrupted, or failed): its claims are "
              f"UNREPLICATED until `--seeds={d.name[5:]}` finishes it (a failure then says why)"
              for d in scored["unfinished"]]
  summary = {"name": name, "paper": paper, "preset": preset, "run_dir": str(run_dir),
             "machine": machine or this_machine(), "seeds": scored["seeds"],
             "unfinished": [str(d) for d in scored["unfinished"]], "warnings": warnings,
             "claims": scored["claims"], "counts": claims.counts(scored["claims"]),
             "results": scored["results"], "figures": scored["figures"],
             "notes": [n for n in scored["notes"] if n], "wall_s": wall_s,
             "call_wall_s": call_wall_s, "error": error}
  if not summary["claims"] and (workdir_lib.read_json(out / "summary.json") or {}).get("claims"):
    summary["error"] = (f"{error}; {out / 'summary.json'} was left as it was: it keeps the "
                        "verdicts of the last scoring that read them")
    return summary | {"kept": True}
  out.mkdir(parents=True, exist_ok=True)
  workdir_lib.write_json(out / "summary.json", summary, indent=1)  # atomic: never torn
  workdir_lib.write_text(out / "summary.md", markdown(summary, out))
  return summary


# A preset whose verdicts are no result (README: "tiny (seconds, machinery only)"): said
# beside its counts wherever they are shown, which a trial found said nowhere.
PRESET_CAVEATS = {"tiny": "the tiny preset checks the machinery (one seed, seconds of "
                          "training): its verdicts show that every step runs, not whether the "
                          "papers' claims hold; --preset=cpu scores them"}


def markdown(s: dict, base: Path) -> str:
  """One paper's section: title, counts, table, notes, figure links relative to `base`."""
  c = s["counts"]
  lines = [f"## {s['name']}: {s['paper']}", "",
           f"preset `{s['preset']}`: {counts_text(c)}"
           + (f"; training {s['wall_s']:.0f} s" if s.get("wall_s") is not None else "")
           + (f" (this call {s['call_wall_s']:.0f} s)" if s.get("call_wall_s") is not None
              else ""), ""]
  if s["preset"] in PRESET_CAVEATS:
    lines += [f"**Machinery only:** {PRESET_CAVEATS[s['preset']]}.", ""]
  if s.get("error"):
    lines += [f"**error:** {s['error']}", ""]
  lines += [f"warning: {w}" for w in s.get("warnings", [])] + ([""] if s.get("warnings") else [])
  if s["claims"]:
    lines += [table(s["claims"]), ""]
  lines += [f"note: {n}" for n in s["notes"]]
  for f in s["figures"]:
    lines += ["", f"![{Path(f).name}]({_relative(f, base)})"]
  return "\n".join(lines) + "\n"


def _relative(path, base: Path) -> str:
  try:
    return str(Path(path).resolve().relative_to(Path(base).resolve()))
  except ValueError:
    return str(path)


def print_summary(s: dict) -> None:
  print(f"\n=== {s['name']} ({s['preset']} preset): {s['paper']} ===")
  for w in s.get("warnings", []):
    print(f"warning: {w}", file=sys.stderr, flush=True)
  if s.get("error"):
    print(f"error: {s['error']}")
  if s["claims"]:
    print(table(s["claims"]))
  for n in s["notes"]:
    print(f"note: {n}")
  print(f"{counts_text(s['counts'])}; summary: {Path(s['run_dir']).parent / 'summary.json'}")
  if s["preset"] in PRESET_CAVEATS:
    print(f"machinery only: {PRESET_CAVEATS[s['preset']]}")


def write_index(workdir: Path, preset: str, results: dict[str, dict]) -> Path:
  """WORKDIR/index.md: an overview table, then each paper's section (tables, figures)."""
  workdir = Path(workdir)
  lines = [f"# Reproductions ({preset} preset)", "",
           *([f"**Machinery only:** {PRESET_CAVEATS[preset]}.", ""] if preset in PRESET_CAVEATS
             else []),
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
    sections.append(markdown(s, workdir))
  path = workdir / "index.md"
  path.write_text("\n".join(lines) + "\n\n" + "\n".join(sections))
  return path


# ----------------------------------------------------------------------------- wall times
def read_wall_times(path: Path | None = None) -> dict:
  path = Path(path or WALL_TIMES)
  return json.loads(path.read_text()) if path.is_file() else {}


def record_wall_time(name: str, preset: str, seconds: float, seeds: int, machine: str,
                     path: Path | None = None) -> None:
  """Stores one measured wall time (read-modify-write, atomic: `all` runs NAMEs one after
  another, never two at once). The file is in the checkout: where it cannot be read or
  written (a read-only or installed copy), the run's results stand and one line says so."""
  path = Path(path or WALL_TIMES)
  try:
    times = read_wall_times(path)
    times.setdefault(name, {})[preset] = {
        "seconds": round(seconds, 1), "seeds": seeds, "machine": machine,
        "date": datetime.date.today().isoformat()}
    workdir_lib.write_text(path, json.dumps(times, indent=1, sort_keys=True) + "\n")
  except (OSError, ValueError) as e:  # ValueError: a hand-edited file that is not JSON
    print(f"warning: {name}'s wall time ({minutes(seconds)}) not recorded in {path}: {e}",
          file=sys.stderr, flush=True)


def wall_time_text(name: str, preset: str, times: dict | None = None) -> str:
  """'13 min 15 s for 1 seed on 2 idle CPU cores (2026-11-30)', or 'not measured yet'."""
  t = (read_wall_times() if times is None else times).get(name, {}).get(preset)
  if not t:
    return "not measured yet"
  seeds = f"{t['seeds']} seed" + ("s" if t["seeds"] != 1 else "")
  return (f"{minutes(t['seconds'])} for {seeds} on {t['machine']}"
          + (f" ({t['date']})" if t.get("date") else ""))
