"""The edit-distance chance level's best fixed answer string (answer_metrics.generated_chance):
every string scored where there are at most EXHAUSTIVE_STRINGS, and beyond, a local search,
tested here with that limit at 0 (`search_only`) on populations, found by a random search over
small answer spaces, on which each part of the search matters: the greedy-decoded and mode
starts, every population answer searched on (without replacement, up to SEARCH_ANSWERS), and
small improvements taken. Each is checked against the brute-force best over every string."""
import itertools

import numpy as np
import pytest

from research.analysis import answer_metrics as am


def population(rows, counts):
  return np.repeat(np.array(rows), counts, axis=0)


def brute_force_best(pop, num_symbols):
  """The mean edit distance to `pop` of the best of all num_symbols^m fixed strings."""
  u, c = np.unique(pop, axis=0, return_counts=True)
  return min(am.edit_distance(np.repeat(np.array(s)[None], len(u), 0), u) @ c / c.sum()
             for s in itertools.product(range(num_symbols), repeat=pop.shape[1]))


@pytest.fixture
def search_only(monkeypatch):
  monkeypatch.setattr(am, "EXHAUSTIVE_STRINGS", 0)


def test_greedy_decoding_start_reaches_the_best_string(search_only):
  """11 answers of 4 digits: only the start that follows its own prefix (2 1 3 ..., greedy
  decoding of the answer distribution) ends at the best string, 2131 (1.818); the
  per-position argmax and the mode stop at 1.909."""
  pop = population([[0, 1, 2, 1], [0, 2, 2, 3], [1, 2, 1, 1], [1, 3, 0, 1], [2, 0, 1, 0],
                    [2, 1, 3, 0], [2, 2, 3, 1]], [1, 1, 3, 1, 1, 3, 1])
  best = brute_force_best(pop, 4)
  assert best == pytest.approx(20 / 11)
  assert am.generated_chance(pop, 4)["edit_distance"] == pytest.approx(best)


def test_mode_start_reaches_a_string_the_other_starts_miss(search_only):
  """403 answers of 4 digits over 6 symbols. The search is local: here no start reaches the
  brute-force best (2.375); the start at the mode ends at 2.404 (969/403), the per-position
  and greedy starts at 2.442. The search's chance is the best string found, 2.404."""
  pop = population([[0, 1, 4, 0], [1, 0, 3, 2], [1, 1, 0, 5], [1, 2, 5, 1], [2, 0, 1, 3],
                    [2, 2, 2, 0], [2, 2, 5, 3], [2, 4, 0, 2], [3, 1, 1, 2], [3, 3, 3, 1],
                    [3, 4, 2, 5], [3, 5, 2, 5], [4, 1, 1, 3], [4, 2, 5, 3], [4, 5, 1, 5],
                    [5, 3, 0, 0], [5, 4, 5, 2], [5, 5, 0, 2]],
                   [2, 1, 1, 72, 29, 6, 30, 37, 37, 13, 20, 70, 4, 14, 49, 1, 12, 5])
  found = am.generated_chance(pop, 6)["edit_distance"]
  assert found == pytest.approx(969 / 403)
  best = brute_force_best(pop, 6)
  assert best == pytest.approx(957 / 403) and best < found


def test_search_uses_every_answer_of_a_population_under_its_sample_size(search_only):
  """403 answers (fewer than SEARCH_ANSWERS): the search sees all of them and finds the best
  string, 1020 (1.856); a 200-answer sample of them leads it to a worse one."""
  pop = population([[0, 0, 0, 1], [0, 0, 2, 0], [0, 1, 1, 1], [0, 1, 2, 2], [0, 2, 0, 1],
                    [0, 2, 0, 2], [1, 0, 0, 0], [1, 0, 0, 2], [1, 0, 1, 1], [1, 0, 1, 2],
                    [1, 0, 2, 0], [1, 0, 2, 1], [1, 1, 0, 2], [1, 1, 2, 0], [1, 2, 0, 0],
                    [1, 2, 2, 2], [2, 0, 0, 0], [2, 0, 1, 2], [2, 1, 2, 0], [2, 2, 1, 2]],
                   [47, 6, 35, 18, 8, 1, 77, 23, 11, 9, 53, 1, 1, 8, 1, 56, 23, 3, 21, 1])
  assert len(pop) < am.SEARCH_ANSWERS
  best = brute_force_best(pop, 3)
  assert best == pytest.approx(748 / 403)
  assert am.generated_chance(pop, 3)["edit_distance"] == pytest.approx(best)


def test_search_sample_draws_each_answer_once(search_only):
  """31 answers of 5 digits: the sample is all 31 (drawn without replacement); a sample with
  repeats drops some answers and the search ends at a worse string than the best, 67/31."""
  pop = population([[0, 0, 0, 1, 2], [0, 0, 1, 0, 0], [0, 1, 0, 0, 0], [0, 1, 1, 0, 1],
                    [0, 1, 1, 1, 0], [1, 1, 0, 0, 0], [1, 2, 1, 1, 2], [2, 0, 1, 1, 2],
                    [2, 0, 1, 2, 1], [2, 1, 2, 1, 2], [2, 2, 0, 1, 0]],
                   [1, 5, 1, 2, 4, 1, 4, 2, 2, 1, 8])
  best = brute_force_best(pop, 3)
  assert best == pytest.approx(67 / 31)
  assert am.generated_chance(pop, 3)["edit_distance"] == pytest.approx(best)


def test_search_takes_improvements_smaller_than_a_thousandth(search_only):
  """2503 answers of 5 digits: the last step to the best string improves the mean distance by
  1/2503 (< 1e-3); a search that stopped short of it would report 2.4315, not 2.4311."""
  pop = population([[0, 0, 2, 3, 0], [0, 1, 1, 0, 3], [0, 1, 1, 1, 2], [0, 1, 2, 3, 3],
                    [0, 3, 2, 3, 0], [0, 3, 3, 1, 3], [0, 3, 3, 2, 2], [1, 0, 2, 3, 3],
                    [1, 0, 3, 0, 1], [1, 1, 1, 1, 1], [1, 2, 1, 2, 3], [1, 2, 1, 3, 3],
                    [1, 2, 3, 0, 0], [1, 3, 0, 0, 2], [1, 3, 2, 1, 2], [2, 1, 2, 3, 3],
                    [2, 3, 0, 0, 3], [2, 3, 2, 3, 2], [3, 0, 3, 0, 1], [3, 1, 0, 2, 0],
                    [3, 1, 1, 1, 1], [3, 1, 2, 1, 3], [3, 1, 3, 2, 2], [3, 2, 0, 1, 3],
                    [3, 3, 2, 0, 3], [3, 3, 2, 3, 1]],
                   [65, 1, 91, 12, 114, 45, 815, 38, 92, 12, 47, 2, 131, 1, 265, 210, 72, 65,
                    1, 37, 30, 10, 189, 121, 1, 36])
  best = brute_force_best(pop, 4)
  assert best == pytest.approx(6085 / 2503)
  assert am.generated_chance(pop, 4)["edit_distance"] == pytest.approx(best, abs=1e-12)


def test_every_string_is_scored_where_there_are_few(monkeypatch):
  """The population on which the search stops at 2.404 (above): 6^4 = 1,296 strings, all
  scored, give the brute-force best, 957/403. On 3-digit sums (every pair of 0-999, answers
  of 4 digits) the search stopped at 3.0667 and the best string, 1098, scores 3.0577: a
  chance read 0.3% too lenient, which a model between the two would have 'beaten'."""
  pop = population([[0, 1, 4, 0], [1, 0, 3, 2], [1, 1, 0, 5], [1, 2, 5, 1], [2, 0, 1, 3],
                    [2, 2, 2, 0], [2, 2, 5, 3], [2, 4, 0, 2], [3, 1, 1, 2], [3, 3, 3, 1],
                    [3, 4, 2, 5], [3, 5, 2, 5], [4, 1, 1, 3], [4, 2, 5, 3], [4, 5, 1, 5],
                    [5, 3, 0, 0], [5, 4, 5, 2], [5, 5, 0, 2]],
                   [2, 1, 1, 72, 29, 6, 30, 37, 37, 13, 20, 70, 4, 14, 49, 1, 12, 5])
  assert am.generated_chance(pop, 6)["edit_distance"] == pytest.approx(957 / 403)
  a, b = np.divmod(np.arange(1000 ** 2), 1000)
  sums = (a + b)[:, None] // 10 ** np.arange(3, -1, -1) % 10
  best = am.edit_distance(np.tile([1, 0, 9, 8], (len(sums), 1)), sums).mean()
  assert best == pytest.approx(3.057682)
  assert am.generated_chance(sums, 10)["edit_distance"] == pytest.approx(best)
  monkeypatch.setattr(am, "EXHAUSTIVE_STRINGS", 0)  # the control: the search alone
  assert am.generated_chance(sums, 10)["edit_distance"] > best + 0.008


def test_unique_rows_is_numpys_with_rows_as_integers():
  """_unique_rows sorts rows of small ids as one integer each (7 of 8 s of chance on a
  million sums went to np.unique(axis=0)): the same rows, order, counts and dtype."""
  rng = np.random.default_rng(0)
  for shape, ids in (((1000, 4), 10), ((300, 6), 257), ((5, 1), 2), ((0, 3), 5)):
    rows = rng.integers(0, ids, shape).astype(np.int32)
    got, want = am._unique_rows(rows), np.unique(rows, axis=0, return_counts=True)
    assert got[0].dtype == want[0].dtype
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
