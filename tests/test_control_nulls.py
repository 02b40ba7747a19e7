"""The negative controls' files are null where their docstrings say so (mutation audit 6C): an
untrained model's accuracies at chance with the chance levels the claims read, a constant
predictor's in-weights accuracy equal to its chance, a uniform embedding spectrum, a flat
curve. A control that is no longer null could let a claim PASS on its own control; these pin
the null values themselves, whatever the scorers make of them today."""
import json


from experiments.claims import control_files as cf
from experiments.claims import language_controls as lc


def _read(path):
  return json.loads(path.read_text())


def test_olsson_untrained_has_no_head_to_ablate(tmp_path):
  """No head specialises, so none is ablated: an ablation on the control would hand the
  ablation claim an ICL-score change to read."""
  lc.olsson_untrained(tmp_path)
  for name, run in _read(tmp_path / "olsson2022.json")["runs"].items():
    assert run["ablation"]["heads"] == [] and "icl_change" not in run["ablation"], name
    assert set(run["icl_curve"]["icl_score"]) == {0.0}


def test_schaeffer_flat_and_untrained_ladder_curves_are_at_chance(monkeypatch, tmp_path):
  """'flat curve' (Schaeffer) and the untrained ladder: every metric at chance (0 on the
  chance-to-perfect scale) at every size, checkpoint, task and k. A constant curve above chance
  still FAILs the emergence claims, but it is no longer an untrained model."""
  from experiments.claims import ladder_controls
  seen = {}
  monkeypatch.setattr(cf, "schaeffer_files", lambda run_dir, curve, **kw: seen.update(s=curve))
  monkeypatch.setattr(ladder_controls, "ladder_files", lambda run_dir, **kw: seen.update(kw))
  cf.schaeffer_flat(tmp_path)
  ladder_controls.ladder_untrained(tmp_path)
  metrics = ("exact_match", "token_accuracy", "edit_distance", "log_likelihood", "brier")
  assert all(seen["s"](m, i) == 0.0 for m in metrics for i in range(6))
  assert all(seen["few_shot"](i, s, 1e12 * 4 ** i, t, k, m) == 0.0 for i in range(4)
             for s in (1, 100, 1000) for t in ("copy", "add", "lookup") for k in (0, 1, 8)
             for m in metrics)
  assert all(seen["prefix"](i, s, 1.0) == 0.05 for i in range(4) for s in (1, 1000))
