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
    rows = list(csv.DictReader(fh))
  missing = [c for c in columns if not rows or c not in rows[0]]
  if missing:
    raise InputError(f"{path}: no rows or no column {', '.join(missing)}; the scaling fit "
                     f"needs columns {', '.join(columns)}")
  N = np.array([float(r["Model Size"]) for r in rows])
  C = np.array([float(r["Training FLOP"]) for r in rows])
  L = np.array([float(r["loss"]) for r in rows])
  return ChinchillaData(N, C / (6.0 * N), L, C)


def besiroglu_subset(N, D, L, n_drop: int = 5):
  """Drop the ``n_drop`` highest-loss points (245 -> 240), as Besiroglu et al. do: those are
  the small, badly-trained runs that dominate the fit of beta otherwise."""
  N, D, L = map(np.asarray, (N, D, L))
  keep = np.ones(L.shape[0], dtype=bool)
  keep[np.argsort(L, kind="stable")[L.shape[0] - n_drop:]] = False
  return N[keep], D[keep], L[keep]
