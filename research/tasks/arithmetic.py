"""Arithmetic tasks for emergence (Wei 2022; Schaeffer 2023) and grokking (Power 2022; Nanda 2023).

Operations:
  add, mul            multi-digit a + b / a * b, operands uniform with `num_digits`
                      digits (zero-padded), answer n+1 (add) or 2n (mul) digits,
                      most significant first or (`reverse_answer`) least first.
                      Tokens: digits 0-9, '+' 10, '*' 11, '=' 12, ';' 13.
                      Example: "0 4 7 + 5 1 9 = 0 5 6 6".
                      A fixed `held_out_fraction` of the (a, b) pairs, chosen
                      by a hash of the operand digits (not the seed), is held
                      out: training (queries and in-context examples) never
                      sees them; the probe and `evaluate` ask only them.
  mod_add, mod_sub, mod_mul
                      a o b mod p in Nanda's format: tokens [a, b, '='] -> c,
                      vocabulary p + 1 ('=' is p). The p^2 pairs split once, from
                      the seed only, into `train_fraction` training pairs and the
                      held-out rest; `full_batch` trains on all training pairs
                      every step (grokking).
Few-shot: `num_shots` solved examples (each followed by ';' for digit tasks)
precede the query. The loss reads only answer tokens: the query's, plus the
shots' with `loss_on_shots`.

Probe (`probes/arithmetic.json`): exact match (true greedy autoregressive
decoding), per-token accuracy, token edit distance, log-likelihood and Brier
score with 95% intervals over `probe.num_prompts` held-out problems (digit
tasks; every held-out problem when there are fewer) or over every held-out
pair (modular), next to chance: the predictor that knows the answers' distribution over
every pair and ignores the operands (`answer_metrics.py`, `digit_chance.py`).
`evaluate` (every `train.eval_every` steps; `arithmetic_progress.py`) logs train/test
accuracy and loss, the weight norm and, for mod_add, Fourier progress measures (`fourier.py`).
Digit encoding and exact sums and products: `digits.py`.

Shape legend: B batch, T tokens per sequence, M answer tokens, V vocabulary,
N digits per operand, Q = p^2 pairs, C logit classes, K key frequencies.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from research import keys
from research.models import IOSpec
from research.analysis import answer_metrics as am
from research.tasks import digit_chance
from research.tasks.arithmetic_progress import ProgressMeasures
from research.tasks.digits import (  # noqa: F401 (the token ids are public here too)
    DIGIT_VOCAB, EQUALS, PLUS, SEP, TIMES, add_digits, int_digits, mul_digits, pair_hash)
from research.tasks.fields import ConfigError, choice, positive

OPERATIONS = ("add", "mul", "mod_add", "mod_sub", "mod_mul")
# Digit tasks list their pairs (to enumerate the held-out set and compute chance
# exactly) up to this many; beyond it they sample.
ENUMERATE_PAIRS = 10 ** 6
CHANCE_SAMPLES = 100_000  # held-out problems drawn (fixed key) to estimate chance beyond it


def num_train_pairs(modulus: int, train_fraction: float) -> int:
  """Training pairs of a modular task; configs/grokking.py computes the same."""
  return int(modulus * modulus * train_fraction)


@jax.jit
def _write_argmax(tokens_BxT, logits_BxTxV, j):
  """tokens[:, j + 1] = argmax of the prediction read at position j (j traced: one compile)."""
  next_B = jnp.argmax(logits_BxTxV[:, j], axis=-1).astype(tokens_BxT.dtype)
  return tokens_BxT.at[:, j + 1].set(next_B)


class ArithmeticTask(ProgressMeasures):
  """Sampler, input encoding, loss and probe of arithmetic tasks; the progress measures logged
  every eval_every steps are in arithmetic_progress.py."""

  name = "arithmetic"
  probe_name = "arithmetic"

  @staticmethod
  def build_uses_seed(cfg) -> bool:
    return cfg.operation.startswith("mod_")  # the modular train/test split; digits: a fixed hash

  @staticmethod
  def check_config(cfg) -> None:
    """Raises ConfigError (one line) on the first invalid config.task field."""
    t = cfg.task
    choice(cfg, "task", "operation", OPERATIONS)
    positive(cfg, "task", "num_digits", "eval_problems", "num_key_freqs")
    positive(cfg, "task", "num_shots", allow_zero=True)
    modular = t.operation.startswith("mod_")
    half = (t.modulus - 1) // 2
    if modular and t.modulus < 2:
      raise ConfigError(f"config.task.modulus={t.modulus} must be at least 2")
    if not 0 < t.train_fraction <= 1:
      raise ConfigError(f"config.task.train_fraction={t.train_fraction} must be in (0, 1]")
    if not modular and not 0 < t.held_out_fraction < 1:
      raise ConfigError(f"config.task.held_out_fraction={t.held_out_fraction} must be in (0, 1)")
    if modular and num_train_pairs(t.modulus, t.train_fraction) < 1:
      raise ConfigError(f"config.task.train_fraction={t.train_fraction} leaves no training pairs")
    if t.operation == "mod_add" and t.num_key_freqs > half:
      raise ConfigError(f"config.task.num_key_freqs={t.num_key_freqs} exceeds the "
                        f"{half} frequencies of modulus {t.modulus}")
    freqs = list(t.key_freqs)
    if len(set(freqs)) != len(freqs) or any(not 1 <= f <= half for f in freqs):
      raise ConfigError(f"config.task.key_freqs={tuple(freqs)} must be distinct frequencies in "
                        f"[1, (modulus-1)/2 = {half}]; () = the largest per eval")
    if t.full_batch:
      if not modular or t.num_shots:
        raise ConfigError("config.task.full_batch=True needs a mod_* operation and num_shots=0")
      n = num_train_pairs(t.modulus, t.train_fraction)
      if cfg.train.batch_size != n:
        raise ConfigError(f"config.train.batch_size={cfg.train.batch_size} must equal the "
                          f"{n} training pairs (int(modulus^2 * train_fraction)) when "
                          f"config.task.full_batch=True; set --config.train.batch_size={n}")

  def __init__(self, cfg, seed: int):
    self.cfg = cfg
    self.op = cfg.operation
    if self.op not in OPERATIONS:
      raise ValueError(f"config.task.operation={self.op!r} is not valid; choose one of: "
                       + ", ".join(OPERATIONS))
    self.modular = self.op.startswith("mod_")
    self.shots = int(cfg.num_shots)
    self.full_batch = bool(cfg.full_batch)
    if self.modular:
      p = self.p = int(cfg.modulus)
      self.vocab, self.answer_len, self.example_len = p + 1, 1, 4
      self.num_symbols = p
      perm = np.asarray(jax.random.permutation(
          jax.random.fold_in(jax.random.key(seed), keys.TASK_POOL), p * p))
      n_train = num_train_pairs(p, float(cfg.train_fraction))
      pair = lambda idx: np.stack([idx // p, idx % p], axis=1).astype(np.int32)
      self.train_pairs, self.test_pairs = pair(np.sort(perm[:n_train])), pair(np.sort(perm[n_train:]))
    else:
      n = self.n = int(cfg.num_digits)
      self.vocab, self.num_symbols = DIGIT_VOCAB, 10
      self.answer_len = digit_chance.answer_len(self.op, n)
      self.example_len = 2 * n + 2 + self.answer_len  # + ';' when followed by another example
      self.held_out_fraction = float(cfg.held_out_fraction)
      # A pair is held out iff its hash < threshold: a fraction of the 2^32 hash values.
      self._threshold = min(max(round(self.held_out_fraction * 2 ** 32), 1), 2 ** 32 - 1)
      self.num_pairs = 10 ** (2 * n)
      self.held_out_pairs = self._list_held_out() if self.num_pairs <= ENUMERATE_PAIRS else None
    self.stride = self.example_len + (0 if self.modular else 1)
    self.seq_len = self.shots * self.stride + self.example_len
    # Target position t predicts token t + 1; answers sit at the end of each example.
    self.query_answer_pos = np.arange(self.seq_len - self.answer_len, self.seq_len)
    mask_T = np.zeros(self.seq_len, bool)
    mask_T[self.query_answer_pos] = True
    if cfg.loss_on_shots:
      for s in range(self.shots):
        end = s * self.stride + self.example_len
        mask_T[end - self.answer_len:end] = True
    self.loss_mask = mask_T[1:]                          # over targets, T - 1
    self.query_mask = np.zeros(self.seq_len - 1, bool)
    self.query_mask[self.query_answer_pos - 1] = True
    self.io = IOSpec(output_dim=self.vocab, seq_len=self.seq_len - 1, vocab_size=self.vocab)
    self._eval_cache = {}

  @property
  def tokens_per_example(self) -> int:
    return self.seq_len - 1

  # --- data -----------------------------------------------------------------
  def is_held_out(self, a_BxN, b_BxN):
    """Per row: is the pair (a, b) held out (digit tasks)?"""
    return pair_hash(a_BxN, b_BxN) < jnp.uint32(self._threshold)

  def _every_pair(self):  # every (a, b) of a digit task, as rows of integers
    return np.stack(np.divmod(np.arange(self.num_pairs), 10 ** self.n), axis=1)

  def _list_held_out(self):
    """Every held-out (a, b) of a digit task, as rows of integers."""
    n = self.n
    a, b = self._every_pair().T
    held = np.asarray(self.is_held_out(int_digits(a, n), int_digits(b, n)))
    if not 0 < held.sum() < self.num_pairs:
      raise ValueError(
          f"config.task.held_out_fraction={self.held_out_fraction} holds out {held.sum()} of "
          f"the {self.num_pairs} {n}-digit pairs; choose a fraction that leaves both a "
          "held-out and a training pair (or use more digits)")
    return np.stack([a[held], b[held]], axis=1).astype(np.int32)

  def _operands(self, key, batch_size: int, held_out: bool):
    """Operand digits (B x N each) uniform over the training or the held-out pairs.

    Each row is redrawn until it lands in the wanted set (a while_loop, so it
    works under jit): the first accepted draw of an i.i.d. sequence is uniform
    over the accepted set, so the sampler is exact, not approximately so.
    """
    def draw(k):
      ka, kb = jax.random.split(k)
      return (jax.random.randint(ka, (batch_size, self.n), 0, 10),
              jax.random.randint(kb, (batch_size, self.n), 0, 10))

    def redo_B(a, b):
      return self.is_held_out(a, b) != held_out

    def body(state):
      i, a, b = state
      new_a, new_b = draw(jax.random.fold_in(key, i))
      redo = redo_B(a, b)[:, None]
      return i + 1, jnp.where(redo, new_a, a), jnp.where(redo, new_b, b)

    _, a, b = jax.lax.while_loop(lambda st: jnp.any(redo_B(st[1], st[2])), body,
                                 (1, *draw(jax.random.fold_in(key, 0))))
    return a, b

  def _examples(self, key, batch_size: int, pairs=None, held_out: bool = False):
    """Solved examples as tokens, B x example_len: from `pairs` (rows a, b) when
    given, else drawn (modular: from the training pairs; digits: from the
    training pairs, or the held-out ones with `held_out`)."""
    if self.modular:
      if pairs is None:
        pairs = self.train_pairs
      pairs = jnp.asarray(pairs)
      if key is not None:
        pairs = pairs[jax.random.randint(key, (batch_size,), 0, pairs.shape[0])]
      a, b = pairs[:, 0], pairs[:, 1]
      c = {"mod_add": a + b, "mod_sub": a - b, "mod_mul": a * b}[self.op] % self.p
      eq = jnp.full_like(a, self.p)
      return jnp.stack([a, b, eq, c], axis=1).astype(jnp.int32)
    if pairs is not None:
      batch_size = len(pairs)
      a_BxN, b_BxN = (jnp.asarray(int_digits(pairs[:, i], self.n)) for i in (0, 1))
    else:
      a_BxN, b_BxN = self._operands(key, batch_size, held_out)
    ans_lsb = (add_digits if self.op == "add" else mul_digits)(a_BxN, b_BxN)
    ans = ans_lsb if self.cfg.reverse_answer else ans_lsb[:, ::-1]
    col = lambda v: jnp.full((batch_size, 1), v, jnp.int32)
    return jnp.concatenate([a_BxN, col(PLUS if self.op == "add" else TIMES), b_BxN,
                            col(EQUALS), ans], axis=1).astype(jnp.int32)

  def _sequences(self, key, batch_size: int, query_pairs=None, held_out: bool = False):
    """Shots (always training problems) followed by the query: B x T. The query is
    `query_pairs` when given, else drawn (held-out problems with `held_out`)."""
    kq, ks = jax.random.split(key)
    query = self._examples(None if query_pairs is not None else kq, batch_size, query_pairs,
                           held_out)
    parts = []
    for s in range(self.shots):
      ex = self._examples(jax.random.fold_in(ks, s), query.shape[0])
      if not self.modular:
        ex = jnp.concatenate([ex, jnp.full((ex.shape[0], 1), SEP, jnp.int32)], axis=1)
      parts.append(ex)
    return jnp.concatenate(parts + [query], axis=1)

  def sample(self, key, step, batch_size: int):
    """{tokens: B x T} of training problems only. Full batch: the fixed training set
    (a function of the seed only)."""
    del step  # fresh problems every step come from the key
    if self.full_batch:
      return {"tokens": self._sequences(key, len(self.train_pairs), self.train_pairs)}
    return {"tokens": self._sequences(key, batch_size)}

  def model_inputs(self, batch):
    return batch["tokens"][:, :-1]

  def loss(self, outputs, batch):
    """Cross-entropy on answer tokens; exact match is the query's (teacher-forced)."""
    targets_BxT = batch["tokens"][:, 1:]
    logp_BxTxV = jax.nn.log_softmax(outputs.astype(jnp.float32))
    nll_BxT = -jnp.take_along_axis(logp_BxTxV, targets_BxT[..., None], axis=-1)[..., 0]
    mask_T = jnp.asarray(self.loss_mask, jnp.float32)
    denom = nll_BxT.shape[0] * mask_T.sum()
    correct_BxT = jnp.argmax(outputs, axis=-1) == targets_BxT
    # All query answer tokens right under teacher forcing <=> greedy decoding is right.
    exact = jnp.all(correct_BxT | ~jnp.asarray(self.query_mask), axis=1)
    return jnp.sum(nll_BxT * mask_T) / denom, {
        "token_accuracy": jnp.sum(correct_BxT * mask_T) / denom,
        "exact_match": jnp.mean(exact.astype(jnp.float32))}

  # --- probe ----------------------------------------------------------------
  def greedy_answers(self, predict_fn, tokens_BxT):
    """True autoregressive greedy decoding of the query answer, one token at a time.

    The answer slots are blanked first; each step runs the (causal) model on the
    sequence so far and writes the argmax into the next slot, so later digits see
    the model's own earlier digits, never the target's.
    """
    pos = self.query_answer_pos
    toks = jnp.asarray(tokens_BxT).at[:, pos].set(0)
    for j in pos - 1:
      toks = _write_argmax(toks, predict_fn(toks[:, :-1]), int(j))
    return np.asarray(toks[:, pos])

  def _score(self, predict_fn, tokens_BxT) -> dict[str, np.ndarray]:
    logits_BxTxV = predict_fn(tokens_BxT[:, :-1])
    at = self.query_answer_pos - 1
    probs_BxMxV = np.asarray(jax.nn.softmax(logits_BxTxV[:, at].astype(jnp.float32)), np.float64)
    teacher_BxM = np.asarray(jnp.argmax(logits_BxTxV[:, at], axis=-1))
    target_BxM = np.asarray(tokens_BxT[:, self.query_answer_pos])
    greedy_BxM = teacher_BxM if self.answer_len == 1 else self.greedy_answers(predict_fn, tokens_BxT)
    return am.per_problem(greedy_BxM, target_BxM, teacher_BxM, probs_BxMxV)

  def _probe_split(self, predict_fn, key, probe_cfg, bs: int, pairs=None) -> tuple[dict, int]:
    """Metrics over `pairs`, or over `probe.num_prompts` held-out problems drawn.

    Every forward pass has `bs` rows (the last chunk is padded, then cut), so the
    model compiles once per run whatever the split sizes.
    """
    total = len(pairs) if pairs is not None else int(probe_cfg.num_prompts)
    vals = []
    for start in range(0, total, bs):
      k = jax.random.fold_in(key, start)
      n = min(bs, total - start)
      chunk = None
      if pairs is not None:
        chunk = pairs[start:start + n]
        chunk = np.concatenate([chunk, np.repeat(chunk[:1], bs - n, axis=0)])
      scores = self._score(predict_fn, self._sequences(k, bs, chunk, held_out=True))
      vals.append({m: v[:n] for m, v in scores.items()})
    per = {m: np.concatenate([v[m] for v in vals]) for m in am.METRICS}
    return am.summarise(per, resamples=int(probe_cfg.bootstrap),
                        seed=int(probe_cfg.bootstrap_seed)), total

  @functools.cached_property
  def chance(self) -> tuple[dict[str, float], str]:
    """Chance on the probe's problems and how it was had: the answer distribution of every
    pair, not the held-out ones' own (a hash no model can know picks those: 0.283 vs 0.230)."""
    answers_of = lambda pairs: np.asarray(self._examples(None, 0, pairs))[:, -self.answer_len:]
    if self.modular:  # likewise: the test pairs' own statistics would read chance high
      pairs = self.test_pairs if len(self.test_pairs) else self.train_pairs
      every = np.stack(np.divmod(np.arange(self.p ** 2), self.p), axis=1)
      return am.chance_levels(answers_of(pairs), self.num_symbols,
                              population=answers_of(every)), (
          f"exact: the answer statistics of all {self.p ** 2} pairs, scored on all "
          f"{len(pairs)} evaluated pairs")
    if self.held_out_pairs is not None:
      return am.chance_levels(answers_of(self.held_out_pairs), self.num_symbols,
                              population=answers_of(self._every_pair())), (
          f"exact: the answer statistics of all {self.num_pairs} pairs, scored on all "
          f"{len(self.held_out_pairs)} held-out problems")
    key = jax.random.key(keys.ARITHMETIC_CHANCE)  # fixed: the same chance for every seed and size
    answers = np.asarray(self._examples(key, CHANCE_SAMPLES, held_out=True))[:, -self.answer_len:]
    return digit_chance.chance_from_sample(self.op, self.n, not self.cfg.reverse_answer,
                                           answers, self.num_symbols)

  def probe(self, predict_fn, key, probe_cfg, *, step: int) -> dict[str, dict]:
    """Emergence metrics with 95% intervals on held-out problems, next to chance."""
    chance, chance_how = self.chance
    want = int(probe_cfg.num_prompts)
    result = {"operation": self.op, "num_shots": self.shots, "answer_len": self.answer_len,
              "step": int(step), "higher_is_better": am.HIGHER_IS_BETTER,
              "metric_definitions": am.DEFINITIONS, "chance": chance,
              "chance_definition": am.CHANCE_TEXT, "chance_definitions": am.CHANCE_DEFINITIONS,
              "chance_computed": chance_how}
    if self.modular:
      result |= {"modulus": self.p, "train_fraction": float(self.cfg.train_fraction)}
      held_out = len(self.test_pairs) > 0
      main = self.test_pairs if held_out else self.train_pairs
      bs = min(int(probe_cfg.batch_size), max(len(self.test_pairs), len(self.train_pairs)))
      result["metrics"], result["num_problems"] = self._probe_split(
          predict_fn, key, probe_cfg, bs, main)
      result["split"] = "test (every held-out pair)" if held_out else "all pairs"
      if len(main) < want:
        result["note"] = (f"{len(main)} problems, fewer than probe.num_prompts={want}: they are "
                          f"every {'held-out ' if held_out else ''}pair (p^2 = {self.p ** 2} "
                          f"pairs, {len(self.train_pairs)} for training), the whole "
                          f"{'held-out ' if held_out else ''}space, each asked once")
      if held_out:
        result["train_metrics"], _ = self._probe_split(
            predict_fn, jax.random.fold_in(key, 1), probe_cfg, bs, self.train_pairs)
    else:
      result |= {"num_digits": self.n, "reverse_answer": bool(self.cfg.reverse_answer),
                 "held_out_fraction": self.held_out_fraction}
      held = pairs = self.held_out_pairs
      if held is None:
        result["split"] = ("held-out problems, drawn uniformly (never trained on; "
                           "held out by a fixed hash of (a, b))")
      else:
        result["held_out_problems"] = len(held)
        if len(held) > want:  # a subset without repeats, the same for every size of a seed
          order = jax.random.permutation(jax.random.split(key)[1], len(held))
          pairs = held[np.sort(np.asarray(order[:want]))]
          result["split"] = (f"{want} of the {len(held)} held-out problems (never trained on; "
                             "held out by a fixed hash of (a, b))")
        else:
          result["split"] = "every held-out problem (never trained on)"
          if len(held) < want:
            result["note"] = (f"{len(held)} problems, fewer than probe.num_prompts={want}: "
                              f"they are the whole held-out set ({self.held_out_fraction:g} of "
                              f"the {self.num_pairs} pairs), each asked once")
      bs = min(int(probe_cfg.batch_size), want if pairs is None else len(pairs))
      result["metrics"], result["num_problems"] = self._probe_split(
          predict_fn, key, probe_cfg, bs, pairs)
    # research.results' probes.arithmetic.* columns: each metric's mean over the probe's
    # problems, exact match's with its 95% interval (a second trial found only the 1,024
    # evaluation problems' exact match in the table, off the experiment's figure by 0.02).
    m = result["metrics"]
    result["summary"] = {k: v["mean"] for k, v in m.items()} | (
        {"exact_match_lo": m["exact_match"]["lo"], "exact_match_hi": m["exact_match"]["hi"]}
        if "exact_match" in m else {})
    return {self.probe_name: result}

  def render(self, probe_json, out_png):
    from research.analysis import emergence_plots
    return emergence_plots.render_arithmetic_probe(probe_json, out_png)
