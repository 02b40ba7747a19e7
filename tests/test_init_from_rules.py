"""research/init_from.py without a trained run: which parameters `init_params_from` copies,
casts, places and refuses (another run's parameters stubbed in), what `check_vocabulary`
answers for saved tokenizers and label lists written by hand, and `_raw_params` on small
checkpoints saved here (the newest, verified, refused when damaged)."""
import json

import jax
import ml_dtypes
import numpy as np
import pytest

from research import checkpoint, errors, init_from


def _single(params):
  return jax.tree.map(lambda _: jax.sharding.SingleDeviceSharding(jax.devices()[0]), params)


@pytest.fixture
def source(monkeypatch):
  """Another run's parameters, {'a/b/kernel': array} as _raw_params gives them, at step 7;
  and the messages init_from logs as warnings."""
  flat, warned = {}, []
  monkeypatch.setattr(init_from, "_raw_params", lambda workdir: (flat, 7))
  monkeypatch.setattr(init_from.logging, "warning", lambda msg, *a: warned.append(msg % a))
  return flat, warned


def test_copied_parameters_take_this_models_dtype(source):
  """A checkpoint of bfloat16 parameters copied into a float32 model arrives as float32: the
  optimiser state and the jitted step are built for this model's dtypes."""
  flat, _ = source
  flat["body/kernel"] = np.full((2, 3), 1.5, ml_dtypes.bfloat16)
  params = {"body": {"kernel": np.zeros((2, 3), np.float32)}}
  new = init_from.init_params_from("run", params, _single(params))
  assert new["body"]["kernel"].dtype == np.float32
  np.testing.assert_array_equal(new["body"]["kernel"], np.full((2, 3), 1.5, np.float32))


def test_copied_parameters_are_placed_on_the_shardings_given():
  """The copy is laid out as the training state is (FSDP / tensor-parallel shardings), not
  left as host arrays for the first jitted step to move."""
  import unittest.mock
  params = {"body": {"kernel": np.zeros((4, 2), np.float32)}}
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:2]), ("data",))
  sharding = {"body": {"kernel": jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec("data", None))}}
  with unittest.mock.patch.object(init_from, "_raw_params",
                                  lambda w: ({"body/kernel": np.ones((4, 2))}, 3)):
    new = init_from.init_params_from("run", params, sharding)
  assert isinstance(new["body"]["kernel"], jax.Array)
  assert new["body"]["kernel"].sharding == sharding["body"]["kernel"]


def test_a_checkpoint_sharing_no_parameter_is_refused(source):
  """Another model family (none of its paths here) would start entirely fresh while saying it
  was initialised from that run."""
  flat, _ = source
  flat["encoder/dense/kernel"] = np.ones((2, 2))
  params = {"body": {"kernel": np.zeros((2, 2), np.float32)}}
  with pytest.raises(init_from.InitFromError, match=r"no parameter of this model is in its "
                     r"checkpoint \(different model family\?\)") as e:
    init_from.init_params_from("run", params, _single(params))
  assert e.value.exit_code == errors.EXIT_INPUT


def test_another_vocabulary_size_is_refused_though_the_width_fits(source):
  """A token embedding of another vocabulary differs only in its first dimension (rows):
  that is a mismatch like any other, never a partial copy."""
  flat, _ = source
  flat["token_embed/embedding"] = np.ones((259, 8))
  flat["block/kernel"] = np.ones((8, 8))
  params = {"token_embed": {"embedding": np.zeros((30, 8), np.float32)},
            "block": {"kernel": np.zeros((8, 8), np.float32)}}
  with pytest.raises(init_from.InitFromError, match=r"token_embed/embedding shape \(259, 8\) "
                     r"in checkpoint vs \(30, 8\) here"):
    init_from.init_params_from("run", params, _single(params))


def test_a_long_list_of_mismatches_names_eight_and_counts_the_rest(source):
  flat, _ = source
  params = {f"block_{i}": {"kernel": np.zeros((2, 2), np.float32)} for i in range(10)}
  flat |= {f"block_{i}/kernel": np.ones((3, 3)) for i in range(10)}
  with pytest.raises(init_from.InitFromError) as e:
    init_from.init_params_from("run", params, _single(params))
  message = str(e.value)
  assert message.count("in checkpoint vs (2, 2) here") == 8 and "(+2 more)" in message
  flat |= {f"block_{i}/kernel": np.zeros((2, 2)) for i in range(2)}  # eight left: no count
  with pytest.raises(init_from.InitFromError) as e:
    init_from.init_params_from("run", params, _single(params))
  assert str(e.value).count("in checkpoint vs (2, 2) here") == 8 and "more)" not in str(e.value)


def test_unused_source_parameters_past_twelve_are_counted(source):
  """A much deeper source: the warning names twelve of its unused parameters and says how
  many more there are."""
  flat, warned = source
  flat["block_0/kernel"] = np.ones((2, 2))
  flat |= {f"extra_{i:02d}/kernel": np.ones((2, 2)) for i in range(15)}
  params = {"block_0": {"kernel": np.zeros((2, 2), np.float32)}}
  init_from.init_params_from("run", params, _single(params))
  (message,) = warned
  assert "'extra_11/kernel'" in message and "'extra_12/kernel'" not in message
  assert "'+3 more'" in message


def test_a_fresh_head_is_said_with_its_reason(source):
  flat, warned = source
  flat |= {"body/kernel": np.ones((2, 2)), "head/kernel": np.ones((2, 2))}
  params = {"body": {"kernel": np.zeros((2, 2), np.float32)},
            "head": {"kernel": np.zeros((2, 2), np.float32)}}
  new = init_from.init_params_from("run", params, _single(params), "its labels differ")
  np.testing.assert_array_equal(new["head"]["kernel"], np.zeros((2, 2)))
  np.testing.assert_array_equal(new["body"]["kernel"], np.ones((2, 2)))
  (message,) = warned
  assert "fresh ['head/kernel'] (the head: its labels differ), not used []" in message


# --- check_vocabulary on records written by hand ------------------------------------------
class _Task:
  """A task as check_vocabulary sees it: its vocabulary() record (tokenizer, label names)."""

  def __init__(self, tokenizer=None, labels=None):
    self.record = {k: v for k, v in (("tokenizer", tokenizer), ("labels", labels)) if v is not None}

  def vocabulary(self):
    return self.record


def _saved(tmp_path, **record):
  (tmp_path / "a").mkdir(exist_ok=True)
  (tmp_path / "a" / "vocabulary.json").write_text(json.dumps(record))
  return tmp_path / "a"


BYTE = {"kind": "byte", "vocab_size": 259}


def test_the_same_tokenizer_written_in_another_key_order_is_the_same(tmp_path):
  """The record is compared as JSON, not as its text: key order means nothing."""
  mine = {"kind": "word", "vocab_size": 5, "words": ["a", "b"]}
  source = _saved(tmp_path, tokenizer={"words": ["a", "b"], "vocab_size": 5, "kind": "word"})
  assert init_from.check_vocabulary(source, _Task(mine), tmp_path / "b") == ""


def test_a_source_without_a_saved_tokenizer_is_matched_by_shape(tmp_path):
  """An older version's vocabulary.json (labels only) or a run of ids (no tokenizer): matched
  by shape as before, not refused as damaged."""
  source = _saved(tmp_path, labels=["neg", "pos"])
  assert init_from.check_vocabulary(source, _Task(BYTE, ["neg", "pos"]), tmp_path / "b") == ""


def test_a_run_without_a_tokenizer_reads_no_source_vocabulary(tmp_path):
  """A task with no tokenizer of its own (ids, images) copies from a text run by shape: there
  are no token ids here for the source's to contradict."""
  source = _saved(tmp_path, tokenizer=BYTE, labels=["neg", "pos"])
  assert init_from.check_vocabulary(source, _Task(labels=["x", "y"]), tmp_path / "b") == ""
  assert init_from.check_vocabulary(source, object(), tmp_path / "b") == ""


def test_labels_on_one_side_only_match_by_shape(tmp_path):
  """A language model fine-tuned from a classifier of the same tokenizer: no label names
  here, so nothing to compare the source's with."""
  source = _saved(tmp_path, tokenizer=BYTE, labels=["neg", "pos"])
  assert init_from.check_vocabulary(source, _Task(BYTE), tmp_path / "b") == ""


def test_a_tokenizer_record_that_is_no_record_is_named_damaged(tmp_path):
  source = _saved(tmp_path, tokenizer="byte")
  with pytest.raises(init_from.InitFromError, match=r"vocabulary.json is damaged \(its "
                     r"'tokenizer' is no tokenizer's record\)") as e:
    init_from.check_vocabulary(source, _Task(BYTE), tmp_path / "b")
  assert e.value.exit_code == errors.EXIT_INPUT


def test_another_kind_of_tokenizer_is_named_with_both_sizes(tmp_path):
  source = _saved(tmp_path, tokenizer=BYTE)
  mine = {"kind": "char", "vocab_size": 30, "chars": list("abc")}
  with pytest.raises(init_from.InitFromError, match=(
      rf"\(a byte tokenizer of 259 ids in {tmp_path / 'a' / 'vocabulary.json'}, a char "
      rf"tokenizer of 30 ids in this run's, to be saved in {tmp_path / 'b' / 'vocabulary.json'}\)")):
    init_from.check_vocabulary(source, _Task(mine), tmp_path / "b")


def test_char_tokenizers_name_the_first_id_that_differs(tmp_path):
  """Ids start after the special tokens: the first differing character, 'c' at index 2, is
  id 2 + NUM_SPECIAL."""
  from research.data.text import NUM_SPECIAL
  source = _saved(tmp_path, tokenizer={"kind": "char", "vocab_size": 7, "chars": list("abcd")})
  mine = {"kind": "char", "vocab_size": 7, "chars": list("abxd")}
  with pytest.raises(init_from.InitFromError,
                     match=rf"char tokenizers of 7 ids; id {2 + NUM_SPECIAL} is 'c' in .*, 'x' in"):
    init_from.check_vocabulary(source, _Task(mine), tmp_path / "b")


def test_label_lists_are_shortened_after_six_names(tmp_path):
  six, seven = list("abcdef"), list("abcdefg")
  why = init_from.check_vocabulary(_saved(tmp_path, tokenizer=BYTE, labels=six),
                                   _Task(BYTE, six[::-1]), tmp_path / "b")
  assert why.startswith("its labels ['a', 'b', 'c', 'd', 'e', 'f'] (")
  why = init_from.check_vocabulary(_saved(tmp_path, tokenizer=BYTE, labels=seven),
                                   _Task(BYTE, seven[::-1]), tmp_path / "b")
  assert why.startswith("its labels ['a', 'b', 'c', 'd', 'e', 'f', ...] (")


# --- _raw_params on small checkpoints --------------------------------------------------------
def _checkpoints(workdir, steps):
  ck = checkpoint.Checkpointer(workdir / "checkpoints", max_to_keep=10, async_save=False)
  for step in steps:
    ck.save(step, {"params": {"body": {"kernel": np.full((2,), step, np.float32)}}},
            {"step": step})
  ck.close()  # sealed: checksums.json in every step


def test_the_newest_checkpoint_is_read(tmp_path):
  _checkpoints(tmp_path, [3, 10, 5])
  params, step = init_from._raw_params(tmp_path)
  assert step == 10
  np.testing.assert_array_equal(params["body/kernel"], [10.0, 10.0])


def test_a_damaged_newest_checkpoint_is_refused_not_fine_tuned_from(tmp_path):
  """Its checksums no longer match: refused naming the fix, not read (nor the previous one
  read silently in its place)."""
  _checkpoints(tmp_path, [1, 2])
  victim = max((p for p in (tmp_path / "checkpoints" / "2" / "state").rglob("*") if p.is_file()),
               key=lambda p: p.stat().st_size)
  victim.write_bytes(victim.read_bytes()[:-1] + b"\0")
  with pytest.raises(init_from.InitFromError, match=r"checkpoint 2 in .* is damaged \(checksum "
                     r"mismatch in state/.*\); resume that run once") as e:
    init_from._raw_params(tmp_path)
  assert e.value.exit_code == errors.EXIT_INPUT


def test_a_checkpoints_file_is_no_checkpoints_directory(tmp_path):
  (tmp_path / "checkpoints").write_text("not a directory")
  with pytest.raises(init_from.InitFromError, match="has no checkpoints/ directory"):
    init_from.check_init_from(tmp_path)
