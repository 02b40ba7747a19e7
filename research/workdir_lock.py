"""One process per workdir: DIR/.lock (research/workdir.py's LOCK) held with flock, naming
its holder, and DIR itself flocked beside it where the filesystem allows."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from absl import logging

from research.errors import InputError
from research.workdir import LOCK


class WorkdirBusyError(InputError):
  """Another live process holds the workdir's lock."""


class Lock:
  """DIR/.lock held with flock while a process writes DIR; the file names the holder.

  The kernel drops the flock when the process dies, even by SIGKILL; the name left in
  the file then tells the next holder whose lock it takes over (logged as a warning).
  The holder flocks DIR itself too, where the filesystem allows: a .lock deleted by hand
  (a habit with stale lock files) then does not let a second process in.
  `tidy`: a .lock this holder created is removed again on release, for a directory that
  is not a run's (probe_checkpoints' --out elsewhere); it goes while DIR is still flocked,
  so no other process can have opened it in between. The file marks a tidy holder, so a
  later tidy holder that takes over the .lock of a killed one removes it too; any other
  .lock there before (a run's, even an empty one: every released lock is) is kept.
  """

  def __init__(self, directory: str | Path, what: str, *, tidy: bool = False):
    self.path = Path(directory) / LOCK
    self.what = what
    self.tidy = tidy
    self._fd = self._dir_fd = None
    self._created = False

  def __enter__(self) -> "Lock":
    self.acquire()
    return self

  def __exit__(self, *exc) -> None:
    self.release()

  def acquire(self) -> None:
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self._dir_fd = self._lock_directory()
    try:
      self._acquire_file()
    except BaseException:
      self._close_dir()
      raise

  def _lock_directory(self) -> int | None:
    """DIR's own flock, or None where the filesystem has none (the file lock still holds)."""
    try:
      fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
      return None
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      os.close(fd)
      holder = {}  # its .lock may be gone (deleted by hand): "another process"
      with contextlib.suppress(OSError):
        file_fd = os.open(self.path, os.O_RDONLY)
        holder = _read_holder(file_fd)
        os.close(file_fd)
      raise self._busy(holder) from None
    except OSError:
      os.close(fd)
      return None
    return fd

  def _busy(self, holder: dict) -> WorkdirBusyError:
    return WorkdirBusyError(f"{self.path.parent} is in use by {_describe(holder)}; wait for it "
                            "to finish (or stop it), or use another --workdir")

  def _close_dir(self) -> None:
    fd, self._dir_fd = self._dir_fd, None
    if fd is not None:
      os.close(fd)

  def _acquire_file(self) -> None:
    if self.path.is_dir():  # was exit 5, the raw IsADirectoryError, no fix named
      raise InputError(f"{self.path} is a directory, where the lock file of {self.path.parent} "
                       "goes; remove it (rm -r, it is not a run's) and rerun")
    self._created = not self.path.exists()
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = _read_holder(fd)
      os.close(fd)
      raise self._busy(holder) from None
    except OSError as e:  # a filesystem without flock: trust the holder's name alone
      if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
        os.close(fd)
        raise
      held = _read_holder(fd)
      if held and _alive(held):
        os.close(fd)
        raise self._busy(held) from None
    previous = _read_holder(fd)
    if previous:
      logging.warning("%s: taking over the lock of %s, which ended without releasing it "
                      "(killed?)", self.path.parent, _describe(previous))
      # A killed tidy holder's file would have gone at its release: this release does it.
      self._created = self._created or bool(self.tidy and previous.get("tidy"))
    me = {"host": socket.gethostname(), "pid": os.getpid(), "what": self.what,
          "since": time.strftime("%Y-%m-%dT%H:%M:%S"), **({"tidy": True} if self.tidy else {})}
    try:
      os.ftruncate(fd, 0)
      os.pwrite(fd, json.dumps(me).encode(), 0)
    except BaseException:  # a full disk: not held, so a retry in this process may take it
      os.close(fd)
      raise
    self._fd = fd

  def release(self) -> None:
    if self._fd is None:
      return
    fd, self._fd = self._fd, None
    try:
      os.ftruncate(fd, 0)  # an empty file: released cleanly
      if self.tidy and self._created and self._dir_fd is not None:
        self.path.unlink()
    except OSError:
      pass  # the disk is gone; closing still drops the flock
    finally:
      os.close(fd)
      self._close_dir()


def live_holder(directory: str | Path) -> str | None:
  """Who holds DIR/.lock, where the file names a live process (a released lock is emptied);
  None otherwise. Read only, no flock taken: a reader's shared flock could turn away the
  holder's own start."""
  try:
    fd = os.open(Path(directory) / LOCK, os.O_RDONLY)
  except OSError:
    return None
  try:
    holder = _read_holder(fd)
  finally:
    os.close(fd)
  if not holder or not _alive(holder):
    return None
  if holder.get("host") != socket.gethostname():  # _alive cannot tell: say what it would mean
    return (f"{_describe(holder)}, if it still runs (another host's process, which this one "
            "cannot see; a run killed there leaves its lock named too)")
  return _describe(holder)


def _read_holder(fd: int) -> dict:
  try:
    data = os.pread(fd, 4096, 0)
    return json.loads(data) if data.strip() else {}
  except (OSError, ValueError):
    return {}


def _describe(holder: dict) -> str:
  if not holder:
    return "another process"
  return (f"{holder.get('what', 'a run')} of PID {holder.get('pid')} on host "
          f"{holder.get('host')} (since {holder.get('since', '?')})")


def _alive(holder: dict) -> bool:
  if holder.get("host") != socket.gethostname():
    return True  # cannot tell: assume it runs
  try:
    os.kill(int(holder.get("pid", 0)), 0)
  except ProcessLookupError:
    return False
  except (PermissionError, ValueError):
    return True
  return True
