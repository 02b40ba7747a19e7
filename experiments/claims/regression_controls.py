"""Garg's hand-built negative controls beyond control_files.py's (controls.py lists them in
CONTROLS): probe files of a model that tracks least squares, with one null in them."""
from __future__ import annotations

from pathlib import Path

from research.workdir import write_json


def garg_nan_k(run_dir: Path) -> None:
  """d = 5, k = 0..15: the model's error least squares' + 0.02 at every k but k = 3, where it
  is NaN (a prediction that diverged); 3-NN and averaging at 3.0; on the sparse task the
  model within 0.005 of the tuned Lasso at every k but the last, NaN. Max / min over k skipped
  the NaN: every row on these probes PASSed."""
  d, n = 5, 16
  ls = [max(d - k, 0) / d for k in range(n)]
  flat = lambda v: {"mean": v, "lo": v, "hi": v}
  model = [v + 0.02 for v in ls]
  model[3] = float("nan")
  run_dir = Path(run_dir)
  for sub in ("probes", "sparse_linear/probes"):
    (run_dir / sub).mkdir(parents=True, exist_ok=True)
  write_json(run_dir / "probes" / "icl_regression.json", {
      "k": list(range(n)), "n_dims": d, "step": 100, "curves": {
          "model": flat(model), "least_squares": flat(ls), "averaging": flat([3.0] * n),
          "nearest_neighbours": flat([3.0] * n)}})
  sparse_ls = [0.4 * v for v in ls]
  lasso = [0.5 * v for v in sparse_ls]
  sparse_model = [v + 0.005 for v in lasso]
  sparse_model[-1] = float("nan")
  write_json(run_dir / "sparse_linear" / "probes" / "icl_regression.json", {
      "n_dims": d, "k": list(range(n)), "num_prompts": 64, "lasso_tuned_alpha": [0.01] * n,
      "curves": {"model": {"mean": sparse_model}, "lasso_tuned": {"mean": lasso},
                 "least_squares": {"mean": sparse_ls}}})
