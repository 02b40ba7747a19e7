"""TFDS splits as in-memory arrays, gathered inside jitted code by index.

A task samples *indices* on device from `fold_in(seed, step)` and fetches the
rows with `HostArray.gather`. Data is then a pure function of (seed, step): a
resumed run sees the same batches and no iterator state needs checkpointing.
Arrays up to `EMBED_LIMIT_BYTES` are closed over as device constants (no host
round trip, and the programs stay in the persistent compile cache); larger
ones (real datasets) are fetched with a `jax.pure_callback` into host memory
rather than being copied into every compiled program. JAX does not cache
programs with host callbacks persistently, so those compile once per process.

Datasets are read with `tfds.data_source` (random access, no TensorFlow); they
must be prepared beforehand in the `array_record` format.
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from research.errors import InputError


EMBED_LIMIT_BYTES = 8 << 20


class DatasetUnavailableError(InputError):
  """The TFDS dataset is not prepared where we looked; the message says how to fix it."""


def _how_to_prepare(name: str, data_dir: str) -> str:
  where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
  return (f"prepare it once on a machine with internet access: `pip install tensorflow "
          f"tensorflow-datasets && tfds build {name} --file_format=array_record "
          f"--data_dir=DIR`, copy DIR here, and point config.task.data_dir (or the "
          f"TFDS_DATA_DIR environment variable) at it; looked in {where}")


def open_source(name: str, split: str, data_dir: str = ""):
  """A random-access TFDS data source, or DatasetUnavailableError with instructions."""
  import tensorflow_datasets as tfds  # heavy import: only when a dataset is used
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir or None, download=False)
  except Exception as e:  # noqa: BLE001 -- TFDS raises several types for "not there"
    root = os.path.expanduser(data_dir or os.environ.get("TFDS_DATA_DIR")
                              or "~/tensorflow_datasets")
    base = name.split(":")[0].split("/")[0]
    if "://" not in root and not os.path.isdir(os.path.join(root, base)):  # TFDS's cause
      # would name a file format; on gs:// and the like TFDS's own cause (credentials...) stays
      first = f"no {base}/ in {root}"
    else:
      first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
    raise DatasetUnavailableError(
        f"TFDS dataset {name!r} (split {split!r}) is not available ({first}); "
        + _how_to_prepare(name, data_dir)) from None


def full_name(info, name: str) -> str:
  """NAME/CONFIG/VERSION of the dataset a source read (its dataset_info; NAME without one):
  a run records it, as a data_dir holding another version of the dataset is other data."""
  return str(getattr(info, "full_name", "") or name)


def read_all(source, keys: tuple[str, ...], chunk: int = 2048) -> dict[str, np.ndarray]:
  """Every record of a data source as stacked numpy arrays, one per feature key."""
  out: dict[str, list] = {k: [] for k in keys}
  n = len(source)
  for start in range(0, n, chunk):
    idx = list(range(start, min(n, start + chunk)))
    try:
      records = source.__getitems__(idx)  # one batched read (array_record)
    except Exception:  # noqa: BLE001 -- e.g. mock data sources only index one by one
      records = [source[i] for i in idx]
    for k in keys:
      out[k].extend(np.asarray(r[k]) for r in records)
  return {k: np.stack(v) if v else np.zeros((0,)) for k, v in out.items()}


class HostArray:
  """A host numpy array whose rows jitted code fetches by index."""

  def __init__(self, array: np.ndarray, embed_limit_bytes: int | None = None):
    self.array = np.ascontiguousarray(array)
    limit = EMBED_LIMIT_BYTES if embed_limit_bytes is None else embed_limit_bytes
    self.device = jnp.asarray(self.array) if self.array.nbytes <= limit else None

  def _take(self, rows):
    return self.array[np.asarray(rows)]

  def gather(self, rows):
    """rows: int array of any shape -> rows.shape + array.shape[1:] (jittable, vmappable)."""
    if self.device is not None:
      return self.device[rows]
    shape = jax.ShapeDtypeStruct(tuple(rows.shape) + self.array.shape[1:], self.array.dtype)
    return jax.pure_callback(self._take, shape, rows.astype(jnp.int32),
                             vmap_method="broadcast_all")
