"""What a task and a model agree on: the task's IOSpec and the registry's BuiltModel.

Its own module so that model families (resnet.py) can return a BuiltModel without importing
the registry that imports them.
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn


@dataclasses.dataclass(frozen=True)
class IOSpec:
  """What a task feeds a model and reads back."""
  output_dim: int
  seq_len: int
  input_dim: int = 0    # continuous inputs of this width, or
  vocab_size: int = 0   # token ids from this vocabulary
  # Images (H, W, C) in the inputs: a sequence model is then wrapped by the ResNet
  # exemplar embedder (resnet.ImageSequenceModel); "resnet" classifies them.
  image_shape: tuple[int, ...] = ()
  images_per_sequence: int = 0  # images per example (FLOP count of the embedder)


@dataclasses.dataclass(frozen=True)
class BuiltModel:
  module: nn.Module
  # Model FLOPs (forward + backward) per token, MaxText-style: 6 x matmul
  # params + causal attention term. Used for MFU.
  train_flops_per_token: float
  # Whether the forward pass mixes a batch's examples (ResNet norm="batch"): its outputs then
  # depend on which rows share a batch, so Experiment keeps each microbatch whole.
  batch_statistics: bool = False
