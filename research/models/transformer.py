"""GPT-2-style decoder-only Transformer in Flax Linen.

Pre-LayerNorm blocks, GELU MLP, learned / rotary / no positions, optional
attention-only blocks (Olsson et al.'s toy models), inputs either token ids
(embedding table) or continuous vectors (a linear read-in, as in Garg et al.),
and a linear read-out of configurable width. Every parameter carries logical
axis names; `research/sharding.py` maps them to mesh axes from config.

Shape legend:
  B: batch            L: sequence length       D: model width (embed)
  H: attention heads  K: per-head width (kv)   F: MLP hidden width
  I: read-in width    O: read-out width        V: vocabulary
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

P = nn.with_logical_partitioning
_dense_init = nn.initializers.normal(stddev=0.02)


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
  num_layers: int
  width: int
  num_heads: int
  output_dim: int
  input_dim: int = 0          # > 0: continuous inputs through a read-in
  vocab_size: int = 0         # > 0: token ids through an embedding table
  max_len: int = 1024
  mlp_ratio: float = 4.0
  positions: str = "learned"  # learned | rotary | none
  dropout: float = 0.0
  attention_only: bool = False
  use_layernorm: bool = True
  dtype: Any = jnp.float32    # compute dtype; params stay float32


def _rotary(x_BxLxHxK: jax.Array) -> jax.Array:
  """Rotary position embedding (RoPE) on the last axis, split in halves."""
  _, length, _, k = x_BxLxHxK.shape
  half = k // 2
  freqs_F = 1.0 / (10_000 ** (jnp.arange(half, dtype=jnp.float32) / half))
  angles_LxF = jnp.arange(length, dtype=jnp.float32)[:, None] * freqs_F[None]
  sin, cos = jnp.sin(angles_LxF)[None, :, None], jnp.cos(angles_LxF)[None, :, None]
  x1, x2 = x_BxLxHxK[..., :half], x_BxLxHxK[..., half:2 * half]
  rotated = jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)
  return jnp.concatenate([rotated, x_BxLxHxK[..., 2 * half:]], -1).astype(x_BxLxHxK.dtype)


class Attention(nn.Module):
  cfg: TransformerConfig

  @nn.compact
  def __call__(self, x_BxLxD, *, train: bool, head_mask_H=None):
    cfg = self.cfg
    k = cfg.width // cfg.num_heads
    proj = lambda name: nn.DenseGeneral(
        (cfg.num_heads, k), dtype=cfg.dtype, name=name,
        kernel_init=P(_dense_init, ("embed", "heads", "kv")),
        bias_init=P(nn.initializers.zeros, ("heads", "kv")))
    q_BxLxHxK, k_BxLxHxK, v_BxLxHxK = (proj(n)(x_BxLxD) for n in ("query", "key", "value"))
    if cfg.positions == "rotary":
      q_BxLxHxK, k_BxLxHxK = _rotary(q_BxLxHxK), _rotary(k_BxLxHxK)
    length = x_BxLxD.shape[1]
    logits_BxHxLxL = jnp.einsum("bqhk,bthk->bhqt", q_BxLxHxK, k_BxLxHxK) / jnp.sqrt(k).astype(cfg.dtype)
    causal_LxL = jnp.tril(jnp.ones((length, length), dtype=bool))
    # Softmax in float32 whatever the compute dtype: bf16 logits lose the ranking.
    logits_BxHxLxL = jnp.where(causal_LxL, logits_BxHxLxL.astype(jnp.float32), -1e30)
    attn_BxHxLxL = jax.nn.softmax(logits_BxHxLxL, axis=-1)
    self.sow("intermediates", "attention", attn_BxHxLxL)
    attn_BxHxLxL = nn.Dropout(cfg.dropout)(attn_BxHxLxL, deterministic=not train)
    z_BxLxHxK = jnp.einsum("bhqt,bthk->bqhk", attn_BxHxLxL.astype(cfg.dtype), v_BxLxHxK)
    if head_mask_H is not None:  # head ablation for circuit probes
      z_BxLxHxK = z_BxLxHxK * head_mask_H[None, None, :, None].astype(cfg.dtype)
    return nn.DenseGeneral(
        cfg.width, axis=(-2, -1), dtype=cfg.dtype, name="out",
        kernel_init=P(_dense_init, ("heads", "kv", "embed")),
        bias_init=P(nn.initializers.zeros, ("embed",)))(z_BxLxHxK)


class Mlp(nn.Module):
  cfg: TransformerConfig

  @nn.compact
  def __call__(self, x_BxLxD, *, train: bool):
    cfg = self.cfg
    hidden = int(cfg.width * cfg.mlp_ratio)
    h_BxLxF = nn.Dense(hidden, dtype=cfg.dtype, name="fc_in",
                       kernel_init=P(_dense_init, ("embed", "mlp")),
                       bias_init=P(nn.initializers.zeros, ("mlp",)))(x_BxLxD)
    h_BxLxF = nn.gelu(h_BxLxF)
    out_BxLxD = nn.Dense(cfg.width, dtype=cfg.dtype, name="fc_out",
                         kernel_init=P(_dense_init, ("mlp", "embed")),
                         bias_init=P(nn.initializers.zeros, ("embed",)))(h_BxLxF)
    return nn.Dropout(cfg.dropout)(out_BxLxD, deterministic=not train)


def _norm(cfg: TransformerConfig, name: str):
  if not cfg.use_layernorm:
    return lambda x: x
  return nn.LayerNorm(dtype=cfg.dtype, name=name,
                      scale_init=P(nn.initializers.ones, ("embed",)),
                      bias_init=P(nn.initializers.zeros, ("embed",)))


class Block(nn.Module):
  cfg: TransformerConfig

  @nn.compact
  def __call__(self, x_BxLxD, *, train: bool, head_mask_H=None):
    cfg = self.cfg
    attn_BxLxD = Attention(cfg, name="attn")(_norm(cfg, "ln_1")(x_BxLxD), train=train,
                                             head_mask_H=head_mask_H)
    x_BxLxD = x_BxLxD + nn.Dropout(cfg.dropout)(attn_BxLxD, deterministic=not train)
    if not cfg.attention_only:
      x_BxLxD = x_BxLxD + Mlp(cfg, name="mlp")(_norm(cfg, "ln_2")(x_BxLxD), train=train)
    return x_BxLxD


class Transformer(nn.Module):
  """Causal decoder. `inputs` are int token ids (B, L) or vectors (B, L, I)."""
  cfg: TransformerConfig

  @nn.compact
  def __call__(self, inputs, *, train: bool = False, head_mask=None):
    """Returns per-position outputs (B, L, O).

    head_mask: optional (num_layers, num_heads) multipliers on each head's
    output (0 ablates a head). Attention weights are sown in the
    'intermediates' collection as `block_i/attn/attention` (B, H, L, L).
    """
    cfg = self.cfg
    if cfg.vocab_size:
      x_BxLxD = nn.Embed(cfg.vocab_size, cfg.width, name="token_embed",
                         embedding_init=P(_dense_init, ("vocab", "embed")))(inputs)
    else:
      x_BxLxD = nn.Dense(cfg.width, name="read_in",
                         kernel_init=P(_dense_init, ("input", "embed")),
                         bias_init=P(nn.initializers.zeros, ("embed",)))(inputs)
    length = x_BxLxD.shape[1]
    if length > cfg.max_len:
      raise ValueError(f"sequence length {length} exceeds model max_len {cfg.max_len}")
    if cfg.positions == "learned":
      pos_LxD = nn.Embed(cfg.max_len, cfg.width, name="pos_embed",
                         embedding_init=P(_dense_init, ("length", "embed")))(jnp.arange(length))
      x_BxLxD = x_BxLxD + pos_LxD[None]
    x_BxLxD = nn.Dropout(cfg.dropout)(x_BxLxD.astype(cfg.dtype), deterministic=not train)
    for i in range(cfg.num_layers):
      mask_H = None if head_mask is None else head_mask[i]
      x_BxLxD = Block(cfg, name=f"block_{i}")(x_BxLxD, train=train, head_mask_H=mask_H)
    x_BxLxD = _norm(cfg, "ln_f")(x_BxLxD)
    out_BxLxO = nn.Dense(cfg.output_dim, name="read_out", dtype=cfg.dtype,
                         kernel_init=P(_dense_init, ("embed", "output")),
                         bias_init=P(nn.initializers.zeros, ("output",)))(x_BxLxD)
    return out_BxLxO.astype(jnp.float32)


def matmul_params_per_token(cfg: TransformerConfig) -> int:
  """Parameters touched by a matmul per token (MaxText-style FLOP counting).

  Embedding lookups cost no matmul; the read-in, every projection and the
  read-out (an unembedding when vocab_size > 0) do.
  """
  d, f = cfg.width, int(cfg.width * cfg.mlp_ratio)
  per_layer = 4 * d * d + (0 if cfg.attention_only else 2 * d * f)
  read_in = cfg.input_dim * d if not cfg.vocab_size else 0
  return cfg.num_layers * per_layer + read_in + d * cfg.output_dim


def attention_flops_per_token(cfg: TransformerConfig, seq_len: int) -> float:
  """Forward+backward FLOPs of QK^T and AV per token, halved for causality."""
  # 2 matmuls x 2 FLOPs/MAC x L keys x D, times 3 for fwd+bwd, halved (causal).
  return 3 * 2 * 2 * cfg.num_layers * seq_len * cfg.width / 2
