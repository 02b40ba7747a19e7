"""A research.probe_checkpoints row in one console line and as research.results columns
(research/probes/checkpoint_rows.py), on hand-made rows: no training here."""
import json

from research import results_records
from research.probes import checkpoint_rows


def _cell(lo, chance=0.0):
  return {"exact_match": [lo + 0.01, lo, lo + 0.02], "chance": {"exact_match": chance}}


ROW = {"step": 7, "tokens": 700, "loss": 2.5, "icl_score": -0.25, "icl_score_se": 0.05,
       "late": 31, "early": 3, "num_windows": 64, "prefix_baseline": 0.042,
       "heads": {"L0H0": {"prefix": 0.04}, "L1H1": {"prefix": 0.31}},
       "few_shot": {"copy": {0: _cell(0.5), 1: _cell(0.0), 2: _cell(0.2)},
                    "add": {1: _cell(0.3, chance=0.3)}}}


def test_the_console_line_says_what_a_probe_found_against_its_baselines():
  """The line printed only the loss and the ICL score, so heads at the uniform level and no
  cell above chance (a trial's run) read as nothing in particular. k = 0 (no example in the
  context) and a cell whose interval touches chance are not counted (controls)."""
  line = checkpoint_rows.console_line(ROW)
  assert line == ("step 7: loss 2.5000, ICL score -0.2500 +- 0.0500 (token 31 minus token 3, "
                  "64 windows); top prefix-matching head L1H1 0.310 (uniform attention 0.042); "
                  "few-shot cells (k >= 1) with exact match above chance: 1 of 3"), line
  # An LSTM's row has no heads, a run without few-shot prompts no cells: neither is named.
  bare = {k: v for k, v in ROW.items() if k not in ("heads", "few_shot")}
  assert checkpoint_rows.console_line(bare).endswith("64 windows)")


def test_results_tables_the_newest_probed_checkpoint(tmp_path):
  """research.results read probes/*.json only: the probe's rows could not be tabled across
  runs (a trial's --columns probes.checkpoints.icl_score: 'no column'). Rows in another order
  than their steps: the newest step's row is the one tabled (control: the older one's ICL
  score differs)."""
  older = dict(ROW, step=3, icl_score=0.1)
  rows = [ROW, older]
  # JSON keys are strings, as the probe's file has them
  (tmp_path / "probes").mkdir()
  (tmp_path / "probes" / "checkpoints.jsonl").write_text(
      "".join(json.dumps(r) + "\n" for r in rows))
  got = results_records._last_checkpoint_probe(tmp_path)
  assert got == {"step": 7, "loss": 2.5, "icl_score": -0.25,
                 "icl_score_se": 0.05, "num_windows": 64, "prefix_baseline": 0.042,
                 "prefix_top_head": "L1H1", "prefix_top": 0.31, "few_shot_cells": 3,
                 "few_shot_above_chance": 1}, got
  assert results_records._last_checkpoint_probe(tmp_path / "none") == {}
