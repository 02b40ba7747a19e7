"""Scored rows shared by every paper's scorer, and the one place seeds are aggregated.

A row is {claim, paper, ours, tolerance, status, note, control, kind, seeds}:
- status is PASS / FAIL, or NOT_SHOWN when the experiment that would measure the claim was not
  run (or wrote no result for it). After `aggregate`, a claim that holds on every seed run but
  on fewer than MIN_SEEDS seeds is UNREPLICATED, not PASS: one seed is an anecdote.
- tolerance carries its one-line reason ("<criterion>; why: <reason>").
- control names the null result (untrained model, zero / prior predictor, flat curve ...)
  that must not PASS the claim, or several joined by CONTROL_SEP where one null cannot stand
  for every way the claim can be faked; experiments/claims/controls.py builds and scores each.
- kind is "paper" when the target is the paper's number or statement, "self-check" when it is
  a number this project computed; a self-check PASS does not count as a paper PASS.
- seeds is "k/n": of the n seeds that measured the claim, k PASS. An unfinished seed (its run
  interrupted, or failed, before it wrote its result file) measured nothing, but it counts in
  the n and no claim PASSes while it is there (UNREPLICATED 3/4); the summary names it
  (experiments/claims/__init__.py `score`).
Notes are formatted from result values only.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

PASS, FAIL, NOT_SHOWN, UNREPLICATED = "PASS", "FAIL", "NOT_SHOWN", "UNREPLICATED"
PAPER, SELF_CHECK = "paper", "self-check"
MIN_SEEDS = 3  # a claim PASSes only when it holds on every seed, and on at least this many
CONTROL_SEP = "; "  # between a row's control names (no control name contains it)
# A phase change (Olsson's, the ladder's): "most of the drop" is over half of it in the window,
# and the window's drop is beyond this many standard errors of a difference of two scores.
MOST_OF_DROP, NOISE_SIGMAS = 0.5, 3.0


def robust_sd(changes) -> float:
  """1.4826 x the median absolute deviation of a curve's step-to-step changes around their
  median: the normal standard deviation, robust to a few steep steps, and a steady trend
  (a constant change) is not counted as noise. The standard error of a difference of two
  evaluations, for olsson_rules.step_noise and grokking.eval_noise."""
  import numpy as np
  d = np.asarray(changes, float)
  return float(1.4826 * np.median(np.abs(d - np.median(d))))


def claim(text: str, paper, ours, tolerance: str, ok, note: str = "", *, why: str,
          control: str | tuple[str, ...], kind: str = PAPER) -> dict:
  """One row of one seed; `ok` None (or `ours` None) means NOT_SHOWN. `control`: one control's
  name, or a tuple of them (each must FAIL the claim)."""
  status = NOT_SHOWN if ok is None or ours is None else (PASS if ok else FAIL)
  control = CONTROL_SEP.join(control) if isinstance(control, tuple) else control
  return {"claim": text, "paper": paper, "ours": ours, "tolerance": f"{tolerance}; why: {why}",
          "status": status, "note": note, "control": control, "kind": kind,
          "seeds": None if status == NOT_SHOWN else f"{int(status == PASS)}/1"}


def not_shown(text: str, paper, note: str, *, control: str | tuple[str, ...], kind: str = PAPER,
              why: str = "") -> dict:
  """A claim the run did not measure; `why` (the measured row's tolerance reason) is kept."""
  return claim(text, paper, None, "-", None, note, why=why or "not measured", control=control,
               kind=kind)


def controls_of(row: dict) -> list[str]:
  """The names of the controls a row's claim must FAIL on."""
  return row["control"].split(CONTROL_SEP)


def seed_dirs(run_dir: Path) -> list[Path]:
  """Per-seed result folders RUN_DIR/seed_<n>/ (each laid out as a one-seed RUN_DIR), or
  RUN_DIR itself when the experiment wrote one seed. Only seed_<n> as reproduce names them:
  a backup `seed_0.bak` or `seed_0 copy` was scored as one more seed (one seed and two copies
  gave PASS 3/3)."""
  seeds = [p for p in Path(run_dir).glob("seed_*")
           if p.is_dir() and re.fullmatch(r"seed_(0|[1-9][0-9]*)", p.name)]
  return sorted(seeds, key=lambda p: int(p.name[5:])) or [Path(run_dir)]


def aggregate(per_seed: list[list[dict]], min_seeds: int = MIN_SEEDS,
              labels: list[str] | None = None, unfinished: int = 0,
              copies: int = 0) -> list[dict]:
  """One row per claim from each seed's rows (same claims, same order): the status counts the
  seeds that measured the claim and PASS it; `ours` lists every seed's value, under `labels`
  ("seed 0", ... by default: the seed folders' names where one is left out). min_seeds 1:
  a computation with no seed (a deterministic fit). `unfinished` seeds (no result file:
  interrupted, or failed) measured nothing and passed nothing: a claim the others PASS is
  UNREPLICATED while any is unfinished, and the n of k/n counts them (dropping a failed
  seed turned FAIL into PASS 3/3). `copies`: seeds whose results are another seed's (the same
  file but for its seed, or a file naming another seed): no claim PASSes while any is there
  either, as one run copied replicates nothing (one seed and two copies gave PASS 3/3)."""
  labels = labels or [f"seed {j}" for j in range(len(per_seed))]
  texts = [[r["claim"] for r in rows] for rows in per_seed]
  if any(t != texts[0] for t in texts):
    raise ValueError("the seeds' result files give different claims: they are not runs of the "
                     "same experiment")
  out = []
  for i, first in enumerate(per_seed[0]):
    rows = [seed_rows[i] for seed_rows in per_seed]
    shown = [r for r in rows if r["status"] != NOT_SHOWN]
    passed = [r for r in shown if r["status"] == PASS]
    if not shown:
      status = NOT_SHOWN
    elif len(passed) < len(shown):
      status = FAIL
    else:
      status = PASS if len(shown) >= min_seeds and not unfinished and not copies else UNREPLICATED
    failing = next((r for r in shown if r["status"] == FAIL), first)
    ours = (first["ours"] if len(rows) == 1 else
            "; ".join(f"{label}: {r['ours'] if r['ours'] is not None else '-'}"
                      for label, r in zip(labels, rows)))
    out.append(first | {"ours": ours, "status": status, "note": failing["note"],
                        "seeds": None if not shown else f"{len(passed)}/{len(shown) + unfinished}"})
  return out


def shown_status(row: dict) -> str:
  """The status as tables print it: 'PASS 3/3', 'FAIL 1/3', 'UNREPLICATED 1/1 (self-check)'."""
  text = row["status"] + (f" {row['seeds']}" if row.get("seeds") else "")
  return text + (" (self-check)" if row.get("kind") == SELF_CHECK else "")


def counts(rows: list[dict]) -> dict:
  """Paper claims by status; a PASSing self-check counts apart, never as a paper PASS."""
  out = {s: 0 for s in (PASS, UNREPLICATED, FAIL, NOT_SHOWN, SELF_CHECK)}
  for r in rows:
    out[SELF_CHECK if r.get("kind") == SELF_CHECK and r["status"] in (PASS, UNREPLICATED)
        else r["status"]] += 1
  return out


def vs_bar(x: float, bar: float, nd: int = 2) -> str:
  """x with nd decimals, or as many more as keep the printed value on x's own side of `bar`:
  a FAIL at 0.4952 against '>= 0.5' printed 0.50, a passing number."""
  for d in range(nd, 10):
    text = f"{x:.{d}f}"
    if (float(text) < bar) == (x < bar) and (float(text) > bar) == (x > bar):
      return text
  return repr(float(x))


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
