"""Log-spaced checkpoint keeping (issue 18 §1): train.keep_log_spaced saves and keeps the
checkpoints at steps 1, 2, 4, ... (rounded up to the steps_per_call grid) and every
checkpoint_every; keep_checkpoints bounds only the others; off, nothing changes."""
import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from research import checkpoint as ckpt_lib
from research import cli, config_check, train


def test_log_spaced_steps_round_up_to_the_grid():
  assert ckpt_lib.log_spaced_steps(100, 1) == [1, 2, 4, 8, 16, 32, 64]
  assert ckpt_lib.log_spaced_steps(100, 10) == [10, 20, 40, 70]
  assert ckpt_lib.log_spaced_steps(45, 10) == [10, 20, 40]
  assert ckpt_lib.log_spaced_steps(35, 10) == [10, 20, 35]  # 32 -> 40 > 35: the last step
  assert ckpt_lib.log_spaced_steps(2000, 50) == [50, 100, 150, 300, 550, 1050]
  tr = cli.load_config("configs/lm_ladder.py:tiny").train
  tr.num_steps, tr.steps_per_call, tr.checkpoint_every = 40, 2, 20
  assert not ckpt_lib.kept_steps(tr) and 40 not in ckpt_lib.kept_steps(tr)  # off by default
  tr.keep_log_spaced = True
  kept = ckpt_lib.kept_steps(tr)
  assert [s for s in range(1, 41) if s in kept] == [2, 4, 8, 16, 20, 32, 40]
  tr.checkpoint_every = 0
  kept = ckpt_lib.kept_steps(tr)
  assert [s for s in range(1, 41) if s in kept] == [2, 4, 8, 16, 32, 40]
  # A rule, not a set: the largest run the config allows, every step kept, at once.
  tr.num_steps, tr.checkpoint_every, tr.steps_per_call = 2**31 - 1, 1, 1
  kept = ckpt_lib.kept_steps(tr)
  assert len(kept.steps) == 32 and 2**31 - 2 in kept and 2**30 in kept


def _config(num_steps=40, keep=True):
  c = cli.load_config("configs/lm_ladder.py:tiny")  # synthetic tokens: no corpus to read
  c.train.compile_cache_dir, c.mesh.data = "", 1
  c.train.num_steps, c.train.steps_per_call, c.train.log_every = num_steps, 2, 10
  c.train.eval_every, c.train.checkpoint_every, c.train.keep_checkpoints = 0, 20, 1
  c.train.async_checkpoints = False
  c.train.keep_log_spaced = keep
  c.optim.decay_steps = 40  # the same schedule whatever num_steps: a resumed run can match
  c.probe.generate_tokens = 0
  return c


def _run(c, workdir):
  config_check.validate(c, 1)
  return train.train_and_evaluate(c, str(workdir), devices=jax.devices()[:1])


def _steps(workdir):
  return sorted(int(p.name) for p in (Path(workdir) / "checkpoints").iterdir() if p.name.isdigit())


def _params(workdir, step):
  import orbax.checkpoint as ocp
  state = ocp.StandardCheckpointer().restore(Path(workdir) / "checkpoints" / str(step) / "state")
  return [np.asarray(x) for x in jax.tree.leaves(state["params"])]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
  """One uninterrupted 40-step run keeping log-spaced checkpoints."""
  d = tmp_path_factory.mktemp("straight")
  _run(_config(), d)
  return d


def test_a_run_keeps_exactly_the_log_spaced_and_regular_steps(straight):
  assert _steps(straight) == [2, 4, 8, 16, 20, 32, 40]
  for s in (2, 32, 40):  # each a complete, checksummed checkpoint
    assert (straight / "checkpoints" / str(s) / ckpt_lib.CHECKSUMS).is_file()


def test_off_keeps_only_the_latest_n(tmp_path):
  """Negative control: the same run with the default (off) keeps keep_checkpoints=1."""
  _run(_config(keep=False), tmp_path)
  assert _steps(tmp_path) == [40]


def test_a_resumed_run_keeps_the_same_steps_and_ends_identical(tmp_path, straight):
  """Trained to 20, then extended to 40 in the same workdir: the kept set is the straight
  run's, the metrics and final parameters are bitwise equal."""
  _run(_config(num_steps=20), tmp_path)
  assert _steps(tmp_path) == [2, 4, 8, 16, 20]
  shutil.rmtree(tmp_path / "probes")
  (tmp_path / "summary.json").unlink()
  _run(_config(num_steps=40), tmp_path)
  assert _steps(tmp_path) == _steps(straight)
  rows = lambda d: [json.loads(l) for l in (d / "metrics.jsonl").read_text().splitlines()]
  losses = lambda d: [(r["step"], r.get("loss")) for r in rows(d) if "loss" in r]
  assert losses(tmp_path) == losses(straight) and len(losses(straight)) == 4
  for a, b in zip(_params(tmp_path, 40), _params(straight, 40)):
    np.testing.assert_array_equal(a, b)


def test_keep_steps_survive_later_saves_that_evict_the_others(tmp_path):
  """The Checkpointer alone: keep-latest-1 deletes every save but the kept steps and the
  newest one."""
  for keep, expected in (({1, 4}, [1, 4, 6]), ((), [6])):  # () : the negative control
    shutil.rmtree(tmp_path / "checkpoints", ignore_errors=True)
    ck = ckpt_lib.Checkpointer(tmp_path / "checkpoints", max_to_keep=1, async_save=False,
                               keep_steps=keep)
    for step in range(1, 7):
      ck.save(step, {"w": np.full((2,), step, np.float32)}, {"step": step})
    ck.close()
    assert _steps(tmp_path) == expected


def test_keep_latest_n_still_bounds_the_others_beside_kept_steps(tmp_path):
  """With kept steps the keep-latest-N policy still keeps N of the others, not 1:
  keep_checkpoints=2, steps 1-6 saved, step 1 kept: 1, and the latest two, 5 and 6."""
  ck = ckpt_lib.Checkpointer(tmp_path / "checkpoints", max_to_keep=2, async_save=False,
                             keep_steps={1})
  for step in range(1, 7):
    ck.save(step, {"w": np.full((2,), step, np.float32)}, {"step": step})
  ck.close()
  assert _steps(tmp_path) == [1, 5, 6]


def test_a_power_of_two_num_steps_is_itself_log_spaced():
  """Steps 1, 2, 4, ... up to and including num_steps (the docstring's <=)."""
  assert ckpt_lib.log_spaced_steps(64, 1) == [1, 2, 4, 8, 16, 32, 64]
  assert ckpt_lib.log_spaced_steps(32, 8) == [8, 16, 32]
