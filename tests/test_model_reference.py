"""The sequence models' forward pass against an independent numpy reference, and the FLOP
counts the other tests leave at one configuration (mutation audit 6D).

The feature tests (test_transformer_features.py) compare each layout with the plain path,
and both run the same code: a mistake in that code (no 1/sqrt(K) scale, a norm moved onto
the residual stream, a sign in the rotary embedding, keys left unrotated, ReLU for GELU, no
final norm) changed every path alike and passed. Here the plain path meets the GPT-2
equations written out in float64 numpy from the initialised parameters.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.models import lstm, transformer
from research.models.transformer import Transformer, TransformerConfig


def _cfg(**kw):
  base = dict(num_layers=2, width=16, num_heads=2, output_dim=3, input_dim=5, max_len=8)
  return TransformerConfig(**(base | kw))


def _layernorm(x, p, eps=1e-6):  # flax.linen.LayerNorm's default epsilon
  mu = x.mean(-1, keepdims=True)
  var = ((x - mu) ** 2).mean(-1, keepdims=True)
  return (x - mu) / np.sqrt(var + eps) * p["scale"] + p["bias"]


def _gelu(x):  # GPT-2's tanh form (flax nn.gelu's default approximate=True)
  return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def _rope(x_LxHxK):
  """RoPE (Su et al.) on halves: pair (j, j + K/2) rotated by position * 10000^(-j/(K/2))."""
  length, _, k = x_LxHxK.shape
  half = k // 2
  theta = 10_000.0 ** (-np.arange(half) / half)
  ang = np.arange(length)[:, None, None] * theta[None, None, :]
  a, b = x_LxHxK[..., :half], x_LxHxK[..., half:]
  return np.concatenate([a * np.cos(ang) - b * np.sin(ang),
                         a * np.sin(ang) + b * np.cos(ang)], -1)


def _reference(cfg, p, x_LxI, head_mask=None):
  """One sequence through the pre-LN decoder, float64 numpy."""
  x = x_LxI @ p["read_in"]["kernel"] + p["read_in"]["bias"]
  length = x.shape[0]
  if cfg.positions == "learned":
    x = x + p["pos_embed"]["embedding"][:length]
  k = cfg.width // cfg.num_heads
  causal = np.tril(np.ones((length, length), bool))
  for i in range(cfg.num_layers):
    b = p[f"block_{i}"]
    h = _layernorm(x, b["ln_1"])
    q, kk, v = (np.einsum("ld,dhk->lhk", h, b["attn"][n]["kernel"]) + b["attn"][n]["bias"]
                for n in ("query", "key", "value"))
    if cfg.positions == "rotary":
      q, kk = _rope(q), _rope(kk)
    logits = np.einsum("qhk,thk->hqt", q, kk) / np.sqrt(k)
    logits = np.where(causal, logits, -np.inf)
    attn = np.exp(logits - logits.max(-1, keepdims=True))
    attn /= attn.sum(-1, keepdims=True)
    z = np.einsum("hqt,thk->qhk", attn, v)
    if head_mask is not None:
      z = z * head_mask[i][None, :, None]
    x = x + np.einsum("lhk,hkd->ld", z, b["attn"]["out"]["kernel"]) + b["attn"]["out"]["bias"]
    if not cfg.attention_only:
      h = _layernorm(x, b["ln_2"])
      h = _gelu(h @ b["mlp"]["fc_in"]["kernel"] + b["mlp"]["fc_in"]["bias"])
      x = x + h @ b["mlp"]["fc_out"]["kernel"] + b["mlp"]["fc_out"]["bias"]
  x = _layernorm(x, p["ln_f"])
  return x @ p["read_out"]["kernel"] + p["read_out"]["bias"]


def _params(model, x, scale=1.0):
  """Initialised parameters, every leaf but the norms' scaled so that attention is not
  uniform (the 0.02 init leaves every logit near 0, where a dropped 1/sqrt(K) or a wrong
  rotation changes the output by less than float32 noise)."""
  params = nn.unbox(model.init(jax.random.key(0), x)["params"])
  leaves, tree = jax.tree_util.tree_flatten_with_path(params)
  rng = np.random.default_rng(1)
  out = []
  for path, leaf in leaves:
    names = [getattr(k, "key", "") for k in path]
    if any(str(n).startswith("ln") for n in names):  # norms: a random scale and bias too
      out.append(np.asarray(leaf) + 0.3 * rng.normal(size=leaf.shape))
    else:
      out.append(scale * rng.normal(size=leaf.shape) / np.sqrt(max(leaf.shape[0], 1)))
  return jax.tree_util.tree_unflatten(tree, [np.asarray(v, np.float32) for v in out])


@pytest.mark.parametrize("kw", [{}, {"positions": "rotary"}, {"attention_only": True}])
def test_transformer_matches_a_numpy_gpt2_forward(kw):
  """Outputs equal the written-out pre-LN equations to float32 rounding (1e-4 of O(1)
  outputs; a dropped scale, a misplaced norm or a wrong rotation moves them by > 1e-2)."""
  cfg = _cfg(**kw)
  model = Transformer(cfg)
  x = np.asarray(jax.random.normal(jax.random.key(1), (2, 7, 5)), np.float32)
  params = _params(model, x, scale=2.0)
  got = np.asarray(jax.jit(model.apply)({"params": params}, x))
  p64 = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  want = np.stack([_reference(cfg, p64, np.asarray(xb, np.float64)) for xb in x])
  assert np.abs(want).max() > 0.5  # outputs of order one: the tolerance below means something
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_rotary_attention_depends_on_relative_position_only():
  """RoPE's defining property, independent of how it is written: with no other position
  signal, one query-key pair's logit is unchanged when both move by the same offset."""
  x = np.asarray(jax.random.normal(jax.random.key(4), (1, 6, 2, 8)), np.float32)
  rot = np.asarray(transformer._rotary(jnp.asarray(np.tile(x[:, :1], (1, 6, 1, 1)))), np.float64)
  # Every position holds the same vector, so q_m . k_n must be a function of m - n alone.
  dots = np.einsum("bmhk,bnhk->bhmn", rot, rot)[0, 0]
  for d in range(-5, 6):
    diag = np.diagonal(dots, offset=d)
    np.testing.assert_allclose(diag, diag[0], rtol=1e-5, atol=1e-5)
  # And it is a rotation: norms kept.
  np.testing.assert_allclose(np.linalg.norm(rot, axis=-1),
                             np.linalg.norm(np.tile(x[:, :1], (1, 6, 1, 1)), axis=-1), rtol=1e-5)
  np.testing.assert_allclose(rot, _rope(np.tile(x[0, :1], (6, 1, 1)))[None], rtol=1e-4, atol=1e-5)


def test_head_mask_ablates_that_layers_head_only():
  """head_mask[l, h] = 0 is layer l's head h removed: the same outputs as zeroing that head's
  rows of layer l's output projection (circuit probes ablate by name, e.g. L0H1)."""
  cfg = _cfg()
  model = Transformer(cfg)
  x = np.asarray(jax.random.normal(jax.random.key(2), (2, 7, 5)), np.float32)
  params = _params(model, x, scale=2.0)
  mask = np.ones((2, 2), np.float32)
  mask[0, 1] = 0.0
  got = np.asarray(model.apply({"params": params}, x, head_mask=jnp.asarray(mask)))
  zeroed = jax.tree.map(lambda a: a, params)
  zeroed["block_0"]["attn"]["out"]["kernel"] = params["block_0"]["attn"]["out"]["kernel"].copy()
  zeroed["block_0"]["attn"]["out"]["kernel"][1] = 0.0
  want = np.asarray(model.apply({"params": zeroed}, x))
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  assert not np.allclose(got, np.asarray(model.apply({"params": params}, x)), atol=1e-3)


def test_matmul_params_of_a_vector_input_and_an_attention_only_model():
  """The read-in of continuous inputs is a matmul (I x D per token) and attention-only blocks
  have no MLP: the by-hand test in test_transformer.py has token inputs and MLPs, so dropping
  either term went unseen (MFU and sweep FLOPs of Garg's and Olsson's runs)."""
  d, f = 32, 128
  cfg = TransformerConfig(num_layers=2, width=d, num_heads=4, output_dim=3, input_dim=5,
                          max_len=16)
  assert transformer.matmul_params_per_token(cfg) == 2 * (4 * d * d + 2 * d * f) + 5 * d + d * 3
  only = TransformerConfig(num_layers=3, width=d, num_heads=4, output_dim=7, vocab_size=7,
                           max_len=16, attention_only=True)
  assert transformer.matmul_params_per_token(only) == 3 * 4 * d * d + d * 7 == 12_512


def test_lstm_forget_gate_bias_starts_at_one():
  """Gates split as (i, f, g, o) (the step and test_lstm.py's reference); the +1 is on f, as
  Jozefowicz et al. and haiku's LSTM set it: on another gate the cell starts forgetting."""
  cfg = lstm.LSTMConfig(num_layers=2, width=4, output_dim=2, input_dim=3)
  params = nn.unbox(lstm.LSTM(cfg).init(jax.random.key(0), jnp.zeros((1, 2, 3)))["params"])
  for layer in ("layer_0", "layer_1"):
    np.testing.assert_array_equal(params[layer]["bias"],
                                  np.repeat([0.0, 1.0, 0.0, 0.0], 4).astype(np.float32))


def test_lstm_matched_width_when_the_best_is_a_power_of_two():
  """matched_width searches up to and including the doubling bound: a target met exactly at
  width 16 (a power of two) returns 16, not 15."""
  cfg = lstm.LSTMConfig(num_layers=1, width=1, output_dim=3, input_dim=5)
  target = lstm.param_count(lstm.LSTMConfig(num_layers=1, width=16, output_dim=3, input_dim=5))
  assert lstm.matched_width(target, cfg) == 16


def test_lstm_matmul_params_of_token_inputs():
  """Token inputs are an embedding lookup (no matmul); vector inputs a read-in matmul."""
  tok = lstm.LSTMConfig(num_layers=1, width=8, output_dim=4, vocab_size=10)
  vec = lstm.LSTMConfig(num_layers=1, width=8, output_dim=4, input_dim=10)
  assert lstm.matmul_params_per_token(tok) == 2 * 8 * 32 + 8 * 4 == 544
  assert lstm.matmul_params_per_token(vec) == 544 + 10 * 8
