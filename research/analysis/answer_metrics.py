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
metrics and flag such a model as above chance on them but not on exact match. Token
accuracy, log-likelihood and Brier are teacher-forced, so that model conditions on the
true answer prefix there (p(d_j | d_<j)); exact match and edit distance score generated
answers, where its chance is that of a fixed string (CHANCE_DEFINITIONS).

Shape legend: N problems, M answer tokens, V vocabulary.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

METRICS = ("exact_match", "token_accuracy", "edit_distance", "log_likelihood", "brier")
DEFINITIONS = {
    "exact_match": "1 if the greedy (autoregressive) answer equals the target, else 0",
    "token_accuracy": "fraction of answer tokens whose teacher-forced argmax is the target",
    "edit_distance": "token Levenshtein distance from the greedy answer to the target",
    "log_likelihood": "nats, summed over the answer tokens (teacher-forced), not per token",
    "brier": "mean over answer tokens of sum over the vocabulary of (p_v - 1[v = target])^2"}
# What `chance_levels` computes, per metric. Token accuracy, log-likelihood and Brier
# score are teacher-forced (the model sees the true answer prefix d_<j when it predicts
# digit j), so the best input-independent predictor of digit j is p(d_j | d_<j), the
# answers' distribution given that prefix, not the per-position marginal p_j(d_j): a
# model that learned only the answers' statistics conditions on the prefix it is shown.
# Exact match and edit distance score a generated answer, where no true prefix is
# shown: their chance is that of a fixed answer string. The distribution is the task's
# (arithmetic: over every operand pair, not the held-out problems' own statistics, which
# a model trained on the other pairs cannot know).
CHANCE_DEFINITIONS = {
    "exact_match": "probability of the most likely answer (the mode of the answer "
                   "distribution): always generating it",
    "token_accuracy": "mean over positions j of E[max_d p(d | d_<j)]: predicting each "
                      "digit's most frequent value given the true answer prefix (teacher-forced)",
    "edit_distance": "expected edit distance to the answer of the best fixed string of the "
                     "answers' length: every string scored where there are at most 10,000; "
                     "beyond, the best found from the per-position argmax, the greedy decoding "
                     "of the answer distribution (argmax p(d_j | own d_<j)) and the mode, each "
                     "improved a digit at a time",
    "log_likelihood": "E[log p(answer)] = sum over positions j of E[log p(d_j | d_<j)]: minus "
                      "the entropy of the answers, predicting p(. | d_<j) at position j",
    "brier": "mean over positions j of E[1 - sum_d p(d | d_<j)^2]: predicting p(. | d_<j) at "
             "position j"}
CHANCE_TEXT = "chance = the best input-independent predictor (answer statistics only)"
HIGHER_IS_BETTER = {"exact_match": True, "token_accuracy": True, "edit_distance": False,
                    "log_likelihood": True, "brier": False}
Z95 = 1.959963984540054
SEARCH_ANSWERS = 20_000  # population answers the best fixed string is searched on
# Up to this many candidate strings (the answers' symbols ^ answer length), every one is
# scored and chance is the best fixed string; beyond, a local search finds a good one. The
# search alone missed the best on 3-digit sums (3.0667 against 3.0577 for "1098", chance too
# lenient by 0.3%), and by 1.2% on a population built to defeat it.
EXHAUSTIVE_STRINGS = 10_000
_DP_CELLS = 10_000_000  # int16 cells one extension of the prefixes' rows may hold (20 MB)


def edit_distance(pred_NxM: np.ndarray, target_NxM: np.ndarray) -> np.ndarray:
  """Levenshtein distance per row (insert / delete / substitute cost 1), vectorised over rows:
  the dynamic programme's cells are contiguous columns (one per position pair), ~10x faster
  than strided slices of an N x T table (chance's search scores ~1,000 strings on 20,000)."""
  pred_MxN, target_MxN = np.asarray(pred_NxM).T, np.asarray(target_NxM).T
  m_p, n = pred_MxN.shape
  m_t = target_MxN.shape[0]
  # int16 cells (a distance is at most the longer length): a quarter of int64's memory
  # traffic; 0.20 against 0.32 s on 2 million pairs of 4-symbol strings.
  prev_T = [np.full(n, j, np.int16) for j in range(m_t + 1)]  # row 0: j insertions
  for i in range(1, m_p + 1):
    cur_T = [np.full(n, i, np.int16)]  # column 0: i deletions
    for j in range(1, m_t + 1):
      sub = prev_T[j - 1] + (pred_MxN[i - 1] != target_MxN[j - 1])
      cur_T.append(np.minimum(np.minimum(prev_T[j], cur_T[j - 1]) + 1, sub))
    prev_T = cur_T
  return prev_T[m_t].astype(np.int64)


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
  # At 0 (or n) successes the bound is exactly 0 (1); rounding left 3.5e-18 above a mean of
  # 0, which `lo > chance` would read as above a chance of exactly 0.
  lo = 0.0 if successes <= 0 else max(0.0, centre - half)
  hi = 1.0 if successes >= n else min(1.0, centre + half)
  return (lo, hi)


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


def _prefix_ids(answers_NxM, num_symbols: int) -> list[np.ndarray]:
  """ids[j][i] numbers the distinct prefixes answers[i, :j] (ids[0]: the empty one)."""
  n, m = answers_NxM.shape
  ids = [np.zeros(n, np.int64)]
  for j in range(1, m):
    ids.append(np.unique(ids[-1] * num_symbols + answers_NxM[:, j - 1],
                         return_inverse=True)[1].reshape(-1))
  return ids


def _teacher_forced_exact(answers_NxM, num_symbols: int,
                          population_PxM=None) -> dict[str, float]:
  """Token accuracy, log-likelihood and Brier, on the rows of `answers_NxM`, of the predictor
  p(d_j | d_<j) counted over `population_PxM` (default: the rows themselves): exact when the
  rows are every problem the metric averages over (equally weighted) and the population holds
  every answer prefix the rows show. Ties of the most frequent digit go to the lowest."""
  a_NxM = np.asarray(answers_NxM)
  pop_PxM = a_NxM if population_PxM is None else np.asarray(population_PxM)
  both = np.concatenate([pop_PxM, a_NxM])
  n_pop, (n, m) = len(pop_PxM), a_NxM.shape
  acc = ll = brier = 0.0
  for j, pre_B in enumerate(_prefix_ids(both, num_symbols)):
    cells_C, cell_B = np.unique(pre_B * num_symbols + both[:, j], return_inverse=True)
    cell_B = cell_B.reshape(-1)
    count_C = np.bincount(cell_B[:n_pop], minlength=len(cells_C)).astype(np.float64)
    pre_C, digit_C = cells_C // num_symbols, cells_C % num_symbols
    size_G = np.bincount(pre_C, weights=count_C, minlength=pre_B.max() + 1)
    # The predicted digit per prefix: the most frequent, the lowest of ties.
    order = np.lexsort((digit_C, -count_C, pre_C))
    first = np.unique(pre_C[order], return_index=True)[1]
    best_G = np.zeros(len(size_G), np.int64)
    best_G[pre_C[order][first]] = digit_C[order][first]
    pre_N, own_N = pre_B[n_pop:], cell_B[n_pop:]
    if np.any(count_C[own_N] == 0):
      raise ValueError("the population lacks an answer prefix of the rows scored")
    p_N = count_C[own_N] / size_G[pre_N]                     # p(own d_j | own prefix)
    sq_G = np.bincount(pre_C, weights=count_C ** 2, minlength=len(size_G)) / np.maximum(
        size_G, 1) ** 2                                        # sum_d p(d | prefix)^2
    acc += np.mean(best_G[pre_N] == a_NxM[:, j]) / m
    ll += np.log(p_N).mean()
    brier += np.mean(sq_G[pre_N] - 2 * p_N + 1) / m
  return {"token_accuracy": float(acc), "log_likelihood": float(ll), "brier": float(brier)}


def _teacher_forced_crossfit(answers_NxM, num_symbols: int, folds: int = 5,
                             seed: int = 0) -> dict[str, float]:
  """The same three metrics estimated from a sample of the answers: each fold is scored by
  p(d_j | d_<j) fitted on the other folds, so that a prefix seen once in the sample does not
  pass for a predictable one (read off the sample itself, 100,000 answers of 5-digit sums
  put token accuracy 0.055 above its exact value). p(d_j | d_<k) is smoothed towards
  p(d_j | d_<k-1), k = 0..j, with the weight of num_symbols answers, from the uniform.
  Dense over num_symbols: meant for digit answers. It errs low where the prefix's whole
  length carries structure the sample cannot show (3-digit products, 100,000 of the 10^6:
  0.187 for the exact 0.230)."""
  a_NxM = np.asarray(answers_NxM)
  n, m = a_NxM.shape
  v, beta = num_symbols, float(num_symbols)
  ids = _prefix_ids(a_NxM, v)
  fold_N = np.random.default_rng(seed).permutation(n) % folds
  acc = ll = brier = 0.0
  for f in range(folds):
    fit, test = fold_N != f, fold_N == f
    for j in range(m):
      p_TxV = np.full((int(test.sum()), v), 1.0 / v)
      for k in range(j + 1):
        c_GxV = np.zeros((ids[k].max() + 1, v))
        np.add.at(c_GxV, (ids[k][fit], a_NxM[fit, j]), 1.0)
        c_TxV = c_GxV[ids[k][test]]
        p_TxV = (c_TxV + beta * p_TxV) / (c_TxV.sum(1, keepdims=True) + beta)
      y_T = a_NxM[test, j]
      p_T = p_TxV[np.arange(len(y_T)), y_T]
      acc += np.sum(p_TxV.argmax(1) == y_T) / n / m
      ll += np.log(p_T).sum() / n
      brier += np.sum(np.sum(p_TxV ** 2, axis=1) - 2 * p_T + 1) / n / m
  return {"token_accuracy": float(acc), "log_likelihood": float(ll), "brier": float(brier)}


def _unique_rows(rows_NxM):
  """np.unique(rows, axis=0, return_counts=True), the same rows in the same (lexicographic)
  order, ~10x sooner: rows of small non-negative ids are sorted as one integer each (axis=0
  sorts them as opaque records, 7 of 8 seconds of chance on a million 4-digit sums)."""
  rows_NxM = np.asarray(rows_NxM)
  base = int(rows_NxM.max()) + 1 if rows_NxM.size else 1
  if rows_NxM.ndim != 2 or rows_NxM.min(initial=0) < 0 or base ** rows_NxM.shape[1] >= 2 ** 62:
    return np.unique(rows_NxM, axis=0, return_counts=True)
  weights_M = base ** np.arange(rows_NxM.shape[1] - 1, -1, -1, dtype=np.int64)
  codes_U, counts_U = np.unique(rows_NxM.astype(np.int64) @ weights_M, return_counts=True)
  return (codes_U[:, None] // weights_M % base).astype(rows_NxM.dtype), counts_U


def generated_chance(answers_NxM, num_symbols: int, population_PxM=None) -> dict[str, float]:
  """Exact match and edit distance, on the rows of `answers_NxM`, of the best fixed answer
  strings read off `population_PxM` (default: the rows themselves; see CHANCE_DEFINITIONS)."""
  answers_NxM = np.asarray(answers_NxM)
  pop_PxM = answers_NxM if population_PxM is None else np.asarray(population_PxM)
  n, m = answers_NxM.shape
  unique_PxM, counts_P = _unique_rows(pop_PxM)
  # Fixed strings an input-independent generator can output; the best of them is chance.
  per_position = [np.argmax(np.bincount(pop_PxM[:, j], minlength=num_symbols))
                  for j in range(m)]
  greedy, rows = [], np.ones(len(pop_PxM), bool)
  for j in range(m):  # greedy decoding of the answer distribution: follows its own prefix
    greedy.append(np.argmax(np.bincount(pop_PxM[rows, j], minlength=num_symbols)))
    rows &= pop_PxM[:, j] == greedy[-1]
  mode = unique_PxM[np.argmax(counts_P)]
  unique_UxM, counts_U = _unique_rows(answers_NxM)
  score = lambda s, u_UxM, c_U: edit_distance(np.repeat(np.asarray(s)[None], len(u_UxM), 0),
                                             u_UxM) @ c_U / c_U.sum()
  # The three are only starts: on 3-digit sums each scores 3.20, and "1060" (the mode of the
  # 100,000 held-out answers, by chance) 3.09. Improve each one digit at a time on (a sample
  # of) the population until no single digit helps; chance is the best string found.
  rng = np.random.default_rng(0)
  sample_PxM = pop_PxM[rng.choice(len(pop_PxM), min(len(pop_PxM), SEARCH_ANSWERS), replace=False)]
  search_UxM, search_U = _unique_rows(sample_PxM)
  # A symbol no searched answer contains never helps: wherever an alignment uses it (a
  # substitution or a deletion, cost 1 either way), any other symbol costs at most as much, so
  # its trial never beats the current string (which has one). Trying only the answers' own
  # symbols finds the same strings (a byte tokenizer's 257 ids against 26 letters).
  symbols = [int(d) for d in np.unique(search_UxM)]
  found = [per_position, greedy, mode]
  if len(symbols) ** m <= EXHAUSTIVE_STRINGS:
    # On the population's own distinct answers where they are no more than the sample's.
    every_UxM, every_U = ((unique_PxM, counts_P) if len(unique_PxM) <= SEARCH_ANSWERS else
                          (search_UxM, search_U))
    found.append(_best_of_every_string(symbols, m, every_UxM, every_U))
  else:
    for start in (per_position, greedy, mode):
      best, best_score, better = list(start), score(start, search_UxM, search_U), True
      while better:
        better = False
        for j, d in itertools.product(range(m), symbols):
          trial = best[:j] + [d] + best[j + 1:]
          if (trial_score := score(trial, search_UxM, search_U)) < best_score - 1e-12:
            best, best_score, better = trial, trial_score, True
      found.append(best)
  return {"exact_match": float(np.all(answers_NxM == mode, axis=1).mean()),
          "edit_distance": float(min(score(s, unique_UxM, counts_U) for s in found))}


def _best_of_every_string(symbols: list[int], m: int, answers_UxT, counts_U) -> list[int]:
  """The fixed string of m of `symbols` nearest the answers (rows `answers_UxT`, weighted by
  `counts_U`) in mean edit distance, every string scored; the first of equals in
  itertools.product's order. Strings that share a prefix share the dynamic programme's rows
  for it: each string costs one row, not m."""
  symbols_S, answers_UxT = np.asarray(symbols), np.asarray(answers_UxT)
  u, t = answers_UxT.shape
  mismatch_SxUxT = symbols_S[:, None, None] != answers_UxT[None]
  per_chunk = max(1, _DP_CELLS // (len(symbols_S) * u * (t + 1)))  # parents per extension

  def scores(rows_PxUxT1, i):  # the scores of every string under these length-i prefixes
    if i == m:
      return rows_PxUxT1[:, :, t] @ counts_U / counts_U.sum()
    out = []
    for lo in range(0, len(rows_PxUxT1), per_chunk):
      parent = rows_PxUxT1[lo:lo + per_chunk, None]  # P x 1 x U x (T+1)
      child = np.empty((len(parent), len(symbols_S), u, t + 1), np.int16)
      child[..., 0] = i + 1  # i + 1 deletions
      for j in range(1, t + 1):
        child[..., j] = np.minimum(np.minimum(parent[..., j], child[..., j - 1]) + 1,
                                   parent[..., j - 1] + mismatch_SxUxT[..., j - 1])
      out.append(scores(child.reshape(-1, u, t + 1), i + 1))
    return np.concatenate(out)

  first_row = np.broadcast_to(np.arange(t + 1, dtype=np.int16), (1, u, t + 1))  # j insertions
  best = int(np.argmin(scores(first_row, 0)))
  digits = [best // len(symbols_S) ** (m - 1 - k) % len(symbols_S) for k in range(m)]
  return [int(symbols_S[d]) for d in digits]


def chance_levels(answers_NxM, num_symbols: int, *, sample: bool = False,
                  population=None) -> dict[str, float]:
  """Each metric for the best input-independent predictor (see CHANCE_DEFINITIONS) on
  problems whose answers are the rows of `answers_NxM`, equally weighted, that knows the
  answer distribution of `population` (default: the rows themselves).

  sample=False: the rows are every problem the metric averages over, or the whole set the
  evaluated problems are drawn from uniformly: exact. sample=True: a random sample of that
  set: the teacher-forced metrics (token accuracy, log-likelihood, Brier) are cross-fitted
  (`_teacher_forced_crossfit`); exact match (the sample mode's frequency) and edit distance,
  scored on generated answers, are read off the sample and err high for answer spaces much
  larger than it."""
  forced = (_teacher_forced_crossfit(answers_NxM, num_symbols) if sample else
            _teacher_forced_exact(answers_NxM, num_symbols, population))
  return {**generated_chance(answers_NxM, num_symbols, population), **forced}
