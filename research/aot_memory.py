"""What one chip holds of a program research.aot compiled, or that the TPU compiler refused.

`per_chip` gives research.aot's `memory_per_device` figures (before hardware.memory_fit adds
the verdict): arguments, outputs, donated aliases, temporaries and their total, from
`memory_analysis()`, XLA:TPU's peak where that is lower (tpu_peak), or the refusal's message.
"""
from __future__ import annotations

import math
import re

from research import hardware


class OutOfMemory:
  """Stands in for a compiled program the TPU compiler refused for lack of HBM: its
  message gives the memory it needed and the memory there is, in one of two forms (XLA's
  G = GiB): the temporaries ('... HLO temporaries (28.63G) exceeds available HBM (15.75G)')
  or the whole program ('Used 15.76G of 15.75G hbm. Exceeded hbm capacity by 9.18M.', which
  the first parse missed: 70m@v5e:4x4 in 8 microbatches read as its 0.85 GB of state)."""

  def __init__(self, message: str):
    self.message = message.splitlines()[0]
    size = lambda x, u: round(float(x) * 2 ** {"K": 10, "M": 20, "G": 30, "T": 40}[u])
    used = re.search(r"Used ([0-9.]+)([KMGT])i?B? of ([0-9.]+)([KMGT])i?B? hbm", self.message)
    sizes = [size(x, u) for x, u in re.findall(r"\(([0-9.]+)([KMGT])i?B?\)", self.message)]
    self.required, self.available = (sizes + [None, None])[:2]  # the temporaries
    self.used = None  # the whole program
    if used and not sizes:
      self.used, self.available = size(*used.groups()[:2]), size(*used.groups()[2:])

  def memory_analysis(self):
    return None

  def cost_analysis(self):
    return {}


def tpu_peak(mem, target) -> int | None:
  """XLA:TPU's `peak_memory_in_bytes` of the program; None elsewhere (on CPU it omits the
  temporaries: a matmul of sin and cos of a 1024 x 1024 array reads 4 MB + 4 B).

  Neither of memory_analysis()'s figures is what the TPU compiler checks against its limit
  (the HBM its buffer assignment places, `--xla_dump_to`'s memory-usage report, not exposed):
  each overstates it in some programs. 14m@v5e:4x4 in 4 microbatches reports 19.80 GB of
  temporaries (19.97 GB summed with the state), but the buffer assignment places 15.98 GB,
  the peak reads 15.97 GB, and the compiler accepts it (limit 15.75 GiB = 16.91 GB); at
  seq_len 2112, peak 15.33 GiB against a 18.58 GiB sum, accepted; at 2176 it is refused for
  "HLO temporaries (15.79G)". A small scanned matmul beside an n-byte broadcast on v5e:1x1 is
  the other way: the sum is the buffer assignment's 8 MiB + n, the peak 72-75 MB more, and
  at a peak 44 MB over the limit (sum 32 MB under) the compiler accepts it (libtpu 0.0.42.1,
  2026-12-06). So per_chip takes the smaller of the two."""
  peak = getattr(mem, "peak_memory_in_bytes", 0) or 0
  platform = getattr(target.devices[0], "platform", "")
  return int(peak) if peak > 0 and platform == "tpu" else None


def per_chip(compiled, mem, state_bytes: int, target) -> dict:
  """The plan's memory figures from the compiled (or refused: OutOfMemory) program and its
  `memory_analysis()` (None when refused); `state_bytes`: the state's shard on one chip
  (parameters + optimiser state, which a refused program is taken to hold as arguments and
  outputs)."""
  xla_temp = peak = None
  if mem is None:  # refused: the arguments (the state, donated) plus what the compiler needed
    temp = compiled.required if compiled.used is None else compiled.used - state_bytes
    args = out = alias = state_bytes
    code = 0
  else:
    args, out, alias = (mem.argument_size_in_bytes, mem.output_size_in_bytes,
                        mem.alias_size_in_bytes)
    temp, code = mem.temp_size_in_bytes, mem.generated_code_size_in_bytes
    xla_temp, peak = temp, tpu_peak(mem, target)
    if peak is not None:  # the smaller of two overstatements (tpu_peak)
      temp = min(temp, peak - (args + out - alias))
  return {"params_and_optimizer_bytes": state_bytes, "argument_bytes": args,
          "output_bytes": out, "alias_bytes": alias, "temporary_bytes": temp,
          "generated_code_bytes": code, "total_bytes": args + out - alias + (temp or 0),
          "xla_temp_size_bytes": xla_temp, "peak_bytes": peak,
          "compiler_error": compiled.message if mem is None else None}


def shard_bytes(abstract, shardings) -> int:
  """Bytes one device holds of a sharded tree (its shard of every leaf)."""
  import jax
  return sum(math.prod(sh.shard_shape(x.shape)) * x.dtype.itemsize
             for x, sh in zip(jax.tree.leaves(abstract), jax.tree.leaves(shardings)))


def fit(target, memory: dict) -> dict:
  """A program's per-chip memory with its verdict against the target's chip, or this host's
  memory for a local CPU plan (local_fit)."""
  return local_fit(target, hardware.memory_fit(memory, target.chip))


def local_fit(target, memory: dict) -> dict:
  """On this host's CPU devices the buffers come out of its RAM: the capacity is the memory
  the host has available (research/host_memory.py, as a CPU run is checked before it
  starts), shared by its devices. A chip in the table keeps its HBM."""
  if target.name != "local" or target.chip is not None or target.devices[0].platform != "cpu":
    return memory
  from research import host_memory
  available = host_memory.available_bytes()
  if available is None:
    return memory
  return hardware.memory_fit(memory, None, capacity=available // len(target.devices)) | {
      "host_available_bytes": available}
