r"""Entry point: flags, optional multi-process start, config validation, training.

  python -m research.main --config=configs/icl_regression.py:cpu --workdir=runs/icl \
      [--config.task.n_dims=8 ...]

Bad input (a config file that is missing or broken, an unknown preset or field, a wrong
type, an invalid choice, a mesh that does not fit the devices, a bad data file or workdir)
exits with status 2 and one line naming it; research/cli.py lists every exit code.
"""
from __future__ import annotations

from research import preemption

if __name__ == "__main__":  # first: a SIGTERM during the imports below preempts the run
  preemption.hold_sigterm()

import os  # noqa: E402 -- after the handler above
import sys  # noqa: E402

from absl import flags, logging  # noqa: E402

from research import cli, hardware, output_paths  # noqa: E402
from research import workdir_layout  # noqa: E402
from research.errors import InputError, RunIOError  # noqa: E402

cli.define_config_flag()
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory (resumes if it holds checkpoints).")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0, for multi-process runs.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in a multi-process run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index.")
_TIMEOUT = flags.DEFINE_integer(
    "coordinator_timeout", 300, "Seconds a multi-process run waits for every process to join "
    "(process 0 listens at --coordinator_address); then exit 2 with one line.")
# jax's coordination service aborts every process in C++ (exit 134, a page of log) once a
# process has missed heartbeats for 100 s. A CPU collective waiting on a lost process does not
# always fail by itself: in a ring all-reduce over several devices per process, a device
# whose neighbour is a local device waits on it after that device's own link to the lost
# process failed (5 of 18 trials of tests/test_multiprocess_lost_peer.py's kill, 2026-12-07:
# a gdb backtrace showed them in gloo's waitRecv), and XLA's CPU collective timeout is 30 min.
# A timeout below the heartbeat's ends it as a collective error first, which
# research/errors.py reads as a lost peer: exit 7, one line.
HEARTBEAT_TIMEOUT_S = 100
_COLLECTIVE_TIMEOUT = flags.DEFINE_integer(
    "collective_timeout", 60, "Seconds a CPU collective of a multi-process run waits for another "
    "process (XLA's --xla_cpu_collective_timeout_seconds; one set in XLA_FLAGS wins); then exit "
    "7 with one line. Raise it when processes legitimately drift apart longer (one host "
    "compiling what another read from its compilation cache); from "
    f"{HEARTBEAT_TIMEOUT_S} s on, jax's heartbeat timeout ends a wait on a lost process first "
    "(an abort in C++, exit 134).")


def with_collective_timeout(xla_flags: str, seconds: int, given: bool) -> str:
  """XLA_FLAGS with XLA's CPU collective timeout set to `seconds`, unless it sets one
  already (kept; refused when --collective_timeout was given too: one would be ignored)."""
  if "xla_cpu_collective_timeout_seconds" in xla_flags:
    if given:
      raise InputError(f"--collective_timeout={seconds} and XLA_FLAGS' "
                       "--xla_cpu_collective_timeout_seconds both set the collective timeout; "
                       "drop one")
    return xla_flags
  return f"{xla_flags} --xla_cpu_collective_timeout_seconds={seconds}".strip()


def _check_address(address: str) -> None:
  """HOST:PORT (an IPv6 host in brackets, [::1]:1234), before jax.distributed reads it: a
  port that is no integer crashed it (segfault) or hung every process, as did an empty host
  or a port out of range."""
  host, _, port = address.rpartition(":")
  bracketed = host.startswith("[") and host.endswith("]")
  problem = (
      "it has whitespace" if any(ch.isspace() for ch in address) else
      "the host is empty" if not host or host == "[]" else
      "an IPv6 host goes in brackets, e.g. [::1]:1234" if ":" in host and not bracketed else
      "the host has a stray bracket" if not bracketed and ("[" in host or "]" in host) else
      f"the port {port!r} is not an integer" if not (port.isascii() and port.isdigit()) else
      f"the port {port[:12]} is not in 1-65535" if len(port) > 5 or not 1 <= int(port) <= 65535
      else "")
  if problem:
    raise InputError(f"--coordinator_address={address} is not HOST:PORT ({problem}); give "
                     "process 0's host and a free port in 1-65535, e.g. "
                     "--coordinator_address=10.0.0.1:1234, the same on every process")


def _check_processes(num: int | None, index: int | None, coordinator: str | None) -> None:
  """The multi-process flags, before jax.distributed raises on them (a traceback) or waits
  for processes that can never join."""
  if num is None or num == 1:
    if index not in (None, 0) or coordinator:
      raise InputError("--process_id and --coordinator_address need --num_processes=N > 1; "
                       "add it, or drop them for a single-process run")
    return
  if num < 1:
    raise InputError(f"--num_processes={num} must be at least 1")
  if not coordinator or ":" not in coordinator:
    raise InputError(f"--num_processes={num} needs --coordinator_address=HOST:PORT of process 0 "
                     "(the same on every process)")
  _check_address(coordinator)
  if index is None or not 0 <= index < num:
    raise InputError(f"--process_id={index} must be in [0, {num}) with --num_processes={num}; "
                     "give each process its own index, 0 on the coordinator's host")


def _join(timeout: int, **where) -> None:
  """jax.distributed.initialize(**where), ended after `timeout` seconds with one line and exit
  2. Left to itself, a process whose coordinator nobody runs (or process 0 whose peers never
  start) waits jax's 300 s, then aborts in C++ (exit 134, a stack trace, nothing a Python
  handler can catch). Its connect releases the GIL but never returns to Python, so it runs
  in a thread while the main thread keeps the clock and Ctrl-C (which a main thread inside
  connect only saw at the timeout, then reported as a run that did not assemble). Either
  ends the process at once (os._exit): the thread cannot be stopped, and nothing is
  written before this (the workdir is created by training)."""
  import threading
  import jax

  outcome: list[BaseException | None] = []

  def connect():
    try:
      # jax's own limit later than ours: its abort must never be what the user sees.
      jax.distributed.initialize(**where, initialization_timeout=timeout + 60)
      outcome.append(None)
    except BaseException as e:  # noqa: BLE001 -- raised again in the main thread
      outcome.append(e)

  thread = threading.Thread(target=connect, daemon=True, name="coordinator-connect")
  import time
  deadline = time.monotonic() + timeout
  try:
    thread.start()
    # In slices: a SIGTERM here only sets preemption's pending flag (hold_sigterm), and
    # waited on for --coordinator_timeout it left a preempted process up for 300 s.
    while thread.is_alive() and time.monotonic() < deadline:
      thread.join(min(0.5, max(deadline - time.monotonic(), 0.0)))
      if preemption.take_pending_sigterm():
        print("preempted (SIGTERM) while the processes assembled: nothing was written; rerun "
              "every process's command to start", file=sys.stderr, flush=True)
        os._exit(0)  # the connect thread cannot be stopped (as for Ctrl-C below)
  except KeyboardInterrupt:
    cli.fail(130, "interrupted", skip_cleanup=True)
  if not outcome:
    who = (f"process {where['process_id']} of {where['num_processes']} at "
           f"--coordinator_address={where['coordinator_address']}" if where else
           "this host's process (the TPU or cluster runtime's coordinator)")
    cli.fail(2, f"the multi-process run did not assemble within --coordinator_timeout={timeout} "
             f"s ({who}): process 0 listens at the coordinator's address and every process "
             "must start with the same --num_processes and --coordinator_address; start the "
             "missing processes, check the host, port and firewall, or raise "
             "--coordinator_timeout", skip_cleanup=True)
  if outcome[0] is not None:
    raise outcome[0]


def _check_port_free(address: str) -> None:
  """Process 0's coordinator binds [::]:PORT (unless JAX_COORDINATOR_BIND_ADDRESS says
  otherwise). When another program holds the port, jax either raises "Failed to start RPC
  server" (a traceback, exit 1) or segfaults (exit 139), at random; a Python socket bound
  the same way first tells, and is closed at once. SO_REUSEADDR as gRPC: a port left in
  TIME_WAIT by an earlier run is free."""
  if "JAX_COORDINATOR_BIND_ADDRESS" in os.environ:
    return
  import errno
  import socket

  port = int(address.rpartition(":")[2])
  for family, host in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
    try:
      with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:  # dual-stack, as gRPC's [::]: IPv4 holders count too
          probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        probe.bind((host, port))
      return
    except OSError as e:
      if e.errno in (errno.EADDRINUSE, errno.EACCES):
        why = ("another program holds it (an earlier run still going, or another process "
               "also given --process_id=0?)"
               if e.errno == errno.EADDRINUSE else "ports below 1024 need root")
        raise InputError(f"process 0 cannot listen on port {port} of --coordinator_address="
                         f"{address}: {why}; give every process the same free port") from None
      # No IPv6 on this host: try IPv4; neither: leave it to jax.


def main(argv) -> int:
  if len(argv) > 1:
    raise InputError(f"unexpected arguments {argv[1:]}; config overrides look like "
                     "--config.model.width=128")
  cli.require({"--config=FILE[:PRESET]": flags.FLAGS.config, "--workdir=DIR": _WORKDIR.value})
  config = cli.config_from_flags()
  workdir = output_paths.check_workdir(_WORKDIR.value)
  workdir_layout.check_kind(workdir, "run")
  _check_processes(_NUM_PROCESSES.value, _PROCESS_ID.value, _COORDINATOR.value)
  multi = bool(_NUM_PROCESSES.value and _NUM_PROCESSES.value > 1)
  from_env = "JAX_COORDINATOR_ADDRESS" in os.environ or "TPU_WORKER_HOSTNAMES" in os.environ
  if _TIMEOUT.value < 1 or (flags.FLAGS["coordinator_timeout"].present and not (multi or from_env)):
    raise InputError(f"--coordinator_timeout={_TIMEOUT.value}: seconds >= 1, for a multi-process "
                     "run (--num_processes=N > 1, or a TPU pod's runtime); fix or drop it")
  timeout = _COLLECTIVE_TIMEOUT.value
  if timeout < 1 or (flags.FLAGS["collective_timeout"].present and not (multi or from_env)):
    raise InputError(f"--collective_timeout={timeout}: seconds >= 1, for a multi-process run "
                     "(--num_processes=N > 1, or a TPU pod's runtime); fix or drop it")
  if multi or from_env:  # XLA_FLAGS is read when JAX starts its backends, below
    os.environ["XLA_FLAGS"] = with_collective_timeout(
        os.environ.get("XLA_FLAGS", ""), timeout, flags.FLAGS["collective_timeout"].present)
  import jax  # after flags, so that --helpfull stays fast

  if multi:
    if _PROCESS_ID.value == 0:
      _check_port_free(_COORDINATOR.value)
    _join(_TIMEOUT.value, coordinator_address=_COORDINATOR.value,
          num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)
  elif from_env:
    _join(_TIMEOUT.value)  # Cloud TPU / cluster environments fill in the rest

  from research import checkpoint, config_check, process_agreement, train

  if jax.process_count() > 1:
    process_agreement.check(config, workdir, _NUM_PROCESSES.value)
  config_check.validate(config, jax.device_count())
  # A pod preset on another slice than the one its layout was planned for (TPU only).
  if warning := hardware.planned_topology_warning(config.get("topology", ""), jax.devices(),
                                                  preset=config.get("preset", "")):
    logging.warning("%s", warning)
  try:
    summary = train.train_and_evaluate(config, workdir)
  except checkpoint.CheckpointError as e:
    raise type(e)(f"{e}; move or delete that directory to start afresh") from None
  except train.Preempted as e:
    print(str(e), file=sys.stderr, flush=True)
    return 0
  except OSError as e:  # unwritable workdir, disk full: the message names the path
    if isinstance(e, (FileNotFoundError, RunIOError)):
      raise
    raise RunIOError(f"{type(e).__name__}: {e}; previous checkpoints are left untouched") from None
  logging.info("done: %s", {k: v for k, v in summary.items() if k != "probes"})
  return 0


if __name__ == "__main__":
  cli.run(main, trains=True)
