"""Microbatches give the same step on any data axis, for every model family.

On a data-parallel mesh Experiment sums each data shard's microbatch gradients apart and
reduces them once a step (Experiment._per_data_shard); on data=1 the compiler places the
reduction. The step must not depend on which: the same microbatches, the same loss and
gradients up to float rounding. A model whose forward pass mixes a batch's examples (ResNet
with batch-statistics norms) keeps each microbatch whole, since a shard alone would normalise
its rows with its own statistics (the negative control below measures that difference). So
does dropout: a shard would draw masks for its own rows' shape, which change with `mesh.data`.
"""
import jax
import jax.numpy as jnp
import pytest

from research import experiment
from transformer_fixtures import FP32_TOL, rel_err

MESHES = {"data": dict(data=2, fsdp=4, tensor=1), "fsdp": dict(data=1, fsdp=8, tensor=1)}
LSTM = dict(name="lstm", lstm_layers=1, lstm_width=16, cell="lstm")


def _experiment(preset_module, preset, mesh, batch, **model):
  c = preset_module.get_config(preset)
  c.train.compile_cache_dir = ""
  c.train.batch_size, c.train.grad_accum_steps = batch, 2
  c.mesh.update(MESHES[mesh])
  resnet = model.pop("resnet", {})
  c.model.update(model)
  c.model.resnet.update(resnet) if resnet else None
  return experiment.Experiment(c)


def _step(exp, params, batch):
  fn = jax.jit(lambda p, b: exp._loss_and_grads(p, b, jnp.int32(0), exp.root_key))
  return fn(params, batch)


def _compare(make):
  """(relative gradient difference, loss difference, whether the data mesh summed per shard)."""
  on_data, on_fsdp = make("data"), make("fsdp")
  params = on_fsdp.init_state().params
  batch = on_fsdp.task.sample(jax.random.key(3), jnp.int32(0), on_fsdp.config.train.batch_size)
  (loss, _), g = _step(on_data, params, batch)
  (loss_ref, _), g_ref = _step(on_fsdp, params, batch)
  return rel_err(g, g_ref), abs(float(loss) - float(loss_ref)), on_data._accumulates_per_data_shard()


@pytest.mark.parametrize("model", [{}, LSTM], ids=["transformer", "lstm"])
def test_sequence_models_sum_per_data_shard_and_match_the_fsdp_mesh(model):
  from configs import icl_regression
  err, dloss, per_shard = _compare(
      lambda mesh: _experiment(icl_regression, "tiny", mesh, 32, **dict(model)))
  assert per_shard and err < FP32_TOL and dloss < 1e-4


@pytest.mark.parametrize("norm", ["group", "batch"])
def test_resnet_matches_the_fsdp_mesh_and_batch_norm_keeps_microbatches_whole(norm, monkeypatch):
  import tensorflow_datasets as tfds
  from configs import resnet_images
  make = lambda mesh: _experiment(resnet_images, "tiny", mesh, 32, resnet=dict(norm=norm))
  with tfds.testing.mock_data(num_examples=64):
    err, dloss, per_shard = _compare(make)
    assert per_shard == (norm == "group") and err < FP32_TOL and dloss < 1e-4
    if norm == "batch":  # Negative control: summed per shard, each shard's statistics differ.
      monkeypatch.setattr(experiment.Experiment, "_accumulates_per_data_shard", lambda self: True)
      forced_err, _, _ = _compare(make)
      assert forced_err > 100 * FP32_TOL, forced_err


def test_dropout_keeps_microbatches_whole_and_draws_the_same_masks_on_any_mesh(monkeypatch):
  """The compiler splits the whole microbatch's mask draw (threefry is partitionable), so a
  run with dropout takes the same step on data=2 x fsdp=4 as on data=1 x fsdp=8, and resumes
  on another data axis unchanged. Negative control: summed per shard (forced where data > 1),
  each shard draws masks for its own 8 rows' shape, not its rows of the microbatch's draw."""
  from configs import icl_regression
  make = lambda mesh: _experiment(icl_regression, "tiny", mesh, 32, dropout=0.2)
  err, dloss, per_shard = _compare(make)
  assert not per_shard and err < FP32_TOL and dloss < 1e-4
  monkeypatch.setattr(experiment.Experiment, "_accumulates_per_data_shard",
                      lambda self: self.mesh.shape["data"] > 1)
  forced_err, forced_dloss, _ = _compare(make)
  assert forced_err > 100 * FP32_TOL and forced_dloss > 1e-4, (forced_err, forced_dloss)


def test_each_microbatch_draws_its_own_dropout_masks():
  """Gradient accumulation folds the microbatch index into the step's dropout key: the same
  rows in microbatch 0 and 1 get other masks (with one key for all, every microbatch of a
  step would drop the same units). Control: without dropout the index changes nothing."""
  from configs import icl_regression
  for dropout, differ in ((0.2, True), (0.0, False)):
    exp = _experiment(icl_regression, "tiny", "fsdp", 32, dropout=dropout)
    params = exp.init_state().params
    batch = exp.task.sample(jax.random.key(3), jnp.int32(0), 16)
    loss = jax.jit(lambda p, b, j: exp.loss_fn(p, b, jnp.int32(5), exp.root_key, microbatch=j)[0])
    losses = [float(loss(params, batch, jnp.int32(j))) for j in (0, 1)]
    assert (losses[0] != losses[1]) == differ, losses
