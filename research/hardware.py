"""Accelerator chips: HBM per chip and dense peak FLOP/s, one table for MFU and AOT plans.

`research/metrics.py` divides model FLOP/s by `peak_flops` for MFU; `research/aot.py`
checks a compiled program's per-chip memory against `hbm_bytes` and turns FLOPs into a
roofline step time. Peaks are dense (no sparsity), per chip, from vendor datasheets:

  TPU v4   cloud.google.com/tpu/docs/v4   275 TFLOP/s bf16, 32 GiB HBM2
  TPU v5e  cloud.google.com/tpu/docs/v5e  197 TFLOP/s bf16, 16 GB HBM2
  TPU v5p  cloud.google.com/tpu/docs/v5p  459 TFLOP/s bf16, 95 GB HBM2e
  TPU v6e  cloud.google.com/tpu/docs/v6e  918 TFLOP/s bf16, 32 GB HBM
  TPU v3   cloud.google.com/tpu/docs/v3   123 TFLOP/s bf16 per chip (2 cores), 32 GiB
  A100     NVIDIA A100 datasheet (SXM4 80GB): 312 TFLOP/s bf16 tensor, 19.5 fp32, 80 GB HBM2e
  H100     NVIDIA H100 datasheet (SXM5): 989 TFLOP/s bf16 tensor, 67 fp32, 80 GB HBM3
  H200     NVIDIA H200 datasheet (SXM): 989 TFLOP/s bf16 tensor, 67 fp32, 141 GB HBM3e

fp32 on TPU: a float32 matmul at JAX's default precision runs as one bf16 MXU pass
(jax.lax.Precision.DEFAULT), so the rate an fp32 run can reach is the bf16 peak; at
precision HIGHEST (6 passes) it is a sixth of it. fp32 on GPU: the non-tensor-core FP32
rate of the datasheet (TF32 tensor cores, used only when a run asks for them, are faster).
"""
from __future__ import annotations

import dataclasses
import re

GiB = 2 ** 30


@dataclasses.dataclass(frozen=True)
class Chip:
  name: str                   # as the README tables print it
  device_kinds: tuple[str, ...]  # jax Device.device_kind values (exact, case-insensitive)
  hbm_bytes: int              # memory per chip
  bf16_flops: float           # dense peak FLOP/s per chip
  fp32_flops: float
  topology_prefix: str = ""   # the name jax.experimental.topologies uses ("v5e" in "v5e:4x4")
  devices_per_chip: int = 1   # jax devices one chip shows as (v3: one per TensorCore)
  torus_dims: int = 0         # a slice's shape has this many sizes (v5e:4x4, v5p:4x4x4)

  def peak_flops(self, dtype: str) -> float:
    return self.bf16_flops if dtype == "bfloat16" else self.fp32_flops


CHIPS = (
    Chip("TPU v4", ("TPU v4",), 32 * GiB, 275e12, 275e12, "v4", torus_dims=3),
    Chip("TPU v5e", ("TPU v5 lite", "TPU v5e"), 16 * 10 ** 9, 197e12, 197e12, "v5e", torus_dims=2),
    Chip("TPU v5p", ("TPU v5", "TPU v5p"), 95 * 10 ** 9, 459e12, 459e12, "v5p", torus_dims=3),
    Chip("TPU v6e", ("TPU v6 lite", "TPU v6e"), 32 * 10 ** 9, 918e12, 918e12, "v6e", torus_dims=2),
    Chip("TPU v3", ("TPU v3",), 32 * GiB, 123e12, 123e12, "v3", devices_per_chip=2, torus_dims=2),
    Chip("NVIDIA A100", ("A100",), 80 * 10 ** 9, 312e12, 19.5e12),
    Chip("NVIDIA H100", ("H100",), 80 * 10 ** 9, 989e12, 67e12),
    Chip("NVIDIA H200", ("H200",), 141 * 10 ** 9, 989e12, 67e12),
)


def chip_for_device_kind(kind: str) -> Chip | None:
  """The chip of a jax device_kind ('TPU v5 lite', 'NVIDIA H100 80GB HBM3'), or None.

  TPU kinds match exactly ('TPU v5' is v5p, 'TPU v5 lite' is v5e); GPU kinds carry
  the model inside a longer name, so they match as substrings.
  """
  low = kind.lower()
  for chip in CHIPS:
    if any(low == k.lower() for k in chip.device_kinds):
      return chip
  for chip in CHIPS:
    if not chip.topology_prefix and any(k.lower() in low for k in chip.device_kinds):
      return chip
  return None


def chip_for_topology(topology: str) -> Chip | None:
  """The chip of a topology name such as 'v5p:4x4x4', or None."""
  prefix = topology.split(":", 1)[0].lower()
  return next((c for c in CHIPS if c.topology_prefix and c.topology_prefix == prefix), None)


def is_topology_name(name: str) -> bool:
  """CHIP:SHAPE as libtpu spells it: a known chip and 2 or 3 positive sizes, 'v5e:4x4'.
  Whether the chip comes in that shape only libtpu knows (research.aot resolves it)."""
  # Lower case only: libtpu also reads 'V5E:4x4', but the ladder's layouts and the plan cache
  # are keyed by the name as written, so it planned a different cell on a fallback layout.
  return (chip_for_topology(name) is not None
          and re.fullmatch(r"[a-z0-9]+:[1-9]\d*(x[1-9]\d*){1,2}", name) is not None)


def topology_prefixes() -> list[str]:
  return [c.topology_prefix for c in CHIPS if c.topology_prefix]
