"""Progress measures of the arithmetic tasks, logged every `train.eval_every` steps: train/test
accuracy and loss, the weight norm and, for mod_add, Nanda et al.'s Fourier measures
(`fourier.py`). A mixin of research/tasks/arithmetic.py's ArithmeticTask: it reads the task's
splits (`train_pairs`, `test_pairs`), `_sequences` and `loss`.

Shape legend: Q = p^2 pairs, T tokens per sequence, V vocabulary, C logit classes, P numbers,
D embedding width, K key frequencies.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from research.tasks import fourier


class ProgressMeasures:
  """`evaluate(exp, params, key)` and the final embedding spectrum of an ArithmeticTask."""

  def evaluate(self, exp, params, key) -> dict:
    fn = self._eval_cache.get(id(exp))
    if fn is None:
      apply = lambda p, x: exp.model.apply({"params": p}, x, train=False)
      fn = self._eval_cache[id(exp)] = jax.jit(functools.partial(self._evaluate, apply))
    return fn(params, key)

  def _split_stats(self, apply, params, key, pairs=None, batch_size=0, held_out=False):
    toks = self._sequences(key, batch_size, pairs, held_out)
    return self.loss(apply(params, toks[:, :-1]), {"tokens": toks})

  def _evaluate(self, apply, params, key):
    out = {"weight_norm": optax.tree.norm(params)}
    if not self.modular:
      # Held-out problems, like the modular tasks' test split.
      loss, aux = self._split_stats(apply, params, key, batch_size=int(self.cfg.eval_problems),
                                    held_out=True)
      return out | {"loss": loss, "token_accuracy": aux["token_accuracy"],
                    "exact_match": aux["exact_match"]}
    splits = {"train": self.train_pairs, "test": self.test_pairs}
    if self.shots:  # each split with its own in-context examples
      for i, (name, pairs) in enumerate(splits.items()):
        if len(pairs):
          loss, aux = self._split_stats(apply, params, jax.random.fold_in(key, i), pairs)
          out |= {f"{name}_loss": loss, f"{name}_accuracy": aux["exact_match"]}
      return out
    # Zero-shot: one forward pass over all p^2 pairs (rows a * p + b) serves both splits
    # and the Fourier measures.
    p = self.p
    grid = np.stack(np.meshgrid(np.arange(p), np.arange(p), indexing="ij"), -1).reshape(-1, 2)
    toks_QxT = self._sequences(key, p * p, grid)
    logits_QxTxV = apply(params, toks_QxT[:, :-1])
    for name, pairs in splits.items():
      if len(pairs):
        idx = pairs[:, 0] * p + pairs[:, 1]
        loss, aux = self.loss(logits_QxTxV[idx], {"tokens": toks_QxT[idx]})
        out |= {f"{name}_loss": loss, f"{name}_accuracy": aux["exact_match"]}
    if self.op == "mod_add" and p % 2 == 1:
      out |= self._fourier_measures(logits_QxTxV[:, -1, :p], toks_QxT[:, -1], params)
    return out

  def _fourier_measures(self, logits_QxC, target_Q, params):
    """Restricted / excluded loss and key frequencies (Nanda et al. 2023)."""
    p = self.p
    logits_QxC = logits_QxC.astype(jnp.float32)
    embed_PxD = params["token_embed"]["embedding"][:p]
    num = int(self.cfg.num_key_freqs)
    if len(self.cfg.key_freqs):
      freqs_K = jnp.asarray(list(self.cfg.key_freqs), jnp.int32)
    else:
      freqs_K = fourier.key_frequencies(embed_PxD, num)
    norms_F = fourier.embedding_freq_norms(embed_PxD)
    ce = lambda lg, idx: optax.softmax_cross_entropy_with_integer_labels(lg[idx], target_Q[idx]).mean()
    all_idx = np.arange(p * p)
    train_idx = self.train_pairs[:, 0] * p + self.train_pairs[:, 1]
    out = {"restricted_loss": ce(fourier.restricted_logits(logits_QxC, p, freqs_K), all_idx),
           "excluded_loss": ce(fourier.excluded_logits(logits_QxC, p, freqs_K), train_idx),
           "key_freq_share": jnp.sum(norms_F[freqs_K - 1] ** 2) / jnp.sum(norms_F ** 2)}
    out |= {f"key_freq_{i}": freqs_K[i] for i in range(freqs_K.shape[0])}
    return out

  def embedding_spectrum(self, params) -> list[float]:
    """Final model's embedding norm per frequency 1..(p-1)/2 (for figures)."""
    return np.asarray(fourier.embedding_freq_norms(params["token_embed"]["embedding"][:self.p])).tolist()
