"""Sweeps whose points train as one vmapped ensemble: their rows, a failing member or a
failing ensemble recorded per member, and, stopped and rerun, what a rerun continues and what
it trains again (research/sweep.py, research/ensemble.py)."""
import json
from pathlib import Path

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
  from research import ensemble_members, preemption
  overrides = [{"seed": s} for s in range(3)]
  sweep.run_sweep(_config(), overrides, tmp_path / "whole", ensemble="on",
                  devices=jax.devices()[:1])
  real = ensemble_members.run_probes

  def stopped(exp, state, workdir):
    if "seed=1" in str(workdir):
      raise preemption.Preempted("preempted (SIGTERM) while probing ensemble member 1")
    return real(exp, state, workdir)
  monkeypatch.setattr(ensemble_members, "run_probes", stopped)
  with pytest.raises(preemption.Preempted):
    sweep.run_sweep(_config(), overrides, tmp_path / "cut", ensemble="on",
                    devices=jax.devices()[:1])
  monkeypatch.setattr(ensemble_members, "run_probes", real)
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


def test_an_ensembles_key_ignores_only_what_a_resume_may_change():
  """The stacked checkpoint's folder, ensemble/KEY: the same for a rerun that changes how long
  to train, the cadences or the probes (it resumes), another for other members, run names or
  base config (it must not resume from another training's state)."""
  names, members = ["000_seed=0", "001_seed=1"], [{"seed": 0}, {"seed": 1}]
  key = sweep._ensemble_key(_config(), names, members)
  assert len(key) == 12 and int(key, 16) >= 0
  for field, value in (("train.num_steps", 30), ("train.eval_every", 10), ("train.log_every", 5),
                       ("probe.num_prompts", 8), ("probe.bootstrap", 7)):
    c = _config()
    section, leaf = field.split(".")
    c[section][leaf] = value
    assert sweep._ensemble_key(c, names, members) == key, field
  for field, value in (("model.width", 48), ("optim.learning_rate", 0.5)):  # not the lr: the
    c = _config()                                         # stacked state holds each member's own
    section, leaf = field.split(".")
    c[section][leaf] = value
    assert sweep._ensemble_key(c, names, members) != key, field
  assert sweep._ensemble_key(_config(), names, [{"seed": 0}, {"seed": 2}]) != key
  assert sweep._ensemble_key(_config(), ["000_seed=0", "002_seed=1"], members) != key


def test_a_done_member_belongs_to_a_started_ensemble_only_at_its_size(tmp_path):
  """sweep._probed_by: a done member's summary must come from an ensemble of that size (one of
  another size is another training: continuing from the stacked state would mix them); a
  member to do needs its config.json and its metrics rows up to the end, or a frozen summary
  of that ensemble."""
  from research import workdir
  run = tmp_path / "run"
  run.mkdir()
  (run / workdir.SUMMARY).write_text(json.dumps({"final_step": 20, "ensemble_size": 3}))
  assert sweep._probed_by(run, 3, 20, done=True)
  assert not sweep._probed_by(run, 2, 20, done=True)
  (run / workdir.SUMMARY).write_text(json.dumps({"final_step": 20}))  # a solo run's
  assert not sweep._probed_by(run, 3, 20, done=True)
  todo = tmp_path / "todo"
  todo.mkdir()
  (todo / workdir.METRICS).write_text('{"step": 10}\n{"step": 20}\n')
  assert not sweep._probed_by(todo, 3, 20, done=False)  # no config.json: deleted since
  (todo / workdir.CONFIG).write_text("{}")
  assert sweep._probed_by(todo, 3, 20, done=False)
  (todo / workdir.METRICS).write_text('{"step": 10}\n')  # a solo attempt since: fewer rows
  assert not sweep._probed_by(todo, 3, 20, done=False)
  (todo / workdir.SUMMARY).write_text(json.dumps({"frozen": True, "ensemble_size": 3}))
  assert sweep._probed_by(todo, 3, 20, done=False)
  assert not sweep._probed_by(todo, 2, 20, done=False)


def test_a_single_point_left_trains_alone_not_as_an_ensemble_of_one(tmp_path):
  """--ensemble=auto with one point to train: a solo run (no ensemble/ folder, no
  ensemble_size in its summary), as research.main would train it."""
  rows = sweep.run_sweep(_config(), [{"seed": 0}], tmp_path, devices=jax.devices()[:1]).rows
  (row,) = rows.values()
  summary = json.loads((tmp_path / "runs" / row["run"] / "summary.json").read_text())
  assert row["status"] == "done" and summary["final_step"] == 20
  assert "ensemble_size" not in summary and not (tmp_path / "ensemble").exists()


def test_ensemble_rows_carry_final_metrics_and_a_failing_member_is_isolated(tmp_path,
                                                                            monkeypatch):
  from research import ensemble, ensemble_members
  real = ensemble_members.run_probes

  def probes(exp, state, workdir):
    if "seed=1" in str(workdir):
      raise RuntimeError("probe exploded")
    return real(exp, state, workdir)

  monkeypatch.setattr(ensemble_members, "run_probes", probes)
  overrides = [{"seed": s} for s in range(3)]
  rows = sweep.run_sweep(_config(), overrides, tmp_path, ensemble="on",
                         devices=jax.devices()[:1]).rows
  by_seed = {r["overrides"]["seed"]: r for r in rows.values()}
  assert [by_seed[s]["status"] for s in range(3)] == ["done", "failed", "done"]
  assert "probe exploded" in by_seed[1]["error"]
  for s in (0, 2):
    assert by_seed[s]["ensemble_size"] == 3
    assert by_seed[s]["num_non_embedding_params"] > 0
    assert set(by_seed[s]["final"]) >= {"loss", "ensemble_steps_per_s"}
  # The rerun retries the failed member alone; a finished ensemble restored without
  # training (killed before its rows were written) keeps its members' final metrics.
  monkeypatch.setattr(ensemble_members, "run_probes", real)
  dirs = [Path(by_seed[s]["dir"]) for s in range(3)]
  again = ensemble.train_ensemble(_config(), overrides, next((tmp_path / "ensemble").iterdir()),
                                  dirs, devices=jax.devices()[:1])
  assert [a["final_loss"] for a in again] == [by_seed[s]["final"]["loss"] for s in (0, 1, 2)]


def test_a_failing_ensemble_is_recorded_per_member(tmp_path, monkeypatch):
  from research import ensemble

  def boom(*args, **kwargs):
    raise MemoryError("out of device memory")

  monkeypatch.setattr(ensemble, "train_ensemble", boom)
  rows = sweep.run_sweep(_config(), [{"seed": 0}, {"seed": 1}], tmp_path, ensemble="on",
                         devices=jax.devices()[:1]).rows
  assert [r["status"] for r in rows.values()] == ["failed", "failed"]
  assert all("out of device memory" in r["error"] for r in rows.values())
