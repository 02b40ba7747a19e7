"""Induction-head scores (Olsson et al. 2022) and phase-change detection.

Every score is a pure function of arrays, so tests check its definition on
hand-built attention patterns (a perfect induction pattern scores 1, uniform
causal attention about 1/t).

Shape legend: B batch, H heads, L sequence length (query x key), T length of
the repeated segment (L >= 2T), V vocabulary, S eval steps, N layers x heads.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np


# --- attention-pattern scores -------------------------------------------------
def prefix_matching_score(attn_BxHxLxL, period: int):
  """Per-head attention from a second-copy token to the token after its earlier copy.

  On random tokens r_0..r_{T-1} repeated (position i >= T holds r_{i-T}), an
  induction head at query i attends to key i - T + 1: the token that followed
  the earlier occurrence of the current token. Mean over queries i in [T, 2T)
  and the batch. Perfect induction: 1; uniform causal attention: mean 1/(i+1).
  """
  q = jnp.arange(period, 2 * period)
  return attn_BxHxLxL[:, :, q, q - period + 1].mean(axis=(0, 2))


def previous_token_score(attn_BxHxLxL):
  """Per-head attention from each query i >= 1 to key i - 1 (mean over i, batch)."""
  q = jnp.arange(1, attn_BxHxLxL.shape[-1])
  return attn_BxHxLxL[:, :, q, q - 1].mean(axis=(0, 2))


def uniform_prefix_baseline(period: int) -> float:
  """The prefix-matching score of uniform causal attention: mean of 1/(i+1), i in [T, 2T)."""
  return float(np.mean(1.0 / (np.arange(period, 2 * period) + 1)))


def copying_score(ov_VxV) -> float:
  """Olsson's copying score of an OV circuit: sum(eig) / sum(|eig|), in [-1, 1].

  ov_VxV[j, t] is the logit of token j written when the head attends fully to
  token t. Positive eigenvalues mean attending to a token raises that token's
  own logit (copying); the identity scores 1, its negative -1.
  """
  eig = np.linalg.eigvals(np.asarray(ov_VxV, np.float64))
  denom = np.abs(eig).sum()
  return float(eig.real.sum() / denom) if denom > 0 else 0.0


def copying_score_of_factors(left_VxK, right_KxV) -> float:
  """copying_score(left @ right) without the V x V product: a rank-K matrix's nonzero
  eigenvalues are those of right @ left (K x K), and its other V - K are 0, which add to
  neither sum."""
  return copying_score(np.asarray(right_KxV, np.float64) @ np.asarray(left_VxK, np.float64))


# --- loss-based scores ---------------------------------------------------------
def icl_positions(seq_len: int) -> tuple[int, int]:
  """Olsson's tokens 50 and 500 of a 512 context, scaled to `seq_len`."""
  early = max(1, round(seq_len * 50 / 512))
  late = min(seq_len - 1, round(seq_len * 500 / 512))
  return early, late


def icl_score(loss_per_position, early: int, late: int, half_window: int = 0):
  """Loss at token `late` minus loss at token `early` (negative: context helps).

  loss_per_position[j] is the loss of predicting token j (index 0 unused or
  absent: pass the (L,) array with j aligned to token positions). With
  half_window > 0, each loss is the mean over [p - w, p + w] (less noise).
  """
  lpp = jnp.asarray(loss_per_position)
  w = half_window
  lo = lpp[max(1, early - w):early + w + 1].mean()
  hi = lpp[late - w:min(lpp.shape[0], late + w + 1)].mean()
  return hi - lo


# --- phase change on a dense eval history ---------------------------------------
def steepest_drop(steps, values, window: int) -> dict:
  """The window of `window` consecutive eval intervals where `values` falls most.

  Returns {start_step, end_step, drop (value at start - value at end, > 0 for a
  fall), start_index, end_index}. Values are lightly smoothed (3-point median)
  so one noisy eval does not define the window.
  """
  v = np.asarray(values, np.float64)
  s = np.asarray(steps)
  if len(v) >= 3:
    padded = np.concatenate([v[:1], v, v[-1:]])
    v = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
  window = max(1, min(window, len(v) - 1))
  drops = v[:-window] - v[window:]
  i = int(np.argmax(drops))
  return {"start_step": int(s[i]), "end_step": int(s[i + window]), "drop": float(drops[i]),
          "start_index": i, "end_index": i + window}


def rising_heads(scores_SxN, start: int, end: int, names, *, min_rise: float = 0.1,
                 top: int = 0) -> list[dict]:
  """Heads whose score rises by >= min_rise between eval indices start and end.

  Sorted by rise, largest first; `top` > 0 keeps at most that many (but at
  least the largest riser, if any rises at all).
  """
  s = np.asarray(scores_SxN, np.float64)
  rise = s[end] - s[start]
  order = np.argsort(-rise)
  out = [{"head": names[j], "rise": float(rise[j]), "before": float(s[start, j]),
          "after": float(s[end, j])} for j in order if rise[j] >= min_rise]
  return out[:top] if top else out


def parse_head(name: str) -> tuple[int, int]:
  """'L1H3' -> (1, 3)."""
  layer, head = name[1:].split("H")
  return int(layer), int(head)


def head_mask(num_layers: int, num_heads: int, ablate) -> np.ndarray:
  """(layers, heads) multipliers: 0 for the heads named in `ablate`, else 1."""
  mask = np.ones((num_layers, num_heads), np.float32)
  for name in ablate:
    layer, head = parse_head(name)
    mask[layer, head] = 0.0
  return mask
