"""Where research.aot compiles a plan for: a TPU slice named CHIP:SHAPE, whose devices libtpu
describes on a host that has no TPU (`jax.experimental.topologies`), or this host's own
devices. Every way a slice can be wrong (a misspelt name, a shape the chip does not come in,
a chip whose devices are not chips, no libtpu) is one InputError naming the fix.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import math
import os
import sys
import tempfile

from research import hardware
from research.errors import InputError


@dataclasses.dataclass(frozen=True)
class Target:
  """Where the program is compiled for: devices, and the chip whose table applies."""
  name: str                      # topology name, or "local"
  devices: list
  chip: hardware.Chip | None     # None: a host whose capacity and peak no table holds


def require_libtpu(what: str) -> None:
  if importlib.util.find_spec("libtpu") is None:
    raise InputError(f"{what} needs libtpu to compile for TPUs; install it with "
                     "pip install -e '.[tpu]' (or '.[dev]')")


# What libtpu prints from C++ when it loads on a host that is not a TPU VM.
_LIBTPU_CHATTER = ("could not determine TPU", "Logging before InitGoogle",
                   "Source Location Trace", "libtpu_init_utils")


@contextlib.contextmanager
def _libtpu_chatter_dropped():
  """libtpu's first load off a TPU VM writes five lines to fd 2 (it cannot find the TPU's
  type and workers): true, irrelevant to compiling for a named topology, and out of reach
  of any Python logging filter, so they broke the one-line error contract. fd 2 is
  captured while libtpu loads; every other line is written back after."""
  sys.stderr.flush()
  try:
    saved = os.dup(2)
  except OSError:  # no fd 2 to capture: nothing can be printed there either
    yield
    return
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      kept = [line for line in captured.read().decode(errors="replace").splitlines(True)
              if not any(p in line for p in _LIBTPU_CHATTER)]
      sys.stderr.write("".join(kept))
      sys.stderr.flush()


# A plan's figures are per chip (the chip table's HBM and peak), so a device must be a chip.
# libtpu lists a v4 slice's TensorCores, two per chip, unless asked for the megacore chip
# config, the mode a v4 VM runs in (jax's mesh code refuses anything else on v4). v3 has no
# megacore mode: each core is a device with half the chip's HBM and peak, so it is refused.
def _refuse_per_core(chip: hardware.Chip | None, what: str) -> None:
  if chip is not None and chip.topology_prefix == "v3":
    raise InputError(f"{what}: a TPU v3 chip is two devices (one per TensorCore, each with "
                     "half its HBM and peak) and has no one-device-per-chip mode, so per-chip "
                     "figures cannot be planned; plan on v4, v5e, v5p or v6e, e.g. v4:2x2x1")


def _shape(name: str) -> list[int]:
  """[4, 4] of 'v5e:4x4' (a name is_topology_name accepted)."""
  return [int(x) for x in name.split(":", 1)[1].split("x")]


def check_topology_name(name: str, flag: str = "--topology") -> None:
  """CHIP:SHAPE spelled as libtpu reads it (whether the chip has that shape, libtpu says)."""
  if not hardware.is_topology_name(name):
    # v3 is not offered (refused below whatever its shape); an upper-case name is named as such
    plannable = [p for p in hardware.topology_prefixes() if p != "v3"]
    case = (f" (lower case: {name.lower()})" if name != name.lower()
            and hardware.is_topology_name(name.lower()) else "")
    raise InputError(f"{flag}={name!r} is not a TPU topology name{case}; write CHIP:SHAPE "
                     f"with CHIP one of {', '.join(plannable)}, e.g. v5e:4x4 or v5p:4x4x4")
  chip = hardware.chip_for_topology(name)
  _refuse_per_core(chip, f"{flag}={name}")  # first: v3 is refused whatever its shape
  # libtpu planned v5e:2x2x2, a slice v5e never comes in
  if problem := hardware.topology_dims_problem(name):
    raise InputError(f"{flag}={name}: {problem}")


def topology_target(name: str, flag: str = "--topology") -> Target:
  """The devices of a TPU topology; every way the name can be wrong is one InputError."""
  check_topology_name(name, flag)
  chip = hardware.chip_for_topology(name)
  require_libtpu(f"{flag}={name}")
  # libtpu takes /tmp/libtpu_lockfile so that two processes never drive one TPU; every
  # JAX process on a host with libtpu installed probes for a TPU and holds it. A
  # compile-only use drives no TPU, so it need not wait for them.
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  from jax.experimental import topologies
  config = {"chip_config_name": "megacore"} if chip.topology_prefix == "v4" else {}
  sizes = _shape(name)
  if chip.torus_dims == 2 and sizes == [1, 1]:  # v5e:1x1, v6e:1x1 (one-chip VMs): below
    config["chips_per_host_bounds"] = (1, 1, 1)  # libtpu's default 2x2 host, so refused
  try:
    with _libtpu_chatter_dropped():
      devices = topologies.get_topology_desc(platform="tpu", topology_name=name,
                                             **config).devices
  except Exception as e:  # noqa: BLE001 -- libtpu's errors (bad shape) come back as one line
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise InputError(f"{flag}={name}: {reason}; use a shape the chip supports, e.g. "
                     "v5e:2x2, v5e:4x4, v5e:8x8, v5p:2x2x1, v5p:4x4x4, v6e:4x4") from None
  chips = math.prod(sizes)
  if len(devices) != chips:  # a chip listed as its cores: per-chip figures would be per core
    raise InputError(f"{flag}={name}: libtpu lists {len(devices)} devices for {chips} chips; "
                     "plan on a chip it lists one device per chip for, e.g. v5e:4x4")
  return Target(name, list(devices), chip)


@contextlib.contextmanager
def not_persisted(target: Target):
  """Keeps a slice's program out of JAX's persistent compilation cache. libtpu compiles a
  slice it does not have with a compile-only client, whose executables cannot be loaded
  back: with the cache on (a user's JAX_COMPILATION_CACHE_DIR, the test session's), each
  plan stored its TPU program there and the next compile of the same program warned "Error
  reading persistent compilation cache entry ... PjRtCompiler must be constructed with a
  Client" and compiled again. JAX decides once per process whether the cache is used, so
  the write is stopped through the one setting it reads at each write, the minimum compile
  time worth storing (JAX still looks a program up: an entry an older version stored warns
  until the cache directory is cleared). The local devices' programs are cached as the user
  set. Not thread-safe (the setting is global); research.aot compiles one plan at a time."""
  if target.name == "local":
    yield
    return
  import jax
  name = "jax_persistent_cache_min_compile_time_secs"
  saved = getattr(jax.config, name)
  jax.config.update(name, float("inf"))
  try:
    yield
  finally:
    jax.config.update(name, saved)


def local_target() -> Target:
  import jax
  devices = jax.devices()
  chip = hardware.chip_for_device_kind(getattr(devices[0], "device_kind", ""))
  _refuse_per_core(chip, f"this host's {len(devices)} devices")
  return Target("local", devices, chip)
