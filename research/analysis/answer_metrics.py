"""Per-problem answer metrics and their intervals (Schaeffer et al. 2023): the arithmetic task
and the few-shot probes score generated answers with them.

Each metric is first computed per problem, then averaged over problems with a
95% interval, so that the numbers for every model size come from the same
evaluation problems and small-model accuracies are resolved:

  exact_match      1 if the greedy (autoregressive) answer equals the target.
                   Interval: Wilson score (stays informative at 0 or 1 hits).
  token_accuracy   fraction of answer tokens whose teacher-forced argmax (given
                   the true prefix) is the target: the per-token p in p^L.
  edit_distance    token-level Levenshtein distance between the greedy answer
                   and the target (0 = exact; at most the answer length).
  log_likelihood   sum (not mean) over answer tokens of log p(target | true
                   prefix), nats.
  brier            mean over answer tokens of sum_v (p_v - 1[v = target])^2,
                   over the full vocabulary (0 = perfect, 2 = worst).
Continuous metrics get percentile-bootstrap 95% intervals over problems.

Chance (`chance_levels`) is the best a predictor can do that ignores the input
and knows only the answers' distribution: a model that learned the output
statistics alone. Answer digits are far from uniform (a 3-digit sum starts with
0 or 1), so a uniform guesser would set chance too low for the continuous
metrics and flag such a model as above chance on them but not on exact match.

Shape legend: N problems, M answer tokens, V vocabulary.
"""
from __future__ import annotations

import math

import numpy as np

METRICS = ("exact_match", "token_accuracy", "edit_distance", "log_likelihood", "brier")
DEFINITIONS = {
    "exact_match": "1 if the greedy (autoregressive) answer equals the target, else 0",
    "token_accuracy": "fraction of answer tokens whose teacher-forced argmax is the target",
    "edit_distance": "token Levenshtein distance from the greedy answer to the target",
    "log_likelihood": "nats, summed over the answer tokens (teacher-forced), not per token",
    "brier": "mean over answer tokens of sum over the vocabulary of (p_v - 1[v = target])^2"}
# What `chance_levels` computes, per metric (p_j: the marginal distribution of answer
# position j's symbol over the evaluated problems).
CHANCE_DEFINITIONS = {
    "exact_match": "probability of the most likely answer (the mode of the joint answer "
                   "distribution): always answering it",
    "token_accuracy": "mean over positions j of max_d p_j(d): always predicting each "
                      "position's most frequent symbol",
    "edit_distance": "expected edit distance of the per-position argmax string to the answer",
    "log_likelihood": "sum over positions j of sum_d p_j(d) log p_j(d): predicting p_j at "
                      "every position j (the best input-independent per-token predictor)",
    "brier": "mean over positions j of 1 - sum_d p_j(d)^2: predicting p_j at position j"}
CHANCE_TEXT = "chance = the best input-independent predictor (answer statistics only)"
HIGHER_IS_BETTER = {"exact_match": True, "token_accuracy": True, "edit_distance": False,
                    "log_likelihood": True, "brier": False}
Z95 = 1.959963984540054


def edit_distance(pred_NxM: np.ndarray, target_NxM: np.ndarray) -> np.ndarray:
  """Levenshtein distance per row (insert / delete / substitute cost 1), vectorised."""
  pred_NxM, target_NxM = np.asarray(pred_NxM), np.asarray(target_NxM)
  n, m_p = pred_NxM.shape
  m_t = target_NxM.shape[1]
  prev_NxT = np.tile(np.arange(m_t + 1), (n, 1))
  for i in range(1, m_p + 1):
    cur_NxT = np.empty_like(prev_NxT)
    cur_NxT[:, 0] = i
    for j in range(1, m_t + 1):
      sub = prev_NxT[:, j - 1] + (pred_NxM[:, i - 1] != target_NxM[:, j - 1])
      cur_NxT[:, j] = np.minimum(np.minimum(prev_NxT[:, j] + 1, cur_NxT[:, j - 1] + 1), sub)
    prev_NxT = cur_NxT
  return prev_NxT[:, m_t]


def per_problem(greedy_NxM, target_NxM, teacher_argmax_NxM, probs_NxMxV) -> dict[str, np.ndarray]:
  """The five metrics per problem from greedy answers and teacher-forced probabilities."""
  greedy_NxM, target_NxM = np.asarray(greedy_NxM), np.asarray(target_NxM)
  probs_NxMxV = np.asarray(probs_NxMxV, np.float64)
  p_target_NxM = np.take_along_axis(probs_NxMxV, target_NxM[..., None], axis=-1)[..., 0]
  onehot_NxMxV = np.eye(probs_NxMxV.shape[-1])[target_NxM]
  return {
      "exact_match": np.all(greedy_NxM == target_NxM, axis=1).astype(np.float64),
      "token_accuracy": np.mean(np.asarray(teacher_argmax_NxM) == target_NxM, axis=1),
      "edit_distance": edit_distance(greedy_NxM, target_NxM).astype(np.float64),
      "log_likelihood": np.sum(np.log(np.maximum(p_target_NxM, 1e-300)), axis=1),
      "brier": np.mean(np.sum((probs_NxMxV - onehot_NxMxV) ** 2, axis=-1), axis=1),
  }


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
  """Wilson score interval of a binomial proportion."""
  if n == 0:
    return (float("nan"), float("nan"))
  phat = successes / n
  denom = 1 + z * z / n
  centre = (phat + z * z / (2 * n)) / denom
  half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
  return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_interval(values_N: np.ndarray, resamples: int, seed: int,
                       level: float = 0.95) -> tuple[float, float]:
  """Percentile bootstrap interval of the mean (resampled in chunks to bound memory)."""
  values_N = np.asarray(values_N, np.float64)
  n = len(values_N)
  rng = np.random.default_rng(seed)
  means, chunk = [], max(1, 2_000_000 // max(n, 1))
  for start in range(0, resamples, chunk):
    idx = rng.integers(0, n, (min(chunk, resamples - start), n))
    means.append(values_N[idx].mean(axis=1))
  means = np.concatenate(means)
  tail = 100 * (1 - level) / 2
  return (float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail)))


def summarise(values: dict[str, np.ndarray], *, resamples: int, seed: int) -> dict[str, dict]:
  """{metric: {mean, lo, hi, interval}} with 95% intervals over problems."""
  out = {}
  for name, v in values.items():
    v = np.asarray(v, np.float64)
    if name == "exact_match":
      lo, hi = wilson_interval(float(v.sum()), len(v))
      how = "Wilson 95%"
    else:
      lo, hi = bootstrap_interval(v, resamples, seed)
      how = f"bootstrap 95% ({resamples} resamples)"
    out[name] = {"mean": float(v.mean()), "lo": lo, "hi": hi, "interval": how}
  return out


def chance_levels(answers_NxM, num_symbols: int) -> dict[str, float]:
  """Each metric for the best input-independent predictor (see CHANCE_DEFINITIONS)
  on problems whose answers are the rows of `answers_NxM`, equally weighted: every
  problem evaluated (exact), or a sample of them (an estimate; the exact-match
  chance, the sample mode's frequency, then errs high for answer spaces much
  larger than the sample)."""
  answers_NxM = np.asarray(answers_NxM)
  n, m = answers_NxM.shape
  # Per-position marginals p_j(d), M x num_symbols.
  p_MxD = np.stack([np.bincount(answers_NxM[:, j], minlength=num_symbols)
                    for j in range(m)]) / n
  unique_UxM, counts_U = np.unique(answers_NxM, axis=0, return_counts=True)
  argmax_1xM = np.argmax(p_MxD, axis=1)[None]
  edits_U = edit_distance(np.repeat(argmax_1xM, len(unique_UxM), axis=0), unique_UxM)
  plogp = np.where(p_MxD > 0, p_MxD * np.log(np.where(p_MxD > 0, p_MxD, 1.0)), 0.0)
  return {"exact_match": float(counts_U.max() / n),
          "token_accuracy": float(p_MxD.max(axis=1).mean()),
          "edit_distance": float(edits_U @ counts_U / n),
          "log_likelihood": float(plogp.sum()),
          "brier": float(np.mean(1.0 - np.sum(p_MxD ** 2, axis=1)))}
