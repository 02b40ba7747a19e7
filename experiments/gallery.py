"""The README gallery: `python -m experiments.reproduce gallery` (or `all --gallery`).

Rewrites the README section between GALLERY_START and GALLERY_END from WORKDIR/NAME/summary.json
(re-scored from each run's result files; nothing is trained here): an overview table, and per
paper its command, wall time, status counts, claim table with each row's short note beside its
status, and its figures shrunk to small PNGs in docs/gallery/.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from experiments import reproduce
from experiments.reproduce import cell

GALLERY_START = "<!-- gallery:start (written by python -m experiments.reproduce gallery) -->"
GALLERY_END = "<!-- gallery:end -->"
GALLERY_WIDTH = 880  # px; README figures stay small
NOTE_CHARS = 160  # a note beside its status stays one short line


def _shrink_png(src: Path, dst: Path) -> None:
  from PIL import Image
  img = Image.open(src)
  if img.width > GALLERY_WIDTH:
    img = img.resize((GALLERY_WIDTH, round(img.height * GALLERY_WIDTH / img.width)),
                     Image.LANCZOS)
  dst.parent.mkdir(parents=True, exist_ok=True)
  img.convert("RGB").quantize(colors=128).save(dst, optimize=True)


def short_note(note: str, limit: int = NOTE_CHARS) -> str:
  """The note as the gallery shows it beside a status: its last sentence-part (after the
  preset's restatement, where the measured shortfall is), cut to `limit` characters."""
  tail = note.split(". ")[-1].strip() if note else ""
  return tail if len(tail) <= limit else tail[:limit - 3].rstrip() + "..."


def _minutes(seconds: float | None) -> str:
  if seconds is None:
    return "-"
  m, s = divmod(round(seconds), 60)
  return f"{m} min {s:02d} s" if m else f"{s} s"


def check_markers(readme: Path, text: str | None = None) -> None:
  text = readme.read_text() if text is None else text
  if text.count(GALLERY_START) != 1 or text.count(GALLERY_END) != 1 or \
      text.index(GALLERY_START) > text.index(GALLERY_END):
    raise ValueError(f"{readme} needs exactly one gallery section: the line\n{GALLERY_START}\n"
                     f"then the line\n{GALLERY_END}\nwhere the gallery goes")


def write_gallery(preset: str, workdir: Path, readme: Path = reproduce.ROOT / "README.md",
                  assets: Path = reproduce.ROOT / "docs" / "gallery") -> Path:
  """Rewrites the README gallery from WORKDIR/NAME/summary.json (nothing is trained here)."""
  workdir = Path(workdir)
  text = readme.read_text()
  check_markers(readme, text)
  statuses = reproduce.claims.STATUSES
  overview = ["| NAME | command | wall | " + " | ".join(statuses) + " |",
              "|---|---|---|" + "---|" * len(statuses)]
  sections, total, machines = [], 0.0, set()
  for name in reproduce.NAMES:
    path = workdir / name / "summary.json"
    prev = json.loads(path.read_text()) if path.is_file() else None
    if prev is None or prev["preset"] != preset:
      overview.append(f"| {name} | - | not run for the {preset} preset |" + " - |" * len(statuses))
      continue
    # Re-scored from the run's result files (the claim checks may be newer than the
    # run); the wall time, machine and any error stay those the run recorded.
    # None recorded: the machine writing the gallery.
    s = reproduce.summarize(name, preset, workdir, wall_s=prev.get("wall_s"),
                            error=prev.get("error"),
                            machine=prev.get("machine") or reproduce.this_machine())
    machines.add(s["machine"])
    c, total = s["counts"], total + (s.get("wall_s") or 0)
    cmd = f"python -m experiments.reproduce {name} --preset={preset}"
    overview.append(f"| [{name}](#{name}) | `{cmd}` | {_minutes(s.get('wall_s'))} | "
                    + " | ".join(str(c.get(k, 0)) for k in statuses) + " |")
    lines = [f"#### {name}", "", f"{s['paper']}. `{cmd}`: {_minutes(s.get('wall_s'))}; "
             + reproduce.counts_text(c)
             + (f"; **error:** {s['error']}" if s.get("error") else "") + ".", ""]
    if s["claims"]:
      lines += ["| claim | paper | ours | status | note |", "|---|---|---|---|---|"]
      lines += ["| " + " | ".join(cell(v) for v in (
          r["claim"], r["paper"], r["ours"], reproduce.claims.shown_status(r),
          short_note(r.get("note", "")))) + " |" for r in s["claims"]]
      lines += ["", "Each claim's tolerance (with its reason), negative control and full note: "
                f"`{name}/summary.md` in the workdir; a status counts the seeds that PASS."]
    for f in s["figures"]:
      f = Path(f)
      if f.is_file():
        dst = assets / f"{name}_{f.stem}.png"
        _shrink_png(f, dst)
        lines += ["", f"![{name} {f.stem}]({dst.relative_to(readme.parent)})"]
    sections.append("\n".join(lines) + "\n")
  body = [GALLERY_START, "",
          f"Written by `python -m experiments.reproduce all --preset={preset} --gallery`; runs "
          f"on {'; '.join(sorted(machines)) or '-'} (as each run recorded it, else the machine "
          f"writing the gallery). Total wall {_minutes(total)}: each "
          "paper's reproduce run as recorded in its summary.json, including compilation and "
          "probes.", "", *overview, "", *sections, "", GALLERY_END]
  start = text.index(GALLERY_START)
  end = text.index(GALLERY_END, start) + len(GALLERY_END)
  tmp = readme.with_suffix(".md.tmp")
  tmp.write_text(text[:start] + "\n".join(body) + text[end:])
  os.replace(tmp, readme)  # atomic: an interrupted write leaves the old README
  return readme
