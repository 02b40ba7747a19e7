"""research/hardware.py's chip table against the datasheets its docstring cites, and MFU's
per-device peak on a chip of two devices. A mutation audit changed v5p's peak (459 -> 495
TFLOP/s) and v3's devices per chip unseen: every MFU and roofline figure of that chip moves."""
import types

import jax
import pytest

from research import hardware, metrics

# name -> (HBM bytes, bf16 peak, fp32 peak at default precision, ICI bytes/s), from the
# datasheets (TPU HBM in GiB, as hardware.py's docstring explains; GPUs' in GB).
DATASHEET = {
    "TPU v4": (32 * hardware.GiB, 275e12, 275e12, None),
    "TPU v5e": (16 * hardware.GiB, 197e12, 197e12, 400e9),
    "TPU v5p": (95 * hardware.GiB, 459e12, 459e12, 1200e9),
    "TPU v6e": (32 * hardware.GiB, 918e12, 918e12, 800e9),
    "TPU v3": (32 * hardware.GiB, 123e12, 123e12, None),
    "NVIDIA A100": (80e9, 312e12, 156e12, None),
    "NVIDIA H100": (80e9, 989e12, 494.7e12, None),
    "NVIDIA H100 PCIe": (80e9, 756e12, 378e12, None),
    "NVIDIA H200": (141e9, 989e12, 494.7e12, None),
}


@pytest.mark.parametrize("name", DATASHEET)
def test_the_chip_table_matches_the_datasheets(name):
  chip = hardware.chip_named(name)
  assert (chip.hbm_bytes, chip.peak_flops("bfloat16"), chip.peak_flops("float32"),
          chip.ici_bytes_per_s) == DATASHEET[name]


def test_a_v3_device_is_half_a_chip_for_mfu(monkeypatch):
  """A v3 device is one of the chip's two cores: credited with half its peak. Control: a v5e
  device is the whole chip."""
  fake = types.SimpleNamespace(platform="tpu", device_kind="TPU v3")
  monkeypatch.setattr(jax, "devices", lambda *a, **k: [fake])
  peak, source = metrics.device_peak_flops("bfloat16")
  assert peak == pytest.approx(123e12 / 2) and "TPU v3" in source
  fake.device_kind = "TPU v5 lite"
  assert metrics.device_peak_flops("bfloat16")[0] == pytest.approx(197e12)
