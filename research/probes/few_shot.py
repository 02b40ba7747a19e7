"""k-shot accuracy of a language model on tasks stated as text prompts (issue 18 §3).

A prompt is k demonstrations, one per line, then the query; the model must continue it with
the answer. Every task is one a corpus of code or text makes learnable *in context*: the
answer is fixed by the demonstrations (or, for `lookup`, can only be found in them), so k = 0
measures what the model knows without context and the rise with k is in-context learning.

  copy     `qwer>qwer`: repeat 4 random lowercase letters (what induction heads do).
  add      `23+41=64`: two-digit sums in 10..49 + 10..49 (always a two-digit answer).
  lookup   k `key=val` lines (3-letter keys, 2-digit values), then one of their keys: the
           value can be read only from the context (k = 0 has no line and is chance).

Every answer is scored with research/analysis/answer_metrics.py, as the arithmetic task's
answers are (Schaeffer et al.'s comparison): exact match of the greedy continuation (Wilson
interval), per-token teacher-forced accuracy, answer log-likelihood, Brier score and edit
distance (bootstrap intervals), beside the chance level of each metric (the best
input-independent predictor on the same answers).

`evaluate(predict_fn, tokenizer, seq_len, ...)` needs only `predict_fn(tokens_BxL) -> logits
BxLxV` and the run's tokenizer, so it runs on any checkpoint of any LM run. Prompts are
right-padded with PAD: the model is causal, so padding after the answer changes nothing.
Shape legend: N prompts, B batch, L context, M answer tokens, V vocabulary.
"""
from __future__ import annotations

import itertools
import string

import numpy as np

from research.analysis import answer_metrics as am

TASKS = ("copy", "add", "lookup")
SHOTS = (0, 1, 2, 4, 8)
PAD = 0  # research/data/text.py's PAD id (shared by every tokenizer)


def _letters(rng, n: int) -> str:
  return "".join(rng.choice(list(string.ascii_lowercase), n))


def _copy(rng, k: int) -> tuple[str, str]:
  lines = [f"{x}>{x}" for x in (_letters(rng, 4) for _ in range(k))]
  query = _letters(rng, 4)
  return "\n".join(lines + [f"{query}>"]), query


def _add(rng, k: int) -> tuple[str, str]:
  pairs = rng.integers(10, 50, (k + 1, 2))
  lines = [f"{a}+{b}={a + b}" for a, b in pairs[:k]]
  a, b = pairs[k]
  return "\n".join(lines + [f"{a}+{b}="]), str(a + b)


def _lookup(rng, k: int) -> tuple[str, str]:
  keys = []
  while len(keys) < max(k, 1):  # distinct keys: one key, one value
    key = _letters(rng, 3)
    keys += [key] if key not in keys else []
  values = [f"{v:02d}" for v in rng.integers(0, 100, len(keys))]
  if k == 0:  # nothing to look up: the value is a fresh draw the model cannot know
    return f"{keys[0]}=", values[0]
  i = int(rng.integers(0, k))
  lines = [f"{key}={val}" for key, val in zip(keys, values)]
  return "\n".join(lines + [f"{keys[i]}="]), values[i]


GENERATORS = {"copy": _copy, "add": _add, "lookup": _lookup}


def answer_population(task: str) -> list[str]:
  """Every answer of `task`, each as often as the generator's draws make it likely: the
  distribution the evaluated answers are drawn from, the same for every k (copy: 4 uniform
  letters; add: a + b, a and b uniform in 10..49; lookup: a uniform 2-digit value)."""
  if task == "copy":
    letters = string.ascii_lowercase
    return ["".join(t) for t in itertools.product(letters, repeat=4)]
  if task == "add":
    return [str(a + b) for a in range(10, 50) for b in range(10, 50)]
  if task == "lookup":
    return [f"{v:02d}" for v in range(100)]
  raise ValueError(f"unknown few-shot task {task!r}; choose from {list(TASKS)}")


def population_chance(tokenizer, task: str) -> dict[str, float]:
  """am.chance_levels over `answer_population(task)`, tokenised: the chance of the task's
  answer distribution. Not that of the prompts drawn: with prefix-conditional
  (teacher-forced) chance, a few hundred 4-letter answers each have a prefix of their own and
  would read as predictable (copy: token accuracy ~0.6 for the true 1/26).

  Cached by the tokenizer's vocabulary, not the object: every run and checkpoint a process
  probes rebuilds its tokenizer, and copy's 456,976 answers take seconds to encode and score."""
  return dict(_population_chance(_vocabulary_key(tokenizer), task, tokenizer))


def _vocabulary_key(tokenizer) -> tuple:
  return (type(tokenizer).__name__, int(tokenizer.vocab_size),
          tuple(getattr(tokenizer, "chars", ())), tuple(getattr(tokenizer, "words", ())))


_CHANCE_CACHE: dict[tuple, dict[str, float]] = {}


def _population_chance(key: tuple, task: str, tokenizer) -> dict[str, float]:
  if (key, task) not in _CHANCE_CACHE:
    if len(_CHANCE_CACHE) >= 16:
      _CHANCE_CACHE.pop(next(iter(_CHANCE_CACHE)))
    answers = np.stack([np.asarray(tokenizer.encode(a), np.int32)
                        for a in answer_population(task)])
    _CHANCE_CACHE[key, task] = am.chance_levels(answers, int(tokenizer.vocab_size))
  return _CHANCE_CACHE[key, task]


def prompts(task: str, k: int, num: int, seed: int) -> list[tuple[str, str]]:
  """`num` (prompt, answer) pairs of `task` with k demonstrations; the same for every model
  and checkpoint given (task, k, num, seed)."""
  rng = np.random.default_rng([seed, TASKS.index(task), k])
  return [GENERATORS[task](rng, k) for _ in range(num)]


# Training documents draw from their own stream: a probe's prompts (seeded by `seed`) are never
# generated for training on purpose; a chance collision of random letters teaches nothing.
TRAINING_SALT = 918_273


def training_documents(num_bytes: int, max_shots: int = 8, seed: int = 0) -> list[str]:
  """k-shot documents of every task (k = 1..max_shots uniformly, the task in turn), each a
  prompt followed by its answer, until they hold `num_bytes` UTF-8 bytes: what a corpus mixes
  in (config.task.synthetic_fraction) so that the few-shot tasks have something to learn from."""
  rng = np.random.default_rng([TRAINING_SALT, seed])
  docs, total = [], 0
  while total < num_bytes:
    task = TASKS[len(docs) % len(TASKS)]
    prompt, answer = GENERATORS[task](rng, int(rng.integers(1, max_shots + 1)))
    docs.append(prompt + answer)
    total += len(docs[-1]) + 1  # + the EOS that packing adds
  return docs


def _encode(tokenizer, pairs, seq_len: int) -> tuple[list[np.ndarray], np.ndarray]:
  encoded = [np.asarray(tokenizer.encode(p), np.int32) for p, _ in pairs]
  answers = np.stack([np.asarray(tokenizer.encode(a), np.int32) for _, a in pairs])
  longest = max(len(e) for e in encoded) + answers.shape[1]
  if longest > seq_len:
    raise ValueError(f"a prompt and its answer take {longest} tokens, more than the model's "
                     f"context of {seq_len}; use fewer shots")
  return encoded, answers


def fits(task: str, k: int, tokenizer, seq_len: int, num: int, seed: int = 0) -> bool:
  """Whether every prompt of (task, k) and its answer fit a context of seq_len tokens."""
  return max(len(tokenizer.encode(p)) + len(tokenizer.encode(a))
             for p, a in prompts(task, k, num, seed)) <= seq_len


def _batch(rows: list[np.ndarray], batch: int, seq_len: int) -> np.ndarray:
  x = np.full((batch, seq_len), PAD, np.int32)
  for i, r in enumerate(rows):
    x[i, :len(r)] = r
  return x


def _score_batch(predict_fn, prompts_B: list[np.ndarray], answers_BxM: np.ndarray,
                 batch: int, seq_len: int) -> dict[str, np.ndarray]:
  """answer_metrics.per_problem for up to `batch` prompts (padded to a fixed batch, so one
  compiled program serves every call)."""
  n, m = answers_BxM.shape
  starts = np.array([len(p) - 1 for p in prompts_B])  # position whose logits predict answer[0]
  rows_B = np.arange(n)[:, None]
  cols_BxM = starts[:, None] + np.arange(m)[None]
  # Teacher-forced: the true answer follows the prompt; logits at starts + j predict token j.
  forced = _batch([np.concatenate([p, a]) for p, a in zip(prompts_B, answers_BxM)], batch, seq_len)
  logits = np.asarray(predict_fn(forced), np.float64)[:n][rows_B, cols_BxM]  # B x M x V
  logits -= logits.max(-1, keepdims=True)
  probs_BxMxV = np.exp(logits)
  probs_BxMxV /= probs_BxMxV.sum(-1, keepdims=True)
  # Greedy: the model's own continuation, one token per call.
  greedy_BxM = np.zeros_like(answers_BxM)
  for j in range(m):
    x = _batch([np.concatenate([p, g[:j]]) for p, g in zip(prompts_B, greedy_BxM)], batch, seq_len)
    greedy_BxM[:, j] = np.asarray(predict_fn(x))[:n][np.arange(n), starts + j].argmax(-1)
  return am.per_problem(greedy_BxM, answers_BxM, probs_BxMxV.argmax(-1), probs_BxMxV)


def evaluate(predict_fn, tokenizer, seq_len: int, *, tasks=TASKS, shots=SHOTS,
             num_prompts: int = 200, batch_size: int = 100, seed: int = 0,
             bootstrap: int = 1000) -> dict:
  """{task: {k: {metric: {mean, lo, hi, interval}, 'chance': {metric: value}}}} plus the
  definitions; raises ValueError for an unknown task or prompts longer than the context."""
  unknown = sorted(set(tasks) - set(TASKS))
  if unknown:
    raise ValueError(f"unknown few-shot task(s) {unknown}; choose from {list(TASKS)}")
  out = {"tasks": {}, "num_prompts": int(num_prompts), "seed": int(seed),
         "higher_is_better": am.HIGHER_IS_BETTER, "metric_definitions": am.DEFINITIONS,
         "chance_definition": am.CHANCE_TEXT}
  for task in tasks:
    out["tasks"][task] = {}
    for k in shots:
      encoded, answers = _encode(tokenizer, prompts(task, k, num_prompts, seed), seq_len)
      per = [_score_batch(predict_fn, encoded[s:s + batch_size], answers[s:s + batch_size],
                          batch_size, seq_len) for s in range(0, num_prompts, batch_size)]
      values = {name: np.concatenate([p[name] for p in per]) for name in am.METRICS}
      cell = am.summarise(values, resamples=bootstrap, seed=seed)
      cell["chance"] = population_chance(tokenizer, task)
      out["tasks"][task][str(k)] = cell
  return out


def above_chance(cell: dict, metric: str) -> bool:
  """Whether a metric's whole 95% interval is on the better side of its chance level."""
  value, chance = cell[metric], cell["chance"][metric]
  return value["lo"] > chance if am.HIGHER_IS_BETTER[metric] else value["hi"] < chance
