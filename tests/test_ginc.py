"""GINC generator statistics, determinism and cache; prompts; a tiny training run."""
import json

import jax
import numpy as np

from research import train
from research.tasks import ginc


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
  prompts, labels = ginc.make_prompts(a, rng, [0, 1], n, k, 10)
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
