"""Induction heads and the phase change (Olsson et al. 2022) on synthetic text.

Training data rewards in-context copying while keeping local statistics: each
sequence is drawn from a random second-order Markov source fixed by the seed
(next-token logits = bigram term of the previous token + skip-bigram term of the
one before, so previous-token heads pay off on their own, as in text); then
the second half is cut into spans of `span_len` tokens and each span, with
probability `repeat_prob`, is replaced by a copy of a span starting anywhere in
the first half (so spans recur at random distances). A Markov model predicts
early tokens as well as late ones; only a model that looks back (an induction
head: find the earlier occurrence of the current token, copy what followed)
predicts the copies, so the ICL score (late-token loss minus early-token loss)
measures in-context learning.

Evaluation sets (fixed by the seed, the same at every eval step):
  markov+repeats  held-out training-distribution sequences: loss per position, ICL score
  repeated        random tokens r_0..r_{T-1} (distinct when T <= V) repeated twice (T = L/2):
                  per-head prefix-matching and previous-token scores

`evaluate` (every `train.eval_every` steps, logged as metrics.jsonl `eval_*`)
gives the dense schedule: ICL score, loss, per-head prefix-matching (`pm_LiHj`),
previous-token (`prev_LiHj`) and copying (`copy_LiHj`) scores. Phase-change
detection and head ablation read that history (research/probes/attention.py,
experiments/olsson2022.py).

Shape legend: B batch, L sequence length, V vocabulary, C spans in the second
half, N layers, H heads, D width, K head width.
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from research import keys
from research.models import IOSpec, transformer
from research.probes import attention as scores
from research.tasks.fields import ConfigError, positive

SOURCES = ("train", "markov", "repeated")


def per_token_loss(logits_BxLxV, tokens_BxL):
  """(B, L) loss of predicting token j from tokens < j; column 0 is 0 (unpredicted)."""
  logp = jax.nn.log_softmax(logits_BxLxV[:, :-1].astype(jnp.float32), axis=-1)
  nll_BxL1 = -jnp.take_along_axis(logp, tokens_BxL[:, 1:, None], axis=-1)[..., 0]
  return jnp.pad(nll_BxL1, ((0, 0), (1, 0)))


class InductionTask:
  name = "induction"

  @staticmethod
  def check_config(cfg) -> None:
    """Raises ConfigError (one line) on the first invalid config.task / config.probe field."""
    t = cfg.task
    positive(cfg, "task", "vocab_size", "span_len", "eval_sequences", "repeated_sequences")
    positive(cfg, "task", "markov_scale", "skip_scale", allow_zero=True)
    if t.seq_len < 16:
      raise ConfigError(f"config.task.seq_len={t.seq_len} must be at least 16")
    if t.span_len > t.seq_len // 4:
      raise ConfigError(f"config.task.span_len={t.span_len} must be at most seq_len/4 = "
                        f"{t.seq_len // 4}")
    if not 0 <= t.repeat_prob <= 1:
      raise ConfigError(f"config.task.repeat_prob={t.repeat_prob} must be in [0, 1]")
    if cfg.model.name != "transformer":
      raise ConfigError(f"config.model.name={cfg.model.name!r} is not valid for task.name="
                        "'induction' (attention scores need attention maps); choose one of: "
                        "transformer")
    positive(cfg, "probe", "num_sequences")

  def __init__(self, cfg, seed: int):
    self.cfg = cfg
    self.vocab, self.seq_len = int(cfg.vocab_size), int(cfg.seq_len)
    self.span_len, self.repeat_prob = int(cfg.span_len), float(cfg.repeat_prob)
    root = jax.random.key(seed)
    table_key = jax.random.fold_in(root, keys.TASK_POOL)
    k1, k2 = jax.random.split(table_key)
    # Next-token logits: a bigram term of the previous token plus a skip-bigram term
    # of the token before it (a trigram source with additive structure, as in text:
    # a previous-token head is useful on its own, which seeds induction heads).
    self.logits1_VxV = float(cfg.markov_scale) * jax.random.normal(k1, (self.vocab, self.vocab))
    self.logits2_VxV = float(cfg.skip_scale) * jax.random.normal(k2, (self.vocab, self.vocab))
    self.io = IOSpec(output_dim=self.vocab, seq_len=self.seq_len, vocab_size=self.vocab)
    self.early, self.late = scores.icl_positions(self.seq_len)
    self.half_window = max(0, self.seq_len // 64)
    self._eval_key = jax.random.fold_in(root, keys.INDUCTION_EVAL)
    self._eval_fn = None

  @property
  def tokens_per_example(self) -> int:
    return self.seq_len

  # --- data -----------------------------------------------------------------
  def next_logits(self, prev2_B, prev1_B):
    """Logits of the next token given the two before it (unnormalised)."""
    return self.logits1_VxV[prev1_B] + self.logits2_VxV[prev2_B]

  def _markov(self, key, batch_size: int):
    k0, kg = jax.random.split(key)
    first_Bx2 = jax.random.randint(k0, (batch_size, 2), 0, self.vocab, dtype=jnp.int32)
    gumbel_LxBxV = jax.random.gumbel(kg, (self.seq_len - 2, batch_size, self.vocab))

    def step(carry, g_BxV):  # Gumbel-max sample of the next token
      prev2, prev1 = carry
      nxt = jnp.argmax(self.next_logits(prev2, prev1) + g_BxV, axis=-1).astype(jnp.int32)
      return (prev1, nxt), nxt

    _, rest_LxB = jax.lax.scan(step, (first_Bx2[:, 0], first_Bx2[:, 1]), gumbel_LxBxV)
    return jnp.concatenate([first_Bx2, rest_LxB.T], axis=1)

  def _with_repeats(self, key, base_BxL):
    """Replaces spans of the second half by copies of first-half spans."""
    b, length = base_BxL.shape
    half, m = length // 2, self.span_len
    c = (length - half) // m
    ks, kf = jax.random.split(key)
    src_BxC = jax.random.randint(ks, (b, c), 0, half - m + 1)
    copy_BxC = jax.random.bernoulli(kf, self.repeat_prob, (b, c))
    pos_L = jnp.arange(length)
    chunk_L = jnp.clip((pos_L - half) // m, 0, c - 1)
    in_span_L = (pos_L >= half) & (pos_L < half + c * m)
    offset_L = (pos_L - half) % m
    src_idx_BxL = src_BxC[:, chunk_L] + offset_L
    use_BxL = copy_BxC[:, chunk_L] & in_span_L
    idx_BxL = jnp.where(use_BxL, src_idx_BxL, pos_L)
    return jnp.take_along_axis(base_BxL, idx_BxL, axis=1), use_BxL

  def _repeated(self, key, batch_size: int):
    half = self.seq_len // 2
    if half <= self.vocab:  # distinct tokens, as with Olsson's large vocabulary: one match each
      order_BxV = jnp.argsort(jax.random.uniform(key, (batch_size, self.vocab)), axis=-1)
      r_BxT = order_BxV[:, :half].astype(jnp.int32)
    else:
      r_BxT = jax.random.randint(key, (batch_size, half), 0, self.vocab, dtype=jnp.int32)
    tokens = jnp.concatenate([r_BxT, r_BxT], axis=1)
    if tokens.shape[1] < self.seq_len:  # odd length: one extra random token at the end
      tokens = jnp.pad(tokens, ((0, 0), (0, self.seq_len - tokens.shape[1])))
    return tokens

  def sample(self, key, step, batch_size: int, *, source: str = "train"):
    """{tokens: BxL int32, copied: BxL bool (position holds a copied token)}."""
    del step  # stationary distribution
    km, kr = jax.random.split(key)
    if source == "repeated":
      tokens = self._repeated(kr, batch_size)
      copied = jnp.arange(self.seq_len)[None] >= self.seq_len // 2
      return {"tokens": tokens, "copied": jnp.broadcast_to(copied, tokens.shape)}
    base = self._markov(km, batch_size)
    if source == "markov" or self.repeat_prob == 0:
      return {"tokens": base, "copied": jnp.zeros_like(base, bool)}
    if source != "train":
      raise ValueError(f"source={source!r}; choose one of: {', '.join(SOURCES)}")
    tokens, copied = self._with_repeats(kr, base)
    return {"tokens": tokens, "copied": copied}

  def model_inputs(self, batch):
    return batch["tokens"]

  def loss(self, outputs, batch):
    nll_BxL = per_token_loss(outputs, batch["tokens"])[:, 1:]
    copied = batch["copied"][:, 1:]
    n_copied = jnp.maximum(copied.sum(), 1)
    return nll_BxL.mean(), {
        "loss_copied": jnp.sum(nll_BxL * copied) / n_copied,
        "loss_not_copied": jnp.sum(nll_BxL * ~copied) / jnp.maximum((~copied).sum(), 1)}

  # --- dense evaluation ---------------------------------------------------------
  def eval_sets(self):
    ke, kr = jax.random.split(self._eval_key)
    return (self.sample(ke, 0, int(self.cfg.eval_sequences))["tokens"],
            self.sample(kr, 0, int(self.cfg.repeated_sequences), source="repeated")["tokens"])

  def attention_scores(self, model, params, rep_BxL, head_mask=None):
    """{'prefix': NxH, 'previous': NxH} on repeated random tokens (jittable)."""
    _, state = model.apply({"params": params}, rep_BxL, head_mask=head_mask,
                           mutable=["intermediates"])
    attn = list(transformer.attention_maps(state["intermediates"]).values())
    half = self.seq_len // 2
    return {"prefix": jnp.stack([scores.prefix_matching_score(a, half) for a in attn]),
            "previous": jnp.stack([scores.previous_token_score(a) for a in attn])}

  def loss_per_position(self, model, params, tokens_BxL, head_mask=None):
    logits = model.apply({"params": params}, tokens_BxL, head_mask=head_mask)
    return per_token_loss(logits, tokens_BxL).mean(0)

  def _eval_impl(self, model, params, tokens_BxL, rep_BxL, head_mask):
    lpp_L = self.loss_per_position(model, params, tokens_BxL, head_mask)
    rep_lpp_L = self.loss_per_position(model, params, rep_BxL, head_mask)
    att = self.attention_scores(model, params, rep_BxL, head_mask)
    half = self.seq_len // 2
    return {"loss": lpp_L[1:].mean(),
            "icl_score": scores.icl_score(lpp_L, self.early, self.late, self.half_window),
            "loss_early": lpp_L[self.early], "loss_late": lpp_L[self.late],
            "repeated_loss_second_copy": rep_lpp_L[half + 1:].mean(),
            "repeated_loss_first_copy": rep_lpp_L[1:half].mean(),
            "prefix": att["prefix"], "previous": att["previous"], "lpp": lpp_L}

  def eval_raw(self, exp, params, head_mask=None):
    """Un-flattened eval (arrays) on the fixed eval sets; head_mask ablates heads."""
    if self._eval_fn is None:
      self._eval_sets = self.eval_sets()
      self._eval_fn = jax.jit(lambda p, t, r, m: self._eval_impl(exp.model, p, t, r, m))
    mc = exp.config.model
    if head_mask is None:
      head_mask = jnp.ones((mc.num_layers, mc.num_heads), jnp.float32)
    return self._eval_fn(params, *self._eval_sets, jnp.asarray(head_mask))

  def evaluate(self, exp, params, key) -> dict:
    """Dense schedule: ICL score, loss, per-head prefix / previous-token / copying scores."""
    del key  # fixed eval sets: curves across steps compare the same sequences
    raw = jax.device_get(self.eval_raw(exp, params))
    out = {k: float(v) for k, v in raw.items() if np.ndim(v) == 0}
    pm, prev = np.asarray(raw["prefix"]), np.asarray(raw["previous"])
    for i in range(pm.shape[0]):
      for h in range(pm.shape[1]):
        out[f"pm_L{i}H{h}"] = float(pm[i, h])
        out[f"prev_L{i}H{h}"] = float(prev[i, h])
    out["pm_max"], out["prev_max"] = float(pm.max()), float(prev.max())
    for name, copying in copying_scores(jax.device_get(params)).items():
      out[f"copy_{name}"] = copying
    return out

  # --- end-of-training probe ------------------------------------------------------
  def probe(self, predict_fn, key, probe_cfg, *, step: int) -> dict[str, dict]:
    """Loss per token position on held-out training-distribution and repeated sequences."""
    n, bs = int(probe_cfg.num_sequences), int(probe_cfg.batch_size)
    curves = {}
    for i, source in enumerate(("train", "repeated")):
      total = np.zeros(self.seq_len)
      for start in range(0, n, bs):
        batch = self.sample(jax.random.fold_in(jax.random.fold_in(key, i), start), 0,
                            min(bs, n - start), source=source)
        nll = per_token_loss(predict_fn(batch["tokens"]), batch["tokens"])
        total += np.asarray(nll.sum(0), np.float64)
      curves[source] = (total / n).tolist()
    lpp = np.asarray(curves["train"])
    return {"induction": {
        "position": list(range(self.seq_len)), "loss_per_position": curves,
        "icl_score": float(scores.icl_score(lpp, self.early, self.late, self.half_window)),
        "early": self.early, "late": self.late, "half_window": self.half_window,
        "step": int(step), "num_sequences": n, "seq_len": self.seq_len, "vocab": self.vocab}}

  @staticmethod
  def render(probe_json, out_png) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from research.analysis.plots import save_figure

    res = json.loads(Path(probe_json).read_text())
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=110)
    names = {"train": "Markov + repeated spans (held out)", "repeated": "random tokens repeated"}
    for source, curve in res["loss_per_position"].items():
      ax.plot(res["position"][1:], curve[1:], label=names.get(source, source), lw=1.4)
    for p in (res["early"], res["late"]):
      ax.axvline(p, color="grey", ls=":", lw=0.8)
    ax.set_xlabel("token position")
    ax.set_ylabel("loss (nats)")
    ax.set_title(f"loss per position, step {res['step']}; ICL score {res['icl_score']:.3f}",
                 fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    return save_figure(fig, out_png)


def ov_factors(params) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """Direct-path OV circuit of every head as two factors: {'LiHj': (left_VxK, right_KxV)},
  OV = left @ right, OV[j, t] = logit j when attending to t.

  Token embedding -> ln_1 (normalise, scale, shift) -> head's value and output
  maps -> ln_f scale -> unembedding; positions, other heads and ln_f's
  normalisation are left out (Olsson's direct-path approximation). Factored because OV has
  rank <= K: its V x V product is 20 GB per head at a 50,304-token vocabulary, while its
  nonzero eigenvalues (the copying score's) are those of the K x K right @ left.
  """
  p = jax.tree.map(np.asarray, transformer.unrolled_params(params))
  emb_VxD = p["token_embed"]["embedding"]
  unemb_DxV = p["read_out"]["kernel"]
  f_scale = p.get("ln_f", {}).get("scale", np.ones(emb_VxD.shape[1]))
  out = {}
  i = 0
  while f"block_{i}" in p:
    blk = p[f"block_{i}"]
    x = emb_VxD
    if "ln_1" in blk:
      x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6)
      x = x * blk["ln_1"]["scale"] + blk["ln_1"]["bias"]
    v_VxHxK = np.einsum("vd,dhk->vhk", x, blk["attn"]["value"]["kernel"]) + blk["attn"]["value"]["bias"]
    wo_HxKxD = blk["attn"]["out"]["kernel"]
    for h in range(wo_HxKxD.shape[0]):
      out[f"L{i}H{h}"] = (((wo_HxKxD[h] * f_scale) @ unemb_DxV).T, v_VxHxK[:, h].T)
    i += 1
  return out


def ov_circuits(params) -> dict[str, np.ndarray]:
  """Direct-path OV circuit of every head: {'LiHj': VxV} (ov_factors multiplied out)."""
  return {name: left @ right for name, (left, right) in ov_factors(params).items()}


def copying_scores(params) -> dict[str, float]:
  """{'LiHj': Olsson's copying score of the head's direct-path OV circuit}."""
  return {name: scores.copying_score_of_factors(left, right)
          for name, (left, right) in ov_factors(params).items()}
