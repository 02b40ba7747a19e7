"""Property-based tests: any override either validates or fails with one line naming the field."""
import math
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import importlib

from configs import icl_regression
from research import config_check

ROOT = Path(__file__).resolve().parents[1]


# Every config file's tiny preset (resnet_images has none: its smallest is mnist).
CONFIGS = [("icl_regression", "tiny"), ("bursty_classification", "tiny"), ("arithmetic", "tiny"),
           ("grokking", "tiny"), ("induction", "tiny"), ("ginc", "tiny"), ("lm", "tiny"),
           ("text_classification", "tiny"), ("resnet_images", "mnist"), ("scaling_laws", "tiny")]


def _get_config(name, preset):
  return importlib.import_module(f"configs.{name}").get_config(preset)


def _fields(config):
  out = []

  def walk(node, prefix):
    for k, v in node.items():
      if hasattr(v, "items"):
        walk(v, prefix + (k,))
      elif k != "rules":
        out.append(prefix + (k,))
  walk(config, ())
  return out


FIELDS = {c: _fields(_get_config(*c)) for c in CONFIGS}
VALUES = st.one_of(st.integers(-3, 10 ** 6), st.floats(-1e3, 1e3), st.floats(),
                   st.booleans(), st.text(max_size=8),
                   st.sampled_from(["linear", "adamw", "rotary", "bfloat16", "sgd", "none"]))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_overrides_validate_or_fail_naming_a_field(data):
  which = data.draw(st.sampled_from(CONFIGS))
  overrides = data.draw(st.lists(st.tuples(st.sampled_from(FIELDS[which]), VALUES),
                                 min_size=1, max_size=3))
  c = _get_config(*which)
  for path, value in overrides:
    node = c
    for p in path[:-1]:
      node = node[p]
    try:
      node[path[-1]] = value
    except TypeError:  # the type-safe ConfigDict: the CLI turns this into one line
      continue
  try:
    config_check.validate(c, num_devices=8)
  except config_check.ConfigError as e:
    msg = str(e)
    assert "\n" not in msg and msg.startswith("config."), msg
  else:  # accepted: every number that validation accepted is finite
    for section in ("task", "model", "optim", "train", "probe"):
      for k, v in c[section].items():
        if isinstance(v, float):
          assert math.isfinite(v), f"config.{section}.{k}={v} was accepted"
  # Anything else (ValueError from deep inside, ZeroDivisionError, ...) fails the test.


def test_a_field_computed_from_a_bad_value_is_named_not_a_traceback():
  """Found by the test above (grokking tiny, model.width=0): init_scale = width ** -0.5 is
  computed when read, and validation read it before checking the width, so a user got a
  ZeroDivisionError traceback. Control: a valid width validates."""
  import pytest
  c = _get_config("grokking", "tiny")
  c.model.width = 0
  with pytest.raises(config_check.ConfigError, match=r"^config\.init_scale is computed from "
                     r"other fields .*0\.0 cannot be raised to a negative power"):
    config_check.validate(c, num_devices=8)
  c.model.width = 64
  config_check.validate(c, num_devices=8)
  assert c.init_scale == 64 ** -0.5 / 0.02


NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10)


@settings(max_examples=4, deadline=None)
@given(st.sampled_from(["model", "task", "train", "optim", "nosuch"]), NAMES)
def test_command_line_unknown_fields_fail_in_one_line(section, name):
  if section != "nosuch" and name in icl_regression.get_config("tiny")[section]:
    return
  proc = subprocess.run(
      [sys.executable, "-m", "research.main", "--config=configs/icl_regression.py:tiny",
       "--workdir=/nonexistent/never_created", f"--config.{section}.{name}=1"],
      cwd=ROOT, capture_output=True, text=True, timeout=120,
      env=dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1"))
  assert proc.returncode == 2
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
  assert not Path("/nonexistent/never_created").exists()
