"""Sweeps whose points train as one vmapped ensemble, stopped and rerun: what a rerun
continues, and what it trains again (research/sweep.py, research/ensemble.py)."""
import json

import jax
import pytest

from research import sweep
from research.errors import InputError
from test_sweep import _config


def test_an_ensemble_stopped_while_probing_is_continued_not_retrained(tmp_path, monkeypatch,
                                                                      caplog):
  """Stopped (SIGTERM) while probing member 1 of 3, member 0 done: the rerun trained members
  1 and 2 again from step 0 as a new ensemble (its key names the runs left), beside the
  stacked state that had them trained, and their grad norms moved in the last digits. Now it
  continues the ensemble it started: nothing retrained, every file as an uninterrupted
  sweep's. Control: that uninterrupted sweep, and the one ensemble folder."""
  from research import ensemble, preemption
  overrides = [{"seed": s} for s in range(3)]
  sweep.run_sweep(_config(), overrides, tmp_path / "whole", ensemble="on",
                  devices=jax.devices()[:1])
  real = ensemble.run_probes

  def stopped(exp, state, workdir):
    if "seed=1" in str(workdir):
      raise preemption.Preempted("preempted (SIGTERM) while probing ensemble member 1")
    return real(exp, state, workdir)
  monkeypatch.setattr(ensemble, "run_probes", stopped)
  with pytest.raises(preemption.Preempted):
    sweep.run_sweep(_config(), overrides, tmp_path / "cut", ensemble="on",
                    devices=jax.devices()[:1])
  monkeypatch.setattr(ensemble, "run_probes", real)
  done = tmp_path / "cut" / "runs" / "000_seed=0"
  kept = {p: p.read_bytes() for p in sorted(done.rglob("*")) if p.is_file()}
  with caplog.at_level("INFO"):
    rows = sweep.run_sweep(_config(), overrides, tmp_path / "cut", ensemble="on",
                           devices=jax.devices()[:1]).rows
  assert "continuing the ensemble of 3" in caplog.text and "(1 of its runs already done)" in caplog.text
  assert len(list((tmp_path / "cut" / "ensemble").iterdir())) == 1
  # The member done before the stop is not written to (a review saw a new TensorBoard file)
  assert {p: p.read_bytes() for p in sorted(done.rglob("*")) if p.is_file()} == kept
  assert all(r["status"] == "done" and r["ensemble_size"] == 3 for r in rows.values())
  for run in sorted((tmp_path / "whole" / "runs").iterdir()):
    for name in ("metrics.jsonl", "probes/icl_regression.json"):
      assert (tmp_path / "cut" / "runs" / run.name / name).read_text() == (run / name).read_text(), (
          run.name, name)


def test_a_deleted_members_run_is_trained_again_not_continued(tmp_path):
  """A finished ensemble member's folder deleted: the sweep trains it again (a review found
  the continued ensemble probing it from the stacked state: 'done', no metrics.jsonl, a
  summary of final_step alone). Control: the other members' files stay byte for byte."""
  overrides = [{"seed": s} for s in range(3)]
  sweep.run_sweep(_config(), overrides, tmp_path, ensemble="on", devices=jax.devices()[:1])
  runs = sorted((tmp_path / "runs").iterdir())
  kept = {p: p.read_bytes() for run in runs[::2] for p in sorted(run.rglob("*")) if p.is_file()}
  whole = json.loads((runs[1] / "summary.json").read_text())
  import shutil
  shutil.rmtree(runs[1])
  rows = sweep.run_sweep(_config(), overrides, tmp_path, ensemble="auto",
                         devices=jax.devices()[:1]).rows
  again = json.loads((runs[1] / "summary.json").read_text())
  assert rows[runs[1].name]["status"] == "done" and (runs[1] / "metrics.jsonl").is_file()
  assert again["final_loss"] == pytest.approx(whole["final_loss"], rel=1e-5)
  assert {p: p.read_bytes() for p in kept} == kept


def test_the_results_table_is_strict_json(tmp_path):
  """A frozen ensemble member's row carried its NaN loss into results.jsonl (not JSON; its
  summary.json says null), so the row differed by how it was made. Control: a finite one."""
  from research.sweep_results import Results
  results = Results(tmp_path / "results.jsonl")
  results.put({"run": "a", "status": "failed", "frozen_loss": float("nan"), "final": {"loss": 2.5}})

  def refuse(name):
    raise ValueError(name)
  [row] = [json.loads(l, parse_constant=refuse) for l in (tmp_path / "results.jsonl").read_text().splitlines()]
  assert row["frozen_loss"] is None and row["final"]["loss"] == 2.5
  assert results.rows["a"] == row


def test_an_experiments_repeated_point_is_refused_before_anything_is_written(tmp_path):
  """The duplicate check sat in `--sweep`'s loader only: a sweep an experiment builds in code
  (schaeffer2023 --sizes=0,00) trained the same run twice. Tuples and lists are one point, as
  results.jsonl reads them back. Control: the distinct points of the same call run."""
  with pytest.raises(InputError, match="the sweep gives point 0 and point 2 the same overrides"):
    sweep.run_sweep(_config(), [{"model.width": (8,)}, {"seed": 1}, {"model.width": [8]}],
                    tmp_path / "w", ensemble="off", devices=jax.devices()[:1])
  assert not (tmp_path / "w").exists()
  rows = sweep.run_sweep(_config(), [{"seed": 0}, {"seed": 1}], tmp_path / "w", ensemble="off",
                         devices=jax.devices()[:1]).rows
  assert len(rows) == 2
