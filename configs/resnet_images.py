r"""ResNet image classifier on a TFDS dataset (mnist, cifar10, ...).

  python -m research.main --config=configs/resnet_images.py:mnist --workdir=runs/mnist
  python -m research.main --config=configs/resnet_images.py:cifar10 --workdir=runs/cifar10 \
      --config.task.data_dir=/data/tfds

The dataset must be prepared in TFDS's array_record format (random access, no
TensorFlow at training time); a missing dataset stops with the command that
prepares it. Test accuracy is logged every train.eval_every steps
(metrics.jsonl `eval_test_accuracy`) and written to probes/image_classification.json.

Presets:
  tiny     seconds; tests (under tfds.testing.mock_data)
  mnist    small ResNet, 3000 steps: ~99% test accuracy; minutes on a few CPU cores
  cifar10  ResNet-18-like (4 stages x 2 blocks, 64..512 channels), flip+crop, SGD+momentum;
           an accelerator job (about 93-95% after 30k steps at batch 256)
"""
import ml_collections

from configs import common


def get_config(preset: str = "mnist") -> ml_collections.ConfigDict:
  c = common.base(preset)

  c.task = ml_collections.ConfigDict()
  c.task.name = "image_classification"  # task registry key
  c.task.dataset = "mnist"      # TFDS name with 'image' and 'label' features
  c.task.train_split = "train"
  c.task.eval_split = "test"
  c.task.eval_examples = 0      # evaluate on the first N eval images; 0 = all
  c.task.num_classes = 0        # 0 = largest label + 1
  c.task.augment = "none"       # none | flip | flip_crop (pad 4, random crop)
  c.task.data_dir = ""          # TFDS data dir; "" = TFDS default (or TFDS_DATA_DIR)

  c.model = ml_collections.ConfigDict()
  c.model.name = "resnet"       # the classifier (research/models/resnet.py)
  c.model.dtype = "float32"     # compute dtype: float32 | bfloat16 (params stay float32)
  c.model.resnet = ml_collections.ConfigDict()
  c.model.resnet.blocks = (1, 1, 1)            # residual blocks per stage
  c.model.resnet.channels = (16, 32, 64)       # channels per stage
  c.model.resnet.strides = (1, 2, 2)           # first-block stride per stage
  c.model.resnet.stem_channels = 16
  c.model.resnet.stem_kernel = 3
  c.model.resnet.stem_stride = 1
  c.model.resnet.stem_pool = False
  c.model.resnet.bottleneck = False
  c.model.resnet.norm = "group"                # group | batch (batch statistics) | none
  c.model.resnet.groups = 8
  # Sequence-model fields: unused by the ResNet, kept so that every model.name validates.
  c.model.num_layers = 1
  c.model.width = 8
  c.model.num_heads = 1
  c.model.mlp_ratio = 4.0
  c.model.positions = "none"
  c.model.max_len = 0
  c.model.dropout = 0.0
  c.model.attention_only = False
  c.model.use_layernorm = True

  c.optim = common.optim(name="adam", learning_rate=2e-3, end_lr_fraction=0.0, weight_decay=0.0)

  c.train = common.train(
      batch_size=128, num_steps=3000, log_every=250, eval_every=1000, checkpoint_every=1000)

  c.probe = ml_collections.ConfigDict()
  c.probe.batch_size = 1000     # evaluation batch

  c.mesh = common.mesh()

  c.sharding = ml_collections.ConfigDict()
  c.sharding.rules = (
      ("batch", ("data", "fsdp")), ("embed", "fsdp"), ("output", None), ("conv_h", None),
      ("conv_w", None), ("conv_in", None), ("conv_out", None))

  if preset == "tiny":
    c.model.resnet.blocks, c.model.resnet.channels, c.model.resnet.strides = (1, 1), (8, 16), (1, 2)
    c.model.resnet.stem_channels = 8
    c.train.batch_size, c.train.num_steps, c.train.steps_per_call = 16, 20, 5
    c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 10, 10, 10
    c.optim.warmup_steps = 5
    c.probe.batch_size = 32
  elif preset == "cifar10":
    c.task.dataset, c.task.augment = "cifar10", "flip_crop"
    c.model.resnet.blocks, c.model.resnet.channels = (2, 2, 2, 2), (64, 128, 256, 512)
    c.model.resnet.strides, c.model.resnet.stem_channels = (1, 2, 2, 2), 64
    c.model.resnet.groups = 32
    c.optim.name, c.optim.learning_rate, c.optim.momentum = "sgd", 0.1, 0.9
    c.optim.nesterov, c.optim.weight_decay, c.optim.warmup_steps = True, 5e-4, 1000
    c.train.batch_size, c.train.num_steps = 256, 30_000
    c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 500, 2000, 5000
  elif preset != "mnist":
    raise ValueError(f"unknown preset {preset!r}; choose one of: tiny, mnist, cifar10")
  return c
