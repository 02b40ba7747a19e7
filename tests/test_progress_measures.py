"""Nanda's progress measures as research/tasks/arithmetic_progress.py computes them, on a
hand-built embedding and logits (mutation audit 6C): the key frequencies' share of the
embedding's norm, and which pairs the restricted and excluded losses average over."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import grokking as grok_config
from research import tasks
from research.tasks import fourier


def _task():
  c = grok_config.get_config("tiny")
  return tasks.build(c.task, seed=0), c


def _embedding(p, amplitudes, width=16):
  """cos/sin columns of frequency f with amplitude amplitudes[f] (frequency norm a sqrt(p))."""
  x = np.arange(p)
  embed = np.zeros((p, width))
  for i, (f, a) in enumerate(amplitudes.items()):
    embed[:, 2 * i] = a * np.cos(2 * np.pi * f * x / p)
    embed[:, 2 * i + 1] = a * np.sin(2 * np.pi * f * x / p)
  return jnp.asarray(embed, jnp.float32)


def test_key_frequency_share_is_their_share_of_the_squared_norm():
  """Frequencies 1..5 (the 5 key frequencies) at amplitude 2, 9 and 10 at amplitude 1: the
  key frequencies hold 5 * 4 / (5 * 4 + 2) of the squared norm. Frequency f is norms_F[f - 1]
  (1-based frequencies, 0-based norms); norms_F[f] would read frequencies 2..6 (16 of 22)."""
  task, c = _task()
  p = task.p
  assert c.task.num_key_freqs == 5 and p > 20
  embed = _embedding(p, {1: 2.0, 2: 2.0, 3: 2.0, 4: 2.0, 5: 2.0, 9: 1.0, 10: 1.0})
  q = p * p
  out = task._fourier_measures(jnp.zeros((q, p)), jnp.zeros((q,), jnp.int32),
                               {"token_embed": {"embedding": embed}})
  assert sorted(int(out[f"key_freq_{i}"]) for i in range(5)) == [1, 2, 3, 4, 5]
  assert float(out["key_freq_share"]) == pytest.approx(20 / 22, abs=1e-4)


def test_excluded_loss_is_on_the_training_pairs_and_restricted_on_all():
  """Nanda's excluded loss (key frequencies removed) is measured on the training data: memorised
  training answers survive the removal, test answers do not, so averaging it over all p^2
  pairs mixes test loss into it. The restricted loss is over all pairs."""
  task, _ = _task()
  p = task.p
  rng = np.random.default_rng(0)
  q = p * p
  logits = jnp.asarray(rng.normal(size=(q, p)) * 3, jnp.float32)
  target = jnp.asarray(rng.integers(0, p, q), jnp.int32)
  embed = _embedding(p, {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0})
  out = task._fourier_measures(logits, target, {"token_embed": {"embedding": embed}})
  freqs = jnp.arange(1, 6)
  ce = lambda lg, idx: float(optax.softmax_cross_entropy_with_integer_labels(lg[idx], target[idx]).mean())
  train_idx = task.train_pairs[:, 0] * p + task.train_pairs[:, 1]
  assert 0 < len(train_idx) < q
  excluded = fourier.excluded_logits(logits, p, freqs)
  assert float(out["excluded_loss"]) == pytest.approx(ce(excluded, train_idx), rel=1e-5)
  assert ce(excluded, train_idx) != pytest.approx(ce(excluded, np.arange(q)), rel=1e-3)
  assert float(out["restricted_loss"]) == pytest.approx(
      ce(fourier.restricted_logits(logits, p, freqs), np.arange(q)), rel=1e-5)


def _split_aware_apply(task):
  """A stand-in model: at the answer position, logit 10 on (a + b) mod p for training pairs and
  on (a + b + 1) mod p for test pairs; zeros elsewhere."""
  p = task.p
  train_PxP = np.zeros((p, p), bool)
  train_PxP[task.train_pairs[:, 0], task.train_pairs[:, 1]] = True
  train_PxP = jnp.asarray(train_PxP)

  def apply(params, toks_QxT):
    a, b = toks_QxT[:, 0], toks_QxT[:, 1]
    guess = jnp.where(train_PxP[a, b], (a + b) % p, (a + b + 1) % p)
    logits = jnp.zeros(toks_QxT.shape + (task.vocab,))
    return logits.at[:, -1].set(10.0 * jax.nn.one_hot(guess, task.vocab))
  return apply


def test_evaluate_scores_each_split_on_its_own_pairs_and_fourier_on_the_answer_logits():
  """Zero-shot evaluate: one pass over the p^2 grid (row a * p + b), split by the task's pairs:
  a model right on exactly the training pairs scores train accuracy 1 and test accuracy 0, and
  the Fourier measures read the logits at the answer position (the last input)."""
  task, _ = _task()
  p = task.p
  embed = _embedding(p, {1: 2.0, 2: 2.0, 3: 2.0, 4: 2.0, 5: 2.0, 9: 1.0})
  params = {"token_embed": {"embedding": embed}}
  apply = _split_aware_apply(task)
  out = task._evaluate(apply, params, jax.random.key(0))
  assert float(out["train_accuracy"]) == 1.0 and float(out["test_accuracy"]) == 0.0
  grid = np.stack(np.meshgrid(np.arange(p), np.arange(p), indexing="ij"), -1).reshape(-1, 2)
  toks = np.concatenate([grid, np.full((p * p, 1), p), (grid.sum(1, keepdims=True) % p)], 1)
  logits = apply(params, jnp.asarray(toks[:, :-1]))
  want = task._fourier_measures(logits[:, -1, :p], jnp.asarray(toks[:, -1]), params)
  for name in ("restricted_loss", "excluded_loss"):
    assert float(out[name]) == pytest.approx(float(want[name]), rel=1e-5), name


def test_digit_tasks_evaluate_on_held_out_problems():
  """The logged accuracy of a digit task (every eval_every steps) is on held-out problems, like
  the modular tasks' test split: a model right on exactly the training problems scores 0."""
  from configs import arithmetic as arith_config
  c = arith_config.get_config("tiny")
  c.task.operation, c.task.num_digits, c.task.num_shots = "add", 2, 0
  task = tasks.build(c.task, seed=0)

  def right_on_training_problems(params, x):
    x = np.asarray(x)
    pairs = np.stack([x[:, 0] * 10 + x[:, 1], x[:, 3] * 10 + x[:, 4]], 1)
    targets = np.asarray(task._examples(None, 0, pairs))[:, 1:]
    held = np.asarray(task.is_held_out(jnp.asarray(x[:, :2]), jnp.asarray(x[:, 3:5])))
    guess = np.where(held[:, None], (targets + 1) % 10, targets)
    return jnp.asarray(10.0 * np.eye(task.vocab)[guess])
  out = task._evaluate(right_on_training_problems, {"w": jnp.ones(3)}, jax.random.key(0))
  assert float(out["exact_match"]) == 0.0 and float(out["token_accuracy"]) == 0.0
