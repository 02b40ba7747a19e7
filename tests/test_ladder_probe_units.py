"""research.probe_checkpoints without test_ladder_probe.py's trained run: a run of synthetic
ids has no text for few-shot prompts, the ICL score and its SE over windows on hand-made
losses, and Olsson's repeated sequences."""
import jax
import numpy as np
import pytest

from research import cli, config_check, probe_checkpoints, train
from research.errors import InputError
from test_ladder_probe import _rows


def test_a_synthetic_run_is_probed_without_few_shot_prompts_by_default(tmp_path, capsys,
                                                                       caplog):
  """A task.source='synthetic' run (the ladder's tiny and pod presets) has ids, no text: the
  command's default of 100 few-shot prompts was an AttributeError traceback (audit 39). Its
  held-out set was 4 windows, whatever --windows asked (a trial's ICL score of -0.104 +-
  0.039 on uniform ids, 2.7 standard errors from the 0 any model must score there): now the
  run's probe.eval_sequences (8 on tiny), and the console says the count and that the ids hold
  nothing to learn."""
  c = cli.load_config("configs/lm_ladder.py:tiny")
  c.train.compile_cache_dir, c.mesh.data, c.mesh.fsdp, c.mesh.tensor = "", 1, 1, 1
  c.train.num_steps, c.train.steps_per_call, c.train.log_every = 4, 2, 2
  c.optim.warmup_steps = 1
  c.train.eval_every, c.train.checkpoint_every = 0, 0
  config_check.validate(c, 1)
  train.train_and_evaluate(c, str(tmp_path / "run"), devices=jax.devices()[:1])
  with pytest.raises(InputError, match=r"--few_shot_prompts=5: --workdir=.* trained on "
                     r"task.source='synthetic' ids, .* pass --few_shot_prompts=0"):
    probe_checkpoints.probe_run(tmp_path / "run", few_shot_prompts=5)
  assert not (tmp_path / "run" / probe_checkpoints.OUT).exists()
  capsys.readouterr()
  assert probe_checkpoints.probe_run(tmp_path / "run", few_shot_prompts=None) == [4]
  row, = _rows(tmp_path / "run" / probe_checkpoints.OUT)
  assert row["few_shot_prompts"] == 0 and "few_shot" not in row and row["heads"]
  assert row["num_windows"] == c.probe.eval_sequences == 8
  out = capsys.readouterr().out
  assert "(token 31 minus token 3, 8 windows); top prefix-matching head L" in out, out
  assert "uniform random ids" in caplog.text and "not in-context learning" in caplog.text
  # More windows than the run holds: the rows say how many, and so does a warning.
  caplog.clear()
  probe_checkpoints.probe_run(tmp_path / "run", tmp_path / "many.jsonl", windows=1000,
                              few_shot_prompts=0)
  row, = _rows(tmp_path / "many.jsonl")
  assert row["num_windows"] == 256 and row["windows_asked"] == 1000
  assert "1000 held-out windows asked for, the run has 256" in caplog.text


def test_the_icl_scores_se_is_the_sample_std_over_windows():
  """Two windows with ICL scores 0 and -1: mean -0.5, sample SD 0.707, SE 0.5 (the population
  SD, 0.354, passed a mutation audit unseen)."""
  ce = np.zeros((2, 64))
  ce[1, 32:] = -1.0  # window 1: the late tokens (62 +- 1) lose 1 nat less than the early (6 +- 1)
  s = probe_checkpoints.icl_summary(ce)
  assert (s["early"], s["late"], s["half_window"]) == (6, 62, 1)
  assert s["icl_score"] == pytest.approx(-0.5) and s["icl_score_se"] == pytest.approx(0.5)


def test_the_icl_score_is_the_mean_over_windows():
  """Three windows scoring 0, 0 and -3: the score is their mean, -1 (the median, 0, and the
  sum, -3, are not what the rows claim), SE sd/sqrt(3) = sqrt(3)/sqrt(3) = 1."""
  ce = np.zeros((3, 64))
  ce[2, 32:] = -3.0
  s = probe_checkpoints.icl_summary(ce)
  assert s["icl_score"] == pytest.approx(-1.0) and s["icl_score_se"] == pytest.approx(1.0)


def test_repeated_windows_repeat_the_first_half_odd_lengths_too():
  """Olsson's repeated sequences: the first ceil(L / 2) tokens, then the first floor(L / 2)
  of them again; L = 7 gives [0..3] + [0..2], period 4."""
  class Task:
    seq_len = 7
    eval_windows = np.arange(40 * 8).reshape(40, 8)  # windows hold L + 1 tokens

  class Exp:
    task = Task()

  rep = probe_checkpoints.repeated_tokens(Exp(), num=2)
  assert rep.dtype == np.int32
  np.testing.assert_array_equal(rep, [[0, 1, 2, 3, 0, 1, 2], [8, 9, 10, 11, 8, 9, 10]])
  Task.seq_len = 6
  np.testing.assert_array_equal(probe_checkpoints.repeated_tokens(Exp(), num=1),
                                [[0, 1, 2, 0, 1, 2]])
