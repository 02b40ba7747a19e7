"""Omniglot for bursty classification (research/tasks/omniglot.py) on generated images: the
class split and augmentation, the 'single' exemplar being each character's first drawing,
and the load cache keyed by image size."""
import jax
import jax.numpy as jnp
import numpy as np

from test_classification import N_SEQ, _batch, _task


def test_omniglot_class_split_and_augmentation(monkeypatch):
  import tensorflow_datasets as tfds
  from research.data import tfds_arrays
  monkeypatch.setattr(tfds_arrays, "EMBED_LIMIT_BYTES", 0)  # the host-callback path of real data
  with tfds.testing.mock_data(num_examples=40):
    task, _ = _task("omniglot_tiny", augment=True, n_rare=40, n_common=8, n_holdout=16)
    b = _batch(task)
  omni = task.omni
  # augmented variants of one character stay on one side of the split
  chars_train, chars_hold = set(omni.char_C[:48]), set(omni.char_C[48:])
  assert chars_train.isdisjoint(chars_hold) or len(chars_train & chars_hold) <= 1
  assert np.all(b["cls"] < 48)  # training never shows holdout classes; the ICL probe only them
  holdout_pool = np.asarray(task.pool_holdout) > -1e29  # the ICL probe's classes
  assert np.array_equal(holdout_pool, np.arange(64) >= 48)
  assert b["images"].shape == (N_SEQ, task.n + 1, 28, 28, 1)
  assert np.all((b["images"] >= 0) & (b["images"] <= 1))
  # an augmented class shows its character's drawing flipped / rotated
  aug = np.asarray(omni.aug_C)
  assert set(aug.tolist()) <= set(range(8)) and len(set(aug.tolist())) > 1


def _omniglot_source(monkeypatch, labels, exemplars="all", n_train=4, n_holdout=2):
  """OmniglotSource over synthetic drawings: drawing r is a 28x28 image of value r % 251."""
  from types import SimpleNamespace

  from research.tasks import omniglot
  images = (np.arange(len(labels)) % 251).astype(np.uint8)[:, None, None] * np.ones(
      (1, 28, 28), np.uint8)
  monkeypatch.setattr(omniglot, "load", lambda data_dir, size: (images, np.asarray(labels)))
  cfg = SimpleNamespace(data_dir="", image_size=28, exemplars=exemplars, split_seed=0,
                        augment=False, n_holdout=n_holdout, pixel_noise=0.0)
  return omniglot.OmniglotSource(cfg, num_train_classes=n_train)


def test_omniglot_single_exemplar_is_each_characters_first_drawing(monkeypatch):
  """exemplars='single' (Chan): every class shows one drawing, its character's first in the
  dataset's order, whatever copies a sequence holds (a mutation audit: an unstable sort of the
  labels picked another drawing; a count of 2 showed two)."""
  rng = np.random.default_rng(0)
  labels = rng.permutation(np.repeat(np.arange(40), 20))  # 800 drawings, characters interleaved
  src = _omniglot_source(monkeypatch, labels, exemplars="single")
  assert np.asarray(src.count_C).tolist() == [1] * 6
  first = {c: int(np.flatnonzero(labels == c)[0]) for c in range(40)}
  cls = jnp.asarray(np.tile(np.arange(6), (3, 2)))  # (3, 12): each class twice per sequence
  x = np.asarray(jax.jit(src.exemplars)(jax.random.key(0), cls, cls))[..., 0]
  want = np.array([first[int(src.char_C[c])] % 251 for c in range(6)]) / 255.0
  np.testing.assert_allclose(x, np.broadcast_to(want[np.asarray(cls)][..., None, None], x.shape),
                             rtol=1e-6)


def test_omniglot_load_caches_per_image_size(monkeypatch):
  """load(size 105) then load(size 28) in one process: the second is 28x28 (a mutation audit:
  a cache key without the size returned the 105x105 drawings)."""
  import tensorflow_datasets as tfds
  from research.tasks import omniglot
  monkeypatch.setattr(omniglot, "_CACHE", {})
  with tfds.testing.mock_data(num_examples=3):
    big, _ = omniglot.load("", 105)
    small, labels = omniglot.load("", 28)
  assert big.shape == (6, 105, 105) and small.shape == (6, 28, 28) and labels.shape == (6,)
  assert big.dtype == small.dtype == np.uint8
