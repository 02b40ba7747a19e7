"""Headline claims of each paper, checked against the result files an experiment wrote.

One function per paper: `CLAIMS[name](run_dir, preset) -> {"claims": [row, ...], "results":
[files read], "figures": [files], "notes": [...]}` scores one seed's result files, with rows from
`claims.rows`; `score(name, run_dir, preset)` scores every seed under run_dir and aggregates
(rows.aggregate: a claim PASSes only on every seed, and on at least rows.MIN_SEEDS of them).
Every "ours" and every note is computed from the files under `run_dir`; the papers' numbers are
named constants in the paper's module, each with its source (docs/REFERENCES.md or the paper). Each
claim names its negative control, built and scored by `controls.py`. One module per paper family.
"""
from pathlib import Path

from experiments.claims.classification import chan2022, reddy2023
from experiments.claims.emergence import besiroglu2024, nanda2023, schaeffer2023
from experiments.claims.ladder import ladder_claims
from experiments.claims.language import olsson2022, xie2021
from experiments.claims.regression import garg2022, raventos2023
from experiments.claims.rows import (FAIL, MIN_SEEDS, NOT_SHOWN, PASS, SELF_CHECK, UNREPLICATED,
                                     aggregate, counts, seed_dirs, shown_status)

CLAIMS = {"garg2022": garg2022, "raventos2023": raventos2023, "chan2022": chan2022,
          "reddy2023": reddy2023, "olsson2022": olsson2022, "xie2021": xie2021,
          "schaeffer2023": schaeffer2023, "nanda2023": nanda2023, "besiroglu2024": besiroglu2024,
          "ladder": ladder_claims}
STATUSES = (PASS, UNREPLICATED, FAIL, NOT_SHOWN, SELF_CHECK)


def score(name: str, run_dir: Path, preset: str) -> dict:
  """CLAIMS[name] on every seed's result files under run_dir, aggregated per claim."""
  scored = [CLAIMS[name](d, preset) for d in seed_dirs(run_dir)]
  first = scored[0]
  notes = [n for s in scored for n in s["notes"] if n]
  # A paper whose result has no seed (a deterministic fit) needs no replicate seeds.
  min_seeds = 1 if first.get("seedless") else MIN_SEEDS
  return {"claims": aggregate([s["claims"] for s in scored], min_seeds),
          "results": [f for s in scored for f in s["results"]],
          "figures": first["figures"], "notes": list(dict.fromkeys(notes)),
          "seeds": len(scored)}


__all__ = ["CLAIMS", "STATUSES", "score", "counts", "shown_status"]
