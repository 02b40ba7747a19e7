"""research/workdir_lock.py: one process per workdir, even when .lock is deleted by hand, a
holder's name cannot be written, or the holder was killed. (A second training run refused
naming the holder: tests/test_faults.py.)"""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from research import workdir, workdir_lock

ROOT = Path(__file__).resolve().parents[1]


def test_a_lock_file_deleted_by_hand_lets_no_second_process_in(tmp_path):
  """`rm DIR/.lock` while the run is live (a habit with stale lock files): the second
  process used to make a new .lock, lock it and write the same workdir."""
  code = ("from research import workdir_lock\n"
          "try:\n"
          f"  workdir_lock.Lock({str(tmp_path)!r}, 'a training run').acquire()\n"
          "  print('entered')\n"
          "except workdir_lock.WorkdirBusyError as e:\n"
          "  print(e)\n")
  second = lambda: subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120,
                                  capture_output=True, text=True).stdout.strip()
  held = workdir_lock.Lock(tmp_path, "a training run")
  held.acquire()
  try:
    (tmp_path / workdir.LOCK).unlink()
    assert "is in use by another process" in second()
  finally:
    held.release()
  assert second() == "entered"  # control: released, the next process enters


def test_a_lock_whose_holder_line_cannot_be_written_is_not_kept(tmp_path, monkeypatch):
  """A full disk while writing the holder's name: the flocked fd was left open, so a retry
  in the same process (a sweep, a notebook) was refused as 'in use'."""
  real = os.pwrite
  monkeypatch.setattr(os, "pwrite", lambda *a: (_ for _ in ()).throw(OSError(28, "No space")))
  with pytest.raises(OSError, match="No space"):
    workdir_lock.Lock(tmp_path, "a training run").acquire()
  monkeypatch.setattr(os, "pwrite", real)
  with workdir_lock.Lock(tmp_path, "a training run"):
    pass


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path, monkeypatch):
  code = ("import os, signal; from research import workdir_lock; "
          f"workdir_lock.Lock({str(tmp_path)!r}, 'a training run').acquire(); "
          "os.kill(os.getpid(), signal.SIGKILL)")
  proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert proc.returncode == -signal.SIGKILL
  left = json.loads((tmp_path / workdir.LOCK).read_text())
  warnings = []
  monkeypatch.setattr(workdir.logging, "warning", lambda *a: warnings.append(a[0] % a[1:]))
  with workdir_lock.Lock(tmp_path, "a training run"):
    pass
  assert len(warnings) == 1 and f"PID {left['pid']}" in warnings[0] and "killed" in warnings[0]
  with workdir_lock.Lock(tmp_path, "a training run"):  # negative control: a clean release
    pass
  assert len(warnings) == 1


def test_a_tidy_lock_removes_only_the_file_it_created(tmp_path):
  """probe_checkpoints' --out in a folder of the user's left an empty .lock there."""
  lock = workdir_lock.Lock(tmp_path, "a probe", tidy=True)
  with lock:
    assert lock.path.exists()
    with pytest.raises(workdir_lock.WorkdirBusyError):  # held while it exists
      workdir_lock.Lock(tmp_path, "another").acquire()
  assert not lock.path.exists()
  lock.path.write_text("")  # a run's own .lock, there before: kept
  with workdir_lock.Lock(tmp_path, "a probe", tidy=True):
    pass
  assert lock.path.exists()
  lock.path.unlink()
  with workdir_lock.Lock(tmp_path, "a run"):  # the default keeps it, as workdirs have it
    pass
  assert lock.path.exists()


def test_a_tidy_lock_left_by_a_killed_probe_is_tidied_by_the_next(tmp_path):
  """A tidy probe killed while holding the lock left its .lock in the user's folder, and no
  later tidy probe removed it (it was "there before"); a killed run's .lock stays its own."""
  def killed(directory: Path, tidy: bool) -> None:
    code = ("import os, signal; from research import workdir_lock; "
            f"workdir_lock.Lock({str(directory)!r}, 'a probe', tidy={tidy}).acquire(); "
            "os.kill(os.getpid(), signal.SIGKILL)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert proc.returncode == -signal.SIGKILL and (directory / workdir.LOCK).exists()
  killed(tmp_path, tidy=True)
  with workdir_lock.Lock(tmp_path, "a probe", tidy=True):
    pass
  assert not (tmp_path / workdir.LOCK).exists()
  run = tmp_path / "run"  # control: a killed non-tidy holder's .lock is kept by a tidy one
  killed(run, tidy=False)
  with workdir_lock.Lock(run, "a probe", tidy=True):
    pass
  assert (run / workdir.LOCK).exists()


def test_a_lock_path_that_is_a_directory_is_an_input_error(tmp_path):
  """A .lock made a directory (by hand, or a sync tool) was exit 5 with the raw
  IsADirectoryError and no fix."""
  (tmp_path / workdir.LOCK).mkdir()
  with pytest.raises(workdir_lock.InputError, match=r"\.lock is a directory, where the lock file "
                     r"of .* goes; remove it \(rm -r"):
    workdir_lock.Lock(tmp_path, "a sweep").acquire()
  (tmp_path / workdir.LOCK).rmdir()
  with workdir_lock.Lock(tmp_path, "a sweep"):  # the control: taken once it is gone
    pass


def test_without_flock_the_holders_name_alone_decides(tmp_path, monkeypatch):
  """A filesystem without flock (ENOLCK: some NFS mounts): the lock trusts the name in .lock.
  A released (empty) .lock and a dead holder on this host are taken; a live holder here, or
  one on another host (whose liveness cannot be told), keeps the workdir busy."""
  import errno
  import socket

  def no_flock(fd, op):
    raise OSError(errno.ENOLCK, "No locks available")
  monkeypatch.setattr(workdir_lock.fcntl, "flock", no_flock)
  path = tmp_path / workdir.LOCK
  with workdir_lock.Lock(tmp_path, "a training run"):  # no .lock yet
    assert json.loads(path.read_text())["pid"] == os.getpid()
  assert path.read_text() == ""  # released
  with workdir_lock.Lock(tmp_path, "a training run"):  # an empty .lock is nobody's
    pass
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, timeout=60).stdout.strip()
  path.write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead), "what": "a run"}))
  with workdir_lock.Lock(tmp_path, "a training run"):  # its holder ended: taken over
    pass
  for holder in ({"host": socket.gethostname(), "pid": os.getppid(), "what": "a run"},
                 {"host": socket.gethostname() + "-elsewhere", "pid": 1, "what": "a run"}):
    path.write_text(json.dumps(holder))
    with pytest.raises(workdir_lock.WorkdirBusyError, match=f"a run of PID {holder['pid']}"):
      workdir_lock.Lock(tmp_path, "a training run").acquire()
    assert json.loads(path.read_text()) == holder  # not taken
