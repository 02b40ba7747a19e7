"""The Chinchilla data of the scaling-law fits: the CSV Besiroglu et al. 2024 extracted from
Hoffmann et al.'s figure (data/README.md) and their 240-point subset. research.analysis.scaling
re-exports these names.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from research.errors import InputError

CSV_NAME = "chinchilla_svg_extracted_data.csv"
_REPO_ROOT = Path(__file__).resolve().parents[2]


class ChinchillaData(NamedTuple):
  N: np.ndarray  # parameters
  D: np.ndarray  # tokens, D = C / (6 N)
  L: np.ndarray  # final loss
  C: np.ndarray  # training FLOP


def default_csv_path() -> Path:
  """The repository's copy, data/chinchilla_svg_extracted_data.csv (data/README.md says where it
  comes from), found relative to this file so any checkout or editable install reads its own."""
  return _REPO_ROOT / "data" / CSV_NAME


def load_chinchilla_csv(path: Optional[str | Path] = None) -> ChinchillaData:
  """Read columns `Model Size` (N), `Training FLOP` (C) and `loss`; D is derived as C/(6N)."""
  path = Path(path) if path is not None else default_csv_path()
  columns = ("Model Size", "Training FLOP", "loss")
  if not path.is_file():
    raise InputError(f"{path}: no such file; pass a CSV with columns {', '.join(columns)} "
                     f"(the repository's copy is data/{CSV_NAME})")
  with open(path, newline="") as fh:
    reader = csv.DictReader(fh)
    rows = [(reader.line_num, r) for r in reader]  # the file's line of each row, for errors
  missing = [c for c in columns if not rows or c not in rows[0][1]]
  if missing:
    raise InputError(f"{path}: no rows or no column {', '.join(missing)}; the scaling fit "
                     f"needs columns {', '.join(columns)}")
  N, C, L = np.array([[_cell(path, line, i, c, r.get(c)) for c in columns]
                      for i, (line, r) in enumerate(rows, 1)]).T
  return ChinchillaData(N, C / (6.0 * N), L, C)


def _cell(path, line: int, row: int, column: str, text) -> float:
  """One cell as a positive finite number, else an InputError naming the file, row and column:
  the fit is in log space, and a NaN loss sorts last, so besiroglu_subset would drop it as one
  of the highest losses without a word (24 points became 19)."""
  where = f"{path}: row {row} (line {line}), column {column!r}"
  try:
    value = float(text)
  except (TypeError, ValueError):  # TypeError: a short row leaves the cell None
    raise InputError(f"{where}: {text!r} is not a number; fix or drop that row") from None
  if not (np.isfinite(value) and value > 0):
    raise InputError(f"{where}: {text!r} is not a positive finite number (the fit takes its "
                     "log); fix or drop that row")
  return value


def besiroglu_subset(N, D, L, n_drop: int = 5):
  """Drop the ``n_drop`` highest-loss points (245 -> 240), as Besiroglu et al. do: those are
  the small, badly-trained runs that dominate the fit of beta otherwise."""
  N, D, L = map(np.asarray, (N, D, L))
  bad = np.flatnonzero(~np.isfinite(L))
  if bad.size:  # argsort puts NaN last: it would be dropped as one of the highest losses
    raise InputError(f"besiroglu_subset: the losses at indices {bad[:10].tolist()} are not "
                     "finite; fix or drop those points")
  if L.shape[0] <= n_drop:  # nothing left: fit_chinchilla's "no data points", exit 1
    raise InputError(f"{L.shape[0]} data points: Besiroglu's subset drops the {n_drop} "
                     "highest-loss ones and leaves none; give a CSV with more rows")
  keep = np.ones(L.shape[0], dtype=bool)
  keep[np.argsort(L, kind="stable")[L.shape[0] - n_drop:]] = False
  return N[keep], D[keep], L[keep]
