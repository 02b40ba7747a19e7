"""A sweep's new points read the data its kept runs trained on (workdir_vocabulary.check_peers):
a trial added a seed after editing its CSV and the new run trained on the new file, exit 0,
pooled by research.results with the old seeds."""
import csv
from pathlib import Path

import jax
import numpy as np
import pytest

from research import sweep, workdir


def _csv(path: Path, flip: bool = False) -> str:
  rng = np.random.default_rng(0)
  with path.open("w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["text", "label"])
    for i in range(80):
      lab = ["neg", "pos"][(i % 2) ^ flip]  # flipped: the same texts and label set
      w.writerow([f"text {i} was {['bad', 'good'][i % 2]} {rng.choice(['ok', 'long'])}", lab])
  return str(path)


@pytest.fixture
def config(tmp_path):
  from configs import text_classification as tcc
  c = tcc.get_config("tiny")
  c.mesh.data, c.train.compile_cache_dir = 1, ""
  c.task.path = _csv(tmp_path / "a.csv")
  c.train.num_steps = 20
  return c


def _rows(res):
  return {name: row["status"] for name, row in res.rows.items()}


def test_a_new_point_on_edited_data_is_refused_and_one_on_the_same_data_trains(config, tmp_path):
  wd = tmp_path / "sweep"
  run = lambda seeds, **kw: sweep.run_sweep(config, [{"seed": s} for s in seeds], wd,
                                            devices=jax.devices()[:1], **kw)
  run([0, 1])
  _csv(tmp_path / "a.csv", flip=True)
  res = run([0, 1, 2])
  assert _rows(res) == {"000_seed=0": "done", "001_seed=1": "done", "002_seed=2": "failed"}
  error = res.rows["002_seed=2"]["error"]
  assert "is not the data the sweep's run 000_seed=0 trained on (sha256 " in error, error
  assert "Restore the data, or sweep the new data in a new --workdir" in error
  assert res.rows["002_seed=2"]["refused"]  # as given: the sweep's exit is 2
  assert not (wd / "runs" / "002_seed=2" / workdir.CONFIG).exists()
  # control: the data restored, the same point trains with its sweep
  _csv(tmp_path / "a.csv")
  assert _rows(run([0, 1, 2]))["002_seed=2"] == "done"


def test_new_points_of_an_ensemble_are_refused_the_same_and_other_task_settings_pass(config,
                                                                                    tmp_path):
  """Two new learning rates train as one vmapped ensemble: both refused, without the ensemble
  refusal's advice to train them one by one (which meets the same refusal)."""
  wd = tmp_path / "sweep"
  run = lambda points: sweep.run_sweep(config, points, wd, devices=jax.devices()[:1])
  lrs = lambda *v: [{"optim.learning_rate": x} for x in v]
  run(lrs(1e-3))
  _csv(tmp_path / "a.csv", flip=True)
  res = run(lrs(1e-3, 2e-3, 3e-3))
  assert sorted(_rows(res).values()) == ["done", "failed", "failed"]
  for name, row in res.rows.items():
    if row["status"] == "failed":
      assert "is not the data the sweep's run 000_" in row["error"], row["error"]
      assert "--ensemble=off" not in row["error"]
  # Other task settings on the same file still read that file: its bytes must match (a
  # review: a new test_fraction on an edited CSV trained without a word). Control: the file
  # as the kept run read it.
  _csv(tmp_path / "a.csv")
  wd = tmp_path / "other"
  run = lambda points: sweep.run_sweep(config, points, wd, devices=jax.devices()[:1])
  run([{"task.test_fraction": 0.2}])
  assert set(_rows(run([{"task.test_fraction": 0.2}, {"task.test_fraction": 0.25}])).values()) == {"done"}
  _csv(tmp_path / "a.csv", flip=True)
  rows = _rows(run([{"task.test_fraction": 0.2}, {"task.test_fraction": 0.25},
                    {"task.test_fraction": 0.3}]))
  assert rows["002_test_fraction=0.3"] == "failed", rows


def test_each_kept_runs_record_is_read_once_until_it_changes(tmp_path, monkeypatch):
  """Every new point checks every kept run (a review: reads grew with the square of the
  sweep); a file rewritten since is read again (control)."""
  import json
  import os
  from research import workdir_vocabulary as wv
  path = tmp_path / "vocabulary.json"
  path.write_text(json.dumps({"data": {"sha256": "a" * 64}}))
  reads = []
  real = wv.read_json
  monkeypatch.setattr(wv, "read_json", lambda p: reads.append(p) or real(p))
  for _ in range(3):
    assert wv._data_record(path) == {"sha256": "a" * 64}
  assert len(reads) == 1
  path.write_text(json.dumps({"data": {"sha256": "b" * 64}}))
  os.utime(path, ns=(1, 1))  # another version, whatever the clock's resolution
  assert wv._data_record(path) == {"sha256": "b" * 64} and len(reads) == 2


def test_points_that_choose_other_documents_of_a_pathless_corpus_are_other_data(tmp_path):
  """A stdlib corpus records no path: a review found every new point compared with every kept
  one by its SHA-256 (None == None), so a max_documents axis was refused as an edited file.
  Control: the same settings and the same documents pass; one file named as a.csv and ./a.csv
  is one file."""
  from configs import lm as lmc
  from research import tasks, workdir_vocabulary as wv

  def cfg(n):
    c = lmc.get_config("tiny")
    c.task.source, c.task.max_documents = "stdlib", n
    return c

  peer = tmp_path / "000_max_documents=5"
  peer.mkdir()
  wv.record(peer, tasks.build(cfg(5).task, 0), 0)
  (peer / workdir.CONFIG).write_text(workdir.config_json(cfg(5)))
  for n in (10, 5):
    new = tmp_path / f"new_{n}"
    new.mkdir()
    wv.check_peers(new, tasks.build(cfg(n).task, 0), cfg(n), [peer])
  assert wv._same_file("a.csv", "./a.csv") and not wv._same_file(None, None)
