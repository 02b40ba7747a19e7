"""Multi-layer LSTM (or vanilla RNN) sequence model with the Transformer's interface.

Inputs are token ids (embedding table) or continuous vectors (a linear read-in,
which is also how image-exemplar tokens arrive, see `resnet.ImageSequenceModel`);
outputs are per-position read-outs (B, L, O), float32. The stack is a plain
deep RNN as in Chan et al. 2022 (haiku `DeepRNN` of LSTM cells: no residuals,
no normalisation), scanned over time with `lax.scan`. The input projections of
all time steps are one matmul outside the scan, so the scan body only does the
recurrent matmul.

`matched_width` picks the hidden width whose parameter count is closest to a
target (e.g. the Transformer built from the same config), for Chan's
"LSTM of matched size" comparison.

Shape legend:
  B: batch        L: sequence length     H: hidden width (embed)
  G: gate width (4H for an LSTM, H for a vanilla RNN)
  I: read-in width   O: read-out width   V: vocabulary
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

P = nn.with_logical_partitioning
CELLS = ("lstm", "rnn")
_dense_init = nn.initializers.normal(stddev=0.02)


@dataclasses.dataclass(frozen=True)
class LSTMConfig:
  num_layers: int
  width: int
  output_dim: int
  input_dim: int = 0          # > 0: continuous inputs through a read-in
  vocab_size: int = 0         # > 0: token ids through an embedding table
  cell: str = "lstm"          # lstm | rnn (tanh)
  dropout: float = 0.0        # between layers, train only
  dtype: Any = jnp.float32    # compute dtype of the matmuls; the state stays float32


def _gates(cfg: LSTMConfig) -> int:
  if cfg.cell not in CELLS:
    raise ValueError(f"cell={cfg.cell!r} is not valid; choose one of: {', '.join(CELLS)}")
  return 4 if cfg.cell == "lstm" else 1


def _lstm_bias_init(key, shape, dtype=jnp.float32):
  """Zero bias except the forget gate (+1), so early training remembers."""
  del key
  h = shape[0] // 4
  return jnp.zeros(shape, dtype).at[h:2 * h].set(1.0)


class RecurrentLayer(nn.Module):
  """One LSTM / RNN layer over a whole sequence (lax.scan over time)."""
  cfg: LSTMConfig

  @nn.compact
  def __call__(self, x_BxLxH):
    cfg = self.cfg
    h, g = cfg.width, _gates(cfg) * cfg.width
    wi_HxG = self.param("input_kernel", P(nn.initializers.lecun_normal(), ("embed", "lstm_gates")),
                        (x_BxLxH.shape[-1], g))
    wh_HxG = self.param("recurrent_kernel",
                        P(nn.initializers.orthogonal(), ("lstm_hidden", "lstm_gates")), (h, g))
    b_G = self.param("bias", P(_lstm_bias_init if cfg.cell == "lstm" else nn.initializers.zeros,
                               ("lstm_gates",)), (g,))
    # Input projections of every step at once; the scan only adds h @ W_h.
    xg_BxLxG = jnp.einsum("blh,hg->blg", x_BxLxH.astype(cfg.dtype), wi_HxG.astype(cfg.dtype))
    xg_LxBxG = jnp.swapaxes(xg_BxLxG.astype(jnp.float32) + b_G, 0, 1)
    wh_HxG = wh_HxG.astype(cfg.dtype)
    b = x_BxLxH.shape[0]

    if cfg.cell == "lstm":
      def step(carry, xg_BxG):
        c_BxH, h_BxH = carry
        z_BxG = xg_BxG + (h_BxH.astype(cfg.dtype) @ wh_HxG).astype(jnp.float32)
        i, f, gg, o = jnp.split(z_BxG, 4, axis=-1)
        c_BxH = jax.nn.sigmoid(f) * c_BxH + jax.nn.sigmoid(i) * jnp.tanh(gg)
        h_BxH = jax.nn.sigmoid(o) * jnp.tanh(c_BxH)
        return (c_BxH, h_BxH), h_BxH
      init = (jnp.zeros((b, h), jnp.float32), jnp.zeros((b, h), jnp.float32))
    else:
      def step(h_BxH, xg_BxG):
        h_BxH = jnp.tanh(xg_BxG + (h_BxH.astype(cfg.dtype) @ wh_HxG).astype(jnp.float32))
        return h_BxH, h_BxH
      init = jnp.zeros((b, h), jnp.float32)
    _, hs_LxBxH = jax.lax.scan(step, init, xg_LxBxG)
    return jnp.swapaxes(hs_LxBxH, 0, 1)


class LSTM(nn.Module):
  """Deep LSTM. `inputs` are int token ids (B, L) or vectors (B, L, I)."""
  cfg: LSTMConfig

  @nn.compact
  def __call__(self, inputs, *, train: bool = False, head_mask=None):
    """Returns per-position outputs (B, L, O); the output at t sees inputs <= t."""
    if head_mask is not None:
      raise ValueError("head_mask is a Transformer probe; an LSTM has no attention heads")
    cfg = self.cfg
    if cfg.vocab_size:
      x_BxLxH = nn.Embed(cfg.vocab_size, cfg.width, name="token_embed",
                         embedding_init=P(_dense_init, ("vocab", "embed")))(inputs)
    else:
      x_BxLxH = nn.Dense(cfg.width, name="read_in",
                         kernel_init=P(_dense_init, ("input", "embed")),
                         bias_init=P(nn.initializers.zeros, ("embed",)))(inputs)
    for i in range(cfg.num_layers):
      x_BxLxH = RecurrentLayer(cfg, name=f"layer_{i}")(x_BxLxH)
      x_BxLxH = nn.Dropout(cfg.dropout)(x_BxLxH, deterministic=not train)
    out_BxLxO = nn.Dense(cfg.output_dim, name="read_out", dtype=cfg.dtype,
                         kernel_init=P(_dense_init, ("embed", "output")),
                         bias_init=P(nn.initializers.zeros, ("output",)))(x_BxLxH)
    return out_BxLxO.astype(jnp.float32)


def param_count(cfg: LSTMConfig) -> int:
  """Exact number of parameters of `LSTM(cfg)` (checked against init in tests)."""
  h, g = cfg.width, _gates(cfg) * cfg.width
  read_in = cfg.vocab_size * h if cfg.vocab_size else cfg.input_dim * h + h
  layers = cfg.num_layers * (h * g + h * g + g)
  return read_in + layers + h * cfg.output_dim + cfg.output_dim


def matched_width(target_params: int, cfg: LSTMConfig) -> int:
  """Hidden width whose `param_count` is closest to `target_params` (cfg.width ignored)."""
  best, best_err = 1, None
  lo, hi = 1, 1
  while param_count(dataclasses.replace(cfg, width=hi)) < target_params:
    lo, hi = hi, hi * 2
  for w in range(max(1, lo), hi + 1):
    err = abs(param_count(dataclasses.replace(cfg, width=w)) - target_params)
    if best_err is None or err < best_err:
      best, best_err = w, err
  return best


def matmul_params_per_token(cfg: LSTMConfig) -> int:
  """Parameters touched by a matmul per token: read-in, both gate matmuls, read-out."""
  h, g = cfg.width, _gates(cfg) * cfg.width
  read_in = 0 if cfg.vocab_size else cfg.input_dim * h
  return read_in + cfg.num_layers * 2 * h * g + h * cfg.output_dim
