"""Scored rows shared by every paper's scorer: the row itself and small readers.

A row is {claim, paper, ours, tolerance, status, note}; status is PASS / FAIL, or
NOT_SHOWN when the reproduction does not measure the claim (or its result is missing).
"""
from __future__ import annotations

import json
from pathlib import Path

PASS, FAIL, NOT_SHOWN = "PASS", "FAIL", "NOT_SHOWN"


def claim(text: str, paper, ours, tolerance: str, ok, note: str = "") -> dict:
  """One row; `ok` None (or `ours` None) means NOT_SHOWN."""
  status = NOT_SHOWN if ok is None or ours is None else (PASS if ok else FAIL)
  return {"claim": text, "paper": paper, "ours": ours, "tolerance": tolerance, "status": status,
          "note": note}


def explain_fail(row: dict, preset: str, why: str) -> dict:
  """A FAIL on a shrunk preset says why that preset cannot show the claim and points to the
  paper preset, the setting the claim is made for. A PASS or a paper-preset row is unchanged."""
  if row["status"] == FAIL and preset != "paper":
    row["note"] = (row["note"] + f" Why the {preset} preset misses it: {why} The `paper` preset "
                   "is the paper's setting for this claim.").strip()
  return row


def not_shown(text: str, paper, note: str) -> dict:
  return claim(text, paper, None, "-", None, note)


def rounded(x, nd: int = 3):
  return None if x is None else round(float(x), nd)


def load(path: Path) -> dict:
  return json.loads(Path(path).read_text())


def mean(xs):
  xs = list(xs)
  return sum(xs) / len(xs) if xs else None


def existing(*paths) -> list[str]:
  return [str(p) for p in paths if Path(p).is_file()]


def shrunk(preset: str) -> str:
  return "" if preset == "paper" else f"{preset} preset: "
