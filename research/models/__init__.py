"""Model registry: `config.model.name` -> a Flax module plus its FLOP count.

A task says what goes in and out (vector width or vocabulary, output width,
sequence length); the registry combines that with `config.model` so that any
model family runs any task with no code change.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from research.errors import InputError
from research.models import lstm, resnet, transformer
from research.models.spec import BuiltModel, IOSpec  # noqa: F401 (the public names)


def check_max_len(model_cfg, io: IOSpec) -> None:
  """A new Transformer run's position table is at least the task's length. Called where a
  run starts from step 0 (research.train, research.ensemble, research.aot): the build below
  still raises a shorter table to the length, the model that runs saved before this check
  were trained with, so that they resume and predict as they were."""
  if model_cfg.name == "transformer" and 0 < model_cfg.max_len < io.seq_len:
    raise InputError(f"model.max_len={model_cfg.max_len} is shorter than the task's sequences "
                     f"({io.seq_len} positions); set model.max_len=0 (the task's length) or "
                     f">= {io.seq_len}")


def _build_transformer(mc, io: IOSpec) -> BuiltModel:
  cfg = transformer.TransformerConfig(
      num_layers=mc.num_layers, width=mc.width, num_heads=mc.num_heads,
      output_dim=io.output_dim, input_dim=io.input_dim, vocab_size=io.vocab_size,
      max_len=max(mc.max_len, io.seq_len), mlp_ratio=mc.mlp_ratio,
      positions=mc.positions, dropout=mc.dropout, attention_only=mc.attention_only,
      use_layernorm=mc.use_layernorm, dtype=jnp.dtype(mc.dtype),
      # .get: a run's config.json written before these fields existed (predict,
      # init_from) rebuilds the plain model it was trained with.
      attention=mc.get("attention", "explicit"), fused_qkv=mc.get("fused_qkv", False),
      remat=mc.get("remat", "none"), scan_layers=mc.get("scan_layers", False))
  flops = (6 * transformer.matmul_params_per_token(cfg)
           + transformer.attention_flops_per_token(cfg, io.seq_len))
  return BuiltModel(transformer.Transformer(cfg), flops)


def _build_lstm(mc, io: IOSpec) -> BuiltModel:
  cfg = lstm.LSTMConfig(
      num_layers=mc.lstm_layers or mc.num_layers, width=mc.lstm_width or 1,
      output_dim=io.output_dim, input_dim=io.input_dim, vocab_size=io.vocab_size,
      cell=mc.cell, dropout=mc.dropout, dtype=jnp.dtype(mc.dtype))
  if not mc.lstm_width:  # Chan's comparison: as many parameters as the Transformer
    target = _build_transformer(mc, io).module
    dummy = (jnp.zeros((1, io.seq_len), jnp.int32) if io.vocab_size
             else jnp.zeros((1, io.seq_len, io.input_dim)))
    shapes = jax.eval_shape(lambda: target.init(jax.random.key(0), dummy))["params"]
    n = sum(math.prod(x.shape) for x in jax.tree.leaves(nn.unbox(shapes)))
    cfg = dataclasses.replace(cfg, width=lstm.matched_width(n, cfg))
  return BuiltModel(lstm.LSTM(cfg), 6 * lstm.matmul_params_per_token(cfg))


REGISTRY: dict[str, Callable[..., BuiltModel]] = {
    "transformer": _build_transformer,
    "lstm": _build_lstm,
    "resnet": resnet.build_classifier,
}


def build(model_cfg, io: IOSpec) -> BuiltModel:
  if model_cfg.name not in REGISTRY:
    raise ValueError(f"config.model.name={model_cfg.name!r} is not valid; choose one of: "
                     + ", ".join(sorted(REGISTRY)))
  if io.image_shape and model_cfg.name != "resnet":
    return resnet.build_with_embedder(REGISTRY[model_cfg.name], model_cfg, io)
  return REGISTRY[model_cfg.name](model_cfg, io)
