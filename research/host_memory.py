"""Refusing, before any state exists, a CPU run that this host's memory cannot hold.

On an accelerator XLA allocates from the device's memory and says RESOURCE_EXHAUSTED when
a program does not fit (research.cli turns that into exit 2). On CPU it allocates from the
host's RAM, which Linux grants beyond what it can back (overcommit): a pod preset started
on a laptop (configs/lm_ladder.py:14m: 26 GB of float32 logits per microbatch of 64
sequences) compiles, starts, and is killed by the kernel once its pages are touched (exit
137, no message, perhaps in the middle of a checkpoint). The compiled program knows its buffers
(`memory_analysis()`), so on CPU the train step is compiled before the state is built or
restored, and a run whose arguments + outputs - donated aliases + temporaries, times the
devices this process drives, exceed the memory the host has available is refused (exit 2).
In a multi-process run every process sends its need, what it has available and which host it
is on to every other (one all-gather, before any state), and every process reaches the same
verdict from the same figures: processes on one host (machine and container) are summed
against that host's memory, and all refuse together, since one refusing alone would leave
the others waiting in their first collective.
The compiled program is then the one the loop calls: no second compile.

The figure is the step's buffers alone, so the check refuses only what cannot run: the
process needs more (the JAX runtime, the data, eval programs, checkpoint copies). Measured
on this 2-core host: configs/lm_ladder.py:c6 (10M parameters) needs 1.66 GB by this count
and peaked at 2.85 GB resident (/usr/bin/time -v, 2026-12-05).
"""
from __future__ import annotations

import math
import socket
import time
import zlib
from pathlib import Path

from absl import logging
import jax
import numpy as np

from research import errors

GB = 1e9
_MEMINFO = Path("/proc/meminfo")
_CGROUP = Path("/sys/fs/cgroup")  # a container's (Docker's, Colab's) own limit: v2 here, v1 in memory/
_SELF_CGROUP = Path("/proc/self/cgroup")
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
MIB = 2 ** 20  # the unit processes exchange their figures in (int32: up to 2 PiB)


def _meminfo_available() -> int | None:
  try:
    for line in _MEMINFO.read_text().splitlines():
      if line.startswith("MemAvailable:"):
        return int(line.split()[1]) * 1024
  except (OSError, ValueError, IndexError):
    pass
  return None


# (limit, usage, reclaimable page-cache entry of memory.stat) per cgroup version.
_V2 = ("memory.max", "memory.current", "inactive_file")
_V1 = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")


def _cgroup_dirs() -> list[tuple[Path, tuple]]:
  """This process's memory cgroup directories, its own and its ancestors' up to the mount (a
  limit set on any of them applies: a container's, a systemd slice's, a batch job's), v2
  (`0::PATH`, under /sys/fs/cgroup) and v1 (`N:memory:PATH`, under /sys/fs/cgroup/memory). A
  container sees its own group at the mount's root, so the root is always read."""
  try:
    lines = _SELF_CGROUP.read_text().splitlines()
  except OSError:
    lines = []
  out = []
  for root, names, path in [(_CGROUP, _V2, "/"), (_CGROUP / "memory", _V1, "/")]:
    for line in lines:
      fields = line.split(":", 2)
      if len(fields) == 3 and (
          (names is _V2 and fields[0] == "0" and not fields[1])
          or (names is _V1 and "memory" in fields[1].split(","))):
        path = fields[2]
    parts = [p for p in path.strip().split("/") if p]
    out += [(root.joinpath(*parts[:i]), names) for i in range(len(parts), -1, -1)]
  return out


def _unused_limit(cgroup: Path, names: tuple) -> int | None:
  """The group's limit less what it uses that the kernel cannot reclaim: the usage counts
  the page cache too (files read and written), which is dropped before anything is killed,
  so a limit 'full' of inactive file pages is not full. None: no limit (v2 'max', v1's
  near-2^63 'unlimited') or no such group."""
  limit_file, usage_file, cache_key = names
  try:
    limit = (cgroup / limit_file).read_text().strip()
    if limit == "max" or int(limit) >= 2 ** 60:
      return None
    used = int((cgroup / usage_file).read_text().strip())
  except (OSError, ValueError):
    return None
  reclaimable = 0
  try:
    for line in (cgroup / "memory.stat").read_text().splitlines():
      if line.startswith(cache_key + " "):
        reclaimable = int(line.split()[1])
  except (OSError, ValueError, IndexError):
    pass
  return max(int(limit) - (used - reclaimable), 0)


def _cgroup_available() -> int | None:
  known = [b for b in (_unused_limit(d, n) for d, n in _cgroup_dirs()) if b is not None]
  return min(known) if known else None


def available_bytes() -> int | None:
  """What this process can still allocate without swapping or being killed: the host's
  MemAvailable, or the container's unused limit where that is lower; None where neither
  can be read (not Linux), and then nothing is checked."""
  known = [b for b in (_meminfo_available(), _cgroup_available()) if b is not None]
  return min(known) if known else None


def program_bytes(compiled) -> int:
  """Per-device peak of a compiled program as XLA assigned its buffers."""
  m = compiled.memory_analysis()
  return (m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
          + m.temp_size_in_bytes)


def check(need_bytes: int, *, what: str, available: int | None = None,
          host: str = "this host's memory") -> None:
  """Refuses (InputError) `need_bytes` of host memory beyond what is available."""
  available = available_bytes() if available is None else available
  if available is None:
    return
  if need_bytes > available:
    raise errors.InputError(
        f"{what} needs {need_bytes / GB:.3g} GB of {host} (its compiled train step's "
        f"parameters, optimiser state, gradients and activations) and {available / GB:.3g} GB "
        "are available: on CPU the system would kill it once it ran out; lower "
        "train.batch_size (or raise train.grad_accum_steps), use a smaller model, plan a "
        "pod-scale config with python -m research.aot --config=... --topology=..., or set "
        "--config.train.host_memory_check=False to run it anyway")
  if need_bytes > 0.8 * available:
    logging.warning("%s needs %.3g GB of %s, which has %.3g GB available; other programs "
                    "may push it out", what, need_bytes / GB, host, available / GB)


def host_key() -> int:
  """Processes with the same key draw on one pool of memory: one machine (its boot id) and
  one container on it (the host name: Docker and Kubernetes give each container its own)."""
  try:
    boot = _BOOT_ID.read_text().strip()
  except OSError:
    boot = ""
  return zlib.crc32(f"{socket.gethostname()}|{boot}".encode()) & 0x7FFFFFFF


def _mib(n: int, up: bool) -> int:
  return min((math.ceil if up else math.floor)(n / MIB), 2 ** 31 - 1)


def worst_host(rows) -> tuple[int, int, list[int]] | None:
  """From every process's row (need MiB, available MiB or -1 if unknown, host key), the host
  whose processes together need the largest share of the least any of them has available:
  (need MiB, available MiB, its process indices); None where no host's memory is known."""
  rows = np.asarray(rows, np.int64)
  worst = None
  for key in sorted(set(rows[:, 2].tolist())):
    on_host = np.flatnonzero(rows[:, 2] == key)
    known = rows[on_host, 1][rows[on_host, 1] >= 0]
    if not len(known):
      continue
    need, available = int(rows[on_host, 0].sum()), int(known.min())
    if worst is None or need * max(worst[1], 1) > worst[0] * max(available, 1):
      worst = (need, available, on_host.tolist())
  return worst


def check_processes(need_bytes: int, *, what: str) -> None:
  """check() for a multi-process run: the figures of every process, gathered, and the same
  verdict (the worst host's) in each; a single process checks its own."""
  if jax.process_count() == 1:
    check(need_bytes, what=what)
    return
  from jax.experimental import multihost_utils
  available = available_bytes()
  row = np.array([_mib(need_bytes, up=True), -1 if available is None else
                  _mib(available, up=False), host_key()], np.int32)
  worst = worst_host(multihost_utils.process_allgather(row))
  if worst is not None:
    need, available, processes = worst
    ids = ", ".join(map(str, processes))
    check(need * MIB, available=available * MIB, what=what,
          host=f"the memory of the host of process{'es' if len(processes) > 1 else ''} {ids} "
               f"(of {jax.process_count()})")


def compile_checked(jitted, args, *, devices, enabled: bool, what: str):
  """`jitted.lower(*args).compile()` and the seconds it took, refused (InputError, in every
  process of a multi-process run) on a CPU host that cannot hold the program on its share of
  `devices`; (None, 0.0) when there is nothing to check (an accelerator, or the check is
  off), and then the caller jits as usual. What decides that is the same in every process
  (the config and the mesh), so all of them reach the all-gather or none does."""
  if not enabled or any(d.platform != "cpu" for d in devices):
    return None, 0.0
  local = [d for d in devices if d.process_index == jax.process_index()]
  t0 = time.perf_counter()
  compiled = jitted.lower(*args).compile()
  seconds = time.perf_counter() - t0
  need = program_bytes(compiled) * len(local)
  check_processes(need, what=what)
  logging.info("%s: compiled in %.1fs; needs %.3g GB of host memory", what, seconds, need / GB)
  return compiled, seconds
