"""The README gallery: `python -m experiments.reproduce gallery` (or `all --gallery`).

Rewrites the README section between GALLERY_START and GALLERY_END from WORKDIR/NAME/summary.json
(re-scored from each run's result files; nothing is trained here): an overview table, and per
paper its command, the wall time reproduce measured (experiments/wall_times.json), status
counts, claim table with each row's short note beside its status, and its figures shrunk to
small PNGs in docs/gallery/. A NAME with no summary for the preset in WORKDIR keeps the row and
section the README already shows for that preset (so one paper can be re-run and its section
replaced without re-running the rest); the header lists the NAMEs kept that way, and a kept
section scored by an older version's claim checks (no per-seed status column) is marked STALE
and its overview counts shown as "-". It reads what
reproduce wrote (experiments/summaries.py) and never imports reproduce: reproduce imports this
module.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from experiments import claims, summaries
from experiments.summaries import cell
from research.errors import InputError

GALLERY_START = "<!-- gallery:start (written by python -m experiments.reproduce gallery) -->"
GALLERY_END = "<!-- gallery:end -->"
GALLERY_WIDTH = 880  # px; README figures stay small
NOTE_CHARS = 160  # a note beside its status stays one short line
CLAIM_HEADER = "| claim | paper | ours | status | note |"
# A kept section without today's claim table was scored by older checks (one seed, no
# negative control, looser criteria): its verdicts are shown as history, never as counts.
STALE = ("**Stale verdicts:** this section was scored by the claim checks of an older version "
         "(one seed, no negative control, looser criteria), so its statuses are not current and "
         "the overview counts none of them; run the command above to score it with today's.")


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


def check_markers(readme: Path, text: str | None = None) -> None:
  text = readme.read_text() if text is None else text
  if text.count(GALLERY_START) != 1 or text.count(GALLERY_END) != 1 or \
      text.index(GALLERY_START) > text.index(GALLERY_END):
    raise ValueError(f"{readme} needs exactly one gallery section: the line\n{GALLERY_START}\n"
                     f"then the line\n{GALLERY_END}\nwhere the gallery goes")


def _previous(text: str, preset: str) -> dict[str, tuple[str, str]]:
  """NAME -> (overview row, section) of the README's current gallery, for the NAMEs it shows
  as run for `preset` (their row links the section and its command names the preset)."""
  start = text.index(GALLERY_START)
  body = text[start:text.index(GALLERY_END, start)]
  rows, columns = {}, []
  for line in body.splitlines():
    if line.startswith("| NAME | command | wall |"):
      columns = [c.strip() for c in line.strip("|").split("|")]
    elif line.startswith("| [") and f"--preset={preset}`" in line:
      cells = dict(zip(columns, (c.strip() for c in line.strip("|").split("|"))))
      # Re-laid under today's status columns: a status the old table lacked shows "-".
      rows[line[3:line.index("]")]] = "| " + " | ".join(
          cells.get(k, "-") for k in ("NAME", "command", "wall", *claims.STATUSES)) + " |"
  chunks = body.split("\n#### ")[1:]
  sections = {c.split("\n", 1)[0].strip(): "#### " + c.rstrip() + "\n" for c in chunks}
  return {n: (rows[n], sections[n]) for n in rows if n in sections}


def _fresh(workdir: Path, name: str, preset: str) -> bool:
  path = workdir / name / "summary.json"
  return path.is_file() and json.loads(path.read_text()).get("preset") == preset


def _refuse_a_gallery_of_nothing(text: str, preset: str, workdir: Path, names, previous,
                                 runnable) -> None:
  """Sections the README shows for another preset that this gallery would replace with "not
  run" rows are refused before writing: all of them when WORKDIR holds no result of PRESET (a
  typo, the wrong preset, an empty directory), else those of NAMEs that have PRESET but no
  result of it here (`gallery --preset=tiny` after one tiny run wiped nine measured cpu
  sections). A NAME without PRESET (`runnable`) cannot be run for it: a gallery of one preset
  keeps no section of another."""
  if not workdir.is_dir():
    raise InputError(f"--workdir={workdir}: no such directory; pass the WORKDIR that "
                     f"`python -m experiments.reproduce all --preset={preset}` wrote")
  fresh = {n for n in names if _fresh(workdir, n, preset)}
  start = text.index(GALLERY_START)
  body = text[start:text.index(GALLERY_END, start)]
  shown = {c.split("\n", 1)[0].strip() for c in body.split("\n#### ")[1:]}
  dropped = sorted(n for n in names if n in shown and n not in previous and n not in fresh)
  if dropped and not fresh:
    raise InputError(
        f"--workdir={workdir} holds no result of --preset={preset} (no NAME/summary.json of "
        f"that preset), and the README gallery's sections of {', '.join(dropped)} are of "
        "another preset, so this gallery would replace them with 'not run' rows; pass the "
        f"preset they show, or run `python -m experiments.reproduce NAME --preset={preset} "
        f"--workdir={workdir}` first")
  missing = [n for n in dropped if n in runnable]
  if missing:
    raise InputError(
        f"--workdir={workdir} holds no --preset={preset} result of {', '.join(missing)}, whose "
        "README gallery sections are of another preset: this gallery would replace them with "
        f"'not run' rows; run `python -m experiments.reproduce all --preset={preset} "
        f"--workdir={workdir}` first (it reuses finished runs), or pass the preset they show")


def check_preset(preset: str) -> None:
  """The tiny preset checks the machinery in seconds: its verdicts are no result to publish.
  `reproduce gallery --preset=tiny` replaced the README's measured cpu gallery (its heading
  and prose unchanged) and 17 of its figures, exit 0."""
  if preset == "tiny":
    raise InputError("--preset=tiny cannot write the README gallery: the tiny preset checks the "
                     "machinery (one seed, a few steps), its verdicts are no result to show; "
                     "read them in WORKDIR/index.md and WORKDIR/NAME/summary.md, and write the "
                     "gallery from --preset=cpu (or paper) results")


def write_gallery(preset: str, workdir: Path, names, readme: Path = summaries.ROOT / "README.md",
                  assets: Path = summaries.ROOT / "docs" / "gallery",
                  wall_times: dict | None = None, runnable=None) -> Path:
  """Rewrites the README gallery from WORKDIR/NAME/summary.json for each of `names` (nothing
  is trained here); wall times from `wall_times` (default experiments/wall_times.json);
  `runnable`: the NAMEs that have `preset` (default all of `names`)."""
  check_preset(preset)
  workdir = Path(workdir)
  text = readme.read_text()
  check_markers(readme, text)
  times = summaries.read_wall_times() if wall_times is None else wall_times
  previous, kept, stale = _previous(text, preset), [], []
  _refuse_a_gallery_of_nothing(text, preset, workdir, names, previous,
                              names if runnable is None else runnable)
  statuses = claims.STATUSES
  overview = ["| NAME | command | wall | " + " | ".join(statuses) + " |",
              "|---|---|---|" + "---|" * len(statuses)]
  sections, total, machines = [], 0.0, set()
  for name in names:
    path = workdir / name / "summary.json"
    fresh = _fresh(workdir, name, preset)
    prev = json.loads(path.read_text()) if fresh else None
    if not fresh and name not in previous:
      overview.append(f"| {name} | - | not run for the {preset} preset |" + " - |" * len(statuses))
      continue
    measured = times.get(name, {}).get(preset)
    if measured:
      machines.add(measured["machine"])
      total += measured["seconds"]
    if not fresh:  # the README's own section for this preset, kept as it is
      row, section = previous[name]
      if CLAIM_HEADER not in section:
        row = "| " + " | ".join([c.strip() for c in row.strip("|").split("|")][:3]
                                + ["-"] * len(statuses)) + " |"
        if STALE not in section:
          head, rest = section.split("\n", 1)
          section = f"{head}\n\n{STALE}\n{rest}"
        stale.append(name)
      overview.append(row)
      sections.append(section)
      kept.append(name)
      continue
    # Re-scored from the run's result files (the claim checks may be newer than the run);
    # the error stays the one the run recorded. The wall time is the one reproduce recorded
    # (--record_wall_time) when it trained every seed from scratch (a rerun that reused runs
    # measures nothing).
    s = summaries.summarize(name, preset, workdir, paper=prev["paper"], wall_s=prev.get("wall_s"),
                            call_wall_s=prev.get("call_wall_s"), error=prev.get("error"),
                            machine=prev.get("machine") or summaries.this_machine())
    wall = summaries.minutes(measured["seconds"]) if measured else "not measured yet"
    c = s["counts"]
    cmd = f"python -m experiments.reproduce {name} --preset={preset}"
    n = measured["seeds"] if measured else 0
    seeds = f" ({n} seed{'s' if n != 1 else ''})" if measured else ""
    overview.append(f"| [{name}](#{name}) | `{cmd}` | {wall}{seeds} | "
                    + " | ".join(str(c.get(k, 0)) for k in statuses) + " |")
    lines = [f"#### {name}", "", f"{s['paper']}. `{cmd}`: {wall}{seeds}; "
             + summaries.counts_text(c)
             + (f"; **error:** {s['error']}" if s.get("error") else "") + ".", ""]
    if s["claims"]:
      lines += [CLAIM_HEADER, "|---|---|---|---|---|"]
      lines += ["| " + " | ".join(cell(v) for v in (
          r["claim"], r["paper"], r["ours"], claims.shown_status(r),
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
          f"Written by `python -m experiments.reproduce gallery --preset={preset}` from each "
          f"paper's `reproduce NAME --preset={preset}` results; runs "
          f"on {'; '.join(sorted(machines)) or '-'}. Total wall {summaries.minutes(total)}: each "
          "paper's reproduce run of every seed from scratch as experiments/wall_times.json "
          "records it, including compilation and probes."
          + (f" Kept from the previous gallery (not in the WORKDIR this one was written from): "
             f"{', '.join(kept)}." if kept else "")
          + (f" Stale (scored by an older version's claim checks, not counted): "
             f"{', '.join(stale)}." if stale else ""), "", *overview, "", *sections, "", GALLERY_END]
  start = text.index(GALLERY_START)
  end = text.index(GALLERY_END, start) + len(GALLERY_END)
  tmp = readme.with_suffix(".md.tmp")
  tmp.write_text(text[:start] + "\n".join(body) + text[end:])
  os.replace(tmp, readme)  # atomic: an interrupted write leaves the old README
  return readme
