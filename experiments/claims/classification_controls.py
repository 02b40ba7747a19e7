"""Reddy's hand-built negative controls beyond control_files.py's (controls.py lists them in
CONTROLS): control_files' result files with a real context-label jump at step 300 and the
induction head's attention (query to the matching item's label) replaced by a null."""
from __future__ import annotations

import json
from pathlib import Path

from experiments.claims.control_files import WAYS, _reddy
from experiments.claims.ladder_controls import STEPS

JUMP = 300  # the context-label accuracy jumps from chance to 1 here (its halfway at 287.5)


def reddy_head(run_dir: Path, attention) -> None:
  """Reddy's files with the context-label accuracy jumping at JUMP and the transformer's head
  l1h1 attending to the matching label with `attention(step)` (the tests' PASS case: a jump
  from 0.06 to 0.9 at JUMP)."""
  _reddy(run_dir, lambda s: 1.0 if s >= JUMP else 1 / WAYS)
  path = Path(run_dir) / "transformer" / "metrics.jsonl"
  rows = [json.loads(line) for line in path.read_text().splitlines()]
  for r in rows:
    r["eval_attn_l1h1_query_to_label"] = attention(r["step"])
  path.write_text("\n".join(json.dumps(r) for r in rows))


def reddy_head_tiny(run_dir: Path) -> None:
  """The head's attention 0.10, then 0.11 from the jump on: its halfway step is the jump's."""
  reddy_head(run_dir, lambda s: 0.11 if s >= JUMP else 0.10)


def reddy_head_glitch(run_dir: Path) -> None:
  """The head's attention 0.10 but 0.90 for the one evaluation at the jump, forming (0.90 for
  good) only at step 800: its first halfway crossing is the jump's."""
  reddy_head(run_dir, lambda s: 0.9 if s == JUMP or s >= 800 else 0.1)


def reddy_head_ramp(run_dir: Path) -> None:
  """The head's attention rising at one steady rate from 0.10 at step 0 to 0.90 at step 600
  (60% of training), halfway at the jump: 33% of its rise within a tenth of training of it."""
  reddy_head(run_dir, lambda s: min(0.9, 0.1 + 0.8 * s / 600))


def reddy_head_falls_back(run_dir: Path) -> None:
  """The head's attention jumping 0.10 -> 0.90 at the jump and falling back to 0.12 from step
  800: no induction head at the end of training."""
  reddy_head(run_dir, lambda s: 0.1 if s < JUMP else (0.9 if s < 800 else 0.12))
