"""Nanda's progress measures as research/tasks/arithmetic_progress.py computes them, on a
hand-built embedding and logits (mutation audit 6C): the key frequencies' share of the
embedding's norm, and which pairs the restricted and excluded losses average over."""

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
