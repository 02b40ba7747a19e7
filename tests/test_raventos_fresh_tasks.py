"""Raventós's M = infinity (a fresh task per prompt) in experiments/raventos2023.py: how --pools
spells it, how it is trained beside the finite pools' ensemble, what is recorded of it, and that
the claims stay the finite pools'. Before, `--pools=2,0` (the docstring's "M = 0, fresh tasks")
trained every M as a solo run and then ended in KeyError: 'dmmse' (a fresh-task run has no
pool, so its probe has no dMMSE curve), exit 1 with a traceback."""
import json
import types

import pytest

from experiments import raventos2023
from experiments.claims import regression
from research.errors import InputError, RunsFailedError
from test_experiment_numbers import _verdicts_asked


def test_the_paper_grid_ends_with_m_infinity_and_the_others_have_none():
  assert raventos2023.pool_grid("paper") == [2 ** i for i in range(1, 21)] + ["inf"]
  assert "inf" not in raventos2023.pool_grid("cpu") + raventos2023.pool_grid("tiny")


@pytest.mark.parametrize("given, grid", [(["2", "64"], [2, 64]), (["inf"], ["inf"]),
                                         ([" 8", "INF", "16"], [8, "inf", 16]),
                                         (["\u221e"], ["inf"]), (["Infinity"], ["inf"])])
def test_pools_are_integers_from_one_and_inf(given, grid):
  assert raventos2023.parse_pools(given) == grid


@pytest.mark.parametrize("entry", ["0", "-4", "x", "", "2.5", "1e3"])
def test_a_pool_that_is_no_size_is_refused_naming_it_and_the_spelling_of_fresh_tasks(entry):
  """0 is the config's spelling of fresh tasks (task.pool_size = 0), but in a list of pool
  sizes it reads as a pool of no task: refused with the spelling that means fresh tasks."""
  with pytest.raises(InputError) as e:
    raventos2023.parse_pools(["4", entry])
  line = str(e.value)
  assert line.startswith(f"--pools=4,{entry}: {entry!r} is not a pool size") and \
      "--pools=4,64,1024,inf" in line and "\n" not in line


@pytest.mark.parametrize("pools, twice", [(["inf", "INF"], "inf"), (["2", "02", "8"], "2")])
def test_a_pool_size_given_twice_is_refused(pools, twice):
  """inf,INF trained one run for two grid entries (the failure count then off by one)."""
  with pytest.raises(InputError, match=rf"gives M = {twice} more than once; give each pool "
                     "size once$"):
    raventos2023.parse_pools(pools)
  assert raventos2023.parse_pools(pools[:1]) == [pools[0] if pools[0] == "inf" else 2]


def _curve(v, half=0.0):
  return {"mean": [v] * 3, "lo": [v - half] * 3, "hi": [v + half] * 3}


def _fake_sweep(tmp_path, monkeypatch, fresh_status="done", pool_status="done"):
  """run_sweep replaced: each run's probes written by hand; returns the override lists it was
  called with. The fresh-task run's probe has what a pool_size = 0 run writes: no dMMSE."""
  from research import sweep
  calls = []
  pools = {2: (0.1, 0.9), 16: (0.6, 0.2)}  # M -> (d_dmmse, d_ridge)
  for m, (d_dmmse, d_ridge) in pools.items():
    probes = tmp_path / "runs" / f"m{m}" / "probes"
    probes.mkdir(parents=True)
    fresh = {"k": [0, 1, 2], "curves": {
        "model": _curve(1.0), "ridge": _curve(0.5), "dmmse": _curve(0.7),
        "model_vs_ridge": _curve(d_ridge, 0.01), "model_vs_dmmse": _curve(d_dmmse, 0.01),
        "ridge_vs_dmmse": _curve(1.0)}}
    (probes / "icl_regression.json").write_text(json.dumps(fresh))
    (probes / "icl_regression_pool.json").write_text(json.dumps(
        {"k": [0, 1, 2], "curves": {n: _curve(0.25) for n in ("model", "ridge", "dmmse")}}))
  probes = tmp_path / "runs" / "m0" / "probes"
  probes.mkdir(parents=True)
  (probes / "icl_regression.json").write_text(json.dumps({"k": [0, 1, 2], "curves": {
      "model": _curve(0.55), "ridge": _curve(0.5), "model_vs_ridge": _curve(0.04, 0.02)}}))

  def run_sweep(config, overrides, out, ensemble):
    calls.append([o["task.pool_size"] for o in overrides])
    row = lambda o: {"run": f"m{o['task.pool_size']}", "num_params": 10, "wall_s": 1.0,
                     "status": fresh_status if o["task.pool_size"] == 0 else pool_status,
                     "ensemble_size": 2 if o["task.pool_size"] else None}
    return types.SimpleNamespace(point_rows=lambda os: [row(o) for o in os],
                                 run_dir=lambda name: tmp_path / "runs" / name)
  monkeypatch.setattr(sweep, "run_sweep", run_sweep)
  return calls


def test_m_infinity_trains_after_the_finite_pools_ensemble_and_is_recorded_against_ridge(
    tmp_path, monkeypatch, capsys):
  """The finite pools are swept alone first (so they share one program: a pool_size = 0 point
  in the same sweep makes it run every M solo), then the fresh-task run as a sweep of its
  own in the same directory; M = inf comes last whatever its place in --pools. Its record: the model's and Ridge's errors, the distance to
  Ridge with its half-width, no dMMSE; M* and the grid are the finite pools'."""
  calls = _fake_sweep(tmp_path, monkeypatch)
  asked = _verdicts_asked(monkeypatch)
  raventos2023.run("tiny", tmp_path, pools=["inf", "16", "2"])
  assert calls == [[2, 16], [0]]  # ascending, as the figure's axis (16, 2 drew a zig-zag)
  res = json.loads((tmp_path / "raventos2023.json").read_text())
  assert res["grid"] == [2, 16] and [p["M"] for p in res["pools"]] == [2, 16]
  fresh = res["fresh_tasks"]
  assert (fresh["M"], fresh["run"], fresh["curves"]) == ("inf", "m0", {"model": [0.55] * 3,
                                                                       "ridge": [0.5] * 3})
  assert fresh["d_ridge"] == pytest.approx(0.04) and \
      fresh["d_ridge_half_width"] == pytest.approx(0.02)
  assert res["m_star"] == 16 and res["failed"] == []
  assert res["ensemble"].endswith("; M = inf (fresh tasks: no pool to share) as a solo run")
  assert (tmp_path / "figures" / "raventos2023.png").stat().st_size > 10_000  # rendered
  out = capsys.readouterr().out
  assert "     inf   0.550       -   0.500          -      0.040" in out, out
  assert asked  # the finite pools' verdicts are printed


def test_a_failed_ensemble_is_reported_not_retried_by_the_fresh_tasks_sweep(tmp_path,
                                                                               monkeypatch):
  """The fresh-task run's sweep holds that run alone: one that held the whole grid retried
  the finite pools of a failed ensemble one by one (a pool_size = 0 point forbids the
  ensemble), and exit 0 reported them trained (review of 65eec4b, with a real sweep)."""
  calls = _fake_sweep(tmp_path, monkeypatch, pool_status="failed")
  monkeypatch.setattr(raventos2023, "render", lambda *a: None)
  with pytest.raises(RunsFailedError, match="2 of 3 pool sizes failed: M = 2, 16 "):
    raventos2023.run("tiny", tmp_path, pools=["2", "16", "inf"])
  assert calls == [[2, 16], [0]]
  calls.clear()
  with pytest.raises(RunsFailedError, match="2 of 2 pool sizes failed"):  # control: no M = inf
    raventos2023.run("tiny", tmp_path, pools=["2", "16"])
  assert calls == [[2, 16]]


def test_m_infinity_alone_is_recorded_and_its_claims_say_why_there_are_none(tmp_path,
                                                                            monkeypatch):
  calls = _fake_sweep(tmp_path, monkeypatch)
  monkeypatch.setattr(raventos2023, "render", lambda *a: None)
  asked = _verdicts_asked(monkeypatch)
  raventos2023.run("tiny", tmp_path, pools=["inf"])
  assert calls == [[0]] and asked  # the scorer's NOT_SHOWN lines say why
  res = json.loads((tmp_path / "raventos2023.json").read_text())
  assert res["grid"] == [] and res["pools"] == [] and res["fresh_tasks"]["M"] == "inf"
  assert res["ensemble"] == "M = inf (fresh tasks) as a solo run; no finite pool"
  scored = regression.raventos2023(tmp_path, "tiny")
  assert {c["status"] for c in scored["claims"]} == {"NOT_SHOWN"}
  assert all("the grid has no finite pool (M = inf alone" in c["note"] for c in scored["claims"])
  assert any(n.startswith("M = inf (a fresh task per prompt; no claim)") for n in scored["notes"])


def test_the_claims_are_the_finite_pools_whether_m_infinity_ran_or_failed(tmp_path, monkeypatch):
  """M = inf is a note beside the claims, never their input: the verdicts equal those of the
  same pools without it, and a failed fresh-task run (reported, RunsFailedError) does not turn
  them NOT_SHOWN. Control: a failed finite pool does."""
  _verdicts_asked(monkeypatch)
  monkeypatch.setattr(raventos2023, "render", lambda *a: None)
  verdicts = {}
  for name, pools, status in [("without", ["2", "16"], "done"),
                              ("with", ["2", "16", "inf"], "done"),
                              ("failed", ["2", "16", "inf"], "failed")]:
    work = tmp_path / name
    _fake_sweep(work, monkeypatch, fresh_status=status)
    if status == "failed":
      with pytest.raises(RunsFailedError, match="1 of 3 pool sizes failed: M = inf"):
        raventos2023.run("tiny", work, pools=pools)
    else:
      raventos2023.run("tiny", work, pools=pools)
    scored = regression.raventos2023(work, "tiny")
    verdicts[name] = [(c["claim"], c["status"], c["ours"]) for c in scored["claims"]]
    notes = [n for n in scored["notes"] if n.startswith("M = inf")]
    assert notes == (["M = inf (a fresh task per prompt; no claim): model error 0.550, Ridge "
                      "0.500; model to Ridge 0.040 (90% half-width 0.020)"] if name == "with"
                     else [])
  assert verdicts["with"] == verdicts["without"] == verdicts["failed"]
  assert {s for _, s, _ in verdicts["with"]} != {"NOT_SHOWN"}
  res = json.loads((tmp_path / "failed" / "raventos2023.json").read_text())
  res["failed"].append({"M": 16, "error": "control"})
  (tmp_path / "failed" / "raventos2023.json").write_text(json.dumps(res))
  assert {c["status"] for c in regression.raventos2023(tmp_path / "failed", "tiny")["claims"]} \
      == {"NOT_SHOWN"}
