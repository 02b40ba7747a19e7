"""GINC: in-context learning as implicit Bayesian inference (Xie et al. 2021).

A generator of Xie et al.'s mixture of HMMs, written here (following the
structure of their `generate_data.py`):
  * hidden state h = (entity e, property p), n_entities x n_properties states;
  * emission is deterministic: token = memory[e, p]; memory[:, 0] = 0 is the
    delimiter '/', other cells are random words in [1, vocab);
  * a concept is an HMM whose property (slot) transitions are a softmax-weighted
    mixture of random permutation matrices (weights softmax(u - 1/2, temperature
    `trans_temp`)); entity transitions (shared by all concepts) are such a
    mixture biased to the identity by `value_identity_coeff`; transitions
    factorise (entity and property chains are independent); the start
    distribution over all states is softmax(u - 1/2, `start_temp`);
  * pretraining documents: each from one in-distribution concept, uniformly;
  * few-shot prompts (n examples of length k), as in their released generator
    (`ID_sample`, the default `task.prompt_mode = "sample"`): a concept and a
    start property s_1 != 0 per prompt; each example starts at a random entity in
    s_1 and walks k - 1 transitions sampled from the concept, then the delimiter;
    the test example stops after k - 1 tokens x and its label is the concept's
    most likely next token given x. `prompt_mode = "argmax"` is their earlier
    variant: every example follows the concept's most likely property path and
    the label is the token it emits. In-distribution prompts use pretraining
    concepts, out-of-distribution prompts concepts drawn from the same prior but
    never seen in pretraining;
  * references on the same prompts (research/tasks/ginc_bayes.py):
    `bayes_next_token` (the pretraining mixture's exact posterior predictive) and
    `ideal_next_token` (Bayes over concepts that knows the prompt format: the
    ceiling more examples approach). Xie's transition matrices have exact zeros
    (a mixture of 10 permutations misses about a third of the transitions), so
    a prompt's delimiter transitions can be impossible under every concept: the
    pretraining posterior is then undefined (0/0), and such prompts grow with n
    (cpu preset, seed 0, 256 prompts: k = 3 0% at n = 0, 32% at n = 4, 94% at
    n = 64). The probe reports the mixture's accuracy on the prompts where it is
    defined, their number, and the model's accuracy on the same prompts (which
    prompts survive depends on the concept, so the subset changes with n);
    counting the undefined ones as wrong read as a predictor that gets worse with
    n (k = 3: 0.60 -> 0.13). The ideal learner reaches ~1.0 from n = 1.

The corpus is generated once on the host with numpy, deterministically from
(seed, generator fields), cached to `task.cache_dir` as .npz, and put on
device; `sample` draws windows by index from the key, so resume stays exact.

Shape legend: B batch, L window length, D documents, T document length,
E entities, P properties, V vocabulary, C concepts.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from research.models import IOSpec
from research.tasks.ginc_bayes import (DELIMITER, bayes_next_token, defined,
                                       ideal_next_token)
from research.tasks.fields import ConfigError, positive

GEN_FIELDS = ("vocab_size", "n_entities", "n_properties", "n_concepts", "n_ood_concepts",
              "trans_temp", "start_temp", "value_identity_coeff", "n_docs", "doc_len")


def _softmax(x, temp):
  z = (x - x.max(-1, keepdims=True)) / temp
  e = np.exp(z - z.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def _perm_mixture(rng, n: int, temp: float) -> np.ndarray:
  """Xie's transition block: softmax(u - 1/2, temp)-weighted sum of n random permutations."""
  w = _softmax(rng.random(n) - 0.5, temp)
  perms = np.stack([np.eye(n)[rng.permutation(n)] for _ in range(n)])
  return np.einsum("k,kij->ij", w, perms)


def _sample_rows(rng, cdf_NxK: np.ndarray) -> np.ndarray:
  """One categorical draw per row of a batch of CDFs (inverse-CDF sampling)."""
  u = rng.random((cdf_NxK.shape[0], 1))
  return np.minimum((u > cdf_NxK).sum(-1), cdf_NxK.shape[1] - 1)


def generate(cfg, seed: int) -> dict[str, np.ndarray]:
  """The HMM family and the pretraining corpus, deterministic in (seed, cfg)."""
  rng = np.random.default_rng([int(seed), 0x6171C])
  e, p, v = int(cfg.n_entities), int(cfg.n_properties), int(cfg.vocab_size)
  c_all = int(cfg.n_concepts) + int(cfg.n_ood_concepts)
  memory_ExP = rng.integers(1, v, size=(e, p))
  memory_ExP[:, 0] = DELIMITER
  ent = _perm_mixture(rng, e, cfg.trans_temp)
  ent_ExE = (1 - cfg.value_identity_coeff) * ent + cfg.value_identity_coeff * np.eye(e)
  prop_CxPxP = np.stack([_perm_mixture(rng, p, cfg.trans_temp) for _ in range(c_all)])
  start_CxS = np.stack([_softmax(rng.random(e * p) - 0.5, cfg.start_temp) for _ in range(c_all)])
  # Pretraining documents from in-distribution concepts.
  d, t = int(cfg.n_docs), int(cfg.doc_len)
  concept_D = rng.integers(0, int(cfg.n_concepts), size=d)
  state_D = _sample_rows(rng, np.cumsum(start_CxS[concept_D], -1))
  ent_D, prop_D = state_D // p, state_D % p
  ent_cdf, prop_cdf = np.cumsum(ent_ExE, -1), np.cumsum(prop_CxPxP, -1)
  tokens_DxT = np.empty((d, t), np.int32)
  for i in range(t):
    tokens_DxT[:, i] = memory_ExP[ent_D, prop_D]
    ent_D = _sample_rows(rng, ent_cdf[ent_D])
    prop_D = _sample_rows(rng, prop_cdf[concept_D, prop_D])
  return {"memory": memory_ExP, "entity_trans": ent_ExE, "property_trans": prop_CxPxP,
          "start": start_CxS, "doc_concept": concept_D, "tokens": tokens_DxT}


def cache_key(cfg, seed: int) -> str:
  fields = {f: cfg[f] for f in GEN_FIELDS} | {"seed": int(seed), "version": 1}
  return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def load_or_generate(cfg, seed: int) -> dict[str, np.ndarray]:
  """Reads the cached corpus for (cfg, seed), generating and caching it once."""
  if not cfg.cache_dir:
    return generate(cfg, seed)
  path = Path(os.path.expanduser(cfg.cache_dir)) / f"ginc_{cache_key(cfg, seed)}.npz"
  if path.exists():
    with np.load(path) as f:
      return dict(f)
  data = generate(cfg, seed)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
  np.savez_compressed(tmp, **data)
  os.replace(tmp, path)  # atomic: concurrent runs never read a partial file
  return data


def make_prompts(data, rng, concepts, n: int, k: int, num: int, mode: str = "sample"):
  """`num` prompts of n examples of length k; returns (tokens list, labels (num,)).

  mode "sample" (Xie et al.'s released generator, `ID_sample`): each prompt picks a
  concept and a start property s_1 != 0; each example starts at a random entity
  in s_1 and walks k - 1 transitions *sampled* from the concept (entity and
  property), then the delimiter. The test example shows its first k - 1 tokens x;
  its label is the concept's most likely next token given x (start: s_1, any
  entity), so examples carry fresh evidence of the concept and the label is the
  concept's answer. mode "argmax" (their earlier `ID`): every example follows the
  concept's single most likely property path from s_1 with a random entity, and
  the label is the token that path emits.
  """
  if mode not in ("sample", "argmax"):
    raise ValueError(f"unknown GINC prompt mode {mode!r}; choose sample or argmax")
  memory, prop = data["memory"], data["property_trans"]
  e, p = memory.shape
  concept_N = np.asarray(concepts)[rng.integers(len(concepts), size=num)]
  s1_N = rng.integers(1, p, size=num)
  ent_NxX = rng.integers(0, e, size=(num, n + 1))  # X = n + 1 examples incl. the test
  if mode == "argmax":
    path_NxK = [s1_N]
    for _ in range(k - 1):
      path_NxK.append(prop[concept_N, path_NxK[-1]].argmax(-1))
    path_NxK = np.stack(path_NxK, 1)
    tok_NxXxK = memory[ent_NxX[..., None], path_NxK[:, None, :]]
    labels = tok_NxXxK[:, -1, -1].astype(np.int32)
  else:
    ent_cdf, prop_cdf = np.cumsum(data["entity_trans"], -1), np.cumsum(prop, -1)
    ents, slots = [ent_NxX.reshape(-1)], [np.repeat(s1_N, n + 1)]
    conc = np.repeat(concept_N, n + 1)
    for _ in range(k - 1):
      ents.append(_sample_rows(rng, ent_cdf[ents[-1]]))
      slots.append(_sample_rows(rng, prop_cdf[conc, slots[-1]]))
    tok_NxXxK = memory[np.stack(ents, 1), np.stack(slots, 1)].reshape(num, n + 1, k)
    labels = np.empty(num, np.int32)
    x_NxK1 = tok_NxXxK[:, -1, :k - 1]
    for c in np.unique(concept_N):  # label: concept c's prediction from x alone
      for s1 in np.unique(s1_N[concept_N == c]):
        rows = (concept_N == c) & (s1_N == s1)
        start = np.zeros((1, e, p))
        start[0, :, s1] = 1.0 / e
        probs = bayes_next_token(data, x_NxK1[rows], np.full(rows.sum(), k - 1), [c],
                                 start_CxExP=start)
        labels[rows] = probs.argmax(-1)
  delim = np.full((num, n + 1, 1), DELIMITER)
  flat = np.concatenate([tok_NxXxK, delim], -1).reshape(num, -1)[:, :-2]  # drop '/' and y
  return [row.tolist() for row in flat], labels


# The ideal learner is exact but costs ~100x a model's forward pass per prompt: it reads
# the first IDEAL_PROMPTS prompts of each (n, k) (near 1.0 its standard error is tiny),
# once per process for prompts a sweep's models share.
IDEAL_PROMPTS = 256
_IDEAL_CACHE: dict[tuple, tuple] = {}  # (ideal, defined mask, mixture)


class GincTask:
  name = "ginc"

  @staticmethod
  def check_config(cfg) -> None:
    """Raises ConfigError (one line) on the first invalid config.task / config.probe field."""
    t = cfg.task
    positive(cfg, "task", "n_entities", "n_concepts", "n_docs", "trans_temp", "start_temp")
    positive(cfg, "task", "n_ood_concepts", allow_zero=True)
    if t.n_properties < 2:
      raise ConfigError(f"config.task.n_properties={t.n_properties} must be at least 2 "
                        "(property 0 emits the delimiter)")
    if t.vocab_size < 2:
      raise ConfigError(f"config.task.vocab_size={t.vocab_size} must be at least 2 "
                        "(delimiter + a word)")
    if not 0 <= t.value_identity_coeff <= 1:
      raise ConfigError(f"config.task.value_identity_coeff={t.value_identity_coeff} must be in "
                        "[0, 1]")
    if t.get("prompt_mode", "sample") not in ("sample", "argmax"):
      raise ConfigError(f"config.task.prompt_mode={t.prompt_mode!r} is not a prompt mode; choose "
                        "'sample' (Xie's released prompts) or 'argmax' (most likely path)")
    if not 2 <= t.seq_len <= t.doc_len:
      raise ConfigError(f"config.task.seq_len={t.seq_len} must be in [2, doc_len={t.doc_len}]")
    if min(cfg.probe.example_lengths, default=0) < 2:
      raise ConfigError(f"config.probe.example_lengths={tuple(cfg.probe.example_lengths)} must "
                        "be non-empty, each >= 2 (k-1 inputs + 1 label)")

  def __init__(self, cfg, seed: int):
    self.cfg = cfg
    self.seed = int(seed)
    self.seq_len, self.vocab = int(cfg.seq_len), int(cfg.vocab_size)
    self.prompt_mode = str(cfg.get("prompt_mode", "sample"))
    self.data = load_or_generate(cfg, seed)
    self.corpus_DxT = jnp.asarray(self.data["tokens"])
    self.io = IOSpec(output_dim=self.vocab, seq_len=self.seq_len, vocab_size=self.vocab)

  @property
  def tokens_per_example(self) -> int:
    return self.seq_len

  def sample(self, key, step, batch_size: int):
    """Windows of seq_len tokens at random (document, offset) drawn from the key."""
    del step
    d, t = self.corpus_DxT.shape
    kd, ko = jax.random.split(key)
    doc_B = jax.random.randint(kd, (batch_size,), 0, d)
    off_B = jax.random.randint(ko, (batch_size,), 0, t - self.seq_len + 1)
    window = lambda doc, off: jax.lax.dynamic_slice(self.corpus_DxT[doc], (off,), (self.seq_len,))
    return {"tokens": jax.vmap(window)(doc_B, off_B)}

  def model_inputs(self, batch):
    return batch["tokens"]

  def loss(self, outputs, batch):
    tokens = batch["tokens"]
    logp = jax.nn.log_softmax(outputs[:, :-1].astype(jnp.float32), -1)
    nll = -jnp.take_along_axis(logp, tokens[:, 1:, None], -1)[..., 0]
    acc = (jnp.argmax(outputs[:, :-1], -1) == tokens[:, 1:]).mean()
    return nll.mean(), {"accuracy": acc}

  # --- probe ------------------------------------------------------------------
  def shots_for(self, k: int, probe_cfg) -> list[int]:
    return [n for n in probe_cfg.num_examples if n * (k + 1) + k - 1 <= self.seq_len]

  def accuracy(self, predict_fn, rng, concepts, n: int, k: int, num: int, batch_size: int,
               *, ideal_over=None) -> dict:
    """Label accuracy of the model on `num` prompts; with ideal_over (concepts), also on
    the first IDEAL_PROMPTS of them the ideal in-context learner's (`ideal_next_token`)
    and the pretraining mixture's posterior (`bayes_next_token`): its accuracy over the
    `mixture_prompts` where it is defined (None on none) beside the model's on those."""
    prompts, labels = make_prompts(self.data, rng, concepts, n, k, num, self.prompt_mode)
    hits = np.zeros(num, bool)
    # Causal models: the label's logit does not depend on what follows, so prompts are
    # padded to a power of two >= the longest (at most seq_len), not always to seq_len:
    # a few compiled shapes, and short prompts cost a fraction of a full window.
    length = min(self.seq_len, max(16, 1 << (max(map(len, prompts)) - 1).bit_length()))
    for s in range(0, num, batch_size):
      chunk = prompts[s:s + batch_size]
      toks = np.zeros((batch_size, length), np.int32)
      for i, pr in enumerate(chunk):
        toks[i, :len(pr)] = pr
      logits = np.asarray(predict_fn(jnp.asarray(toks)))
      pred = logits[np.arange(len(chunk)), [len(pr) - 1 for pr in chunk]].argmax(-1)
      hits[s:s + len(chunk)] = pred == labels[s:s + len(chunk)]
    out = {"model": float(hits.mean())}
    if ideal_over is not None:
      m = min(num, IDEAL_PROMPTS)
      key = (hashlib.sha1(np.asarray(prompts[:m]).tobytes() + labels[:m].tobytes()).hexdigest(),
             n, k, tuple(ideal_over))
      if key not in _IDEAL_CACHE:  # the same prompts for every model of a sweep
        pred = ideal_next_token(self.data, prompts[:m], n, k, ideal_over).argmax(-1)
        # The pretraining mixture's own posterior predictive (Bayes over the concepts,
        # reading the whole prompt, delimiters included): whether the generator itself
        # makes accuracy fall with n.
        toks = np.zeros((m, max(map(len, prompts[:m]))), np.int64)
        for i, pr in enumerate(prompts[:m]):
          toks[i, :len(pr)] = pr
        mix = bayes_next_token(self.data, toks, np.asarray([len(pr) for pr in prompts[:m]]),
                               ideal_over)
        ok = defined(mix)  # prompts of probability 0 under every concept have no posterior
        _IDEAL_CACHE[key] = (float((pred == labels[:m]).mean()), ok,
                             float((mix.argmax(-1) == labels[:m])[ok].mean()) if ok.any() else None)
      out["ideal"], ok, out["mixture"] = _IDEAL_CACHE[key]
      # which prompts are defined depends on the concept: the model on the same subset
      out["mixture_prompts"] = int(ok.sum())
      out["model_on_mixture_prompts"] = float(hits[:m][ok].mean()) if ok.any() else None
    return out

  def probe(self, predict_fn, key, probe_cfg, *, step: int) -> dict[str, dict]:
    """Label accuracy vs number of examples n, per example length k, ID and OOD concepts;
    for ID prompts also the ideal in-context learner's accuracy on the same prompts."""
    seed = int(jax.random.randint(key, (), 0, 2 ** 30))
    n_id, n_ood = int(self.cfg.n_concepts), int(self.cfg.n_ood_concepts)
    sets = {"id": list(range(n_id))}
    if n_ood:
      sets["ood"] = list(range(n_id, n_id + n_ood))
    out = {"step": int(step), "k": list(probe_cfg.example_lengths), "prompt_mode": self.prompt_mode,
           "num_prompts": int(probe_cfg.num_prompts),
           "ideal_num_prompts": min(int(probe_cfg.num_prompts), IDEAL_PROMPTS), "accuracy": {}}
    for name, concepts in sets.items():
      out["accuracy"][name] = {}
      for k in probe_cfg.example_lengths:
        rng = np.random.default_rng([seed, k, len(name)])
        ns = self.shots_for(k, probe_cfg)
        accs = [self.accuracy(predict_fn, rng, concepts, n, k, int(probe_cfg.num_prompts),
                              int(probe_cfg.batch_size),
                              ideal_over=concepts if name == "id" else None) for n in ns]
        curve = {"n": ns, "accuracy": [a["model"] for a in accs]}
        if name == "id":
          curve["ideal"] = [a["ideal"] for a in accs]
          for field in ("mixture", "mixture_prompts", "model_on_mixture_prompts"):
            curve[field] = [a[field] for a in accs]  # mixture None: defined on no prompt
        out["accuracy"][name][str(k)] = curve
    return {"ginc": out}

  @staticmethod
  def render(probe_json, out_png) -> Path:
    from research.analysis import plots
    return plots.render_ginc_probe(probe_json, out_png)
