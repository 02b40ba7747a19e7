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
