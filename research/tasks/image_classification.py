"""Supervised image classification on a TFDS dataset (mnist, cifar10, ...).

The train split is held in host memory and rows are fetched by index from
inside the jitted step (`tfds_arrays.HostArray`): each step draws its batch
indices uniformly with replacement from `fold_in(seed, step)`, so a resumed run
sees the same batches with no iterator state. Accuracy and loss on the eval
split are logged every `train.eval_every` steps (`eval_test_accuracy`) and
written at the end to probes/image_classification.json.

Shape legend: B batch, H, W, C image, O classes, R rows of a split.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from research.analysis import classification_baselines
from research.data import tfds_arrays
from research.models import IOSpec
from research.tasks.fields import ConfigError, choice, positive

AUGMENTS = ("none", "flip", "flip_crop")


class ImageClassificationTask:
  name = "image_classification"
  probe_name = "image_classification"

  @staticmethod
  def build_uses_seed(cfg) -> bool:
    return False

  @staticmethod
  def check_config(cfg) -> None:
    """Raises ConfigError (one line) on the first invalid config.task field."""
    choice(cfg, "task", "augment", AUGMENTS)
    positive(cfg, "task", "num_classes", "eval_examples", allow_zero=True)
    if cfg.model.name != "resnet":
      raise ConfigError(f"config.model.name={cfg.model.name!r} is not valid for "
                        "task.name='image_classification'; choose one of: resnet")

  def __init__(self, cfg, seed: int):
    del seed
    self.cfg = cfg
    train = tfds_arrays.read_all(tfds_arrays.open_source(cfg.dataset, cfg.train_split, cfg.data_dir),
                                 ("image", "label"))
    test = tfds_arrays.read_all(tfds_arrays.open_source(cfg.dataset, cfg.eval_split, cfg.data_dir),
                                ("image", "label"))
    if cfg.eval_examples:
      test = {k: v[:cfg.eval_examples] for k, v in test.items()}
    self.num_train = len(train["label"])
    # Rows are (image bytes, label) pairs gathered together by one callback.
    self.train_images = tfds_arrays.HostArray(train["image"].astype(np.uint8))
    self.train_labels = tfds_arrays.HostArray(train["label"].astype(np.int32))
    self.test_images, self.test_labels = test["image"].astype(np.uint8), test["label"].astype(np.int32)
    pixels = train["image"][:10_000].astype(np.float32) / 255.0  # normalisation statistics
    self.mean, self.std = float(pixels.mean()), float(pixels.std() + 1e-6)
    self.num_classes = int(cfg.num_classes) or int(max(train["label"].max(), test["label"].max()) + 1)
    # The null baseline's label: what a model that ignores its image learns (the probe's).
    self.train_label_counts = np.bincount(train["label"].astype(np.int64),
                                          minlength=self.num_classes)
    self.image_shape = tuple(int(d) for d in train["image"].shape[1:])
    self.io = IOSpec(output_dim=self.num_classes, seq_len=1, image_shape=self.image_shape,
                     images_per_sequence=1)

  tokens_per_example = 1

  def sample(self, key, step, batch_size: int):
    del step
    ki, ka = jax.random.split(key)
    rows_B = jax.random.randint(ki, (batch_size,), 0, self.num_train)
    images = self.train_images.gather(rows_B)
    return {"images": self._augment(ka, images), "labels": self.train_labels.gather(rows_B)}

  def _augment(self, key, images_BxHxWxC):
    kind = self.cfg.augment
    if kind == "none":
      return images_BxHxWxC
    b, h, w, _ = images_BxHxWxC.shape
    kf, kc = jax.random.split(key)
    flip_B = jax.random.bernoulli(kf, 0.5, (b,))
    x = jnp.where(flip_B[:, None, None, None], images_BxHxWxC[:, :, ::-1], images_BxHxWxC)
    if kind == "flip_crop":  # pad 4 and crop back at a random offset (CIFAR standard)
      pad = jnp.pad(x, ((0, 0), (4, 4), (4, 4), (0, 0)), mode="edge")
      off_Bx2 = jax.random.randint(kc, (b, 2), 0, 9)
      x = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, im.shape[-1])))(
          pad, off_Bx2)
    return x

  def model_inputs(self, batch):
    return (batch["images"].astype(jnp.float32) / 255.0 - self.mean) / self.std

  def loss(self, outputs, batch):
    logits_BxO = outputs[:, 0]
    labels_B = batch["labels"]
    ce = -jnp.take_along_axis(jax.nn.log_softmax(logits_BxO), labels_B[:, None], -1)[:, 0]
    return jnp.mean(ce), {"accuracy": jnp.mean(jnp.argmax(logits_BxO, -1) == labels_B)}

  def _test_metrics(self, apply_fn, batch_size: int) -> dict:
    preds, losses = [], []
    n = len(self.test_labels)
    for s in range(0, n, batch_size):
      batch = {"images": self.test_images[s:s + batch_size],
               "labels": self.test_labels[s:s + batch_size]}
      logits_BxO = np.asarray(apply_fn(self.model_inputs(batch)))[:, 0]
      labels = batch["labels"]
      logp = logits_BxO - np.logaddexp.reduce(logits_BxO, axis=-1, keepdims=True)
      losses.append(-logp[np.arange(len(labels)), labels])
      preds.append(np.argmax(logits_BxO, -1))
    pred, losses = np.concatenate(preds), np.concatenate(losses)
    correct = pred == self.test_labels
    return {"test_accuracy": float(correct.mean()), "test_loss": float(losses.mean()),
            "correct": correct, "pred": pred}

  def evaluate(self, exp, params, key) -> dict:
    del key
    m = self._test_metrics(exp.predict_fn(params), int(exp.config.probe.batch_size))
    return {k: v for k, v in m.items() if k not in ("correct", "pred")}

  def probe(self, predict_fn, key, probe_cfg, *, step: int) -> dict[str, dict]:
    del key
    m = self._test_metrics(predict_fn, int(probe_cfg.batch_size))
    per_class = [float(m["correct"][self.test_labels == c].mean()) if np.any(self.test_labels == c)
                 else None for c in range(self.num_classes)]
    res = {"kind": "image_classification", "step": int(step), "dataset": self.cfg.dataset,
           "split": self.cfg.eval_split, "num_examples": int(len(self.test_labels)),
           "accuracy": m["test_accuracy"], "loss": m["test_loss"], "per_class_accuracy": per_class}
    # The accuracy beside what ignoring the image scores (a mock or skewed split can make a
    # constant answer look like learning), with its interval; the summary is research.results'
    # probes.image_classification.* columns and the probe's console line.
    res |= classification_baselines.probe_fields(self.test_labels, m["pred"],
                                                 self.train_label_counts, "images")
    res["summary"] = classification_baselines.summary(res)
    return {self.probe_name: res}

  @staticmethod
  def render(json_path, png_path):
    import json
    from pathlib import Path

    from research.analysis import classification_plots  # sets the Agg backend
    from research.analysis.plots import save_figure
    plt = classification_plots.plt
    res = json.loads(Path(json_path).read_text())
    acc = [a if a is not None else 0.0 for a in res["per_class_accuracy"]]
    fig, ax = plt.subplots(figsize=(5.5, 3.2), dpi=110)
    ax.bar(range(len(acc)), acc, color="#1f77b4")
    ax.axhline(res["accuracy"], color="k", lw=0.8, ls="--", label=f"overall {res['accuracy']:.3f}")
    if "majority_accuracy" in res:  # probe files from before it have no baseline
      ax.axhline(res["majority_accuracy"], color="0.6", lw=0.8, ls=":",
                 label=f"majority label {res['majority_accuracy']:.3f}")
    ax.set_xlabel("class")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{res['dataset']} ({res['split']}, {res['num_examples']} images), "
                 f"step {res['step']}", fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    return save_figure(fig, png_path)
