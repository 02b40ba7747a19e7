"""Writers fail, never hang, and keep what was there: a full disk under the metrics writer is a
RunIOError, an atomic write whose writer fails leaves the old file, strict JSON writes non-finite
numbers as null, a failed save's OS reason survives a long path, and only TensorStore's
closed-loop reports are filtered from the log (research/checkpoint_noise.py)."""
import json
import sys

import numpy as np
import pytest

from research import checkpoint, errors, metrics, workdir


def test_a_full_disk_under_a_writer_is_a_run_io_error(tmp_path):
  w = metrics.MetricsWriter(str(tmp_path), resume_step=0)
  w.write(20, {"loss": 1.0})
  w._tb._py_recordio_writer._writer = open("/dev/full", "wb")  # the event file's disk is full
  with pytest.raises(errors.RunIOError, match="No space left on device"):
    w.write(40, {"loss": 0.5})
  w._tb = None
  (tmp_path / "metrics.jsonl").unlink()
  (tmp_path / "metrics.jsonl").symlink_to("/dev/full")
  with pytest.raises(errors.RunIOError, match="metrics.jsonl failed: No space left on device"):
    w.write(60, {"loss": 0.25})


def test_atomic_writes_leave_the_old_file_when_the_writer_fails(tmp_path):
  path = tmp_path / "summary.json"
  workdir.write_json(path, {"final_step": 20})
  with pytest.raises(RuntimeError):
    with workdir.atomic_path(path) as tmp:
      tmp.write_text('{"final_st')
      raise RuntimeError("killed mid-write")
  assert json.loads(path.read_text()) == {"final_step": 20}
  assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_strict_json_writes_non_finite_as_null(tmp_path):
  # besiroglu2024 wrote "D_opt": Infinity and scaling_laws NaN: not JSON to a strict reader.
  path = tmp_path / "fit.json"
  obj = {"D_opt": float("inf"), "rows": [np.float64("nan"), 1.5, (2, -np.inf)], "n": 3}
  workdir.write_json(path, obj, strict=True)
  strict = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"wrote {c}"))
  assert strict == {"D_opt": None, "rows": [None, 1.5, [2, None]], "n": 3}
  with pytest.raises(TypeError):  # a complex number has no JSON value: refused, not cast
    workdir.write_json(path, {"N": complex(1, 2)}, strict=True)


def _closed_loop_report(**change):
  """What TensorStore's write thread reports after Orbax closed its loop, as
  PyErr_WriteUnraisable(NULL) passes it to the hook: a real asyncio "Event loop is closed"
  (traceback ending in asyncio's _check_closed), no object; `change` replaces fields."""
  import asyncio
  import types
  loop = asyncio.new_event_loop()
  loop.close()
  try:
    loop.call_soon_threadsafe(print)
  except RuntimeError as e:
    report = dict(exc_type=type(e), exc_value=e, exc_traceback=e.__traceback__,
                  err_msg=None, object=None)
  return types.SimpleNamespace(**(report | change))


def _deliver(report, thread=True):
  import threading
  if thread:
    t = threading.Thread(target=sys.unraisablehook, args=(report,))
    t.start()
    t.join()
  else:
    sys.unraisablehook(report)


def test_only_tensorstore_closed_loop_reports_are_filtered(monkeypatch, caplog):
  """Dropped: asyncio's "Event loop is closed" from _check_closed, reported with no object
  from a non-main thread (one log line for any number). Each variant that breaks one of
  those conditions still reaches the previous hook."""
  from research import checkpoint_noise

  def _check_closed():  # a function of the same name outside asyncio
    raise RuntimeError("Event loop is closed")
  try:
    _check_closed()
  except RuntimeError as e:
    elsewhere = e.__traceback__
  import asyncio
  loop = asyncio.new_event_loop()
  try:  # another function of asyncio/base_events.py raising
    loop.set_default_executor(object())
  except TypeError as e:
    other_asyncio = e.__traceback__
  loop.close()
  reached = []
  monkeypatch.setattr(sys, "unraisablehook", reached.append)
  checkpoint_noise._install_closed_loop_filter()
  with caplog.at_level("WARNING"):
    for _ in range(3):
      _deliver(_closed_loop_report())
  assert reached == [] and len(caplog.records) == 1, caplog.records
  kept = [(_closed_loop_report(), False),  # the main thread
          (_closed_loop_report(object=object()), True),
          (_closed_loop_report(exc_value=RuntimeError("another error")), True),
          (_closed_loop_report(exc_value=ValueError("Event loop is closed")), True),
          (_closed_loop_report(exc_traceback=elsewhere), True),
          (_closed_loop_report(exc_traceback=other_asyncio), True),
          (_closed_loop_report(exc_traceback=None), True)]
  for report, thread in kept:
    _deliver(report, thread)
  assert reached == [r for r, _ in kept]


def test_a_failed_saves_os_reason_survives_a_long_path():
  """Under `ulimit -f` a save's error text (a long TensorStore path, then 'File too large')
  was cut at 300 characters before its reason. Control: a text with no OS reason is kept,
  cut as before."""
  long = "Failed writing: \"/tmp/" + "x" * 400 + "/ocdbt.process_0/d/e\" [OS error 27: File too large]"
  assert checkpoint._write_cause(long) == (
      "File too large (raise the file-size limit, ulimit -f, then rerun to resume)")
  assert checkpoint._write_cause("os_error_code='28' ...").startswith("No space left on device")
  assert checkpoint._write_cause("y" * 400) == "y" * 300


def test_orbax_notices_are_dropped_and_every_other_absl_warning_kept(caplog):
  """Orbax's two notices (root metadata missing on resume, a read-only directory for every
  reader) are dropped on the absl logger that Orbax logs through; any other warning, one that
  names the same words after its own text included, still reaches the user's log."""
  import logging as logging_std

  from absl import logging as absl_logging

  import research.checkpoint_noise  # noqa: F401  (installs the filter, as checkpoint does)
  with caplog.at_level(logging_std.INFO):
    absl_logging.warning("Metadata file does not exist: /w/checkpoints/_CHECKPOINT_METADATA")
    absl_logging.warning("Given directory is read only=/w/checkpoints/20")
    absl_logging.warning("Restore failed: Metadata file does not exist: /w/checkpoints/20")
    absl_logging.error("Failed to save checkpoint 20: No space left on device")
    absl_logging.warning("Given directory is not a checkpoint")
  assert [r.getMessage() for r in caplog.records] == [
      "Restore failed: Metadata file does not exist: /w/checkpoints/20",
      "Failed to save checkpoint 20: No space left on device",
      "Given directory is not a checkpoint"]
