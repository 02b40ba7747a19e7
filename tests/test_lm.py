"""Language modelling on real text: the task's sampler and loss; training on a file and on
mock TFDS data; resume equals an uninterrupted run (slow tests run the real trainer)."""
import json
import math
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import config_check, train
from research.data import text as text_lib
from research.tasks import lm

STATE_KEYS = ("loss", "grad_norm", "learning_rate", "accuracy")


def _corpus(tmp_path, lines=300):
  rng = np.random.default_rng(0)
  words = "the quick brown fox jumps over a lazy dog while birds sing".split()
  text = "\n".join(" ".join(rng.choice(words, 10)) for _ in range(lines)) + "\n"
  path = tmp_path / "corpus.txt"
  path.write_text(text)
  return path, text


def _config(path="", **task):
  from configs import lm as lm_config
  c = lm_config.get_config("tiny")
  c.train.compile_cache_dir = ""
  c.mesh.data = 1
  c.task.path = str(path)
  c.task.update(task)
  return c


@pytest.mark.parametrize("window", ["random", "chunks"])
def test_sample_is_a_function_of_the_key_and_windows_come_from_the_training_text(tmp_path, window):
  path, text = _corpus(tmp_path)
  c = _config(path, window=window)
  task = lm.LMTask(c.task, seed=0)
  train_text, _ = text_lib.split_text(text, c.task.valid_fraction)
  key = jax.random.key(3)
  a, b = jax.jit(lambda k: task.sample(k, 0, 6))(key), task.sample(key, 5, 6)
  np.testing.assert_array_equal(a["tokens"], b["tokens"])
  assert a["tokens"].shape == (6, c.task.seq_len + 1)
  assert task.model_inputs(a).shape == (6, c.task.seq_len)
  for row in np.asarray(a["tokens"]):
    assert task.tokenizer.decode(row) in train_text + "\n"
  if window == "chunks":  # rows start at multiples of L+1 in the stream
    stream = task.tokenizer.encode(train_text)
    starts = [s for s in range(0, len(stream), c.task.seq_len + 1)]
    for row in np.asarray(a["tokens"]):
      assert any(np.array_equal(stream[s:s + len(row)], row) for s in starts)


def test_uniform_logits_give_log_vocab_loss(tmp_path):
  path, _ = _corpus(tmp_path)
  task = lm.LMTask(_config(path, tokenizer="char").task, seed=0)
  batch = task.sample(jax.random.key(0), 0, 4)
  v = task.io.vocab_size
  assert v == len(set(text_lib.split_text(path.read_text(), 0.05)[0])) + text_lib.NUM_SPECIAL
  loss, aux = task.loss(jnp.zeros((4, task.seq_len, v)), batch)
  assert float(loss) == pytest.approx(math.log(v), rel=1e-6)
  assert 0 <= float(aux["accuracy"]) <= 1


def test_token_losses_are_the_targets_log_probabilities_with_no_scatter_in_the_gradient():
  """The one-hot product gives -log_softmax at the target bit for bit, forward and backward,
  and its gradient holds no scatter (which could keep a (tokens x vocab) buffer; research.aot).
  Negative control: the gather it replaced has one in its gradient, so the check can fail."""
  logits = 4 * jax.random.normal(jax.random.key(0), (2, 8, 301))
  tokens = jax.random.randint(jax.random.key(1), (2, 9), 0, 301)
  gather = lambda x: -jnp.take_along_axis(jax.nn.log_softmax(x), tokens[:, 1:, None], -1)[..., 0]
  ours = lambda x: lm.LMTask.token_losses(x, tokens)[0]
  np.testing.assert_array_equal(jax.jit(ours)(logits), jax.jit(gather)(logits))
  grad = lambda f: jax.grad(lambda x: jnp.sum(f(x) * jnp.arange(8.0)))
  np.testing.assert_array_equal(jax.jit(grad(ours))(logits), jax.jit(grad(gather))(logits))
  assert "scatter" not in str(jax.make_jaxpr(grad(ours))(logits))
  assert "scatter" in str(jax.make_jaxpr(grad(gather))(logits))


def test_too_short_text_and_bad_fields_fail_clearly(tmp_path):
  p = tmp_path / "short.txt"
  p.write_text("tiny text")
  with pytest.raises(ValueError, match=r"fewer than config.task.seq_len \+ 1"):
    lm.LMTask(_config(p).task, seed=0)
  with pytest.raises(config_check.ConfigError, match="needs config.task.path"):
    config_check.validate(_config(""), 1)
  with pytest.raises(config_check.ConfigError, match="config.task.window='x' is not valid"):
    config_check.validate(_config(p, window="x"), 1)


def _run(c, workdir):
  config_check.validate(c, 1)
  return train.train_and_evaluate(c, str(workdir), devices=jax.devices()[:1])


def _rows(workdir):
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [(r["step"],) + tuple(r.get(k) for k in STATE_KEYS + ("eval_valid_loss",)) for r in rows]


def _params(workdir, step):
  import orbax.checkpoint as ocp
  state = ocp.StandardCheckpointer().restore(workdir / "checkpoints" / str(step) / "state")
  return [np.asarray(x) for x in jax.tree.leaves(state["params"])]


@pytest.mark.slow
def test_trains_on_a_text_file_and_resume_is_exact(tmp_path):
  """Uninterrupted run vs a copy of it cut back to its step-20 checkpoint and resumed."""
  path, _ = _corpus(tmp_path)
  c = _config(path)
  c.train.async_checkpoints = False
  ref = tmp_path / "ref"
  summary = _run(c, ref)
  assert summary["final_step"] == 40 and summary["final_loss"] < math.log(259)
  res = json.loads((ref / "probes" / "lm.json").read_text())
  assert res["num_eval_windows"] == 8 and len(res["loss_by_position"]) == c.task.seq_len
  assert res["eval_loss"] < math.log(259) and res["sample"]["continuation"] is not None
  assert (ref / "figures" / "lm.png").exists()
  cut = tmp_path / "cut"
  shutil.copytree(ref, cut)
  shutil.rmtree(cut / "checkpoints" / "40")
  for f in ("summary.json", "probes", "figures"):
    shutil.rmtree(cut / f) if (cut / f).is_dir() else (cut / f).unlink()
  _run(c, cut)  # resumes from step 20
  assert _rows(cut) == _rows(ref)  # every logged float, train and eval, exactly equal
  for a, b in zip(_params(cut, 40), _params(ref, 40)):
    np.testing.assert_array_equal(a, b)
  assert json.loads((cut / "probes" / "lm.json").read_text()) == res


@pytest.mark.slow
@pytest.mark.parametrize("dataset,eval_split,window", [("tiny_shakespeare", "validation", "random"),
                                                       ("lm1b", "test", "chunks")])
def test_trains_on_mock_tfds_text(tmp_path, dataset, eval_split, window):
  import tensorflow_datasets as tfds
  c = _config(source="tfds", dataset=dataset, eval_split=eval_split, tokenizer="char",
              window=window, placement="host")
  c.train.num_steps, c.train.eval_every = 20, 0
  with tfds.testing.mock_data(num_examples=40):
    summary = _run(c, tmp_path)
  res = json.loads((tmp_path / "probes" / "lm.json").read_text())
  assert res["dataset"] == dataset and res["num_train_tokens"] > 33
  assert math.isfinite(summary["final_loss"]) and math.isfinite(res["eval_loss"])


@pytest.mark.slow
def test_device_and_host_rows_train_identically_on_a_2x2x2_mesh(tmp_path):
  """Token rows on device (jnp.take) or in host memory (pure_callback): same batches, same run."""
  path, _ = _corpus(tmp_path)
  losses = {}
  for placement in ("device", "host"):
    c = _config(path, placement=placement)
    c.train.num_steps, c.train.eval_every = 20, 0
    c.mesh.data, c.mesh.fsdp, c.mesh.tensor = 2, 2, 2
    config_check.validate(c, 8)
    losses[placement] = _rows(tmp_path / placement) if train.train_and_evaluate(
        c, str(tmp_path / placement), devices=jax.devices()[:8]) else None
  assert losses["device"] == losses["host"]


def test_accuracy_counts_only_real_targets():
  """Two real targets and two PAD ones, every one predicted right: accuracy over the real
  ones is 1 (PAD counted, the right PADs would add to the numerator: 2.0; or the mean over
  all four would be taken). Control: the real ones wrong give 0, whatever the PADs."""
  from types import SimpleNamespace
  from research.data import text
  from research.tasks import lm
  task = SimpleNamespace(token_losses=lm.LMTask.token_losses)
  tokens = jnp.asarray([[5, 6, 7, text.PAD, text.PAD]])
  right = jax.nn.one_hot(jnp.asarray([[6, 7, text.PAD, text.PAD]]), 10) * 50.0
  assert float(lm.LMTask.loss(task, right, {"tokens": tokens})[1]["accuracy"]) == 1.0
  wrong = jax.nn.one_hot(jnp.asarray([[1, 1, text.PAD, text.PAD]]), 10) * 50.0
  assert float(lm.LMTask.loss(task, wrong, {"tokens": tokens})[1]["accuracy"]) == 0.0


# --- the probe's numbers, sampling temperature and synthetic ids --------------------------
def _uniform(task):
  return lambda x: jnp.zeros(x.shape + (task.io.vocab_size,))


def test_probe_reports_log_vocab_nats_and_log2_vocab_bits_for_uniform_logits(tmp_path):
  path, _ = _corpus(tmp_path)
  c = _config(path, tokenizer="char")
  task = lm.LMTask(c.task, seed=0)
  c.probe.generate_tokens = 2
  res = task.probe(_uniform(task), jax.random.key(0), c.probe, step=3)["lm"]
  v = task.io.vocab_size
  assert res["eval_loss"] == pytest.approx(math.log(v), rel=1e-6)
  assert res["bits_per_token"] == pytest.approx(math.log2(v), rel=1e-6)
  assert res["eval_perplexity"] == pytest.approx(v, rel=1e-5)
  # per position of the window (column i predicts token i + 1), averaged over the windows
  np.testing.assert_allclose(res["loss_by_position"], [math.log(v)] * task.seq_len, rtol=1e-6)


def test_generate_samples_from_the_logits_divided_by_the_temperature(tmp_path):
  """Two ids with logits 0 and 2 log 3: at temperature 2 they are drawn 1 : 3 (logits times
  the temperature would draw them 1 : 81)."""
  path, _ = _corpus(tmp_path)
  task = lm.LMTask(_config(path, tokenizer="char").task, seed=0)
  v = task.io.vocab_size
  logits = jnp.full((v,), -1e9).at[3].set(0.0).at[4].set(2 * math.log(3))
  out = task.generate(lambda x: jnp.broadcast_to(logits, x.shape + (v,)), jax.random.key(0),
                      [5], 400, 2.0)
  assert set(out) <= {3, 4}
  assert 0.18 < out.count(3) / 400 < 0.32


def test_synthetic_tokens_are_uniform_over_the_non_special_ids():
  c = _config(source="synthetic", vocab_size=64)
  config_check.validate(c, num_devices=1)
  task = lm.LMTask(c.task, seed=0)
  toks = np.asarray(task.sample(jax.random.key(0), 0, 64)["tokens"])
  assert toks.min() == text_lib.NUM_SPECIAL and toks.max() == 63


def test_eval_losses_read_the_first_num_windows_or_all_of_them(tmp_path):
  """num = 2: the first 2 evaluation windows; num = 0: every window (the config's 'all')."""
  path, _ = _corpus(tmp_path)
  task = lm.LMTask(_config(path, tokenizer="char").task, seed=0)
  total = len(task.eval_windows)
  assert total > 2
  assert task.eval_losses(_uniform(task), 2, 4).shape == (2, task.seq_len)
  assert task.eval_losses(_uniform(task), 0, 4).shape == (total, task.seq_len)


def test_eval_losses_in_one_program_equal_the_forward_then_the_losses(tmp_path):
  """The evaluation runs the forward and the per-token losses as one program
  (Experiment.predict_fn(params).then(task.eval_post)): the same losses as the forward's logits
  reduced after it (a plain function, without `then`), one compile for all batches of a shape,
  and losses every device holds (replicated, as every process reads them)."""
  from research import experiment
  path, _ = _corpus(tmp_path)
  c = _config(path, tokenizer="char")
  c.mesh.data = 2
  exp = experiment.Experiment(c, jax.devices()[:2])
  params = exp.init_state().params
  fused = exp.task.eval_losses(exp.predict_fn(params), 8, 4)
  plain = exp.task.eval_losses(lambda x: exp._apply(params, x), 8, 4)
  assert fused.shape == (8, exp.task.seq_len) and np.isfinite(fused).all()
  np.testing.assert_allclose(fused, plain, rtol=1e-6)
  assert exp._apply_then._cache_size() == 1  # two batches of 4, one program
  tokens = jnp.asarray(exp.task.eval_windows[:4])
  out = exp.predict_fn(params).then(exp.task.eval_post)(exp.task.model_inputs({"tokens": tokens}),
                                                        tokens)
  assert out.sharding.is_fully_replicated
