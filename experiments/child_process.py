"""A child command that a Ctrl-C or SIGTERM to its parent reaches once, and is waited for
(`reproduce all` runs each NAME this way)."""
from __future__ import annotations

import contextlib
import signal
import subprocess

from experiments import summaries
from research import errors

ROOT = summaries.ROOT


def run(cmd: list[str]) -> tuple[int, int | None]:
  """(exit code, the signal this process got meanwhile or None): CMD in its own process
  group, so that a terminal's Ctrl-C or a group's SIGTERM reaches it once, from here. A
  SIGINT or SIGTERM to this process alone killed it (143, no line) or SIGKILLed the child
  (subprocess.run), and a SIGTERM left the child training with no parent, holding the
  workdir's lock; now the child gets the signal, stops as it does alone (SIGTERM: a
  checkpoint and one line) and is waited for. A second Ctrl-C is passed on too (it quits)."""
  got: list[int] = []
  proc = subprocess.Popen(cmd, cwd=ROOT, process_group=0)

  def forward(signum, _frame):
    got.append(signum)
    with contextlib.suppress(ProcessLookupError):
      proc.send_signal(signum)

  previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)
              if signal.getsignal(s) is not signal.SIG_IGN}
  try:
    returncode = proc.wait()
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
  return returncode, (got[0] if got else None)


def stop_if_signalled(signum: int | None, when: str, returncode: int | None = None) -> None:
  """After a NAME stopped by a signal (or one that came between two), `all` stops too:
  SIGTERM as every training command does (one line, exit 0: rerunning the command
  continues), Ctrl-C with exit 130 (a child that said `error: interrupted` is not repeated)."""
  if signum == signal.SIGTERM:
    from research import preemption
    raise preemption.Preempted(f"preempted (SIGTERM) {when}; the papers after it were not "
                               "run: rerun the same command to continue")
  if signum == signal.SIGINT:
    if returncode == errors.EXIT_INTERRUPTED:
      raise SystemExit(errors.EXIT_INTERRUPTED)
    raise KeyboardInterrupt
