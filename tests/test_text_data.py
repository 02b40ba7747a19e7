"""research/data/text.py: tokenisers, packing, padding, CSV/TFDS sources, rows inside jit."""
import hashlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.data import text as text_lib
from research.errors import InputError
from research.tasks import text_classification as tc


def test_byte_tokenizer_round_trips_unicode_and_reserves_specials():
  tok = text_lib.ByteTokenizer()
  s = "héllo, wörld ✓\n"
  ids = tok.encode(s)
  assert ids.min() >= text_lib.NUM_SPECIAL and ids.max() < tok.vocab_size == 259
  assert len(ids) == len(s.encode("utf-8")) and tok.decode(ids) == s
  assert tok.decode(np.r_[text_lib.PAD, ids, text_lib.EOS]) == s  # specials are skipped


def test_char_tokenizer_builds_from_training_text_only():
  tok = text_lib.CharTokenizer(["abca", "cb"])
  assert tok.chars == ["a", "b", "c"] and tok.vocab_size == 6
  np.testing.assert_array_equal(tok.encode("cabz"), [5, 3, 4, text_lib.UNK])
  assert tok.decode(tok.encode("abc")) == "abc"


def test_word_tokenizer_keeps_most_frequent_words_ties_alphabetical():
  tok = text_lib.WordTokenizer(["b a a, c", "A b d"], vocab_size=text_lib.NUM_SPECIAL + 3)
  assert tok.words == ["a", "b", ","]  # a:3, b:2, then ',', c, d (1 each) alphabetically
  np.testing.assert_array_equal(tok.encode("A c b"), [3, text_lib.UNK, 4])


def test_pack_chunk_and_pad_rows():
  stream = text_lib.pack([[5, 6], [7]])
  np.testing.assert_array_equal(stream, [5, 6, text_lib.EOS, 7, text_lib.EOS])
  np.testing.assert_array_equal(text_lib.chunk(np.arange(7), 3), [[0, 1, 2], [3, 4, 5]])
  rows, lengths = text_lib.pad_rows([[5, 6, 7, 8, 9], [5], []], 4)
  np.testing.assert_array_equal(rows, [[5, 6, 7, 1], [5, 1, 0, 0], [1, 0, 0, 0]])
  np.testing.assert_array_equal(lengths, [4, 2, 1])


def test_labels_encode_numbers_numerically_and_strings_alphabetically():
  ids, names = text_lib.encode_labels(["10", "2", "2", "1"])
  assert names == ["1", "2", "10"] and ids.tolist() == [2, 1, 1, 0]
  ids, names = text_lib.encode_labels(["pos", "neg", "pos"])
  assert names == ["neg", "pos"] and ids.tolist() == [1, 0, 1]


def test_csv_reader_names_a_missing_column(tmp_path):
  p = tmp_path / "d.csv"
  p.write_text('text,sentiment\n"a, b",x\n')
  texts, labels, digest = text_lib.read_csv(str(p), "text", "sentiment")
  assert texts == ["a, b"] and labels == ["x"]
  assert digest == hashlib.sha256(p.read_bytes()).hexdigest()  # of the bytes, as recorded
  with pytest.raises(InputError, match="has no column 'label'"):
    text_lib.read_csv(str(p), "text", "label")


@pytest.mark.parametrize("text,needle", [
    # An unquoted comma shifted the label into a third field: 'ok' became a class (audit 35).
    ("text,label\nthe plot, ok,pos\n", "line 2 has more fields than the header; quote a field"),
    ("text,label\nfine,pos\nno label,\n", "line 3 has an empty 'label'"),
    ("text,label,label\nfine,pos,neg\n", "its header names column 'label' 2 times"),
])
def test_csv_rows_that_would_be_read_wrongly_are_refused(text, needle, tmp_path):
  p = tmp_path / "d.csv"
  p.write_text(text)
  with pytest.raises(InputError, match=re.escape(needle)):
    text_lib.read_csv(str(p), "text", "label")


def test_csv_a_byte_order_mark_and_a_trailing_comma_read_as_meant(tmp_path):
  """The controls: a spreadsheet's BOM was part of the first column's name ('no column
  text'); a trailing comma's empty field is not a shifted row."""
  p = tmp_path / "d.csv"
  p.write_bytes("text,label\nfine film,pos,\n\"bad, long\",neg\n".encode("utf-8-sig"))
  assert text_lib.read_csv(str(p), "text", "label")[:2] == (["fine film", "bad, long"],
                                                            ["pos", "neg"])


@pytest.mark.parametrize("placement", ["device", "host"])
def test_rows_gather_inside_jit(placement):
  array = np.arange(40, dtype=np.uint16).reshape(10, 4)
  rows = text_lib.Rows(array, placement)
  assert rows.on_device == (placement == "device")
  idx = jnp.array([[3, 0], [9, 3]])
  out = jax.jit(rows.gather)(idx)
  assert out.dtype == jnp.int32 and out.shape == (2, 2, 4)
  np.testing.assert_array_equal(out, array[np.asarray(idx)])


def test_auto_placement_keeps_large_arrays_on_host():
  small = text_lib.Rows(np.zeros((4, 4), np.uint8))
  big = text_lib.Rows(np.zeros((text_lib.DEVICE_BYTES_LIMIT + 1, 1), np.uint8))
  assert small.on_device and not big.on_device


def test_tfds_text_source_reads_mock_data_without_tensorflow():
  import tensorflow_datasets as tfds
  with tfds.testing.mock_data(num_examples=7):
    docs, _ = text_lib.tfds_texts("lm1b", "train")
    records, _ = text_lib.tfds_records("ag_news_subset", "test")
  assert len(docs) == 7 and all(isinstance(d, str) and d for d in docs)
  joined = text_lib.join_fields(records[0], "title,description")
  assert joined.startswith(str(records[0]["title"]))
  with pytest.raises(InputError, match="not in the dataset"):
    text_lib.join_fields(records[0], "body")


def test_missing_tfds_dataset_names_it_and_how_to_prepare(tmp_path):
  with pytest.raises(text_lib.DatasetUnavailableError, match=r"'lm1b'.*tfds build lm1b"):
    text_lib.tfds_texts("lm1b", "train", data_dir=str(tmp_path))


def test_roc_auc_equals_the_pairwise_rank_statistic_with_ties():
  rng = np.random.default_rng(0)
  scores = rng.integers(0, 5, 60).astype(float)  # many ties
  positive = rng.random(60) < 0.4
  fpr, tpr, auc = tc.roc_curve(scores, positive)
  p, n = scores[positive], scores[~positive]
  pairs = (p[:, None] > n[None]).mean() + 0.5 * (p[:, None] == n[None]).mean()
  assert auc == pytest.approx(pairs, abs=1e-12)
  assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
  assert tc.roc_curve(np.array([0.9, 0.1]), np.array([True, False]))[2] == 1.0


def test_the_held_out_share_is_rounded():
  """19% of 10 characters is 2 held out (rounded), not 1 (floored): a mutation audit."""
  assert text_lib.split_text("abcdefghij", 0.19) == ("abcdefgh", "ij")
