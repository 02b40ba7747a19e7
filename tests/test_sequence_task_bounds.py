"""Where the synthetic sequence tasks draw their samples from, and the boundaries of their
config checks (mutation audit 6C): induction's copied spans and the repeated set's second-copy
loss, GINC's prompt start properties and window offsets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.tasks import ginc, induction
from research.tasks.fields import ConfigError


def _induction(**task):
  from configs import induction as cfg_mod
  c = cfg_mod.get_config("tiny")
  c.task.update(task)
  return induction.InductionTask(c.task, c.seed), c


def test_copied_spans_come_from_the_first_half_only():
  """A span of the second half is replaced by a copy of a span *of the first half*: with the
  base sequence 0..L-1 a copied token is its source position, so every copy is < L/2, and the
  last possible source span (starting at L/2 - m) is drawn. A source start up to L/2 - m + 1
  copied the second half's first token: a 'repeat' the model had not seen yet."""
  task, c = _induction(repeat_prob=1.0)
  length, m = c.task.seq_len, c.task.span_len
  half = length // 2
  base = jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (512, length))
  tokens, use = task._with_repeats(jax.random.key(0), base)
  tokens, use = np.asarray(tokens), np.asarray(use)
  assert use[:, half:half + m].all() and not use[:, :half].any()
  assert tokens[use].max() == half - 1  # a span ending at the last token of the first half
  starts = tokens[:, half::m][:, :(length - half) // m]
  assert set(starts.ravel().tolist()) == set(range(half - m + 1))


def test_span_len_may_be_a_quarter_of_seq_len():
  """'must be at most seq_len/4': span_len = seq_len // 4 is allowed, one more is not."""
  from configs import induction as cfg_mod
  c = cfg_mod.get_config("tiny")
  c.task.seq_len, c.task.span_len = 32, 8
  induction.InductionTask.check_config(c)
  c.task.span_len = 9
  with pytest.raises(ConfigError, match="span_len=9 must be at most seq_len/4 = 8"):
    induction.InductionTask.check_config(c)


def test_second_copy_loss_skips_the_unpredictable_first_token_of_the_copy():
  """On r_0..r_{T-1} r_0..r_{T-1} the second copy's first token (position T) follows r_{T-1},
  which nothing has followed before: no head can predict it. The second-copy loss averages
  positions T+1..2T-1 (the ones an induction head predicts), the first copy's 1..T-1."""
  task, c = _induction()
  length, half = task.seq_len, task.seq_len // 2
  lpp = jnp.zeros(length)
  rep = jnp.full(length, 3.0).at[half].set(1000.0).at[0].set(-1000.0)
  task.loss_per_position = lambda model, params, toks, head_mask: rep if toks is rep_toks else lpp
  task.attention_scores = lambda model, params, toks, head_mask: {"prefix": 0.0, "previous": 0.0}
  rep_toks = jnp.ones((1, length), jnp.int32)
  out = task._eval_impl(None, None, jnp.zeros((1, length), jnp.int32), rep_toks, None)
  assert float(out["repeated_loss_second_copy"]) == pytest.approx(3.0)
  assert float(out["repeated_loss_first_copy"]) == pytest.approx(3.0)


def test_ginc_windows_reach_the_end_of_each_document():
  """Window offsets 0 .. T - L, the last included: a document's last token is trained on."""
  task = ginc.GincTask.__new__(ginc.GincTask)
  task.seq_len = 4
  d, t = 3, 7
  task.corpus_DxT = jnp.asarray(np.arange(d * t, dtype=np.int32).reshape(d, t))
  tokens = np.asarray(task.sample(jax.random.key(0), 0, 3000)["tokens"])
  assert np.all(np.diff(tokens, axis=1) == 1)
  offsets = set((tokens[:, 0] % t).tolist())
  assert offsets == set(range(t - task.seq_len + 1))
