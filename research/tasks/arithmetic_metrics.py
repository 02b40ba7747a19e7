"""Per-problem emergence metrics and their intervals (Schaeffer et al. 2023).

Each metric is first computed per problem, then averaged over problems with a
95% interval, so that the numbers for every model size come from the same
evaluation problems and small-model accuracies are resolved:

  exact_match      1 if the greedy (autoregressive) answer equals the target.
                   Interval: Wilson score (stays informative at 0 or 1 hits).
  token_accuracy   fraction of answer tokens whose teacher-forced argmax (given
                   the true prefix) is the target: the per-token p in p^L.
  edit_distance    token-level Levenshtein distance between the greedy answer
                   and the target (0 = exact; at most the answer length).
  log_likelihood   sum over answer tokens of log p(target | true prefix), nats.
  brier            mean over answer tokens of sum_v (p_v - 1[v = target])^2,
                   over the full vocabulary (0 = perfect, 2 = worst).
Continuous metrics get percentile-bootstrap 95% intervals over problems.

Shape legend: N problems, M answer tokens, V vocabulary.
"""
from __future__ import annotations

import math

import numpy as np

METRICS = ("exact_match", "token_accuracy", "edit_distance", "log_likelihood", "brier")
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


def chance_levels(answer_len: int, num_choices: int, *, seed: int = 0,
                  samples: int = 20_000) -> dict[str, float]:
  """Each metric for a guesser uniform over the `num_choices` answer symbols.

  Edit distance of two independent uniform strings has no simple closed form,
  so it is estimated by Monte Carlo (fixed seed; standard error < 0.01).
  """
  m, k = answer_len, num_choices
  rng = np.random.default_rng(seed)
  a = rng.integers(0, k, (samples, m))
  b = rng.integers(0, k, (samples, m))
  return {"exact_match": float(k) ** -m, "token_accuracy": 1.0 / k,
          "edit_distance": float(edit_distance(a, b).mean()),
          "log_likelihood": -m * math.log(k), "brier": 1.0 - 1.0 / k}
