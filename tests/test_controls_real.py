"""Untrained controls through the experiments' real code path (issue 14, rule 1): every config an
experiment builds takes experiments/common.forced_overrides last, and `reproduce --controls
--real_untrained` scores each claim on an untrained run of the experiment itself."""
import pytest

from configs import icl_regression, induction
from experiments import common, olsson2022
from experiments.claims import controls
from experiments.claims.rows import FAIL


def test_forced_overrides_reach_every_config_path_and_end_with_the_block():
  with common.forced_overrides(controls.UNTRAINED_RUN):
    assert common.make_config(icl_regression, "tiny", seed=2).optim.learning_rate == 1e-30
    c = common.seeded(induction.get_config("tiny"), 3)
    assert c.optim.learning_rate == 1e-30 and c.seed == 3
    assert common.forced() == controls.UNTRAINED_RUN
  # Negative control: outside the block the presets' own rates come back.
  assert common.make_config(icl_regression, "tiny").optim.learning_rate > 1e-6
  assert common.seeded(induction.get_config("tiny"), 0).optim.learning_rate > 1e-6
  assert common.forced() == {}


def test_real_untrained_controls_run_the_experiment_under_the_forced_rate(tmp_path, monkeypatch):
  calls = []

  def fake_run(preset, workdir, seed=0):  # what the experiment writes, without training
    calls.append((preset, seed, common.forced()))
    controls.olsson_untrained(workdir)

  monkeypatch.setattr(olsson2022, "run", fake_run)
  rows = controls.run_controls(tmp_path, ["olsson2022"], real_untrained=True)
  assert calls == [("tiny", 0, controls.UNTRAINED_RUN)] and common.forced() == {}
  assert {r["status"] for r in rows} == {FAIL}
  assert not [r for r in rows if r["control"].endswith(controls.HAND_BUILT)]  # all exercised
  assert (tmp_path / "untrained_model" / "olsson2022" / "run" / "olsson2022.json").is_file()
  calls.clear()  # without the flag, the hand-built files: the experiment never runs
  controls.run_controls(tmp_path / "b", ["olsson2022"])
  assert calls == []


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(controls.REAL_UNTRAINED))
def test_every_claim_fails_on_an_untrained_run_of_its_experiment(name, tmp_path):
  rows = controls.run_controls(tmp_path, [name], real_untrained=True)
  untrained = [r for r in rows if r["control"] == controls.REAL_UNTRAINED[name]]
  assert untrained and all(r["status"] == FAIL for r in rows), rows
  # What the tiny run does not exercise (a sweep only larger presets run) falls back to the
  # hand-built files, and says so.
  for r in rows:
    assert r["control"] in controls.CONTROLS[name] or r["control"].endswith(controls.HAND_BUILT)


def test_a_real_untrained_control_that_passes_a_claim_is_reported_not_replaced(
    tmp_path, monkeypatch):
  """An 'untrained' run whose files PASS a claim (here: a trained model's) is a defect the
  table must show as PASS on the real control; only a claim the tiny run does not exercise
  (neither PASS nor FAIL) falls back to the hand-built files."""
  from experiments.claims.rows import PASS
  monkeypatch.setattr(olsson2022, "run",
                      lambda preset, workdir, seed=0: controls.olsson_trained(workdir))
  rows = controls.run_controls(tmp_path, ["olsson2022"], real_untrained=True)
  passed = [r for r in rows if r["status"] == PASS]
  assert passed and {r["control"] for r in passed} == {controls.UNTRAINED}
  assert controls.report(rows)[1] is False


def test_forced_overrides_win_over_the_scripts_own_overrides():
  """The forced rate is applied LAST: a script's own override of the same field (a preset's
  tuned learning rate) does not undo the untrained control."""
  with common.forced_overrides(controls.UNTRAINED_RUN):
    c = common.make_config(icl_regression, "tiny", {"optim.learning_rate": 0.5}, seed=2)
  assert c.optim.learning_rate == 1e-30 and c.seed == 2
