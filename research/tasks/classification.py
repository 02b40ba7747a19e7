"""Few-shot classification on bursty sequences (Chan et al. 2022; Reddy 2023).

A sequence holds N context (exemplar, label) pairs and a query exemplar; the
model predicts the query's label at the last position. Tokens are interleaved
(x_1, l_1, ..., x_N, l_N, x_query): T = 2N + 1 positions. Exemplar sources:

  gaussian (Reddy): K classes with means mu_k ~ N(0, I/D) (a table that is a
    function of the seed), exemplars generated on device, (mu_k + eps * eta) / sqrt(1 + eps^2)
    with eta ~ N(0, I/D). Tokens are vectors [x, 0] or [0, onehot(label)].
  omniglot (Chan): images (see omniglot.py), embedded by the ResNet embedder
    that the model registry puts in front of the sequence model.

Training sequences. With probability p_bursty (when burstiness B > 0) a
sequence is bursty: `ways` distinct classes (default N / B) each appear B
times, the other N - ways*B items are fillers of other classes, the order is
shuffled, and the query is one of the `ways` classes. Otherwise all N + 1
classes are drawn i.i.d. Classes are drawn from a Zipf(alpha) rank-frequency
law over the K training classes (the last class id is the most frequent, as in
Chan's code). With `n_common` > 0 (Chan), bursty classes come from the rare
classes and fillers / non-bursty sequences from the common ones. Each training
class has a fixed label (class id if K <= L, else a balanced random map to L
labels, Reddy); `novel_fraction` of the sequences (gaussian) use fresh classes
with labels assigned at random within the sequence.

Probes (each on >= probe.num_prompts sequences; `probe.ways` x `probe.shots`):
  icl      novel classes (gaussian: fresh means; omniglot: holdout classes),
           labels reassigned per sequence; chance 1/ways within the context
  iwl      the query class is absent from the context (no support); fixed labels
  flip     training classes in a bursty context with their labels swapped
           cyclically among the `ways` classes: ICL follows the context label,
           IWL the original one
  iwl_rare / iwl_common  (n_common > 0) no-support queries from each group
Accuracy is reported over the full label vocabulary (`acc_full`) and
restricted to the labels present in the context (`acc_context`).

Shape legend:
  B batch   N context pairs   S = N + 1 items   T = 2N + 1 tokens   D exemplar dims
  K training classes   C class ids (K + holdout)   L labels   W ways   H heads
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from research import keys
from research.models import IOSpec, transformer
from research.data import tfds_arrays
from research.tasks import classification_config

NEG_INF = -1e30


def _shuffle(key, n: int):
  """A uniformly random permutation of range(n): one sort of random floats (cheaper to
  compile than jax.random.permutation's multi-round shuffle; ties have probability ~0)."""
  return jnp.argsort(jax.random.uniform(key, (n,)))


def _categorical(key, logits_C, shape=()):
  """Draws from softmax(logits_C) by inverting its CDF: one uniform per draw.
  jax.random.categorical draws a Gumbel per class and per draw: 9 draws over Chan's 2,048
  classes are 18k random numbers per sequence, most of a CPU training step. Classes at
  NEG_INF have probability 0 and are never drawn (side='right' skips flat CDF steps)."""
  cdf_C = jnp.cumsum(jax.nn.softmax(logits_C))
  u = jax.random.uniform(key, shape) * cdf_C[-1]
  last = jnp.argmax(cdf_C >= cdf_C[-1])  # the last class with p > 0: u rounded up to the top
  return jnp.minimum(jnp.searchsorted(cdf_C, u, side="right"), last)


def probe_summary(result: dict) -> dict:
  """The probe's scalars, which research.results tables as probes.classification.KIND.FIELD
  (a sweep over B or K is read and plotted from them): each kind's accuracy over the full
  label vocabulary, ICL's and IWL's with their intervals, the flip probe's against both labels,
  and the two chance levels. Before, the table held only the 32 evaluation sequences'
  accuracies (a new user's trial: 0.0625 there against 0.125 [0.07, 0.21] here)."""
  keep = {"icl": ("acc_full", "acc_full_lo", "acc_full_hi"),
          "iwl": ("acc_full", "acc_full_lo", "acc_full_hi"),
          "flip": ("acc_full", "acc_full_original_label")}
  out = {kind: {f: res[f] for f in keep.get(kind, ("acc_full",))}
         for kind, res in result["probes"].items()}
  return out | {"chance": {k: result["chance"][k] for k in ("full", "context")}}


class ClassificationTask:
  name = "classification"
  probe_name = "classification"

  check_config = staticmethod(classification_config.check)

  def __init__(self, cfg, seed: int):
    self.cfg = cfg
    self.source = cfg.source
    self.n = int(cfg.num_context)
    self.burstiness = int(cfg.burstiness)
    self.ways = int(cfg.ways) or (self.n // self.burstiness if self.burstiness else 0)
    self.p_bursty = float(cfg.p_bursty) if self.burstiness else 0.0
    self.novel_fraction = float(cfg.novel_fraction)
    self.loss_on = cfg.loss_on
    self.n_common = int(cfg.n_common)
    self.omni = None
    if self.source == "gaussian":
      self.num_train, self.num_holdout, self.dim = int(cfg.num_classes), 0, int(cfg.dim)
    elif self.source == "omniglot":
      from research.tasks import omniglot
      self.num_train, self.num_holdout, self.dim = int(cfg.n_rare) + self.n_common, int(cfg.n_holdout), 0
      self.omni = omniglot.OmniglotSource(cfg, num_train_classes=self.num_train)
    else:
      raise ValueError(f"config.task.source={self.source!r} is not valid; choose one of: "
                       + ", ".join(classification_config.SOURCES))
    k, c = self.num_train, self.num_train + self.num_holdout
    self.num_labels = int(cfg.num_labels) or k
    if k <= self.num_labels:  # Chan's 'ordered' labels
      labels_K = np.arange(k)
    else:  # Reddy: a balanced random map of K classes onto L labels
      labels_K = (np.arange(k) % self.num_labels)[np.random.default_rng([seed, keys.LABEL_MAP]).permutation(k)]
    self.class_label_C = jnp.asarray(np.concatenate([labels_K, np.arange(c - k) % self.num_labels]),
                                     jnp.int32)
    self.mean_key = jax.random.fold_in(jax.random.key(seed), keys.CLASS_MEANS)
    if self.omni is None:  # mu_k ~ N(0, I/D), a function of the seed only
      means = jax.random.normal(self.mean_key, (k, self.dim)) / math.sqrt(self.dim)
      self.means = tfds_arrays.HostArray(np.asarray(means))
    # Zipf over training classes: class id k has rank K - k (Chan: common classes last).
    ids = np.arange(c)
    zipf = np.where(ids < k, -float(cfg.zipf_alpha) * np.log(np.maximum(k - ids, 1)), NEG_INF)
    rare = ids < k - self.n_common
    self.pool_all = jnp.asarray(zipf, jnp.float32)
    self.pool_bursty = jnp.asarray(np.where(rare, zipf, NEG_INF) if self.n_common else zipf, jnp.float32)
    self.pool_other = jnp.asarray(np.where(~rare, zipf, NEG_INF) if self.n_common else zipf,
                                  jnp.float32)
    self.pool_holdout = jnp.asarray(np.where(ids >= k, 0.0, NEG_INF), jnp.float32)
    # In-weights accuracy over all training classes alike: under Zipf, pool_all mostly
    # draws the frequent classes (Chan's trade-off is measured on both).
    self.pool_uniform = jnp.asarray(np.where(ids < k, 0.0, NEG_INF), jnp.float32)
    # The in-weights probes' chance: what always answering the label most of their queries
    # carry scores (no input read). Under Zipf that is far above 1/L (the cpu preset's alpha 1:
    # about 0.15 against 1/32), so a model of the label frequencies alone shows an in-weights
    # 'rise' from alpha 0 to 1 over 1/L.
    share = lambda w: float(np.bincount(labels_K, w / w.sum(), self.num_labels).max())
    self.iwl_chance = {"iwl": share(np.exp(zipf[:k] - zipf[:k].max())), "iwl_uniform": share(
        np.ones(k))}
    t = 2 * self.n + 1
    if self.omni is None:
      self.io = IOSpec(output_dim=self.num_labels, seq_len=t, input_dim=self.dim + self.num_labels)
    else:
      self.io = IOSpec(output_dim=self.num_labels, seq_len=t, input_dim=self.num_labels,
                       image_shape=self.omni.image_shape, images_per_sequence=self.n + 1)
    self._sample_jit = jax.jit(self._batch, static_argnums=(1, 2, 3, 4))
    self._eval_fns: dict = {}

  @property
  def tokens_per_example(self) -> int:
    return 2 * self.n + 1

  def probe_ways_shots(self, probe_cfg) -> tuple[int, int]:
    ways = int(probe_cfg.ways) or self.ways or 2
    return ways, int(probe_cfg.shots) or self.n // ways

  # --- sequence structure (per sequence; vmapped) ------------------------------
  def _bursty(self, key, pool_C, filler_C, ways: int, shots: int):
    """`ways` distinct classes x `shots` copies + fillers of other classes, shuffled."""
    n = self.n
    kw, kf, kp, kq = jax.random.split(key, 4)
    _, ways_W = jax.lax.top_k(pool_C + jax.random.gumbel(kw, pool_C.shape), ways)
    n_fill = n - ways * shots
    fill = _categorical(kf, filler_C.at[ways_W].set(NEG_INF), (n_fill,))
    ctx_cls = jnp.concatenate([jnp.repeat(ways_W, shots), fill])
    ctx_slot = jnp.concatenate([jnp.repeat(jnp.arange(ways), shots), ways + jnp.arange(n_fill)])
    perm = _shuffle(kp, n)
    q = jax.random.randint(kq, (), 0, ways)
    cls_S = jnp.concatenate([ctx_cls[perm], ways_W[q][None]]).astype(jnp.int32)
    slot_S = jnp.concatenate([ctx_slot[perm], q[None]]).astype(jnp.int32)
    return cls_S, slot_S, ways_W.astype(jnp.int32)

  def _iid(self, key, pool_C):
    cls_S = _categorical(key, pool_C, (self.n + 1,)).astype(jnp.int32)
    return cls_S, jnp.arange(self.n + 1, dtype=jnp.int32)

  def _no_support(self, key, pool_C):
    kq, kc = jax.random.split(key)
    q = _categorical(kq, pool_C)
    ctx = _categorical(kc, pool_C.at[q].set(NEG_INF), (self.n,))
    return (jnp.concatenate([ctx, q[None]]).astype(jnp.int32),
            jnp.arange(self.n + 1, dtype=jnp.int32))

  def _reassigned(self, key, ident_S):
    """Distinct random labels per distinct class of the sequence (in order of appearance)."""
    s = ident_S.shape[0]
    first_S = jnp.argmax(ident_S[:, None] == ident_S[None, :], axis=-1)
    is_first_S = first_S == jnp.arange(s)
    rank_S = jnp.sum(is_first_S[None, :] & (jnp.arange(s)[None, :] < first_S[:, None]), axis=-1)
    return _shuffle(key, self.num_labels)[rank_S].astype(jnp.int32)

  def _sequence(self, key, kind: str, ways: int, shots: int):
    """One sequence: class ids, identities (fresh classes: per slot), labels, fixed labels,
    and whether it is bursty / made of fresh classes."""
    fixed = self.class_label_C
    gauss = self.omni is None
    c = self.num_train + self.num_holdout
    ks, kl, kn, ki, kk = jax.random.split(key, 5)
    fresh = jnp.bool_(False)
    bursty = jnp.bool_(kind in ("icl", "flip"))
    if kind == "train":
      u = jax.random.uniform(kk)
      cls, slot = self._iid(ki, self.pool_other)
      if self.burstiness:
        b_cls, b_slot, _ = self._bursty(ks, self.pool_bursty, self.pool_other, self.ways,
                                        self.burstiness)
        bursty = u < self.novel_fraction + (1 - self.novel_fraction) * self.p_bursty
        cls, slot = jnp.where(bursty, b_cls, cls), jnp.where(bursty, b_slot, slot)
      if self.novel_fraction > 0:
        n_cls, n_slot, _ = self._bursty(kn, self.pool_all, self.pool_all, self.ways, self.burstiness)
        fresh = u < self.novel_fraction
        cls, slot = jnp.where(fresh, n_cls, cls), jnp.where(fresh, n_slot, slot)
      orig = fixed[cls]
      ident = jnp.where(fresh, c + slot, cls)
      labels = jnp.where(fresh, self._reassigned(kl, ident), orig)
    elif kind == "icl":
      pool = self.pool_all if gauss else self.pool_holdout
      cls, slot, _ = self._bursty(ks, pool, pool, ways, shots)
      fresh = jnp.bool_(gauss)
      ident = c + slot if gauss else cls
      orig = fixed[cls]
      labels = self._reassigned(kl, ident)
    elif kind == "flip":
      cls, slot, ways_W = self._bursty(ks, self.pool_bursty, self.pool_other, ways, shots)
      ident, orig = cls, fixed[cls]
      swapped = fixed[ways_W[(jnp.minimum(slot, ways - 1) + 1) % ways]]
      labels = jnp.where(slot < ways, swapped, orig)
    elif kind in ("iwl", "iwl_rare", "iwl_common", "iwl_uniform"):
      pool = {"iwl": self.pool_all, "iwl_rare": self.pool_bursty,
              "iwl_common": self.pool_other, "iwl_uniform": self.pool_uniform}[kind]
      cls, slot = self._no_support(ks, pool)
      ident, orig = cls, fixed[cls]
      labels = orig
    else:
      raise ValueError(f"unknown sequence kind {kind!r}")
    return {"cls": cls, "ident": ident, "slot": slot, "labels": labels, "orig_labels": orig,
            "fresh": fresh, "bursty": bursty}

  def _batch(self, key, batch_size: int, kind: str, ways: int = 0, shots: int = 0):
    ks, kx = jax.random.split(key)
    seqs = jax.vmap(lambda k: self._sequence(k, kind, ways, shots))(
        jax.random.split(ks, batch_size))
    if self.omni is None:
      seqs["x"] = self._gaussian_exemplars(kx, seqs["cls"], seqs["slot"], seqs["fresh"])
    else:
      seqs["images"] = self.omni.exemplars(kx, seqs["cls"], seqs["ident"])
    return seqs

  def _gaussian_exemplars(self, key, cls_BxS, slot_BxS, fresh_B):
    """(mu + eps * eta) / sqrt(1 + eps^2); mu, eta ~ N(0, I/D); fresh sequences: new mu per slot."""
    b, s = cls_BxS.shape
    d, eps = self.dim, float(self.cfg.epsilon)
    km, ke = jax.random.split(key)
    mu_BxSxD = self.means.gather(jnp.minimum(cls_BxS, self.num_train - 1))
    fresh_BxSxD = jnp.take_along_axis(jax.random.normal(km, (b, s, d)), slot_BxS[..., None], axis=1)
    mu_BxSxD = jnp.where(fresh_B[:, None, None], fresh_BxSxD / math.sqrt(d), mu_BxSxD)
    eta_BxSxD = jax.random.normal(ke, (b, s, d)) / math.sqrt(d)
    return (mu_BxSxD + eps * eta_BxSxD) / math.sqrt(1 + eps ** 2)

  def sample(self, key, step, batch_size: int):
    del step  # stationary data distribution
    return self._batch(key, batch_size, "train", self.ways, self.burstiness)

  # --- model inputs and loss ---------------------------------------------------
  def model_inputs(self, batch):
    """Interleaved tokens (x_1, l_1, ..., x_N, l_N, x_query)."""
    labels_BxS = batch["labels"]
    b, s = labels_BxS.shape
    t, l = 2 * s - 1, self.num_labels
    onehot_BxSxL = jax.nn.one_hot(labels_BxS, l, dtype=jnp.float32)
    if self.omni is None:
      item_BxSxF = jnp.concatenate([batch["x"], jnp.zeros((b, s, l))], -1)
      label_BxSxF = jnp.concatenate([jnp.zeros((b, s, self.dim)), onehot_BxSxL], -1)
    else:
      item_BxSxF, label_BxSxF = jnp.zeros((b, s, l)), onehot_BxSxL
    tokens_BxTxF = jnp.stack([item_BxSxF, label_BxSxF], axis=2).reshape(b, 2 * s, -1)[:, :t]
    if self.omni is None:
      return tokens_BxTxF
    index_T = jnp.where(jnp.arange(t) % 2 == 0, jnp.arange(t) // 2, -1).astype(jnp.int32)
    return {"images": batch["images"], "vectors": tokens_BxTxF,
            "image_index": jnp.broadcast_to(index_T, (b, t))}

  def loss(self, outputs, batch):
    """Cross-entropy of the query's label (loss_on='all': of every item's label)."""
    labels_BxS = batch["labels"]
    logits_BxSxL = outputs[:, ::2]
    ce_BxS = -jnp.take_along_axis(jax.nn.log_softmax(logits_BxSxL), labels_BxS[..., None], -1)[..., 0]
    loss = jnp.mean(ce_BxS[:, -1]) if self.loss_on == "query" else jnp.mean(ce_BxS)
    acc = jnp.mean(jnp.argmax(logits_BxSxL[:, -1], -1) == labels_BxS[:, -1])
    return loss, {"accuracy": acc}

  # --- measurements --------------------------------------------------------------
  def _correct(self, logits_BxTxL, batch):
    """Per-sequence correctness: full vocabulary, restricted to context labels, original label."""
    logits_BxL = logits_BxTxL[:, -1]
    labels = batch["labels"]
    target_B = labels[:, -1]
    in_ctx_BxL = jnp.any(jax.nn.one_hot(labels[:, :-1], self.num_labels, dtype=bool), axis=1)
    pred_full = jnp.argmax(logits_BxL, -1)
    pred_ctx = jnp.argmax(jnp.where(in_ctx_BxL, logits_BxL, -jnp.inf), -1)
    return {"full": pred_full == target_B, "context": pred_ctx == target_B,
            "original": pred_full == batch["orig_labels"][:, -1],
            "target_in_context": jnp.any(labels[:, :-1] == target_B[:, None], -1)}

  def _attention_measures(self, intermediates, batch):
    """Per layer and head: query -> same-class items / their labels; label -> its item."""
    out = {}
    attns = transformer.attention_maps(intermediates)
    n = self.n
    same_BxN = (batch["ident"][:, :n] == batch["ident"][:, n:]).astype(jnp.float32)
    for layer in sorted(attns):
      a = attns[layer]  # (B, H, T, T)
      q_item_BxH = jnp.einsum("bhn,bn->bh", a[:, :, 2 * n, 0:2 * n:2], same_BxN)
      q_label_BxH = jnp.einsum("bhn,bn->bh", a[:, :, 2 * n, 1:2 * n:2], same_BxN)
      rows = jnp.arange(n)
      prev_BxH = jnp.mean(a[:, :, 2 * rows + 1, 2 * rows], axis=-1)
      for h in range(a.shape[1]):
        out[f"attn_l{layer}h{h}_query_to_item"] = jnp.mean(q_item_BxH[:, h])
        out[f"attn_l{layer}h{h}_query_to_label"] = jnp.mean(q_label_BxH[:, h])
        out[f"attn_l{layer}h{h}_label_to_item"] = jnp.mean(prev_BxH[:, h])
    return out

  def evaluate(self, exp, params, key) -> dict:
    """ICL / in-weights accuracy and attention progress measures (train.eval_every)."""
    fn = self._eval_fns.get(id(exp))
    if fn is None:
      pc = exp.config.probe
      ways, shots = self.probe_ways_shots(pc)
      size = int(pc.eval_sequences)

      def run(p, k):
        k1, k2 = jax.random.split(k)
        icl = self._batch(k1, size, "icl", ways, shots)
        logits, state = exp.model.apply({"params": p}, self.model_inputs(icl),
                                        mutable=["intermediates"])
        c_icl = self._correct(logits[:, ::2], icl)
        iwl = self._batch(k2, size, "iwl", ways, shots)
        c_iwl = self._correct(exp.model.apply({"params": p}, self.model_inputs(iwl))[:, ::2], iwl)
        out = {"icl_accuracy": jnp.mean(c_icl["full"]),
               "icl_accuracy_context": jnp.mean(c_icl["context"]),
               "iwl_accuracy": jnp.mean(c_iwl["full"])}
        return out | self._attention_measures(state.get("intermediates", {}), icl)
      fn = self._eval_fns[id(exp)] = jax.jit(run)
    return fn(params, key)

  def probe_kinds(self) -> list[str]:
    return (["icl", "iwl", "flip"] + (["iwl_rare", "iwl_common"] if self.n_common else [])
            + (["iwl_uniform"] if float(self.cfg.zipf_alpha) else []))

  def probe(self, predict_fn, key, probe_cfg, *, step: int) -> dict[str, dict]:
    """ICL, in-weights and flipped-label accuracies with bootstrap 5-95% intervals."""
    ways, shots = self.probe_ways_shots(probe_cfg)
    total, bs = int(probe_cfg.num_prompts), int(probe_cfg.batch_size)
    rng = np.random.default_rng(int(probe_cfg.bootstrap_seed))
    idx = rng.integers(0, total, (int(probe_cfg.bootstrap), total))
    probes = {}
    for i, kind in enumerate(self.probe_kinds()):
      parts = []
      for start in range(0, total, bs):
        batch = self._sample_jit(jax.random.fold_in(jax.random.fold_in(key, i), start),
                                 min(bs, total - start), kind, ways, shots)
        outputs = predict_fn(self.model_inputs(batch))
        parts.append(jax.device_get(self._correct(outputs[:, ::2], batch)))
      c = {k: np.concatenate([p[k] for p in parts]).astype(np.float64) for k in parts[0]}
      res = {"num_sequences": total}
      names = {"full": "acc_full", "context": "acc_context"}
      if kind == "flip":
        names["original"] = "acc_full_original_label"
      for k, name in names.items():
        if kind.startswith("iwl") and k == "context":
          continue  # the query's class is absent from the context by construction
        boot = c[k][idx].mean(axis=1)
        res[name] = float(c[k].mean())
        res[name + "_lo"], res[name + "_hi"] = (float(np.percentile(boot, 5)),
                                                float(np.percentile(boot, 95)))
      res["target_label_in_context"] = float(c["target_in_context"].mean())
      probes[kind] = res
    result = {"kind": "classification", "step": int(step), "source": self.source,
              "num_labels": self.num_labels, "num_context": self.n, "ways": ways, "shots": shots,
              "burstiness": self.burstiness, "p_bursty": self.p_bursty,
              "zipf_alpha": float(self.cfg.zipf_alpha), "num_train_classes": self.num_train,
              "chance": {"full": 1.0 / self.num_labels, "context": 1.0 / ways} | self.iwl_chance,
              "interval": "bootstrap 5-95% of the mean over sequences", "probes": probes}
    result["summary"] = probe_summary(result)
    return {self.probe_name: result}

  @staticmethod
  def render(json_path, png_path):
    from research.analysis import classification_plots
    return classification_plots.render_probe(json_path, png_path)
