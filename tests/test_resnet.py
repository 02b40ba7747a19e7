"""ResNet features / classifier / exemplar embedder; the TFDS image classifier on mock data."""
import json
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from research import models
from research.models import resnet
from research.models.resnet import ResNet, ResNetConfig

SMALL = dict(blocks=(1, 1), channels=(8, 16), strides=(1, 2), stem_channels=8, stem_kernel=3,
             stem_stride=1, stem_pool=False)


def _specs_complete(boxed):
  specs = jax.tree.leaves(nn.get_partition_spec(boxed),
                          is_leaf=lambda s: isinstance(s, jax.sharding.PartitionSpec))
  leaves = jax.tree.leaves(nn.unbox(boxed))
  assert len(specs) == len(leaves)
  for spec, p in zip(specs, leaves):
    assert len(spec) == p.ndim and all(a is not None for a in spec), spec


@pytest.mark.parametrize("kw", [{}, {"norm": "batch"}, {"norm": "none"}, {"bottleneck": True},
                                {"stem_pool": True, "stem_stride": 2, "stem_kernel": 7}])
def test_features_shape_and_axes(kw):
  model = ResNet(ResNetConfig(**(SMALL | kw)))
  x = jax.random.uniform(jax.random.key(0), (3, 12, 12, 1))
  # Abstract evaluation: shapes and axis names without compiling (the image-sequence
  # and classifier tests below run the convolutions for real).
  boxed = jax.eval_shape(lambda: model.init(jax.random.key(1), x))["params"]
  out = jax.eval_shape(lambda p: model.apply({"params": p}, x), nn.unbox(boxed))
  _specs_complete(boxed)
  assert out.shape == (3, 16) and out.dtype == jnp.float32


def test_chan_embedder_default_shapes():
  """Chan's embedder: stages (2,2,2,2), channels (16,32,32,D); 105x105 and 28x28 images."""
  model = ResNet(ResNetConfig(channels=(16, 32, 32, 24), bottleneck=True))
  for side in (28, 105):
    x = jnp.zeros((2, side, side, 1))
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x))
    out = jax.eval_shape(lambda v: model.apply(v, x), shapes)
    assert out.shape == (2, 24)


def test_batch_stat_norm_normalises_per_channel():
  norm = resnet.BatchStatNorm()
  x = 3.0 + 2.0 * jax.random.normal(jax.random.key(0), (4, 5, 5, 6))
  y = jax.jit(norm.apply)(nn.unbox(jax.jit(norm.init)(jax.random.key(1), x)), x)
  np.testing.assert_allclose(np.asarray(y).mean((0, 1, 2)), 0, atol=1e-5)
  np.testing.assert_allclose(np.asarray(y).std((0, 1, 2)), 1, atol=1e-3)


def test_forward_flops_of_a_stem_only_net():
  cfg = ResNetConfig(blocks=(1,), channels=(4,), strides=(1,), stem_channels=4, stem_kernel=3,
                     stem_stride=1, stem_pool=False)
  # stem 3x3 1->4 on 8x8, then a basic block of two 3x3 4->4 convs (no projection).
  expected = 2 * 64 * 9 * 1 * 4 + 2 * (2 * 64 * 9 * 4 * 4)
  assert resnet.forward_flops(cfg, (8, 8, 1)) == expected


def _resnet_cfg(name="transformer"):
  c = ml_collections.ConfigDict(dict(
      name=name, num_layers=2, width=16, num_heads=2, mlp_ratio=2.0, positions="learned",
      max_len=0, dropout=0.0, attention_only=False, use_layernorm=True, dtype="float32",
      cell="lstm", lstm_width=12, lstm_layers=0))
  c.resnet = ml_collections.ConfigDict(dict(SMALL, bottleneck=False, norm="group", groups=4))
  return c


@pytest.mark.parametrize("name", ["transformer", "lstm"])
def test_image_sequence_model_places_features_causally(name):
  """Each image feeds exactly the positions whose image_index points at it."""
  io = models.IOSpec(output_dim=5, seq_len=5, input_dim=3, image_shape=(10, 10, 1),
                     images_per_sequence=3)
  built = models.build(_resnet_cfg(name), io)
  assert isinstance(built.module, resnet.ImageSequenceModel)
  inputs = {"images": jax.random.uniform(jax.random.key(0), (2, 3, 10, 10, 1)),
            "image_index": jnp.array([[0, -1, 1, -1, 2]] * 2, jnp.int32),
            "vectors": jax.random.normal(jax.random.key(1), (2, 5, 3))}
  _specs_complete(jax.eval_shape(lambda: built.module.init(jax.random.key(2), inputs))["params"])
  changed = dict(inputs, images=inputs["images"].at[:, 1].set(0.0))  # image 1 sits at position 2

  @jax.jit  # one compiled program for init and both applications
  def outputs(inputs, changed):
    params = nn.unbox(built.module.init(jax.random.key(2), inputs)["params"])
    return (built.module.apply({"params": params}, inputs),
            built.module.apply({"params": params}, changed))
  out, out_changed = outputs(inputs, changed)
  assert out.shape == (2, 5, 5)
  diff = np.abs(np.asarray(out_changed - out)).max(axis=(0, 2))
  assert np.all(diff[:2] == 0) and np.all(diff[2:] > 0)
  assert built.train_flops_per_token > 0


def test_classifier_registry_and_output_layout():
  io = models.IOSpec(output_dim=10, seq_len=1, image_shape=(12, 12, 1), images_per_sequence=1)
  built = models.build(_resnet_cfg("resnet"), io)
  x = jnp.zeros((4, 12, 12, 1))
  params = nn.unbox(jax.eval_shape(lambda: built.module.init(jax.random.key(0), x))["params"])
  assert jax.eval_shape(lambda p: built.module.apply({"params": p}, x), params).shape == (4, 1, 10)
  with pytest.raises(ValueError, match="needs a task with images"):
    models.build(_resnet_cfg("resnet"), models.IOSpec(output_dim=2, seq_len=3, input_dim=2))


def test_image_classifier_trains_on_mock_mnist_and_logs_accuracy(tmp_path):
  import tensorflow_datasets as tfds
  from configs import resnet_images
  from research import config_check, train
  c = resnet_images.get_config("tiny")
  c.train.compile_cache_dir = ""
  config_check.validate(c, num_devices=1)
  with tfds.testing.mock_data(num_examples=64):
    summary = train.train_and_evaluate(c, str(tmp_path), devices=jax.devices()[:1])
  rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  evals = [r for r in rows if "eval_test_accuracy" in r]
  assert [r["step"] for r in evals] == [10, 20]
  assert all(0 <= r["eval_test_accuracy"] <= 1 and math.isfinite(r["eval_test_loss"]) for r in evals)
  res = json.loads((tmp_path / "probes" / "image_classification.json").read_text())
  assert res["num_examples"] == 64 and res["accuracy"] == pytest.approx(evals[-1]["eval_test_accuracy"])
  assert (tmp_path / "figures" / "image_classification.png").exists()
  assert math.isfinite(summary["final_loss"])
  # The accuracy beside its null baseline (the training split's most frequent label), with
  # its interval, as research.results' columns (the probe had no summary).
  counts = np.asarray(res["train_label_counts"])
  assert counts.sum() == 64 and res["majority_label_id"] == int(np.argmax(counts))
  assert 0 <= res["majority_accuracy"] <= 1
  assert res["accuracy_lo"] <= res["accuracy"] <= res["accuracy_hi"]
  assert res["above_majority"] == (res["accuracy_lo"] > res["majority_accuracy"])
  assert res["summary"]["majority_accuracy"] == res["majority_accuracy"]
  from research import results_records
  row, = results_records.records([tmp_path])
  assert row["probes.image_classification.majority_accuracy"] == res["majority_accuracy"]


def test_missing_dataset_says_how_to_prepare_it(tmp_path):
  from research.data import tfds_arrays
  with pytest.raises(tfds_arrays.DatasetUnavailableError, match="tfds build mnist") as e:
    tfds_arrays.open_source("mnist", "train", str(tmp_path))
  assert f"(no mnist/ in {tmp_path})" in str(e.value)  # not TFDS's cause about file formats


def test_init_from_an_image_run_of_another_dataset_starts_the_head_fresh(tmp_path, monkeypatch):
  """mnist and fashion_mnist hold 10 classes each: init_from copied the head, which fits by
  shape, its row 0 (the digit 0) then scoring a T-shirt. Through the trainer now: another
  dataset's head starts fresh, said in the log's list of fresh parameters, and the body is
  copied; a run of the same dataset (the control) copies the head as before."""
  import tensorflow_datasets as tfds
  from configs import resnet_images
  from research import checkpoint, config_check, init_from, train

  def run(dataset, workdir, **fields):
    c = resnet_images.get_config("tiny")
    c.train.compile_cache_dir, c.task.dataset, c.task.num_classes = "", dataset, 10
    c.train.num_steps, c.train.log_every, c.train.eval_every, c.optim.warmup_steps = 5, 5, 0, 0
    c.update(fields)
    config_check.validate(c, num_devices=1)
    train.train_and_evaluate(c, str(tmp_path / workdir), devices=jax.devices()[:1])

  copy, seen, warned = init_from.init_params_from, [], []

  def spy(workdir, params, *rest):  # the fresh init and what init_from made of it, before
    out = copy(workdir, params, *rest)  # training donates their buffers
    seen.append(jax.tree.map(np.array, (params, out)))
    return out

  monkeypatch.setattr(init_from, "init_params_from", spy)
  monkeypatch.setattr(init_from.logging, "warning", lambda msg, *a: warned.append(msg % a))
  with tfds.testing.mock_data(num_examples=32):
    run("mnist", "a")
    source, _ = init_from._raw_params(tmp_path / "a")
    for dataset, same in (("fashion_mnist", False), ("mnist", True)):
      run(dataset, dataset, init_from=str(tmp_path / "a"))
      fresh, params = seen.pop()
      for path, x in jax.tree_util.tree_leaves_with_path(params):
        key = checkpoint.tree_path(path)
        head = key.split("/")[0] == "head"
        want = checkpoint_leaf(fresh, path) if head and not same else source[key]
        assert not np.array_equal(source[key], checkpoint_leaf(fresh, path)), key
        np.testing.assert_array_equal(x, want, err_msg=f"{dataset} {key}")
  warned = [w for w in warned if w.startswith("init_from")]  # TFDS's own left out
  assert len(warned) == 1 and "fresh ['head/bias', 'head/kernel'] (the head: its classes are " \
      f"TFDS dataset 'mnist''s labels ({tmp_path / 'a' / 'config.json'}), not this run's " \
      "'fashion_mnist''s)" in warned[0]


def checkpoint_leaf(tree, path):
  for part in path:
    tree = tree[part.key]
  return tree


def test_an_image_sources_dataset_is_read_from_its_config(tmp_path):
  """The dataset's version renumbers no class (the head is copied); a source without config.json
  is matched by shape as before; a damaged one is refused naming it (exit 2), as a damaged
  vocabulary.json is, not read as another dataset."""
  from types import SimpleNamespace

  from research import errors, init_from
  task = SimpleNamespace(cfg={"name": "image_classification", "dataset": "mnist:3.0.1"})
  assert init_from.check_vocabulary(tmp_path, task, tmp_path / "b") == ""
  (tmp_path / "config.json").write_text(json.dumps({"task": {
      "name": "image_classification", "dataset": "mnist"}}))
  assert init_from.check_vocabulary(tmp_path, task, tmp_path / "b") == ""
  (tmp_path / "config.json").write_text("{\"task\": ")
  with pytest.raises(errors.InputError, match=(
      rf"^{tmp_path / 'config.json'} does not hold a config \(not a JSON object\), broken JSON "
      r"at line 1 column 10; restore it from a backup of that run, or start without "
      r"config.init_from$")) as e:
    init_from.check_vocabulary(tmp_path, task, tmp_path / "b")
  assert e.value.exit_code == 2


def test_forward_flops_count_a_stride_one_projection_by_hand():
  """A stage that widens channels at stride 1 has a 1x1 projection shortcut: counted (a
  mutation audit dropped it unseen: MFU and the compute axis undercounted)."""
  cfg = resnet.ResNetConfig(blocks=(1,), channels=(8,), strides=(1,), stem_channels=4,
                            stem_kernel=3, stem_stride=1, stem_pool=False)
  stem, proj = 2 * 64 * 9 * 3 * 4, 2 * 64 * 4 * 8
  block = 2 * 64 * 9 * 4 * 8 + 2 * 64 * 9 * 8 * 8
  assert resnet.forward_flops(cfg, (8, 8, 3)) == stem + proj + block == 128_512


def _module_outputs(cfg, x):
  """{module path: output} of every submodule of ResNet(cfg) on x."""
  model = ResNet(cfg)
  params = nn.unbox(model.init(jax.random.key(0), x)["params"])
  _, state = model.apply({"params": params}, x, capture_intermediates=True,
                         mutable=["intermediates"])
  flat = jax.tree_util.tree_flatten_with_path(state["intermediates"])[0]
  return {"/".join(str(p.key) for p in path[:-2]): v for path, v in flat}, params


def test_only_a_stages_first_block_strides_and_a_bottleneck_strides_in_its_3x3():
  """The pooled features (N, F) hide the spatial sizes, so a stride on
  every block of a stage, or a bottleneck striding in its first 1x1 instead of its 3x3
  (where forward_flops and its by-hand test put the stride), passed. 8x8 input, stride-1 stem without pool:
  stage 0 (stride 1) keeps 8x8; stage 1 (stride 2) halves to 4x4 in its first block only."""
  cfg = ResNetConfig(**(SMALL | dict(blocks=(1, 2), bottleneck=True)))
  out = jax.eval_shape(lambda: _module_outputs(cfg, jnp.ones((2, 8, 8, 1)))[0])  # no compile
  side = lambda name: out[name].shape[1:3]
  assert side("stage_0_block_0") == (8, 8)
  assert side("stage_1_block_0/conv_0") == (8, 8)   # 1x1 reduce at full resolution
  assert side("stage_1_block_0/conv_1") == (4, 4)   # the 3x3 strides
  assert side("stage_1_block_0") == side("stage_1_block_1") == (4, 4)


def test_basic_block_is_relu_of_two_convs_plus_the_identity():
  """V1 basic block y = relu(conv_1(relu(conv_0(x))) + x): no relu
  between conv_1 and the sum (a relu there passed every test). Checked against lax
  convolutions on the block's own kernels, no normalisation, identity shortcut."""
  cfg = ResNetConfig(norm="none")
  block = resnet.Block(cfg, channels=4, stride=1)
  x = jax.random.normal(jax.random.key(0), (2, 5, 5, 4))
  params = nn.unbox(block.init(jax.random.key(1), x)["params"])
  conv = lambda y, k: jax.lax.conv_general_dilated(
      y, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
      precision=jax.lax.Precision.HIGHEST)
  inner = conv(jax.nn.relu(conv(x, params["conv_0"]["kernel"])), params["conv_1"]["kernel"])
  assert float(jnp.min(inner)) < 0  # a relu before the sum would change these
  np.testing.assert_allclose(block.apply({"params": params}, x), jax.nn.relu(inner + x),
                             rtol=1e-5, atol=1e-5)


def test_forward_flops_round_an_odd_side_up_at_a_stride_two_conv():
  """A SAME stride-2 conv on a 5x5 map gives 3x3 (ceil), as the model's
  nn.Conv does; flooring to 2x2 passed (the by-hand tests only strided even sides).
  Stem 3x3 1->4 at 5x5, then a basic block 4->4 at stride 2: 1x1 projection to 3x3,
  3x3 conv to 3x3, 3x3 conv at 3x3."""
  cfg = ResNetConfig(blocks=(1,), channels=(4,), strides=(2,), stem_channels=4, stem_kernel=3,
                     stem_stride=1, stem_pool=False)
  stem, proj, conv = 2 * 25 * 9 * 1 * 4, 2 * 9 * 1 * 4 * 4, 2 * 9 * 9 * 4 * 4
  assert resnet.forward_flops(cfg, (5, 5, 1)) == stem + proj + 2 * conv == 7272
  out = jax.eval_shape(lambda: _module_outputs(cfg, jnp.ones((1, 5, 5, 1)))[0])
  assert out["stage_0_block_0/conv_0"].shape[1:3] == (3, 3)


def _image_task(num_examples, **task):
  """The image task on mock mnist (num_examples images per split) and its raw train images."""
  import tensorflow_datasets as tfds
  from configs import resnet_images
  from research.data import tfds_arrays
  from research.tasks.image_classification import ImageClassificationTask
  c = resnet_images.get_config("tiny")
  c.task.update(task)
  with tfds.testing.mock_data(num_examples=num_examples):
    t = ImageClassificationTask(c.task, seed=0)
    train = tfds_arrays.read_all(tfds_arrays.open_source("mnist", "train"), ("image", "label"))
    test = tfds_arrays.read_all(tfds_arrays.open_source("mnist", "test"), ("image", "label"))
  return t, train, test


def test_image_task_normalises_by_the_train_pixels_mean_and_std():
  """model_inputs: (pixel / 255 - mean) / std of the train split's pixels, so the train images
  come out with mean 0 and std 1 (a mutation audit: the variance as the scale, or no scale,
  trained unseen); labels give num_classes = largest + 1; eval_examples keeps the first N."""
  t, train, test = _image_task(12, eval_examples=5)
  pixels = train["image"].astype(np.float64) / 255.0
  assert t.mean == pytest.approx(pixels.mean(), rel=1e-5)
  assert t.std == pytest.approx(pixels.std(), rel=1e-4)
  x = np.asarray(t.model_inputs({"images": jnp.asarray(train["image"])}), np.float64)
  assert x.mean() == pytest.approx(0.0, abs=1e-4) and x.std() == pytest.approx(1.0, rel=1e-4)
  assert t.num_classes == int(max(train["label"].max(), test["label"].max())) + 1
  np.testing.assert_array_equal(t.test_labels, test["label"][:5])
  assert t.test_images.shape[0] == 5


def test_image_task_samples_every_train_row():
  """Rows are drawn uniformly from all num_train rows: with 2 rows, 64 draws show both (a
  mutation audit: randint up to num_train - 1 never drew the last image)."""
  t, train, _ = _image_task(2)
  assert t.num_train == 2
  batch = jax.jit(lambda k: t.sample(k, 0, 64))(jax.random.key(0))
  images = np.asarray(batch["images"]).reshape(64, -1)
  flat = train["image"].reshape(2, -1)
  seen = {int(np.flatnonzero((flat == im).all(1))[0]) for im in images}
  assert seen == {0, 1}


def test_flip_crop_pads_with_the_edge_pixels():
  """flip_crop pads 4 pixels by repeating the edge and crops back: a constant image stays that
  constant, whatever the offset (a mutation audit: zero padding put black bars in most crops)."""
  t, _, _ = _image_task(2, augment="flip_crop")
  images = jnp.full((32, 28, 28, 1), 200, jnp.uint8)
  out = np.asarray(t._augment(jax.random.key(1), images))
  assert out.shape == (32, 28, 28, 1) and np.all(out == 200)
  ramp = jnp.broadcast_to(jnp.arange(28, dtype=jnp.uint8)[None, None, :, None], (64, 28, 28, 1))
  rows = np.asarray(t._augment(jax.random.key(2), ramp))[:, 14, :, 0]  # one row of each image
  # a crop of the edge-padded ramp at column offset o reads clip(j + o - 4, 0, 27); flipped
  # first, 27 minus that
  crops = [np.clip(np.arange(28) + o - 4, 0, 27) for o in range(9)]
  for r in rows:
    assert any(np.array_equal(r, c) or np.array_equal(r, 27 - c) for c in crops), r
  assert any(r[0] > r[-1] for r in rows) and any(r[0] < r[-1] for r in rows)


def test_image_probe_gives_every_class_its_accuracy():
  """per_class_accuracy has one entry per class, each the accuracy on that class's test images
  (a constant predictor of class 0: 1 on class 0, 0 on the others present, None on absent)."""
  t, _, test = _image_task(16)
  k = t.num_classes
  predict = lambda x: jnp.zeros((x.shape[0], 1, k)).at[..., 0].set(1.0)
  res = t.probe(predict, jax.random.key(0), ml_collections.ConfigDict({"batch_size": 5}),
                step=3)["image_classification"]
  labels = test["label"]
  assert len(res["per_class_accuracy"]) == k
  want = [None if not np.any(labels == c) else (1.0 if c == 0 else 0.0) for c in range(k)]
  assert res["per_class_accuracy"] == want
  assert res["accuracy"] == pytest.approx(np.mean(labels == 0))
  # loss: -log softmax([1, 0, ..., 0])[label]
  logz = np.log(np.e + k - 1)
  assert res["loss"] == pytest.approx(np.mean(np.where(labels == 0, logz - 1, logz)))


def test_a_datasets_full_name_carries_its_config_and_version():
  """full_name: NAME/CONFIG/VERSION from the dataset info (a run records it: another version
  of the dataset is other data); the name alone without info."""
  from types import SimpleNamespace

  from research.data import tfds_arrays
  info = SimpleNamespace(full_name="imdb_reviews/plain_text/1.0.0")
  assert tfds_arrays.full_name(info, "imdb_reviews") == "imdb_reviews/plain_text/1.0.0"
  assert tfds_arrays.full_name(None, "imdb_reviews") == "imdb_reviews"
