"""research.aot plans the evaluation forward too (research/aot_eval.py): a trial found
6p9b@v5e:4x4's train step fitting and its eval forward (replicated fp32 logits) with the
optimiser state 1.08 GB over the chip, the table saying `fits? yes`."""
import json

import pytest

from research import aot, aot_eval, aot_ladder
from aot_fixtures import config, dp_plan, needs_libtpu, v5e  # noqa: F401 -- fixtures


@needs_libtpu
def test_the_eval_forward_is_planned_beside_the_optimiser_state(dp_plan):
  e, train = dp_plan["eval"], dp_plan["memory_per_device"]
  m = e["memory_per_device"]
  assert (e["batch_size"], e["tokens"]) == (8, 8 * 128)
  # One program for the forward and the losses (as the run evaluates, Experiment.predict_fn's
  # `then`): the per-token losses come back (8 x 128 fp32), not the logits (8 x 128 tokens x
  # 512 ids in fp32, 2 MB; XLA:TPU fuses them into the loss here: no temporaries at all).
  assert m["output_bytes"] == 8 * 128 * 4 and e["format"] == aot_eval.FORMAT
  # Resident beside it: Adam's two moments, 8 of the state's 12 bytes a parameter (data
  # parallel: the whole state on every chip); the program's arguments hold the parameters.
  assert m["optimizer_bytes"] == pytest.approx(train["params_and_optimizer_bytes"] * 8 / 12,
                                               rel=1e-3)
  assert m["argument_bytes"] >= 4 * dp_plan["num_params"]
  assert m["total_bytes"] == m["program_bytes"] + m["optimizer_bytes"]
  assert m["fits"] is True and aot_eval.fits(dp_plan) is True
  assert "eval/chip    forward of 8 x 128 tokens: program " in aot.report(dp_plan)
  row = aot_ladder.markdown([{"size": "tiny"} | dp_plan]).splitlines()[-1]
  assert f"| {m['total_bytes'] / 1e9:.1f} | yes |" in row


@needs_libtpu
def test_an_eval_that_cannot_fit_fails_the_plan_whose_train_step_fits(v5e, dp_plan):
  """Negative control: 80,000 sequences a forward (44 GB of temporaries a chip, the logits
  among them) on the fixture's model, whose train step fits."""
  e = aot.plan_eval(config(**{"probe.batch_size": 80_000}), v5e)
  assert e["memory_per_device"]["fits"] is False
  plan = dp_plan | {"eval": e}
  assert dp_plan["memory_per_device"]["fits"] and aot_eval.fits(plan) is False
  assert "DOES NOT FIT" in aot.report(plan) and "lower --config.probe.batch_size" in aot.report(plan)
  assert "| **no** (eval) |" in aot_ladder.markdown([{"size": "tiny"} | plan])


def test_a_plan_cached_before_the_eval_says_so():
  """Without the key, or with an evaluation of an older format (the forward alone, whose
  18.0 GB and advice no longer hold: a review's --cached_only repro)."""
  plan = {"memory_per_device": {"fits": True}}
  old = {**plan, "eval": {"batch_size": 8, "tokens": 16384, "memory_per_device": {
      "total_bytes": 18e9, "program_bytes": 14.6e9, "optimizer_bytes": 3.4e9, "fits": False}}}
  for p in (plan, old):
    assert "not planned by this version" in aot_eval.text(p, str)
    assert aot_ladder._fits(p) == "yes (eval not planned)" and aot_ladder._eval_gb(p) == "?"
    assert aot_eval.fits(p) is True
  assert aot_ladder._fits(plan) == "yes (eval not planned)"
  assert aot_ladder._fits({**plan, "eval": None}) == "yes"  # a config without probe.batch_size
  assert aot_ladder._eval_gb(plan) == "?" and aot_ladder._eval_gb({"eval": None}) == "-"


def test_the_ladder_completes_a_cached_plan_without_the_eval(tmp_path, monkeypatch):
  """Only the evaluation is compiled for it (a 64-chip train step takes 10-15 min), and the
  cell's file is completed; a plan that holds one is not touched (control)."""
  from test_aot_ladder import _TINY_LADDER, _fake_plan
  path = tmp_path / "tiny_ladder.py"
  path.write_text(_TINY_LADDER)
  cache = tmp_path / "plans"
  monkeypatch.setattr(aot, "topology_target", lambda name, flag="": object())
  monkeypatch.setattr(aot, "plan", lambda c, t: {k: v for k, v in _fake_plan(c, t).items()
                                                 if k != "eval"})  # a plan made before it
  evals = []
  eval_plan = {"format": aot_eval.FORMAT, "batch_size": 8, "tokens": 1024,
               "memory_per_device": {"total_bytes": 3e9, "fits": True}}
  monkeypatch.setattr(aot, "plan_eval", lambda c, t: evals.append(1) or eval_plan)
  aot_ladder.ladder(str(path), ["v5e:2x2"], [], str(cache), planner=aot)  # cached without one
  (cell,) = cache.glob("*.json")
  assert evals == [] and "eval" not in json.loads(cell.read_text())
  rows, _ = aot_ladder.ladder(str(path), ["v5e:2x2"], [], str(cache), planner=aot)
  assert evals == [1] and rows[0]["from_cache"] and rows[0]["eval"] == eval_plan
  assert json.loads(cell.read_text())["eval"] == eval_plan
  rows, _ = aot_ladder.ladder(str(path), ["v5e:2x2"], [], str(cache), planner=aot)
  assert evals == [1] and rows[0]["eval"] == eval_plan  # completed: not compiled again
  # an evaluation of an older format (the forward alone, before the losses joined it) is
  # planned again
  cell.write_text(json.dumps({**json.loads(cell.read_text()), "eval": {
      k: v for k, v in eval_plan.items() if k != "format"}}))
  aot_ladder.ladder(str(path), ["v5e:2x2"], [], str(cache), planner=aot)
  assert evals == [1, 1] and json.loads(cell.read_text())["eval"] == eval_plan
