"""float32 means float32 on every backend: train.matmul_precision (auto: HIGHEST for float32
compute). At JAX's default precision a float32 matmul is one bf16 pass on a TPU and TF32 on an
NVIDIA GPU, so a science preset run on a Colab TPU computed something else than on a laptop."""
import re

import jax
import pytest

from research import config_check, experiment, hardware, metrics, train
from research.experiment import Experiment
from run_fixtures import tiny_regression as _tiny


def _dot_precisions(text: str) -> set[str]:
  return set(re.findall(r"dot_general.*precision = \[(\w+), \w+\]", text))


@pytest.mark.parametrize("dtype,chosen,resolved", [
    ("float32", "auto", "highest"), ("bfloat16", "auto", "default"),
    ("float32", "default", "default"), ("bfloat16", "highest", "highest")])
def test_auto_is_highest_for_float32_compute_only(dtype, chosen, resolved):
  c = _tiny(**{"model.dtype": dtype, "train.matmul_precision": chosen})
  assert experiment.matmul_precision(c) == resolved



def test_a_config_without_the_field_means_auto():
  """A config without train.matmul_precision (a notebook's own ConfigDict) or without
  model.dtype resolves as configs/common.py's defaults, auto and float32: highest."""
  import ml_collections
  from configs import common
  assert common.train()["matmul_precision"] == "auto"
  for model, resolved in (({"dtype": "float32"}, "highest"), ({"dtype": "bfloat16"}, "default"),
                          ({}, "highest")):
    c = ml_collections.ConfigDict({"train": {}, "model": model})
    assert experiment.matmul_precision(c) == resolved

def test_an_unknown_precision_is_refused():
  c = _tiny(**{"train.matmul_precision": "fast"})
  with pytest.raises(config_check.ConfigError, match="matmul_precision"):
    config_check.validate(c, 1)


@pytest.mark.parametrize("dtype,want", [("float32", {"HIGHEST"}), ("bfloat16", {"DEFAULT"})])
def test_every_matmul_of_the_train_step_and_predict_runs_at_it(dtype, want):
  """The traced programs: each dot_general of the multi-step train program (the task's
  sampling too: the regression targets y = x w) and of predict carries the precision (the
  bf16 run is the control: XLA's default, as before)."""
  exp = Experiment(_tiny(**{"model.dtype": dtype}), jax.devices()[:1])
  step = exp.multi_step_jit(1).lower(exp.abstract_state, exp.root_key).as_text()
  assert _dot_precisions(step) == want
  params = jax.tree.map(lambda s: jax.numpy.zeros(s.shape, s.dtype), exp.abstract_state.params)
  predict = exp._apply.lower(params, exp._dummy_inputs).as_text()
  assert _dot_precisions(predict) == want


def test_probes_that_apply_the_model_themselves_run_at_it(monkeypatch, tmp_path):
  """A probe may call exp.model.apply directly (attention maps, head ablation): it is traced
  inside the run's precision."""
  seen = []
  real = train.run_probes

  def spy(exp, state, workdir):
    monkeypatch.setattr(exp.task, "probe", lambda *a, **k: (
        seen.append(jax.config.jax_default_matmul_precision), {})[1])
    return real(exp, state, workdir)
  monkeypatch.setattr(train, "run_probes", spy)
  before = jax.config.jax_default_matmul_precision  # None, or JAX_DEFAULT_MATMUL_PRECISION's
  train.train_and_evaluate(_tiny(), str(tmp_path / "run"), devices=jax.devices()[:1])
  assert seen == ["highest"]
  assert jax.config.jax_default_matmul_precision == before  # restored after the probes


def test_periodic_evals_and_checkpoint_probes_run_at_it(monkeypatch):
  import numpy as np
  from research import probe_checkpoints
  exp = Experiment(_tiny(), jax.devices()[:1])
  seen = []
  record = lambda *a, **k: seen.append(jax.config.jax_default_matmul_precision)
  monkeypatch.setattr(exp.task, "evaluate", lambda *a: (record(), {"x": 1.0})[1], raising=False)

  class Writer:
    def write(self, step, row):
      pass
  train.periodic_eval(exp, exp.abstract_state, 10, Writer())
  monkeypatch.setattr(exp.task, "eval_losses", lambda *a: (record(), np.ones((2, 4)))[1],
                      raising=False)
  monkeypatch.setattr(probe_checkpoints, "head_scores", lambda *a: (record(), {})[1])
  probe_checkpoints.probe_checkpoint(exp, None, num_windows=2)
  assert seen == ["highest"] * 3


def test_on_cpu_highest_is_what_default_computed():
  """XLA:CPU computes float32 matmuls in float32 either way: runs on this host (the gallery,
  the tests) are unchanged by the new default."""
  losses = {}
  for p in ("default", "highest"):
    exp = Experiment(_tiny(**{"train.matmul_precision": p}), jax.devices()[:1])
    state = exp.init_state()
    _, m = exp.multi_step_fn(5)(state)
    losses[p] = jax.device_get(m["loss"]).tolist()
  assert losses["default"] == losses["highest"]


@pytest.mark.parametrize("name,fp32_highest", [
    ("TPU v5e", 197e12 / 6), ("TPU v4", 275e12 / 6), ("NVIDIA A100", 19.5e12),
    ("NVIDIA H100", 67e12), ("NVIDIA H200", 67e12)])
def test_mfu_is_counted_against_the_rate_of_the_precision(name, fp32_highest):
  """At HIGHEST a TPU runs six bf16 passes, a GPU its non-tensor FP32 units: MFU against the
  default precision's rate (one bf16 pass, TF32) would read 6x / 7-8x too low."""
  chip = hardware.chip_named(name)
  assert chip.peak_flops("float32", "highest") == pytest.approx(fp32_highest)
  assert chip.peak_flops("float32") == chip.fp32_flops  # default: as before
  assert chip.peak_flops("bfloat16", "highest") == chip.bf16_flops  # bf16 is one pass anyway


def test_the_device_peak_follows_the_precision(monkeypatch):
  class FakeTPU:
    platform, device_kind = "tpu", "TPU v5 lite"
  monkeypatch.setattr(jax, "devices", lambda *a: [FakeTPU()])
  assert metrics.device_peak_flops("float32")[0] == 197e12
  peak, source = metrics.device_peak_flops("float32", precision="highest")
  assert peak == pytest.approx(197e12 / 6) and "precision highest" in source
