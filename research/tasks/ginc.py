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
  * few-shot prompts (n examples of length k): a concept, a start property
    s_1 != 0 and its most likely property path s_1..s_k; each example picks a
    random entity e and reads memory[e, s_1..s_k] followed by the delimiter;
    the test example stops before its label memory[e_test, s_k]. In-distribution
    prompts use pretraining concepts, out-of-distribution prompts concepts drawn
    from the same prior but never seen in pretraining.

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

DELIMITER = 0
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


def make_prompts(data, rng, concepts, n: int, k: int, num: int):
  """`num` prompts of n examples of length k; returns (tokens list, labels (num,))."""
  memory, prop = data["memory"], data["property_trans"]
  e, p = memory.shape
  prompts, labels = [], np.empty(num, np.int32)
  for j in range(num):
    c = concepts[rng.integers(len(concepts))]
    path = [int(rng.integers(1, p))]
    for _ in range(k - 1):  # the concept's most likely property path
      path.append(int(np.argmax(prop[c, path[-1]])))
    ents = rng.integers(0, e, size=n + 1)
    toks = []
    for ent in ents[:-1]:
      toks += [int(x) for x in memory[ent, path]] + [DELIMITER]
    toks += [int(x) for x in memory[ents[-1], path[:-1]]]
    prompts.append(toks)
    labels[j] = memory[ents[-1], path[-1]]
  return prompts, labels


class GincTask:
  name = "ginc"

  def __init__(self, cfg, seed: int):
    self.cfg = cfg
    self.seed = int(seed)
    self.seq_len, self.vocab = int(cfg.seq_len), int(cfg.vocab_size)
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

  def accuracy(self, predict_fn, rng, concepts, n: int, k: int, num: int, batch_size: int):
    prompts, labels = make_prompts(self.data, rng, concepts, n, k, num)
    correct = 0
    for s in range(0, num, batch_size):
      chunk = prompts[s:s + batch_size]
      toks = np.zeros((batch_size, self.seq_len), np.int32)  # fixed shape: one compile
      for i, pr in enumerate(chunk):
        toks[i, :len(pr)] = pr
      logits = np.asarray(predict_fn(jnp.asarray(toks)))
      pred = logits[np.arange(len(chunk)), [len(pr) - 1 for pr in chunk]].argmax(-1)
      correct += int((pred == labels[s:s + len(chunk)]).sum())
    return correct / num

  def probe(self, predict_fn, key, probe_cfg, *, step: int) -> dict[str, dict]:
    """Label accuracy vs number of examples n, per example length k, ID and OOD concepts."""
    seed = int(jax.random.randint(key, (), 0, 2 ** 30))
    n_id, n_ood = int(self.cfg.n_concepts), int(self.cfg.n_ood_concepts)
    sets = {"id": list(range(n_id))}
    if n_ood:
      sets["ood"] = list(range(n_id, n_id + n_ood))
    out = {"step": int(step), "k": list(probe_cfg.example_lengths),
           "num_prompts": int(probe_cfg.num_prompts), "accuracy": {}}
    for name, concepts in sets.items():
      out["accuracy"][name] = {}
      for k in probe_cfg.example_lengths:
        rng = np.random.default_rng([seed, k, len(name)])
        ns = self.shots_for(k, probe_cfg)
        out["accuracy"][name][str(k)] = {
            "n": ns, "accuracy": [self.accuracy(predict_fn, rng, concepts, n, k,
                                                int(probe_cfg.num_prompts),
                                                int(probe_cfg.batch_size)) for n in ns]}
    return {"ginc": out}

  @staticmethod
  def render(probe_json, out_png) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = json.loads(Path(probe_json).read_text())
    sets = list(res["accuracy"])
    fig, axes = plt.subplots(1, len(sets), figsize=(4.5 * len(sets), 3.4), dpi=110, squeeze=False)
    for ax, name in zip(axes[0], sets):
      for k, curve in res["accuracy"][name].items():
        ax.plot(curve["n"], curve["accuracy"], marker="o", ms=3, label=f"k={k}")
      ax.set_xscale("symlog", linthresh=1)
      ax.set_xlabel("examples in the prompt n")
      ax.set_ylabel("label accuracy")
      ax.set_title(f"GINC {name.upper()} concepts, step {res['step']}", fontsize=9)
      ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    out = Path(out_png)
    fig.savefig(out)
    plt.close(fig)
    return out
