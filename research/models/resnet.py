"""ResNet: an image classifier, and the exemplar embedder of Chan et al. 2022.

`ResNet` maps images (N, H, W, C) to feature vectors (N, F): a stem conv
(Chan: 64 channels, 7x7, stride 2, then a 3x3/2 max-pool), stages of residual
blocks (v1 layout: conv-norm-relu, projection shortcut when the shape changes;
basic or bottleneck blocks), global average pooling. Normalisation is
GroupNorm by default; `norm="batch"` normalises with the statistics of the
current batch at train and eval time (Chan's `test_local_stats=True` mode):
the trainer carries parameters only, so there are no running averages.

Two uses, both chosen by `config.model.name` with no code change:
  * `ResNetClassifier` ("resnet" in the registry): (B, H, W, C) images ->
    logits (B, 1, O), the same (batch, positions, outputs) layout as the
    sequence models.
  * `ImageSequenceModel`: wraps any sequence model (Transformer, LSTM) when the
    task's IOSpec has `image_shape`. Inputs are a dict
      images      (B, M, H, W, C)  the exemplar images of each sequence
      image_index (B, L) int32     which image sits at each position, -1 = none
      vectors     (B, L, I)        everything else (e.g. one-hot labels)
    Each image becomes one feature vector (Chan's channels (16, 32, 32, D));
    position t of the sequence model reads concat(vectors_t, features of
    image_index_t or 0), through the sequence model's linear read-in.

Shape legend:
  N: images      H, W: height, width   C: channels (in)   F: features / channels (out)
  B: batch       M: images per sequence   L: sequence length   I: vector width
  E: image feature width   O: outputs
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from research.models.spec import BuiltModel

P = nn.with_logical_partitioning
NORMS = ("group", "batch", "none")
_conv_init = nn.initializers.variance_scaling(2.0, "fan_in", "truncated_normal")  # He


@dataclasses.dataclass(frozen=True)
class ResNetConfig:
  blocks: tuple[int, ...] = (2, 2, 2, 2)        # residual blocks per stage
  channels: tuple[int, ...] = (16, 32, 32, 64)  # output channels per stage (last = features)
  strides: tuple[int, ...] = (1, 2, 2, 2)       # first-block stride per stage
  stem_channels: int = 64
  stem_kernel: int = 7
  stem_stride: int = 2
  stem_pool: bool = True                        # 3x3 stride-2 max-pool after the stem
  bottleneck: bool = False                      # 1x1-3x3-1x1 blocks with channels/4 inside
  norm: str = "group"                           # group | batch | none
  groups: int = 8                               # GroupNorm groups (gcd with channels)
  dtype: Any = jnp.float32


class BatchStatNorm(nn.Module):
  """Normalises over (N, H, W) with the current batch's statistics; learned scale/bias."""
  eps: float = 1e-5

  @nn.compact
  def __call__(self, x_NxHxWxF):
    f = x_NxHxWxF.shape[-1]
    scale_F = self.param("scale", P(nn.initializers.ones, ("conv_out",)), (f,))
    bias_F = self.param("bias", P(nn.initializers.zeros, ("conv_out",)), (f,))
    x32 = x_NxHxWxF.astype(jnp.float32)
    mean_F = jnp.mean(x32, axis=(0, 1, 2))
    var_F = jnp.mean(jnp.square(x32 - mean_F), axis=(0, 1, 2))
    y = (x32 - mean_F) * jax.lax.rsqrt(var_F + self.eps) * scale_F + bias_F
    return y.astype(x_NxHxWxF.dtype)


def _norm(cfg: ResNetConfig, channels: int, name: str):
  if cfg.norm == "none":
    return lambda x: x
  if cfg.norm == "batch":
    return BatchStatNorm(name=name)
  if cfg.norm == "group":
    return nn.GroupNorm(num_groups=math.gcd(cfg.groups, channels), dtype=cfg.dtype, name=name,
                        scale_init=P(nn.initializers.ones, ("conv_out",)),
                        bias_init=P(nn.initializers.zeros, ("conv_out",)))
  raise ValueError(f"norm={cfg.norm!r} is not valid; choose one of: {', '.join(NORMS)}")


def _conv(cfg: ResNetConfig, features: int, kernel: int, stride: int, name: str):
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding="SAME",
                 use_bias=False, dtype=cfg.dtype, name=name,
                 kernel_init=P(_conv_init, ("conv_h", "conv_w", "conv_in", "conv_out")))


class Block(nn.Module):
  """ResNet v1 block: (conv-norm-relu) x 2 (or bottleneck x 3), + shortcut, relu."""
  cfg: ResNetConfig
  channels: int
  stride: int

  @nn.compact
  def __call__(self, x_NxHxWxC):
    cfg = self.cfg
    shortcut = x_NxHxWxC
    if self.stride != 1 or x_NxHxWxC.shape[-1] != self.channels:
      shortcut = _conv(cfg, self.channels, 1, self.stride, "shortcut_conv")(shortcut)
      shortcut = _norm(cfg, self.channels, "shortcut_norm")(shortcut)
    if cfg.bottleneck:
      inner = max(1, self.channels // 4)
      layers = ((inner, 1, 1), (inner, 3, self.stride), (self.channels, 1, 1))
    else:
      layers = ((self.channels, 3, self.stride), (self.channels, 3, 1))
    y = x_NxHxWxC
    for i, (f, k, s) in enumerate(layers):
      y = _conv(cfg, f, k, s, f"conv_{i}")(y)
      y = _norm(cfg, f, f"norm_{i}")(y)
      if i < len(layers) - 1:
        y = nn.relu(y)
    return nn.relu(y + shortcut)


class ResNet(nn.Module):
  """Images (N, H, W, C), any float or uint8 scale the task chose -> features (N, F)."""
  cfg: ResNetConfig

  @nn.compact
  def __call__(self, x_NxHxWxC, *, train: bool = False):
    del train  # no dropout; BatchStatNorm uses batch statistics in both modes
    cfg = self.cfg
    if not len(cfg.blocks) == len(cfg.channels) == len(cfg.strides):
      raise ValueError("ResNet blocks, channels and strides need one entry per stage, got "
                       f"{cfg.blocks}, {cfg.channels}, {cfg.strides}")
    y = _conv(cfg, cfg.stem_channels, cfg.stem_kernel, cfg.stem_stride, "stem_conv")(
        x_NxHxWxC.astype(cfg.dtype))
    y = nn.relu(_norm(cfg, cfg.stem_channels, "stem_norm")(y))
    if cfg.stem_pool:
      y = nn.max_pool(y, (3, 3), strides=(2, 2), padding="SAME")
    for s, (n, f, stride) in enumerate(zip(cfg.blocks, cfg.channels, cfg.strides)):
      for b in range(n):
        y = Block(cfg, f, stride if b == 0 else 1, name=f"stage_{s}_block_{b}")(y)
    return jnp.mean(y.astype(jnp.float32), axis=(1, 2))


class ResNetClassifier(nn.Module):
  """(B, H, W, C) images -> (B, 1, O) logits."""
  cfg: ResNetConfig
  output_dim: int

  @nn.compact
  def __call__(self, inputs, *, train: bool = False, head_mask=None):
    if head_mask is not None:
      raise ValueError("head_mask is a Transformer probe; a ResNet has no attention heads")
    feats_BxF = ResNet(self.cfg, name="resnet")(inputs, train=train)
    logits_BxO = nn.Dense(self.output_dim, name="head",
                          kernel_init=P(nn.initializers.normal(0.01), ("conv_out", "output")),
                          bias_init=P(nn.initializers.zeros, ("output",)))(feats_BxF)
    return logits_BxO[:, None, :].astype(jnp.float32)


class ImageSequenceModel(nn.Module):
  """A ResNet exemplar embedder in front of a sequence model reading vectors."""
  embedder: nn.Module
  sequence_model: nn.Module

  def __call__(self, inputs, *, train: bool = False, head_mask=None):
    images_BxMxHxWxC = inputs["images"]
    idx_BxL = inputs["image_index"]
    b, m = images_BxMxHxWxC.shape[:2]
    feats = self.embedder(images_BxMxHxWxC.reshape((b * m,) + images_BxMxHxWxC.shape[2:]),
                          train=train)
    feats_BxMxE = feats.reshape(b, m, -1)
    gathered_BxLxE = jnp.take_along_axis(feats_BxMxE, jnp.maximum(idx_BxL, 0)[..., None], axis=1)
    gathered_BxLxE = gathered_BxLxE * (idx_BxL >= 0)[..., None]
    x_BxLxI = jnp.concatenate([inputs["vectors"].astype(jnp.float32), gathered_BxLxE], axis=-1)
    return self.sequence_model(x_BxLxI, train=train, head_mask=head_mask)


# --- FLOPs ---------------------------------------------------------------------
def forward_flops(cfg: ResNetConfig, image_shape) -> float:
  """Forward FLOPs (2 per multiply-add) of the convolutions for one image."""
  h, w, c = image_shape
  total = 0.0

  def conv(h, w, cin, cout, k, s):
    ho, wo = -(-h // s), -(-w // s)
    return ho, wo, 2.0 * ho * wo * k * k * cin * cout

  h, w, fl = conv(h, w, c, cfg.stem_channels, cfg.stem_kernel, cfg.stem_stride)
  total += fl
  if cfg.stem_pool:
    h, w = -(-h // 2), -(-w // 2)
  cin = cfg.stem_channels
  for n, f, stride in zip(cfg.blocks, cfg.channels, cfg.strides):
    for b in range(n):
      s = stride if b == 0 else 1
      if s != 1 or cin != f:
        total += conv(h, w, cin, f, 1, s)[2]
      if cfg.bottleneck:
        inner = max(1, f // 4)
        total += conv(h, w, cin, inner, 1, 1)[2]
        h2, w2, fl = conv(h, w, inner, inner, 3, s)
        total += fl + conv(h2, w2, inner, f, 1, 1)[2]
      else:
        h2, w2, fl = conv(h, w, cin, f, 3, s)
        total += fl + conv(h2, w2, f, f, 3, 1)[2]
      h, w, cin = h2, w2, f
  return total


# --- registry builders -----------------------------------------------------------
def config_from(mc) -> ResNetConfig:
  """ResNetConfig from `config.model.resnet` (see configs/resnet_images.py)."""
  r = mc.resnet
  return ResNetConfig(
      blocks=tuple(r.blocks), channels=tuple(r.channels), strides=tuple(r.strides),
      stem_channels=r.stem_channels, stem_kernel=r.stem_kernel, stem_stride=r.stem_stride,
      stem_pool=r.stem_pool, bottleneck=r.bottleneck, norm=r.norm, groups=r.groups,
      dtype=jnp.dtype(mc.dtype))


def build_classifier(mc, io):
  if not io.image_shape:
    raise ValueError("config.model.name='resnet' needs a task with images "
                     "(IOSpec.image_shape), e.g. task.name='image_classification'")
  cfg = config_from(mc)
  flops = 3 * forward_flops(cfg, io.image_shape) + 6 * cfg.channels[-1] * io.output_dim
  return BuiltModel(ResNetClassifier(cfg, io.output_dim), flops, cfg.norm == "batch")


def build_with_embedder(build_sequence_model, mc, io):
  """Wraps the sequence model built for vectors of width input_dim + E."""
  cfg = config_from(mc)
  feat = cfg.channels[-1]
  seq_io = dataclasses.replace(io, input_dim=io.input_dim + feat, image_shape=())
  seq = build_sequence_model(mc, seq_io)
  # Images per sequence position: the task says how many images a sequence holds.
  images_per_token = io.images_per_sequence / io.seq_len
  flops = seq.train_flops_per_token + images_per_token * 3 * forward_flops(cfg, io.image_shape)
  return BuiltModel(ImageSequenceModel(ResNet(cfg), seq.module), flops,
                    cfg.norm == "batch" or seq.batch_statistics)
