"""Metric writers (JSONL + TensorBoard) and the console progress line.

`metrics.jsonl` is the source of truth: one JSON object per logging step,
written by process 0. On resume it is cut back to the restored step, so that a
killed-and-resumed run leaves the same file as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from research import hardware
from research import workdir as workdir_lib
from research import workdir_resume
from research.errors import RunIOError


def measure_matmul_peak(n: int = 2048, reps: int = 8) -> float:
  """FLOP/s of a large fp32 matmul on the default device (the CPU's practical peak)."""
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  best = float("inf")
  for _ in range(reps):
    t = time.perf_counter()
    f(a).block_until_ready()
    best = min(best, time.perf_counter() - t)
  return 2 * n ** 3 / best


def device_peak_flops(dtype: str, override: float = 0.0,
                      precision: str = "default") -> tuple[float, str]:
  """Peak FLOP/s of one device for matmuls in `dtype` at `precision` (default | highest:
  experiment.matmul_precision), and where the number came from."""
  if override > 0:
    return override, "config"
  dev = jax.devices()[0]
  if dev.platform == "cpu":
    return _cpu_peak()
  kind = getattr(dev, "device_kind", "")
  chip = hardware.chip_for_device_kind(kind)
  if chip is not None:
    # Per device: a v3 host's 8 devices are its 4 chips' cores (MFU was halved before).
    per_device = chip.peak_flops(dtype, precision) / chip.devices_per_chip
    at = f" at precision {precision}" if dtype != "bfloat16" else ""
    return per_device, f"table ({chip.name}, {dtype}{at}; research/hardware.py)"
  return 0.0, f"unknown device {kind!r}: set config.train.peak_flops for MFU"


@functools.lru_cache(maxsize=None)
def _cpu_peak() -> tuple[float, str]:
  """Best fp32 matmul rate seen on this CPU model.

  Measured once per process (0.5-1 s the first time, then ~0.3 s): a sweep running many
  runs in one process would otherwise pay it per run.

  A single measurement under load (another job on the cores) underestimates
  the peak and inflates MFU, so the best value ever measured is kept in
  ~/.cache/research_jax/cpu_peak.json, keyed by CPU model and core count.
  """
  import platform
  key = f"{_cpu_model()}|{os.cpu_count()}|{platform.machine()}"
  path = Path(os.path.expanduser("~/.cache/research_jax/cpu_peak.json"))
  try:
    table = json.loads(path.read_text()) if path.exists() else {}
  except (OSError, ValueError):
    table = {}
  # With a best already kept, a best-of-2 check may raise it (every process pays this:
  # each test that starts research.main, each run of a script); the first, best of 8.
  measured = measure_matmul_peak(reps=2 if table.get(key) else 8)
  best = max(measured, float(table.get(key, 0.0)))
  if best > table.get(key, 0.0):
    # Several processes (the test workers, a sweep beside a run) update it at once: written
    # whole (a reader never sees half a file, which read as no best at all) and never lower.
    with contextlib.suppress(OSError, ValueError, RunIOError):
      path.parent.mkdir(parents=True, exist_ok=True)
      with contextlib.suppress(OSError, ValueError):
        table = json.loads(path.read_text()) | table
      best = max(best, float(table.get(key, 0.0)))
      workdir_lib.write_text(path, json.dumps(table | {key: best}))
  return best, f"fp32 matmul: best measured {best:.3g} (now {measured:.3g})"


def _cpu_model() -> str:
  try:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return "cpu"


class MetricsWriter:
  """metrics.jsonl (values of the training state: deterministic, so two identical
  runs, or a killed-and-resumed one, write identical files) + perf.jsonl
  (throughput, MFU, ETA: wall-clock dependent) + TensorBoard. Process 0 writes.

  Everything is written synchronously on the caller's thread: tensorboardX's own writer
  thread dies silently on a full disk and its queue then blocks the training loop
  forever. Here a failed write raises RunIOError (exit 5) at the step that hit it.
  """

  def __init__(self, workdir: str, resume_step: int):
    self.enabled = jax.process_index() == 0
    self.path = Path(workdir) / workdir_lib.METRICS
    self.perf_path = Path(workdir) / workdir_lib.PERF
    self._tb = None
    self._synced: set[Path] = set()  # files whose directory entry was synced
    self._held: set[Path] = set()  # files that hold rows: one gone later was removed mid-run
    self._latest: tuple[int, dict, dict] = (-1, {}, {})  # step, its metrics and perf rows
    if not self.enabled:
      return
    for path in (self.path, self.perf_path):
      workdir_resume.repair_jsonl(path, resume_step)
      if path.is_file():
        self._held.add(path)
    try:
      from tensorboardX.event_file_writer import EventsWriter
    except ImportError:  # TensorBoard is optional; JSONL is the record
      logging.warning("tensorboardX not installed: TensorBoard events are not written")
      return
    tb_dir = Path(workdir) / "tensorboard"
    with self._io(tb_dir):
      tb_dir.mkdir(parents=True, exist_ok=True)
      self._tb = EventsWriter(str(tb_dir / "events"))
      if resume_step:  # TensorBoard drops the killed run's events from this step on
        from tensorboardX.proto import event_pb2
        self._tb.write_event(event_pb2.Event(
            wall_time=time.time(), step=resume_step + 1,
            session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))

  @contextlib.contextmanager
  def _io(self, path: Path):
    try:
      yield
    except OSError as e:
      fix = ("free space" if e.errno in (errno.ENOSPC, errno.EDQUOT) else
             f"make {path} writable" if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else
             "fix the cause")  # "free space" sent a user with a read-only file to the disk
      raise RunIOError(f"writing {path} failed: {e.strerror or e}; checkpoints are "
                       f"untouched, {fix} and rerun to resume") from None

  def latest(self) -> dict:
    """The rows written at the latest step, merged as `logged_at` reads them back from the
    files (metrics.jsonl's rows in order: training, then evaluation; then perf.jsonl's): a
    run's summary.json final_*, the same whether the run trained them or a rerun of the
    finished run read them back (the training row alone lacked the final evaluation)."""
    return self._latest[1] | self._latest[2]

  def write(self, step: int, metrics: dict, *, perf: bool = False) -> None:
    values = {k: _jsonable(v) for k, v in metrics.items()}
    at, rows, perf_rows = self._latest if self._latest[0] == step else (step, {}, {})
    self._latest = (at, rows, perf_rows | values) if perf else (at, rows | values, perf_rows)
    if not self.enabled:
      return
    row = {"step": int(step)} | values
    path = self.perf_path if perf else self.path
    if path in self._held and not path.exists():
      # Appending recreated it with the later rows alone, without a word.
      logging.warning("%s was removed while the run was going: its rows before step %d are "
                      "gone, and it holds the rows from there on", path, step)
    with self._io(path), path.open("a") as f:
      f.write(json.dumps(row) + "\n")
    self._held.add(path)
    if self._tb is not None:
      from tensorboardX.proto import event_pb2
      from tensorboardX.summary import scalar
      with self._io(Path(self._tb._file_name)):
        for k, v in row.items():
          if k != "step" and isinstance(v, (int, float)):
            self._tb.write_event(event_pb2.Event(
                wall_time=time.time(), step=int(step),
                summary=scalar(("perf/" if perf else "") + k, float(v))))
        self._tb.flush()

  def sync(self) -> None:
    """Forces the rows written so far to the disk: called before each checkpoint save, so
    that a checkpoint an OS crash or power loss leaves behind never outlives the rows of
    the steps it holds (a resume cannot recompute them; they would be a silent gap). A
    filesystem that cannot sync (some FUSE mounts: EINVAL) is left to its own guarantees;
    a failed sync (EIO, ENOSPC: rows lost) is exit 5 like a failed write."""
    if not self.enabled:
      return
    present = {path for path in (self.path, self.perf_path) if path.exists()}
    for path in present:
      with self._io(path), path.open("a") as f:
        _fsync(f.fileno())
    if present - self._synced:  # a file made since the last sync: its directory entry too
      with self._io(self.path.parent):
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
          _fsync(fd)
        finally:
          os.close(fd)
      self._synced = present

  def close(self) -> None:
    if self._tb is not None:
      tb, self._tb = self._tb, None
      with self._io(Path(tb._file_name)):
        tb.close()


def _fsync(fd: int) -> None:
  try:
    os.fsync(fd)
  except OSError as e:
    if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
      raise


def logged_at(workdir: str | Path, step: int) -> dict:
  """The metrics and perf rows logged at `step` in workdir, merged (without "step")."""
  out = {}
  for name in (workdir_lib.METRICS, workdir_lib.PERF):
    for row in workdir_lib.read_jsonl(Path(workdir) / name):
      if row.get("step") == step:
        out |= {k: v for k, v in row.items() if k != "step"}
  return out


def _jsonable(v):
  if isinstance(v, (np.ndarray, jax.Array)):
    v = np.asarray(v)
    return v.item() if v.ndim == 0 else v.tolist()
  if isinstance(v, np.generic):
    return v.item()
  return v


class Progress:
  """Throughput, MFU and ETA over the last logging window."""

  def __init__(self, *, total_steps: int, examples_per_step: int, tokens_per_step: int,
               flops_per_step: float, peak_flops: float, num_devices: int):
    self.total = total_steps
    self.examples, self.tokens = examples_per_step, tokens_per_step
    self.flops = flops_per_step
    # A CPU's peak is measured with every core of the host, however many devices the
    # host is split into (--xla_force_host_platform_device_count): count hosts, not devices.
    on_cpu = jax.devices()[0].platform == "cpu"
    self.peak = peak_flops * (jax.process_count() if on_cpu else num_devices)
    self._t, self._step = None, None
    self._before = None  # (time, step) where the window before the last one began

  def start(self, step: int) -> None:
    self._t, self._step = time.perf_counter(), step
    self._before = None

  def measure(self, step: int, now: float | None = None) -> dict:
    """Rates since the previous call (the first window includes no compile); {} when no
    step has been timed since (a window that ends with the first call). `now`: when the
    window's last step was done (research/loop.py), if not now."""
    now = time.perf_counter() if now is None else now
    steps = step - self._step
    if steps <= 0:
      return {}
    if now <= self._t:
      # No time measured for these steps (research/loop.py ended the window before at this
      # window's done time: a call read late whose successor was done at its dispatch): the
      # two windows' steps over their time together, never 2e9 steps/s, nor none at the end.
      if self._before is None or now <= self._before[0]:
        return {}
      (t0, step0), self._step = self._before, step
      steps, dt = step - step0, now - t0
    else:
      dt = now - self._t
      self._before, self._t, self._step = (self._t, self._step), now, step
    sps = steps / dt
    out = {"steps_per_s": sps, "examples_per_s": sps * self.examples,
           "tokens_per_s": sps * self.tokens,
           "eta_s": (self.total - step) / sps if sps > 0 else float("inf")}
    if self.peak > 0:
      out["mfu"] = sps * self.flops / self.peak
    return out

  def line(self, step: int, loss: float, rates: dict) -> str:
    mfu = f"MFU {100 * rates['mfu']:.1f}%" if "mfu" in rates else "MFU n/a"
    eta = rates["eta_s"]
    return (f"step {step}/{self.total} | loss {loss:.4g} | {rates['steps_per_s']:.2f} steps/s | "
            f"{rates['examples_per_s']:.0f} ex/s | {rates['tokens_per_s']:.0f} tok/s | {mfu} | "
            f"ETA {int(eta // 60)}m{int(eta % 60):02d}s")
