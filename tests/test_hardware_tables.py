"""research/hardware.py's chip table against the datasheets its docstring cites (a mutation
audit changed v5p's peak, 459 -> 495 TFLOP/s, unseen: every MFU and roofline figure of the
chip moves). v3's two devices per chip: tests/test_train.py."""
import pytest

from research import hardware

# name -> (HBM bytes, bf16 peak, fp32 peak at default precision, ICI bytes/s), from the
# datasheets (TPU HBM in GiB, as hardware.py's docstring explains; GPUs' in GB).
DATASHEET = {
    "TPU v4": (32 * hardware.GiB, 275e12, 275e12, None),
    "TPU v5e": (16 * hardware.GiB, 197e12, 197e12, 400e9),
    "TPU v5p": (95 * hardware.GiB, 459e12, 459e12, 1200e9),
    "TPU v6e": (32 * hardware.GiB, 918e12, 918e12, 800e9),
    "TPU v3": (32 * hardware.GiB, 123e12, 123e12, None),
    "NVIDIA A100": (80e9, 312e12, 156e12, None),
    "NVIDIA A100 40GB": (40e9, 312e12, 156e12, None),
    "NVIDIA H100": (80e9, 989e12, 494.7e12, None),
    "NVIDIA H100 PCIe": (80e9, 756e12, 378e12, None),
    "NVIDIA H200": (141e9, 989e12, 494.7e12, None),
}


@pytest.mark.parametrize("name", DATASHEET)
def test_the_chip_table_matches_the_datasheets(name):
  chip = hardware.chip_named(name)
  assert (chip.hbm_bytes, chip.peak_flops("bfloat16"), chip.peak_flops("float32"),
          chip.ici_bytes_per_s) == DATASHEET[name]


def test_every_chip_is_checked():
  assert set(DATASHEET) == {c.name for c in hardware.CHIPS}
