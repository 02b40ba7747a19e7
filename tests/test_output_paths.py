"""research/output_paths.py's checks of a workdir and of a file a command writes (--out,
--csv): what is refused (a file, remote URLs, pseudo filesystems) and that checking writes
nothing; the entry points' own tables are in tests/test_entry_points.py."""
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


def test_check_workdir(tmp_path, monkeypatch):
  assert output_paths.check_workdir(tmp_path / "new" / "deeper") == str(tmp_path / "new" / "deeper")
  assert not (tmp_path / "new").exists()  # checking creates nothing
  (tmp_path / "f").write_text("x")
  (tmp_path / "link").symlink_to(tmp_path / "gone")
  for path, needle in ((tmp_path / "f", "is a file"), (tmp_path / "f" / "x", "cannot be created"),
                       ("", "is empty"), (tmp_path / "link", "does not exist"),
                       (tmp_path / ("x" * 300), "over the 255")):
    with pytest.raises(InputError, match=needle):
      output_paths.check_workdir(path)
  monkeypatch.setenv("HOME", str(tmp_path))  # --workdir=~/x reaches the program unexpanded
  assert output_paths.check_workdir("~/run") == str(tmp_path / "run")
  assert sorted(tmp_path.iterdir()) == [tmp_path / "f", tmp_path / "link"]  # nothing written


def test_remote_paths_are_refused_naming_a_mount(tmp_path, monkeypatch):
  """gs://B/run became the local folder gs:/B/run (Path drops a slash): each pod host wrote its
  own copy on its own disk. Every writer and init_from refuse it, and nothing is written."""
  from research import init_from, probe_checkpoints, results_records, train
  monkeypatch.chdir(tmp_path)
  for check in (output_paths.check_workdir, lambda p: output_paths.check_output(p, "--out"),
                lambda p: train.train_and_evaluate(None, p), init_from.check_init_from,
                lambda p: results_records.find_runs([p]), probe_checkpoints.probe_run):
    with pytest.raises(InputError, match=r"gs:// URL is not supported.*gcsfuse.*/mnt/b/run"):
      check("gs://b/run")
  assert not any(tmp_path.iterdir())


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_pseudo_filesystems_are_refused_even_for_root():
  """os.access says /proc is writable to root; making an entry there fails (EPERM, ENOENT)."""
  for check, path in ((output_paths.check_workdir, "/proc/run"), (output_paths.check_workdir, "/proc/self"),
                      (lambda p: output_paths.check_output(p, "--out"), "/proc/self/out.json")):
    with pytest.raises(InputError, match="is not writable"):
      check(path)
