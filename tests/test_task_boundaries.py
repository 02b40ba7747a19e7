"""The tasks' data and config boundaries that decide a sample, a split or a verdict, on
hand-built inputs (mutation audit 6C): crop offsets and flip direction of the image
augmentation, Omniglot's augmented variants and its class-count limit, the text tasks'
smallest allowed seq_len and vocabulary, TFDS label names."""
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.data import text as text_lib
from research.tasks import image_classification as ic
from research.tasks import omniglot
from research.tasks import text_classification as tc
from research.tasks.fields import ConfigError


# ----------------------------------------------------------------------------- image augmentation
def _image_task(augment):
  task = ic.ImageClassificationTask.__new__(ic.ImageClassificationTask)
  task.cfg = types.SimpleNamespace(augment=augment)
  return task


def test_flip_crop_offsets_span_all_nine_positions_of_the_4_pixel_pad():
  """CIFAR's crop: pad 4 and crop back at an offset 0..8 per axis, centred on the image (mean
  offset 4). Rows are never flipped, so a pixel in row 4 of the crop shows the offset: row
  value o means the crop started o rows into the padded image. randint(0, 8) would never crop
  at 8 and shift every image up-left by half a pixel on average."""
  h = w = 12
  img = np.broadcast_to(np.arange(h, dtype=np.uint8)[:, None, None], (h, w, 1))
  batch = jnp.asarray(np.broadcast_to(img, (4000, h, w, 1)))
  out = np.asarray(_image_task("flip_crop")._augment(jax.random.key(0), batch))
  offsets = out[:, 4, 4, 0]  # row 4 of the crop = padded row o + 4 = image row o
  assert set(offsets.tolist()) == set(range(9))
  assert abs(offsets.mean() - 4.0) < 0.15  # symmetric: no shift on average


def test_flip_is_left_right_and_keeps_rows():
  """'flip' mirrors columns (a left-right flip, as CIFAR's standard); never rows (an upside-
  down image is another picture): each augmented image is the image or its mirror, and both
  occur."""
  h, w = 5, 7
  img = (np.arange(h)[:, None] * 16 + np.arange(w)[None]).astype(np.uint8)[..., None]
  batch = jnp.asarray(np.broadcast_to(img, (64, h, w, 1)))
  out = np.asarray(_image_task("flip")._augment(jax.random.key(1), batch))
  same = np.all(out == img, axis=(1, 2, 3))
  mirrored = np.all(out == img[:, ::-1], axis=(1, 2, 3))
  assert np.all(same | mirrored) and same.any() and mirrored.any()


# ----------------------------------------------------------------------------- Omniglot
def _omniglot(monkeypatch, images, labels, **cfg):
  monkeypatch.setattr(omniglot, "load", lambda data_dir, size: (images, labels))
  c = types.SimpleNamespace(data_dir="", image_size=images.shape[1], exemplars="all",
                            split_seed=0, augment=False, n_holdout=1, pixel_noise=0.0)
  for k, v in cfg.items():
    setattr(c, k, v)
  return c


def test_omniglot_classes_may_use_every_character(monkeypatch):
  """n_rare + n_common + n_holdout equal to the number of (augmented) characters is allowed:
  every class is used once. Only more than there are is an error."""
  images = np.zeros((6, 4, 4), np.uint8)
  labels = np.repeat(np.arange(3), 2)
  c = _omniglot(monkeypatch, images, labels, n_holdout=1)
  src = omniglot.OmniglotSource(c, num_train_classes=2)
  assert sorted(src.char_C.tolist()) == [0, 1, 2]
  with pytest.raises(ValueError, match="= 4 classes, but the loaded Omniglot has 3"):
    omniglot.OmniglotSource(c, num_train_classes=3)


def test_omniglot_augmented_variants_are_the_flips_and_rotations(monkeypatch):
  """With augment, one character is 8 classes: variant a is the drawing rotated by a % 4
  quarter turns, left-right flipped first when a >= 4 (variant 4: the mirror image, not the
  drawing itself again)."""
  img = (np.arange(16).reshape(4, 4) * 16).astype(np.uint8)  # no symmetry
  c = _omniglot(monkeypatch, img[None], np.zeros(1, np.int64), augment=True, n_holdout=0)
  src = omniglot.OmniglotSource(c, num_train_classes=8)
  cls = jnp.arange(8)[None]
  x = np.asarray(src.exemplars(jax.random.key(0), cls, cls))[0, ..., 0]
  base = img.astype(np.float32) / 255.0
  for a in range(8):
    want = np.rot90(base[:, ::-1] if a >= 4 else base, a % 4, axes=(-2, -1))
    np.testing.assert_allclose(x[src.aug_C.tolist().index(a)], want, atol=1e-6,
                               err_msg=f"variant {a}")


# ----------------------------------------------------------------------------- text tasks
def _text_cfg(**task):
  from configs import text_classification as tcc
  c = tcc.get_config("tiny")
  c.task.path = ""
  c.task.update(task)
  return c


def test_text_tasks_allow_seq_len_2_and_refuse_1(tmp_path):
  """The error says 'must be at least 2': 2 (one token + EOS) is the smallest allowed."""
  path = tmp_path / "t.csv"
  path.write_text("text,label\na,x\nb,y\nc,x\nd,y\n")
  tc.TextClassificationTask.check_config(_text_cfg(path=str(path), seq_len=2))
  with pytest.raises(ConfigError, match="seq_len=1 must be at least 2"):
    tc.TextClassificationTask.check_config(_text_cfg(path=str(path), seq_len=1))


def test_word_vocabulary_must_exceed_the_special_ids(tmp_path):
  """vocab_size = NUM_SPECIAL leaves no word: every text encodes to UNK and the classifier
  sees nothing; it is refused (the message: 'must exceed the 3 special ids'), one more is not."""
  path = tmp_path / "t.csv"
  path.write_text("text,label\na,x\nb,y\nc,x\nd,y\n")
  n = text_lib.NUM_SPECIAL
  with pytest.raises(ConfigError, match=f"vocab_size={n} must exceed"):
    tc.TextClassificationTask.check_config(_text_cfg(path=str(path), tokenizer="word",
                                                     vocab_size=n))
  tc.TextClassificationTask.check_config(_text_cfg(path=str(path), tokenizer="word",
                                                   vocab_size=n + 1))


def test_tfds_labels_take_the_class_label_names():
  """A TFDS ClassLabel with exactly as many names as the classes seen (imdb_reviews: neg,
  pos) names them: the confusion matrix, ROC title and predictions read 'neg'/'pos', not
  '0'/'1'."""
  import tensorflow_datasets as tfds
  c = _text_cfg(source="tfds", dataset="imdb_reviews", max_examples=16)
  with tfds.testing.mock_data(num_examples=16):
    _, tr_y, _, te_y, names, _ = tc.load_split(c.task, 0)
  assert max(tr_y.max(), te_y.max()) == 1  # both classes seen: num = 2 = len(ClassLabel names)
  assert names == ["neg", "pos"]


def test_a_csv_of_one_class_is_refused_by_the_config_check(tmp_path):
  """One label in the whole file: refused while the config is checked (before the workdir is
  touched), naming the label and the column; two labels pass."""
  path = tmp_path / "one.csv"
  path.write_text("text,label\na,x\nb,x\nc,x\n")
  with pytest.raises(ConfigError, match="every row has the label 'x'.*at least 2 classes"):
    tc.TextClassificationTask.check_config(_text_cfg(path=str(path)))
  path.write_text("text,label\na,x\nb,x\nc,y\n")
  tc.TextClassificationTask.check_config(_text_cfg(path=str(path)))


@pytest.mark.parametrize("window", ["random", "chunks"])
def test_lm_windows_reach_the_end_of_the_training_stream(window):
  """Random windows start at 0 .. N - (L + 1), the last included (a window that ends on the
  stream's last token); chunks are drawn from every row. Stream token i is i, so a window's
  first token is its start."""
  from research.tasks import lm
  task = lm.LMTask.__new__(lm.LMTask)
  task.cfg, task.seq_len = types.SimpleNamespace(source="file", window=window), 3
  n, need = 10, 4
  stream = np.arange(n, dtype=np.int32)
  task.rows = text_lib.Rows(text_lib.chunk(stream, need) if window == "chunks" else stream[:, None],
                            "device")
  tokens = np.asarray(task.sample(jax.random.key(0), 0, 2000)["tokens"])
  assert np.all(np.diff(tokens, axis=1) == 1)  # consecutive stream tokens
  starts = set(tokens[:, 0].tolist())
  assert starts == (set(range(n - need + 1)) if window == "random" else {0, 4})


@pytest.mark.parametrize("vocab,dtype", [(256, np.uint8), (257, np.uint16), (65536, np.uint16),
                                         (65537, np.int32)])
def test_token_rows_use_a_dtype_that_holds_every_id(vocab, dtype):
  """Ids 0 .. vocab - 1 must survive the cast of the token rows: uint8 holds 256 ids, so a
  vocabulary of 257 (the byte tokenizer's 259 is one) needs uint16, or id 256 becomes 0."""
  got = text_lib.smallest_int_dtype(vocab)
  assert got == dtype
  assert np.arange(vocab).astype(got).max() == vocab - 1


def test_stdlib_hold_out_share_is_the_valid_fraction():
  """held_out(path, f) holds out about a fraction f of files (the hash below f * 2^64), not
  1 - f: 10% of 4000 paths, within 3 SE."""
  share = np.mean([text_lib.held_out(f"pkg/mod{i}.py", 0.1) for i in range(4000)])
  assert abs(share - 0.1) < 0.015


@pytest.mark.parametrize("column", ["Model Size", "Training FLOP", "loss"])
def test_chinchilla_csv_refuses_a_zero_cell(tmp_path, column):
  """The fit takes logs: a 0 in any column is refused like a negative one (log 0 = -inf would
  end the fit in NaN or drop the row unseen), naming the row and column."""
  from research.analysis import scaling_data
  from research.errors import InputError
  row = {"Model Size": "1e8", "Training FLOP": "1e18", "loss": "3.0"}
  path = tmp_path / "c.csv"
  head = ",".join(row)
  path.write_text(f"{head}\n{','.join(row.values())}\n"
                  + ",".join("0" if k == column else v for k, v in row.items()) + "\n")
  with pytest.raises(InputError, match=f"row 2 .*column '{column}': '0' is not a positive"):
    scaling_data.load_chinchilla_csv(path)


# ----------------------------------------------------------------------------- numeric fields
@pytest.mark.parametrize("value,needle", [(True, "must be a number (it is a bool)"),
                                          (float("inf"), "must be a finite number"),
                                          (float("nan"), "must be a finite number"),
                                          (-1, "must be positive"), (0, "must be positive")])
def test_positive_refuses_bools_non_finite_and_non_positive_numbers(value, needle):
  """True is an int to Python but not a size; inf and nan pass every comparison unrefused
  (mutation audit 8A: dropping either check passed the suite)."""
  from research.tasks.fields import positive
  cfg = {"task": {"n_dims": value}}
  with pytest.raises(ConfigError, match=r"config\.task\.n_dims=.*" + needle.replace("(", r"\(")
                     .replace(")", r"\)")):
    positive(cfg, "task", "n_dims")
  positive({"task": {"n_dims": 3}}, "task", "n_dims")  # control: a positive int passes
