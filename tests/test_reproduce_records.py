"""What reproduce records and which runs it makes: a wall time only for seeds all trained from
empty, `all` and a preset-less paper, an older summary without a preset, the names the gallery
is given, and garg2022's two runs (its paper sparsity, the seed) and its shift probe's own key."""
import json

import pytest

from experiments import garg2022, reproduce
from claims_fixtures import garg_run, seeds
from research.errors import InputError, RunsFailedError

pytestmark = pytest.mark.usefixtures("wall_times")  # conftest: never the tracked file


def test_a_wall_time_is_recorded_only_when_every_seed_trained_from_empty(tmp_path, monkeypatch,
                                                                          wall_times):
  """One seed's folder already holds a file (a reused or partial run): the command's time is
  not a from-scratch time for 3 seeds, so nothing is recorded, though seeds 1 and 2 were
  fresh. A seed that wrote no result (unfinished, no error raised) records nothing either."""
  monkeypatch.setattr(garg2022, "run", lambda preset, workdir, seed=0: garg_run(workdir, seed))
  (tmp_path / "a" / "garg2022" / "run" / "seed_0").mkdir(parents=True)
  (tmp_path / "a" / "garg2022" / "run" / "seed_0" / "old.txt").write_text("reused")
  reproduce.reproduce("garg2022", "cpu", tmp_path / "a", record=True)
  assert not wall_times.exists()
  monkeypatch.setattr(garg2022, "run", lambda preset, workdir, seed=0:
                      garg_run(workdir, seed) if seed != 2 else None)
  s = reproduce.reproduce("garg2022", "cpu", tmp_path / "b", record=True)
  assert s["unfinished"] and not s["error"] and not wall_times.exists()
  reproduce.reproduce("garg2022", "cpu", tmp_path / "c", record=True, seeds=[0, 1])  # control
  assert json.loads(wall_times.read_text())["garg2022"]["cpu"]["seeds"] == 2


def test_all_counts_a_name_skipped_for_its_preset_as_no_failure(tmp_path, monkeypatch):
  """`all --preset=paper`: schaeffer2023 has no paper preset and is skipped; that is no
  failure (exit 0). A NAME that exited 1 is (exit 6, named)."""
  results = {"garg2022": {"status": "done, 3 s"},
             "schaeffer2023": {"status": "skipped (no paper preset)"}}
  monkeypatch.setattr(reproduce, "reproduce_all", lambda *a, **k: results)
  assert reproduce.main(["all", "--preset=paper", f"--workdir={tmp_path}"]) == 0
  results["garg2022"] = {"status": "exit 1, 3 s"}
  with pytest.raises(RunsFailedError, match=r"1 of 2 papers failed: garg2022 \(exit 1"):
    reproduce.main(["all", "--preset=paper", f"--workdir={tmp_path}"])


def test_a_summary_that_names_no_preset_is_not_refused(tmp_path):
  """_check_same_preset refuses a WORKDIR/NAME of another preset only: a summary.json without
  a preset (an older one) or of the same preset is left to the runs' own checks."""
  path = tmp_path / "garg2022" / "summary.json"
  path.parent.mkdir()
  for summary in ({}, {"preset": "cpu"}):
    path.write_text(json.dumps(summary))
    reproduce._check_same_preset("garg2022", "cpu", tmp_path)
  path.write_text(json.dumps({"preset": "tiny"}))
  with pytest.raises(InputError, match="of the tiny preset"):
    reproduce._check_same_preset("garg2022", "cpu", tmp_path)


def test_gallery_is_told_which_names_have_the_preset(tmp_path, monkeypatch):
  """`reproduce gallery --preset=paper`: a NAME without a paper preset (schaeffer2023) gets a
  'not run' row, not a refusal, so `runnable` lists only the NAMEs that have it."""
  seen = {}
  monkeypatch.setattr(reproduce.gallery, "write_gallery",
                      lambda preset, workdir, names, runnable: seen.update(r=runnable) or "x")
  assert reproduce.main(["gallery", "--preset=paper", f"--workdir={tmp_path}"]) == 0
  assert seen["r"] == [n for n in reproduce.NAMES if "paper" in reproduce.PAPERS[n].PRESETS]
  assert "schaeffer2023" not in seen["r"] and "garg2022" in seen["r"]


def test_garg_runs_its_sparse_task_at_the_papers_sparsity_and_the_seed(tmp_path, monkeypatch):
  """garg2022.run: the linear run and the sparse-linear run (Garg: s = 3 of d = 20 on the paper
  preset; 2 of 5 on cpu / tiny) both at the seed reproduce passes, the sparse one in
  WORKDIR/sparse_linear."""
  from experiments import common
  ran = []
  monkeypatch.setattr(common, "train_or_reuse", lambda c, workdir: ran.append((c, workdir)))
  monkeypatch.setattr(garg2022, "write_shift_probe", lambda workdir: None)
  monkeypatch.setattr(common, "print_verdicts", lambda *a: None)  # nothing was trained to score
  for preset, dims, sparsity in (("paper", 20, 3), ("cpu", 5, 2)):
    ran.clear()
    garg2022.run(preset, tmp_path / preset, seed=7)
    (linear, w1), (sparse, w2) = ran
    assert (w1, w2) == (tmp_path / preset, tmp_path / preset / "sparse_linear")
    assert linear.seed == sparse.seed == 7
    assert linear.task.function != "sparse_linear" and sparse.task.function == "sparse_linear"
    assert (sparse.task.n_dims, sparse.task.sparsity) == (dims, sparsity)


def test_garg_shift_probe_draws_its_own_prompts(tmp_path, monkeypatch):
  """The distribution-shift probe's key is the run's root key folded with keys.SHIFT_PROBE,
  not keys.PROBE (the in-distribution probe's prompts)."""
  import contextlib
  import types
  import jax
  import numpy as np
  from research import keys, predict
  seen = {}
  task = types.SimpleNamespace(shift_probe=lambda fn, key, cfg: seen.update(key=key) or {
      "n_dims": 1, "k": [0], "shifts": {}})
  exp = types.SimpleNamespace(root_key=jax.random.PRNGKey(3), task=task, predict_fn=lambda p: p,
                              precision=contextlib.nullcontext,
                              config=types.SimpleNamespace(probe=None))
  monkeypatch.setattr(predict, "load_run", lambda workdir: (exp, {}, 5))
  garg2022.write_shift_probe(tmp_path)
  want = jax.random.fold_in(jax.random.PRNGKey(3), keys.SHIFT_PROBE)
  assert np.array_equal(jax.random.key_data(seen["key"]), jax.random.key_data(want))
  assert not np.array_equal(jax.random.key_data(seen["key"]), jax.random.key_data(
      jax.random.fold_in(jax.random.PRNGKey(3), keys.PROBE)))
  assert json.loads((tmp_path / "distribution_shift.json").read_text())["step"] == 5


def test_the_names_are_the_paper_modules_and_help_imports_none_of_them():
  """reproduce.NAMES is written out (so --help and a mistyped NAME import no paper module:
  `reproduce --help` took 5 s); each NAME is experiments/NAME.py with PAPER, PRESETS and run,
  and every experiments/*.py that defines PAPER and run is a NAME. Control: a NAME not there is
  a KeyError, as from a dict."""
  import importlib
  import subprocess
  import sys
  from pathlib import Path
  here = Path(reproduce.__file__).parent
  scripts = set()
  for path in here.glob("*.py"):
    text = path.read_text()
    if "\nPAPER = " in text and "\ndef run(" in text:
      scripts.add(path.stem)
  assert set(reproduce.NAMES) == scripts, scripts ^ set(reproduce.NAMES)
  for name in reproduce.NAMES:
    module = importlib.import_module(f"experiments.{name}")
    assert reproduce.PAPERS[name] is module and callable(module.run) and module.PRESETS
  assert list(reproduce.PAPERS) == list(reproduce.NAMES) and len(reproduce.PAPERS) == 10
  with pytest.raises(KeyError):
    reproduce.PAPERS["garg202"]
  probe = ("import sys; from experiments import reproduce; "
           "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'flax', 'scipy', "
           "'matplotlib') or m in {'experiments.' + n for n in reproduce.NAMES}))")
  out = subprocess.run([sys.executable, "-c", probe], cwd=here.parent, capture_output=True,
                       text=True, timeout=120, check=True).stdout
  assert out.strip() == "[]", out[:500]
