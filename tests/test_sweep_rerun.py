"""A finished sweep run again: a run whose record was damaged is run again, a longer
num_steps extends its runs as research.main's rerun extends a run (research/sweep.py)."""
import json

import jax
import pytest

from research import sweep, sweep_rundirs
from research.errors import InputError
from test_sweep import _config


def test_a_finished_runs_damaged_record_is_run_again_by_the_sweep(tmp_path, caplog):
  """A finished run's summary.json torn, or a probe file of it: research.results refused the
  run ('rerun that run') while the sweep's rerun skipped it as done, the file left broken.
  Now the sweep runs it again from its final checkpoint (nothing retrained: the same
  numbers). Control: the intact run is skipped, its row untouched."""
  overrides = [{"seed": s} for s in range(3)]
  first = sweep.run_sweep(_config(), overrides, tmp_path, ensemble="off",
                          devices=jax.devices()[:1]).rows
  runs = sorted((tmp_path / "runs").iterdir())
  (runs[0] / "summary.json").write_text('{"final_step": 2')
  (runs[1] / "probes" / "icl_regression.json").write_text("")
  with caplog.at_level("WARNING"):
    again = sweep.run_sweep(_config(), overrides, tmp_path, ensemble="off",
                            devices=jax.devices()[:1]).rows
  assert f"has no readable {runs[0] / 'summary.json'}" in caplog.text
  assert f"has no readable probe file {runs[1] / 'probes' / 'icl_regression.json'}" in caplog.text
  for run in runs[:2]:
    summary = json.loads((run / "summary.json").read_text())
    assert json.loads((run / "probes" / "icl_regression.json").read_text())["summary"]
    assert summary["final_loss"] == first[run.name]["final"]["loss"]
  assert again[runs[2].name] == first[runs[2].name]


@pytest.mark.parametrize("ensemble", ["off", "on"])
def test_a_longer_num_steps_extends_a_finished_sweep(tmp_path, ensemble, caplog):
  """research.main's rerun with a larger train.num_steps trains a finished run on; the sweep
  refused it ('a finished run of another config ... delete that run directory'). Now its
  runs continue from their checkpoints (an ensemble as one: one folder), the change recorded
  in each run's config_changes.jsonl. Control: a shorter num_steps is still refused."""
  overrides = [{"seed": s} for s in range(2)]
  sweep.run_sweep(_config(), overrides, tmp_path, ensemble=ensemble, devices=jax.devices()[:1])
  longer = _config()
  longer.train.num_steps = 30
  with caplog.at_level("INFO"):
    rows = sweep.run_sweep(longer, overrides, tmp_path, ensemble=ensemble,
                           devices=jax.devices()[:1]).rows
  assert "continues (train.num_steps: 20 -> 30)" in caplog.text
  for row in rows.values():
    summary = json.loads((tmp_path / "runs" / row["run"] / "summary.json").read_text())
    assert row["status"] == "done" and summary["final_step"] == 30
    steps = [json.loads(l)["step"] for l in (tmp_path / "runs" / row["run"] / "metrics.jsonl")
             .read_text().splitlines()]
    assert max(steps) == 30 and steps.count(20) >= 1  # trained on, not again from 0
  if ensemble == "on":
    assert len(list((tmp_path / "ensemble").iterdir())) == 1
  shorter = _config()
  shorter.train.num_steps = 15
  # Every run it concerns in one line (it named the first; deleting that met the next).
  with pytest.raises(InputError, match=r"holds a finished run of another config "
                     r"\(train.num_steps: 30 -> 15\), and so does 1 more of this sweep's run "
                     r"directories \(001_seed=1\); use another --workdir for these settings, "
                     r"or delete those 2 run directories to retrain them"):
    sweep.run_sweep(shorter, overrides, tmp_path, ensemble=ensemble, devices=jax.devices()[:1])


def test_only_a_longer_num_steps_extends_a_finished_run(tmp_path):
  """sweep_rundirs.extends: a finished run continues only for a larger train.num_steps (with other
  fields a finished run may take); at the same num_steps another eval cadence is no extension
  (the finished run's config check refuses it), nor is a longer run of another learning rate."""
  from research import workdir
  run = tmp_path / "run"
  run.mkdir()
  (run / workdir.CONFIG).write_text(workdir.config_json(_config()))  # 20 steps
  def config(**fields):
    c = _config()
    for key, value in fields.items():
      section, field = key.split(".")
      c[section][field] = value
    return c
  every = _config().train.eval_every + 10
  assert sweep_rundirs.extends(run, config(**{"train.num_steps": 30})) == ["train.num_steps: 20 -> 30"]
  assert sweep_rundirs.extends(run, config(**{"train.num_steps": 30, "train.eval_every": every})) == [
      f"train.eval_every: {every - 10} -> {every}", "train.num_steps: 20 -> 30"]
  assert sweep_rundirs.extends(run, config(**{"train.eval_every": every})) is None
  assert sweep_rundirs.extends(run, _config()) is None
  assert sweep_rundirs.extends(run, config(**{"train.num_steps": 30, "optim.learning_rate": 0.5})) is None
  with pytest.raises(InputError, match=r"holds a finished run of another config \(train.eval_every"):
    sweep_rundirs.check_same_runs([(run, True, config(**{"train.eval_every": every}))])


def test_a_summarised_run_without_its_row_and_with_a_torn_probe_is_run_again(tmp_path, caplog):
  """A sweep killed between a run's summary.json and its row: the rerun records the row from
  the summary, but only when the run's record is whole; with a probe file torn since it is
  run again from its final checkpoint (re-probed), not recorded with the broken file."""
  overrides = [{"seed": 0}]
  first = sweep.run_sweep(_config(), overrides, tmp_path, ensemble="off",
                          devices=jax.devices()[:1]).rows
  (name,) = first
  probe = tmp_path / "runs" / name / "probes" / "icl_regression.json"
  (tmp_path / "results.jsonl").write_text("")  # the row never written
  probe.write_text("")
  with caplog.at_level("WARNING"):
    again = sweep.run_sweep(_config(), overrides, tmp_path, ensemble="off",
                            devices=jax.devices()[:1]).rows
  assert f"has no readable probe file {probe}" in caplog.text
  assert json.loads(probe.read_text())["summary"]
  assert again[name]["status"] == "done"
  assert again[name]["final"]["loss"] == first[name]["final"]["loss"]


def test_a_runs_damaged_config_is_refused_with_the_sweeps_fix(tmp_path, monkeypatch):
  """A run's torn config.json stopped the sweep's rerun with research.main's fix (a new
  --workdir, --config.init_from), which a sweep cannot take; it names the sweep's now, before
  any row changes. Control: the same file given to research.main's check names init_from."""
  from research import workdir
  from test_sweep import fake_training
  fake_training(monkeypatch)
  overrides = [{"seed": s} for s in range(2)]
  sweep.run_sweep(_config(), overrides, tmp_path, ensemble="off", devices=jax.devices()[:1])
  run = sorted((tmp_path / "runs").iterdir())[1]
  (run / "config.json").write_text('{"task": {"name": "icl_regression"},\n oops')
  rows = (tmp_path / "results.jsonl").read_bytes()
  with pytest.raises(InputError, match=rf"{run / 'config.json'} does not hold a config .*; put "
                     rf"the run's config.json back, or delete {run} for the sweep to train that "
                     r"point again$"):
    sweep.run_sweep(_config(), overrides, tmp_path, ensemble="off", devices=jax.devices()[:1])
  assert (tmp_path / "results.jsonl").read_bytes() == rows
  with pytest.raises(InputError, match="init_from"):
    workdir.saved_config(run)
