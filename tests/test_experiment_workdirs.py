"""An experiment script's --workdir and reproduce's (research/workdir_layout.check_kind, kinds
"experiment" and "reproduce"): a research.main run's or a research.sweep's directory, or one
inside them, is refused with exit 2 and nothing written; an experiment's own directory (its
experiment.json, or its result files from before that marker) is reused."""
import json
import subprocess
import sys

from pathlib import Path

import pytest

from experiments import garg2022, ladder, raventos2023, reproduce, schaeffer2023, summaries
from research import cli
from research.errors import InputError


@pytest.fixture(autouse=True)
def wall_times(tmp_path, monkeypatch):
  monkeypatch.setattr(summaries, "WALL_TIMES", tmp_path / "wall_times.json")


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
                          (sweep / "more", f"is inside the sweep {sweep}")):
    code, line = refused(module.main, ["--preset=tiny", f"--workdir={workdir}"], monkeypatch,
                         capfd)
    assert code == 2 and needle in line and "a new directory" in line, line
    # One it wrote itself before the mark existed (an interrupted sweep) says how to claim it.
    assert ("holds" not in line) or f'write {{"experiment": "{module.__name__.split(".")[1]}"}}' in line
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
  assert json.loads((own / "experiment.json").read_text()) == {"experiment": "schaeffer2023"}
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
  monkeypatch.setattr(reproduce.subprocess, "run",
                      lambda *a, **k: calls.append(a) or subprocess.CompletedProcess(a, 0))
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
  assert json.loads((seed_0 / "experiment.json").read_text()) == {"experiment": "garg2022"}
  assert garg2022.main(["--preset=tiny", f"--workdir={seed_0}"]) == 0  # the script reuses it
  reproduce.main(["all", "--preset=tiny", f"--workdir={w}"])
  assert len(calls) == len([n for n in reproduce.NAMES if "tiny" in reproduce.presets_of(n)])
