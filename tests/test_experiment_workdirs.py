"""An experiment script's --workdir and reproduce's (research/workdir_layout.check_kind, kinds
"experiment" and "reproduce"): a research.main run's or a research.sweep's directory, or one
inside them, is refused with exit 2 and nothing written; an experiment's own directory (its
experiment.json, or its result files from before that marker) is reused."""
import json
import shutil
import sys

from pathlib import Path

import pytest

from experiments import besiroglu2024, garg2022, ladder, raventos2023, reproduce, schaeffer2023
from research import cli, workdir_layout, workdir_lock
from research.errors import InputError


pytestmark = pytest.mark.usefixtures("wall_times")  # conftest: never the tracked file


def a_run(path):
  """What research.main leaves: config.json, metrics.jsonl, checkpoints/."""
  path.mkdir(parents=True)
  (path / "config.json").write_text(json.dumps({"task": {"name": "regression"}, "seed": 3}))
  (path / "metrics.jsonl").write_text('{"step": 1}\n')
  (path / "checkpoints" / "1").mkdir(parents=True)
  return path


def a_sweep(path):
  """What research.sweep leaves: results.jsonl, runs/NAME (each a run), sweep.json."""
  a_run(path / "runs" / "000_seed=0")
  (path / "results.jsonl").write_text('{"run": "000_seed=0"}\n')
  (path / "sweep.json").write_text('{"config": "configs/icl_regression.py", "sweep": "seeds"}')
  return path


def listing(root):
  return sorted((str(p.relative_to(root)), p.is_file() and p.read_bytes())
                for p in root.rglob("*"))


def refused(main, argv, monkeypatch, capfd):
  """cli.run_script(main) on argv: its exit code and its one stderr line."""
  monkeypatch.setattr(sys, "argv", ["script", *argv])
  with pytest.raises(SystemExit) as e:
    cli.run_script(main)
  lines = capfd.readouterr().err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), lines
  return e.value.code, lines[0]


@pytest.mark.parametrize("module", [schaeffer2023, garg2022, raventos2023, ladder])
def test_an_experiment_refuses_a_run_or_a_sweep_and_writes_nothing(module, tmp_path,
                                                                   monkeypatch, capfd):
  """Before: rc 0, results and runs/ written into a finished run, which research.main then
  refused as 'holds a sweep'; or an experiment's runs listed as rows of a sweep."""
  ran = []
  monkeypatch.setattr(module, "run", lambda *a, **k: ran.append(a))
  run, sweep = a_run(tmp_path / "R"), a_sweep(tmp_path / "S")
  before = listing(tmp_path)
  for workdir, needle in ((run, "holds a run (config.json, metrics.jsonl, checkpoints)"),
                          (sweep, "holds a sweep (results.jsonl, runs"),
                          (run / "sub", f"is inside the run {run}"),
                          (sweep / "runs" / "000_seed=0" / "x", "is inside the run"),
                          (sweep / "more", f"is inside the sweep {sweep}"),
                          # a sweep's run: it said "holds a run", offered a folder beside it
                          # (inside the sweep: refused next) and experiment.json in the run
                          (sweep / "runs" / "000_seed=0", f"is inside the sweep {sweep}")):
    code, line = refused(module.main, ["--preset=tiny", f"--workdir={workdir}"], monkeypatch,
                         capfd)
    assert code == 2 and needle in line and "a new directory" in line, line
    # One it may have written itself before the mark existed says how to claim it; never a
    # research.sweep's (its sweep.json): test_experiment_sweep_claim.py.
    hint = f'write {{"experiment": "{module.__name__.split(".")[1]}"}}' in line
    assert hint == ("holds" in line and workdir != sweep), line
  assert not ran and listing(tmp_path) == before


def _schaeffer(preset, workdir, seed=0, *rest):
  """The files schaeffer2023's run writes: a sweep (results.jsonl, runs/) and its result."""
  workdir = Path(workdir)
  (workdir / "runs" / "000_width=8").mkdir(parents=True, exist_ok=True)
  (workdir / "results.jsonl").write_text('{"run": "000_width=8"}\n')
  (workdir / "emergence_scale.json").write_text("{}")


def test_an_experiment_reuses_its_own_directory_and_refuses_another_experiments(
    tmp_path, monkeypatch, capfd):
  ran = []
  monkeypatch.setattr(schaeffer2023, "run", lambda *a: ran.append(a) or _schaeffer(*a))
  own = tmp_path / "E"
  assert schaeffer2023.main(["--preset=tiny", f"--workdir={own}"]) == 0
  assert json.loads((own / "experiment.json").read_text()) == {"experiment": "schaeffer2023",
                                                                 "preset": "tiny", "seed": 0}
  assert schaeffer2023.main(["--preset=tiny", f"--workdir={own}"]) == 0  # a rerun reuses it
  assert len(ran) == 2

  def interrupted(preset, workdir, *rest):  # Ctrl-C mid-sweep: no emergence_scale.json yet
    workdir = Path(workdir)
    (workdir / "runs" / "000_width=8").mkdir(parents=True)
    (workdir / "results.jsonl").write_text("")
    raise KeyboardInterrupt
  monkeypatch.setattr(schaeffer2023, "run", interrupted)
  with pytest.raises(KeyboardInterrupt):
    schaeffer2023.main(["--preset=tiny", f"--workdir={tmp_path / 'half'}"])
  monkeypatch.setattr(schaeffer2023, "run", lambda *a: ran.append(a))
  assert schaeffer2023.main(["--preset=tiny", f"--workdir={tmp_path / 'half'}"]) == 0  # resumed
  # A directory an older version wrote (no experiment.json) is its own by its result file.
  legacy = tmp_path / "legacy"
  legacy.mkdir()
  _schaeffer("tiny", legacy)
  monkeypatch.setattr(ladder, "run", lambda *a: ran.append(a))  # another experiment's: refused
  code, line = refused(ladder.main, ["--preset=tiny", f"--workdir={legacy}"], monkeypatch, capfd)
  assert code == 2 and "holds a sweep" in line, line
  assert schaeffer2023.main(["--preset=tiny", f"--workdir={legacy}"]) == 0
  assert len(ran) == 4 and (legacy / "experiment.json").is_file()  # marked from now on
  code, line = refused(ladder.main, ["--preset=tiny", f"--workdir={own}"], monkeypatch, capfd)
  assert code == 2 and "holds schaeffer2023's experiment (experiment.json)" in line, line
  assert len(ran) == 4


def test_garg2022s_own_run_is_reused_and_a_refused_input_leaves_no_mark(tmp_path, monkeypatch):
  """garg2022's directory is itself a run (its WORKDIR/sparse_linear a second one)."""
  monkeypatch.setattr(garg2022, "run", lambda p, w, s: a_run(Path(w) / "sparse_linear")
                      if not (Path(w) / "sparse_linear").exists() else None)
  assert garg2022.main(["--preset=tiny", f"--workdir={tmp_path / 'g'}"]) == 0
  (tmp_path / "g" / "config.json").write_text('{"task": {"name": "regression"}}')
  assert garg2022.main(["--preset=tiny", f"--workdir={tmp_path / 'g'}"]) == 0
  legacy = a_run(tmp_path / "old")  # before experiment.json: its shift probe says garg2022's
  (legacy / "distribution_shift.json").write_text("{}")
  assert garg2022.main(["--preset=tiny", f"--workdir={legacy}"]) == 0
  with pytest.raises(InputError, match="holds a run"):  # a research.main run of its config
    garg2022.main(["--preset=tiny", f"--workdir={a_run(tmp_path / 'plain')}"])
  # An input the experiment refuses itself takes the mark away with the folder it made.
  (tmp_path / "empty").mkdir()
  (tmp_path / "mine" / "keep_empty").mkdir(parents=True)  # a user's folder keeps its contents
  def refused(preset, workdir, *rest):  # after making a folder of its own (a rerun: "a sweep")
    (Path(workdir) / "runs").mkdir()
    with workdir_lock.Lock(workdir, "a sweep"):  # research.sweep's: released, its .lock kept
      pass  # (it stayed in an existing WORKDIR, whose cleanup was another route)
    raise InputError("x")
  for workdir in (tmp_path / "new", tmp_path / "empty", tmp_path / "mine"):
    monkeypatch.setattr(schaeffer2023, "run", refused)
    with pytest.raises(InputError):
      schaeffer2023.main(["--preset=tiny", f"--workdir={workdir}"])
  assert not (tmp_path / "new").exists() and list((tmp_path / "empty").iterdir()) == []
  assert list((tmp_path / "mine").iterdir()) == [tmp_path / "mine" / "keep_empty"]


def test_reproduce_refuses_a_run_or_a_sweep_and_keeps_its_own_layout(tmp_path, monkeypatch,
                                                                     capfd):
  """Before: `reproduce garg2022 --workdir=SWEEP` wrote SWEEP/garg2022/..., whose runs
  research.results then listed as rows of the sweep."""
  calls = []
  monkeypatch.setattr(garg2022, "run", lambda p, workdir, seed=0: calls.append(workdir))
  monkeypatch.setattr(reproduce.child_process, "run", lambda cmd: calls.append((cmd,)) or (0, None))
  run, sweep = a_run(tmp_path / "R"), a_sweep(tmp_path / "S")
  before = listing(tmp_path)
  for argv, needle in ((["garg2022", f"--workdir={sweep}"], "holds a sweep"),
                       (["all", f"--workdir={sweep}"], "holds a sweep"),
                       (["--controls", f"--workdir={sweep}"], "holds a sweep"),
                       (["garg2022", f"--workdir={run}"], "holds a run"),
                       (["garg2022", f"--workdir={sweep / 'x'}"], "is inside the sweep")):
    code, line = refused(reproduce.main, argv, monkeypatch, capfd)
    assert code == 2 and needle in line and "give reproduce a new directory" in line, line
  assert not calls and listing(tmp_path) == before
  # Its own WORKDIR/NAME/run/seed_<n> layout: a garg2022 seed is a run, rerun and reused.
  w = tmp_path / "W"
  monkeypatch.setattr(garg2022, "run", lambda p, w, seed=0: a_run(Path(w) / "sparse_linear")
                      if not (Path(w) / "sparse_linear").exists() else None)
  for _ in range(2):
    with pytest.raises(Exception, match="could not read the results"):  # no probe: exit 6
      reproduce.main(["garg2022", "--preset=tiny", f"--workdir={w}"])
  seed_0 = w / "garg2022" / "run" / "seed_0"
  assert json.loads((seed_0 / "experiment.json").read_text()) == {"experiment": "garg2022",
                                                                     "preset": "tiny", "seed": 0}
  assert garg2022.main(["--preset=tiny", f"--workdir={seed_0}"]) == 0  # the script reuses it
  reproduce.main(["all", "--preset=tiny", f"--workdir={w}"])
  assert len(calls) == len([n for n in reproduce.NAMES if "tiny" in reproduce.presets_of(n)])


# ----------------------------------------------------------------------------- moved sweeps
# A finished sweep reused by an experiment is read where it is now (WORKDIR/runs/NAME), never
# through its rows' `dir` and probe paths (where the runs trained). Built by hand, with
# research.sweep's own rows, and run_sweep standing for a sweep with nothing left to train.
def _finished_sweep(root, overrides, files):
  """ROOT as research.sweep leaves it: each point's rows (absolute `dir` and probe paths) and
  FILES(i) ({path in the run: JSON object, or a list: JSONL rows}) in runs/NAME."""
  from research import sweep
  root.mkdir(parents=True)
  results = sweep.Results(root / "results.jsonl")
  for i, o in enumerate(overrides):
    name, probes = sweep.run_name(i, o), {}
    for rel, content in files(i).items():
      path = root / "runs" / name / rel
      path.parent.mkdir(parents=True, exist_ok=True)
      path.write_text("".join(json.dumps(r) + "\n" for r in content)
                      if isinstance(content, list) else json.dumps(content))
      if rel.startswith("probes/") and rel.endswith(".json"):
        probes[Path(rel).stem] = str(path)
    summary = {"num_params": 1000 * (i + 1), "probes": probes}
    results.put(sweep._row(name, o, summary, 1.0, root / "runs" / name))


@pytest.fixture
def nothing_to_train(monkeypatch):
  from research import sweep
  monkeypatch.setattr(sweep, "run_sweep",
                      lambda config, overrides, workdir, **kw: sweep.Results(
                          Path(workdir) / "results.jsonl"))


def _copy_then_move(orig, tmp_path, edit):
  """A copy of ORIG, then ORIG's files edited (EDIT(run_dir) for each run); returns the copy
  and where ORIG is moved to (by the caller, after reading the copy)."""
  copy = tmp_path / "copy"
  shutil.copytree(orig, copy)
  for run_dir in (orig / "runs").iterdir():
    edit(run_dir)
  return copy, tmp_path / "moved"


def _raventos_probe(model):
  curve = lambda v: {"mean": [v, v], "lo": [v, v], "hi": [v, v]}
  return {"k": [0, 1], "curves": {"model": curve(model), "ridge": curve(0.4),
                                  "dmmse": curve(0.6), "model_vs_ridge": curve(model),
                                  "model_vs_dmmse": curve(0.5), "ridge_vs_dmmse": curve(0.3)}}


def test_raventos2023_reads_a_copied_or_moved_sweep_from_its_own_runs(tmp_path, capsys,
                                                                      nothing_to_train):
  """Before: a copy read the original's probes (edited there, exit 0); a moved sweep failed
  every M ('no probe file /old/path', exit 6) and rewrote raventos2023.json with pools: []."""
  pools, orig = ["2", "16"], tmp_path / "orig"
  _finished_sweep(orig, [{"task.pool_size": int(m)} for m in pools],
                  lambda i: {"probes/icl_regression.json": _raventos_probe(0.2),
                             "probes/icl_regression_pool.json": _raventos_probe(0.1)})
  edit = lambda run_dir: [p.write_text(json.dumps(_raventos_probe(9.0)))
                          for p in (run_dir / "probes").iterdir()]
  copy, moved = _copy_then_move(orig, tmp_path, edit)
  pools_of = lambda d: json.loads((d / "raventos2023.json").read_text())["pools"]
  read = lambda d: [(p["d_ridge"], p["pool_tasks_model_error"]) for p in pools_of(d)]
  raventos2023.run("tiny", copy, pools=pools)
  assert read(copy) == [(0.2, 0.1)] * 2
  # Its verdicts are the scorer's (M = 16 is closer to Ridge, 0.2 < 0.5, at the largest M).
  out = capsys.readouterr().out
  assert "as `python -m experiments.reproduce raventos2023` scores them" in out
  assert "above the threshold the model's predictions track Ridge's (largest M): M=16" in out
  assert all(Path(p["probe"]).is_relative_to(copy) for p in pools_of(copy))
  orig.rename(moved)
  raventos2023.run("tiny", moved, pools=pools)  # its own files, edited
  assert read(moved) == [(9.0, 9.0)] * 2


def _ladder_rows(loss):
  """probes/checkpoints.jsonl of a run (research.probe_checkpoints), three checkpoints."""
  return [{"step": s, "tokens": s * 256, "loss": loss, "icl_score": -0.1 * s,
           "icl_score_se": 0.01, "prefix_baseline": 0.04, "heads": {"L0H0": {"prefix": 0.03}}}
          for s in (10, 20, 40)]


def test_ladder_probes_and_reads_a_copied_or_moved_sweep_in_its_own_runs(tmp_path, monkeypatch,
                                                                         nothing_to_train):
  """Before: a copy probed the original's runs (writing into them) and read their rows
  (edited there, exit 0); a moved sweep read none."""
  from research import probe_checkpoints
  from research.analysis import ladder_plots
  probed = []  # the runs it probes: their checkpoints.jsonl rows are complete already
  monkeypatch.setattr(probe_checkpoints, "probe_run", lambda d, **kw: probed.append(Path(d)))
  monkeypatch.setattr(ladder_plots, "render_all", lambda *a: [])  # seconds, and not the point
  orig = tmp_path / "orig"
  _finished_sweep(orig, ladder.make_points("tiny")[2],
                  lambda i: {"probes/checkpoints.jsonl": _ladder_rows(2.0 + i)})
  edit = lambda run_dir: (run_dir / "probes" / "checkpoints.jsonl").write_text(
      "".join(json.dumps(r) + "\n" for r in _ladder_rows(9.0)))
  copy, moved = _copy_then_move(orig, tmp_path, edit)
  losses = lambda d: [[r["loss"] for r in s["rows"]] for s in
                      json.loads((d / ladder.OUT).read_text())["sizes"]]
  ladder.run("tiny", copy)
  assert probed == sorted((copy / "runs").iterdir())
  assert losses(copy) == [[2.0] * 3, [3.0] * 3]
  orig.rename(moved)
  probed.clear()
  ladder.run("tiny", moved)  # its own files, edited
  assert probed == sorted((moved / "runs").iterdir()) and losses(moved) == [[9.0] * 3] * 2


def test_an_experiments_directory_keeps_one_preset(tmp_path):
  """scaling_laws --preset=cpu after --preset=tiny in one WORKDIR trained the cpu grid beside
  the tiny one (exit 0; research.results listed both as one experiment's rows). The mark keeps
  the preset; another is refused before anything is written. Controls: the same preset again,
  and a mark from before it kept one (it takes the next preset)."""
  from experiments import common
  from research import workdir
  wd = tmp_path / "sl"
  with common.owned(wd, "scaling_laws", "tiny"):
    (wd / "results.jsonl").write_text("")
  before = listing(wd)
  with pytest.raises(InputError, match=r"holds scaling_laws's runs of --preset=tiny, and one "
                     r"directory keeps one preset's; run --preset=cpu in another directory"):
    with common.owned(wd, "scaling_laws", "cpu"):
      raise AssertionError("the block must not run")
  assert listing(wd) == before
  with common.owned(wd, "scaling_laws", "tiny"):
    pass
  old = tmp_path / "old"
  old.mkdir()
  (old / workdir.EXPERIMENT).write_text('{"experiment": "scaling_laws"}')
  with common.owned(old, "scaling_laws", "cpu"):
    pass
  assert json.loads((old / workdir.EXPERIMENT).read_text())["preset"] == "cpu"


@pytest.mark.parametrize("module", [garg2022, besiroglu2024])
def test_an_experiments_directory_keeps_one_seed(module, tmp_path, monkeypatch, capfd):
  """garg2022 --seed=1 where seed 0 trained was refused by the run's own check, whose fix
  (--config.init_from=) is a flag no script has; besiroglu2024 (a fit, no run to check)
  replaced seed 5's scaling_fit.json, exit 0. The mark keeps the seed and another is refused
  before anything is written, with a fix the scripts take. Controls: the same seed again; a
  mark from before it kept one takes the next seed."""
  from research import workdir
  wd = tmp_path / "exp"
  monkeypatch.setattr(module, "run", lambda preset, workdir, seed=0, *a, **k: (
      Path(workdir, "result.txt").write_text(str(seed))))
  argv = [f"--workdir={wd}", "--preset=tiny"]
  assert module.main(argv + ["--seed=1"]) == 0
  before = listing(wd)
  code, line = refused(module.main, argv + ["--seed=2"], monkeypatch, capfd)
  assert code == 2 and line == (
      f"error: {wd} holds {module.__name__.split('.')[-1]}'s runs of --seed=1, and one "
      "directory keeps one seed's; run --seed=2 in another directory, or rerun --seed=1 "
      "there; `python -m experiments.reproduce` gives each seed a directory of its own")
  assert listing(wd) == before
  assert module.main(argv + ["--seed=1"]) == 0
  old = tmp_path / "old"
  old.mkdir()
  (old / workdir.EXPERIMENT).write_text('{"experiment": "garg2022", "preset": "tiny"}')
  from experiments import common
  with common.owned(old, "garg2022", "tiny", 3):
    pass
  assert json.loads((old / workdir.EXPERIMENT).read_text())["seed"] == 3


def test_the_hint_for_a_run_in_a_sweeps_folder_is_a_folder_the_check_accepts(tmp_path):
  """The refusal suggested --workdir=SWEEP/single, which the next check refused as inside
  the sweep. Now it names a sibling; following the hint passes."""
  import re
  from results_fixtures import write_sweep
  sweep = write_sweep(tmp_path / "scale")
  with pytest.raises(InputError, match="holds a sweep") as e:
    workdir_layout.check_kind(sweep, "run")
  hint = re.search(r"e\.g\. --workdir=(\S+)", str(e.value)).group(1)
  assert hint == f"{sweep}_single"
  workdir_layout.check_kind(Path(hint), "run")  # accepted
  with pytest.raises(InputError, match="inside the sweep"):  # control: the old hint
    workdir_layout.check_kind(sweep / "single", "run")


def test_runs_a_resume_changed_are_said_after_the_results(tmp_path, capsys):
  """A second trial: schaeffer2023 rerun with a larger --set train.num_steps extended its runs
  (another schedule: numbers 2-6 intervals from a fresh run) and said so in one log line among
  hundreds; emergence_scale.json looked like a fresh run's. Control: no change, no note."""
  from experiments import common
  wd = tmp_path / "w"
  with common.owned(wd, "schaeffer2023", "cpu"):
    (wd / "runs" / "000_size=0").mkdir(parents=True)
  assert "note:" not in capsys.readouterr().out
  (wd / "runs" / "000_size=0" / "config_changes.jsonl").write_text(
      json.dumps({"step": 1500, "changes": ["train.num_steps: 1500 -> 3000"]}) + "\n")
  assert common.resumed_changes(wd) == {
      "runs/000_size=0": ["step 1500: train.num_steps: 1500 -> 3000"]}
  with common.owned(wd, "schaeffer2023", "cpu"):
    pass
  out = capsys.readouterr().out
  assert ("note: 1 run here changed on resume (config_changes.jsonl), so it differs from runs "
          "trained so from the start: runs/000_size=0: step 1500: train.num_steps: 1500 -> "
          "3000") in out
