"""Accelerator chips: HBM per chip and dense peak FLOP/s, one table for MFU and AOT plans.

`research/metrics.py` divides model FLOP/s by `peak_flops` for MFU; `research/aot.py`
checks a compiled program's per-chip memory against `capacity_bytes` (`memory_fit`) and
turns FLOPs into a roofline step time. Peaks are dense (no sparsity), per chip, from vendor
datasheets:

  TPU v4   cloud.google.com/tpu/docs/v4   275 TFLOP/s bf16, 32 GiB HBM2
  TPU v5e  cloud.google.com/tpu/docs/v5e  197 TFLOP/s bf16, 16 GB HBM2
  TPU v5p  cloud.google.com/tpu/docs/v5p  459 TFLOP/s bf16, 95 GB HBM2e
  TPU v6e  cloud.google.com/tpu/docs/v6e  918 TFLOP/s bf16, 32 GB HBM
  TPU v3   cloud.google.com/tpu/docs/v3   123 TFLOP/s bf16 per chip (2 cores), 32 GiB
  A100     NVIDIA A100 datasheet (SXM4 80GB): 312 TFLOP/s bf16 tensor, 156 TF32 tensor
           (19.5 non-tensor fp32), 80 GB HBM2e
  H100     NVIDIA H100 datasheet (SXM5): 989 TFLOP/s bf16 tensor, 494.7 TF32 tensor (the
           datasheet's 989 is with sparsity; 67 non-tensor fp32), 80 GB HBM3; H100 PCIe:
           756 bf16 tensor (1,513 with sparsity), 378 TF32 tensor, 51 non-tensor fp32, 80 GB
  A100 40GB  the same datasheet's 40 GB parts (SXM4, PCIe): the 80 GB part's peaks
  H200     NVIDIA H200 datasheet (SXM): 989 TFLOP/s bf16 tensor, 494.7 TF32 tensor (989 with
           sparsity; 67 non-tensor fp32), 141 GB HBM3e

fp32 on TPU: a float32 matmul at JAX's default precision runs as one bf16 MXU pass
(jax.lax.Precision.DEFAULT), so the rate an fp32 run can reach is the bf16 peak; at
precision HIGHEST (6 passes) it is a sixth of it. fp32 on GPU likewise: at JAX's default
precision a float32 matmul runs on the TF32 tensor cores of an A100 / H100 / H200
(jax.lax.Precision.DEFAULT: "On GPU: uses tensorfloat32 if available (e.g. on A100 and
H100 GPUs)"), so the peak is the dense TF32 rate. It was the non-tensor FP32 rate (19.5 /
67 TFLOP/s), 8x / 7.4x below what those matmuls can reach: an fp32 run's MFU read that much
too high (above 100% from 13.5% of the TF32 peak on an H100) and research.aot's roofline
that much too slow. At precision HIGHEST or with NVIDIA_TF32_OVERRIDE=0 the non-tensor
rate applies: pass it as train.peak_flops.

HBM: nominal and usable. Google's TPU pages write GiB as "GB": each chip's compiler limit
below is above the decimal figure (v5e: 15.75 GiB = 16.91e9 B > 16e9 B), so `hbm_bytes`
is the datasheet's number in GiB. A program gets less than that: the TPU compiler refuses
one whose buffers exceed a per-chip limit below the HBM, and keeps a few MiB of that limit
for itself. `usable_hbm_bytes` is what the compiler lets a program's HBM (research.aot's
total: arguments + outputs - donated aliases + temporaries, where XLA:TPU's peak is not lower,
research.aot_memory.tpu_peak) + generated code reach, measured with
libtpu 0.0.42.1 (jax 0.10.2) on a host without a TPU (research.aot_targets compiles for a
named slice), 2026-12-04, twice per chip kind:

  1. a program far too big (the `tiny` LM at width 1024 with a 2M-token vocabulary, 8M on
     v5p, as in tests/test_aot.py's negative control) on v4:2x2x1, v5e:1x1, v5e:2x2, v5e:4x4,
     v5p:2x2x1, v5p:4x4x4 and v6e:2x2: the refusal names the limit, the same on every shape
     of a kind tried ("... HLO temporaries (68.89G) exceeds available HBM (15.75G)", XLA's G = GiB):
       v4 30.75G   v5e 15.75G   v5p 95.74G   v6e 31.25G
  2. bisection to the byte on one chip of v4:2x2x1, v5e:1x1, v5e:2x2, v5p:2x2x1 and v6e:1x1
     of jit(lambda x: broadcast_to(x, (n,)) + 1) on a uint8[1] argument (37-38 compiles
     each, 13 s in all): the largest accepted program's arguments + output + generated code
     (its memory_analysis()), n + 1 refused ("Used 15.75G of 15.75G hbm. Exceeded hbm
     capacity by 1.0K"):
       v4   33,014,365,696 + code 47,104 = 33,014,412,800 B ~ 31,485 MiB = 30.75 GiB - 3 MiB
       v5e  16,909,284,864 + code 51,200 = 16,909,336,064 B ~ 16,126 MiB = 15.75 GiB - 2 MiB
       v5p 102,803,368,448 + code 69,120 = 102,803,437,568 B ~ 98,041 MiB (the limit, 95.74G
            rounded, is 98,041-98,042 MiB: at most 1 MiB kept)
       v6e  33,550,180,864 + code 55,808 = 33,550,236,672 B ~ 31,996 MiB = 31.25 GiB - 4 MiB
     (~ : each within 2.6 KB below the whole MiB, the compiler's 512 B / 1 KB alignment; v5e
     on 2x2 reached 1.5 KB less than on 1x1). `usable_hbm_bytes` is that whole number of
     MiB, so every program the compiler accepts has a total at or below it. (Checked again
     2026-12-06 on v5e:1x1: the largest program accepted, n = 16,909,284,029 bytes, has an
     XLA peak of 16,909,285,888 B + 51,200 B of code = 16,909,337,088 B, within 512 B of it.)

Inter-chip interconnect (ICI), per chip, both directions together, from the same Google
Cloud pages: v5e 400 GB/s (4 ports), v5p 1,200 GB/s, v6e 800 GB/s (4 ports); v4's page gives
none, so v4 has no figure. research.aot divides the bytes a chip receives in a step's
collectives by half of it (every link busy inbound): a lower bound on the step's
communication time, reached only when the collectives use every link at once (a ring along
one axis of the torus uses two of a 2-D chip's four).

v5p's compiler limit (95.74 GiB) is above its datasheet's 95: that is not the chip's whole HBM
in either unit, so v5p's usable figure is above its nominal one.
GPUs and v3 (which research.aot cannot plan per chip) are not measured: their capacity is
the nominal HBM (on a GPU jax preallocates 75% of it unless XLA_PYTHON_CLIENT_MEM_FRACTION
says otherwise).
"""
from __future__ import annotations

import dataclasses
import math
import re

GiB = 2 ** 30


@dataclasses.dataclass(frozen=True)
class Chip:
  name: str                   # as the README tables print it
  device_kinds: tuple[str, ...]  # jax Device.device_kind values (exact, case-insensitive)
  hbm_bytes: int              # memory per chip, nominal (the datasheet's)
  bf16_flops: float           # dense peak FLOP/s per chip
  fp32_flops: float
  topology_prefix: str = ""   # the name jax.experimental.topologies uses ("v5e" in "v5e:4x4")
  devices_per_chip: int = 1   # jax devices one chip shows as (v3: one per TensorCore)
  torus_dims: int = 0         # a slice's shape has this many sizes (v5e:4x4, v5p:4x4x4)
  usable_hbm_bytes: int | None = None  # what the compiler lets a program use (docstring)
  fp32_full_flops: float = 0.0  # float32 matmuls at precision HIGHEST; 0: six bf16 passes (TPU)
  # The chip's inter-chip links, both directions together (docstring); None: not in the table.
  ici_bytes_per_s: float | None = None
  # The largest single slice Google Cloud offers ("": not in the table): v5e and v6e 16x16,
  # v4 16x16x16 = 4,096 chips, v5p 16x16x24 = 6,144 (its v5p page: "the largest job that can
  # be scheduled"). libtpu also plans larger made-up shapes (v5e:64x64, 4,096 chips).
  largest_slice: str = ""

  @property
  def capacity_bytes(self) -> int:
    """What a program's per-chip memory is checked against: the usable HBM where it was
    measured, else the nominal."""
    return self.usable_hbm_bytes if self.usable_hbm_bytes is not None else self.hbm_bytes

  def peak_flops(self, dtype: str, precision: str = "default") -> float:
    """The dense peak of matmuls in `dtype` at `precision` (train.matmul_precision resolved:
    default | highest). float32 at JAX's default precision is one bf16 pass on a TPU and
    TF32 on an NVIDIA GPU (fp32_flops); at HIGHEST it is six bf16 passes on a TPU (XLA's
    BF16_BF16_F32_X6) and the non-tensor-core rate on a GPU."""
    if dtype == "bfloat16":
      return self.bf16_flops
    if precision == "highest":
      return self.fp32_full_flops or self.bf16_flops / 6
    return self.fp32_flops


MiB = 2 ** 20

CHIPS = (
    Chip("TPU v4", ("TPU v4",), 32 * GiB, 275e12, 275e12, "v4", torus_dims=3,
         usable_hbm_bytes=31_485 * MiB, largest_slice="16x16x16"),
    Chip("TPU v5e", ("TPU v5 lite", "TPU v5e"), 16 * GiB, 197e12, 197e12, "v5e", torus_dims=2,
         usable_hbm_bytes=16_126 * MiB, ici_bytes_per_s=400e9, largest_slice="16x16"),
    Chip("TPU v5p", ("TPU v5", "TPU v5p"), 95 * GiB, 459e12, 459e12, "v5p", torus_dims=3,
         usable_hbm_bytes=98_041 * MiB, ici_bytes_per_s=1200e9, largest_slice="16x16x24"),
    Chip("TPU v6e", ("TPU v6 lite", "TPU v6e"), 32 * GiB, 918e12, 918e12, "v6e", torus_dims=2,
         usable_hbm_bytes=31_996 * MiB, ici_bytes_per_s=800e9, largest_slice="16x16"),
    Chip("TPU v3", ("TPU v3",), 32 * GiB, 123e12, 123e12, "v3", devices_per_chip=2, torus_dims=2),
    # fp32: the TF32 tensor-core rate JAX's default precision runs float32 matmuls at (above)
    # fp32_full_flops: the non-tensor-core FP32 rate (precision HIGHEST)
    # GPUs by their full CUDA device names: a variant with other memory or clocks (A100 40GB,
    # H100 PCIe) is its own row, and one not listed (H100 NVL, H200 NVL, GH200, T4, L4) has
    # no figures (set train.peak_flops) rather than a namesake's.
    Chip("NVIDIA A100", ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB PCIe",
                         "NVIDIA A100-PCIE-80GB"), 80 * 10 ** 9, 312e12, 156e12,
         fp32_full_flops=19.5e12),
    Chip("NVIDIA A100 40GB", ("NVIDIA A100-SXM4-40GB", "NVIDIA A100-PCIE-40GB"), 40 * 10 ** 9,
         312e12, 156e12, fp32_full_flops=19.5e12),
    Chip("NVIDIA H100", ("NVIDIA H100 80GB HBM3",), 80 * 10 ** 9, 989e12, 494.7e12,
         fp32_full_flops=67e12),
    Chip("NVIDIA H100 PCIe", ("NVIDIA H100 PCIe",), 80 * 10 ** 9, 756e12, 378e12,
         fp32_full_flops=51e12),
    Chip("NVIDIA H200", ("NVIDIA H200",), 141 * 10 ** 9, 989e12, 494.7e12, fp32_full_flops=67e12),
)


def chip_for_device_kind(kind: str) -> Chip | None:
  """The chip of a jax device_kind ('TPU v5 lite', 'NVIDIA H100 80GB HBM3'), or None.

  Kinds match whole (case aside): 'TPU v5' is v5p, 'TPU v5 lite' v5e. GPU kinds matched as
  substrings gave an A100-SXM4-40GB the 80 GB A100's memory, an H100 PCIe the SXM part's
  989 TFLOP/s (756 dense) and a GH200 the H200's row ('H200' in 'GH200')."""
  low = kind.strip().lower()
  return next((c for c in CHIPS if any(low == k.lower() for k in c.device_kinds)), None)


def chip_named(name: str | None) -> Chip | None:
  """The chip a plan names ('TPU v5e', Chip.name), or None."""
  return next((c for c in CHIPS if c.name == name), None)


def memory_fit(memory: dict, chip: Chip | None, capacity: int | None = None) -> dict:
  """A plan's `memory_per_device` with its verdict against `chip`: nominal HBM, usable HBM
  (None: not measured), the capacity checked (usable, else nominal), headroom and fits.

  `capacity`, when given, replaces the chip's (a CPU host's available RAM, research.aot).
  fits: False for a program the compiler refused (its `compiler_error`), None without a
  capacity, else whether the total (arguments + outputs - aliases + temporaries) is at most the
  capacity. The compiler also places the program's code there (50 KB for the bisection's
  program, 16-37 MB for the LM train steps planned), so a total within that much of the
  capacity may still be refused; one it accepted never exceeds it (the usable figures are
  the most it accepted, code included)."""
  out = dict(memory)
  total = memory["total_bytes"]
  if capacity is None:
    capacity = chip.capacity_bytes if chip else None
  out.update(hbm_bytes=chip.hbm_bytes if chip else None,
             usable_bytes=chip.usable_hbm_bytes if chip else None, capacity_bytes=capacity,
             headroom_bytes=None if capacity is None else capacity - total,
             fits=(False if memory.get("compiler_error") else None if capacity is None
                   else total <= capacity))
  return out


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


def millions(n: int) -> str:
  """A parameter count in millions for research.aot's plan and ladder table: whole from 10M
  up, two significant digits below (the tiny preset's 59,776 parameters read "0M")."""
  return f"{n / 1e6:,.0f}M" if n >= 1e7 else f"{n / 1e6:.2g}M"


def bytes_text(b: float | None) -> str:
  """Bytes in the unit that keeps three significant digits ('790 kB', '357 GB'): research.aot's
  collectives, whose bytes a step run from kilobytes (the tiny LM) to terabytes."""
  if b is None:
    return "?"
  for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
    if b >= scale:
      return f"{b / scale:.3g} {unit}"
  return f"{b:.0f} B"


def topology_dims_problem(name: str) -> str | None:
  """Why a topology name (is_topology_name) names no slice of its chip: the wrong number of
  sizes ('v5e:4x4x4'; libtpu plans some of those, for slices the chip never comes in)."""
  chip = chip_for_topology(name)
  sizes = [int(x) for x in name.split(":", 1)[1].split("x")]
  if chip is None or not chip.torus_dims:
    return None
  example = f"{chip.topology_prefix}:{ {2: '4x4', 3: '4x4x4'}[chip.torus_dims]}"
  if len(sizes) != chip.torus_dims:
    return (f"{chip.name} slices are {chip.torus_dims}-D; write {chip.torus_dims} sizes, "
            f"e.g. {example}")
  # A slice is whole hosts of 2x2 chips (x1 on the 3-D chips) or, on v5e and v6e, one chip:
  # libtpu 0.0.42.1 refuses every other shape ("not divisible by ... 2x2x1") and accepts
  # these (every v5e / v6e size pair from 1 to 32 and v4 / v5p triple to 4x4x8 tried,
  # 2026-12-05). Checked here too, so that a sweep or a host without libtpu refuses v5e:3x3.
  if sizes[0] % 2 or sizes[1] % 2:
    if chip.torus_dims == 2 and sizes == [1, 1]:
      return None
    which = "both sizes" if chip.torus_dims == 2 else "the first two sizes"
    return (f"{chip.name} slices are made of hosts of 2x2 chips: {which} must be even"
            f"{' (or 1x1, one chip)' if chip.torus_dims == 2 else ''}, e.g. {example}")
  most = [int(x) for x in chip.largest_slice.split("x")] if chip.largest_slice else []
  chips = math.prod(sizes)
  if most and (chips > math.prod(most) or (chip.torus_dims == 2 and max(sizes) > max(most))):
    return (f"{name} is {chips:,} chips in a shape {chip.name} does not come in: its largest "
            f"slice is {chip.largest_slice} ({math.prod(most):,} chips)")
  return None


def topology_prefixes() -> list[str]:
  return [c.topology_prefix for c in CHIPS if c.topology_prefix]


def _slice_of(chip: Chip | None, devices) -> str:
  """'v5e:4x4': the slice TPU devices are, from their coords ('': not derivable)."""
  coords = [getattr(d, "coords", None) for d in devices]
  if chip is None or not chip.torus_dims or any(c is None or not len(c) for c in coords):
    return ""
  dims = [max(c[i] for c in coords) + 1 for i in range(len(coords[0]))]
  if any(x != 1 for x in dims[chip.torus_dims:]) or (
      math.prod(dims) * chip.devices_per_chip != len(devices)):
    return ""
  name = f"{chip.topology_prefix}:{'x'.join(str(x) for x in dims[:chip.torus_dims])}"
  return name if is_topology_name(name) and topology_dims_problem(name) is None else ""


def planned_topology_warning(planned: str, devices, *, name: str = "",
                             preset: str = "") -> str | None:
  """The warning for a config whose layout (mesh, remat, microbatches) was planned for the
  slice `planned` (config.topology: an lm_ladder SIZE@TOPOLOGY preset, or plain SIZE for
  v5p:4x4x4) and is compiled or run on `devices`; None where they agree. `name`: the slice
  the devices are (research.aot's --topology), compared by name; without it TPU devices
  disagree when their count or chip kind differs from the planned slice's (research.main,
  research.sweep and research.aot on a TPU VM). CPU and GPU devices get none: a pod preset
  on CPU is refused by research.aot and by the host-memory check before a run
  (research/host_memory.py). `preset` ('1b@v5p:4x4x4') names the size in the fix."""
  if not planned or not devices:
    return None
  chip = chip_for_topology(planned)
  if chip is None or (not name and getattr(devices[0], "platform", "") != "tpu"):
    return None
  chips = math.prod(int(x) for x in planned.split(":", 1)[1].split("x"))
  kind = getattr(devices[0], "device_kind", "") or "?"
  got_chip = chip_for_device_kind(kind)
  if name:  # research.aot --topology: the slice is named
    if name == planned:
      return None
    here = name
    got = f"--topology={name} ({len(devices)} x {got_chip.name if got_chip else kind})"
  else:
    if got_chip is chip and len(devices) == chips * chip.devices_per_chip:
      return None
    here = _slice_of(got_chip, devices)
    known = ", ".join(x for x in (got_chip and got_chip.name, here) if x)
    got = f"the {len(devices)} {kind} devices it has" + (f" ({known})" if known else "")
  size = preset.partition("@")[0] or "SIZE"
  target = here or "CHIP:SHAPE"
  plan = ("" if name else ", or plan this layout for it first with python -m research.aot "
          f"--config=... --topology={target}")
  return (f"this config's layout (mesh, remat, microbatches) was planned for {planned} "
          f"(config.topology: {chips} x {chip.name}), not for {got}, so its memory and speed "
          f"are unchecked here; use the preset planned for this slice ({size}@{target}){plan}")
