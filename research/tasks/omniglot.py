"""Omniglot exemplars for the few-shot classification task (Chan et al. 2022).

Loads TFDS `omniglot` (train + test splits: 1623 characters x 20 drawings,
105x105) once into host memory as grayscale uint8, optionally downsampled to
28x28, and serves exemplars by index from inside jitted code (see
`tfds_arrays.HostArray`): the sampler picks (class, drawing) indices on device
from the step key, so data is a pure function of (seed, step) and resume is
exact with no iterator state.

Class split as in Chan's `SeqGenerator`: the characters are put in a fixed
random order (numpy seed `split_seed`); with `augment` every character becomes
8 classes (left-right flip x 4 rotations by 90 degrees), kept adjacent in that
order so variants of one character never straddle the split. The first
`n_rare` classes are rare, the next `n_common` common, the last `n_holdout`
are held out (never trained on; the ICL probe uses them).

Class ids used by the task: [0, n_rare) rare, [n_rare, n_rare + n_common)
common, then the holdout classes.

Shape legend: R image rows in memory, H = W image side, S items per sequence, B batch.
"""
from __future__ import annotations

import numpy as np

import jax
import jax.numpy as jnp

from research.data import tfds_arrays

IMAGE_SIZES = (28, 105)
NUM_AUG = 8  # flip in {no, yes} x rot90 in {0, 1, 2, 3}
_CACHE: dict = {}


def _downsample(images_RxHxW: np.ndarray, size: int) -> np.ndarray:
  """Area-style (antialiased) resize to size x size, in chunks; uint8 in and out."""
  if images_RxHxW.shape[1] == size:
    return images_RxHxW
  out = []
  for s in range(0, len(images_RxHxW), 4096):
    x = jnp.asarray(images_RxHxW[s:s + 4096], jnp.float32)
    y = jax.image.resize(x, (x.shape[0], size, size), method="linear", antialias=True)
    out.append(np.asarray(jnp.clip(jnp.round(y), 0, 255), np.uint8))
  return np.concatenate(out) if out else np.zeros((0, size, size), np.uint8)


def load(data_dir: str, image_size: int) -> tuple[np.ndarray, np.ndarray]:
  """All Omniglot drawings (R, size, size) uint8 and their character labels (R,)."""
  sources = [tfds_arrays.open_source("omniglot", split, data_dir) for split in ("train", "test")]
  key = (data_dir, image_size, tuple(len(s) for s in sources))
  if key not in _CACHE:  # experiments train many models in one process
    parts = [tfds_arrays.read_all(s, ("image", "label")) for s in sources]
    images = np.concatenate([p["image"] for p in parts])
    labels = np.concatenate([p["label"] for p in parts]).astype(np.int64)
    if images.ndim == 4:  # (R, H, W, 3): the channels are equal; keep one
      images = images[..., 0]
    _CACHE.clear()
    _CACHE[key] = (_downsample(images.astype(np.uint8), image_size), labels)
  return _CACHE[key]


class OmniglotSource:
  """Class split, per-class drawing tables and on-device exemplar fetching."""

  def __init__(self, cfg, *, num_train_classes: int):
    images, labels = load(cfg.data_dir, int(cfg.image_size))
    order = np.argsort(labels, kind="stable")
    self.images = tfds_arrays.HostArray(images[order])
    chars, start, count = np.unique(labels[order], return_index=True, return_counts=True)
    if cfg.exemplars == "single":  # Chan's 'single': the first drawing only
      count = np.minimum(count, 1)
    perm = np.random.default_rng(int(cfg.split_seed)).permutation(len(chars))
    augs = range(NUM_AUG) if cfg.augment else range(1)
    classes = [(c, a) for c in perm for a in augs]  # variants of one character stay adjacent
    n_train, n_holdout = num_train_classes, int(cfg.n_holdout)
    if n_train + n_holdout > len(classes):
      raise ValueError(
          f"config.task: n_rare + n_common + n_holdout = {n_train + n_holdout} classes, but the "
          f"loaded Omniglot has {len(classes)} ({len(chars)} characters"
          f"{' x 8 augmentations' if cfg.augment else ''}); lower them")
    chosen = classes[:n_train] + classes[len(classes) - n_holdout:]
    char_C = np.array([c for c, _ in chosen], np.int32)
    self.start_C = jnp.asarray(start[char_C], jnp.int32)   # first row of the class's drawings
    self.count_C = jnp.asarray(count[char_C], jnp.int32)   # drawings of the class
    self.aug_C = jnp.asarray([a for _, a in chosen], jnp.int32)
    self.char_C = char_C                                   # dataset label per class (host)
    self.image_shape = (images.shape[1], images.shape[2], 1)
    self.pixel_noise = float(cfg.pixel_noise)

  def exemplars(self, key, cls_BxS, ident_BxS):
    """Images (B, S, H, W, 1) float32 in [0, 1] (+ noise) of classes `cls`.

    Copies of a class within a sequence get distinct drawings while the class
    has enough of them (Chan samples drawings without replacement).
    """
    b, s = cls_BxS.shape
    k_off, k_noise = jax.random.split(key)
    offset_BxS = jax.random.randint(k_off, (b, s), 0, 1 << 20)
    same_BxSxS = ident_BxS[:, :, None] == ident_BxS[:, None, :]
    earlier_SxS = jnp.tril(jnp.ones((s, s), bool), -1)
    occurrence_BxS = jnp.sum(same_BxSxS & earlier_SxS, axis=-1)
    first_BxS = jnp.argmax(same_BxSxS, axis=-1)  # first item of the same class
    first_off_BxS = jnp.take_along_axis(offset_BxS, first_BxS, axis=1)
    count_BxS = self.count_C[cls_BxS]
    rows_BxS = self.start_C[cls_BxS] + (first_off_BxS + occurrence_BxS) % count_BxS
    x = self.images.gather(rows_BxS).astype(jnp.float32) / 255.0  # (B, S, H, W)
    aug_BxS = self.aug_C[cls_BxS][..., None, None]
    x = jnp.where(aug_BxS >= 4, x[..., ::-1], x)
    rot = aug_BxS % 4
    for k in (1, 2, 3):  # square images: rot90 keeps the shape
      x = jnp.where(rot == k, jnp.rot90(x, k, axes=(-2, -1)), x)
    if self.pixel_noise:
      x = x + self.pixel_noise * jax.random.normal(k_noise, x.shape)
    return x[..., None]
