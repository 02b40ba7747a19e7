"""What the research.aot tests share (tests/test_aot.py, tests/test_aot_comms.py): the skip
without libtpu, a small LM ladder config, the v5e:2x2 target and its data-parallel plan."""
import importlib.util

import pytest

from configs import lm_ladder
from research import aot, cli

needs_libtpu = pytest.mark.skipif(importlib.util.find_spec("libtpu") is None,
                                  reason="libtpu is in the dev extra: pip install -e '.[dev]'")


def config(**overrides):
  c = lm_ladder.get_config("tiny")
  base = {"model.width": 128, "model.num_heads": 4, "task.seq_len": 128,
          "train.steps_per_call": 1, "train.log_every": 1, "train.eval_every": 0,
          "train.checkpoint_every": 0}
  return cli.apply_overrides(c, base | overrides)


@pytest.fixture(scope="module")
def v5e():
  return aot.topology_target("v5e:2x2")


@pytest.fixture(scope="module")
def dp_plan(v5e):
  return aot.plan(config(), v5e)
