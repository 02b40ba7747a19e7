"""GINC generator statistics, determinism and cache; prompts; a tiny training run."""
import json

import jax
import numpy as np

from research import train
from research.tasks import ginc, ginc_bayes


def _cfg(tmp_path):
  from configs import ginc as cfg_mod
  c = cfg_mod.get_config("tiny")
  c.mesh.data = 1
  c.train.compile_cache_dir = ""
  c.task.cache_dir = str(tmp_path / "cache")
  return c


def test_generator_statistics(tmp_path):
  c = _cfg(tmp_path)
  c.task.n_docs, c.task.doc_len = 64, 512
  d = ginc.generate(c.task, 0)
  e, p, v = c.task.n_entities, c.task.n_properties, c.task.vocab_size
  mem = d["memory"]
  assert mem.shape == (e, p) and (mem[:, 0] == ginc.DELIMITER).all() and (mem[:, 1:] >= 1).all()
  assert (mem < v).all()
  for mat in [d["entity_trans"], *d["property_trans"]]:
    np.testing.assert_allclose(mat.sum(1), 1.0, rtol=1e-9)
    assert (mat >= 0).all()
  # Value identity: entities persist with probability >= value_identity_coeff.
  assert (np.diag(d["entity_trans"]) >= c.task.value_identity_coeff - 1e-9).all()
  # Low transition temperature: property transitions are near-deterministic.
  assert d["property_trans"].max(-1).mean() > 0.5
  assert d["property_trans"].shape[0] == c.task.n_concepts + c.task.n_ood_concepts
  np.testing.assert_allclose(d["start"].sum(1), 1.0)
  tok = d["tokens"]
  assert tok.shape == (64, 512) and tok.min() >= 0 and tok.max() < v
  assert set(np.unique(tok)) <= set(np.unique(mem))  # every token is a memory cell
  assert 0.02 < (tok == ginc.DELIMITER).mean() < 0.5  # delimiter property is visited
  assert set(d["doc_concept"]) <= set(range(c.task.n_concepts))  # pretraining: ID only
  # Deterministic in the seed; another seed gives another family.
  np.testing.assert_array_equal(ginc.generate(c.task, 0)["tokens"], tok)
  assert not np.array_equal(ginc.generate(c.task, 1)["memory"], mem)


def test_cache_roundtrip_and_prompts(tmp_path):
  c = _cfg(tmp_path)
  a = ginc.load_or_generate(c.task, 3)
  files = list((tmp_path / "cache").glob("ginc_*.npz"))
  assert len(files) == 1
  b = ginc.load_or_generate(c.task, 3)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  rng = np.random.default_rng(0)
  n, k = 3, 4
  prompts, labels = ginc.make_prompts(a, rng, [0, 1], n, k, 10, "argmax")
  for pr, y in zip(prompts, labels):
    assert len(pr) == n * (k + 1) + k - 1
    assert [pr[(k + 1) * j + k] for j in range(n)] == [ginc.DELIMITER] * n
    assert y in a["memory"]
    # Each example reads one entity's row of the memory along the same property path.
    rows = [pr[(k + 1) * j:(k + 1) * j + k] for j in range(n)]
    for r in rows:
      assert any(all(a["memory"][ent, :].tolist().count(t) for t in r) for ent in range(len(a["memory"])))


def test_tiny_config_trains_and_probes(tmp_path):
  c = _cfg(tmp_path)
  summary = train.train_and_evaluate(c, str(tmp_path / "run"), devices=jax.devices()[:1])
  assert summary["final_step"] == c.train.num_steps
  res = json.loads((tmp_path / "run" / "probes" / "ginc.json").read_text())
  assert set(res["accuracy"]) == {"id", "ood"}
  curve = res["accuracy"]["id"]["3"]
  assert curve["n"] == [0, 1, 2] and all(0 <= x <= 1 for x in curve["accuracy"])
  # the mixture's accuracy and the model's over the prompts where its posterior exists
  assert all(0 <= d <= res["ideal_num_prompts"] and (a is None) == (m is None) == (d == 0)
             for a, m, d in zip(curve["mixture"], curve["model_on_mixture_prompts"],
                                curve["mixture_prompts"]))
  assert (tmp_path / "run" / "figures" / "ginc.png").exists()
  # Windows are drawn from the corpus by index: the same key gives the same batch.
  task = ginc.GincTask(c.task, c.seed)
  x = np.asarray(task.sample(jax.random.key(0), 0, 4)["tokens"])
  np.testing.assert_array_equal(x, np.asarray(task.sample(jax.random.key(0), 0, 4)["tokens"]))
  corpus = task.data["tokens"]
  assert all(any(np.array_equal(row, corpus[d, o:o + len(row)]) for d in range(len(corpus))
                 for o in range(corpus.shape[1] - len(row) + 1)) for row in x)


def test_presets_validate_and_bad_fields_fail():
  import pytest

  from configs import ginc as cfg_mod
  from research import config_check
  for preset in ("tiny", "cpu", "paper"):
    config_check.validate(cfg_mod.get_config(preset), num_devices=8)
  bad = cfg_mod.get_config("tiny")
  bad.task.value_identity_coeff = 1.5
  with pytest.raises(config_check.ConfigError, match="value_identity_coeff"):
    config_check.validate(bad, num_devices=8)


def test_sampled_prompts_labels_and_format(tmp_path):
  """Xie's released prompts: sampled walks from one start property; the label is the
  concept's most likely next token given the test input (not a sampled token)."""
  d = ginc.load_or_generate(_cfg(tmp_path).task, 0)
  n, k = 4, 5
  prompts, labels = ginc.make_prompts(d, np.random.default_rng(1), [2], n, k, 64, "sample")
  mem = d["memory"]
  for pr, y in zip(prompts, labels):
    assert len(pr) == n * (k + 1) + k - 1
    assert [pr[(k + 1) * j + k] for j in range(n)] == [ginc.DELIMITER] * n
    # every example starts in one property column of the memory: the shared s_1
    firsts = [pr[(k + 1) * j] for j in range(n + 1)]
    assert any(all(t in mem[:, s1] for t in firsts) for s1 in range(1, mem.shape[1]))
    # the label is concept 2's argmax prediction from the test input x alone
    x = np.asarray(pr[-(k - 1):])[None]
    cols = [s1 for s1 in range(1, mem.shape[1]) if pr[-(k - 1)] in mem[:, s1]]
    preds = set()
    for s1 in cols:
      start = np.zeros((1, *mem.shape))
      start[0, :, s1] = 1 / mem.shape[0]
      preds.add(int(ginc_bayes.bayes_next_token(d, x, np.array([k - 1]), [2], start).argmax()))
    assert int(y) in preds
  # The examples carry the concept: the ideal in-context learner's accuracy rises with n.
  acc = {}
  for n in (0, 4):
    prompts, labels = ginc.make_prompts(d, np.random.default_rng(2), list(range(5)), n, 3, 200)
    acc[n] = (ginc_bayes.ideal_next_token(d, prompts, n, 3, range(5)).argmax(-1) == labels).mean()
  assert acc[4] >= 0.95 and acc[4] > acc[0] + 0.1, acc


def test_forward_algorithm_matches_enumeration():
  """bayes_next_token against a brute-force sum over every hidden path of a tiny HMM."""
  import itertools
  rng = np.random.default_rng(0)
  e, p, v, c = 2, 3, 4, 2
  mem = rng.integers(1, v, (e, p))
  mem[:, 0] = ginc.DELIMITER
  mem[1, 1] = mem[0, 2]  # two states share a word: the hidden path is ambiguous
  ent = rng.dirichlet(np.ones(e), e)
  prop = rng.dirichlet(np.ones(p), (c, p))
  start = rng.dirichlet(np.ones(e * p), c)
  data = {"memory": mem, "entity_trans": ent, "property_trans": prop, "start": start}
  seq = np.array([[mem[0, 1], mem[1, 1], mem[0, 0]]])
  pred = ginc_bayes.bayes_next_token(data, seq, np.array([3]), [0, 1])[0]
  states = list(itertools.product(range(e), range(p)))
  joint = np.zeros(v)  # sum over concepts and paths of P(concept, path, seq, next token)
  for ci in range(c):
    for path in itertools.product(states, repeat=4):
      pr = 0.5 * start[ci, path[0][0] * p + path[0][1]]
      for (e0, p0), (e1, p1) in zip(path, path[1:]):
        pr *= ent[e0, e1] * prop[ci, p0, p1]
      if all(mem[path[t]] == seq[0, t] for t in range(3)):
        joint[mem[path[3]]] += pr
  assert not joint[len(pred):].any()  # the predictive spans every word the memory emits
  np.testing.assert_allclose(pred, (joint / joint.sum())[:len(pred)], rtol=1e-9)


def test_a_prompt_impossible_under_every_concept_has_no_posterior():
  """Xie's transitions have exact zeros: a prefix no concept can emit gets an all-zero
  predictive (not a guess that would count as a wrong answer) and `defined` is False."""
  mem = np.array([[ginc.DELIMITER, 1, 2]])  # one entity, three properties, distinct words
  prop = np.array([[[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]],
                   [[0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [1.0, 0.0, 0.0]]])  # 0 -> 2 never
  data = {"memory": mem, "entity_trans": np.ones((1, 1)), "property_trans": prop,
          "start": np.full((2, 3), 1 / 3)}
  seqs = np.array([[0, 1], [0, 2]])  # '/' then word 1: possible; '/' then word 2: not
  pred = ginc_bayes.bayes_next_token(data, seqs, np.array([2, 2]), [0, 1])
  assert ginc_bayes.defined(pred).tolist() == [True, False]
  np.testing.assert_allclose(pred[0].sum(), 1.0)
  assert not pred[1].any()


def test_xie_models_per_preset_and_unknown_names(tmp_path):
  """The paper preset trains Xie's sizes (not the cpu ones); a wrong name is an error."""
  import pytest

  from configs import ginc as cfg_mod
  from experiments import xie2021
  from research import config_check
  paper = xie2021.models_for("paper")
  assert sorted(m.get("num_layers") for n, m in paper.items() if n != "lstm") == [4, 12, 16]
  assert {m["width"] for m in paper.values()} == {768} and paper["lstm"]["lstm_layers"] == 6
  for overrides in paper.values():
    c = cfg_mod.get_config("paper")
    c.model.update(overrides)
    config_check.validate(c, num_devices=8)
  assert xie2021.models_for("cpu") is xie2021.MODELS
  with pytest.raises(config_check.ConfigError, match="unknown model names"):
    xie2021.run("tiny", tmp_path, models=["transformer_16l"])


def test_shots_that_exactly_fill_the_context_are_probed():
  """10 examples of 3 tokens (4 with the delimiter) and a 2-token query fill 42 exactly: probed
  (a mutation audit's '<' dropped the longest n unseen)."""
  from types import SimpleNamespace
  probe = SimpleNamespace(num_examples=[8, 10, 11])
  assert ginc.GincTask.shots_for(SimpleNamespace(seq_len=42), 3, probe) == [8, 10]


def test_ideal_learner_multiplies_the_examples_likelihoods():
  """ideal_next_token is Bayes over (concept, s_1): the prior times the product of every
  example's likelihood and the test input's. Reference: each row's likelihood from the forward
  algorithm (checked by enumeration above), one row at a time. Averaging the examples'
  log-likelihoods (a tempered posterior) instead gave the same argmax here and there but other
  probabilities."""
  rng = np.random.default_rng(5)
  e, p, v, c, n, k = 2, 3, 5, 3, 3, 3
  mem = rng.integers(1, v, (e, p))
  mem[:, 0] = ginc.DELIMITER
  data = {"memory": mem, "entity_trans": rng.dirichlet(np.ones(e), e),
          "property_trans": rng.dirichlet(np.ones(p), (c, p)), "start": np.full((c, e * p), 1 / 6)}
  prompts, _ = ginc.make_prompts(data, rng, list(range(c)), n, k, 6)
  got = ginc_bayes.ideal_next_token(data, prompts, n, k, range(c))
  for row, pr in zip(got, prompts):
    rows = [pr[(k + 1) * j:(k + 1) * j + k] for j in range(n)] + [pr[-(k - 1):]]
    joint = 0.0
    for s1 in range(1, p):
      start = np.zeros((c, e, p))
      start[:, :, s1] = 1 / e
      logw = sum(ginc_bayes.forward(data, np.array([r]), range(c), start)[0][0] for r in rows)
      pred = ginc_bayes.forward(data, np.array([rows[-1]]), range(c), start)[1][0]
      joint = joint + (np.exp(logw)[:, None] * pred).sum(0)
    np.testing.assert_allclose(row, joint / joint.sum(), rtol=1e-9)


# --- the cache key and the probe's mixture accuracy ---------------------------------------
def test_every_generator_field_keys_the_cache(tmp_path):
  """Two corpora that differ in one generator field (here doc_len, then n_docs) are two cache
  files: a field left out of the key would hand the first run's corpus to the second."""
  c = _cfg(tmp_path)
  a = ginc.load_or_generate(c.task, 0)
  for field, value in (("doc_len", 64), ("n_docs", 8)):
    c.task[field] = value
    b = ginc.load_or_generate(c.task, 0)
    assert b["tokens"].shape == (c.task.n_docs, c.task.doc_len), field
  assert len(list((tmp_path / "cache").glob("ginc_*.npz"))) == 3
  assert a["tokens"].shape == (16, 128)


def test_mixture_accuracy_is_over_the_prompts_where_it_is_defined(monkeypatch):
  """4 prompts; the mixture's posterior is right on the 2 where it is defined and undefined
  (all zeros) on the other 2: mixture accuracy 1.0 over mixture_prompts = 2 (counting the
  undefined ones as wrong reads 0.5), and the model's on the same 2 prompts."""
  v, labels = 5, np.array([1, 2, 3, 4], np.int32)
  prompts = [[1, 2, 3], [2, 3, 4], [3, 4, 1], [4, 1, 2]]
  monkeypatch.setattr(ginc, "make_prompts", lambda *a, **k: (prompts, labels))
  monkeypatch.setattr(ginc, "ideal_next_token", lambda data, pr, n, k, c: np.eye(v)[labels])
  mix = np.eye(v)[labels] * np.array([1.0, 0.0, 1.0, 0.0])[:, None]
  monkeypatch.setattr(ginc, "bayes_next_token", lambda *a, **k: mix)
  monkeypatch.setattr(ginc, "_IDEAL_CACHE", {})
  task = object.__new__(ginc.GincTask)
  task.data, task.seq_len, task.vocab, task.prompt_mode = {}, 16, v, "sample"
  model_right = np.array([True, True, False, False])  # right on prompts 0 and 1 only

  def predict(toks):
    guess = np.where(model_right, labels, (labels + 1) % v)
    logits = np.zeros(toks.shape + (v,))
    logits[np.arange(4), 2, guess] = 1.0  # the label is read after the last prompt token
    return logits
  out = task.accuracy(predict, None, [0], 1, 2, 4, 4, ideal_over=[0])
  assert out["model"] == 0.5 and out["ideal"] == 1.0
  assert out["mixture"] == 1.0 and out["mixture_prompts"] == 2
  assert out["model_on_mixture_prompts"] == 0.5


def test_posterior_mix_of_long_prompts_does_not_underflow():
  """Log-likelihoods of a long prompt are far below exp's range (-1000 and -1001 nats): the
  posterior is still softmax(logw) = (0.731, 0.269), a defined mixture, not 0 / 0."""
  pred = np.array([[[1.0, 0.0], [0.0, 1.0]]])
  mix = ginc_bayes.posterior_mix(np.array([[-1000.0, -1001.0]]), pred)
  np.testing.assert_allclose(mix, [[1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1))]],
                             rtol=1e-12)
  assert ginc_bayes.defined(mix).tolist() == [True]


def test_start_distribution_follows_start_temp(tmp_path):
  """start = softmax((u - 1/2) / start_temp), u ~ U(0, 1): at start_temp 10 (near uniform) any
  two states' probabilities differ by at most a factor exp(1/10); at 0.1 by far more."""
  c = _cfg(tmp_path)
  c.task.n_docs, c.task.doc_len = 4, 8
  ratio = lambda d: (d["start"].max(1) / d["start"].min(1)).max()
  assert c.task.start_temp == 10.0 and c.task.trans_temp != c.task.start_temp
  assert ratio(ginc.generate(c.task, 0)) <= np.exp(1 / 10) + 1e-12
  c.task.start_temp = 0.1
  assert ratio(ginc.generate(c.task, 0)) > 100
