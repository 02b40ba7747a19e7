"""LSTM shapes, causality, logical axes, parameter count and matched width."""
import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from research import models
from research.models.lstm import LSTM, LSTMConfig, matched_width, param_count


def _cfg(**kw):
  return LSTMConfig(**(dict(num_layers=2, width=16, output_dim=3, input_dim=5) | kw))


def _count(params):
  return sum(math.prod(x.shape) for x in jax.tree.leaves(params))


@pytest.mark.parametrize("kw", [{}, {"cell": "rnn"}, {"input_dim": 0, "vocab_size": 11},
                                {"dtype": jnp.bfloat16}])
def test_shapes_and_param_count(kw):
  cfg = _cfg(**kw)
  model = LSTM(cfg)
  x = (jnp.arange(14).reshape(2, 7) % 11 if cfg.vocab_size
       else jax.random.normal(jax.random.key(1), (2, 7, 5)))
  # Abstract evaluation: shapes, dtypes and axis names without compiling anything.
  boxed = jax.eval_shape(lambda: model.init(jax.random.key(0), x))["params"]
  params = nn.unbox(boxed)
  out = jax.eval_shape(lambda p: model.apply({"params": p}, x), params)
  assert out.shape == (2, 7, 3) and out.dtype == jnp.float32
  assert _count(params) == param_count(cfg)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
  specs = jax.tree.leaves(nn.get_partition_spec(boxed),
                          is_leaf=lambda s: isinstance(s, jax.sharding.PartitionSpec))
  assert len(specs) == len(jax.tree.leaves(params))
  for spec, p in zip(specs, jax.tree.leaves(params)):
    assert len(spec) == p.ndim and all(a is not None for a in spec), spec


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_causal_gradient(cell):
  model = LSTM(_cfg(cell=cell))
  x = jax.random.normal(jax.random.key(2), (1, 9, 5))
  params = nn.unbox(model.init(jax.random.key(0), x)["params"])
  for t in (0, 4, 8):
    g = np.asarray(jax.grad(lambda x: model.apply({"params": params}, x)[0, t].sum())(x)[0])
    assert np.all(g[t + 1:] == 0), f"output {t} depends on the future"
    assert np.any(g[:t + 1] != 0)


def _textbook_lstm(p, xs):
  """The textbook one-layer LSTM over the rows of xs, in numpy: (each step's read-out, the last
  cell state)."""
  sig = lambda z: 1 / (1 + np.exp(-z))
  l, width = p["layer_0"], p["layer_0"]["recurrent_kernel"].shape[0]
  h, c, outs = np.zeros(width), np.zeros(width), []
  for x_t in xs:
    u = x_t @ p["read_in"]["kernel"] + p["read_in"]["bias"]
    i, f, g, o = np.split(u @ l["input_kernel"] + h @ l["recurrent_kernel"] + l["bias"], 4)
    c = sig(f) * c + sig(i) * np.tanh(g)
    h = sig(o) * np.tanh(c)
    outs.append(h @ p["read_out"]["kernel"] + p["read_out"]["bias"])
  return np.stack(outs), c


def test_matches_a_reference_lstm_step():
  """One layer, two steps, against the textbook equations in numpy."""
  cfg = _cfg(num_layers=1, width=4, input_dim=3, output_dim=2)
  model = LSTM(cfg)
  x = np.asarray(jax.random.normal(jax.random.key(3), (1, 2, 3)), np.float64)
  p = jax.tree.map(lambda a: np.asarray(a, np.float64),
                   nn.unbox(model.init(jax.random.key(0), jnp.asarray(x, jnp.float32))["params"]))
  want, _ = _textbook_lstm(p, x[0])
  got = model.apply({"params": p}, jnp.asarray(x, jnp.float32))
  np.testing.assert_allclose(np.asarray(got[0]), want, rtol=1e-4, atol=1e-5)


def test_head_mask_is_refused():
  model = LSTM(_cfg())
  x = jnp.ones((1, 3, 5))
  params = nn.unbox(model.init(jax.random.key(0), x)["params"])
  with pytest.raises(ValueError, match="no attention heads"):
    model.apply({"params": params}, x, head_mask=jnp.ones((2, 1)))


def test_matched_width_is_closest():
  cfg = _cfg(num_layers=3, input_dim=95, output_dim=32)
  target = 100_000
  w = matched_width(target, cfg)
  err = lambda w: abs(param_count(dataclasses.replace(cfg, width=w)) - target)
  assert err(w) <= err(w - 1) and err(w) <= err(w + 1)


def _model_cfg(**kw):
  c = ml_collections.ConfigDict(dict(
      name="lstm", num_layers=2, width=32, num_heads=2, mlp_ratio=4.0, positions="learned",
      max_len=0, dropout=0.0, attention_only=False, use_layernorm=True, dtype="float32",
      cell="lstm", lstm_width=0, lstm_layers=0))
  c.update(kw)
  return c


def test_registry_builds_a_param_matched_lstm():
  io = models.IOSpec(output_dim=8, seq_len=9, input_dim=24)
  x = jnp.zeros((1, 9, 24))
  n = lambda mc: _count(nn.unbox(jax.eval_shape(
      lambda: models.build(mc, io).module.init(jax.random.key(0), x))["params"]))
  n_tf, n_lstm = n(_model_cfg(name="transformer")), n(_model_cfg())
  w = models.build(_model_cfg(), io).module.cfg
  neighbours = [param_count(dataclasses.replace(w, width=w.width + d)) for d in (-1, 1)]
  assert all(abs(n_lstm - n_tf) <= abs(m - n_tf) for m in neighbours), (n_lstm, n_tf)
  assert abs(n_lstm - n_tf) / n_tf < 0.05
  explicit = models.build(_model_cfg(lstm_width=7, lstm_layers=3), io).module
  assert explicit.cfg.width == 7 and explicit.cfg.num_layers == 3


@pytest.mark.slow  # two trainer compiles (1 and 8 devices): ~40 s of CPU
def test_sharded_lstm_step_equals_single_device():
  """The LSTM on the classification task: a 2x2x2 mesh step equals the 1-device step."""
  from configs import bursty_classification
  from research.experiment import Experiment

  def run(mesh, devices):
    c = bursty_classification.get_config("tiny")
    c.model.name = "lstm"
    c.mesh.update(mesh)
    exp = Experiment(c, devices)
    state, metrics = exp.multi_step_fn(2)(exp.init_state())
    return jax.device_get(state), jax.device_get(metrics)

  ref_state, ref_metrics = run(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1])
  state, metrics = run(dict(data=2, fsdp=2, tensor=2), jax.devices())
  np.testing.assert_allclose(metrics["loss"], ref_metrics["loss"], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(ref_state.params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_matmul_params_are_every_weight_matrix():
  """Input and recurrent gate matrices of every layer, the read-in and read-out: the
  parameters less the biases (a mutation audit halved the recurrent ones unseen)."""
  from research.models import lstm
  cfg = lstm.LSTMConfig(num_layers=2, width=16, output_dim=3, input_dim=5)
  h, g = 16, 64
  assert lstm.matmul_params_per_token(cfg) == 5 * h + 2 * (h * g + h * g) + h * 3 == 4224
  assert lstm.matmul_params_per_token(cfg) == lstm.param_count(cfg) - h - 2 * g - 3


def test_dropout_between_layers_acts_in_training_only():
  """Dropout after each recurrent layer zeroes about half of its hidden
  states at rate 0.5 in training (the rest scaled by 2) and none at eval; left
  deterministic it passed every test."""
  model = LSTM(_cfg(dropout=0.5))
  x = jax.random.normal(jax.random.key(1), (4, 8, 5))
  params = nn.unbox(model.init(jax.random.key(0), x)["params"])
  for train in (True, False):
    _, state = model.apply({"params": params}, x, train=train, rngs={"dropout": jax.random.key(2)},
                           capture_intermediates=True, mutable=["intermediates"])
    inter = state["intermediates"]
    for i in range(2):
      h = inter[f"layer_{i}"]["__call__"][0]
      out = inter[f"Dropout_{i}"]["__call__"][0]
      zeros = np.asarray(out == 0)
      if train:
        assert 0.4 < zeros.mean() < 0.6, zeros.mean()
        np.testing.assert_allclose(np.asarray(out)[~zeros], 2 * np.asarray(h)[~zeros], rtol=1e-6)
      else:
        np.testing.assert_array_equal(out, h)


def _unit_scale_params(model, x, seed: int):
  """model's parameters redrawn from N(0, 1) in float64 (init's scale keeps every
  pre-activation in tanh's linear range, where a dropped tanh cannot show)."""
  p0 = nn.unbox(model.init(jax.random.key(0), jnp.asarray(x, jnp.float32))["params"])
  leaves, treedef = jax.tree.flatten(p0)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree.unflatten(treedef, [np.asarray(jax.random.normal(k, a.shape), np.float64)
                                      for a, k in zip(leaves, keys)])


def test_matches_the_textbook_lstm_with_order_one_activations():
  """At init (read-in stddev 0.02) the cell state stays ~1e-2, where
  tanh(c) = c to 1e-5, so h = sigmoid(o) * c for sigmoid(o) * tanh(c) passed the reference
  step test. Here every parameter is redrawn at scale 1, so |c| ~ 1 and the tanh shows."""
  cfg = _cfg(num_layers=1, width=4, input_dim=3, output_dim=2)
  model = LSTM(cfg)
  x = np.asarray(jax.random.normal(jax.random.key(3), (1, 3, 3)), np.float64)
  p = _unit_scale_params(model, x, seed=4)
  want, c = _textbook_lstm(p, x[0])
  assert np.abs(c).max() > 0.5   # far from the linear range of tanh
  got = model.apply({"params": jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), p)},
                    jnp.asarray(x, jnp.float32))
  np.testing.assert_allclose(np.asarray(got[0]), want, rtol=1e-4, atol=1e-5)


def test_vanilla_rnn_matches_tanh_of_the_summed_projections():
  """Cell='rnn' is h_t = tanh(x_t W_i + h_{t-1} W_h + b); with the tanh
  dropped every test passed (no reference covered the rnn cell). Parameters at scale 1 so
  the pre-activations leave tanh's linear range."""
  cfg = _cfg(num_layers=1, width=4, input_dim=3, output_dim=2, cell="rnn")
  model = LSTM(cfg)
  x = np.asarray(jax.random.normal(jax.random.key(3), (1, 3, 3)), np.float64)
  p = _unit_scale_params(model, x, seed=5)
  l = p["layer_0"]
  h, outs = np.zeros(4), []
  for t in range(3):
    u = x[0, t] @ p["read_in"]["kernel"] + p["read_in"]["bias"]
    z = u @ l["input_kernel"] + h @ l["recurrent_kernel"] + l["bias"]
    h = np.tanh(z)
    outs.append(h @ p["read_out"]["kernel"] + p["read_out"]["bias"])
  assert np.abs(z).max() > 1.0
  got = model.apply({"params": jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), p)},
                    jnp.asarray(x, jnp.float32))
  np.testing.assert_allclose(np.asarray(got[0]), np.stack(outs), rtol=1e-4, atol=1e-5)
