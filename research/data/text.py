"""Text data: tokenisers, corpus sources, packing, and rows fetched inside jit.

Tokenisers (ids 0 = PAD, 1 = EOS, 2 = UNK are shared by all):
  byte  UTF-8 bytes, id = byte + 3; vocabulary 259, nothing to build or store.
  char  characters of the training split, sorted; unseen characters -> UNK.
  word  lower-cased words / punctuation, the `vocab_size` most frequent in the
        training split (ties broken alphabetically); others -> UNK.
Every tokeniser is a deterministic function of the training text, so a resumed run
rebuilds the same ids; the run also saves it (`tokenizer_state`, in the workdir's
vocabulary.json), so `research.predict` needs no training data and a resume on edited
data is refused.

Sources (no TensorFlow at run time):
  file  a local plain-text file (any corpus; text_files.read_file); `split_text` cuts a
        validation tail.
  tfds  `tfds.data_source(name, split)`, random access over an array_record
        dataset prepared beforehand (e.g. lm1b, tiny_shakespeare, imdb_reviews,
        ag_news_subset). A missing dataset raises DatasetUnavailableError naming
        the dataset and the command that prepares it.
  csv   a local CSV file with a text and a label column (text_files.read_csv).
  stdlib  the running interpreter's standard library (`stdlib_texts`): every .py file
        outside test suites and site-packages, one document per file in sorted path
        order, held out by a hash of its path. A real corpus on every machine.

Rows: `Rows` holds a 2-D int array and returns rows by index from inside jitted
code. Small arrays live on device (jnp.take); large ones stay in host memory and
are fetched through `tfds_arrays.HostArray` (a pure_callback), because a device
array closed over by jit is embedded in every compiled program. Either way a
batch is a pure function of (seed, step): the "checkpointable iterator" is the
step counter already in the checkpoint, so resume is exact with no iterator state.

Tests: `tfds.testing.mock_data(num_examples=N)` (tensorflow-datasets 4.9.10)
also patches `tfds.data_source`, generating random records from the dataset's
feature spec with no prepared files and no TensorFlow; tests/test_text_data.py,
test_lm.py and test_text_classification.py train on lm1b, tiny_shakespeare and
imdb_reviews that way.
"""
from __future__ import annotations

import collections
import hashlib
import re
import sys
import sysconfig
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from research.errors import InputError
from research.data import tfds_arrays
from research.data.tfds_arrays import DatasetUnavailableError  # noqa: F401 (re-export)

PAD, EOS, UNK = 0, 1, 2
NUM_SPECIAL = 3
TOKENIZERS = ("byte", "char", "word")
PLACEMENTS = ("auto", "device", "host")
DEVICE_BYTES_LIMIT = 16 * 2 ** 20  # "auto": arrays up to 16 MiB go on device
_WORD_RE = re.compile(r"\w+|[^\w\s]", re.UNICODE)


# --- tokenisers ----------------------------------------------------------------
class ByteTokenizer:
  kind = "byte"
  vocab_size = 256 + NUM_SPECIAL

  def encode(self, text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32) + NUM_SPECIAL

  def decode(self, ids) -> str:
    b = bytes(int(i) - NUM_SPECIAL for i in ids if int(i) >= NUM_SPECIAL)
    return b.decode("utf-8", errors="replace")


class CharTokenizer:
  kind = "char"

  def __init__(self, texts):
    chars = sorted(set().union(*(set(t) for t in texts)) if texts else set())
    self.chars = chars
    self._ids = {c: i + NUM_SPECIAL for i, c in enumerate(chars)}
    self.vocab_size = len(chars) + NUM_SPECIAL

  def encode(self, text: str) -> np.ndarray:
    return np.fromiter((self._ids.get(c, UNK) for c in text), np.int32, len(text))

  def decode(self, ids) -> str:
    return "".join(self.chars[int(i) - NUM_SPECIAL] for i in ids if int(i) >= NUM_SPECIAL)


class WordTokenizer:
  kind = "word"

  def __init__(self, texts, vocab_size: int):
    counts = collections.Counter(w for t in texts for w in _WORD_RE.findall(t.lower()))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    self.words = [w for w, _ in ranked[:max(0, vocab_size - NUM_SPECIAL)]]
    self._ids = {w: i + NUM_SPECIAL for i, w in enumerate(self.words)}
    self.vocab_size = len(self.words) + NUM_SPECIAL

  def encode(self, text: str) -> np.ndarray:
    return np.asarray([self._ids.get(w, UNK) for w in _WORD_RE.findall(text.lower())], np.int32)

  def decode(self, ids) -> str:
    # An unknown word is shown (a word was there); padding and end-of-text are dropped, as the
    # byte and char tokenisers drop them.
    return " ".join(self.words[int(i) - NUM_SPECIAL] if int(i) >= NUM_SPECIAL else "<unk>"
                    for i in ids if int(i) not in (PAD, EOS))


def make_tokenizer(kind: str, train_texts, vocab_size: int = 0):
  """A tokeniser built (when it needs building) from the training texts only."""
  if kind == "byte":
    return ByteTokenizer()
  if kind == "char":
    return CharTokenizer(train_texts)
  if kind == "word":
    return WordTokenizer(train_texts, vocab_size)
  raise ValueError(f"tokenizer {kind!r} is not valid; choose one of: {', '.join(TOKENIZERS)}")


def tokenizer_state(tokenizer) -> dict:
  """Everything that defines a tokeniser's ids, JSON-able (saved in the workdir's
  vocabulary.json, so that predict and resumes need not rebuild it from the data)."""
  state = {"kind": tokenizer.kind, "vocab_size": int(tokenizer.vocab_size)}
  if tokenizer.kind == "char":
    state["chars"] = list(tokenizer.chars)
  elif tokenizer.kind == "word":
    state["words"] = list(tokenizer.words)
  return state


def tokenizer_from_state(state: dict):
  """The tokeniser `tokenizer_state` describes, with the same ids."""
  kind = state.get("kind")
  if kind == "byte":
    return ByteTokenizer()
  if kind == "char":
    tok = CharTokenizer([])
    tok.chars = list(state["chars"])
    tok._ids = {c: i + NUM_SPECIAL for i, c in enumerate(tok.chars)}
    tok.vocab_size = len(tok.chars) + NUM_SPECIAL
    return tok
  if kind == "word":
    tok = WordTokenizer([], 0)
    tok.words = list(state["words"])
    tok._ids = {w: i + NUM_SPECIAL for i, w in enumerate(tok.words)}
    tok.vocab_size = len(tok.words) + NUM_SPECIAL
    return tok
  raise ValueError(f"saved tokenizer kind {kind!r} is not one of {', '.join(TOKENIZERS)}")


# --- sources ---------------------------------------------------------------------
def _as_str(x) -> str:
  if isinstance(x, bytes):
    return x.decode("utf-8", errors="replace")
  if isinstance(x, np.ndarray) and x.dtype.kind in "SO" and x.ndim == 0:
    return _as_str(x.item())
  return str(x)


def split_text(text: str, valid_fraction: float) -> tuple[str, str]:
  """(train, valid): the last `valid_fraction` of the characters is held out."""
  cut = len(text) - int(round(len(text) * valid_fraction))
  return text[:cut], text[cut:]


# Directories of the standard library that are not its own code: test suites (mostly
# generated data, and a tenth of the bytes of everything else put together) and installed
# third-party packages.
STDLIB_SKIP = ("test", "tests", "idle_test", "site-packages", "__pycache__")


def stdlib_files(path: str = "") -> tuple[Path, list[str]]:
  """(root, sorted relative paths of its .py files outside STDLIB_SKIP directories).

  root: `path`, or this interpreter's standard library when it is "" (a venv's
  sysconfig points at the base interpreter's)."""
  root = Path(path).expanduser() if path else Path(sysconfig.get_paths()["stdlib"])
  where = (f"config.task.path={path!r}" if path else
           f"this Python's standard library ({root}, sysconfig 'stdlib')")
  fix = ("set config.task.path to a directory of .py files, or '' for this interpreter's "
         "standard library")
  if not root.is_dir():
    raise InputError(f"{where}: no such directory; {fix}")
  files = sorted(f.relative_to(root).as_posix() for f in root.rglob("*.py")
                 if f.is_file() and not set(f.relative_to(root).parts[:-1]) & set(STDLIB_SKIP))
  if not files:
    raise InputError(f"{where} holds no .py files outside {', '.join(STDLIB_SKIP)}; {fix}")
  return root, files


def held_out(relative_path: str, fraction: float) -> bool:
  """A file's split from a hash of its path: it stays on its side whatever other files a
  Python version adds or drops (a cut by position would move every file after a change)."""
  h = int.from_bytes(hashlib.sha256(relative_path.encode()).digest()[:8], "big")
  return h < fraction * 2 ** 64


def stdlib_texts(path: str, valid_fraction: float,
                 limit: int = 0) -> tuple[list[str], list[str], dict]:
  """(train documents, held-out documents, description) of `stdlib_files(path)`.

  `limit` > 0 keeps the first N files of each split. The description (logged, and in the
  lm probe) names the root, the Python version, file and byte counts per split, and a
  SHA-256 of the whole corpus: runs on two machines saw the same text only if it matches."""
  root, files = stdlib_files(path)
  splits = ([f for f in files if not held_out(f, valid_fraction)],
            [f for f in files if held_out(f, valid_fraction)])
  if not all(splits):
    raise InputError(f"{root}: {len(files)} .py files, {len(splits[1])} held out by "
                     f"config.task.valid_fraction={valid_fraction}; choose a fraction that "
                     "leaves files on both sides")
  splits = tuple(s[:limit] if limit else s for s in splits)
  digest = hashlib.sha256()
  docs = ([], [])
  for names, out in zip(splits, docs):
    for name in names:
      data = (root / name).read_bytes()
      digest.update(name.encode() + b"\0" + data)
      out.append(data.decode("utf-8", errors="replace"))
  info = {"root": str(root), "python": sys.version.split()[0],
          "files": [len(s) for s in splits],
          "bytes": [sum(len(d.encode("utf-8")) for d in ds) for ds in docs],
          "sha256": digest.hexdigest()}
  return docs[0], docs[1], info


def tfds_records(name: str, split: str, data_dir: str = "", limit: int = 0):
  """(records, dataset_info or None) of a TFDS split, read without TensorFlow."""
  source = tfds_arrays.open_source(name, split, data_dir)
  n = len(source) if not limit else min(limit, len(source))
  records = []
  for start in range(0, n, 4096):
    idx = list(range(start, min(n, start + 4096)))
    try:
      records.extend(source.__getitems__(idx))
    except Exception:  # noqa: BLE001 -- some sources only index one by one
      records.extend(source[i] for i in idx)
  return records, getattr(source, "dataset_info", None)


def tfds_texts(name: str, split: str, keys: str = "text", data_dir: str = "",
               limit: int = 0) -> tuple[list[str], object]:
  """(documents, dataset_info or None) of a TFDS split; `keys` 'title,description' joins
  features with a space."""
  records, info = tfds_records(name, split, data_dir, limit)
  return [join_fields(r, keys) for r in records], info


def join_fields(record, keys: str) -> str:
  names = [k.strip() for k in keys.split(",") if k.strip()]
  missing = [k for k in names if k not in record]
  if missing:
    raise InputError(f"feature(s) {missing} not in the dataset; it has: {sorted(record)}; "
                     "set the config's text key(s) to some of those")
  return " ".join(_as_str(record[k]) for k in names)


# --- packing and padding -----------------------------------------------------------
def pack(token_docs, eos: bool = True) -> np.ndarray:
  """One token stream: documents concatenated, each followed by EOS."""
  parts = []
  for ids in token_docs:
    parts.append(np.asarray(ids, np.int32))
    if eos:
      parts.append(np.asarray([EOS], np.int32))
  return np.concatenate(parts) if parts else np.zeros((0,), np.int32)


def chunk(stream: np.ndarray, length: int) -> np.ndarray:
  """Non-overlapping rows of `length` tokens (the ragged tail is dropped)."""
  n = len(stream) // length
  return stream[:n * length].reshape(n, length)


def pad_rows(token_docs, length: int) -> tuple[np.ndarray, np.ndarray]:
  """(tokens NxL, lengths N): each text truncated to L-1 tokens plus EOS, right-padded."""
  out = np.full((len(token_docs), length), PAD, np.int32)
  lengths = np.zeros((len(token_docs),), np.int32)
  for i, ids in enumerate(token_docs):
    ids = np.append(np.asarray(ids, np.int32)[:length - 1], EOS)
    out[i, :len(ids)] = ids
    lengths[i] = len(ids)
  return out, lengths


def smallest_int_dtype(vocab_size: int):
  return np.uint8 if vocab_size <= 256 else np.uint16 if vocab_size <= 65536 else np.int32


# --- rows inside jit -----------------------------------------------------------------
class Rows:
  """A 2-D array whose rows jitted code reads by index, on device or from host memory."""

  def __init__(self, array: np.ndarray, placement: str = "auto"):
    if placement not in PLACEMENTS:
      raise ValueError(f"placement {placement!r} is not valid; choose one of: {', '.join(PLACEMENTS)}")
    self.shape = array.shape
    self.on_device = placement == "device" or (placement == "auto"
                                               and array.nbytes <= DEVICE_BYTES_LIMIT)
    if self.on_device:
      self._device = jnp.asarray(array)
    else:
      self._host = tfds_arrays.HostArray(array)

  def __len__(self) -> int:
    return self.shape[0]

  def gather(self, rows) -> jax.Array:
    """rows: int array of any shape -> rows.shape + (row width,), as int32."""
    if self.on_device:
      return jnp.take(self._device, rows, axis=0).astype(jnp.int32)
    return self._host.gather(rows).astype(jnp.int32)
