"""Induction task: sampler statistics, eval schedule, tiny training run, ablation seam."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import experiment, train
from research.tasks import induction


def _cfg():
  from configs import induction as cfg_mod
  c = cfg_mod.get_config("tiny")
  c.mesh.data = 1
  c.train.compile_cache_dir = ""
  return c


def test_sampler_repeats_spans_and_repeated_set():
  c = _cfg()
  task = induction.InductionTask(c.task, c.seed)
  batch = task.sample(jax.random.key(1), 0, 64)
  tokens, copied = np.asarray(batch["tokens"]), np.asarray(batch["copied"])
  length, half, m = c.task.seq_len, c.task.seq_len // 2, c.task.span_len
  assert tokens.shape == (64, length) and tokens.min() >= 0 and tokens.max() < c.task.vocab_size
  assert not copied[:, :half].any()
  # Copied spans are whole spans, at roughly repeat_prob of the second half, and each
  # equals some span of the first half.
  frac = copied[:, half:].mean()
  assert abs(frac - c.task.repeat_prob) < 0.15
  for b in range(8):
    for start in range(half, length - m + 1, m):
      if copied[b, start]:
        span = tokens[b, start:start + m]
        assert any((tokens[b, s:s + m] == span).all() for s in range(half - m + 1))
  rep = np.asarray(task.sample(jax.random.key(2), 0, 4, source="repeated")["tokens"])
  np.testing.assert_array_equal(rep[:, :half], rep[:, half:])
  # Same key, same batch (pure); the Markov source follows the seed's bigram table.
  again = np.asarray(task.sample(jax.random.key(1), 5, 64)["tokens"])
  np.testing.assert_array_equal(tokens, again)


def test_markov_source_matches_its_bigram_table():
  c = _cfg()
  c.task.markov_scale, c.task.skip_scale = 3.0, 0.0  # first order: a bigram table
  task = induction.InductionTask(c.task, c.seed)
  toks = np.asarray(task.sample(jax.random.key(3), 0, 512, source="markov")["tokens"])
  v = c.task.vocab_size
  counts = np.zeros((v, v))
  np.add.at(counts, (toks[:, :-1].ravel(), toks[:, 1:].ravel()), 1)
  emp = counts / np.maximum(counts.sum(1, keepdims=True), 1)
  true = np.exp(np.asarray(jax.nn.log_softmax(task.logits1_VxV, -1)))
  rows = counts.sum(1) > 500
  assert np.abs(emp[rows] - true[rows]).max() < 0.08


def test_tiny_config_trains_and_logs_dense_scores(tmp_path):
  c = _cfg()
  summary = train.train_and_evaluate(c, str(tmp_path), devices=jax.devices()[:1])
  assert summary["final_step"] == c.train.num_steps
  rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  evals = [r for r in rows if "eval_icl_score" in r]
  assert [r["step"] for r in evals] == [10, 20]
  for key in ("eval_pm_L0H0", "eval_prev_L1H1", "eval_copy_L1H0", "eval_pm_max", "eval_loss"):
    assert np.isfinite(evals[-1][key]), key
  probe = json.loads((tmp_path / "probes" / "induction.json").read_text())
  assert len(probe["loss_per_position"]["train"]) == c.task.seq_len
  assert (tmp_path / "figures" / "induction.png").exists()


@pytest.mark.slow
def test_head_mask_ablates_in_eval():
  """Ablating every head changes the eval; an all-ones mask is the plain model."""
  c = _cfg()
  exp = experiment.Experiment(c, jax.devices()[:1])
  params = exp.init_state().params
  full = exp.task.eval_raw(exp, params)
  ones = exp.task.eval_raw(exp, params, jnp.ones((2, 2)))
  none = exp.task.eval_raw(exp, params, jnp.zeros((2, 2)))
  np.testing.assert_allclose(full["loss"], ones["loss"], rtol=1e-6)
  assert abs(float(full["loss"]) - float(none["loss"])) > 0


@pytest.mark.parametrize("preset", ["tiny", "cpu", "paper"])
def test_presets_validate_and_bad_fields_fail(preset):
  from configs import induction as cfg_mod
  from research import config_check
  config_check.validate(cfg_mod.get_config(preset), num_devices=8)
  bad = cfg_mod.get_config(preset)
  bad.task.span_len = bad.task.seq_len
  with pytest.raises(config_check.ConfigError, match="config.task.span_len"):
    config_check.validate(bad, num_devices=8)


def test_loss_copied_scores_the_copied_targets():
  """Logits right on every copied token only: loss_copied ~0 and loss_not_copied log V (the
  mask shifted by one passed a mutation audit unseen)."""
  from configs import induction as configs_induction
  c = configs_induction.get_config("tiny")
  task = induction.InductionTask(c.task, c.seed)
  batch = task.sample(jax.random.key(1), 0, 16)
  tokens, copied = np.asarray(batch["tokens"]), np.asarray(batch["copied"])
  assert copied.any()
  vocab = c.task.vocab_size
  logits = np.zeros(tokens.shape + (vocab,), np.float32)
  b, j = np.nonzero(copied)
  logits[b, j - 1, tokens[b, j]] = 100.0  # the logits at j - 1 predict token j
  _, aux = task.loss(jnp.asarray(logits), batch)
  assert float(aux["loss_copied"]) < 1e-3
  np.testing.assert_allclose(float(aux["loss_not_copied"]), np.log(vocab), rtol=1e-4)


def test_induction_figures_place_curves_and_windows_in_tokens_and_title_each_map(tmp_path,
                                                                                monkeypatch):
  """research/probes/plots.py (the Olsson figures), as handed to matplotlib: every curve's x is
  step x tokens_per_step, its window shaded over the same tokens; a head map's 'before' panel
  is titled with the window's start step and 'after' with its end step, the data as given."""
  from research.probes import plots
  figures = []
  monkeypatch.setattr(plots, "save_figure", lambda fig, out, **kw: figures.append(fig) or out)
  rows = [{"step": s, "loss": 3.0 - s / 100, "icl_score": -s / 100, "pm_max": s / 400}
          for s in (0, 100, 200)]
  runs = {"2": {"rows": rows, "window": {"start_step": 100, "end_step": 200}, "tokens_per_step": 64,
                "before": [[0.1, 0.2], [0.3, 0.4]], "after": [[0.5, 0.6], [0.7, 0.9]]}}
  plots.render_curves(runs, tmp_path / "c.png")
  for ax, key in zip(figures[0].axes, ("loss", "icl_score", "pm_max")):
    [line] = ax.get_lines()
    assert list(line.get_xdata()) == [0, 6400, 12800]
    assert list(line.get_ydata()) == [r[key] for r in rows]
    [span] = ax.patches
    assert (span.get_x(), span.get_x() + span.get_width()) == (6400, 12800)
  plots.render_head_maps(runs, tmp_path / "h.png")
  before, after = figures[1].axes[:2]
  assert before.get_title() == "2-layer, before (step 100)"
  assert after.get_title() == "2-layer, after (step 200)"
  np.testing.assert_array_equal(after.images[0].get_array(), [[0.5, 0.6], [0.7, 0.9]])
