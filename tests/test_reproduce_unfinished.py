"""experiments/reproduce.py and summaries.py with an unfinished seed (its run interrupted before it
wrote its result file): the finished seeds are scored and the unfinished one named, and a
scoring that reads nothing keeps the verdicts already saved."""
import json

import pytest

from experiments import claims, reproduce, schaeffer2023, summaries
from experiments.claims import controls, score
from research.errors import RunsFailedError


pytestmark = pytest.mark.usefixtures("wall_times")  # conftest: never the tracked file


def _interrupted(seed_dir):
  """What a seed killed mid-run leaves: its folder and some runs, no result file."""
  (seed_dir / "runs" / "000_size0").mkdir(parents=True)
  (seed_dir / "results.jsonl").write_text("")


@pytest.mark.parametrize("name", reproduce.NAMES)
def test_every_paper_scores_its_finished_seeds_and_names_the_unfinished(tmp_path, name):
  run = tmp_path / name / "run"
  build = next(iter(controls.CONTROLS[name].values()))  # any result files the scorer reads
  for n in (0, 2, 3):
    build(run / f"seed_{n}")
  _interrupted(run / "seed_1")
  s = score(name, run, "cpu")
  assert s["seeds"] == 3 and [d.name for d in s["unfinished"]] == ["seed_1"]
  shown = [r for r in s["claims"] if r["seeds"]]
  assert shown and all(r["seeds"].endswith("/4") for r in shown)  # n: the unfinished one too
  # The values are labelled by their seed folders: seed_2's is "seed 2", not the second one's.
  multi = [r for r in shown if isinstance(r["ours"], str) and r["ours"].startswith("seed 0: ")]
  assert all("seed 2: " in r["ours"] and "seed 1: " not in r["ours"] for r in multi)
  (run / "seed_0" / claims.RESULT_FILES[name]).unlink()  # RESULT_FILES names the file that scores
  assert score(name, run, "cpu")["seeds"] == 2


def test_no_claim_passes_while_a_seed_is_unfinished(tmp_path, monkeypatch):
  """A seed that failed (or was interrupted) writes no result file: dropped from the scoring,
  three passing seeds made PASS 3/3 (exit 0) of a run whose fourth seed had failed."""
  run = tmp_path / "run"
  for n in (0, 1, 2):  # each seed its own curve (identical files are copies, not replicates)
    controls.schaeffer_files(run / f"seed_{n}", lambda m, i, n=n: i / 5 + n / 1000)
  _interrupted(run / "seed_3")
  passing = lambda d, preset: {"claims": [{"claim": "c", "status": "PASS", "ours": 1.0,
                                           "note": ""}], "results": [], "figures": [], "notes": []}
  monkeypatch.setitem(claims.CLAIMS, "schaeffer2023", passing)
  (row,) = score("schaeffer2023", run, "cpu")["claims"]
  assert (row["status"], row["seeds"]) == ("UNREPLICATED", "3/4")
  (run / "seed_3" / "results.jsonl").unlink()
  (run / "seed_3" / "runs" / "000_size0").rmdir()
  (run / "seed_3" / "runs").rmdir()
  (run / "seed_3").rmdir()  # control: without it, the three seeds PASS
  (row,) = score("schaeffer2023", run, "cpu")["claims"]
  assert (row["status"], row["seeds"]) == ("PASS", "3/3")


def _schaeffer(preset, workdir, seed=0):
  controls.schaeffer_files(workdir, lambda m, i: i / 5)


def test_an_interrupted_seed_leaves_the_verdicts_and_a_rerun_of_another_seed_scores(
    tmp_path, monkeypatch, capsys):
  """The reported sequence: seeds 0,1,2 scored; seeds 3,4,5 with Ctrl-C in seed 4; then
  --seeds=0 failed (exit 6, FileNotFoundError on seed_4) and wrote a summary of 0 claims."""
  monkeypatch.setattr(schaeffer2023, "run", _schaeffer)
  w = tmp_path / "w"
  argv = lambda seeds: ["schaeffer2023", "--preset=tiny", f"--seeds={seeds}", f"--workdir={w}"]
  assert reproduce.main(argv("0,1,2")) == 0
  summary = w / "schaeffer2023" / "summary.json"
  first = json.loads(summary.read_text())
  assert first["seeds"] == 3 and first["claims"]

  def interrupted(preset, workdir, seed=0):
    if seed == 4:
      _interrupted(workdir)
      raise KeyboardInterrupt
    _schaeffer(preset, workdir, seed)
  monkeypatch.setattr(schaeffer2023, "run", interrupted)
  with pytest.raises(KeyboardInterrupt):
    reproduce.main(argv("3,4,5"))
  assert json.loads(summary.read_text()) == first  # nothing scored mid-way
  capsys.readouterr()
  monkeypatch.setattr(schaeffer2023, "run", _schaeffer)
  with pytest.raises(RunsFailedError, match=r"schaeffer2023: seed_4 is unfinished \(no "
                     r"emergence_scale\.json: interrupted, or failed\): its claims are "
                     r"UNREPLICATED until `--seeds=4` finishes it"):
    reproduce.main(argv("0"))  # exit 6: verdicts of five seeds, one of which measured nothing
  seed_4 = w / "schaeffer2023" / "run" / "seed_4"
  assert "Traceback" not in capsys.readouterr().err
  s = json.loads(summary.read_text())
  assert s["error"] is None and s["seeds"] == 4 and s["unfinished"] == [str(seed_4)]
  assert len(s["claims"]) == len(first["claims"]) and "seed_4 is unfinished" in (
      w / "schaeffer2023" / "summary.md").read_text()
  assert all(r["seeds"] is None or r["seeds"].endswith("/5") for r in s["claims"])
  # Rerunning the unfinished seed finishes it: all five are scored, nothing is named.
  assert reproduce.main(argv("4")) == 0
  s = json.loads(summary.read_text())
  assert s["seeds"] == 5 and s["unfinished"] == [] and "unfinished" not in capsys.readouterr().err


def test_a_scoring_that_reads_nothing_keeps_the_saved_verdicts(tmp_path, monkeypatch):
  monkeypatch.setattr(schaeffer2023, "run", _schaeffer)
  assert reproduce.main(["schaeffer2023", "--preset=tiny", f"--workdir={tmp_path}"]) == 0
  out = tmp_path / "schaeffer2023"
  saved = {f: (out / f).read_text() for f in ("summary.json", "summary.md")}
  (out / "run" / "seed_0" / "emergence_scale.json").unlink()  # e.g. removed by hand
  monkeypatch.setattr(schaeffer2023, "run", lambda *a, **k: None)  # and the rerun writes none
  with pytest.raises(RunsFailedError, match=r"could not read the results in .*emergence_scale"
                     r"\.json is missing; .*summary\.json was left as it was") as failed:
    reproduce.main(["schaeffer2023", "--preset=tiny", f"--workdir={tmp_path}"])
  assert "FileNotFoundError" not in str(failed.value) and "scored from" not in str(failed.value)
  assert {f: (out / f).read_text() for f in saved} == saved
  # With no verdicts saved yet, the failure itself is recorded (as before).
  s = summaries.summarize("schaeffer2023", "tiny", tmp_path / "new")
  assert s["claims"] == [] and s["error"]
  assert json.loads((tmp_path / "new" / "schaeffer2023" / "summary.json").read_text())["error"]


def test_only_seed_folders_named_as_reproduce_names_them_are_seeds(tmp_path):
  """One seed and two backups of it (`seed_0.bak`, `seed_0 copy`) scored PASS 3/3."""
  import shutil
  run = tmp_path / "schaeffer2023" / "run"
  em = [0.0, 0.0, 0.0, 0.02, 0.6, 1.0]
  controls.schaeffer_files(run / "seed_0",
                           lambda m, i: em[i] if m == "exact_match" else 0.1 + 0.8 * i / 5)
  for copy in ("seed_0.bak", "seed_0 copy", "seed_00", "seed_-1"):
    shutil.copytree(run / "seed_0", run / copy)
  s = score("schaeffer2023", run, "cpu")
  assert s["seeds"] == 1 and {r["status"] for r in s["claims"]} <= {"UNREPLICATED", "FAIL"}
  for n in (1, 2):  # control: two more seeds named as reproduce names them do count
    shutil.copytree(run / "seed_0", run / f"seed_{n}")
  assert score("schaeffer2023", run, "cpu")["seeds"] == 3
  # ...and count as seeds, but a copy replicates nothing: no claim PASSes on them.
  s = score("schaeffer2023", run, "cpu")
  assert "PASS" not in {r["status"] for r in s["claims"]}
  assert [n for n in s["notes"] if "a copy, not a replicate" in n] == [
      f"seed_{n}'s emergence_scale.json equals seed_0's but for its seed: a copy, not a "
      "replicate (no claim PASSes on it; rerun the seed)" for n in (1, 2)]


def test_a_seed_copied_or_naming_another_seed_is_not_a_replicate(tmp_path):
  """seed_0's passing Olsson files copied to seed_1 and seed_2 scored PASS 3/3 (6 claims): one
  run. A copy (the same file but for its seed) and a file that records another seed than its
  folder's now leave every claim UNREPLICATED, with a note naming the folder. Control: the
  same files, each seed's own (one number differs), PASS 3/3."""
  import shutil
  from claims_fixtures import olsson_run, seeds
  run = tmp_path / "olsson2022" / "run"
  seeds(run, 3, olsson_run)
  passing = score("olsson2022", run, "cpu")
  assert {r["status"] for r in passing["claims"]} == {"PASS"} and passing["seeds"] == 3
  zero = run / "seed_0" / "olsson2022.json"  # a path into the seed's folder, as nanda2023's
  zero.write_text(json.dumps(json.loads(zero.read_text()) | {"workdir": str(zero.parent / "1")}))
  for n in (1, 2):
    shutil.rmtree(run / f"seed_{n}")
    shutil.copytree(run / "seed_0", run / f"seed_{n}")
  edit = lambda n, seed: (run / f"seed_{n}" / "olsson2022.json").write_text(json.dumps(
      json.loads((run / f"seed_{n}" / "olsson2022.json").read_text()) | {"seed": seed}))
  edit(1, 0)  # seed_0's run, as written: it names seed 0
  edit(2, 2)  # a copy whose seed was edited to its folder's
  copied = score("olsson2022", run, "cpu")
  assert {r["status"] for r in copied["claims"]} == {"UNREPLICATED"}
  assert [n.split("'s")[0] for n in copied["notes"] if "not this seed's run" in n] == ["seed_1"]
  assert [n.split("'s")[0] for n in copied["notes"] if "a copy" in n] == ["seed_2"]


def test_a_seed_folder_past_9_is_its_own_seed(tmp_path):
  """seed_12's file recording seed 12 is its own run; one recording seed 2 is not (a mutation audit:
  reading the folder's seed off its last digit took seed_12 for seed 2)."""
  from claims_fixtures import write
  write(tmp_path / "seed_12" / "r.json", {"seed": 12, "x": 1})
  assert claims.not_replicates([tmp_path / "seed_12"], "r.json") == []
  write(tmp_path / "seed_12" / "r.json", {"seed": 2, "x": 1})
  assert claims.not_replicates([tmp_path / "seed_12"], "r.json") == [
      "seed_12's r.json records seed 2: not this seed's run (no claim PASSes on it; rerun the "
      "seed)"]


def test_a_rerun_that_ignored_its_seed_is_a_copy_whatever_its_seed_folders_paths(tmp_path):
  """seed_1's file is seed_0's but for its seed and the paths into its own seed folder (an
  experiment that ignored --seed, rerun): a copy, not a replicate (a mutation audit: comparing the
  paths as written took it for a replicate). Control: one number differs: a replicate."""
  from claims_fixtures import write
  for n in (0, 1):
    write(tmp_path / f"seed_{n}" / "r.json",
          {"seed": n, "workdir": str(tmp_path / f"seed_{n}" / "wd_1"), "x": 1})
  dirs = [tmp_path / "seed_0", tmp_path / "seed_1"]
  assert claims.not_replicates(dirs, "r.json") == [
      "seed_1's r.json equals seed_0's but for its seed: a copy, not a replicate (no claim "
      "PASSes on it; rerun the seed)"]
  write(tmp_path / "seed_1" / "r.json",
        {"seed": 1, "workdir": str(tmp_path / "seed_1" / "wd_1"), "x": 2})
  assert claims.not_replicates(dirs, "r.json") == []
