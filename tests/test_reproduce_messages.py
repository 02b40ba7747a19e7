"""What `reproduce` says beside its verdicts: a tiny preset's are machinery checks (summary.md,
index.md, the console), and --seeds that leave other seed folders scored say so."""
import pytest

from experiments import reproduce, summaries
from claims_fixtures import garg_run

pytestmark = pytest.mark.usefixtures("wall_times")  # conftest: never the tracked file


@pytest.mark.parametrize("preset", ["tiny", "cpu"])
def test_a_tiny_presets_verdicts_are_said_to_be_machinery_only(tmp_path, capsys, preset):
  """A trial found it said nowhere (the README's "tiny (seconds, machinery only)" alone).
  Control: cpu says nothing of it."""
  garg_run(tmp_path / "garg2022" / "run", model=[0.3] + [0.01] * 15)
  s = summaries.summarize("garg2022", preset, tmp_path, wall_s=3.0)
  summaries.print_summary(s)
  index = summaries.write_index(tmp_path, preset, {"garg2022": {"status": "done", "summary": s}})
  said = [(tmp_path / "garg2022" / "summary.md").read_text(), index.read_text(),
          capsys.readouterr().out]
  for text in said:
    assert ("the tiny preset checks the machinery" in text) == (preset == "tiny"), text[:300]
  assert said[1].count("Machinery only") == (2 if preset == "tiny" else 0)  # header + section


@pytest.mark.parametrize("folders,said", [((0, 1), True), ((0,), False)])
def test_seeds_asked_for_and_seeds_scored_differ_in_one_line(tmp_path, monkeypatch, capsys,
                                                            folders, said):
  """`--seeds=0` on a WORKDIR that also holds seed_1 scored both without a word. Control: only
  seed_0 there."""
  monkeypatch.setattr(reproduce.PAPERS["garg2022"], "run", lambda *a, **k: None)
  for seed in folders:
    garg_run(tmp_path / "garg2022" / "run" / f"seed_{seed}", model=[0.3] + [0.01] * 15)
  reproduce.reproduce("garg2022", "cpu", tmp_path, seeds=[0])
  out = capsys.readouterr().out
  assert ("scored seeds 0, 1: every seed_<n> folder in" in out
          and "counts, not only --seeds=0" in out) == said, out[-500:]
