"""experiments/besiroglu2024.py with its fits replaced by fakes: what refit() writes to
scaling_fit.json (settings, published table, bootstrap SEs, compute-optimal split, IsoFLOP
record), which fits run() asks for under each preset, and when it reuses a saved one. The
real fits are tests/test_scaling.py's; these run in a second."""
import hashlib
import json
import types

import numpy as np
import pytest

from experiments import besiroglu2024, common
from experiments.claims import emergence
from research.analysis import scaling, scaling_isoflop
from research.errors import InputError

FIT = scaling.ChinchillaFit(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37, loss=1e-3,
                            n_points=240, n_starts=20)
SE = {"E": 0.031, "A": 120.0, "B": 1300.0, "alpha": 0.021, "beta": 0.019}


@pytest.fixture
def fakes(monkeypatch):
  """Fast stand-ins for the fit, its bootstrap, the IsoFLOP fit and the figure; each call's
  arguments land in calls[name]."""
  calls = {"fit": [], "boot": [], "iso": [], "refit": []}

  def fit_chinchilla(N, D, L, **kw):
    calls["fit"].append({"n": len(N), **kw})
    return FIT

  def bootstrap_chinchilla(N, D, L, **kw):
    calls["boot"].append({"n": len(N), **kw})
    return types.SimpleNamespace(se=dict(SE), seconds=0.5, outside=lambda: ["alpha"])

  def isoflop_fit(N, D, L, edges, **kw):
    calls["iso"].append({"edges": np.asarray(edges), **kw})
    return types.SimpleNamespace(a=0.5, a_5_95=(0.45, 0.55), resamples=1000, resamples_used=990,
                                 b=0.5, C=np.array([1e19, 1e20]), N_opt=np.array([3e8, 1e9]),
                                 n_points=np.array([9, 11]), rejected=(1e21,))

  real_refit = besiroglu2024.refit

  def refit(out, data, csv=None, bootstrap=4000, all_points=False, top_starts=None, seed=0):
    calls["refit"].append((all_points, bootstrap, top_starts))
    return real_refit(out, data, csv, bootstrap, all_points, top_starts, seed)

  monkeypatch.setattr(scaling, "fit_chinchilla", fit_chinchilla)
  monkeypatch.setattr(scaling, "bootstrap_chinchilla", bootstrap_chinchilla)
  monkeypatch.setattr(scaling_isoflop, "isoflop_fit", isoflop_fit)
  monkeypatch.setattr(besiroglu2024, "make_figure", lambda *a, **k: None)
  monkeypatch.setattr(besiroglu2024, "refit", refit)
  monkeypatch.setattr(common, "print_verdicts", lambda *a, **k: None)
  return calls


@pytest.fixture(scope="module")
def data():
  return scaling.load_chinchilla_csv(None)


def test_refit_records_its_settings_published_table_and_bootstrap(tmp_path, fakes, data):
  """The 240-point fit: Besiroglu's subset is fitted and bootstrapped with the caller's
  settings, and the file records them, the published (value, SE) per parameter, the
  bootstrap's SEs and the parameters outside their own 5-95% interval."""
  res = besiroglu2024.refit(tmp_path, data, bootstrap=7, top_starts=20, seed=3)
  assert fakes["fit"] == [{"n": 240, "top_starts": 20}]
  assert [(b["n"], b["num_resamples"], b["seed"]) for b in fakes["boot"]] == [(240, 7, 3)]
  saved = json.loads((tmp_path / "scaling_fit.json").read_text())
  assert saved == res
  assert (res["all_points"], res["top_starts"], res["bootstrap"], res["seed"]) == (False, 20, 7, 3)
  assert res["n_points"] == 240 and res["format"] == besiroglu2024.FIT_FORMAT
  for k, (pv, pse) in besiroglu2024.PUBLISHED.items():
    assert res["params"][k] == {"fit": getattr(FIT, k), "se": SE[k], "published": pv,
                                "published_se": pse}
  assert res["outside_bootstrap_5_95"] == ["alpha"]


def test_refit_of_all_points_fits_every_row_without_a_bootstrap(tmp_path, fakes, data):
  res = besiroglu2024.refit(tmp_path, data, bootstrap=0, all_points=True, top_starts=20)
  assert [f["n"] for f in fakes["fit"]] == [245] and fakes["boot"] == []
  assert res["all_points"] is True and res["bootstrap"] == 0
  assert all(r["se"] is None for r in res["params"].values())
  assert res["outside_bootstrap_5_95"] == []


def test_refit_records_the_compute_optimal_split_of_its_fit(tmp_path, fakes, data):
  """N_opt and D_opt are the fit's own split at each C (D_opt > N_opt at ~20 tokens per
  parameter: a swap shows), tokens per parameter their ratio."""
  res = besiroglu2024.refit(tmp_path, data, bootstrap=0, top_starts=20)
  n, d, tpp = scaling.compute_optimal(FIT, np.array(besiroglu2024.COMPUTES))
  rows = res["compute_optimal"]
  assert [r["C"] for r in rows] == besiroglu2024.COMPUTES
  np.testing.assert_allclose([r["N_opt"] for r in rows], n)
  np.testing.assert_allclose([r["D_opt"] for r in rows], d)
  np.testing.assert_allclose([r["tokens_per_param"] for r in rows], tpp)
  assert all(r["D_opt"] > r["N_opt"] and r["no_optimum"] is None for r in rows)


def test_a_compute_the_data_reach_is_not_extrapolated(tmp_path, fakes):
  """Data whose largest C = 6 N D is exactly 1e22: C = 1e21 and 1e22 are within the data,
  1e23 on are beyond it (the bound is the largest compute, reached, not passed)."""
  D = np.array([1e9, 1e10, 1e11])
  data = types.SimpleNamespace(N=1e22 / (6.0 * D[-1]) * np.ones(3), D=D, L=np.ones(3))
  assert (6.0 * data.N * data.D).max() == 1e22
  res = besiroglu2024.refit(tmp_path, data, bootstrap=0, all_points=True, top_starts=20)
  assert [r["extrapolated"] for r in res["compute_optimal"]] == [False, False, True, True, True]


def test_refit_buckets_isoflop_by_quarter_decades_with_the_callers_seed(tmp_path, fakes, data):
  """Approach 2 gets 0.25-decade compute edges 1e18..1e22 (17 edges) and the run's seed; the
  file records its result as returned, resamples used apart from those drawn."""
  res = besiroglu2024.refit(tmp_path, data, bootstrap=0, top_starts=20, seed=5)
  (call,) = fakes["iso"]
  np.testing.assert_allclose(call["edges"], 10.0 ** (18 + 0.25 * np.arange(17)))
  assert call["seed"] == 5
  iso = res["isoflop"]
  assert (iso["a"], iso["a_5_95"], iso["resamples"], iso["resamples_used"]) == (
      0.5, [0.45, 0.55], 1000, 990)
  assert iso["N_opt"] == [3e8, 1e9] and iso["n_points"] == [9, 11] and iso["rejected"] == [1e21]


def test_refit_records_an_isoflop_input_error_and_still_writes(tmp_path, fakes, data,
                                                             monkeypatch):
  """Too few buckets is an InputError (a ValueError): the approach-3 result is still written,
  with the IsoFLOP error in its place."""
  def fails(*a, **k):
    raise InputError("isoflop_fit: fewer than two buckets")
  monkeypatch.setattr(scaling_isoflop, "isoflop_fit", fails)
  res = besiroglu2024.refit(tmp_path, data, bootstrap=0, top_starts=20)
  assert res["isoflop"] == {"error": "isoflop_fit: fewer than two buckets"}
  assert (tmp_path / "scaling_fit.json").is_file()


def test_refit_names_a_relative_csv_by_its_absolute_path_and_content(tmp_path, fakes,
                                                                     monkeypatch):
  """--csv=data.csv is recorded resolved (the same name elsewhere is another file) and with
  the sha256 of its bytes (not of its name)."""
  (tmp_path / "data.csv").write_bytes(scaling.default_csv_path().read_bytes())
  monkeypatch.chdir(tmp_path)
  data = scaling.load_chinchilla_csv("data.csv")
  res = besiroglu2024.refit(tmp_path / "out", data, csv="data.csv", bootstrap=0, top_starts=20)
  assert res["csv"] == str((tmp_path / "data.csv").resolve())
  assert res["csv_sha256"] == hashlib.sha256((tmp_path / "data.csv").read_bytes()).hexdigest()


@pytest.mark.parametrize("preset, expected", [
    ("tiny", [(False, 10, 20), (True, 0, 20)]),
    # cpu and paper: Besiroglu's procedure, every grid start and 4000 resamples
    ("cpu", [(False, 4000, None), (True, 0, None)]),
    ("paper", [(False, 4000, None), (True, 0, None)]),
])
def test_presets_choose_the_starts_and_resamples_of_both_fits(tmp_path, fakes, preset, expected):
  besiroglu2024.run(preset, tmp_path)
  assert fakes["refit"] == expected  # (all_points, bootstrap, top_starts)
  assert json.loads((tmp_path / "all_points" / "scaling_fit.json").read_text())["all_points"]


def test_run_reuses_a_saved_fit_only_with_the_same_seed_data_and_format(tmp_path, fakes):
  csv = tmp_path / "data.csv"
  csv.write_bytes(scaling.default_csv_path().read_bytes())
  work = tmp_path / "w"
  besiroglu2024.run("tiny", work, csv=str(csv))
  assert len(fakes["refit"]) == 2
  besiroglu2024.run("tiny", work, csv=str(csv))
  assert len(fakes["refit"]) == 2  # both reused
  besiroglu2024.run("tiny", work, seed=1, csv=str(csv))
  assert len(fakes["refit"]) == 4  # another seed: both refitted
  csv.write_bytes(csv.read_bytes() + b"\n")  # same path, other bytes
  besiroglu2024.run("tiny", work, seed=1, csv=str(csv))
  assert len(fakes["refit"]) == 6
  saved = work / "scaling_fit.json"
  saved.write_text(json.dumps(json.loads(saved.read_text()) | {"format": 1}))
  besiroglu2024.run("tiny", work, seed=1, csv=str(csv))
  assert fakes["refit"][6:] == [(False, 10, 20)]  # only the older-format file is refitted


def test_a_figure_that_fails_leaves_no_fit_to_reuse(tmp_path, fakes, monkeypatch):
  """scaling_fit.json marks a finished fit: written before the figure, a figure that failed
  (or a Ctrl-C while it drew) left a fit the next run reused without ever drawing it."""
  def broken(*a, **k):
    raise OSError("disk full")
  monkeypatch.setattr(besiroglu2024, "make_figure", broken)
  with pytest.raises(OSError):
    besiroglu2024.run("tiny", tmp_path)
  assert not (tmp_path / "scaling_fit.json").exists()
  monkeypatch.setattr(besiroglu2024, "make_figure", lambda *a, **k: None)
  besiroglu2024.run("tiny", tmp_path)
  assert len(fakes["refit"]) == 3  # the failed fit again, then the all-points one


def test_script_and_scorer_quote_the_same_published_table():
  """The script prints PUBLISHED next to the fit and the scorer judges against its own copy:
  a typo in one would print one target and score another."""
  assert besiroglu2024.PUBLISHED == emergence.PUBLISHED


def test_a_csv_too_short_for_besiroglus_subset_is_one_line_and_leaves_no_workdir(tmp_path):
  """A second trial: --csv with 5 rows (the subset drops the 5 highest-loss ones) ended in a
  ValueError traceback, exit 1, experiment.json left behind; with 8 rows the refusal counted
  "3 distinct points" without a word of the drop. Control: the 8-row refusal stays exit 2."""
  import subprocess
  import sys
  from pathlib import Path
  lines = scaling.default_csv_path().read_text().splitlines()
  results = []
  for rows in (5, 8):
    csv = tmp_path / f"rows{rows}.csv"
    csv.write_text("\n".join(lines[:rows + 1]) + "\n")
    work = tmp_path / f"w{rows}"
    results.append((work, subprocess.run(
        [sys.executable, "-m", "experiments.besiroglu2024", "--preset=tiny",
         f"--workdir={work}", f"--csv={csv}"], capture_output=True, text=True, timeout=300,
        cwd=Path(__file__).resolve().parents[1])))
  (w5, five), (w8, eight) = results
  assert five.returncode == 2 and five.stderr.count("\n") == 1, five.stderr[-2000:]
  assert "5 data points: Besiroglu's subset drops the 5 highest-loss ones and leaves none" in (
      five.stderr)
  assert eight.returncode == 2 and eight.stderr.count("\n") == 1, eight.stderr[-2000:]
  assert "(of the CSV's 8 rows, after Besiroglu's subset dropped the 5 highest-loss ones)" in (
      eight.stderr)
  assert not w5.exists() and not w8.exists()
