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
In a multi-process run every process sends its need and the two pools of memory it draws on
(its machine's MemAvailable, its tightest cgroup limit) to every other (one all-gather, before
any state), and every process reaches the same verdict from the same figures: the processes
that share a pool are summed against it, and all refuse together, since one refusing alone
would leave the others waiting in their first collective.
The compiled program is then the one the loop calls: no second compile.

The figure is the step's buffers alone, so the check refuses only what cannot run: the
process needs more (the JAX runtime, the data, eval programs, checkpoint copies). Measured
on this 2-core host: configs/lm_ladder.py:c6 (10M parameters) needs 1.66 GB by this count
and peaked at 2.85 GB resident (/usr/bin/time -v, 2026-12-05).
"""
from __future__ import annotations

import fractions
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


def _tightest_cgroup() -> tuple[int, Path] | None:
  """The least unused limit among this process's cgroups, and that group's directory."""
  known = [(b, d) for d, n in _cgroup_dirs() if (b := _unused_limit(d, n)) is not None]
  return min(known, key=lambda bd: bd[0]) if known else None


def available_bytes() -> int | None:
  """What this process can still allocate without swapping or being killed: the host's
  MemAvailable, or the container's unused limit where that is lower; None where neither
  can be read (not Linux), and then nothing is checked."""
  cgroup = _tightest_cgroup()
  known = [b for b in (_meminfo_available(), cgroup and cgroup[0]) if b is not None]
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


def _key(text: str) -> int:
  return zlib.crc32(text.encode()) & 0x7FFFFFFF


def _machine() -> str:
  try:
    return _BOOT_ID.read_text().strip()  # one per running kernel: containers on it share it
  except OSError:
    return socket.gethostname()


def _mib(n: int, up: bool) -> int:
  return min((math.ceil if up else math.floor)(n / MIB), 2 ** 31 - 1)


def process_row(need_bytes: int | None) -> np.ndarray:
  """What a process tells the others: its need (MiB, rounded up; -1: its check is off), and
  the two pools of memory it draws on, each as (available MiB, rounded down, or -1 if not
  known; key): the machine's MemAvailable, which every process on that kernel shares, and
  its tightest cgroup limit, which every process in that group shares (the key is the
  group's inode, the same whatever path a container sees it under)."""
  machine = _machine()
  mem = _meminfo_available()
  cgroup = _tightest_cgroup()
  cg_key = -1
  if cgroup is not None:
    try:
      st = cgroup[1].stat()
      cg_key = _key(f"{machine}|{st.st_dev}|{st.st_ino}")
    except OSError:
      cgroup = None
  return np.array([-1 if need_bytes is None else _mib(need_bytes, up=True),
                   -1 if mem is None else _mib(mem, up=False), _key(machine),
                   -1 if cgroup is None else _mib(cgroup[0], up=False), cg_key], np.int32)


POOLS = ((1, 2, "the memory of the machine"), (3, 4, "the memory limit (cgroup)"))


def worst_pool(rows) -> tuple[int, int, str, list[int]] | None:
  """From every process's row (process_row), the pool of memory whose processes together
  need the largest share of the least any of them saw available: (need MiB, available MiB,
  what the pool is, its process indices); None where a process's check is off (then no
  process checks) or no pool is known."""
  rows = np.asarray(rows, np.int64)
  if (rows[:, 0] < 0).any():
    return None
  worst, worst_rank = None, None
  for avail_col, key_col, what in POOLS:
    for key in sorted(set(rows[:, key_col].tolist()) - {-1}):
      members = np.flatnonzero(rows[:, key_col] == key)
      known = rows[members, avail_col][rows[members, avail_col] >= 0]
      if not len(known):
        continue
      need, available = int(rows[members, 0].sum()), int(known.min())
      rank = (need > available, fractions.Fraction(need, available) if available
              else math.inf if need else 0)
      if worst is None or rank > worst_rank:
        worst, worst_rank = (need, available, what, members.tolist()), rank
  return worst


def check_processes(need_bytes: int | None, *, what: str) -> None:
  """check() for a multi-process run: every process's figures, gathered, and the same
  verdict (the worst pool's) in each; a single process checks its own (None: not at all)."""
  if jax.process_count() == 1:
    if need_bytes is not None:
      check(need_bytes, what=what)
    return
  from jax.experimental import multihost_utils
  worst = worst_pool(multihost_utils.process_allgather(process_row(need_bytes)))
  if worst is not None:
    need, available, pool, processes = worst
    ids = ", ".join(map(str, processes))
    check(need * MIB, available=available * MIB, what=what,
          host=f"{pool} of process{'es' if len(processes) > 1 else ''} {ids} "
               f"(of {jax.process_count()})")


def compile_checked(jitted, args, *, devices, enabled: bool, what: str):
  """`jitted.lower(*args).compile()` and the seconds it took, refused (InputError, in every
  process of a multi-process run) on a CPU host that cannot hold the program on its share of
  `devices`; (None, 0.0) when there is nothing to check (an accelerator, or the check is
  off), and then the caller jits as usual. Every process of a CPU run joins the all-gather,
  one whose check is off too (it turns the check off for all): a flag set on some processes
  only must not leave the others waiting."""
  if any(d.platform != "cpu" for d in devices) or (not enabled and jax.process_count() == 1):
    return None, 0.0
  if not enabled:
    check_processes(None, what=what)
    return None, 0.0
  local = [d for d in devices if d.process_index == jax.process_index()]
  t0 = time.perf_counter()
  compiled = jitted.lower(*args).compile()
  seconds = time.perf_counter() - t0
  need = program_bytes(compiled) * len(local)
  check_processes(need, what=what)
  logging.info("%s: compiled in %.1fs; needs %.3g GB of host memory", what, seconds, need / GB)
  return compiled, seconds
