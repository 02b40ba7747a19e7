"""JAX/Flax research codebase: emergence and in-context learning as models scale."""
import glob as _glob
import os as _os


def _quiet_backend_probe() -> None:
  """On a host with neither a TPU nor an NVIDIA GPU, tell JAX to use the CPU.

  The `dev` extra installs libtpu (so tests can compile for TPU topologies). With it
  installed, JAX's first backend probe on a CPU-only host prints several lines of C++
  warnings ("could not determine TPU accelerator type", ...) that no Python logging
  filter can drop, breaking the one-line error contract of every entry point. Compiling
  for a TPU topology (research.aot) does not need the TPU platform, so nothing is lost.
  An explicit JAX_PLATFORMS, a TPU VM (/dev/accel*, /dev/vfio/*, TPU_* variables) and a
  GPU host are left alone.
  """
  if "JAX_PLATFORMS" in _os.environ:
    return
  tpu = (_glob.glob("/dev/accel*") or _glob.glob("/dev/vfio/[0-9]*")
         or any(k in _os.environ for k in ("TPU_NAME", "TPU_ACCELERATOR_TYPE",
                                           "TPU_WORKER_HOSTNAMES", "COLAB_TPU_ADDR")))
  gpu = _glob.glob("/dev/nvidia[0-9]*") or _os.path.exists("/proc/driver/nvidia")
  if not tpu and not gpu:
    _os.environ["JAX_PLATFORMS"] = "cpu"


_quiet_backend_probe()
