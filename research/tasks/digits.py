"""Digit arithmetic on token arrays: the vocabulary of the digit tasks, the hash that picks
their held-out problems, and exact multi-digit sums and products (research/tasks/arithmetic.py).

Shape legend: B batch, N digits per operand.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

PLUS, TIMES, EQUALS, SEP = 10, 11, 12, 13  # tokens after the digits 0-9
DIGIT_VOCAB = 14


def pair_hash(a_BxN, b_BxN):
  """A fixed 32-bit hash of the operand digits (FNV-1a, then murmur3's finaliser so
  that every bit depends on every digit). Independent of the seed: every run and
  model size holds out the same problems."""
  h = jnp.full(a_BxN.shape[:1], 2166136261, jnp.uint32)
  for d_B in jnp.concatenate([a_BxN, b_BxN], axis=1).T:
    h = (h ^ d_B.astype(jnp.uint32)) * jnp.uint32(16777619)
  h = (h ^ (h >> 16)) * jnp.uint32(0x85EBCA6B)
  h = (h ^ (h >> 13)) * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


def int_digits(x_B, n: int):
  """Integers (< 10^n) -> n MSB-first digits."""
  return (np.asarray(x_B)[:, None] // 10 ** np.arange(n - 1, -1, -1)) % 10


def _digits_lsb(x_BxN):
  """Most-significant-first digits -> least-significant-first."""
  return x_BxN[:, ::-1]


def add_digits(a_BxN, b_BxN):
  """Sum of two MSB-first digit arrays as N+1 LSB-first digits (no integer overflow)."""
  a, b = _digits_lsb(a_BxN), _digits_lsb(b_BxN)
  carry, out = jnp.zeros_like(a[:, 0]), []
  for i in range(a.shape[1]):
    s = a[:, i] + b[:, i] + carry
    out.append(s % 10)
    carry = s // 10
  return jnp.stack(out + [carry], axis=1)


def mul_digits(a_BxN, b_BxN):
  """Schoolbook product of two MSB-first digit arrays as 2N LSB-first digits."""
  a, b = _digits_lsb(a_BxN), _digits_lsb(b_BxN)
  n = a.shape[1]
  outer_BxNxN = a[:, :, None] * b[:, None, :]
  cols = [sum(outer_BxNxN[:, i, k - i] for i in range(max(0, k - n + 1), min(k, n - 1) + 1))
          for k in range(2 * n - 1)] + [jnp.zeros_like(a[:, 0])]
  carry, out = jnp.zeros_like(a[:, 0]), []
  for col in cols:
    s = col + carry
    out.append(s % 10)
    carry = s // 10
  return jnp.stack(out, axis=1)
