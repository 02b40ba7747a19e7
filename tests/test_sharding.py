"""Sharded training equals single-device training; mesh construction errors."""
import jax
import numpy as np
import pytest

from research import sharding
from research.experiment import Experiment


def _run(config, devices, steps=2):
  exp = Experiment(config, devices)
  state = exp.init_state()
  state, metrics = exp.multi_step_fn(steps)(state)
  return exp, jax.device_get(state), jax.device_get(metrics)


@pytest.fixture(scope="module")
def reference():
  from configs import icl_regression
  c = icl_regression.get_config("tiny")
  c.mesh.data = 1
  return _run(c, jax.devices()[:1])


@pytest.mark.parametrize("mesh", [dict(data=8, fsdp=1, tensor=1), dict(data=1, fsdp=8, tensor=1),
                                  dict(data=2, fsdp=2, tensor=2)], ids=["dp8", "fsdp8", "2x2x2"])
def test_sharded_step_equals_single_device(reference, mesh):
  from configs import icl_regression
  c = icl_regression.get_config("tiny")
  c.mesh.update(mesh)
  exp, state, metrics = _run(c, jax.devices())
  assert len(jax.devices()) == 8
  _, ref_state, ref_metrics = reference
  np.testing.assert_allclose(metrics["loss"], ref_metrics["loss"], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(ref_state.params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  # The parameters really are split the way the rules say: fc_in kernel is (embed, mlp).
  kernel = exp.param_sharding["block_0"]["mlp"]["fc_in"]["kernel"]
  shard = kernel.shard_shape((32, 128))
  expected = {(8, 1, 1): (32, 128), (1, 8, 1): (4, 128), (2, 2, 2): (16, 64)}
  assert shard == expected[tuple(mesh.values())]


@pytest.mark.parametrize("after", [dict(data=1, fsdp=4, tensor=2), dict(data=4, fsdp=1, tensor=1)],
                         ids=["fsdp4xtensor2", "4devices"])
def test_checkpoint_restores_onto_another_mesh(tmp_path, after):
  import json
  from configs import icl_regression
  from research import train

  def cfg(mesh, steps):
    c = icl_regression.get_config("tiny")
    c.train.compile_cache_dir = ""
    c.mesh.update(mesh)
    c.train.num_steps = steps
    c.optim.decay_steps = 40  # the same schedule whether the run stops at 20 or 40
    return c

  def losses(d):
    return [json.loads(l)["loss"] for l in (d / "metrics.jsonl").read_text().splitlines()]

  before = dict(data=8, fsdp=1, tensor=1)
  train.train_and_evaluate(cfg(before, 40), str(tmp_path / "ref"))
  train.train_and_evaluate(cfg(before, 20), str(tmp_path / "moved"))
  devices = jax.devices()[: after["data"] * after["fsdp"] * after["tensor"]]
  train.train_and_evaluate(cfg(after, 40), str(tmp_path / "moved"), devices=devices)
  np.testing.assert_allclose(losses(tmp_path / "moved"), losses(tmp_path / "ref"), rtol=1e-5)


def test_an_optimizer_leaf_of_another_shape_than_its_parameter_is_replicated():
  """A factored optimizer statistic at a parameter's path but of another shape does not take
  the parameter's sharding (a 1-D leaf given a 2-D spec passed a mutation audit unseen).
  Control: the same-shape moment takes it."""
  from jax.sharding import NamedSharding, PartitionSpec as P
  mesh = jax.make_mesh((1, 2, 1), sharding.MESH_AXES, devices=jax.devices()[:2])
  kernel = jax.ShapeDtypeStruct((4, 8), "float32")
  params = {"dense": {"kernel": kernel}}
  shard = {"dense": {"kernel": NamedSharding(mesh, P("fsdp", None))}}
  opt = {"mu": {"dense": {"kernel": kernel}},
         "v_row": {"dense": {"kernel": jax.ShapeDtypeStruct((4,), "float32")}}}
  got = sharding.like_params(opt, params, shard, mesh)
  assert got["mu"]["dense"]["kernel"].spec == P("fsdp", None)
  assert got["v_row"]["dense"]["kernel"].spec == P()


def test_adams_moments_take_their_parameters_sharding():
  """optax's state reaches a moment through tuple and attribute keys, so its dict-key path is
  the parameter's own, whole: mu and nu take the parameter's sharding (replicated, each
  device held the whole optimizer state); the step count stays replicated."""
  import optax
  from jax.sharding import NamedSharding, PartitionSpec as P
  mesh = jax.make_mesh((1, 2, 1), sharding.MESH_AXES, devices=jax.devices()[:2])
  params = {"dense": {"kernel": jax.ShapeDtypeStruct((4, 8), "float32"),
                      "bias": jax.ShapeDtypeStruct((8,), "float32")}}
  shard = {"dense": {"kernel": NamedSharding(mesh, P("fsdp", None)),
                     "bias": NamedSharding(mesh, P())}}
  state = jax.eval_shape(optax.adam(1e-3).init, params)
  got = sharding.like_params(state, params, shard, mesh)
  adam = got[0]
  assert adam.mu["dense"]["kernel"].spec == P("fsdp", None)
  assert adam.nu["dense"]["kernel"].spec == P("fsdp", None)
  assert adam.mu["dense"]["bias"].spec == P() and adam.count.spec == P()


def test_a_dimension_the_mesh_axis_does_not_divide_stays_replicated():
  """A read-in of width 6 on a 4-way fsdp axis is replicated rather than split unevenly; 8 is
  split; 2 (smaller than the axis) is replicated too."""
  from jax.sharding import PartitionSpec as P
  mesh = jax.make_mesh((1, 4, 2), sharding.MESH_AXES, devices=jax.devices()[:8])
  rules = (("embed", "fsdp"), ("mlp", "tensor"))
  spec = lambda shape: sharding._logical_to_named(P("embed", "mlp"), shape, mesh, rules).spec
  assert spec((8, 6)) == P("fsdp", "tensor")
  assert spec((6, 6)) == P(None, "tensor")
  assert spec((2, 3)) == P(None, None)


@pytest.mark.parametrize("sizes", [dict(data=0, fsdp=-1, tensor=1), dict(data=-1, fsdp=0, tensor=8),
                                   dict(data=-2, fsdp=4, tensor=1)])
def test_a_mesh_size_of_zero_or_below_minus_one_is_refused_by_name(sizes):
  bad = next(a for a, s in sizes.items() if s == 0 or s < -1)
  with pytest.raises(sharding.MeshError, match=rf"config.mesh.{bad}={sizes[bad]} is invalid"):
    sharding.mesh_shape(sizes, 8)
  assert sharding.mesh_shape(dict(data=-1, fsdp=2, tensor=2), 8) == (2, 2, 2)  # the control


def test_fixed_sizes_that_do_not_divide_the_devices_are_not_told_to_fill():
  """data=3 on 16 devices was told "set one size to -1 to fill the rest", and following it
  gave "fixed sizes multiply to 3, which does not divide the 16": the first message says so."""
  with pytest.raises(sharding.MeshError) as e:
    sharding.mesh_shape(dict(data=3, fsdp=1, tensor=1), 16)
  assert str(e.value) == (
      "config.mesh: data x fsdp x tensor = 3x1x1 = 3 devices, and 3 does not divide the 16 "
      "available devices; choose sizes whose product divides it (1, 2, 4, 8 or 16) and set one "
      "size to -1 to fill the rest")
  with pytest.raises(sharding.MeshError, match=r"multiply to 3, .* \(1, 2, 4, 8 or 16\)$"):
    sharding.mesh_shape(dict(data=3, fsdp=-1, tensor=1), 16)
  # A product that divides the devices keeps the advice to fill the rest.
  with pytest.raises(sharding.MeshError, match=r"= 2 devices, but 16 are available; set one size"):
    sharding.mesh_shape(dict(data=2, fsdp=1, tensor=1), 16)
  with pytest.raises(sharding.MeshError, match=r"32 does not divide the 16 .*\(1, 2, 4, 8 or 16\)"):
    sharding.mesh_shape(dict(data=32, fsdp=1, tensor=1), 16)
  assert sharding._divisors_text(6144) == "1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, ... or 6144"
  assert sharding._divisors_text(1) == "1"
