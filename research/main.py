"""Entry point: flags, optional multi-process start, config validation, training.

  python -m research.main --config=configs/icl_regression.py:cpu --workdir=runs/icl \
      [--config.task.n_dims=8 ...]

Bad input (an unknown field, a wrong type, an invalid choice, a mesh that does
not fit the devices) exits with status 2 and one line naming the field.
"""
from __future__ import annotations

import logging as logging_std
import os
import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file and preset, e.g. configs/icl_regression.py:cpu.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory (resumes if it holds checkpoints).")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0, for multi-process runs.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in a multi-process run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index.")

EXIT_CONFIG, EXIT_NONFINITE, EXIT_CHECKPOINT, EXIT_IO = 2, 3, 4, 5


def _fail(code: int, message: str, *, skip_cleanup: bool = False) -> None:
  print(f"error: {message}", file=sys.stderr, flush=True)
  if skip_cleanup:
    # The disk is full or gone: libraries' exit hooks (TensorBoard's final flush, Orbax's
    # async save threads) would retry their writes and print tracebacks after this line.
    # Nothing is lost by skipping them: metrics rows are flushed as written and a
    # checkpoint only exists once its directory was committed.
    sys.stdout.flush()
    os._exit(code)
  sys.exit(code)


class _DropLibraryChatter(logging_std.Filter):
  """Orbax logs every file it writes at INFO; keep the console for the run itself."""

  def filter(self, record) -> bool:
    if "orbax" not in record.pathname:
      return True
    # Orbax's write errors come back as one CheckpointWriteError line of ours.
    return record.levelno >= logging_std.WARNING and not record.exc_info


def main(argv) -> None:
  logging.get_absl_handler().addFilter(_DropLibraryChatter())
  if len(argv) > 1:
    _fail(EXIT_CONFIG, f"unexpected arguments {argv[1:]}; config overrides look like "
          "--config.model.width=128")
  if _CONFIG.value is None or _WORKDIR.value is None:
    _fail(EXIT_CONFIG, "--config=FILE[:PRESET] and --workdir=DIR are required")
  import jax  # after flags, so that --helpfull stays fast

  if _NUM_PROCESSES.value and _NUM_PROCESSES.value > 1:
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  elif "JAX_COORDINATOR_ADDRESS" in os.environ or "TPU_WORKER_HOSTNAMES" in os.environ:
    jax.distributed.initialize()  # Cloud TPU / cluster environments fill in the rest

  from research import checkpoint, config_check, train

  config = _CONFIG.value
  try:
    config_check.validate(config, jax.device_count())
  except config_check.ConfigError as e:
    _fail(EXIT_CONFIG, str(e))
  try:
    summary = train.train_and_evaluate(config, _WORKDIR.value)
  except train.NonFiniteLossError as e:
    _fail(EXIT_NONFINITE, str(e))
  except checkpoint.CheckpointError as e:
    _fail(EXIT_CHECKPOINT, f"{e}; move or delete that directory to start afresh")
  except _input_errors() as e:  # a missing dataset or file, an incompatible init_from
    _fail(EXIT_CONFIG, " ".join(str(e).split()))
  except train.Preempted as e:
    print(str(e), file=sys.stderr, flush=True)
    sys.exit(0)
  except OSError as e:  # unwritable workdir, disk full: the message names the path
    _fail(EXIT_IO, f"{type(e).__name__}: {e}; previous checkpoints are left untouched",
          skip_cleanup=True)
  logging.info("done: %s", {k: v for k, v in summary.items() if k != "probes"})


def _input_errors() -> tuple[type[BaseException], ...]:
  """Errors that mean "the input is wrong", each raised with a message naming the fix."""
  from research import predict
  from research.tasks import tfds_arrays
  return (tfds_arrays.DatasetUnavailableError, predict.InitFromError, FileNotFoundError)


def run() -> None:
  """Flag parsing errors (unknown field, wrong type) become one line, no traceback."""
  try:
    app.run(main, flags_parser=_parse_flags)
  except SystemExit:
    raise


def _parse_flags(argv):
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _fail(EXIT_CONFIG, _one_line(str(e)))
  except (KeyError, AttributeError) as e:  # an override of a field the config lacks
    text = str(e.args[0] if e.args else e).encode().decode("unicode_escape")
    found = re.search(r"[A-Za-z_][A-Za-z0-9_]*", text)
    name = found.group(0) if found else "?"
    hint = re.search(r"Did you mean .*", text)
    arg = next((a.split("=")[0] for a in argv if a.startswith("--config.") and name in a), "")
    _fail(EXIT_CONFIG, f"unknown config field {name!r} in {arg or 'the overrides'}"
          + (f"; {hint.group(0).rstrip(chr(39))}" if hint else "")
          + " (the config file lists every field, each with a comment)")
  except (TypeError, ValueError) as e:
    _fail(EXIT_CONFIG, _one_line(str(e)))


def _one_line(msg: str) -> str:
  msg = " ".join(msg.split())
  return msg[:500]


if __name__ == "__main__":
  run()
