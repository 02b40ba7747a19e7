"""What reaches the console of the libraries' log records: one filter for every entry point
(research/cli.py quiet_libraries installs it on absl's handler)."""
from __future__ import annotations

import logging as logging_std


class DropLibraryChatter(logging_std.Filter):
  """Libraries' INFO records (Orbax logs every file it writes, JAX every backend it probes)
  are dropped; the console keeps the run's own lines and every library warning."""

  def filter(self, record) -> bool:
    path = record.pathname
    if not any(part in path for part in ("site-packages", "dist-packages", "orbax")):
      return True
    # Orbax's write errors come back as one CheckpointWriteError line of ours.
    if "orbax" in path and record.exc_info:
      return False
    # TFDS looking for an unprepared dataset warns of a version folder that is not there
    # ("Variant folder .../tiny_shakespeare/1.0.0 has no dataset_info.json") just above our
    # one line saying that no tiny_shakespeare/ exists and how to build it (a trial).
    if "tensorflow_datasets" in path and "has no dataset_info.json" in _message(record):
      return False
    return record.levelno >= logging_std.WARNING


def _message(record) -> str:
  try:  # a record whose arguments do not fit its format must not raise in a filter
    return record.getMessage()
  except Exception:  # noqa: BLE001
    return str(record.msg)
