"""research/output_paths.py's check of a file a command writes (--out, --csv), beyond the
entry-point tables of tests/test_entry_points.py."""
import os
from pathlib import Path

import pytest

from research import output_paths
from research.errors import InputError


def test_a_device_or_pipe_is_refused_not_replaced(tmp_path):
  """Every writer writes a temporary file beside the path and renames it over it: as root,
  python -m research.aot ... --out=/dev/null replaced /dev/null with a regular file holding
  the plan (exit 0), for every process on the host. Only checked here, never written."""
  fifo = tmp_path / "pipe"
  os.mkfifo(fifo)
  with pytest.raises(InputError, match=r"--out=.*pipe is not a regular file.*e\.g\. --out=plan\.json"):
    output_paths.check_output(str(fifo), "--out", example="plan.json")
  if Path("/dev/null").is_char_device():
    with pytest.raises(InputError, match="--csv=/dev/null is not a regular file"):
      output_paths.check_output("/dev/null", "--csv")
  assert fifo.exists() and not fifo.is_file()  # left as it was
  output_paths.check_output(str(tmp_path / "plan.json"), "--out")  # control: a new file
  (tmp_path / "old.json").write_text("{}")
  output_paths.check_output(str(tmp_path / "old.json"), "--out")  # and an existing one
