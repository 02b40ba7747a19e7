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


def _transition_frequencies(task, lag: int, logits_VxV):
  """Markov samples' frequency of token j given token j - lag, the table's softmax, and the
  rows seen often enough (> 500 times) to compare."""
  toks = np.asarray(task.sample(jax.random.key(3), 0, 512, source="markov")["tokens"])
  v = task.cfg.vocab_size
  counts = np.zeros((v, v))
  np.add.at(counts, (toks[:, :-lag].ravel(), toks[:, lag:].ravel()), 1)
  emp = counts / np.maximum(counts.sum(1, keepdims=True), 1)
  true = np.exp(np.asarray(jax.nn.log_softmax(logits_VxV, -1)))
  return emp, true, counts.sum(1) > 500


def test_markov_source_matches_its_bigram_table():
  c = _cfg()
  c.task.markov_scale, c.task.skip_scale = 3.0, 0.0  # first order: a bigram table
  task = induction.InductionTask(c.task, c.seed)
  emp, true, rows = _transition_frequencies(task, lag=1, logits_VxV=task.logits1_VxV)
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


# --- what the sampler draws and the eval averages -----------------------------------------
def test_skip_bigram_term_reads_the_token_two_back():
  """skip_scale only (markov_scale 0): token j is drawn from softmax(logits2[token j - 2]),
  independent of token j - 1 (the two tables swapped read the wrong token)."""
  c = _cfg()
  c.task.markov_scale, c.task.skip_scale = 0.0, 3.0
  task = induction.InductionTask(c.task, c.seed)
  emp, true, rows = _transition_frequencies(task, lag=2, logits_VxV=task.logits2_VxV)
  assert rows.any() and np.abs(emp[rows] - true[rows]).max() < 0.08


def test_repeated_tokens_are_distinct_when_half_the_length_equals_the_vocabulary():
  """tiny: L/2 = 16 = V, so each first half is a permutation of the vocabulary (one match per
  token, Olsson's setting), not 16 draws with repeats."""
  c = _cfg()
  task = induction.InductionTask(c.task, c.seed)
  assert c.task.seq_len // 2 == c.task.vocab_size
  rep = np.asarray(task.sample(jax.random.key(2), 0, 32, source="repeated")["tokens"])
  for row in rep[:, :c.task.seq_len // 2]:
    assert sorted(row.tolist()) == list(range(c.task.vocab_size))


class _UniformModel:
  """Uniform logits and uniform causal attention (one layer, one head)."""

  def __init__(self, vocab):
    self.vocab = vocab

  def apply(self, variables, tokens_BxL, head_mask=None, mutable=None):
    b, length = tokens_BxL.shape
    logits = jnp.zeros((b, length, self.vocab))
    if mutable is None:
      return logits
    causal = jnp.tril(jnp.ones((length, length)))
    attn = jnp.broadcast_to(causal / causal.sum(1, keepdims=True), (b, 1, length, length))
    return logits, {"intermediates": {"block_0": {"attention": (attn,)}}}


def test_eval_losses_average_over_predicted_tokens_only():
  """Uniform logits: every predicted token costs log V, so the eval loss and both copies' losses
  are log V; column 0 (token 0 is never predicted, loss 0) must not dilute them."""
  c = _cfg()
  task = induction.InductionTask(c.task, c.seed)
  tokens, rep = task.eval_sets()
  out = task._eval_impl(_UniformModel(c.task.vocab_size), {}, tokens, rep, None)
  log_v = np.log(c.task.vocab_size)
  for name in ("loss", "repeated_loss_first_copy", "repeated_loss_second_copy"):
    assert float(out[name]) == pytest.approx(log_v, rel=1e-5), name


def test_probe_loss_per_position_averages_exactly_num_sequences():
  """10 sequences in batches of 4 (4 + 4 + 2): uniform logits give log V at every predicted
  position of both curves, 0 at position 0 (a last batch of 4 would read 1.2 log V)."""
  c = _cfg()
  task = induction.InductionTask(c.task, c.seed)
  c.probe.num_sequences, c.probe.batch_size = 10, 4
  model = _UniformModel(c.task.vocab_size)
  res = task.probe(lambda t: model.apply({}, t), jax.random.key(0), c.probe, step=0)["induction"]
  log_v = np.log(c.task.vocab_size)
  for source, curve in res["loss_per_position"].items():
    np.testing.assert_allclose(curve, [0.0] + [log_v] * (c.task.seq_len - 1), rtol=1e-6,
                               err_msg=source)


def test_copied_spans_cover_whole_spans_and_nothing_past_the_last():
  """L = 34, spans of 4, repeat_prob 1: the second half [17, 34) holds c = 4 whole spans,
  positions 17..32, each a copy of 4 consecutive first-half tokens; position 33 is left
  alone (not a 5th token of the last span's source, nor marked copied)."""
  c = _cfg()
  c.task.seq_len, c.task.span_len, c.task.repeat_prob = 34, 4, 1.0
  task = induction.InductionTask(c.task, c.seed)
  key = jax.random.key(4)
  batch = task.sample(key, 0, 32)
  copied = np.asarray(batch["copied"])
  np.testing.assert_array_equal(copied, np.broadcast_to(
      (np.arange(34) >= 17) & (np.arange(34) < 33), copied.shape))
  base = np.asarray(task._markov(jax.random.split(key)[0], 32))
  tokens = np.asarray(batch["tokens"])
  np.testing.assert_array_equal(tokens[:, 33], base[:, 33])
  for row in tokens:
    for start in range(17, 33, 4):
      assert any((row[s:s + 4] == row[start:start + 4]).all() for s in range(17 - 4 + 1))


def test_repeated_sequences_mark_the_whole_second_copy_as_copied():
  """Position L/2 onwards holds a copy of the token L/2 earlier, position L/2 (r_0's copy)
  included: `copied` is exactly those positions."""
  c = _cfg()
  task = induction.InductionTask(c.task, c.seed)
  batch = task.sample(jax.random.key(2), 0, 4, source="repeated")
  tokens, copied = np.asarray(batch["tokens"]), np.asarray(batch["copied"])
  half = c.task.seq_len // 2
  np.testing.assert_array_equal(copied[0], np.arange(c.task.seq_len) >= half)
  np.testing.assert_array_equal(tokens[:, half:][:, :half], tokens[:, :half])


class _LearningModel:
  """Logit 0.2 j on the true next token at position j (uniform otherwise): the loss falls with
  the position, as in-context learning makes it."""

  def __init__(self, vocab):
    self.vocab = vocab

  def __call__(self, tokens_BxL):
    b, length = tokens_BxL.shape
    nxt = jnp.concatenate([tokens_BxL[:, 1:], tokens_BxL[:, -1:]], 1)
    return 0.2 * jnp.arange(length)[None, :, None] * jax.nn.one_hot(nxt, self.vocab)


def test_probe_icl_score_is_late_minus_early_loss():
  """Olsson's ICL score: loss at the late token minus loss at the early one, negative when the
  context helps (here the loss falls with the position)."""
  c = _cfg()
  task = induction.InductionTask(c.task, c.seed)
  res = task.probe(_LearningModel(c.task.vocab_size), jax.random.key(0), c.probe,
                   step=0)["induction"]
  lpp = np.asarray(res["loss_per_position"]["train"])
  hw = task.half_window
  want = lpp[task.late - hw:task.late + hw + 1].mean() - lpp[task.early - hw:task.early + hw + 1].mean()
  assert want < -0.5
  assert res["icl_score"] == pytest.approx(want, rel=1e-6)


def test_markov_sequences_start_anywhere_in_the_vocabulary():
  """The first two tokens are uniform over all V = 16 ids, the last one included."""
  c = _cfg()
  task = induction.InductionTask(c.task, c.seed)
  toks = np.asarray(task.sample(jax.random.key(0), 0, 512, source="markov")["tokens"])
  assert set(toks[:, 0].tolist()) == set(toks[:, 1].tolist()) == set(range(c.task.vocab_size))
