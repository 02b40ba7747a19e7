"""A pod preset's config.topology (the slice its mesh, remat and microbatches were planned
for) against the devices a run has: research/hardware.py's planned_topology_warning, the one
check research.main, research.sweep and research.aot log. No TPU here: fake devices
(SimpleNamespace with the platform, device_kind and coords jax's TPU devices have)."""
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from research import hardware

ROOT = Path(__file__).resolve().parents[1]


def tpus(kind: str, *shape: int) -> list:
  """One fake device per chip of a slice of `shape` (coords x, y, z as libtpu lists them)."""
  x, y, z = (*shape, 1)[:3]
  return [SimpleNamespace(platform="tpu", device_kind=kind, coords=(i, j, k), id=n)
          for n, (i, j, k) in enumerate((i, j, k) for k in range(z) for j in range(y)
                                        for i in range(x))]


V5E_16 = tpus("TPU v5 lite", 4, 4)


def test_a_v5p_layout_on_a_v5e_slice_names_both_and_the_fix():
  """Plain 1b is laid out for v5p:4x4x4 (64 chips); on a v5e-16 it warns with both slices
  and the two fixes: the preset for this slice, or a plan for it with research.aot."""
  said = hardware.planned_topology_warning("v5p:4x4x4", V5E_16, preset="1b")
  assert said == (
      "this config's layout (mesh, remat, microbatches) was planned for v5p:4x4x4 "
      "(config.topology: 64 x TPU v5p), not for the 16 TPU v5 lite devices it has (TPU v5e, "
      "v5e:4x4), so its memory and speed are unchecked here; use the preset planned for this "
      "slice (1b@v5e:4x4), or plan this layout for it first with python -m research.aot "
      "--config=... --topology=v5e:4x4")


def test_the_same_chip_with_another_count_warns_and_the_planned_slice_does_not():
  smaller = hardware.planned_topology_warning("v5p:4x4x4", tpus("TPU v5", 2, 2, 4),
                                              preset="1b@v5p:4x4x4")
  assert "not for the 16 TPU v5 devices it has (TPU v5p, v5p:2x2x4)" in smaller
  assert "(1b@v5p:2x2x4)" in smaller
  # the controls: the slice each was planned for
  assert hardware.planned_topology_warning("v5p:4x4x4", tpus("TPU v5", 4, 4, 4)) is None
  assert hardware.planned_topology_warning("v5e:4x4", V5E_16, preset="1b@v5e:4x4") is None


def test_devices_without_coords_are_named_by_count_and_kind():
  bare = [SimpleNamespace(platform="tpu", device_kind="TPU v6 lite") for _ in range(8)]
  said = hardware.planned_topology_warning("v5e:4x4", bare)
  assert "not for the 8 TPU v6 lite devices it has (TPU v6e)" in said
  assert "(SIZE@CHIP:SHAPE)" in said and "--topology=CHIP:SHAPE" in said


@pytest.mark.parametrize("devices", [
    [SimpleNamespace(platform="cpu", device_kind="cpu", id=i) for i in range(8)],
    [SimpleNamespace(platform="gpu", device_kind="NVIDIA H100 80GB HBM3", id=0)]])
def test_cpu_and_gpu_devices_get_no_warning(devices):
  """A CPU host is checked by its memory before a run (research/host_memory.py)."""
  assert hardware.planned_topology_warning("v5p:4x4x4", devices) is None


def test_a_config_planned_for_no_slice_gets_no_warning():
  assert hardware.planned_topology_warning("", V5E_16) is None


def test_research_aots_named_slice_is_compared_by_name():
  """--topology: another name warns (same chip and count included: v5p:2x2x16 is 64 chips
  too); its fix is the preset alone (research.aot is already planning)."""
  v5p_64 = tpus("TPU v5", 4, 4, 4)
  assert hardware.planned_topology_warning("v5p:4x4x4", v5p_64, name="v5p:4x4x4") is None
  said = hardware.planned_topology_warning("v5p:4x4x4", V5E_16, name="v5e:4x4",
                                           preset="1b@v5p:4x4x4")
  assert said.endswith("not for --topology=v5e:4x4 (16 x TPU v5e), so its memory and speed "
                       "are unchecked here; use the preset planned for this slice (1b@v5e:4x4)")
  assert "--topology=v5p:2x2x16" in hardware.planned_topology_warning(
      "v5p:4x4x4", tpus("TPU v5", 2, 2, 16), name="v5p:2x2x16")


def test_research_sweep_warns_once_per_planned_slice_before_training(tmp_path, monkeypatch):
  from configs import lm_ladder
  from research import sweep
  warned, trained = [], []
  monkeypatch.setattr(sweep.logging, "warning", lambda msg, *a: warned.append(msg % a))
  monkeypatch.setattr(sweep, "_run_sweep", lambda *a: trained.append(a))
  config = lm_ladder.get_config("1b")  # laid out for v5p:4x4x4
  sweep.run_sweep(config, [{"seed": 0}, {"seed": 1}], tmp_path / "on_v5e", devices=V5E_16)
  assert len(trained) == 1
  assert [w for w in warned if "planned for" in w] == [
      "sweep: " + hardware.planned_topology_warning("v5p:4x4x4", V5E_16)]
  warned.clear()  # the control: the slice it was planned for
  sweep.run_sweep(config, [{"seed": 0}], tmp_path / "on_v5p", devices=tpus("TPU v5", 4, 4, 4))
  assert not [w for w in warned if "planned for" in w]


_MAIN = r"""
import json, sys, tempfile
from types import SimpleNamespace
import jax
from absl import flags, logging
from research import cli, main as m, train

warned = []
logging.warning = lambda msg, *a: warned.append(msg % a)
class Stop(Exception):
  pass
def stop(config, workdir):
  raise Stop()
train.train_and_evaluate = stop
out = {}
real = jax.devices
for name, devices in (("v5e", [SimpleNamespace(platform="tpu", device_kind="TPU v5 lite")] * 16),
                      ("v5p", [SimpleNamespace(platform="tpu", device_kind="TPU v5")] * 64),
                      ("cpu", None)):
  warned.clear()
  jax.devices = (lambda *a, d=devices: d) if devices else real
  flags.FLAGS.unparse_flags()
  cli._parse_absl(["research.main", "--config=configs/lm_ladder.py:1b",
                   f"--workdir={tempfile.mkdtemp()}/run"])
  try:
    m.main(["research.main"])
  except Stop:
    pass
  out[name] = [w for w in warned if "planned for" in w]
out["real"] = jax.devices()[0].platform
print(json.dumps(out))
"""


def test_research_main_warns_before_training():
  """In a child: research.main defines process-wide absl flags. jax.devices() is the fake
  slice (the CPU's count still validates the mesh); training is stopped where it starts."""
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-c", _MAIN], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert len(out["v5e"]) == 1 and "not for the 16 TPU v5 lite devices it has" in out["v5e"][0]
  assert "(1b@CHIP:SHAPE)" in out["v5e"][0]  # no coords on these fakes
  assert out["v5p"] == [] and out["cpu"] == [] and out["real"] == "cpu"


@pytest.mark.parametrize("planned, warns", [("v5p:4x4x4", True), ("v5e:2x2", False)])
def test_research_aot_warns_through_the_same_check(planned, warns):
  """--topology=v5e:2x2 for a config planned for v5p:4x4x4: the warning above, once; the
  control planned for v5e:2x2 has none. The tiny LM compiles in seconds."""
  pytest.importorskip("libtpu")
  proc = subprocess.run(
      [sys.executable, "-m", "research.aot", "--config=configs/lm_ladder.py:tiny",
       f"--config.topology={planned}", "--topology=v5e:2x2"], cwd=ROOT,
      env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  said = [l for l in proc.stderr.splitlines() if "planned for" in l]
  expected = hardware.planned_topology_warning("v5p:4x4x4", tpus("TPU v5 lite", 2, 2),
                                               name="v5e:2x2", preset="tiny")
  assert [l.split("] ", 1)[1] for l in said] == ([expected] if warns else [])
