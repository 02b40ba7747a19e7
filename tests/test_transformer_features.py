"""Pod-scale Transformer features compute what the plain model computes.

Each feature (remat, scanned layers, fused attention, fused QKV, bf16 compute,
gradient accumulation) is checked against the plain path with the same
parameters (moved between layouts by `convert_params`): outputs and gradients
within a stated tolerance, with negative controls showing the tolerance can fail.
Equal results would also come from a feature that silently did nothing, so each is
also checked to have run (remat policies, the dot_product_attention call, the
microbatch scan, the config reaching the model, float32 where bf16 must not be),
and dropout masks to differ per scanned layer, microbatch and step. Layouts:
tests/test_transformer_layouts.py.
"""
import dataclasses
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import experiment
from research.models import transformer as T
from transformer_fixtures import (BASE, BF16_TOL, FP32_TOL, induction_cfg as _induction_cfg,
                                  out_and_grads as _out_and_grads, plain_params as _plain_params,
                                  rel_err as _rel_err, tokens as _tokens)

FEATURES = [dict(scan_layers=True), dict(fused_qkv=True), dict(attention="fused"),
            dict(remat="full"), dict(remat="dots"), dict(remat="dots", scan_layers=True),
            dict(scan_layers=True, fused_qkv=True, attention="fused", remat="full")]


@pytest.mark.parametrize("features", FEATURES, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()))
def test_feature_matches_plain_outputs_and_grads(features):
  params = _plain_params()
  out_ref, g_ref = _out_and_grads(BASE, params)
  out, g = _out_and_grads(dataclasses.replace(BASE, **features), params)
  assert jax.tree.structure(g) == jax.tree.structure(g_ref)
  assert _rel_err(out, out_ref) < FP32_TOL
  assert _rel_err(g, g_ref) < FP32_TOL


@pytest.mark.parametrize("remat,scan,policy", [
    ("none", False, None), ("full", False, "None"),
    ("dots", False, "DotsSaveable(only_if_no_batch_dims=True)"),
    ("dots", True, "DotsSaveable(only_if_no_batch_dims=True)")])
def test_remat_wraps_each_block_with_its_policy(remat, scan, policy):
  """The equal gradients above come from rematerialised blocks: one remat per block
  (one around the scanned body), with the policy asked for; none without remat."""
  cfg = dataclasses.replace(BASE, remat=remat, scan_layers=scan)
  params = T.convert_params(_plain_params(), scan_layers=scan, fused_qkv=False)
  jaxpr = str(jax.make_jaxpr(
      lambda p: T.Transformer(cfg).apply({"params": p}, _tokens(), train=True).sum())(params))
  policies = re.findall(r"policy=(\S+)", jaxpr)
  assert policies == ([] if policy is None else [policy] * (1 if scan else BASE.num_layers))


def test_tolerance_rejects_a_perturbed_parameter():
  """Negative control: one block's output projection 1% larger fails the fp32 and bf16 tolerances."""
  params = _plain_params()
  out_ref, g_ref = _out_and_grads(BASE, params)
  bumped = jax.tree.map(lambda x: x, params)
  bumped["block_1"]["attn"]["out"]["kernel"] = params["block_1"]["attn"]["out"]["kernel"] * 1.01
  out, g = _out_and_grads(BASE, bumped)
  assert _rel_err(out, out_ref) > FP32_TOL
  bumped["block_1"]["attn"]["out"]["kernel"] = params["block_1"]["attn"]["out"]["kernel"] * 1.5
  out, g = _out_and_grads(BASE, bumped)
  assert _rel_err(out, out_ref) > BF16_TOL and _rel_err(g, g_ref) > BF16_TOL


@pytest.mark.parametrize("features", [(4, 8), (3, 4, 8)], ids=["heads", "fused_qkv"])
def test_heads_dense_is_dense_general(features):
  """The q/k/v projection (bias added flat, for XLA:CPU's speed) draws the same parameters
  as nn.DenseGeneral with the same names and logical axes, and computes the same outputs
  and gradients; a 1% larger bias fails the same check (negative control)."""
  names = ("embed",) + ("qkv", "heads", "kv")[-len(features):]
  kw = dict(kernel_init=T.P(T._dense_init, names),
            bias_init=T.P(nn.initializers.normal(0.5), names[1:]))
  x = jax.random.normal(jax.random.key(2), (3, 5, 32))
  ours, ref = T.HeadsDense(features, dtype=None, **kw), nn.DenseGeneral(features, **kw)
  boxed, boxed_ref = ours.init(jax.random.key(0), x), ref.init(jax.random.key(0), x)
  assert jax.tree.map(lambda b: b.names, boxed, is_leaf=lambda b: isinstance(b, nn.Partitioned)) \
      == jax.tree.map(lambda b: b.names, boxed_ref, is_leaf=lambda b: isinstance(b, nn.Partitioned))
  params = nn.unbox(boxed)
  assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), params, nn.unbox(boxed_ref)))

  def out_and_grads(module, p):
    loss = lambda p: jnp.sum(jnp.sin(module.apply(p, x)))
    return module.apply(p, x), jax.grad(loss)(p)

  out, g = out_and_grads(ours, params)
  out_ref, g_ref = out_and_grads(ref, params)
  assert out.shape == (3, 5) + features
  assert _rel_err(out, out_ref) < FP32_TOL and _rel_err(g, g_ref) < FP32_TOL
  bumped = jax.tree.map(lambda a: a, params)
  bumped["params"]["bias"] = params["params"]["bias"] * 1.01
  out, g = out_and_grads(ours, bumped)
  assert _rel_err(out, out_ref) > FP32_TOL and _rel_err(g, g_ref) > FP32_TOL


def test_bf16_compute_matches_fp32_within_bf16_tolerance():
  params = _plain_params()
  out_ref, g_ref = _out_and_grads(BASE, params)
  cfg = dataclasses.replace(BASE, dtype=jnp.bfloat16, attention="fused", fused_qkv=True)
  out, g = _out_and_grads(cfg, params)
  assert out.dtype == jnp.float32  # the loss reads fp32 logits
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(g))  # fp32 params and grads
  err_out, err_g = _rel_err(out, out_ref), _rel_err(g, g_ref)
  assert err_out < BF16_TOL and err_g < BF16_TOL
  assert err_out > FP32_TOL  # bf16 really ran: it is not the fp32 result


@pytest.mark.parametrize("features", [{}, dict(attention="fused"), dict(scan_layers=True, remat="full")],
                         ids=["explicit", "fused", "scan,remat"])
def test_bf16_softmax_runs_in_float32(features):
  """The attention softmax's exp is float32 in a bf16 model, forward and backward (the only
  exp: GELU is tanh's); a bf16 softmax errs about as much as the bf16 matmuls around it,
  so the tolerance above cannot see it."""
  cfg = dataclasses.replace(BASE, dtype=jnp.bfloat16, **features)
  params = T.convert_params(_plain_params(), scan_layers=cfg.scan_layers, fused_qkv=False)
  loss = lambda p: T.Transformer(cfg).apply({"params": p}, _tokens(), train=True).sum()
  exps = re.findall(r":(\w+)\[[^\]]*\] = exp ", str(jax.make_jaxpr(jax.grad(loss))(params)))
  assert exps and set(exps) == {"f32"}, exps
  assert "bf16" in re.findall(r":(\w+)\[[^\]]*\] = tanh ", str(jax.make_jaxpr(loss)(params)))


@pytest.mark.parametrize("scan", [False, True], ids=["unrolled", "scan"])
def test_fused_attention_runs_dot_product_attention(monkeypatch, scan):
  """attention='fused' calls jax.nn.dot_product_attention in every block (in the scanned
  body), causal, and collecting intermediates does not: the equality tests above also
  pass for a model that silently keeps the explicit path."""
  calls = []
  real = jax.nn.dot_product_attention
  monkeypatch.setattr(jax.nn, "dot_product_attention",
                      lambda *a, **kw: calls.append(kw) or real(*a, **kw))
  cfg = dataclasses.replace(BASE, attention="fused", scan_layers=scan)
  params = T.convert_params(_plain_params(), scan_layers=scan, fused_qkv=False)
  T.Transformer(cfg).apply({"params": params}, _tokens())
  assert calls and (scan or len(calls) == BASE.num_layers)  # nn.scan traces its body twice
  assert all(kw == dict(is_causal=True) for kw in calls)
  calls.clear()
  T.Transformer(cfg).apply({"params": params}, _tokens(), mutable=["intermediates"])
  assert calls == []


def test_fused_attention_still_gives_maps_to_probes():
  """Collecting intermediates takes the explicit path, whatever the config says."""
  params = _plain_params()
  maps = {}
  for cfg in (BASE, dataclasses.replace(BASE, attention="fused", scan_layers=True)):
    p = T.convert_params(params, scan_layers=cfg.scan_layers, fused_qkv=cfg.fused_qkv)
    _, state = T.Transformer(cfg).apply({"params": p}, _tokens(), mutable=["intermediates"])
    maps[cfg.scan_layers] = T.attention_maps(state["intermediates"])
  assert sorted(maps[True]) == [0, 1, 2]
  for layer in range(3):
    np.testing.assert_allclose(maps[True][layer], maps[False][layer], atol=1e-6)


def test_bf16_run_keeps_float32_state_and_loss():
  """A bf16 run (induction with MLPs, scanned, fused QKV) keeps its parameters and optimiser
  state in float32 and takes its loss in float32: every exp and log of the step's loss and
  gradient (the attention softmax, the cross-entropy's log-softmax) is f32."""
  c = _induction_cfg(dtype="bfloat16", scan_layers=True, fused_qkv=True, attention_only=False)
  exp = experiment.Experiment(c, jax.devices()[:1])
  state = exp.init_state()
  floats = [x for x in jax.tree.leaves((state.params, state.opt_state))
            if jnp.issubdtype(x.dtype, jnp.floating)]
  assert floats and all(x.dtype == jnp.float32 for x in floats)
  batch = exp.task.sample(jax.random.key(0), jnp.int32(0), 2)
  grad = jax.grad(lambda p: exp.loss_fn(p, batch, jnp.int32(0), exp.root_key)[0])
  ops = re.findall(r":(\w+)\[[^\]]*\] = (exp|log) ", str(jax.make_jaxpr(grad)(state.params)))
  assert {op for _, op in ops} == {"exp", "log"} and {dtype for dtype, _ in ops} == {"f32"}, ops


@pytest.mark.parametrize("features", [{}, dict(scan_layers=True), dict(scan_layers=True, remat="full")],
                         ids=["unrolled", "scan", "scan,remat"])
def test_each_layer_draws_its_own_dropout_mask(features):
  """Under nn.scan each layer gets its own dropout rng (split_rngs), as unrolled blocks do:
  the MLP dropout's zeros differ between every two layers (one shared key would give every
  layer the same mask)."""
  cfg = dataclasses.replace(BASE, dropout=0.5, **features)
  params = T.convert_params(_plain_params(), scan_layers=cfg.scan_layers, fused_qkv=False)
  _, state = T.Transformer(cfg).apply({"params": params}, _tokens(), train=True,
                                      rngs={"dropout": jax.random.key(5)},
                                      capture_intermediates=True, mutable=["intermediates"])
  inter = state["intermediates"]
  if cfg.scan_layers:
    dropped = inter["layers"]["mlp"]["Dropout_0"]["__call__"][0] == 0
  else:
    dropped = jnp.stack([inter[f"block_{i}"]["mlp"]["Dropout_0"]["__call__"][0] == 0
                         for i in range(BASE.num_layers)])
  assert dropped.shape[0] == BASE.num_layers and 0.4 < float(dropped.mean()) < 0.6
  for i, j in ((0, 1), (1, 2), (0, 2)):
    assert not np.array_equal(dropped[i], dropped[j]), (i, j)


def test_probes_work_with_scanned_layers():
  """Induction probes (attention scores, head ablation, OV circuits) read a scanned model
  as they read the plain one with the same parameters."""
  from research.tasks import induction
  plain = experiment.Experiment(_induction_cfg(), jax.devices()[:1])
  scanned = experiment.Experiment(_induction_cfg(scan_layers=True, fused_qkv=True, attention="fused"),
                             jax.devices()[:1])
  params = plain.init_state().params
  params_s = T.convert_params(params, scan_layers=True, fused_qkv=True)
  mc = plain.config.model
  ablate = np.ones((mc.num_layers, mc.num_heads), np.float32)
  ablate[0, 1] = 0.0
  for mask in (None, ablate):
    ref, got = (jax.device_get(e.task.eval_raw(e, p, mask))
                for e, p in ((plain, params), (scanned, params_s)))
    for k in ref:
      np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-6, err_msg=k)
  assert abs(float(ref["loss"]) - float(jax.device_get(plain.task.eval_raw(plain, params))["loss"])) > 0
  ov_ref, ov = induction.ov_circuits(params), induction.ov_circuits(params_s)
  assert sorted(ov) == sorted(ov_ref) and len(ov) == mc.num_layers * mc.num_heads
  for k in ov_ref:
    np.testing.assert_allclose(ov[k], ov_ref[k], rtol=1e-5, atol=1e-6)


def test_config_fields_reach_the_model():
  """Each feature field of config.model reaches the model an Experiment trains (the tests
  above build TransformerConfig themselves: a field dropped by models.build would run the
  plain path, silently, with all of them passing)."""
  fields = lambda c: {k: getattr(experiment.Experiment(c, jax.devices()[:1]).model.cfg, k)
                      for k in ("remat", "scan_layers", "attention", "fused_qkv", "dtype")}
  assert fields(_induction_cfg()) == dict(remat="none", scan_layers=False, attention="explicit",
                                          fused_qkv=False, dtype=jnp.float32)
  for remat in ("full", "dots"):
    on = dict(remat=remat, scan_layers=True, attention="fused", fused_qkv=True)
    assert fields(_induction_cfg(**on, dtype="bfloat16")) == on | dict(dtype=jnp.bfloat16)


def _accum_experiment(accum, mesh=dict(data=2, fsdp=4, tensor=1), **model):
  from configs import icl_regression
  c = icl_regression.get_config("tiny")
  c.train.compile_cache_dir = ""
  c.train.batch_size, c.train.grad_accum_steps = 32, accum
  c.mesh.update(mesh)
  c.model.update(model)
  return experiment.Experiment(c)


def test_grad_accumulation_equals_one_big_batch_on_a_data_fsdp_mesh():
  """4 microbatches of 8 on a data=2 x fsdp=4 mesh: the step of one batch of 32."""
  big, accum = _accum_experiment(1), _accum_experiment(4)
  state = big.init_state()
  key = big.root_key
  batch = big.task.sample(jax.random.key(3), jnp.int32(0), 32)

  def loss_and_grads(exp):
    fn = jax.jit(lambda p, b: exp._loss_and_grads(p, b, jnp.int32(0), key))
    return fn(state.params, batch)

  (loss_ref, aux_ref), g_ref = loss_and_grads(big)
  (loss, aux), g = loss_and_grads(accum)
  np.testing.assert_allclose(loss, loss_ref, rtol=1e-5)
  assert _rel_err(g, g_ref) < FP32_TOL and _rel_err(aux, aux_ref) < FP32_TOL
  # ... by accumulating: one scan over the 4 microbatches (a step that ignored
  # grad_accum_steps would be equal too, and hold the whole batch's activations).
  trace = lambda exp: str(jax.make_jaxpr(
      lambda p, b: exp._loss_and_grads(p, b, jnp.int32(0), key))(state.params, batch))
  assert re.findall(r"length=(\d+)", trace(accum)) == ["4"] and "length=" not in trace(big)
  # ... each data shard's microbatches summed apart, reduced once (Experiment._per_data_shard).
  assert "shard_map" in trace(accum) and "shard_map" not in trace(big)
  # Negative control: a quarter of the batch (one microbatch alone) is not the same step.
  quarter = jax.tree.map(lambda x: x[::4] if jnp.ndim(x) else x, batch)
  (_, _), g_quarter = jax.jit(lambda p, b: big._loss_and_grads(p, b, jnp.int32(0), key))(
      state.params, quarter)
  assert _rel_err(g_quarter, g_ref) > 100 * FP32_TOL
  # The full train step (data sampled inside, optimiser update) agrees as well.
  step_ref = jax.jit(lambda s: big.train_step(s, key))(state)
  step = jax.jit(lambda s: accum.train_step(s, key))(accum.init_state())
  assert _rel_err(step[0].params, step_ref[0].params) < FP32_TOL
  np.testing.assert_allclose(step[1]["loss"], step_ref[1]["loss"], rtol=1e-5)


def test_grad_accumulation_equals_one_big_batch_where_the_compiler_reduces():
  """The same on data=1 (fsdp=8), where the microbatches' gradients are summed in one scan
  and divided by their count (Experiment._accumulate): a mutation audit left them summed (4x
  the gradient) and only the data-parallel test above ran, through another path."""
  mesh = dict(data=1, fsdp=8, tensor=1)
  big, accum = _accum_experiment(1, mesh), _accum_experiment(4, mesh)
  assert not accum._accumulates_per_data_shard()
  state = big.init_state()
  batch = big.task.sample(jax.random.key(3), jnp.int32(0), 32)
  step = lambda exp: jax.jit(lambda p, b: exp._loss_and_grads(p, b, jnp.int32(0), big.root_key))(
      state.params, batch)
  (loss_ref, _), g_ref = step(big)
  (loss, _), g = step(accum)
  np.testing.assert_allclose(loss, loss_ref, rtol=1e-5)
  assert _rel_err(g, g_ref) < FP32_TOL


def test_parameters_split_over_data_accumulate_as_the_compiler_places_them():
  """A rule that splits parameters over `data` (which a shard_map over `data` cannot hold
  whole) keeps the plain accumulation, and the step is still the big batch's."""
  rules = lambda exp: [[k, "data" if k == "mlp" else v] for k, v in exp.config.sharding.rules]
  big, accum = _accum_experiment(1), _accum_experiment(4)
  big.config.sharding.rules = accum.config.sharding.rules = rules(big)
  big, accum = experiment.Experiment(big.config), experiment.Experiment(accum.config)
  assert not accum._accumulates_per_data_shard()
  assert "data" in accum.param_sharding["block_0"]["mlp"]["fc_in"]["kernel"].spec
  state, key = big.init_state(), big.root_key
  batch = big.task.sample(jax.random.key(3), jnp.int32(0), 32)
  fn = lambda exp: jax.jit(lambda p, b: exp._loss_and_grads(p, b, jnp.int32(0), key))
  (_, _), g_ref = fn(big)(state.params, batch)
  (_, _), g = fn(accum)(state.params, batch)
  assert _rel_err(g, g_ref) < FP32_TOL


def test_microbatches_draw_their_own_dropout_masks():
  """With dropout, microbatch j of step t folds t and j into the dropout key: two microbatches
  of the same examples (one example, repeated) give two losses, and the step's loss is their
  mean, not one mask's repeated (one key for all microbatches would repeat it); the next
  step's first microbatch gives another. On this data-parallel mesh dropout keeps the
  compiler's placement (tests/test_grad_accumulation_meshes.py: the same masks on any mesh)."""
  exp = _accum_experiment(2, dropout=0.2)  # data=2 x fsdp=4, 2 microbatches of 16 rows
  assert not exp._accumulates_per_data_shard()
  params, key = exp.init_state().params, exp.root_key
  one = exp.task.sample(jax.random.key(3), jnp.int32(0), 1)
  copies = lambda n: jax.tree.map(lambda x: jnp.repeat(x[:1], n, 0) if jnp.ndim(x) else x, one)
  (loss, _), _ = jax.jit(lambda p, b: exp._loss_and_grads(p, b, jnp.int32(0), key))(params, copies(32))
  micro_loss = jax.jit(lambda p, b, t, j: exp.loss_fn(p, b, t, key, microbatch=j)[0])
  l0, l1, next0 = (float(micro_loss(params, copies(16), jnp.int32(t), j))
                   for t, j in ((0, 0), (0, 1), (1, 0)))
  np.testing.assert_allclose(loss, (l0 + l1) / 2, rtol=1e-5)
  for other in (l1, next0):
    assert abs(l0 - other) > 1e-4 * abs(l0)  # fp32 noise is ~1e-7


def test_config_check_refuses_bad_feature_values():
  from research import config_check
  cases = [({"model.remat": "some"}, "config.model.remat='some' is not valid"),
           ({"model.attention": "flash"}, "config.model.attention='flash' is not valid"),
           ({"model.attention": "fused", "model.dropout": 0.1}, "config.model.attention='fused'"),
           ({"train.grad_accum_steps": 0}, "config.train.grad_accum_steps=0 must be positive"),
           ({"train.grad_accum_steps": 3}, "grad_accum_steps x mesh data x fsdp = 3 x 8"),
           # Divisible by the steps alone, but then a microbatch of 4 rows over 8 shards.
           ({"train.grad_accum_steps": 4}, "grad_accum_steps x mesh data x fsdp = 4 x 8"),
           ({"train.batch_size": 80, "train.grad_accum_steps": 9}, "= 9 x 8")]
  for overrides, message in cases:
    c = _induction_cfg()
    c.train.batch_size = 16
    for k, v in overrides.items():
      section, field = k.split(".")
      c[section][field] = v
    with pytest.raises(config_check.ConfigError, match=None) as e:
      config_check.validate(c, num_devices=8)
    assert message in str(e.value) and "\n" not in str(e.value)
  ok = _induction_cfg(remat="dots", scan_layers=True, attention="fused", fused_qkv=True)
  ok.train.batch_size, ok.train.grad_accum_steps = 16, 2
  config_check.validate(ok, num_devices=8)


def test_attention_dropout_drops_attention_weights_in_training_only():
  """Attention dropout acts on the softmax weights at train time (the
  MLP test above left it unchecked; `deterministic=True` there passed). Of the causal
  weights (upper triangle is exactly 0 after the mask) about half are zeroed at rate 0.5
  and the rest scaled by 1 / (1 - 0.5) = 2; at eval none is dropped."""
  cfg = dataclasses.replace(BASE, dropout=0.5)
  params = _plain_params()
  model = T.Transformer(cfg)

  def dropped_and_sown(train):
    _, state = model.apply({"params": params}, _tokens(), train=train,
                           rngs={"dropout": jax.random.key(5)},
                           capture_intermediates=True, mutable=["intermediates"])
    blk = state["intermediates"]["block_0"]["attn"]
    return np.asarray(blk["Dropout_0"]["__call__"][0]), np.asarray(blk["attention"][0])

  out, attn = dropped_and_sown(train=True)
  causal = np.broadcast_to(np.tril(np.ones(attn.shape[-2:], bool)), attn.shape)
  zeros = out[causal] == 0
  assert 0.4 < zeros.mean() < 0.6, zeros.mean()
  np.testing.assert_allclose(out[causal][~zeros], 2.0 * attn[causal][~zeros], rtol=1e-6)
  out, attn = dropped_and_sown(train=False)
  np.testing.assert_array_equal(out, attn)
