"""research/data/text.py: tokenisers, packing, padding, CSV/TFDS sources, rows inside jit."""
import hashlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.data import text as text_lib
from research.data import text_files
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
  ids, names = text_files.encode_labels(["10", "2", "2", "1"])
  assert names == ["1", "2", "10"] and ids.tolist() == [2, 1, 1, 0]
  ids, names = text_files.encode_labels(["pos", "neg", "pos"])
  assert names == ["neg", "pos"] and ids.tolist() == [1, 0, 1]


def test_csv_reader_names_a_missing_column(tmp_path):
  p = tmp_path / "d.csv"
  p.write_text('text,sentiment\n"a, b",x\n')
  texts, labels, digest = text_files.read_csv(str(p), "text", "sentiment")
  assert texts == ["a, b"] and labels == ["x"]
  assert digest == hashlib.sha256(p.read_bytes()).hexdigest()  # of the bytes, as recorded
  with pytest.raises(InputError, match="has no column 'label'"):
    text_files.read_csv(str(p), "text", "label")


@pytest.mark.parametrize("text,needle", [
    # An unquoted comma shifted the label into a third field: 'ok' became a class (audit 35).
    ("text,label\nthe plot, ok,pos\n", "line 2 has more fields than the header; quote a field"),
    ("text,label\nfine,pos\nno label,\n", "line 3 has an empty 'label'"),
    # A row of padding trained on as an example of its class (stop 60's open item).
    ("text,label\nfine,pos\n  ,neg\n", "line 3 has an empty 'text'"),
    ("text,label,label\nfine,pos,neg\n", "its header names column 'label' 2 times"),
])
def test_csv_rows_that_would_be_read_wrongly_are_refused(text, needle, tmp_path):
  p = tmp_path / "d.csv"
  p.write_text(text)
  with pytest.raises(InputError, match=re.escape(needle)):
    text_files.read_csv(str(p), "text", "label")


def test_csv_a_byte_order_mark_and_a_trailing_comma_read_as_meant(tmp_path):
  """The controls: a spreadsheet's BOM was part of the first column's name ('no column
  text'); a trailing comma's empty field is not a shifted row."""
  p = tmp_path / "d.csv"
  p.write_bytes("text,label\nfine film,pos,\n\"bad, long\",neg\n".encode("utf-8-sig"))
  assert text_files.read_csv(str(p), "text", "label")[:2] == (["fine film", "bad, long"],
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


def test_byte_tokenizer_keeps_the_nul_byte():
  """Byte 0 is id NUM_SPECIAL (3), the first non-special id: decode keeps it (a mutation
  audit: decoding from id 4 up dropped every NUL byte of a round trip)."""
  tok = text_lib.ByteTokenizer()
  ids = tok.encode("a\x00b")
  np.testing.assert_array_equal(ids, [ord("a") + 3, 3, ord("b") + 3])
  assert tok.decode(ids) == "a\x00b"


def test_word_tokenizer_ties_are_alphabetical_not_first_seen():
  """x twice, then z and y once each, z seen first: the one slot left goes to y (a mutation
  audit: ties in first-seen order kept z; the existing case's first-seen order is alphabetical)."""
  tok = text_lib.WordTokenizer(["z y x", "x"], vocab_size=text_lib.NUM_SPECIAL + 2)
  assert tok.words == ["x", "y"]
  np.testing.assert_array_equal(tok.encode("z y x"), [text_lib.UNK, 4, 3])


def test_word_vocabulary_counts_words_case_blind():
  """'The', 'the' and 'THE' are one word, counted 3 times: it takes the one slot over 'cat'
  and encodes in any case (a mutation audit: counting before lower-casing kept 'THE', which
  encode, lower-casing, never produces)."""
  tok = text_lib.WordTokenizer(["The the THE cat"], vocab_size=text_lib.NUM_SPECIAL + 1)
  assert tok.words == ["the"]
  np.testing.assert_array_equal(tok.encode("THE Cat tHe"), [3, text_lib.UNK, 3])


def test_word_decode_drops_padding_and_end_of_text_and_shows_unknowns():
  """EOS was decoded as '<unk>' (the byte and char tokenisers drop it, as padding)."""
  tok = text_lib.WordTokenizer(["x y"], vocab_size=text_lib.NUM_SPECIAL + 2)
  assert tok.decode([3, text_lib.UNK, 4, text_lib.PAD, text_lib.PAD]) == "x <unk> y"
  assert tok.decode([3, text_lib.EOS, 4, text_lib.EOS]) == "x y"
  for other in (text_lib.ByteTokenizer(), text_lib.CharTokenizer(["xy"])):
    assert other.decode([*other.encode("xy"), text_lib.EOS, text_lib.PAD]) == "xy"


def test_stdlib_split_must_leave_files_on_both_sides(tmp_path):
  """valid_fraction 0 holds out no file: refused, not a run with an empty validation split
  (a mutation audit: any() for all() let it through)."""
  for name in ("a.py", "b.py", "c.py"):
    (tmp_path / name).write_text(f"# {name}\n")
  with pytest.raises(InputError, match=r"3 \.py files, 0 held out .*leaves files on both sides"):
    text_lib.stdlib_texts(str(tmp_path), 0.0)
  with pytest.raises(InputError, match=r"3 \.py files, 3 held out"):
    text_lib.stdlib_texts(str(tmp_path), 1.0)


def test_tfds_records_keeps_the_first_limit_records():
  import tensorflow_datasets as tfds
  with tfds.testing.mock_data(num_examples=7):
    every, _ = text_lib.tfds_records("ag_news_subset", "test")
    first, _ = text_lib.tfds_records("ag_news_subset", "test", limit=3)
    more, _ = text_lib.tfds_records("ag_news_subset", "test", limit=10)
  assert len(every) == 7 and len(first) == 3 and len(more) == 7
  assert [r["description"] for r in first] == [r["description"] for r in every[:3]]


def test_join_fields_puts_one_space_between_features():
  record = {"title": b"Stocks fall", "description": np.array(b"Markets slid.", dtype=object)}
  assert text_lib.join_fields(record, "title, description") == "Stocks fall Markets slid."


def test_csv_whitespace_after_a_trailing_comma_is_refused_and_labels_are_stripped(tmp_path):
  """An extra field holding only spaces is no shifted text (accepted), but one holding text is
  refused; labels lose surrounding spaces, so ' pos' and 'pos' are one class."""
  p = tmp_path / "d.csv"
  p.write_text("text,label\nfine film, pos , \nbad film,neg\ngood,pos\n")
  texts, labels, _ = text_files.read_csv(str(p), "text", "label")
  assert texts == ["fine film", "bad film", "good"] and labels == ["pos", "neg", "pos"]
  ids, names = text_files.encode_labels(labels)
  assert names == ["neg", "pos"] and ids.tolist() == [1, 0, 1]


def test_pack_ends_every_document_with_eos_even_an_empty_one():
  np.testing.assert_array_equal(text_lib.pack([[5], [], [6]]),
                                [5, text_lib.EOS, text_lib.EOS, 6, text_lib.EOS])
  np.testing.assert_array_equal(text_lib.pack([[5], [6]], eos=False), [5, 6])


def _stdlib_corpus(root, contents):
  """Files NAME.py of the given contents under root; returns the names on each side of a
  0.5 hash split."""
  root.mkdir(parents=True, exist_ok=True)
  for name, text in contents.items():
    (root / name).write_bytes(text.encode("utf-8"))
  held = [n for n in sorted(contents) if text_lib.held_out(n, 0.5)]
  return [n for n in sorted(contents) if n not in held], held


def test_stdlib_description_counts_bytes_and_hashes_names_with_contents(tmp_path):
  """info['bytes'] are UTF-8 bytes per split (a mutation audit: characters, 2 short per 'é');
  the SHA-256 covers each file's name with its bytes: 'XY' + '' and 'X' + 'Y' are other
  documents (another EOS place) and another corpus, though their bytes concatenate alike."""
  names = [f"m{i}.py" for i in range(12)]
  train, held = _stdlib_corpus(tmp_path / "a", {n: "é" * (i + 1) for i, n in enumerate(names)})
  assert len(train) >= 2 and held  # the hash split puts files on both sides
  docs_train, docs_held, info = text_lib.stdlib_texts(str(tmp_path / "a"), 0.5)
  size = lambda ns: sum((tmp_path / "a" / n).stat().st_size for n in ns)
  assert info["files"] == [len(train), len(held)]
  assert info["bytes"] == [size(train), size(held)] == [2 * sum(len(d) for d in docs_train),
                                                        2 * sum(len(d) for d in docs_held)]
  one, two = train[:2]
  rest = {n: "z" for n in names if n not in (one, two)}
  _stdlib_corpus(tmp_path / "b", {one: "XY", two: ""} | rest)
  _stdlib_corpus(tmp_path / "c", {one: "X", two: "Y"} | rest)
  b, c = (text_lib.stdlib_texts(str(tmp_path / d), 0.5)[2]["sha256"] for d in "bc")
  assert b != c


def test_chunk_keeps_the_last_window_when_the_stream_divides_exactly():
  np.testing.assert_array_equal(text_lib.chunk(np.arange(6), 3), [[0, 1, 2], [3, 4, 5]])
  assert text_lib.chunk(np.arange(2), 3).shape == (0, 3)


def test_stdlib_train_and_held_out_files_are_the_two_sides_of_the_hash(tmp_path):
  """Every file is in exactly one split: train the files held_out() says False for (a
  mutation audit: both lists took the held-out files, so training read the validation text)."""
  names = [f"m{i}.py" for i in range(12)]
  train, held = _stdlib_corpus(tmp_path, {n: f"# {n}\n" for n in names})
  docs_train, docs_held, info = text_lib.stdlib_texts(str(tmp_path), 0.5)
  assert sorted(docs_train) == sorted(f"# {n}\n" for n in train)
  assert sorted(docs_held) == sorted(f"# {n}\n" for n in held)
  assert not set(docs_train) & set(docs_held) and len(docs_train) + len(docs_held) == 12
