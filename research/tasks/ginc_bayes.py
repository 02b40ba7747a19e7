"""Exact Bayesian references for GINC prompts (research/tasks/ginc.py's HMM family): the
forward algorithm, the pretraining mixture's posterior predictive and the ideal in-context
learner that knows the prompt format. numpy on the host; exact zeros of the transitions
are tracked (a prefix no hypothesis can emit has no posterior: an all-zero row).

Shape legend: B rows, T tokens, C concepts, H hypotheses, E entities, P properties,
V vocabulary, N prompts, X examples, K example length.
"""
from __future__ import annotations

import numpy as np

DELIMITER = 0  # memory[:, 0]: the word every property-0 state emits, '/'


def transition(alpha_BxCxExP, ent_ExE, prop_CxPxP):
  """One HMM step of a state distribution: entity and property chains are independent."""
  b, c, e, p = alpha_BxCxExP.shape
  # Two plain matmuls over flattened rows: numpy's broadcast matmul would loop over
  # B x C tiny 10 x 10 products.
  moved = (alpha_BxCxExP.transpose(0, 1, 3, 2).reshape(-1, e) @ ent_ExE).reshape(b, c, p, e)
  moved = moved.transpose(1, 0, 3, 2).reshape(c, b * e, p)  # (C, B*E', P)
  out = np.stack([moved[i] @ prop_CxPxP[i] for i in range(c)])  # (C, B*E', Q)
  return out.reshape(c, b, e, p).transpose(1, 0, 2, 3)


def forward(data, tokens_BxT: np.ndarray, concepts, start_CxExP):
  """Forward algorithm over equal-length rows: (log P(row | concept) (B, C), -inf where
  the concept cannot emit the row; P(next token | row, concept) (B, C, V), 0 there)."""
  memory_ExP = data["memory"]
  ent_ExE, prop_CxPxP = data["entity_trans"], data["property_trans"][list(concepts)]
  vocab = int(memory_ExP.max()) + 1
  emits_VxExP = np.arange(vocab)[:, None, None] == memory_ExP[None]
  logw = np.zeros((tokens_BxT.shape[0], len(concepts)))
  possible = np.ones(logw.shape, bool)  # exact zeros of Xie's transitions: tracked, not floored
  state = np.broadcast_to(start_CxExP, (tokens_BxT.shape[0], *start_CxExP.shape))
  for t in range(tokens_BxT.shape[1]):
    alpha = state * emits_VxExP[tokens_BxT[:, t]][:, None]
    norm = alpha.sum((2, 3))
    possible &= norm > 0
    norm = np.where(possible, norm, 1.0)  # an impossible concept's state stays 0
    logw = logw + np.log(norm)
    state = transition(alpha / norm[..., None, None], ent_ExE, prop_CxPxP)
  b, c = state.shape[:2]
  pred = (state.reshape(b * c, -1) @ emits_VxExP.reshape(vocab, -1).T).reshape(b, c, vocab)
  return np.where(possible, logw, -np.inf), pred


def posterior_mix(logw_BxH: np.ndarray, pred_BxHxV: np.ndarray) -> np.ndarray:
  """sum_h P(h | row) P(next | row, h) over hypotheses h with log-weights logw; an
  all-zero row where every hypothesis has probability 0 (the posterior is undefined)."""
  top = logw_BxH.max(1, keepdims=True)
  ok = np.isfinite(top[:, 0])
  w = np.zeros_like(logw_BxH)
  w[ok] = np.exp(logw_BxH[ok] - top[ok])
  w[ok] /= w[ok].sum(1, keepdims=True)
  return np.einsum("bh,bhv->bv", w, pred_BxHxV)


def bayes_next_token(data, tokens_BxT: np.ndarray, lengths_B: np.ndarray,
                     concepts, start_CxExP=None) -> np.ndarray:
  """Posterior predictive of the token after each sequence's prefix, (B, V).

  A uniform prior over `concepts`, each an HMM of this family with its own start
  distribution, run exactly over the whole prefix (delimiters included) by the
  forward algorithm, and the posterior-weighted next-token distribution.
  Rows of tokens_BxT are read up to lengths_B (>= 1 each). start_CxExP replaces
  the concepts' start distributions (Xie's prompt labels start at a known property).
  A row is all zeros where its prefix has probability 0 under every concept: the
  posterior is undefined there (`defined` tells the rows apart).
  """
  if start_CxExP is None:
    start_CxExP = data["start"][list(concepts)].reshape(len(concepts), *data["memory"].shape)
  out = np.zeros((tokens_BxT.shape[0], int(data["memory"].max()) + 1))
  for length in np.unique(lengths_B):  # one forward pass per prefix length
    rows = lengths_B == length
    out[rows] = posterior_mix(*forward(data, tokens_BxT[rows, :length], concepts,
                                         start_CxExP))
  return out


def defined(predictive_BxV: np.ndarray) -> np.ndarray:
  """Rows of a `bayes_next_token` result whose posterior exists (sum 1, not 0)."""
  return predictive_BxV.sum(-1) > 0.5


def ideal_next_token(data, prompts: list, n: int, k: int, concepts) -> np.ndarray:
  """The ideal in-context learner's predictive for the label, (num, V).

  Bayes over (concept, start property s_1) with a uniform prior, knowing the
  prompt format: the examples are independent walks of k tokens that start at s_1
  with a uniform entity, separated by delimiters (so, unlike the pretraining
  mixture's posterior, it does not read the delimiter transitions, which can have
  probability 0 under every concept). Its accuracy is the ceiling that more
  examples approach; with no example it reads the test input alone.
  """
  e, p = data["memory"].shape
  num = len(prompts)
  tail = np.full((num, 2), DELIMITER)  # the label's slot and the last delimiter
  tok_NxXxK = np.concatenate([np.asarray(prompts), tail], 1).reshape(num, n + 1, k + 1)[..., :k]
  examples = tok_NxXxK[:, :n].reshape(num * n, k)
  logw_s, pred_s = [], []
  for s1 in range(1, p):
    start = np.zeros((len(concepts), e, p))
    start[:, :, s1] = 1.0 / e
    lw_test, pred = forward(data, tok_NxXxK[:, n, :k - 1], concepts, start)
    if n:
      lw_ex, _ = forward(data, examples, concepts, start)
      lw_test = lw_test + lw_ex.reshape(num, n, -1).sum(1)
    logw_s.append(lw_test)
    pred_s.append(pred)
  logw, pred = np.stack(logw_s, 1), np.stack(pred_s, 1)  # (num, S, C), (num, S, C, V)
  return posterior_mix(logw.reshape(num, -1), pred.reshape(num, -1, pred.shape[-1]))
