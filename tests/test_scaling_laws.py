"""experiments/scaling_laws.py: the L(N, D) analysis on a known law, the tiny grid end to end.
(The same fit on the Chinchilla data, experiments/besiroglu2024.py: tests/test_scaling.py.)"""
import json
import shutil

import numpy as np
import pytest

from configs import scaling_laws as grid_config
from experiments import scaling_laws
from research.analysis import scaling, scaling_plots
from research.errors import InputError

# Non-embedding parameters of configs/scaling_laws.py's SIZES at V = 128, and its budgets.
GRID_N = np.array([5488, 10472, 23312, 44768, 91184, 178084.0])
GRID_D = np.array(grid_config.STEPS) * 32 * 64.0


def _law_points(E=2.95, A=150.0, B=900.0, alpha=0.45, beta=0.5):
  N, D = (a.ravel() for a in np.meshgrid(GRID_N, GRID_D, indexing="ij"))
  L = E + A * N ** -alpha + B * D ** -beta
  return [{"N": n, "D": d, "loss": l, "num_layers": 1, "width": 8, "num_steps": int(d // 2048),
           "C": 6 * n * d, "loss_source": "eval_loss", "train_loss": l, "wall_s": 0.0}
          for n, d, l in zip(N, D, L)]


def test_cpu_grid_is_isoflop_friendly():
  sweep = grid_config.get_sweep("scaling_grid")
  assert len(sweep) == len(grid_config.SIZES) * len(grid_config.STEPS) >= 12
  assert len(grid_config.get_sweep("scaling_grid_tiny")) == 4
  # N and D both double along the grid, so anti-diagonals share C to within ~15%.
  assert np.all(np.abs(np.log2(GRID_N[1:] / GRID_N[:-1]) - 1) < 0.25)
  assert np.all(GRID_D[1:] / GRID_D[:-1] == 2)
  from research import config_check, sweep as sweep_lib
  for preset, name in (("cpu", "scaling_grid"), ("tiny", "scaling_grid_tiny")):
    config = grid_config.get_config(preset)
    for o in grid_config.get_sweep(name):
      config_check.validate(sweep_lib.apply_overrides(config, o), num_devices=8)


def test_analysis_recovers_a_known_law(tmp_path):
  points = _law_points()
  res = scaling_laws.analyse(points, bootstrap=20, top_starts=50, seed=0)
  f = res["fit"]
  for k, v in dict(E=2.95, A=150.0, B=900.0, alpha=0.45, beta=0.5).items():
    assert f[k]["value"] == pytest.approx(v, rel=1e-3), k
    lo, hi = f[k]["p5_p95"]
    assert f[k]["se"] is not None
    # Noise-free points: the full fit and the bootstrap refits differ only by the optimiser's
    # precision, which depends on the CPU (beta 0.500047 against refits 0.500007-0.500046 on
    # one host, inside 1e-6 on another), so the interval brackets the value to 1e-4 relative,
    # ten times tighter than the fit's own agreement with the law above (1e-3).
    assert lo <= f[k]["value"] * (1 + 1e-4) and hi >= f[k]["value"] * (1 - 1e-4)
  assert f["residual_rms"] < 1e-4 and f["reported"]
  assert not any(f[k]["outside_p5_p95"] for k in scaling_laws.PARAMS)
  a3 = 0.5 / 0.95
  assert res["exponents"]["N_opt ~ C^a"] == pytest.approx(a3, rel=1e-3)
  iso = res["isoflop"]
  # The grid's 3 buckets of 4 points (3 points fit a parabola exactly: no curvature test).
  assert len(iso["buckets"]) == 3 and all(b["n_points"] == 4 for b in iso["buckets"])
  assert iso["a"] == pytest.approx(a3, abs=0.03)  # measured 0.519 vs 0.526
  assert iso["a_5_95"][0] <= iso["a"] <= iso["a_5_95"][1]
  fit = scaling.ChinchillaFit(*(f[k]["value"] for k in scaling_laws.PARAMS), 0.0, 0)
  for row in res["compute_optimal"]:
    n, d, t = scaling.compute_optimal(fit, row["C"])
    assert row["N_opt"] == pytest.approx(float(n))
    assert row["tokens_per_param"] == pytest.approx(float(t))
    assert row["N_opt_5_95"][0] <= row["N_opt"] * (1 + 1e-6)
  # The figure renders from the result file alone.
  res |= {"runs": points, "source_entropy": 2.9, "task": {"what": "known law"}}
  path = tmp_path / "scaling_laws.json"
  path.write_text(json.dumps(res))
  png = scaling_plots.render_scaling_laws(path, tmp_path / "figures" / "scaling_laws.png")
  assert png.stat().st_size > 20_000


def test_scaling_figure_draws_the_fitted_law_its_frontier_and_each_bins_parabola(
    tmp_path, monkeypatch):
  """The lines handed to matplotlib, on a hand-made result file: panel 1 the law
  L = E + A/N^alpha + B/D^beta per size; panel 2 per C bin of two or more runs (a bin of one
  run draws no line) the law along C = 6ND at the bin's geometric-mean C (the bucket that
  isoflop_fit labelled with it is found) and the approach-2 parabola c2 x^2 + c1 x + c0,
  x = ln N; panel 3 the N that minimises L(N, C / 6N) at each C."""
  from research.analysis import plots
  figures = []
  monkeypatch.setattr(plots, "save_figure", lambda fig, out: figures.append(fig) or out)
  E, A, B, al, be = 1.0, 100.0, 400.0, 0.5, 0.25
  runs = [{"N": 1e3, "D": 200.0, "loss": 9.0, "num_layers": 1, "width": 8},    # C = 1.2e6
          {"N": 2.5e3, "D": 100.0, "loss": 8.0, "num_layers": 2, "width": 8},  # C = 1.5e6
          {"N": 1e3, "D": 500.0, "loss": 7.0, "num_layers": 1, "width": 8}]    # C = 3e6, alone
  cb = float(np.sqrt(1.2e6 * 1.5e6))
  fit = {k: {"value": v} for k, v in (("E", E), ("A", A), ("B", B), ("alpha", al), ("beta", be))}
  res = {"runs": runs, "fit": fit | {"reported": True, "n_points": 3}, "task": {"what": "hand"},
         "exponents": {"N_opt ~ C^a": be / (al + be)}, "compute_optimal": [],
         "isoflop": {"edges": [1e6, 2e6, 4e6], "a": 0.5, "log_intercept": 0.0,
                     "buckets": [{"C": cb, "coeffs": [0.5, -7.0, 30.0], "N_opt": 1096.6,
                                  "L_opt": 5.5}]}}
  path = tmp_path / "scaling_laws.json"
  path.write_text(json.dumps(res))
  scaling_plots.render_scaling_laws(path, tmp_path / "f.png")
  law = lambda n, d: E + A * n ** -al + B * d ** -be
  tokens, iso, frontier = figures[0].axes[:3]
  for line, n in zip(tokens.get_lines()[:2], (1e3, 2.5e3)):  # sizes in order
    d = np.asarray(line.get_xdata())
    np.testing.assert_allclose(line.get_ydata(), law(n, d), rtol=1e-12)
  assert tokens.get_lines()[2].get_ydata()[0] == E  # the fitted E
  solid, parabola = iso.get_lines()  # the lone 3e6 run's bin: no line
  n = np.asarray(solid.get_xdata())
  np.testing.assert_allclose(solid.get_ydata(), law(n, cb / (6 * n)), rtol=1e-12)
  x = np.log(np.asarray(parabola.get_xdata()))
  np.testing.assert_allclose(parabola.get_ydata(), 0.5 * x * x - 7.0 * x + 30.0, rtol=1e-12)
  line = frontier.get_lines()[0]
  grid = np.geomspace(1e-2, 1e10, 400_001)
  for c, n_star in list(zip(line.get_xdata(), line.get_ydata()))[::33]:
    best = grid[np.argmin(law(grid, c / (6 * grid)))]
    assert n_star == pytest.approx(best, rel=1e-3)


def _null_points(L):
  points = _law_points()
  return [p | {"loss": float(l), "train_loss": float(l)} for p, l in zip(points, L)]


@pytest.mark.parametrize("case, reason", [
    ("flat", "same at every point"), ("noise", "no dependence on"),
    ("rising", "no dependence on N"), ("duplicated", "repeat an earlier")])
def test_analysis_of_null_data_reports_no_fit(case, reason, capsys):
  # Before: flat gave alpha 2 SE ~1e-14; noise N_opt -4138.9, tokens_per_param -11.5, frontier
  # loss nan; rising alpha -0.064 SE 0.0008; a tiled grid shrank the SEs by sqrt 3.
  N, D = (np.array([p[k] for p in _law_points()]) for k in ("N", "D"))
  points = _null_points({"flat": np.full(N.size, 2.5),
                         "noise": 2.5 + 0.05 * np.random.default_rng(0).standard_normal(N.size),
                         "rising": 2.0 + 0.1 * np.log(N) + 0.05 * np.log(D),
                         "duplicated": 2.95 + 150 * N ** -0.45 + 900 * D ** -0.5}[case])
  if case == "duplicated":
    points = points * 2
  res = scaling_laws.analyse(points, bootstrap=20, top_starts=20, seed=0)
  assert not res["fit"]["reported"] and reason in res["fit"]["reason"]
  assert res["exponents"] is None and res["compute_optimal"] == []
  scaling_laws.report(res | {"runs": [], "task": {"what": case}, "N_definition": "N",
                             "loss_definition": "loss", "source_entropy": None})
  out = capsys.readouterr().out
  assert "no fit reported" in out and " SE " not in out and "N_opt ~" not in out.split(
      "approach 2")[0]


def _argv(workdir):
  return ["--preset=tiny", f"--workdir={workdir}", "--devices=1", "--top_starts=20",
          "--bootstrap=20", "--set", "train.compile_cache_dir=", "--set", "train.peak_flops=1e11"]


@pytest.fixture(scope="module")
def tiny_grid(tmp_path_factory):
  """The tiny grid trained once (its 4 runs), for the tests that read or rerun it."""
  out = tmp_path_factory.mktemp("scaling_laws") / "sl"
  assert scaling_laws.main(_argv(out)) == 0
  return out


def test_tiny_grid_end_to_end(tiny_grid):
  out, argv = tiny_grid, _argv(tiny_grid)
  saved = json.loads((out / "scaling_laws.json").read_text())
  assert len(saved["runs"]) == 4 and not saved["failed"]
  assert {r["loss_source"] for r in saved["runs"]} == {"eval_loss"}
  assert sorted({r["num_steps"] for r in saved["runs"]}) == list(grid_config.TINY_STEPS)
  for r in saved["runs"]:
    assert r["D"] == r["num_steps"] * 16 * 32 and r["C"] == pytest.approx(6 * r["N"] * r["D"])
    assert saved["source_entropy"] < r["loss"] < np.log(16) + 0.5
  # 4 points for 5 parameters: a smoke test of the machinery, no fit reported (before: alpha
  # 1.396 SE 0.0144 while other starts reached the same objective with alpha 0.27-2.59).
  f = saved["fit"]
  assert not f["reported"] and f["n_points"] == 4 and not set(f) & set(scaling_laws.PARAMS)
  assert "not identified (4 distinct (N, D) points for 5 parameters)" in f["reason"]
  assert saved["exponents"] is None and saved["compute_optimal"] == []
  assert "edges" in saved["isoflop"]
  assert (out / "figures" / "scaling_laws.png").stat().st_size > 20_000
  json.loads((out / "scaling_laws.json").read_text(),
             parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
  assert saved["N_definition"].startswith("non-embedding")
  ratio = saved["measured_flops_over_6ND"]
  assert 1.0 <= ratio["min"] <= ratio["max"] < 1.5
  # A rerun reuses every finished run (same wall times) and only refits.
  assert scaling_laws.main(argv) == 0
  again = json.loads((out / "scaling_laws.json").read_text())
  assert [r["wall_s"] for r in again["runs"]] == [r["wall_s"] for r in saved["runs"]]
  # The file's wall_s is the runs' training seconds, kept too (it was the call's own time:
  # the rerun's seconds of reuse and refit replaced it); this call's time is call_wall_s.
  assert again["wall_s"] == saved["wall_s"] > 0 and again["call_wall_s"] > 0
  # Other settings into the same OUT would reuse runs trained under these: refused.
  with pytest.raises(InputError, match="optim.learning_rate"):
    scaling_laws.main(argv + ["--set", "optim.learning_rate=0.001"])


def _edit_eval_losses(run_dir, value):
  path = run_dir / "metrics.jsonl"
  rows = [json.loads(line) for line in path.read_text().splitlines()]
  path.write_text("".join(json.dumps(r | ({"eval_loss": value} if "eval_loss" in r else {}))
                          + "\n" for r in rows))


def test_a_copied_or_moved_grid_is_read_from_its_own_runs(tiny_grid, tmp_path):
  """results.jsonl's `dir` is where a run trained; the fit reads WORKDIR/runs/NAME of the
  WORKDIR given. Before: a copy fitted the original's losses (edited there: 9.99 for every
  point, exit 0), and a moved grid read nothing (IndexError, exit 1)."""
  runs = lambda d: json.loads((d / "scaling_laws.json").read_text())["runs"]
  losses = [r["loss"] for r in runs(tiny_grid)]
  backup, copy, moved = tmp_path / "backup", tmp_path / "copy", tmp_path / "moved"
  shutil.copytree(tiny_grid, backup)  # the module's grid is put back as it was
  shutil.copytree(tiny_grid, copy)
  try:
    for run_dir in (tiny_grid / "runs").iterdir():  # the original's numbers change
      _edit_eval_losses(run_dir, 9.99)
    assert scaling_laws.main(_argv(copy)) == 0
    assert [r["loss"] for r in runs(copy)] == losses
    tiny_grid.rename(moved)  # where its rows say its runs are, nothing now
    assert scaling_laws.main(_argv(moved)) == 0
    assert [r["loss"] for r in runs(moved)] == [9.99] * len(losses)  # its own, edited
  finally:
    shutil.rmtree(tiny_grid, ignore_errors=True)
    shutil.rmtree(moved, ignore_errors=True)
    backup.rename(tiny_grid)


# ----------------------------------------------------------------------------- seeds
def _seed_result(alpha, seed, noise=0.003):
  """One seed's scaling_laws.json content: the law with ALPHA plus that seed's point noise."""
  rng = np.random.default_rng(seed)
  points = [p | {"run": f"r{i}", "loss": p["loss"] + noise * rng.standard_normal()}
            for i, p in enumerate(_law_points(alpha=alpha))]
  res = scaling_laws.analyse(points, bootstrap=30, top_starts=20, seed=seed)
  return res | {"runs": points, "source_entropy": 2.9, "seed": seed}


def test_seeds_summary_sets_the_seed_spread_beside_the_bootstrap(capsys):
  from research.analysis import scaling_seeds
  # Seeds whose law differs (alpha 0.40, 0.45, 0.50) by far more than each seed's point noise
  # lets its bootstrap see: the seed spread is many bootstrap SEs.
  moved = {s: _seed_result(a, s) for s, a in enumerate((0.40, 0.45, 0.50))}
  summary = scaling_seeds.summarize(moved)
  q = summary["quantities"]["alpha"]
  assert q["n"] == 3 and [round(v, 2) for v in q["values"].values()] == [0.40, 0.45, 0.50]
  assert scaling_seeds.seed_over_bootstrap(q) > 3
  assert summary["quantities"]["E - entropy"]["mean"] == pytest.approx(0.05, abs=0.02)
  assert summary["point_loss"] == "loss - source entropy" and len(summary["points"]) == 24
  # Control: the same law and the same points on every seed: no seed spread at all.
  same = scaling_seeds.summarize({s: moved[1] for s in (0, 1, 2)})
  assert scaling_seeds.seed_over_bootstrap(same["quantities"]["alpha"]) == 0.0
  assert same["loss_std_rms"] == 0.0
  # One seed: nothing to compare with.
  one = scaling_seeds.summarize({0: moved[0]})
  assert one["quantities"]["alpha"]["std"] is None and one["loss_std_rms"] is None
  scaling_seeds.report(summary)
  out = capsys.readouterr().out
  assert "over 3 training seeds" in out and "1.73x" in out and "chance up to" in out


def test_seeds_summary_needs_every_band_and_takes_out_each_seeds_offset():
  from research.analysis import scaling_seeds
  base = _seed_result(0.45, 0)
  # Each seed's losses shifted by one offset (which E absorbs): the raw spread is the offset,
  # the centred spread is zero.
  per_seed = {s: base | {"runs": [p | {"loss": p["loss"] + 0.02 * s} for p in base["runs"]]}
              for s in (0, 1, 2)}
  summary = scaling_seeds.summarize(per_seed)
  assert summary["loss_std_rms"] == pytest.approx(0.02)
  assert summary["loss_std_centred_rms"] == pytest.approx(0.0, abs=1e-12)
  # Two points moving against each other across seeds (+0.01, 0, -0.01 and the reverse): the
  # seeds' offsets stay equal and each point's centred spread is the sample standard
  # deviation of its three losses, 0.01 (the population's, 0.0082, read a fifth low).
  sign = {0: 1, 1: -1}
  moved = {s: base | {"runs": [p | {"loss": p["loss"] + 0.01 * (1 - s) * sign.get(i, 0)}
                               for i, p in enumerate(base["runs"])]} for s in (0, 1, 2)}
  points = {r["run"]: r for r in scaling_seeds.summarize(moved)["points"]}
  assert points["r0"]["std_centred"] == pytest.approx(0.01)
  assert points["r1"]["std_centred"] == pytest.approx(0.01)
  assert points["r2"]["std_centred"] == pytest.approx(0.0, abs=1e-12)  # control: unmoved
  # One seed's band infinite (written as null in strict JSON) and one's missing an end: the
  # ratio is refused rather than taken over the other seeds' bands only (before: a TypeError,
  # or a width from the finite bands beside the std of all three).
  fit = lambda band: base["fit"] | {"alpha": base["fit"]["alpha"] | {"p5_p95": band}}
  bad = {0: base, 1: base | {"fit": fit([0.4, None])}, 2: base | {"fit": fit(None)}}
  q = scaling_seeds.summarize(bad)["quantities"]["alpha"]
  assert q["n"] == 3 and q["bands"]["1"] is None and q["mean_band_width"] is None
  assert scaling_seeds.seed_over_bootstrap(q) is None
  for band in ([0.5, 0.3], 0.4, [0.3, float("nan")]):  # reversed, scalar, NaN: no band
    q = scaling_seeds.summarize({0: base, 1: base | {"fit": fit(band)}})["quantities"]["alpha"]
    assert q["bands"]["1"] is None and scaling_seeds.seed_over_bootstrap(q) is None
  assert scaling_seeds.consistent_up_to(3) == pytest.approx(1.73, abs=0.005)
  # A band as wide as a normal's 5-95% interval (2 x 1.645 SDs) is one standard deviation.
  from scipy import stats
  assert scaling_seeds.Z_5_95 == pytest.approx(2 * stats.norm.ppf(0.95), abs=0.001)
  assert scaling_seeds.seed_over_bootstrap({"std": 1.0, "mean_band_width": 3.29}) == 1.0


def test_one_seed_report_says_its_bands_are_one_seed(capsys):
  res = _seed_result(0.45, 0) | {"task": {"what": "known law"}, "N_definition": "N",
                                 "loss_definition": "loss"}
  scaling_laws.report(res)
  assert "ONE training seed (seed 0" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--seeds=0,0"], "gives .0. more than once"), (["--seeds=0,x"], "non-negative integers"),
    (["--seeds=0,1", "--seed=2"], "give one of them"),
    (["--seeds=1,2", "--seed=0"], "give one of them"),  # before: --seed=0 was not noticed
    (["--seeds=0,\u00b2"], "non-negative integers")])  # before: '²'.isdigit(), int() traceback
def test_bad_seeds_are_refused_before_anything_runs(tmp_path, argv, message):
  with pytest.raises(InputError, match=message):
    scaling_laws.main(["--preset=tiny", f"--workdir={tmp_path / 'sl'}", *argv])
  assert not (tmp_path / "sl" / "seed_0").exists()


def test_run_seeds_summarises_the_seeds_that_finished(tmp_path, monkeypatch, capsys):
  from research.errors import RunsFailedError
  results = {0: _seed_result(0.45, 0), 2: _seed_result(0.46, 2)}

  def fake_run(preset, out, seed, **kwargs):  # each seed's grid, trained and fitted
    if seed == 1:
      raise RunsFailedError("1 finished runs, a fit needs 2")
    out.mkdir(parents=True)
    (out / "scaling_laws.json").write_text(json.dumps(results[seed]))

  monkeypatch.setattr(scaling_laws, "run", fake_run)
  with pytest.raises(RunsFailedError, match="seed 1: 1 finished runs"):
    scaling_laws.run_seeds("cpu", tmp_path, (0, 1, 2))
  saved = json.loads((tmp_path / "scaling_laws_seeds.json").read_text())
  assert saved["seeds"] == [0, 2] and saved["seeds_asked"] == [0, 1, 2]
  assert saved["failed"] == ["seed 1: 1 finished runs, a fit needs 2"]
  assert "over 2 training seeds (0, 2)" in capsys.readouterr().out


def test_a_quantitys_seed_spread_is_the_sample_standard_deviation(monkeypatch):
  """As the points' spread: n - 1 (with 3 seeds the population SD reads it 18% low, and
  seed_over_bootstrap with it; a mutation audit's went unseen)."""
  import statistics
  from research.analysis import scaling_seeds
  monkeypatch.setattr(scaling_seeds, "_quantity",
                      lambda res, name: (res["v"], [res["v"] - 0.01, res["v"] + 0.01]))
  per_seed = {s: {"v": v, "runs": [], "fit": {}} for s, v in enumerate((0.40, 0.45, 0.50))}
  q = scaling_seeds.summarize(per_seed)["quantities"]["alpha"]
  assert q["std"] == pytest.approx(statistics.stdev([0.40, 0.45, 0.50]))  # 0.05
  assert scaling_seeds.seed_over_bootstrap(q) == pytest.approx(0.05 / (0.02 / 3.29))


def test_seeds_summary_takes_each_seeds_entropy_off_its_losses_and_e_band():
  """Hand-made seeds (no fit): seed 0's source has entropy 2.9, seed 1's 3.0. E - entropy is
  E less that seed's entropy, its band shifted by the same (E 3.0 in [2.9, 3.1] -> 0.1 in
  [0.0, 0.2]); each point's loss less its seed's entropy (1.4 and 1.5 -> 0.5 and 0.5, no spread).
  A mutation audit left the band's upper end or the losses unshifted, unseen: the fixture's
  seeds shared one entropy and only the band's width was read."""
  from research.analysis import scaling_seeds

  def seed(entropy, E, losses):
    band = lambda v: {"value": v, "p5_p95": [v - 0.1, v + 0.1]}
    return {"fit": {"reported": True, "alpha": band(0.4), "beta": band(0.3), "E": band(E),
                    "residual_rms": 0.01},
            "exponents": {"N_opt ~ C^a": 0.5}, "isoflop": {"a": 0.5, "a_5_95": [0.4, 0.6]},
            "source_entropy": entropy,
            "runs": [{"run": f"r{i}", "N": 1e6, "D": 1e8, "loss": v} for i, v in enumerate(losses)]}
  s = scaling_seeds.summarize({0: seed(2.9, 3.0, [1.4 + 2.9, 0.2 + 2.9]),
                               1: seed(3.0, 3.1, [1.4 + 3.0, 0.2 + 3.0])})
  q = s["quantities"]["E - entropy"]
  assert q["values"] == {"0": pytest.approx(0.1), "1": pytest.approx(0.1)}
  assert q["bands"]["0"] == pytest.approx([0.0, 0.2]) and q["bands"]["1"] == pytest.approx([0.0, 0.2])
  assert q["std"] == pytest.approx(0.0, abs=1e-12) and q["mean_band_width"] == pytest.approx(0.2)
  assert s["point_loss"] == "loss - source entropy"
  points = {p["run"]: p for p in s["points"]}
  assert points["r0"]["losses"] == {"0": pytest.approx(1.4), "1": pytest.approx(1.4)}
  assert points["r0"]["std"] == pytest.approx(0.0, abs=1e-12) and s["loss_std_rms"] == pytest.approx(0.0, abs=1e-12)


def test_seeds_offsets_come_from_a_single_common_point_too():
  """Two seeds sharing one grid point (seed 0 has a second): each seed's offset is its loss
  there, so that point's centred spread is 0 while its raw spread is stdev(1.0, 1.2)."""
  from research.analysis import scaling_seeds
  fit = {"reported": False, "residual_rms": None}
  seed = lambda runs: {"fit": fit, "exponents": None, "isoflop": {}, "source_entropy": None,
                       "runs": [{"run": r, "N": 1e6, "D": 1e8, "loss": v} for r, v in runs]}
  s = scaling_seeds.summarize({0: seed([("a", 1.0), ("b", 2.0)]), 1: seed([("a", 1.2)])})
  assert s["seed_offsets"] == {"0": 1.0, "1": 1.2} and s["point_loss"] == "loss"
  a = {p["run"]: p for p in s["points"]}["a"]
  assert a["std"] == pytest.approx(0.2 / 2 ** 0.5) and a["std_centred"] == pytest.approx(0.0, abs=1e-12)


def test_two_seeds_already_have_a_consistency_bound():
  """sqrt(chi2_0.95(n - 1) / (n - 1)): n = 2 gives sqrt(3.841) = 1.960 (one degree of
  freedom: the normal's 97.5% point); 5 seeds 1.54, 10 seeds 1.37; none below 2 seeds."""
  from scipy import stats
  from research.analysis import scaling_seeds
  assert scaling_seeds.consistent_up_to(2) == pytest.approx(stats.norm.ppf(0.975), rel=1e-9)
  assert scaling_seeds.consistent_up_to(5) == pytest.approx(1.54, abs=0.005)
  assert scaling_seeds.consistent_up_to(10) == pytest.approx(1.37, abs=0.005)
  assert scaling_seeds.consistent_up_to(1) is None
