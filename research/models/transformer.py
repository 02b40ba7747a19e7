"""GPT-2-style decoder-only Transformer in Flax Linen.

Pre-LayerNorm blocks, GELU MLP, learned / rotary / no positions, optional
attention-only blocks (Olsson et al.'s toy models), inputs either token ids
(embedding table) or continuous vectors (a linear read-in, as in Garg et al.),
and a linear read-out of configurable width. Every parameter carries logical
axis names; `research/sharding.py` maps them to mesh axes from config.

Features for large models, each a config field that leaves the maths unchanged
(tests/test_transformer_features.py checks outputs and gradients against the
plain path): `remat` (recompute a block's activations in the backward pass),
`scan_layers` (one `nn.scan` over identical blocks: parameters stacked on a
leading 'layers' axis, one block traced and compiled instead of N),
`attention='fused'` (`jax.nn.dot_product_attention`; XLA or cuDNN pick the
kernel), `fused_qkv` (one projection to queries, keys and values) and a bf16
compute `dtype`. Probes that read attention maps get the explicit path whatever
the config, and `unrolled_params` / `attention_maps` read any layout the
plain way.

Shape legend:
  B: batch            L: sequence length       D: model width (embed)
  H: attention heads  K: per-head width (kv)   F: MLP hidden width
  I: read-in width    O: read-out width        V: vocabulary
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import flax.linen as nn
from flax.core import meta
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec

from research.sharding import batch_axes

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
  positions: str = "learned"  # one of POSITIONS
  dropout: float = 0.0
  attention_only: bool = False
  use_layernorm: bool = True
  dtype: Any = jnp.float32    # compute dtype; params stay float32
  attention: str = "explicit"  # explicit | fused (jax.nn.dot_product_attention)
  fused_qkv: bool = False     # one (embed, 3, heads, kv) projection instead of three
  remat: str = "none"         # none | full | dots (REMAT_POLICIES)
  scan_layers: bool = False   # nn.scan over blocks: params under 'layers', stacked


# The position encodings the model implements: config_check accepts these and no other, so a
# new encoding is added here and where the model reads cfg.positions (below), nowhere else.
POSITIONS = ("learned", "rotary", "none")

# What a rematerialised block keeps from the forward pass. 'dots' keeps the outputs of
# matmuls without batch dimensions (the projections and MLP matmuls) and recomputes the
# rest, attention's batched QK^T and AV included: MaxText's 'minimal' policy.
REMAT_POLICIES = {"full": None,
                  "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable}


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


def _flat_init(init, flat_shape):
  """`init` drawn in `flat_shape` and reshaped, as nn.DenseGeneral draws its parameters."""
  def wrapped(rng, shape, dtype=jnp.float32):
    value = init(rng, flat_shape, dtype)
    if isinstance(value, meta.AxisMetadata):
      return meta.replace_boxed(value, jnp.reshape(value.unbox(), shape))
    return jnp.reshape(value, shape)
  return wrapped


class HeadsDense(nn.Module):
  """nn.DenseGeneral from the last axis to `features`: the same 'kernel' [D, *features] and
  'bias' [*features], drawn the same way, so checkpoints and probes see no difference.

  The bias is added to the flat [..., prod(features)] output. Why: added as [H, K] over
  [B, L, H, K], its gradient is a reduce over B and L that XLA:CPU rewrites into a padded
  32x32 reduce-window, which YNNPACK runs at about 1 GB/s: 18 of them were 54 ms of Garg
  small's ~800 ms step (profiled). Added flat, it is the plain reduce every nn.Dense bias has.
  """
  features: tuple[int, ...]
  dtype: Any
  kernel_init: Callable
  bias_init: Callable

  @nn.compact
  def __call__(self, x_BxLxD):
    d, n = x_BxLxD.shape[-1], math.prod(self.features)
    kernel = self.param("kernel", _flat_init(self.kernel_init, (d, n)), (d, *self.features),
                        jnp.float32)
    bias = self.param("bias", _flat_init(self.bias_init, (n,)), self.features, jnp.float32)
    x_BxLxD, kernel, bias = nn.dtypes.promote_dtype(x_BxLxD, kernel, bias, dtype=self.dtype)
    y_BxLxN = jnp.dot(x_BxLxD, kernel.reshape(d, n)) + bias.reshape(n)
    return y_BxLxN.reshape(*x_BxLxD.shape[:-1], *self.features)


class Attention(nn.Module):
  cfg: TransformerConfig

  def _project(self, x_BxLxD):
    cfg = self.cfg
    k = cfg.width // cfg.num_heads
    if cfg.fused_qkv:  # one matmul; 'qkv' has no sharding rule, so it stays replicated
      qkv_BxLx3xHxK = HeadsDense(
          (3, cfg.num_heads, k), dtype=cfg.dtype, name="qkv",
          kernel_init=P(_dense_init, ("embed", "qkv", "heads", "kv")),
          bias_init=P(nn.initializers.zeros, ("qkv", "heads", "kv")))(x_BxLxD)
      return qkv_BxLx3xHxK[:, :, 0], qkv_BxLx3xHxK[:, :, 1], qkv_BxLx3xHxK[:, :, 2]
    proj = lambda name: HeadsDense(
        (cfg.num_heads, k), dtype=cfg.dtype, name=name,
        kernel_init=P(_dense_init, ("embed", "heads", "kv")),
        bias_init=P(nn.initializers.zeros, ("heads", "kv")))
    return tuple(proj(n)(x_BxLxD) for n in ("query", "key", "value"))

  @nn.compact
  def __call__(self, x_BxLxD, *, train: bool, head_mask_H=None):
    cfg = self.cfg
    k = cfg.width // cfg.num_heads
    q_BxLxHxK, k_BxLxHxK, v_BxLxHxK = self._project(x_BxLxD)
    if cfg.positions == "rotary":
      q_BxLxHxK, k_BxLxHxK = _rotary(q_BxLxHxK), _rotary(k_BxLxHxK)
    # A caller collecting intermediates wants the attention maps: only the explicit path
    # has them. The fused path has no attention dropout (config_check refuses that pair).
    if cfg.attention == "fused" and not self.is_mutable_collection("intermediates"):
      # Softmax in float32 inside whatever the dtype (jax's XLA implementation).
      z_BxLxHxK = jax.nn.dot_product_attention(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, is_causal=True)
    else:
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
  train: bool = False  # an attribute, not an argument: remat and scan then need no static args

  @nn.compact
  def __call__(self, x_BxLxD, head_mask_H=None):
    cfg, train = self.cfg, self.train
    attn_BxLxD = Attention(cfg, name="attn")(_norm(cfg, "ln_1")(x_BxLxD), train=train,
                                             head_mask_H=head_mask_H)
    x_BxLxD = x_BxLxD + nn.Dropout(cfg.dropout)(attn_BxLxD, deterministic=not train)
    if not cfg.attention_only:
      x_BxLxD = x_BxLxD + Mlp(cfg, name="mlp")(_norm(cfg, "ln_2")(x_BxLxD), train=train)
    return _split_over_batch(x_BxLxD)


def _split_over_batch(x):
  """The residual stream stays split over the batch mesh axes inside a training step
  (Experiment.loss_fn sets the mesh; elsewhere a no-op). Under FSDP, XLA would otherwise
  follow the weights' `embed` sharding and hold every example's activations on every
  chip (research.aot, 1b on v5e:4x4 in 16 microbatches: 30.7 GB of temporaries per chip
  instead of 4.5 GB)."""
  axes = batch_axes()
  return jax.lax.with_sharding_constraint(x, PartitionSpec(axes)) if axes else x


class _ScanBlock(Block):
  """A Block in nn.scan's (carry, x) -> (carry, y) form; parameters as Block's."""

  def __call__(self, x_BxLxD, head_mask_H=None):
    return super().__call__(x_BxLxD, head_mask_H), None


def _blocks(cfg: TransformerConfig, x_BxLxD, *, train: bool, head_mask):
  """The residual stack, unrolled (`block_i`) or scanned (`layers`, stacked)."""
  block_cls = _ScanBlock if cfg.scan_layers else Block
  if train and cfg.remat != "none":  # remat only changes what a backward pass recomputes
    # prevent_cse=False under scan, as jax.checkpoint's docs advise: scan already stops CSE.
    block_cls = nn.remat(block_cls, policy=REMAT_POLICIES[cfg.remat],
                         prevent_cse=not cfg.scan_layers)
  if not cfg.scan_layers:
    for i in range(cfg.num_layers):
      mask_H = None if head_mask is None else head_mask[i]
      x_BxLxD = block_cls(cfg, train=train, name=f"block_{i}")(x_BxLxD, mask_H)
    return x_BxLxD
  scanned = nn.scan(block_cls, variable_axes={"params": 0, "intermediates": 0},
                    split_rngs={"params": True, "dropout": True}, in_axes=0,
                    length=cfg.num_layers, metadata_params={nn.PARTITION_NAME: "layers"})
  x_BxLxD, _ = scanned(cfg, train=train, name="layers")(x_BxLxD, head_mask)
  return x_BxLxD


class Transformer(nn.Module):
  """Causal decoder. `inputs` are int token ids (B, L) or vectors (B, L, I)."""
  cfg: TransformerConfig

  @nn.compact
  def __call__(self, inputs, *, train: bool = False, head_mask=None):
    """Returns per-position outputs (B, L, O).

    head_mask: optional (num_layers, num_heads) multipliers on each head's
    output (0 ablates a head). Attention weights are sown in the
    'intermediates' collection as `block_i/attn/attention` (B, H, L, L), or
    stacked as `layers/attn/attention` (N, B, H, L, L) with scan_layers; read
    them with `attention_maps`.
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
    x_BxLxD = _blocks(cfg, x_BxLxD, train=train, head_mask=head_mask)
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
  d = cfg.width
  read_in = cfg.input_dim * d if not cfg.vocab_size else 0
  return cfg.num_layers * _block_matmul_params(cfg) + read_in + d * cfg.output_dim


def _block_matmul_params(cfg: TransformerConfig) -> int:
  d, f = cfg.width, int(cfg.width * cfg.mlp_ratio)
  return 4 * d * d + (0 if cfg.attention_only else 2 * d * f)


def attention_flops_per_token(cfg: TransformerConfig, seq_len: int) -> float:
  """Forward+backward FLOPs of QK^T and AV per token, halved for causality."""
  # 2 matmuls x 2 FLOPs/MAC x L keys x D, times 3 for fwd+bwd, halved (causal).
  return 3 * 2 * 2 * cfg.num_layers * seq_len * cfg.width / 2


def remat_flops_per_token(cfg: TransformerConfig, seq_len: int) -> float:
  """Matmul FLOPs per token remat adds to the model count (research.aot's roofline): the
  blocks' forward again under 'full' (not the read-out), attention's QK^T and AV again under
  'dots' (REMAT_POLICIES); the elementwise ops also recomputed are not counted."""
  if cfg.remat == "none":
    return 0.0
  attention_forward = attention_flops_per_token(cfg, seq_len) / 3
  if cfg.remat == "dots":
    return attention_forward
  return 2 * cfg.num_layers * _block_matmul_params(cfg) + attention_forward


# --- parameter layouts ------------------------------------------------------------
# scan_layers and fused_qkv change where parameters live, not what they compute.
# Probes and analyses read the plain layout (`block_i/attn/{query,key,value}`);
# `convert_params` moves a parameter tree between layouts (the tests use it to give
# every feature the plain model's parameters).
def _stacked(trees: list) -> Any:
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _fuse_qkv(attn: dict) -> dict:
  qkv = {"kernel": jnp.stack([attn[n]["kernel"] for n in ("query", "key", "value")], axis=1),
         "bias": jnp.stack([attn[n]["bias"] for n in ("query", "key", "value")], axis=0)}
  return {"qkv": qkv} | {k: v for k, v in attn.items() if k not in ("query", "key", "value")}


def _split_qkv(attn: dict) -> dict:
  k_Dx3xHxK, b_3xHxK = attn["qkv"]["kernel"], attn["qkv"]["bias"]
  split = {n: {"kernel": k_Dx3xHxK[:, j], "bias": b_3xHxK[j]}
           for j, n in enumerate(("query", "key", "value"))}
  return split | {k: v for k, v in attn.items() if k != "qkv"}


def convert_params(params: dict, *, scan_layers: bool, fused_qkv: bool) -> dict:
  """`params` of any layout in the layout of (scan_layers, fused_qkv); values unchanged."""
  params = dict(params)
  if "layers" in params:  # scanned -> block_i
    layers = params.pop("layers")
    n = jax.tree.leaves(layers)[0].shape[0]
    params |= {f"block_{i}": jax.tree.map(lambda x, i=i: x[i], layers) for i in range(n)}
  names = sorted((k for k in params if k.startswith("block_")), key=lambda k: int(k[6:]))
  for name in names:
    block = dict(params[name])
    if fused_qkv and "qkv" not in block["attn"]:
      block["attn"] = _fuse_qkv(block["attn"])
    elif not fused_qkv and "qkv" in block["attn"]:
      block["attn"] = _split_qkv(block["attn"])
    params[name] = block
  if scan_layers:
    params["layers"] = _stacked([params.pop(name) for name in names])
  return params


def unrolled_params(params: dict) -> dict:
  """The plain layout (`block_i`, separate query/key/value) that probes read."""
  return convert_params(params, scan_layers=False, fused_qkv=False)


def attention_maps(intermediates) -> dict[int, jax.Array]:
  """{layer: (B, H, L, L)} from sown intermediates, unrolled or scanned, at any depth
  (a Transformer inside another module, e.g. the image-sequence wrapper)."""
  maps = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(intermediates):
    keys = [str(getattr(p, "key", "")) for p in path]
    if "attention" not in keys:
      continue
    blocks = [k for k in keys if k.startswith("block_")]
    if blocks:
      maps[int(blocks[-1][6:])] = leaf
    elif "layers" in keys:  # scanned: a leading layer axis
      maps |= {i: leaf[i] for i in range(leaf.shape[0])}
  return dict(sorted(maps.items()))



def _layout_of(tree: dict) -> tuple[bool, bool] | None:
  """(scan_layers, fused_qkv) of a Transformer parameter dict, None if it is not one."""
  blocks = [v for k, v in tree.items() if k == "layers" or k.startswith("block_")]
  if not blocks or not isinstance(blocks[0], dict) or "attn" not in blocks[0]:
    return None
  return "layers" in tree, "qkv" in blocks[0]["attn"]


def match_layout(source: dict, like: dict) -> dict:
  """`source` with every Transformer in it (at any depth) moved to the layout it has in
  `like`: another run's parameters for `config.init_from`, whatever layout each used."""
  layout = _layout_of(like)
  if layout is not None and _layout_of(source) is not None:
    return convert_params(source, scan_layers=layout[0], fused_qkv=layout[1])
  return {k: match_layout(v, like[k]) if isinstance(v, dict) and isinstance(like.get(k), dict)
          else v for k, v in source.items()}

