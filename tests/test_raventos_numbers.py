"""experiments/raventos2023.py's numbers on hand-made probes: the distance noise, M* beyond the
noise, the pool grids, the cpu preset's warm-up, and what it records of each pool size."""
import json
import types

import pytest

from experiments import raventos2023
from test_experiment_numbers import _verdicts_asked


def _noisy_probe(d_ridge, d_dmmse, half_ridge, half_dmmse):
  band = lambda m, h: {"mean": [m] * 3, "lo": [m - h] * 3, "hi": [m + h] * 3}
  return {"k": [0, 1, 2], "curves": {"model_vs_ridge": band(d_ridge, half_ridge),
                                     "model_vs_dmmse": band(d_dmmse, half_dmmse),
                                     "ridge_vs_dmmse": band(1.0, 0.0)}}


def test_raventos_distance_noise_adds_both_half_widths():
  """The paired difference's half-width is bounded by the SUM of the two 90% half-widths
  (whatever their correlation), not the larger one; the scale the claims judge on,
  ridge_to_dmmse, is the two estimators' own distance (1.0), not the model's to dMMSE."""
  d = raventos2023.distances(_noisy_probe(0.5, 0.75, 0.125, 0.25))
  assert d == {"d_ridge": 0.5, "d_dmmse": 0.75, "ridge_to_dmmse": 1.0, "d_noise": 0.375,
               "closer_to": "ridge"}


def test_raventos_m_star_needs_a_difference_beyond_the_noise_not_at_it():
  """'Resolvably closer': d_dmmse - d_ridge must EXCEED d_noise; a difference exactly at the
  noise (here 0.25 = 0.25, exact in binary) is not resolved, so no M* at all."""
  pt = lambda m, r, d, n: {"M": m, "d_ridge": r, "d_dmmse": d, "d_noise": n}
  assert raventos2023.estimate_m_star([pt(64, 0.25, 0.5, 0.25)]) is None
  assert raventos2023.estimate_m_star([pt(16, 0.25, 0.5, 0.25), pt(64, 0.25, 0.5, 0.125)]) == 64
  assert raventos2023.estimate_m_star([pt(16, 0.0, 0.5, 0.125), pt(64, 0.25, 0.5, 0.125)]) == 16


def test_raventos_pool_grids_and_a_tie_is_not_closer_to_ridge():
  """cpu: the 8 pool sizes of its one 8-member ensemble, 2^1, 2^3, ..., 2^15; paper: every
  power of two 2^1 .. 2^20 (Raventos's M range) and M = inf. Equal distances are closer to
  neither, so not to Ridge."""
  assert raventos2023.pool_grid("cpu") == [2, 8, 32, 128, 512, 2048, 8192, 32768]
  assert raventos2023.pool_grid("paper") == [2 ** i for i in range(1, 21)] + ["inf"]
  assert raventos2023.distances(_noisy_probe(0.5, 0.5, 0.0, 0.0))["closer_to"] == "dmmse"


def test_raventos_cpu_preset_warms_up_to_the_midpoint():
  """Raventos: linear warm-up to the midpoint of training, then decay: 2000 of 4000 steps,
  batch 128, 4 layers of width 64 with 2 heads, on the paper's task (D = 8)."""
  c = raventos2023.make_config("cpu", seed=4)
  assert (c.train.num_steps, c.optim.warmup_steps, c.train.batch_size) == (4000, 2000, 128)
  assert (c.model.num_layers, c.model.width, c.model.num_heads, c.seed) == (4, 64, 2, 4)
  assert c.task.n_dims == 8


def test_raventos_records_the_pool_probe_and_the_noise_variance(tmp_path, monkeypatch):
  """Per M: the model's error on its OWN pool's tasks is the mean over k of the pool probe's
  curve (0.25), not the fresh-task probe's (1.0); sigma^2 = noise_std^2 = 0.25 (tiny: 0.5)."""
  from research import sweep
  curve = lambda v: {"mean": [v] * 3, "lo": [v] * 3, "hi": [v] * 3}
  fresh = _noisy_probe(0.5, 0.75, 0.0, 0.0)
  fresh["curves"] |= {n: curve(1.0) for n in ("model", "ridge", "dmmse")}
  pool = {"k": [0, 1, 2], "curves": {n: curve(0.25) for n in ("model", "ridge", "dmmse")}}
  run_dir = tmp_path / "runs" / "m2"
  (run_dir / "probes").mkdir(parents=True)
  (run_dir / "probes" / "icl_regression.json").write_text(json.dumps(fresh))
  (run_dir / "probes" / "icl_regression_pool.json").write_text(json.dumps(pool))
  rows = [{"run": "m2", "status": "done", "num_params": 10, "wall_s": 1.0}]
  monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: types.SimpleNamespace(
      point_rows=lambda o: rows, run_dir=lambda name: tmp_path / "runs" / name))
  monkeypatch.setattr(raventos2023, "render", lambda *a: None)
  _verdicts_asked(monkeypatch)
  raventos2023.run("tiny", tmp_path, pools=["2"])
  res = json.loads((tmp_path / "raventos2023.json").read_text())
  assert res["noise_var"] == 0.25
  (p,) = res["pools"]
  assert (p["M"], p["pool_tasks_model_error"], p["curves"]["model"]) == (2, 0.25, [1.0] * 3)


def test_raventos_a_finished_run_without_its_probe_is_a_failed_pool_size(tmp_path, monkeypatch):
  """A run the sweep finished whose probe file is missing (deleted, or a probe that never
  wrote) is reported as a failed M naming the file, not read (FileNotFoundError)."""
  from research import sweep
  (tmp_path / "runs" / "m2").mkdir(parents=True)
  rows = [{"run": "m2", "status": "done", "num_params": 10, "wall_s": 1.0}]
  monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: types.SimpleNamespace(
      point_rows=lambda o: rows, run_dir=lambda name: tmp_path / "runs" / name))
  with pytest.raises(raventos2023.RunsFailedError, match="1 of 1 pool sizes failed: M = 2"):
    raventos2023.run("tiny", tmp_path, pools=["2"])
  res = json.loads((tmp_path / "raventos2023.json").read_text())
  assert res["pools"] == [] and res["failed"][0]["M"] == 2
  assert "no probe file" in res["failed"][0]["error"]
