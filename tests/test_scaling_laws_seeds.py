"""experiments/scaling_laws.py over several seeds: each seed's offset and entropy taken out, the
seed spread beside the bootstrap, one seed said to be one, and bad seeds refused."""
import json

import numpy as np
import pytest

from experiments import scaling_laws
from research.errors import InputError
from test_scaling_laws import _law_points


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
