"""experiments/reproduce.py: --list, seeds, wall times, scoring machinery (seeds, self-checks,
index), --controls, M*, one NAME end to end. The README gallery: tests/test_gallery.py; each
paper's scorer: tests/test_claims_*.py."""
import json
import time

import pytest

from experiments import besiroglu2024, garg2022, raventos2023, reproduce, summaries
from claims_fixtures import garg_probe, garg_run, garg_sparse, seeds
from claims_fixtures import write as _write
from experiments.claims import regression, rows
from research.errors import InputError, RunsFailedError


pytestmark = pytest.mark.usefixtures("wall_times")  # conftest: never the tracked file


# ----------------------------------------------------------------------------- --list
def test_list_names_every_paper_with_presets_and_measured_times(capsys, wall_times):
  wall_times.write_text(json.dumps({"garg2022": {"cpu": {
      "seconds": 795.0, "seeds": 3, "machine": "2 idle CPU cores", "date": "2026-11-30"}}}))
  assert reproduce.main(["--list"]) == 0
  out = capsys.readouterr().out
  for name in ("garg2022", "raventos2023", "chan2022", "reddy2023", "olsson2022", "xie2021",
               "schaeffer2023", "nanda2023", "besiroglu2024"):
    assert name in out
  assert out.count("tiny :") == out.count("cpu  :") == out.count("paper:") == len(reproduce.NAMES)
  assert "wall time: not measured yet" in out      # never an invented number
  assert "no such preset" in out                   # schaeffer2023 has no paper preset
  assert "wall time: 13 min 15 s for 3 seeds on 2 idle CPU cores (2026-11-30)" in out
  assert "besiroglu2024  Besiroglu" in out and "(seedless: runs once)" in out


def test_stored_wall_times_name_known_papers_and_presets():
  """experiments/wall_times.json (written by reproduce runs) only holds real NAMEs/presets."""
  times = summaries.read_wall_times(summaries.ROOT / "experiments" / "wall_times.json")
  assert times and set(times) <= set(reproduce.NAMES)
  for name, presets in times.items():
    assert set(presets) <= set(reproduce.presets_of(name)), name
    assert all(t["seconds"] > 0 and t["seeds"] >= 1 and t["machine"] for t in presets.values())


@pytest.fixture
def fake_garg(monkeypatch):
  """garg2022's run writes result files that score, without training (the wall-time tests
  below trained besiroglu2024's tiny fit twice, ~80 s, for what a fake run shows as well; a
  real NAME end to end: test_besiroglu_tiny_end_to_end)."""
  def run(preset, workdir, seed=0):
    time.sleep(0.2)  # a wall time that rounds to more than 0
    garg_run(workdir, seed)
  monkeypatch.setattr(garg2022, "run", run)


def test_a_wall_time_that_cannot_be_stored_leaves_the_run_standing(tmp_path, monkeypatch, capsys,
                                                                  fake_garg):
  # A read-only or installed checkout: the finished run's summary stands, exit 0, one
  # warning line (was: OSError after the training, exit 1). A path under a file fails to
  # write even for root, who may write a read-only folder.
  (tmp_path / "not_a_dir").write_text("")
  monkeypatch.setattr(summaries, "WALL_TIMES", tmp_path / "not_a_dir" / "wall_times.json")
  assert reproduce.main(["garg2022", "--preset=tiny", f"--workdir={tmp_path / 'w'}",
                         "--record_wall_time"]) == 0
  err = capsys.readouterr().err
  assert "warning: garg2022's wall time" in err and "not recorded in" in err
  assert json.loads((tmp_path / "w" / "garg2022" / "summary.json").read_text())["error"] is None


def test_a_wall_time_is_stored_only_when_asked(tmp_path, wall_times, fake_garg):
  """A user's scratch `reproduce NAME` rewrote the tracked experiments/wall_times.json (the
  times the project publishes: the tiny entry 14.0 s became 10.5 s, the checkout dirty).
  Now only --record_wall_time stores it; the run's summary.json has its times either way."""
  assert reproduce.main(["garg2022", "--preset=tiny", f"--workdir={tmp_path / 'a'}"]) == 0
  assert not wall_times.exists()
  assert json.loads((tmp_path / "a" / "garg2022" / "summary.json").read_text())["call_wall_s"] > 0
  assert reproduce.main(["garg2022", "--preset=tiny", f"--workdir={tmp_path / 'b'}",
                         "--record_wall_time"]) == 0
  assert json.loads(wall_times.read_text())["garg2022"]["tiny"]["seconds"] > 0
  with pytest.raises(InputError, match="--record_wall_time has no effect with --list"):
    reproduce.main(["--list", "--record_wall_time"])


# ----------------------------------------------------------------------------- seeds
def test_each_seed_runs_into_its_folder_and_fresh_runs_record_their_time(tmp_path, monkeypatch,
                                                                        wall_times):
  calls = []

  def fake_run(preset, workdir, seed=0):  # result files that score, without training
    calls.append((preset, workdir.relative_to(tmp_path).as_posix(), seed))
    garg_run(workdir, seed)

  monkeypatch.setattr(garg2022, "run", fake_run)
  reproduce.reproduce("garg2022", "cpu", tmp_path / "library")  # a notebook's call: no record
  assert not wall_times.exists()
  calls.clear()
  s = reproduce.reproduce("garg2022", "cpu", tmp_path, record=True)
  assert calls == [("cpu", f"garg2022/run/seed_{n}", n) for n in (0, 1, 2)]
  assert s["seeds"] == 3 and not s["error"] and "3/3" in s["claims"][0]["seeds"]
  recorded = wall_times.read_text()
  assert json.loads(recorded)["garg2022"]["cpu"]["seeds"] == 3
  # A rerun finds the seeds' files there: a reuse, not a measurement; the time stays.
  reproduce.reproduce("garg2022", "cpu", tmp_path, record=True)
  assert wall_times.read_text() == recorded
  calls.clear()  # --seeds overrides SEEDS
  assert reproduce.main(["garg2022", "--preset=tiny", "--seeds=3,1",
                         f"--workdir={tmp_path / 'b'}"]) == 0
  assert calls == [("tiny", "b/garg2022/run/seed_3", 3), ("tiny", "b/garg2022/run/seed_1", 1)]
  assert reproduce.seed_runs("nanda2023", "tiny", tmp_path) == [(0, tmp_path / "seed_0")]
  # A seedless NAME (a deterministic fit) runs once, into run/ itself, whatever --seeds says.
  assert reproduce.seed_runs("besiroglu2024", "cpu", tmp_path, (4, 5)) == [(0, tmp_path)]
  # A module's own SEEDS sets its default for a preset (the ladder's cpu preset: one seed,
  # for the 45-minute budget); --seeds still overrides it, and the other presets keep SEEDS.
  assert reproduce.seed_runs("ladder", "cpu", tmp_path) == [(0, tmp_path / "seed_0")]
  assert reproduce.seed_runs("ladder", "cpu", tmp_path, (0, 1, 2))[2] == (2, tmp_path / "seed_2")
  assert reproduce.default_seeds("ladder", "paper") == reproduce.SEEDS["paper"] == (0, 1, 2)
  assert "seeds 0 by default" in reproduce.list_text()
  # A run that writes nothing is an error (exit 6) and measures nothing.
  monkeypatch.setattr(garg2022, "run", lambda preset, workdir, seed=0: None)
  with pytest.raises(RunsFailedError, match="could not read the results"):
    reproduce.main(["garg2022", "--preset=paper", f"--workdir={tmp_path / 'c'}"])
  assert "paper" not in json.loads(wall_times.read_text())["garg2022"]
  for bad in ("--seeds=a", "--seeds=", "--seeds=-1"):
    with pytest.raises(InputError, match="--seeds"):
      reproduce.main(["garg2022", bad, f"--workdir={tmp_path}"])


# ----------------------------------------------------------------------------- scoring machinery
def test_missing_results_are_an_error_not_a_pass(tmp_path):
  s = summaries.summarize("olsson2022", "cpu", tmp_path)
  assert s["claims"] == [] and "could not read" in s["error"]
  assert json.loads((tmp_path / "olsson2022" / "summary.json").read_text())["error"]


def _claim(ours, ok, kind=rows.PAPER, text="c"):
  return rows.claim(text, 1, ours, "t", ok, "n", why="w", control="zero predictor", kind=kind)


def test_claim_status_rules():
  assert _claim(None, True)["status"] == "NOT_SHOWN"   # nothing measured
  assert _claim(0.5, None)["status"] == "NOT_SHOWN"
  assert _claim(0.5, False)["status"] == "FAIL"
  assert _claim(0.5, True)["status"] == "PASS"
  assert _claim(0.5, True)["tolerance"] == "t; why: w"  # every tolerance carries its reason
  text = summaries.table([_claim([1, 2], True, text="a|b")])
  assert "a\\|b" in text and "1, 2" in text and "PASS 1/1" in text and "zero predictor" in text


def test_seeds_aggregate_per_claim():
  seed = lambda ok: [_claim(0.1, ok), _claim(None, None, text="d")]
  agg = rows.aggregate([seed(True)] * 3)
  assert [(r["status"], r["seeds"]) for r in agg] == [("PASS", "3/3"), ("NOT_SHOWN", None)]
  assert agg[0]["ours"] == "seed 0: 0.1; seed 1: 0.1; seed 2: 0.1"
  assert rows.aggregate([seed(True)] * 2)[0]["status"] == "UNREPLICATED"   # 2 seeds: anecdote
  assert rows.aggregate([seed(True)])[0]["status"] == "UNREPLICATED"
  assert rows.aggregate([seed(True)], min_seeds=1)[0]["status"] == "PASS"  # no seed to vary
  # Only seeds that measured the claim count towards the three: two PASS and one NOT_SHOWN
  # is two seeds (a mutation audit counted the unmeasured one unseen: PASS 2/2).
  some = rows.aggregate([seed(True), seed(True), [_claim(None, None), _claim(None, None, text="d")]])
  assert (some[0]["status"], some[0]["seeds"]) == ("UNREPLICATED", "2/2")
  bad = rows.aggregate([seed(True), seed(False), seed(True)])[0]
  assert (bad["status"], bad["seeds"]) == ("FAIL", "2/3")
  assert rows.shown_status(bad) == "FAIL 2/3"
  with pytest.raises(ValueError, match="different claims"):
    rows.aggregate([seed(True), [_claim(0.1, True, text="other")]])


def test_a_self_check_pass_is_not_a_paper_pass():
  agg = rows.aggregate([[_claim(0.1, True), _claim(0.1, True, kind=rows.SELF_CHECK)]] * 3)
  assert rows.shown_status(agg[1]) == "PASS 3/3 (self-check)"
  assert rows.counts(agg) == {"PASS": 1, "UNREPLICATED": 0, "FAIL": 0, "NOT_SHOWN": 0,
                              "self-check": 1}


def test_a_claim_failing_on_every_seed_is_a_fail_and_lists_every_seeds_value():
  """Every seed FAILing is FAIL 0/3, not NOT_SHOWN (it was measured); a claim measured by one
  seed of three lists all three ('-' for the seeds that did not measure it), not the first
  seed's value alone."""
  failed = rows.aggregate([[_claim(0.5, False)]] * 3)[0]
  assert (failed["status"], failed["seeds"], rows.shown_status(failed)) == ("FAIL", "0/3",
                                                                           "FAIL 0/3")
  one = rows.aggregate([[_claim(None, None)], [_claim(None, None)], [_claim(0.1, True)]])[0]
  assert (one["status"], one["seeds"]) == ("UNREPLICATED", "1/1")
  assert one["ours"] == "seed 0: -; seed 1: -; seed 2: 0.1"

def test_an_unreplicated_self_check_is_no_unreplicated_paper_claim():
  """A self-check holding on one seed counts apart (self-check), as a PASSing one does, not
  among the paper's UNREPLICATED claims; a FAILing self-check is a FAIL."""
  one = rows.aggregate([[_claim(0.1, True), _claim(0.1, True, kind=rows.SELF_CHECK, text="s"),
                         _claim(0.1, False, kind=rows.SELF_CHECK, text="f")]])
  assert [r["status"] for r in one] == ["UNREPLICATED", "UNREPLICATED", "FAIL"]
  assert rows.counts(one) == {"PASS": 0, "UNREPLICATED": 1, "FAIL": 1, "NOT_SHOWN": 0,
                              "self-check": 1}


def test_seed_folders_are_ordered_by_their_number(tmp_path):
  """seed_10 comes after seed_9, not after seed_1 (the labels 'seed 0', 'seed 1', ... of
  each seed's value follow this order)."""
  for i in (0, 1, 2, 9, 10, 11):
    (tmp_path / f"seed_{i}").mkdir()
  assert [p.name for p in rows.seed_dirs(tmp_path)] == [
      "seed_0", "seed_1", "seed_2", "seed_9", "seed_10", "seed_11"]

def test_seed_folders_are_scored_and_aggregated(tmp_path):
  run = tmp_path / "garg2022" / "run"
  seeds(run, 3, garg_run)
  assert [p.name for p in rows.seed_dirs(run)] == ["seed_0", "seed_1", "seed_2"]
  assert rows.seed_dirs(tmp_path) == [tmp_path]
  s = summaries.summarize("garg2022", "cpu", tmp_path)
  assert s["counts"]["PASS"] == len(s["claims"]) and len(s["results"]) == 9 and s["seeds"] == 3


def test_index_links_tables_and_figures(tmp_path):
  _write(tmp_path / "garg2022" / "run" / "probes" / "icl_regression.json", garg_probe([0.8] * 16))
  _write(tmp_path / "garg2022" / "run" / "sparse_linear" / "probes" / "icl_regression.json",
         garg_sparse())
  fig = tmp_path / "garg2022" / "run" / "figures" / "icl_regression.png"
  fig.parent.mkdir()
  fig.write_bytes(b"png")
  s = summaries.summarize("garg2022", "cpu", tmp_path)
  index = summaries.write_index(tmp_path, "cpu", {
      "garg2022": {"status": "done, 1 s", "summary": s},
      "schaeffer2023": {"status": "skipped (no paper preset)"}})
  text = index.read_text()
  assert "[summary.json](garg2022/summary.json)" in text
  assert "![icl_regression.png](garg2022/run/figures/icl_regression.png)" in text
  assert "| schaeffer2023 | - | - | - | - | - | - | skipped (no paper preset) |" in text
  assert "| NAME | PASS | UNREPLICATED | FAIL | NOT_SHOWN | self-check | summary |" in text
  assert text.count("| claim | paper |") == 1


def test_a_workdir_of_another_preset_is_refused_before_anything_runs(tmp_path, monkeypatch):
  """`reproduce garg2022 --preset=cpu` on a WORKDIR of a tiny run: every seed refused the new
  config, then exit 6 and a summary of the tiny results written as the cpu preset's."""
  garg_run(tmp_path / "garg2022" / "run", model=[0.3] + [0.01] * 15)
  summaries.summarize("garg2022", "tiny", tmp_path, wall_s=3.0)
  before = (tmp_path / "garg2022" / "summary.json").read_text()
  ran = []
  monkeypatch.setattr(reproduce.PAPERS["garg2022"], "run", lambda *a, **k: ran.append(a))
  monkeypatch.setattr(reproduce.child_process, "run", lambda cmd: ran.append((cmd,)) or (0, None))
  for call in (lambda: reproduce.reproduce("garg2022", "cpu", tmp_path),
               lambda: reproduce.reproduce_all("cpu", tmp_path)):
    with pytest.raises(InputError, match=r"holds garg2022's results of the tiny preset .* run "
                       r"--preset=cpu in another --workdir, or rerun --preset=tiny"):
      call()
  assert not ran and (tmp_path / "garg2022" / "summary.json").read_text() == before
  reproduce.reproduce("garg2022", "tiny", tmp_path)  # control: the same preset reruns
  assert len(ran) == 1
  ran.clear()  # `all --seeds`: a seedless NAME refuses --seeds, so it is not passed to it
  monkeypatch.setattr(reproduce.summaries, "write_index", lambda *a, **k: tmp_path / "index.md")
  reproduce.reproduce_all("tiny", tmp_path / "fresh", seeds=[0, 1], record=True)
  argv = {a[0][3]: a[0] for a in ran}
  assert "--seeds=0,1" in argv["garg2022"] and not any(
      x.startswith("--seeds") for x in argv["besiroglu2024"])
  # `all --record_wall_time` passes the flag to every NAME's process (control: without it, none)
  assert all("--record_wall_time" in a for a in argv.values())
  ran.clear()
  reproduce.reproduce_all("tiny", tmp_path / "fresh2")
  assert ran and not any("--record_wall_time" in a[0] for a in ran)


# ----------------------------------------------------------------------------- M*
def _probe(model, ridge, dmmse):
  """A probe whose prediction differences are those of hand-built constant predictions."""
  flat = lambda v: {"mean": v, "lo": v, "hi": v}
  sq = lambda a, b: [(x - y) ** 2 for x, y in zip(a, b)]
  return {"k": list(range(len(model))),
          "curves": {"model_vs_ridge": flat(sq(model, ridge)),
                     "model_vs_dmmse": flat(sq(model, dmmse)),
                     "ridge_vs_dmmse": flat(sq(ridge, dmmse))}}


def test_distances_compare_predictions_and_m_star():
  ridge, dmmse = [1.0, 0.5, 0.3, 0.2], [1.2, 1.0, 0.9, 0.8]
  d = raventos2023.distances(_probe(ridge, ridge, dmmse))
  assert d["d_ridge"] == 0.0 and d["closer_to"] == "ridge"
  assert d["d_dmmse"] == pytest.approx((0.04 + 0.25 + 0.36 + 0.36) / 4) == d["ridge_to_dmmse"]
  assert raventos2023.distances(_probe([1.1, 0.9, 0.8, 0.8], ridge, dmmse))["closer_to"] == "dmmse"
  assert d["d_noise"] == 0.0  # flat bootstrap intervals
  noisy = _probe(ridge, ridge, dmmse)
  noisy["curves"]["model_vs_dmmse"] |= {"lo": [0.0] * 4, "hi": [0.4] * 4}
  assert raventos2023.distances(noisy)["d_noise"] == pytest.approx(0.2)  # half of 0.4, + 0
  pt = lambda m, r, d, n=0.05: {"M": m, "d_ridge": r, "d_dmmse": d, "d_noise": n}
  pts = [pt(2 ** 9, 0.1, 0.3), pt(2, 0.5, 0.1), pt(2 ** 5, 0.3, 0.2), pt(2 ** 13, 0.05, 0.4),
         pt(2 ** 7, 0.30, 0.34)]  # M = 128: closer to Ridge, but within the noise
  assert raventos2023.estimate_m_star(pts) == 2 ** 9       # smallest M resolvably closer to Ridge
  assert raventos2023.estimate_m_star(pts[1:3]) is None
  assert raventos2023.estimate_m_star([]) is None


def test_raventos_training_note_is_read_off_the_runs():
  note = raventos2023.training_note([{"ensemble_size": 8}] * 6 + [{"ensemble_size": None}] * 2)
  assert note.startswith("6 of 8 pool sizes trained as members of vmapped ensembles")
  assert "sizes [8]" in note and note.endswith("2 as solo runs")


def test_controls_command_prints_every_claim_and_exits_zero(tmp_path, capsys, monkeypatch):
  from experiments.claims import controls
  monkeypatch.setattr(controls, "CLAIMS", {"nanda2023": controls.CLAIMS["nanda2023"]})
  assert reproduce.main(["--controls", f"--workdir={tmp_path}"]) == 0
  out = capsys.readouterr().out
  assert "| nanda2023 | train accuracy reaches ~100% early | untrained model | FAIL |" in out
  assert "0 PASS on it (a defect), 0 not exercised" in out
  # A claim that its control passes makes the command fail (RunsFailedError: exit 6).
  monkeypatch.setitem(controls.CONTROLS, "nanda2023",
                      {n: lambda d: controls.nanda_untrained(d) or _grokking_good(d)
                       for n in controls.CONTROLS["nanda2023"]})
  from research.errors import EXIT_RUN_FAILED, RunsFailedError
  with pytest.raises(RunsFailedError, match="negative control PASSes") as failed:
    reproduce.main(["--controls", f"--workdir={tmp_path / 'b'}"])
  assert failed.value.exit_code == EXIT_RUN_FAILED


def _grokking_good(run_dir):
  res = json.loads((run_dir / "grokking.json").read_text())
  res["runs"]["wd=1"].update(train_acc_099_step=25, test_acc_095_step=400)
  _write(run_dir / "grokking.json", res)


# ----------------------------------------------------------------------------- end to end
def test_besiroglu_tiny_end_to_end(tmp_path, capsys, wall_times):
  assert reproduce.main(["besiroglu2024", "--preset=tiny", f"--workdir={tmp_path}",
                         "--record_wall_time"]) == 0
  out = capsys.readouterr().out
  assert "| claim | paper | ours | tolerance | status | control | note |" in out
  s = json.loads((tmp_path / "besiroglu2024" / "summary.json").read_text())
  assert s["error"] is None and len(s["claims"]) == 7
  assert sum(s["counts"].values()) == 7 and s["counts"]["self-check"] + s["counts"]["FAIL"] >= 1
  fit = json.loads((tmp_path / "besiroglu2024" / "run" / "scaling_fit.json").read_text())
  e_row = next(r for r in s["claims"] if ": E " in r["claim"])
  assert e_row["ours"].startswith(f"{fit['params']['E']['fit']:.4g} (SE ")  # from the file
  assert s["figures"] and s["figures"][0].endswith("scaling_fit.png")
  assert json.loads(wall_times.read_text())["besiroglu2024"]["tiny"]["seeds"] == 1
  # A rerun reuses both fits (and measures nothing).
  recorded = wall_times.read_text()
  assert reproduce.main(["besiroglu2024", "--preset=tiny", f"--workdir={tmp_path}",
                         "--record_wall_time"]) == 0
  assert capsys.readouterr().out.count("reusing") == 2
  assert wall_times.read_text() == recorded
  # A fit file of an older format (before the scaling-fit checks) is refitted, not reused.
  saved = tmp_path / "besiroglu2024" / "run" / "scaling_fit.json"
  saved.write_text(json.dumps(json.loads(saved.read_text()) | {"format": 1}))
  assert reproduce.main(["besiroglu2024", "--preset=tiny", f"--workdir={tmp_path}"]) == 0
  assert capsys.readouterr().out.count("reusing") == 1
  assert json.loads(saved.read_text())["format"] == besiroglu2024.FIT_FORMAT


@pytest.mark.slow
def test_raventos_tiny_end_to_end(tmp_path):
  assert reproduce.main(["raventos2023", "--preset=tiny", f"--workdir={tmp_path}"]) == 0
  res = json.loads((tmp_path / "raventos2023" / "run" / "seed_0" / "raventos2023.json").read_text())
  assert [p["M"] for p in res["pools"]] == [2, 16, 128] and not res["failed"]
  for p in res["pools"]:
    assert p["closer_to"] in ("ridge", "dmmse") and p["d_ridge"] >= 0 and p["d_dmmse"] >= 0
  assert res["m_star"] == raventos2023.estimate_m_star(res["pools"])
  s = json.loads((tmp_path / "raventos2023" / "summary.json").read_text())
  assert len(s["claims"]) == 3 and s["figures"]


def test_train_or_reuse_keeps_a_finished_run(tmp_path, tiny_config):
  from research import train
  tiny_config.train.peak_flops = 1e11
  first = train.train_or_reuse(tiny_config, str(tmp_path))
  stamp = (tmp_path / "summary.json").stat().st_mtime_ns
  again = train.train_or_reuse(tiny_config, str(tmp_path))
  assert again == first and "final_loss" in again                 # final metrics kept
  assert (tmp_path / "summary.json").stat().st_mtime_ns == stamp  # nothing rewritten
  # Garg's distribution-shift probe reads the finished run and feeds its two claims.
  shift = json.loads(garg2022.write_shift_probe(tmp_path).read_text())
  assert set(shift["shifts"]) == {"none", "scale_0.5", "scale_2", "scale_3", "orthant", "skewed"}
  assert all(len(c["model"]) == len(shift["k"]) for c in shift["shifts"].values())
  assert [r["status"] in ("PASS", "FAIL") for r in
          regression._garg_shifts(tmp_path / "distribution_shift.json", "")] == [True, True]




def test_controls_report_counts_an_unexercised_control_against_the_all_clear():
  """A control that never ran (NOT_SHOWN) is no FAIL: --controls must not say all clear
  (a mutation audit dropped that condition unseen). Control: one that FAILs is clear."""
  from experiments.claims import controls
  row = {"paper": "p", "claim": "c", "control": "x", "ours": "-"}
  assert controls.report([row | {"status": "NOT_SHOWN"}])[1] is False
  assert controls.report([row | {"status": "FAIL"}])[1] is True
  assert controls.report([row | {"status": "PASS"}])[1] is False


def test_a_seed_folder_of_another_experiment_is_refused_before_any_seed_trains(tmp_path,
                                                                               monkeypatch):
  """`reproduce garg2022` trained into run/seed_0 that olsson2022's experiment.json marked
  (its runs beside), exit 0, where `experiments.garg2022 --workdir=` that folder is refused.
  Control: garg2022's own mark (an earlier run) is reused."""
  ran = []
  monkeypatch.setattr(reproduce.PAPERS["garg2022"], "run", lambda *a, **k: ran.append(a))
  seed_0 = tmp_path / "garg2022" / "run" / "seed_0"
  seed_0.mkdir(parents=True)
  marker = seed_0 / "experiment.json"
  marker.write_text('{"experiment": "olsson2022", "preset": "tiny", "seed": 0}')
  with pytest.raises(InputError, match=r"seed_0 holds olsson2022's experiment \(experiment.json\), "
                     r"which garg2022's files would break; `reproduce garg2022` trains each seed "
                     r"in WORKDIR/garg2022/run/: move that folder out of it"):
    reproduce.reproduce("garg2022", "tiny", tmp_path)
  assert not ran and sorted(p.name for p in seed_0.iterdir()) == ["experiment.json"]
  marker.write_text('{"experiment": "garg2022", "preset": "tiny", "seed": 0}')
  reproduce.reproduce("garg2022", "tiny", tmp_path)
  assert len(ran) == 1
