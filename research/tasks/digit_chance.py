"""Teacher-forced chance of digit sums and products too many to enumerate (arithmetic.py).

Token accuracy, log-likelihood and Brier are teacher-forced: their chance is the score of
p(d_j | d_<j), the task's answer distribution given the true answer prefix
(answer_metrics.CHANCE_DEFINITIONS). Up to 10^6 operand pairs arithmetic.py counts it over
every pair. Beyond, this module computes p(. | d_<j) exactly for each of S held-out problems
drawn uniformly, by counting the pairs (a, b) in [0, 10^n)^2 whose answer has that prefix, and
averages each metric's expectation under it (max_d p, sum p log p, 1 - sum p^2: the
expected score of the predictor at that prefix): an unbiased estimate with a standard error.

Why not a sample's own frequencies (answer_metrics' cross-fit): a product's last digits given
its first ones depend on how many ways each candidate value factors, which 100,000 sampled
answers cannot show. On 3-digit products, where the exact value is known (token accuracy
0.2298), the cross-fit from 100,000 answers gives 0.181; this estimate gives 0.2297 from
2,000 problems (tests/test_digit_chance.py).

The prefix of an answer written most significant digit first is an interval of values
(pairs counted as #{a*b < X}); least significant first, a residue class mod 10^j (pairs
counted per a by solving a*b = t mod 10^j). How many digits each counts (`max_digits`; the
cross-fit beyond): sums n <= 9 (closed forms; (10^n)^2 pairs in int64); products most
significant first n <= 7 (float64 quotients are exact while X < 2^53), about 1 ms a problem
at 5 digits, 11 ms at 6, 0.17 s at 7 (200 problems: 33 s); at 8, X reaches 10^16 > 2^53 and
a problem would take ~2 s; least significant first n <= 5: at 6 digits 2 s a problem (the
residues are solved for every first operand), 200 problems ~7 minutes.

Shape legend: S problems, M answer digits, A first operands, D = 10 digit values.
"""
from __future__ import annotations

import math

import numpy as np

from research.analysis import answer_metrics as am

# Problems to average over: as many as about 10 s of counting allow on one core, within
# [MIN, MAX]_PROBLEMS (SE of token accuracy about 0.03 / sqrt(S)). Nanoseconds, measured here:
# most significant first, per answer digit and 10^n (about 9 new interval ends a digit, each
# counted over ~0.15 10^n operands), 0.9-1.2 on 5-7 digits; least significant first, per
# operand row and count (10 residues for each modulus above 10^n, each solved for every a).
BUDGET_NS, MSB_NS, LSB_NS = 1e10, 1.2, 50.0
MIN_PROBLEMS, MAX_PROBLEMS = 200, 2000


def max_digits(op: str, msb_first: bool) -> int:
  """Operand digits up to which p(d_j | d_<j) is counted (exactly, in time): see above."""
  if op == "add":
    return 9            # (10^n)^2 pairs counted in int64
  return 7 if msb_first else 5


def num_problems(op: str, n: int, msb_first: bool) -> int:
  if op == "add":  # closed forms: no operand rows to count over
    return MAX_PROBLEMS
  per_problem = (answer_len(op, n) * 10 ** n * MSB_NS if msb_first
                 else n * 10 * 10 ** n * LSB_NS)  # residues mod M <= 10^n are closed form
  return int(min(MAX_PROBLEMS, max(MIN_PROBLEMS, BUDGET_NS // per_problem)))


def answer_len(op: str, n: int) -> int:
  return n + 1 if op == "add" else 2 * n


def _pairs_below(op: str, n: int, x_K) -> np.ndarray:
  """#{(a, b) in [0, N)^2 : a o b < X} for each X, N = 10^n."""
  N, x_K = 10 ** n, np.asarray(x_K, np.int64)
  if op == "add":  # closed form: a triangle, or the square minus one
    lo = np.clip(x_K, 0, N)
    hi = np.clip(2 * N - x_K, 0, N)
    return np.where(x_K <= N, lo * (lo + 1) // 2, N * N - hi * (hi - 1) // 2)
  # mul: a = 0 or b = 0 gives the 2N - 1 pairs of product 0 (< X for X > 0). Of the rest,
  # by symmetry, 2 #{a < b} + #{a = b}, and a < b with a b < X has a(a + 1) < X: only a up
  # to a1 ~ sqrt(X) count, and those with a(N - 1) < X (a <= lo) take every b > a, in closed
  # form; the rest, a in (lo, a1], take b up to ceil(X / a) - 1 < N. So the loop runs over
  # sqrt(X) - X / N (at most N / 4) operands, not N. ceil(X / a) in float64 is exact for
  # X < 2^53: X / a is rounded by at most (X / a) 2^-53 < 1 / a, the least it can be from an
  # integer without being one (and an integer quotient is represented exactly). The float
  # sum is exact too: its terms are integers <= N and it stays below N^2 / 4 < 2^53.
  if n > max_digits("mul", True):
    raise ValueError(f"{n}-digit products reach 2^53: float64 quotients are not exact")
  a_A = np.arange(1, N, dtype=np.float64)
  buf_A, out_K = np.empty_like(a_A), np.zeros(len(x_K), np.int64)
  for i, x in enumerate(int(v) for v in x_K):
    if x <= 0:
      continue
    a1 = min((math.isqrt(4 * x - 3) - 1) // 2, N - 2)    # the largest a with a(a + 1) < x
    lo = min((x - 1) // (N - 1), a1)                     # the largest a with a(N - 1) < x
    below = lo * (N - 1) - lo * (lo + 1) // 2            # sum over a <= lo of (N - 1 - a)
    if a1 > lo:                                          # + sum over (lo, a1] of ceil - a - 1
      ceil_A = buf_A[:a1 - lo]
      np.ceil(np.divide(float(x), a_A[lo:a1], out=ceil_A), out=ceil_A)
      below += int(ceil_A.sum()) - (a1 * (a1 + 3) - lo * (lo + 3)) // 2
    out_K[i] = 2 * N - 1 + min(math.isqrt(x - 1), N - 1) + 2 * below
  return out_K


def _mod_inverse(u_A, m_A) -> np.ndarray:
  """u^-1 mod m elementwise (gcd(u, m) = 1; 0 where m = 1): extended Euclid on arrays."""
  r0, r1 = np.asarray(m_A, np.int64).copy(), np.asarray(u_A, np.int64) % m_A
  s0, s1 = np.zeros_like(r0), np.ones_like(r0)
  while np.any(r1):
    go = r1 != 0
    q = np.where(go, r0 // np.where(go, r1, 1), 0)
    r0, r1 = np.where(go, r1, r0), np.where(go, r0 - q * r1, r1)
    s0, s1 = np.where(go, s1, s0), np.where(go, s0 - q * s1, s1)
  return s0 % m_A


def _mul_mod(x_A, y_A, m_A) -> np.ndarray:
  """x * y mod m for x, y < m < 2^34 without overflowing int64 (y split into 17-bit halves)."""
  hi, lo = y_A >> 17, y_A & ((1 << 17) - 1)
  return (((x_A * hi) % m_A << 17) + x_A * lo) % m_A


class _Residues:
  """#{(a, b) in [0, N)^2 : a o b = t mod M}, for one modulus M = 10^k, per t."""

  def __init__(self, op: str, n: int, k: int):
    self.op, self.N, self.M = op, 10 ** n, 10 ** k
    if op == "mul" and self.M <= self.N:
      # a mod M and b mod M are uniform (M divides N): (N / M)^2 pairs (x, y) in [0, M)^2
      # each, and x y = t (mod M) has gcd(x, M) solutions y when gcd(x, M) divides t, so
      # the count depends on t through gcd(t, M) only.
      g_X = np.gcd(np.arange(self.M, dtype=np.int64), self.M)
      self.by_gcd = {int(d): int(g_X[d % g_X == 0].sum()) * (self.N // self.M) ** 2
                     for d in np.unique(g_X)}
    elif op == "mul":  # a b = t (mod M), g = gcd(a, M): solvable iff g | t, then
      a = np.arange(1, self.N, dtype=np.int64)  # b = (t / g) (a / g)^-1 (mod M / g)
      self.g_A = np.gcd(a, self.M)
      self.m_A = self.M // self.g_A
      self.inv_A = _mod_inverse((a // self.g_A) % self.m_A, self.m_A)

  def count(self, t_T) -> np.ndarray:
    t_T = np.asarray(t_T, np.int64)
    if self.op == "add" and self.M <= self.N:  # a mod M is uniform, so a + b mod M too
      return np.full(len(t_T), self.N * self.N // self.M, np.int64)
    if self.op == "add":  # sums s = t + i M, each reached by min(s, 2N - 2 - s) + 1 pairs
      s_TxI = t_T[:, None] + self.M * np.arange((2 * self.N - 2) // self.M + 1)
      return np.clip(np.minimum(s_TxI, 2 * self.N - 2 - s_TxI) + 1, 0, None).sum(axis=1)
    if self.M <= self.N:
      return np.array([self.by_gcd[int(np.gcd(t, self.M))] for t in t_T], np.int64)
    t_Tx1 = t_T[:, None]
    ok = t_Tx1 % self.g_A == 0
    b0 = np.where(ok, _mul_mod((t_Tx1 // self.g_A) % self.m_A, self.inv_A, self.m_A), self.N)
    hits = np.where(b0 < self.N, (self.N - 1 - b0) // self.m_A + 1, 0).sum(axis=1)
    return hits + np.where(t_T == 0, self.N, 0)  # a = 0: every b when t = 0


def prefix_probs(op: str, n: int, values_S, msb_first: bool) -> np.ndarray:
  """p(d_j = d | the answer's own d_<j) for each problem, S x M x D, over every pair."""
  values_S = np.asarray(values_S, np.int64)
  m = answer_len(op, n)
  if msb_first:  # cell d of digit j: values in [(P*10 + d) w, (P*10 + d + 1) w), w = 10^(m-1-j)
    w_Mx1 = 10 ** np.arange(m - 1, -1, -1, dtype=np.int64)[:, None]
    x_SxMxD1 = (values_S[:, None, None] // (10 * w_Mx1) * 10 + np.arange(11)) * w_Mx1
    # A digit's outer cell ends are the previous digit's cell, and the first digits' ends are
    # shared by many problems: each distinct end is counted once.
    x_X, at = np.unique(x_SxMxD1, return_inverse=True)
    counts = np.diff(_pairs_below(op, n, x_X)[at.reshape(x_SxMxD1.shape)], axis=2)
  else:          # cell d of digit j: values = r + d 10^j (mod 10^(j+1)), r = value mod 10^j
    counts = np.zeros((len(values_S), m, 10), np.int64)
    for j in range(m):
      res = _Residues(op, n, j + 1)
      for s, v in enumerate(values_S):
        counts[s, j] = res.count(int(v) % 10 ** j + np.arange(10) * 10 ** j)
  counts = counts.astype(np.float64)
  return counts / counts.sum(axis=2, keepdims=True)


def teacher_forced_chance(op: str, n: int, values_S, msb_first: bool) -> tuple[dict, dict]:
  """Each teacher-forced metric's chance and its standard error over the S problems."""
  p_SxMxD = prefix_probs(op, n, values_S, msb_first)
  logp = np.log(np.where(p_SxMxD > 0, p_SxMxD, 1.0))
  per_S = {"token_accuracy": p_SxMxD.max(axis=2).mean(axis=1),
           "log_likelihood": (p_SxMxD * logp).sum(axis=(1, 2)),
           "brier": (1.0 - (p_SxMxD ** 2).sum(axis=2)).mean(axis=1)}
  s = len(values_S)
  return ({k: float(v.mean()) for k, v in per_S.items()},
          {k: float(v.std(ddof=1) / math.sqrt(s)) for k, v in per_S.items()})


def chance_from_sample(op: str, n: int, msb_first: bool, answers_SxM, num_symbols: int,
                       ) -> tuple[dict[str, float], str]:
  """Chance of a digit task too large to enumerate, from answers of held-out problems drawn
  with a fixed key, and how it was had: exact match from the sample's mode; the
  teacher-forced metrics counted exactly (teacher_forced_chance) where max_digits allows,
  cross-fitted from the sample beyond."""
  how = (f"estimated from {len(answers_SxM)} held-out problems drawn with a fixed key (exact "
         "match: the sample mode's frequency, erring high")
  if n > max_digits(op, msb_first):  # counting: too slow or not exact
    return am.chance_levels(answers_SxM, num_symbols, sample=True), how + (
        "; teacher-forced metrics cross-fitted over 5 folds, which errs low: 6-digit "
        "products' token accuracy 0.133 where counting gives 0.183)")
  s = num_problems(op, n, msb_first)
  m = answers_SxM.shape[1]
  lsb_first = (answers_SxM[:s, ::-1] if msb_first else answers_SxM[:s]).astype(np.int64)
  values = lsb_first @ 10 ** np.arange(m, dtype=np.int64)
  forced, se = teacher_forced_chance(op, n, values, msb_first)
  return {**am.generated_chance(answers_SxM, num_symbols), **forced}, how + (
      f"; teacher-forced metrics: exact p(d_j | d_<j) over every pair, averaged over the "
      f"first {s} of them, standard errors " + ", ".join(f"{k} {v:.2g}" for k, v in se.items())
      + ")")
