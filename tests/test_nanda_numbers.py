"""experiments/nanda2023.py's numbers on hand-made runs: its refusals, the summary's thresholds,
the replay of the main run's key frequencies, the weight-decay control, the scaled initial
checkpoint, and the verdicts it prints."""
import json
import types

import pytest

from experiments import common, nanda2023
from research.errors import InputError
from test_experiment_numbers import _verdicts_asked


def test_nanda_refuses_a_config_without_evaluations_before_training(tmp_path, monkeypatch):
  """Grokking is read off the evaluation rows: train.eval_every = 0 is refused (ValueError)
  before any run trains."""
  from research import train
  monkeypatch.setattr(train, "train_or_reuse", lambda *a: pytest.fail("trained"))
  monkeypatch.setattr(nanda2023, "write_scaled_init", lambda *a: pytest.fail("initialised"))
  with pytest.raises(ValueError, match="eval_every > 0"):
    nanda2023.run("tiny", tmp_path, overrides={"train.eval_every": 0})


def test_nanda_summary_thresholds_and_max():
  """First step with train accuracy >= 0.99 and test accuracy >= 0.95 (0.94 at step 20 is not
  yet), and the best test accuracy over every evaluation (the first included)."""
  from experiments import nanda2023
  rows = [{"step": 0, "train_accuracy": 0.5, "test_accuracy": 0.97, "weight_norm": 1.0},
          {"step": 10, "train_accuracy": 0.99, "test_accuracy": 0.1, "weight_norm": 1.0},
          {"step": 20, "train_accuracy": 1.0, "test_accuracy": 0.94, "weight_norm": 1.0},
          {"step": 30, "train_accuracy": 1.0, "test_accuracy": 0.95, "weight_norm": 1.0}]
  s = nanda2023.summarise_run(rows[1:], {}, [])
  assert (s["train_acc_099_step"], s["test_acc_095_step"], s["final_step"]) == (10, 30, 30)
  assert nanda2023.summarise_run(rows, {}, [])["max_test_accuracy"] == 0.97


def test_nanda_train_threshold_is_099_and_key_freqs_are_the_last_evaluations():
  """train accuracy 0.96 at step 5 is above the test threshold 0.95 but not the train one 0.99
  (first reached at step 10); the key frequencies are the final evaluation's (3, 7), not the
  first one's (1, 2)."""
  rows = [{"step": 5, "train_accuracy": 0.96, "test_accuracy": 0.1, "key_freq_0": 2,
           "key_freq_1": 1, "key_freq_share": 0.5},
          {"step": 10, "train_accuracy": 0.99, "test_accuracy": 0.2, "key_freq_0": 7,
           "key_freq_1": 3, "key_freq_share": 0.9}]
  s = nanda2023.summarise_run(rows, {}, [])
  assert (s["train_acc_099_step"], s["test_acc_095_step"]) == (10, None)
  assert s["final_key_freqs"] == [3, 7]


def test_nanda_replays_the_main_run_with_its_final_key_frequencies(tmp_path, monkeypatch):
  """The replay is of the weight-decay run (wd 1), not of the control (wd 0), and fixes the
  key frequencies of that run's LAST evaluation (5, 9), not its first (1, 2)."""
  from research import train
  from research.analysis import emergence_plots
  replayed, frozen = [], []
  monkeypatch.setattr(nanda2023, "write_scaled_init", lambda *a: None)
  monkeypatch.setattr(nanda2023, "final_spectrum", lambda *a: [])
  monkeypatch.setattr(nanda2023, "summarise_run", lambda *a: {
      "train_acc_099_step": None, "test_acc_095_step": None, "final": {"weight_norm": 1.0},
      "max_test_accuracy": 0.1, "final_key_freqs": [1], "final_step": 40})
  monkeypatch.setattr(train, "train_or_reuse", lambda config, w: frozen.append(
      (w, tuple(config.task.key_freqs))) or {})
  monkeypatch.setattr(common, "wall_times", lambda *a: {"wall_s": 1.0, "call_wall_s": 1.0})
  evals = [{"step": 10, "key_freq_0": 2, "key_freq_1": 1},
           {"step": 40, "key_freq_0": 9, "key_freq_1": 5}]
  monkeypatch.setattr(emergence_plots, "read_eval_rows", lambda path: replayed.append(
      path.parent.name) or evals)
  monkeypatch.setattr(emergence_plots, "render_grokking", lambda *a, **k: tmp_path / "g.png")
  _verdicts_asked(monkeypatch)
  nanda2023.run("tiny", tmp_path)
  assert (str(tmp_path / "wd_1_final_freqs"), (5, 9)) in frozen
  assert not any("wd_0_final" in w for w, _ in frozen)
  assert replayed[0] == "wd_1"  # the frequencies read off the wd 1 run


def test_nanda_control_trains_at_the_weight_decay_asked(tmp_path, monkeypatch):
  """--control_weight_decay=0.5: the control run is wd 0.5 in WORKDIR/wd_0.5 (not wd 0)."""
  from research import train
  from research.analysis import emergence_plots
  trained = []
  monkeypatch.setattr(nanda2023, "write_scaled_init", lambda *a: None)
  monkeypatch.setattr(nanda2023, "replay_with_final_freqs", lambda c, w: (w, {}))
  monkeypatch.setattr(nanda2023, "final_spectrum", lambda *a: [])
  monkeypatch.setattr(nanda2023, "summarise_run", lambda *a: {
      "train_acc_099_step": None, "test_acc_095_step": None, "final": {"weight_norm": 1.0},
      "max_test_accuracy": 0.1, "final_key_freqs": [1], "final_step": 40})
  monkeypatch.setattr(train, "train_or_reuse", lambda config, w: trained.append(
      (config.optim.weight_decay, w)) or {})
  monkeypatch.setattr(common, "wall_times", lambda *a: {"wall_s": 1.0, "call_wall_s": 1.0})
  monkeypatch.setattr(emergence_plots, "read_eval_rows", lambda *a: [])
  monkeypatch.setattr(emergence_plots, "render_grokking", lambda *a, **k: tmp_path / "g.png")
  _verdicts_asked(monkeypatch)
  nanda2023.run("tiny", tmp_path, control_weight_decay=0.5)
  assert trained == [(1.0, str(tmp_path / "wd_1")), (0.5, str(tmp_path / "wd_0.5"))]
  assert set(json.loads((tmp_path / "grokking.json").read_text())["runs"]) == {"wd=1", "wd=0.5"}


def test_nanda_says_never_for_a_threshold_not_reached(tmp_path, monkeypatch, capsys):
  """The console said "train acc >= 0.99 at step None" (Python's None to a user); a threshold
  not reached is "never (within N steps)" now, and grokking.json keeps null. Control: a run
  that reached one prints its step."""
  from research import train
  from research.analysis import emergence_plots
  steps = {"wd=1": (20, None), "wd=0": (None, None)}
  monkeypatch.setattr(nanda2023, "write_scaled_init", lambda *a: None)
  monkeypatch.setattr(nanda2023, "replay_with_final_freqs", lambda c, w: (w, {}))
  monkeypatch.setattr(nanda2023, "final_spectrum", lambda *a: [])
  monkeypatch.setattr(nanda2023, "summarise_run", lambda rows, times, spectrum: {
      "train_acc_099_step": steps[rows][0], "test_acc_095_step": steps[rows][1],
      "final": {"weight_norm": 1.0}, "max_test_accuracy": 0.1, "final_key_freqs": [1],
      "final_step": 40})
  monkeypatch.setattr(train, "train_or_reuse", lambda *a: {})
  monkeypatch.setattr(common, "wall_times", lambda *a: {"wall_s": 1.0, "call_wall_s": 1.0})
  monkeypatch.setattr(emergence_plots, "read_eval_rows", lambda path: "wd=1" if
                      path.parent.name == "wd_1" else "wd=0")
  monkeypatch.setattr(emergence_plots, "render_grokking", lambda *a, **k: tmp_path / "g.png")
  _verdicts_asked(monkeypatch)
  nanda2023.run("tiny", tmp_path)
  out = capsys.readouterr().out
  assert "wd=1: train acc >= 0.99 at step 20, test acc >= 0.95 never (within 40 steps) " in out
  assert "wd=0: train acc >= 0.99 never (within 40 steps), test acc >= 0.95 never" in out
  assert "None" not in out
  runs = json.loads((tmp_path / "grokking.json").read_text())["runs"]
  assert runs["wd=0"]["train_acc_099_step"] is None


@pytest.mark.parametrize("decay, needle", [
    (1.0, r"--control_weight_decay=1 is the run's own weight decay \(optim.weight_decay=1\), "
          r"so the control would be the same run; .* or pass --nocontrol"),
    (-1.0, r"--control_weight_decay=-1: config.optim.weight_decay=-1.0 must be non-negative"),
    (float("nan"), r"--control_weight_decay=nan: .* must be a finite number")])
def test_nanda_refuses_a_control_that_is_the_run_or_breaks_its_rules(tmp_path, monkeypatch,
                                                                      decay, needle):
  """The control at the run's own weight decay (tiny's is 1) trained nothing new: one folder,
  grokking.json held one run and the claim said NOT_SHOWN ('control not run'); a negative or
  NaN control trained unchecked (only the main run's config was validated). Each is an
  InputError (exit 2) before anything trains or the workdir is made. Control: the run
  alone (--nocontrol) is one config, accepted."""
  from research import train
  monkeypatch.setattr(train, "train_or_reuse", lambda *a: pytest.fail("trained"))
  monkeypatch.setattr(nanda2023, "write_scaled_init", lambda *a: pytest.fail("initialised"))
  with pytest.raises(InputError, match=needle):
    nanda2023.run("tiny", tmp_path / "w", control_weight_decay=decay)
  assert not (tmp_path / "w").exists()
  base = nanda2023.common.make_config(nanda2023.grokking_config, "tiny", None, 0)
  assert [c.optim.weight_decay for c in nanda2023._run_configs(base, [1.0])] == [1.0]


def test_nanda_scaled_init_never_overwrites_a_started_run(tmp_path, monkeypatch):
  """init_scale != 1 writes the step-0 checkpoint only into an empty run: a run with a
  checkpoint (resumed, or finished) keeps it; an empty one gets step 0."""
  from research import checkpoint as ckpt_lib
  from research import experiment
  saved, latest = [], [120]

  class FakeCheckpointer:
    def __init__(self, *a, **k):
      pass
    def latest_step(self):
      return latest[0]
    def save(self, step, state, meta):
      saved.append(step)
    def wait(self):
      pass
    def close(self):
      pass

  class FakeExperiment:
    def __init__(self, config):
      self.tx = types.SimpleNamespace(init=lambda params: None)
    def init_state(self):
      return types.SimpleNamespace(params={"w": 1.0}, replace=lambda **k: None)
  monkeypatch.setattr(ckpt_lib, "Checkpointer", FakeCheckpointer)
  monkeypatch.setattr(experiment, "Experiment", FakeExperiment)
  from configs import grokking
  config = grokking.get_config("tiny")
  config.init_scale = 4
  (tmp_path / "wd_1").mkdir()
  nanda2023.write_scaled_init(config, tmp_path / "wd_1")
  assert saved == []
  latest[0] = None  # control: an empty run gets its scaled step 0
  nanda2023.write_scaled_init(config, tmp_path / "wd_1")
  assert saved == [0]


def test_nanda_prints_the_scorers_verdicts_on_its_workdir(tmp_path, monkeypatch):
  from research import train
  from research.analysis import emergence_plots
  summary = {"train_acc_099_step": None, "test_acc_095_step": None, "final": {"weight_norm": 1.0},
             "max_test_accuracy": 0.1, "final_key_freqs": [1], "final_step": 40}
  monkeypatch.setattr(nanda2023, "write_scaled_init", lambda *a: None)
  monkeypatch.setattr(nanda2023, "replay_with_final_freqs", lambda c, w: (w, {}))
  monkeypatch.setattr(nanda2023, "final_spectrum", lambda *a: [])
  monkeypatch.setattr(nanda2023, "summarise_run", lambda *a: dict(summary))
  monkeypatch.setattr(train, "train_or_reuse", lambda *a: {})
  monkeypatch.setattr(common, "wall_times", lambda *a: {"wall_s": 1.0, "call_wall_s": 1.0})
  monkeypatch.setattr(emergence_plots, "read_eval_rows", lambda *a: [])
  monkeypatch.setattr(emergence_plots, "render_grokking", lambda *a, **k: tmp_path / "g.png")
  asked = _verdicts_asked(monkeypatch)
  nanda2023.run("tiny", tmp_path)
  assert set(json.loads((tmp_path / "grokking.json").read_text())["runs"]) == {"wd=1", "wd=0"}
  assert asked == [("nanda2023", tmp_path, "tiny")]
