"""Bursty classification (research/tasks/classification.py), each line pinned to its
definition: the label map and context accuracy, fresh classes' labels, rare classes and
fillers, exemplar norms, which items the loss reads, and the probe's sequence count and
intervals."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from test_classification import N_SEQ, _batch, _task, reddy  # noqa: F401 (a fixture)


def test_labels_stay_ordered_when_classes_equal_labels_and_the_query_is_no_context_label():
  """Two lines a mutation audit moved unseen: with K == L classes the label map is the
  identity (Chan's ordered labels), and context accuracy asks whether the answer is one of
  the context's labels, the query's own label not among them."""
  task, _ = _task(num_classes=32, num_labels=32)
  np.testing.assert_array_equal(np.asarray(task.class_label_C)[:32], np.arange(32))
  task, _ = _task()
  labels = jnp.asarray([[1, 2, 1, 2, 7]])  # context labels {1, 2}; the target 7 is absent
  logits = jnp.zeros((1, 5, task.num_labels)).at[0, -1, 7].set(5.0).at[0, -1, 1].set(1.0)
  c = task._correct(logits, {"labels": labels, "orig_labels": labels})
  assert not bool(c["context"][0]) and bool(c["full"][0])
  # control: a target among the context's labels (2) is right in context, the model's top
  # answer 7 (no context label) set aside, and wrong in full
  present = jnp.asarray([[1, 2, 1, 2, 2]])
  c = task._correct(logits.at[0, -1, 2].set(3.0), {"labels": present, "orig_labels": present})
  assert bool(c["context"][0]) and not bool(c["full"][0])


def test_fresh_classes_get_distinct_labels_even_when_they_use_every_label():
  """Two ways over two labels: each ICL sequence's two fresh classes are labelled 0 and 1 in
  some order (ranks 0 and 1 of a shuffle of the labels), never both the same label."""
  task, _ = _task(num_labels=2, num_context=4, burstiness=2, ways=2, probe_ways=2, probe_shots=2)
  b = _batch(task, "icl", ways=2, shots=2)
  for ident, labels in zip(b["ident"][:200], b["labels"][:200]):
    by_class = {int(i): int(l) for i, l in zip(ident, labels)}
    assert sorted(by_class.values()) == [0, 1]
  # the order varies: both labellings occur
  first = b["labels"][:, 0]
  assert 0.3 < first.mean() < 0.7


def test_probe_runs_the_model_on_exactly_num_prompts_sequences(reddy, monkeypatch):
  """10 prompts in batches of 4: the model sees 4 + 4 + 2 sequences (one probe kind, to
  compile the sampler twice only)."""
  task, c, _ = reddy
  monkeypatch.setattr(task, "probe_kinds", lambda: ["icl"])
  probe = c.probe.copy_and_resolve_references()  # the module fixture's config stays as it is
  probe.num_prompts, probe.batch_size = 10, 4
  rows = []

  def predict(tokens):
    rows.append(tokens.shape[0])
    return jnp.zeros(tokens.shape[:2] + (task.num_labels,))
  r = task.probe(predict, jax.random.key(1), probe, step=0)["classification"]["probes"]
  assert rows == [4, 4, 2] and r["icl"]["num_sequences"] == 10


def test_rare_classes_are_exactly_the_first_k_minus_n_common():
  """10 classes, n_common 5: the bursty (rare) pool that the ways and iwl_rare draw from is
  classes 0-4, and the common pool (fillers, i.i.d. sequences, iwl_common) is 5-9: the
  boundary class 5 is common."""
  from research.tasks.classification import NEG_INF
  task, _ = _task(num_classes=10, num_labels=10, n_common=5, num_context=4, burstiness=2,
                  ways=2, probe_ways=2, probe_shots=2)
  drawn = lambda pool: np.flatnonzero(np.asarray(pool) > NEG_INF / 2).tolist()
  assert drawn(task.pool_bursty) == [0, 1, 2, 3, 4]
  assert drawn(task.pool_other) == [5, 6, 7, 8, 9]


def test_fillers_are_never_the_sequences_way_classes():
  """2 ways x 1 shot + 2 fillers over 4 classes, one pool for both (n_common 0): the fillers are
  drawn from the 2 other classes (with repeats), so each way class appears exactly `shots`
  times in the context."""
  task, _ = _task(num_classes=4, num_labels=4, num_context=4, burstiness=1, ways=2,
                  probe_ways=2, probe_shots=1)
  keys = jax.random.split(jax.random.key(0), 200)
  cls, _, ways = jax.vmap(lambda k: task._bursty(k, task.pool_all, task.pool_all, 2, 1))(keys)
  cls, ways = np.asarray(cls), np.asarray(ways)
  for seq, w in zip(cls, ways):
    assert [int((seq[:-1] == c).sum()) for c in w] == [1, 1] and seq[-1] in w


def test_exemplars_have_unit_norm_and_within_class_overlap_at_large_epsilon():
  """eps = 1: x = (mu + eta) / sqrt(2) has E|x|^2 = 1 and two exemplars of one class overlap
  E[x.x'] = 1 / (1 + eps^2) = 0.5 (at the default eps = 0.1 a wrong normaliser, / (1 + eps^2),
  is a 1% effect; here it reads 0.5 and 0.25)."""
  task, _ = _task(num_classes=512, dim=16, num_labels=32, num_context=8, burstiness=2,
                  epsilon=1.0)
  cls = jnp.stack([jnp.arange(4000) % 512] * 2, 1)
  x = np.asarray(task._gaussian_exemplars(jax.random.key(0), cls, jnp.zeros_like(cls),
                                          jnp.zeros(4000, bool)))
  assert np.mean(np.sum(x ** 2, -1)) == pytest.approx(1.0, abs=0.03)
  assert np.mean(np.sum(x[:, 0] * x[:, 1], -1)) == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize("loss_on", ["query", "all"])
def test_the_loss_reads_the_query_or_every_item(loss_on):
  """Logits right (+50) on the query's label only, uniform elsewhere: loss_on='query' costs ~0,
  loss_on='all' the mean over the S = N + 1 items, (S - 1)/S log L; accuracy is the query's."""
  task, c = _task(num_labels=8, num_context=4, burstiness=2, ways=2, probe_ways=2, probe_shots=2,
                  loss_on=loss_on)
  labels = jnp.asarray([[1, 2, 1, 2, 1], [3, 0, 0, 3, 0]])
  outputs = jnp.zeros((2, 9, 8)).at[:, -1].set(50.0 * jax.nn.one_hot(labels[:, -1], 8))
  loss, aux = task.loss(outputs, {"labels": labels})
  want = 0.0 if loss_on == "query" else 4 / 5 * np.log(8)
  assert float(loss) == pytest.approx(want, abs=1e-4) and float(aux["accuracy"]) == 1.0


def test_probe_intervals_are_of_the_mean_accuracy(reddy, monkeypatch):
  """Always answering label 0 is right on ~1/32 of 1000 ICL sequences: the 5-95% interval of 20
  bootstrap means of the accuracy is about 2 * 1.645 * sqrt(0.03 * 0.97 / 1000) = 0.018 wide
  around it. Averaging each sequence over the 20 resamples instead (the wrong axis) spreads
  3.3 * sqrt(0.03 * 0.97 / 20) = 0.13 (from 0): the interval of single sequences."""
  task, c, _ = reddy
  monkeypatch.setattr(task, "probe_kinds", lambda: ["icl"])
  probe = c.probe.copy_and_resolve_references()  # the module fixture's config stays as it is
  probe.num_prompts, probe.batch_size, probe.bootstrap = 1000, N_SEQ, 20
  r = task.probe(lambda t: jnp.zeros(t.shape[:2] + (task.num_labels,)), jax.random.key(1),
                 probe, step=0)["classification"]["probes"]["icl"]
  assert 0.01 < r["acc_full"] < 0.06
  assert r["acc_full_lo"] < r["acc_full"] < r["acc_full_hi"]
  assert r["acc_full_hi"] - r["acc_full_lo"] < 0.035


def test_the_uniform_in_weights_probe_runs_under_zipf_only():
  """iwl_uniform (every training class alike) differs from iwl only when classes are Zipf
  distributed: probed at zipf_alpha 1, not at 0 (where it would repeat iwl)."""
  zipf, _ = _task(zipf_alpha=1.0)
  flat, _ = _task(zipf_alpha=0.0)
  assert "iwl_uniform" in zipf.probe_kinds() and "iwl_uniform" not in flat.probe_kinds()
