"""experiments/gallery.py: the README gallery section `reproduce gallery` writes (its rows,
notes, figures, kept and stale sections of other WORKDIRs and presets), rewritten without
touching the rest of the README."""
import pytest

from experiments import gallery, reproduce, summaries
from claims_fixtures import garg_run
from research.errors import InputError


def test_gallery_rewrites_only_its_readme_section(tmp_path):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  work = tmp_path / "work"
  garg_run(work / "garg2022" / "run", model=[0.3] + [0.01] * 15)
  fig = work / "garg2022" / "run" / "figures" / "icl_regression.png"
  fig.parent.mkdir()
  plt.figure(figsize=(20, 5), dpi=100).savefig(fig)  # 2000 px wide: must be shrunk
  summaries.summarize("garg2022", "cpu", work, wall_s=3.0)
  readme = tmp_path / "README.md"
  readme.write_text(f"# top\n{gallery.GALLERY_START}\nold\n{gallery.GALLERY_END}\n# bottom\n")
  times = {"garg2022": {"cpu": {"seconds": 125.0, "seeds": 3, "machine": "2 idle CPU cores"}}}
  write = lambda preset, **kw: gallery.write_gallery(preset, work, reproduce.NAMES, readme=readme,
                                                     wall_times=times, **kw)
  write("cpu", assets=tmp_path / "docs" / "gallery")
  text = readme.read_text()
  assert text.startswith("# top\n") and text.endswith("# bottom\n") and "old" not in text
  # The wall time reproduce measured (experiments/wall_times.json), not this summary's.
  assert "`python -m experiments.reproduce garg2022 --preset=cpu` | 2 min 05 s (3 seeds) |" in text
  assert "| raventos2023 | - | not run for the cpu preset |" in text
  assert "runs on 2 idle CPU cores." in text  # where the measured run happened
  # Each row's short note beside its status: here the measured shortfall of one seed.
  assert "| FAIL 0/1 | largest deviation at k=1: model 0.010 vs 0.800 |" in text
  assert "| UNREPLICATED 1/1 | model at k=d: 0.010, at the last k: 0.010 |" in text
  assert "![garg2022 icl_regression](docs/gallery/garg2022_icl_regression.png)" in text
  from PIL import Image
  assert Image.open(tmp_path / "docs" / "gallery" / "garg2022_icl_regression.png").width == \
      gallery.GALLERY_WIDTH
  # A NAME not in this WORKDIR keeps the section the README shows for the preset, and the
  # header says so; the one NAME that was run is rewritten from its results.
  first = readme.read_text()
  garg_section = first[first.index("#### garg2022"):first.index(gallery.GALLERY_END)].rstrip()
  other = tmp_path / "other"
  other.mkdir()
  gallery.write_gallery("cpu", other, reproduce.NAMES, readme=readme, wall_times=times,
                        assets=tmp_path / "g2")
  text = readme.read_text()
  assert garg_section in text and "Kept from the previous gallery" in text
  assert "(not in the WORKDIR this one was written from): garg2022." in text
  assert text.count("#### garg2022") == 1 and "| raventos2023 | - | not run" in text
  # A WORKDIR with no result of the preset asked for (the wrong preset, a typo, an empty or
  # missing directory) would replace the sections shown for another preset: refused, the
  # README untouched.
  before = readme.read_text()
  for workdir in (work, other, tmp_path / "missing"):
    with pytest.raises(InputError, match="--workdir="):
      gallery.write_gallery("paper", workdir, reproduce.NAMES, readme=readme, wall_times=times,
                            assets=tmp_path / "g")
    assert readme.read_text() == before
  # With one result of the other preset, a gallery of it is what was asked for: it keeps no
  # section of this preset.
  paper = tmp_path / "paper"
  garg_run(paper / "garg2022" / "run", model=[0.3] + [0.01] * 15)
  summaries.summarize("garg2022", "paper", paper, wall_s=3.0)
  write_paper = gallery.write_gallery("paper", paper, reproduce.NAMES, readme=readme,
                                      wall_times=times, assets=tmp_path / "g")
  text = readme.read_text()
  assert write_paper == readme and "`python -m experiments.reproduce garg2022 --preset=paper`" in text
  assert "--preset=cpu" not in text and "| raventos2023 | - | not run for the paper preset |" in text
  for bad in ("no markers", f"{gallery.GALLERY_END}\n{gallery.GALLERY_START}\n",
              f"{gallery.GALLERY_START}\n{gallery.GALLERY_START}\n{gallery.GALLERY_END}"):
    readme.write_text(bad)
    with pytest.raises(ValueError, match="exactly one gallery section"):
      write("cpu", assets=tmp_path / "g")
    assert readme.read_text() == bad


def test_a_gallery_of_another_preset_keeps_sections_it_cannot_replace(tmp_path):
  """`reproduce gallery --preset=tiny` after one tiny run replaced the nine measured cpu
  sections with 'not run' rows (audit 39): a NAME shown for another preset that has this
  preset but no result of it here is refused, the README untouched; one without this preset
  cannot be run for it, so the gallery of this preset drops it, as before."""
  work, paper = tmp_path / "work", tmp_path / "paper"
  for d, preset in ((work, "cpu"), (paper, "paper")):
    garg_run(d / "garg2022" / "run", model=[0.3] + [0.01] * 15)
    summaries.summarize("garg2022", preset, d, wall_s=3.0)
  readme = tmp_path / "README.md"
  readme.write_text(f"# top\n{gallery.GALLERY_START}\nold\n{gallery.GALLERY_END}\n")
  write = lambda preset, workdir, **kw: gallery.write_gallery(
      preset, workdir, reproduce.NAMES, readme=readme, wall_times={}, assets=tmp_path / "g", **kw)
  write("cpu", work)
  text = readme.read_text()  # a second cpu section, raventos2023's, as a measured gallery has
  row = next(l for l in text.splitlines() if l.startswith("| [garg2022]"))
  section = text[text.index("#### garg2022"):text.index(gallery.GALLERY_END)]
  text = text.replace(row, row + "\n" + row.replace("garg2022", "raventos2023"))
  text = text.replace(gallery.GALLERY_END, section.replace("garg2022", "raventos2023")
                      + gallery.GALLERY_END)
  readme.write_text(text)
  with pytest.raises(InputError, match=r"holds no --preset=paper result of raventos2023, whose "
                     r"README gallery sections are of another preset: .* run `python -m "
                     r"experiments.reproduce all --preset=paper"):
    write("paper", paper)
  assert readme.read_text() == text
  write("paper", paper, runnable=["garg2022"])  # raventos2023 without a paper preset: dropped
  assert "| raventos2023 | - | not run for the paper preset |" in readme.read_text()
  # The refusal is where a user reads about the gallery (it was in neither).
  said = "when a NAME that has preset P has no result of it in WORKDIR while the README shows " \
      "a section of another preset for it"
  for doc in (reproduce.__doc__, (summaries.ROOT / "README.md").read_text()):
    assert said in " ".join(doc.split())


def test_gallery_marks_a_kept_section_of_older_claim_checks_stale(tmp_path):
  """A kept section without today's per-seed claim table was scored by older checks: it
  stays as history, marked once, and the overview counts none of its verdicts."""
  cmd = "`python -m experiments.reproduce xie2021 --preset=cpu`"
  old_row = f"| [xie2021](#xie2021) | {cmd} | 27 min 34 s | 4 | 1 | 0 |"
  old_section = ("#### xie2021\n\nXie et al. 2021. " + cmd + ": 4 PASS, 1 FAIL.\n\n"
                 "| claim | paper | ours | status |\n|---|---|---|---|\n"
                 "| zero-shot can beat one-shot | sometimes | lstm k=3 | PASS |\n")
  readme = tmp_path / "README.md"
  readme.write_text(f"{gallery.GALLERY_START}\n| NAME | command | wall | PASS | FAIL | NOT_SHOWN |"
                    f"\n|---|---|---|---|---|---|\n{old_row}\n\n{old_section}\n"
                    f"{gallery.GALLERY_END}\n")
  (tmp_path / "empty").mkdir()
  for _ in range(2):  # idempotent: a second gallery marks it once
    gallery.write_gallery("cpu", tmp_path / "empty", reproduce.NAMES, readme=readme,
                          wall_times={}, assets=tmp_path / "g")
    text = readme.read_text()
    assert text.count(gallery.STALE) == 1 and "| zero-shot can beat one-shot |" in text
    assert f"| [xie2021](#xie2021) | {cmd} | 27 min 34 s |" + " - |" * len(gallery.claims.STATUSES) in text
    assert "Stale (scored by an older version's claim checks, not counted): xie2021." in text
  # Control: a kept section with today's claim table is kept as it is, not marked.
  readme.write_text(readme.read_text().replace("| status |\n|---|---|---|---|",
                                               "| status | note |\n|---|---|---|---|---|")
                    .replace(gallery.STALE, ""))
  gallery.write_gallery("cpu", tmp_path / "empty", reproduce.NAMES, readme=readme,
                        wall_times={}, assets=tmp_path / "g")
  assert gallery.STALE not in readme.read_text() and "Stale (" not in readme.read_text()


def test_all_gallery_after_a_failed_paper_exits_6_naming_it(tmp_path, monkeypatch):
  """`reproduce all --preset=cpu --gallery` where one NAME failed and left no summary.json
  ended in the gallery's refusal, exit 2 "run `reproduce all` first" (what had just run); the
  failure is reported (exit 6, naming the paper) and the README is left as it was."""
  from research.errors import RunsFailedError
  work = tmp_path / "work"
  garg_run(work / "garg2022" / "run", model=[0.3] + [0.01] * 15)
  summaries.summarize("garg2022", "cpu", work, wall_s=3.0)
  readme = tmp_path / "README.md"  # sections of both NAMEs of another preset
  readme.write_text(f"# top\n{gallery.GALLERY_START}\nold\n{gallery.GALLERY_END}\n")
  paper = tmp_path / "paper"
  garg_run(paper / "garg2022" / "run", model=[0.3] + [0.01] * 15)
  summaries.summarize("garg2022", "paper", paper, wall_s=3.0)
  gallery.write_gallery("paper", paper, ["garg2022"], readme=readme, wall_times={},
                        assets=tmp_path / "g")
  text = readme.read_text()
  row = next(l for l in text.splitlines() if l.startswith("| [garg2022]"))
  section = text[text.index("#### garg2022"):text.index(gallery.GALLERY_END)]
  text = text.replace(row, row + "\n" + row.replace("garg2022", "raventos2023")).replace(
      gallery.GALLERY_END, section.replace("garg2022", "raventos2023") + gallery.GALLERY_END)
  readme.write_text(text)
  write = gallery.write_gallery
  monkeypatch.setattr(reproduce, "NAMES", ("garg2022", "raventos2023"))
  monkeypatch.setattr(reproduce.gallery, "write_gallery", lambda *a, **k: write(
      *a, readme=readme, wall_times={}, assets=tmp_path / "g", **k))
  monkeypatch.setattr(reproduce, "reproduce_all", lambda *a, **k: {
      "garg2022": {"status": "done, 3 s"}, "raventos2023": {"status": "exit 1, 2 s"}})
  argv = ["all", "--preset=cpu", f"--workdir={work}", "--gallery"]
  with pytest.raises(RunsFailedError, match=r"1 of 2 papers failed: raventos2023 \(exit 1, 2 s\); "
                     r"the README gallery was left as it was"):
    reproduce.main(argv)
  assert readme.read_text() == text
  # Control: with no paper failed, the gallery's own refusal stays an input error (exit 2).
  monkeypatch.setattr(reproduce, "reproduce_all", lambda *a, **k: {
      "garg2022": {"status": "done, 3 s"}, "raventos2023": {"status": "done, 2 s"}})
  with pytest.raises(InputError, match="holds no --preset=cpu result of raventos2023"):
    reproduce.main(argv)


def test_a_tiny_gallery_is_refused_before_anything_runs_or_is_written(tmp_path, monkeypatch):
  """`reproduce gallery --preset=tiny` replaced the README's measured cpu gallery (under its
  unchanged 'cpu presets' heading) and 17 of its figures, exit 0. Control: cpu is written."""
  work = tmp_path / "work"
  garg_run(work / "garg2022" / "run", model=[0.3] + [0.01] * 15)
  summaries.summarize("garg2022", "tiny", work, wall_s=3.0)
  readme = tmp_path / "README.md"
  readme.write_text(f"# top\n{gallery.GALLERY_START}\nold\n{gallery.GALLERY_END}\n")
  ran = []
  monkeypatch.setattr(reproduce, "reproduce_all", lambda *a, **k: ran.append(a) or {})
  for argv in (["gallery", "--preset=tiny", f"--workdir={work}"],
               ["all", "--preset=tiny", f"--workdir={work}", "--gallery"]):
    with pytest.raises(InputError, match=r"--preset=tiny cannot write the README gallery: the "
                       r"tiny preset checks the machinery .* write the gallery from "
                       r"--preset=cpu \(or paper\) results"):
      reproduce.main(argv)
  assert not ran and "old" in readme.read_text()
  summaries.summarize("garg2022", "cpu", work, wall_s=3.0)
  gallery.write_gallery("cpu", work, ["garg2022"], readme=readme, wall_times={},
                        assets=tmp_path / "g")
  assert "#### garg2022" in readme.read_text()


# --------------------------------------------------------------- note length and total wall time
def test_a_note_of_exactly_the_limit_is_shown_whole():
  """short_note: the last sentence-part, whole up to NOTE_CHARS (160) characters; longer, cut
  to 157 and '...' (160 in all)."""
  exact, over = "x" * 160, "y" * 161
  assert gallery.short_note("setup. " + exact) == exact
  assert gallery.short_note("setup. " + over) == "y" * 157 + "..."
  assert len(gallery.short_note(over)) == gallery.NOTE_CHARS


def test_total_wall_sums_every_measured_paper(tmp_path, monkeypatch):
  """Two papers run for the preset, measured at 125 s and 60 s: 'Total wall 3 min 05 s'
  (their sum), on both machines."""
  import json
  work = tmp_path / "work"
  for name in ("garg2022", "raventos2023"):
    (work / name).mkdir(parents=True)
    (work / name / "summary.json").write_text(json.dumps({"preset": "cpu", "paper": name}))
  monkeypatch.setattr(gallery.summaries, "summarize", lambda name, *a, **k: {
      "paper": name, "counts": {}, "claims": [], "figures": [], "error": None})
  readme = tmp_path / "README.md"
  readme.write_text(f"{gallery.GALLERY_START}\n{gallery.GALLERY_END}\n")
  times = {"garg2022": {"cpu": {"seconds": 125.0, "seeds": 3, "machine": "host a"}},
           "raventos2023": {"cpu": {"seconds": 60.0, "seeds": 1, "machine": "host b"}}}
  gallery.write_gallery("cpu", work, reproduce.NAMES, readme=readme, wall_times=times,
                        assets=tmp_path / "g")
  text = readme.read_text()
  assert "runs on host a; host b. Total wall 3 min 05 s:" in text
  assert "| 1 min 00 s (1 seed) |" in text and "| 2 min 05 s (3 seeds) |" in text
