"""research/probes/few_shot.py: k-shot prompts and their scoring, with an oracle model (must
score 1 and above chance) and a uniform model (the negative control: never above chance)."""
import numpy as np
import pytest

from research.data.text import ByteTokenizer
from research.probes import few_shot

TOK = ByteTokenizer()
L = 128


def _oracle(pairs):
  """A 'model' that knows every (prompt, answer): after a known prompt followed by j answer
  tokens it puts all its mass on answer token j."""
  table = {tuple(TOK.encode(p)): TOK.encode(a) for p, a in pairs}
  lengths = sorted({len(p) for p in table})

  def predict_fn(x_BxL):
    x_BxL = np.asarray(x_BxL)
    logits = np.zeros(x_BxL.shape + (TOK.vocab_size,), np.float32)
    for b, row in enumerate(x_BxL):
      for n in lengths:
        answer = table.get(tuple(row[:n]))
        if answer is not None:
          for j, t in enumerate(answer):
            logits[b, n - 1 + j, t] = 30.0
    return logits
  return predict_fn


def _uniform(x_BxL):
  return np.zeros(np.asarray(x_BxL).shape + (TOK.vocab_size,), np.float32)


def test_prompts_are_deterministic_and_fit_the_context():
  for task in few_shot.TASKS:
    for k in few_shot.SHOTS:
      a = few_shot.prompts(task, k, 20, seed=3)
      assert a == few_shot.prompts(task, k, 20, seed=3)
      assert a != few_shot.prompts(task, k, 20, seed=4)
      assert all(p.count("\n") == k for p, _ in a)
      assert max(len(p) + len(ans) for p, ans in a) <= L


def test_lookup_answers_are_in_the_context_only_when_k_is_positive():
  for p, a in few_shot.prompts("lookup", 4, 50, seed=0):
    key = p.rsplit("\n", 1)[-1][:-1]
    assert f"{key}={a}" in p
  assert all("\n" not in p for p, _ in few_shot.prompts("lookup", 0, 10, seed=0))


def _run(predict_fn, tasks, shots, num=20):
  return few_shot.evaluate(predict_fn, TOK, L, tasks=tasks, shots=shots, num_prompts=num,
                           batch_size=8, bootstrap=200)


def test_an_oracle_scores_one_and_is_above_chance_on_every_metric():
  tasks, shots, num = ("copy", "add", "lookup"), (0, 2), 20
  pairs = [pq for t in tasks for k in shots for pq in few_shot.prompts(t, k, num, seed=0)]
  res = _run(_oracle(pairs), tasks, shots, num)
  for t in tasks:
    for k in shots:
      cell = res["tasks"][t][str(k)]
      assert cell["exact_match"]["mean"] == 1.0 and cell["token_accuracy"]["mean"] == 1.0
      assert cell["edit_distance"]["mean"] == 0.0
      assert cell["log_likelihood"]["mean"] > -1e-6
      for metric in ("exact_match", "token_accuracy", "log_likelihood", "brier"):
        assert few_shot.above_chance(cell, metric), (t, k, metric)


def test_negative_control_a_uniform_model_is_never_above_chance():
  res = _run(_uniform, ("copy", "lookup"), (0, 4))
  for t, cells in res["tasks"].items():
    for k, cell in cells.items():
      assert cell["exact_match"]["mean"] == 0.0
      answer_tokens = 4 if t == "copy" else 2
      assert cell["log_likelihood"]["mean"] == pytest.approx(
          -answer_tokens * np.log(TOK.vocab_size), rel=1e-6)
      for metric in ("exact_match", "token_accuracy", "log_likelihood", "brier"):
        assert not few_shot.above_chance(cell, metric), (t, k, metric)


def test_bad_requests_raise_with_the_fix():
  with pytest.raises(ValueError, match="unknown few-shot task"):
    few_shot.evaluate(_uniform, TOK, L, tasks=("sort",))
  with pytest.raises(ValueError, match="use fewer shots"):
    few_shot.evaluate(_uniform, TOK, 16, tasks=("copy",), shots=(8,), num_prompts=4)


def test_chance_is_the_task_answer_distribution_not_the_prompts_drawn():
  # Teacher-forced chance conditions on the true answer prefix; over the 20 answers drawn,
  # each 4-letter prefix is seen once and would look predictable. Copy's letters are
  # uniform: chance token accuracy is 1/26 per letter, the log-likelihood 4 log(1/26).
  res = _run(_uniform, ("copy", "add"), (0,))
  copy = res["tasks"]["copy"]["0"]["chance"]
  assert copy["token_accuracy"] == pytest.approx(1 / 26)
  assert copy["log_likelihood"] == pytest.approx(4 * np.log(1 / 26))
  assert copy["exact_match"] == pytest.approx(26.0 ** -4)
  # add: a + b over 10..49 twice; the leading digit is 2-9, so chance beats 1/10.
  add = res["tasks"]["add"]["0"]["chance"]
  assert add == few_shot.population_chance(TOK, "add") and add["token_accuracy"] > 0.15


def test_every_drawn_answer_is_in_its_tasks_chance_population():
  """Chance is computed over answer_population: every answer the generator can draw (lookup
  values 00..99, at any k) must be in it, or chance is another task's (a mutation audit left
  00-09 out unseen)."""
  for task in few_shot.TASKS:
    population = set(few_shot.answer_population(task))
    for k in (0, 1, 4):
      drawn = {a for _, a in few_shot.prompts(task, k, 2000, seed=0)}
      assert drawn <= population, (task, k, sorted(drawn - population)[:5])


def test_fits_is_true_at_exactly_the_longest_prompt_and_answer():
  """`fits` admits a context of exactly prompt + answer tokens (the answer's
  last token needs no position after it); `< seq_len` passed."""
  pairs = few_shot.prompts("add", 2, 30, seed=0)
  longest = max(len(p) + len(a) for p, a in pairs)   # byte tokenizer: one token a byte
  assert longest == max(len(TOK.encode(p)) + len(TOK.encode(a)) for p, a in pairs)
  assert few_shot.fits("add", 2, TOK, longest, 30)
  assert not few_shot.fits("add", 2, TOK, longest - 1, 30)


def test_training_documents_draw_every_shot_count_and_stop_at_num_bytes():
  """K = 1..max_shots (max_shots included), and the byte budget counts one
  EOS per document: the documents stop at the first that reaches num_bytes."""
  docs = few_shot.training_documents(4000, max_shots=2, seed=0)
  shots = {d.count("\n") for d in docs}   # a k-shot document has k demonstration lines
  assert shots == {1, 2}
  sizes = [len(d.encode()) + 1 for d in docs]
  assert sum(sizes[:-1]) < 4000 <= sum(sizes)


def test_lookup_values_cover_the_whole_chance_population():
  """Lookup values are uniform over 00..99, the population chance is taken
  over; values drawn from 00..98 (99 never drawn) kept drawn <= population and passed.
  2000 draws miss a given value with probability 0.99^2000 ~ 2e-9."""
  drawn = {a for _, a in few_shot.prompts("lookup", 4, 2000, seed=0)}
  assert drawn == set(few_shot.answer_population("lookup"))
  sums = {a for _, a in few_shot.prompts("add", 0, 20000, seed=0)}
  assert sums == set(few_shot.answer_population("add"))   # 20..98: 49+49 included


def test_a_prompt_that_fits_without_its_answer_is_refused_with_the_fix():
  """The context must hold prompt + answer (teacher forcing feeds the
  whole answer). add at k = 0 is `23+41=` (6 bytes) + `64` (2): a context of 7 is refused
  with the fix, 8 is exactly enough. Counting the prompt alone passed, then failed later
  in numpy with an unrelated broadcast error."""
  kw = dict(tasks=("add",), shots=(0,), num_prompts=4, batch_size=4, bootstrap=10)
  with pytest.raises(ValueError, match="take 8 tokens, more than the model's context of 7"):
    few_shot.evaluate(_uniform, TOK, 7, **kw)
  res = few_shot.evaluate(_uniform, TOK, 8, **kw)
  assert res["tasks"]["add"]["0"]["exact_match"]["mean"] == 0.0
