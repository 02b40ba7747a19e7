"""Fourier progress measures for modular addition (Nanda et al. 2023).

A model that has grokked a + b mod p embeds each number through a few "key"
frequencies w_k = 2 pi k / p and produces logits made of cos(w_k (a + b - c))
terms. Over the p x p grid of inputs, those logits live in the span of the
directions cos(w_k (a + b)) and sin(w_k (a + b)) (one pair per frequency,
orthogonal to each other and to the constant over the grid), so:

  restricted logits = per-class mean over pairs + the key-frequency components
                      (only the generalising algorithm; loss on all pairs)
  excluded logits   = logits - the key-frequency components
                      (everything but that algorithm; loss on training pairs)

Key frequencies are the k with the largest norm of the token embedding's
Fourier components (cos and sin together). The trainer evaluates these on the
current model, so early in training the "key" frequencies are simply the
largest ones at that point; `task.key_freqs` fixes them (e.g. to the final
model's, as Nanda et al. do) for a second pass. p must be odd so that every
frequency 1..(p-1)/2 has a cos and a sin direction.

Shape legend: P modulus, D width, Q = P*P input pairs, C output classes (>= P),
K key frequencies, F = (P-1)/2 frequencies.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def fourier_basis(p: int) -> jax.Array:
  """Orthonormal real Fourier basis over Z_p, rows [1, cos 1, sin 1, cos 2, sin 2, ...]."""
  x = jnp.arange(p, dtype=jnp.float32)
  rows = [jnp.ones((p,), jnp.float32)]
  for k in range(1, (p - 1) // 2 + 1):
    rows += [jnp.cos(2 * jnp.pi * k * x / p), jnp.sin(2 * jnp.pi * k * x / p)]
  basis_PxP = jnp.stack(rows)
  return basis_PxP / jnp.linalg.norm(basis_PxP, axis=1, keepdims=True)


def embedding_freq_norms(embed_PxD: jax.Array) -> jax.Array:
  """Norm of each frequency k = 1..F of the embedding table (cos and sin together)."""
  p = embed_PxD.shape[0]
  coeff_PxD = fourier_basis(p) @ embed_PxD.astype(jnp.float32)
  sq_F = jnp.sum(coeff_PxD[1:] ** 2, axis=-1).reshape(-1, 2).sum(-1)
  return jnp.sqrt(sq_F)


def key_frequencies(embed_PxD: jax.Array, num: int) -> jax.Array:
  """The `num` frequencies (1-based) with the largest embedding norm, largest first."""
  _, idx_K = jax.lax.top_k(embedding_freq_norms(embed_PxD), num)
  return idx_K + 1


def pair_directions(p: int, freqs_K: jax.Array) -> jax.Array:
  """Unit vectors cos(w_k(a+b)), sin(w_k(a+b)) over the grid, rows a*p + b: Q x 2K."""
  a = jnp.arange(p, dtype=jnp.float32)
  s_Q = (a[:, None] + a[None, :]).reshape(-1)
  angle_QxK = 2 * jnp.pi * s_Q[:, None] * freqs_K.astype(jnp.float32)[None] / p
  dirs_Qx2K = jnp.concatenate([jnp.cos(angle_QxK), jnp.sin(angle_QxK)], axis=1)
  return dirs_Qx2K / jnp.linalg.norm(dirs_Qx2K, axis=0, keepdims=True)


def key_components(logits_QxC: jax.Array, p: int, freqs_K: jax.Array) -> jax.Array:
  """Projection of the logits (as functions of the pair) onto the key directions."""
  dirs_Qx2K = pair_directions(p, freqs_K)
  return dirs_Qx2K @ (dirs_Qx2K.T @ logits_QxC)


def restricted_logits(logits_QxC, p: int, freqs_K) -> jax.Array:
  mean_1xC = jnp.mean(logits_QxC, axis=0, keepdims=True)
  return mean_1xC + key_components(logits_QxC, p, freqs_K)


def excluded_logits(logits_QxC, p: int, freqs_K) -> jax.Array:
  return logits_QxC - key_components(logits_QxC, p, freqs_K)
