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

from experiments.claims.classification import chan2022
from experiments.claims.reddy import reddy2023
from experiments.claims.emergence import besiroglu2024, schaeffer2023
from experiments.claims.grokking import nanda2023
from experiments.claims.ladder import ladder_claims
from experiments.claims.language import xie2021
from experiments.claims.olsson import olsson2022
from experiments.claims.regression import garg2022, raventos2023
from experiments.claims.rows import (FAIL, MIN_SEEDS, NOT_SHOWN, PASS, SELF_CHECK, UNREPLICATED,
                                     aggregate, counts, seed_dirs, shown_status)

CLAIMS = {"garg2022": garg2022, "raventos2023": raventos2023, "chan2022": chan2022,
          "reddy2023": reddy2023, "olsson2022": olsson2022, "xie2021": xie2021,
          "schaeffer2023": schaeffer2023, "nanda2023": nanda2023, "besiroglu2024": besiroglu2024,
          "ladder": ladder_claims}
# The file each scorer cannot do without, written when the experiment's seed has finished: a
# seed folder without it was interrupted (Ctrl-C, a crash) and is not scored (`score`).
RESULT_FILES = {"garg2022": "sparse_linear/probes/icl_regression.json", "raventos2023": "raventos2023.json",
                "chan2022": "results.json", "reddy2023": "results.json",
                "olsson2022": "olsson2022.json", "xie2021": "xie2021.json",
                "schaeffer2023": "emergence_scale.json", "nanda2023": "grokking.json",
                "besiroglu2024": "scaling_fit.json", "ladder": "ladder.json"}
STATUSES = (PASS, UNREPLICATED, FAIL, NOT_SHOWN, SELF_CHECK)


def score(name: str, run_dir: Path, preset: str) -> dict:
  """CLAIMS[name] on every finished seed's result files under run_dir, aggregated per claim.
  A seed folder without RESULT_FILES[name] is unfinished (interrupted, or failed): it measured
  nothing, so it is not scored, but no claim PASSes while it is there (rows.aggregate: the
  others' PASS is UNREPLICATED, and it counts in the n of k/n); named in "unfinished" (a rerun
  of that seed finishes it); "seeds" counts the seeds scored. FileNotFoundError when no seed
  finished."""
  dirs = seed_dirs(run_dir)
  finished = [d for d in dirs if (d / RESULT_FILES[name]).is_file()]
  if not finished:
    raise FileNotFoundError(2, "no seed has finished", str(dirs[0] / RESULT_FILES[name]))
  scored = [CLAIMS[name](d, preset) for d in finished]
  first = scored[0]
  notes = [n for s in scored for n in s["notes"] if n]
  # A paper whose result has no seed (a deterministic fit) needs no replicate seeds.
  min_seeds = 1 if first.get("seedless") else MIN_SEEDS
  labels = [d.name.replace("_", " ") for d in finished]  # seed_5 is "seed 5" when 4 is left out
  unfinished = [d for d in dirs if d not in finished]
  copied = not_replicates(finished, RESULT_FILES[name])
  return {"claims": aggregate([s["claims"] for s in scored], min_seeds, labels, len(unfinished),
                              len(copied)),
          "results": [f for s in scored for f in s["results"]],
          "figures": first["figures"], "notes": list(dict.fromkeys(notes + copied)),
          "seeds": len(scored), "unfinished": unfinished}


def not_replicates(finished: list[Path], result_file: str) -> list[str]:
  """A note for each seed folder whose result file is not a replicate: it names another seed
  than its folder's, or it equals an earlier seed's but for the seed it records (a folder
  copied, or an experiment that ignored its --seed). Such a seed was scored as one more
  replicate: seed_0 copied to seed_1 and seed_2 gave PASS 3/3 on one run."""
  import hashlib
  import json
  import re
  seen, out = {}, []
  for d in finished:
    if not d.name.startswith("seed_"):
      continue
    res = json.loads((d / result_file).read_text())
    if isinstance(res, dict) and res.get("seed") not in (None, int(d.name[5:])):
      out.append(f"{d.name}'s {result_file} records seed {res['seed']}: not this seed's run "
                 "(no claim PASSes on it; rerun the seed)")
      continue
    body = {k: v for k, v in res.items() if k != "seed"} if isinstance(res, dict) else res
    # paths into a seed folder (a run's workdir) are not compared: a copy keeps the original's
    # (seed_0/wd_1 in seed_1's file), a rerun of an experiment that ignored --seed its own
    text = re.sub(r"(?<=[/\\])seed_\d+(?=[/\\\"])", "seed_*", json.dumps(body, sort_keys=True))
    key = hashlib.sha256(text.encode()).hexdigest()
    if key in seen:
      out.append(f"{d.name}'s {result_file} equals {seen[key]}'s but for its seed: a copy, not "
                 "a replicate (no claim PASSes on it; rerun the seed)")
    seen.setdefault(key, d.name)
  return out


__all__ = ["CLAIMS", "RESULT_FILES", "STATUSES", "score", "counts", "shown_status"]
