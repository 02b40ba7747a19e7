"""Config validation: bad input gives one line naming the field, exit 2, no traceback."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from configs import icl_regression
from research import config_check

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("preset", ["tiny", "cpu", "paper", "raventos"])
def test_presets_validate(preset):
  config_check.validate(icl_regression.get_config(preset), num_devices=8)


@pytest.mark.parametrize("section,field,value,match", [
    ("model", "name", "rnn", "config.model.name='rnn' is not valid; choose one of: "),
    ("task", "function", "cubic", "config.task.function='cubic' is not valid; choose one of: linear"),
    ("optim", "name", "adamax", "config.optim.name='adamax' is not valid; choose one of: adam, adamw, sgd"),
    ("optim", "schedule", "step", "config.optim.schedule='step'"),
    ("model", "positions", "alibi", "choose one of: learned, rotary, none"),
    ("model", "width", 33, "not divisible by config.model.num_heads"),
    ("train", "log_every", 15, "config.train.log_every=15 must be a multiple"),
    ("train", "batch_size", 12, "config.train.batch_size=12 is not divisible"),
    ("mesh", "data", 3, "config.mesh"),
    ("task", "n_points", 1, "config.task.n_points=1"),
])
def test_invalid_fields(section, field, value, match):
  c = icl_regression.get_config("tiny")
  c[section][field] = value
  with pytest.raises(config_check.ConfigError, match=match.replace("(", r"\(")):
    config_check.validate(c, num_devices=8)


@pytest.mark.parametrize("key,hint", [
    ("train.seed", "did you mean 'seed'?"),          # the name exists in another section
    ("model.widht", "did you mean 'model.width'?"),  # a close spelling
])
def test_unknown_field_hint(key, hint):
  from research import cli
  with pytest.raises(cli.InputError, match=re.escape(hint)):
    cli.apply_overrides(icl_regression.get_config("tiny"), {key: "1"}, text=True)


@pytest.mark.parametrize("seed", [-1, 2 ** 32])
def test_seed_outside_uint32_is_refused(seed):
  c = icl_regression.get_config("tiny")
  c.seed = seed
  with pytest.raises(config_check.ConfigError, match=rf"config.seed={seed} must be an integer"):
    config_check.validate(c, num_devices=8)
  c.seed = 2 ** 32 - 1  # the largest valid one
  config_check.validate(c, num_devices=8)


def _main(*overrides, tmp_path):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  return subprocess.run(
      [sys.executable, "-m", "research.main", "--config=configs/icl_regression.py:tiny",
       f"--workdir={tmp_path / 'run'}", *overrides],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("override,needle", [
    ("--config.model.widht=3", "unknown config field 'widht'"),
    ("--config.model.width=abc", "--config.model.width=abc"),
    ("--config.model.name=lstmx", "config.model.name='lstmx' is not valid"),
    ("--config.mesh.data=3", "config.mesh"),
])
def test_command_line_errors_are_one_line(override, needle, tmp_path):
  proc = _main(override, tmp_path=tmp_path)
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1 and needle in lines[0], proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "run").exists(), "a failed config must not create the workdir"
