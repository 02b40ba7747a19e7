"""Model registry: `config.model.name` -> a Flax module plus its FLOP count.

A task says what goes in and out (vector width or vocabulary, output width,
sequence length); the registry combines that with `config.model` so that any
model family runs any task with no code change.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import flax.linen as nn
import jax.numpy as jnp

from research.models import transformer


@dataclasses.dataclass(frozen=True)
class IOSpec:
  """What a task feeds a model and reads back."""
  output_dim: int
  seq_len: int
  input_dim: int = 0    # continuous inputs of this width, or
  vocab_size: int = 0   # token ids from this vocabulary


@dataclasses.dataclass(frozen=True)
class BuiltModel:
  module: nn.Module
  # Model FLOPs (forward + backward) per token, MaxText-style: 6 x matmul
  # params + causal attention term. Used for MFU.
  train_flops_per_token: float


def _build_transformer(mc, io: IOSpec) -> BuiltModel:
  cfg = transformer.TransformerConfig(
      num_layers=mc.num_layers, width=mc.width, num_heads=mc.num_heads,
      output_dim=io.output_dim, input_dim=io.input_dim, vocab_size=io.vocab_size,
      max_len=max(mc.max_len, io.seq_len), mlp_ratio=mc.mlp_ratio,
      positions=mc.positions, dropout=mc.dropout, attention_only=mc.attention_only,
      use_layernorm=mc.use_layernorm, dtype=jnp.dtype(mc.dtype))
  flops = (6 * transformer.matmul_params_per_token(cfg)
           + transformer.attention_flops_per_token(cfg, io.seq_len))
  return BuiltModel(transformer.Transformer(cfg), flops)


REGISTRY: dict[str, Callable[..., BuiltModel]] = {
    "transformer": _build_transformer,
}


def build(model_cfg, io: IOSpec) -> BuiltModel:
  if model_cfg.name not in REGISTRY:
    raise ValueError(f"config.model.name={model_cfg.name!r} is not valid; choose one of: "
                     + ", ".join(sorted(REGISTRY)))
  return REGISTRY[model_cfg.name](model_cfg, io)
