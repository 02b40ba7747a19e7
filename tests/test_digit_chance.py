"""Teacher-forced chance of digit tasks beyond enumeration (research/tasks/digit_chance.py)."""
import numpy as np
import pytest

from configs import arithmetic as arith_config
from research import tasks
from research.analysis import answer_metrics as am
from research.tasks import arithmetic as ar
from research.tasks import digit_chance as dc

FORCED = ("token_accuracy", "log_likelihood", "brier")


def _every(op: str, n: int):
  """Every pair's answer value and digits, most significant first."""
  a, b = np.divmod(np.arange(10 ** (2 * n)), 10 ** n)
  v = a + b if op == "add" else a * b
  m = dc.answer_len(op, n)
  return v, np.stack([(v // 10 ** (m - 1 - j)) % 10 for j in range(m)], axis=1)


@pytest.mark.parametrize("op,n", [("add", 1), ("mul", 1), ("add", 2), ("mul", 2)])
@pytest.mark.parametrize("msb_first", [True, False])
def test_counted_conditionals_over_every_problem_are_the_exact_chance(op, n, msb_first):
  # Averaged over every problem, the counted p(d_j | d_<j) give exactly what counting the
  # enumerated answers gives (answer_metrics' exact path), in both digit orders.
  values, digits = _every(op, n)
  exact = am._teacher_forced_exact(digits if msb_first else digits[:, ::-1], 10)
  counted, _ = dc.teacher_forced_chance(op, n, values, msb_first)
  for name in FORCED:
    assert counted[name] == pytest.approx(exact[name], abs=1e-9), name


@pytest.mark.parametrize("msb_first", [True, False])
def test_a_sample_of_problems_estimates_3_digit_products_within_its_error(msb_first):
  # 3-digit products: the exact chance is known (10^6 pairs). 2,000 drawn problems with
  # counted conditionals land within 3 standard errors; the cross-fit from 100,000 sampled
  # answers (what the probe used beyond enumeration) lands 0.04 below in token accuracy,
  # dozens of standard errors: it cannot see how often each product factors.
  values, digits = _every("mul", 3)
  if not msb_first:
    digits = digits[:, ::-1]
  exact = am._teacher_forced_exact(digits, 10)
  rng = np.random.default_rng(0)
  est, se = dc.teacher_forced_chance("mul", 3, values[rng.choice(len(values), 2000)], msb_first)
  for name in FORCED:
    assert abs(est[name] - exact[name]) < 3 * se[name], name
  crossfit = am._teacher_forced_crossfit(digits[rng.choice(len(values), 100_000, replace=False)], 10)
  assert exact["token_accuracy"] - crossfit["token_accuracy"] > 0.04 > 20 * se["token_accuracy"]
  assert exact["log_likelihood"] - crossfit["log_likelihood"] > 1.0


def test_modular_helpers_match_python_integers():
  rng = np.random.default_rng(1)
  m = rng.integers(2, 10 ** 10, 5000)
  x, y = rng.integers(0, 10 ** 10, 5000) % m, rng.integers(0, 10 ** 10, 5000) % m
  assert [int(v) for v in dc._mul_mod(x, y, m)] == [int(a) * int(b) % int(c)
                                                      for a, b, c in zip(x, y, m)]
  u = rng.integers(1, 10 ** 10, 5000)
  coprime = np.gcd(u, m) == 1
  inv = dc._mod_inverse(u[coprime], m[coprime])
  assert [int(v) for v in inv] == [pow(int(a), -1, int(c)) for a, c in zip(u[coprime], m[coprime])]


def test_problem_counts_follow_the_counting_cost():
  assert dc.num_problems("add", 9, False) == dc.num_problems("mul", 5, True) == dc.MAX_PROBLEMS
  assert dc.MIN_PROBLEMS < dc.num_problems("mul", 6, True) < dc.MAX_PROBLEMS
  assert dc.num_problems("mul", 7, True) == dc.num_problems("mul", 5, False) == dc.MIN_PROBLEMS


def test_problem_counts_at_each_cost():
  # The counted problems per task (the SE of token accuracy is ~0.03 / sqrt(S)): the 10 s
  # budget over each problem's counting cost, within [200, 2000]. 6-digit products most
  # significant first: 1e10 // (12 digits x 10^6 x 1.2 ns) = 694; 4-digit least significant
  # first: 1e10 // (4 x 10 x 10^4 x 50 ns) = 500; 7-digit products: the floor, 200.
  got = [dc.num_problems(*a) for a in (("add", 9, True), ("mul", 5, True), ("mul", 6, True),
                                       ("mul", 7, True), ("mul", 4, False), ("mul", 5, False))]
  assert got == [2000, 2000, 694, 200, 500, 200]


def test_product_counts_below_any_bound_match_the_enumerated_products():
  # The symmetric count (a < b up to sqrt(X), the rest in closed form) at every kind of bound:
  # 0, 1, squares and their neighbours, N^2 and past it, and random ones.
  rng = np.random.default_rng(2)
  for n in (1, 2, 3):
    N = 10 ** n
    a, b = np.divmod(np.arange(N * N), N)
    products = np.sort(a * b)
    sq = np.arange(N + 1) ** 2
    x = np.concatenate([np.arange(30), sq - 1, sq, sq + 1, [N * N - 1, N * N, N * N + 9],
                        rng.integers(0, N * N, 2000)])
    assert np.array_equal(dc._pairs_below("mul", n, x), np.searchsorted(products, x)), n


def test_7_digit_product_counts_are_exact_and_8_digits_are_refused():
  # float64 ceil(X / a) is exact for X < 2^53 (7-digit products stay below 10^14): the count
  # equals integer arithmetic over every first operand, a = 0 included.
  n, N = 7, 10 ** 7
  a = np.arange(1, N, dtype=np.int64)
  rng = np.random.default_rng(3)
  for x in [10 ** 14 - 1, 99_999_980_000_001, 2 ** 46 + 1, *rng.integers(1, 10 ** 14, 2)]:
    exact = 2 * N - 1 + int(np.minimum(N, -(-int(x) // a)).sum()) - (N - 1)
    assert dc._pairs_below("mul", n, [x])[0] == exact, x
  with pytest.raises(ValueError, match="2\\^53"):
    dc._pairs_below("mul", 8, [10 ** 15])


@pytest.mark.parametrize("reverse", [False, True])
def test_6_digit_sums_chance_is_counted_to_their_entropy(monkeypatch, reverse):
  # Beyond 5 digits the probe counted nothing: it cross-fitted 100,000 sampled answers
  # (log-likelihood -14.76 most significant first, -14.93 least, here). The chance
  # log-likelihood of any digit order is E[log p(answer)] = minus the entropy of a + b,
  # computable exactly: the counted conditionals over 2,000 problems meet it within 5 SE.
  monkeypatch.setattr(ar, "CHANCE_SAMPLES", dc.MAX_PROBLEMS)
  monkeypatch.setattr(am, "generated_chance", lambda *args: {})  # not under test: slow here
  c = arith_config.get_config("tiny")
  c.task.operation, c.task.num_digits, c.task.reverse_answer = "add", 6, reverse
  chance, how = tasks.build(c.task, seed=0).chance
  N = 10 ** 6
  s = np.arange(2 * N - 1)
  p = (np.minimum(s, 2 * N - 2 - s) + 1) / N ** 2
  entropy = -float(np.sum(p * np.log(p)))
  assert "exact p(d_j | d_<j)" in how and "standard errors" in how
  assert chance["log_likelihood"] == pytest.approx(-entropy, abs=5 * 0.0043)


def test_6_digit_products_are_counted_most_significant_first_only(monkeypatch):
  # Least significant first needs ~2 s a problem at 6 digits: still the cross-fit, said so.
  monkeypatch.setattr(ar, "CHANCE_SAMPLES", 500)
  monkeypatch.setattr(am, "generated_chance", lambda *args: {})
  monkeypatch.setattr(dc, "MIN_PROBLEMS", 20)
  monkeypatch.setattr(dc, "MAX_PROBLEMS", 20)
  for reverse, counted in ((False, True), (True, False)):
    c = arith_config.get_config("tiny")
    c.task.operation, c.task.num_digits, c.task.reverse_answer = "mul", 6, reverse
    chance, how = tasks.build(c.task, seed=0).chance
    assert ("exact p(d_j | d_<j) over every pair, averaged over the first 20" in how) == counted
    assert ("cross-fitted" in how) != counted
    assert 0.1 < chance["token_accuracy"] < 0.3


def test_standard_error_is_the_sample_sd_over_root_s():
  # Two problems: the SE of their mean is |m1 - m2| / 2 (sd with ddof=1 over sqrt 2); the
  # population sd (ddof=0) gave |m1 - m2| / 2 / sqrt 2, a printed SE 29% too small.
  one = [dc.teacher_forced_chance("mul", 2, [v, v], True)[0] for v in (0, 391)]
  _, se = dc.teacher_forced_chance("mul", 2, [0, 391], True)
  for name in FORCED:
    assert one[0][name] != one[1][name], name
    assert se[name] == pytest.approx(abs(one[0][name] - one[1][name]) / 2, rel=1e-12), name


@pytest.mark.parametrize("op,n,msb_first", [("add", 9, True), ("add", 9, False),
                                            ("mul", 7, True), ("mul", 5, False)])
def test_the_largest_counted_tasks_are_counted_not_cross_fitted(op, n, msb_first):
  # At max_digits (9-digit sums, 7-digit products most significant first, 5-digit least
  # significant first) the teacher-forced chance is counted exactly, as the module's docstring
  # promises: counting only below it ('n >=') or a smaller limit fell back to the cross-fit,
  # which errs low. Three problems keep it fast; the forced metrics are theirs exactly.
  rng = np.random.default_rng(4)
  a, b = rng.integers(0, 10 ** n, 3), rng.integers(0, 10 ** n, 3)
  values = a + b if op == "add" else a * b
  m = dc.answer_len(op, n)
  digits = np.stack([(values // 10 ** (m - 1 - j)) % 10 for j in range(m)], axis=1)
  chance, how = dc.chance_from_sample(op, n, msb_first, digits if msb_first else digits[:, ::-1],
                                      10)
  assert "exact p(d_j | d_<j) over every pair" in how and "cross-fitted" not in how, how
  counted, _ = dc.teacher_forced_chance(op, n, values, msb_first)
  for name in FORCED:
    assert chance[name] == pytest.approx(counted[name], abs=1e-12), name


@pytest.mark.parametrize("op", ["add", "mul"])
def test_residue_counts_are_counts_of_pairs(op):
  """_Residues counts pairs (a, b) in [0, N)^2 by a o b mod M: over the M residues they add
  up to all N^2 pairs, and each matches enumeration (N = 100; M = 10 and 1000)."""
  a, b = np.meshgrid(np.arange(100), np.arange(100))
  values = (a + b if op == "add" else a * b).ravel()
  for k in (1, 3):
    got = dc._Residues(op, 2, k).count(np.arange(10 ** k))
    assert got.sum() == 100 * 100
    np.testing.assert_array_equal(got, np.bincount(values % 10 ** k, minlength=10 ** k))
