"""The main job's seed sweep (issue 14: one seed is an anecdote) trains as one vmapped ensemble."""
from configs import icl_regression
from research import ensemble


def test_seeds_sweep_is_ten_seeds_that_ensemble_on_the_main_job():
  sweep = icl_regression.get_sweep("seeds")
  assert [m["seed"] for m in sweep] == list(range(10))
  ok, why = ensemble.can_ensemble(icl_regression.get_config("cpu"), sweep)
  assert ok, why


def test_a_shape_sweep_does_not_ensemble():
  """Negative control: the check above can fail (the scale sweep changes shapes)."""
  ok, why = ensemble.can_ensemble(icl_regression.get_config("cpu"),
                                  icl_regression.get_sweep("scale"))
  assert not ok and "model.num_layers" in why


def _probe(model, averaging, d=2, function="linear"):
  n = len(model)
  return {"k": list(range(n)), "n_dims": d, "function": function,
          "curves": {"model": {"mean": model}, "averaging": {"mean": averaging}}}


def test_probe_summary_is_the_main_jobs_headline():
  """The per-seed verdict `research.results` shows: error/d at k = d and 2d, the worst from
  2d on, below averaging from k = 2, and the headline (<= 0.05 from 2d, below averaging)."""
  from research.tasks import regression
  avg = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]
  held = regression.probe_summary(_probe([1.0, 0.5, 0.1, 0.06, 0.04, 0.03], avg))
  assert held == {"error_at_d": 0.1, "error_at_2d": 0.04, "worst_from_2d": 0.04,
                  "below_averaging_from_2": True, "headline": True}
  stuck = regression.probe_summary(_probe([1.0, 0.5, 0.3, 0.2, 0.08, 0.03], avg))
  assert stuck["worst_from_2d"] == 0.08 and stuck["headline"] is False
  # Negative control: predicting 0 scores 1 at every k, above averaging: no headline.
  zero = regression.probe_summary(_probe([1.0] * 6, avg))
  assert not zero["below_averaging_from_2"] and zero["headline"] is False
  # The headline is the noise-free linear main job's; other functions get the scalars only.
  assert "headline" not in regression.probe_summary(_probe([1.0] * 6, avg, function="quadratic"))


def test_results_shows_each_seeds_probe_summary(tmp_path):
  import json

  from research import results, results_records
  for seed, ok in ((0, True), (1, False)):
    run = tmp_path / "runs" / f"00{seed}_seed={seed}"
    (run / "probes").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"seed": seed}))
    (run / "probes" / "icl_regression.json").write_text(json.dumps(
        {"curves": {}, "summary": {"error_at_2d": 0.01 if ok else 0.3, "headline": ok}}))
  rows = results_records.records([tmp_path])
  assert [r["probes.icl_regression.headline"] for r in rows] == [True, False]
  cols = results.default_columns(rows)
  assert {"seed", "probes.icl_regression.error_at_2d", "probes.icl_regression.headline"} <= set(cols)


def test_below_averaging_starts_at_k_2_not_k_1():
  """Above averaging at k = 1 only (one example: no estimator beats averaging reliably) and below
  it from k = 2 on is 'below averaging from 2' (mutation audit 8A: a comparison from k = 1 passed)."""
  from research.tasks import regression
  avg = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]
  s = regression.probe_summary(_probe([1.0, 0.95, 0.1, 0.06, 0.04, 0.03], avg))
  assert s["below_averaging_from_2"] is True and s["headline"] is True


def test_the_headline_threshold_is_inclusive():
  """Worst error/d from 2d on exactly HEADLINE_ERROR (0.05) is the headline: 'at most'."""
  from research.tasks import regression
  avg = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]
  s = regression.probe_summary(_probe([1.0, 0.5, 0.1, 0.06, 0.05, 0.03], avg))
  assert s["worst_from_2d"] == regression.HEADLINE_ERROR == 0.05 and s["headline"] is True
