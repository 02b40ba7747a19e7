"""Sweeps: results table, failures recorded, resumable after a kill."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import pytest

from research import sweep
from research.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def _config():
  from configs import icl_regression
  c = icl_regression.get_config("tiny")
  c.mesh.data = 1
  c.train.compile_cache_dir = ""
  c.train.num_steps = 20
  return c


def fake_training(monkeypatch) -> list[str]:
  """train.train_and_evaluate replaced by one that writes what the rerun's "done" rule looks
  for (the config, a summary at its num_steps) and trains nothing; the names of the runs it
  was given, in order."""
  from research import train, workdir
  trained = []

  def fake_train(cfg, d, **kw):
    trained.append(Path(d).name)
    Path(d).mkdir(parents=True)
    (Path(d) / "config.json").write_text(workdir.config_json(cfg))
    summary = {"final_step": cfg.train.num_steps}
    (Path(d) / "summary.json").write_text(json.dumps(summary))
    return summary
  monkeypatch.setattr(train, "train_and_evaluate", fake_train)
  return trained


def test_product_and_zip():
  assert sweep.product(a=[1, 2], b=[3, 4]) == [{"a": 1, "b": 3}, {"a": 1, "b": 4},
                                                 {"a": 2, "b": 3}, {"a": 2, "b": 4}]
  assert sweep.zipped(a=[1, 2], b=[3, 4]) == [{"a": 1, "b": 3}, {"a": 2, "b": 4}]


def test_a_point_given_twice_is_refused_before_anything_is_written(tmp_path):
  """The same overrides twice (in any key order) would train one run twice and count it twice
  in a fit: refused naming both indices, no directory made."""
  wd = tmp_path / "sweep"
  points = [{"seed": 0, "model.width": 32}, {"seed": 1, "model.width": 32},
            {"model.width": 32, "seed": 0}]
  with pytest.raises(InputError, match=r"the sweep gives point 0 and point 2 the same overrides"):
    sweep.run_sweep(_config(), points, wd, devices=jax.devices()[:1])
  assert not wd.exists()
  from research import cli
  cli.refuse_repeated_points(points[:2], "the sweep")  # the control: distinct points pass


def test_unknown_override_names_the_key():
  with pytest.raises(InputError, match="model.widht"):
    sweep.apply_overrides(_config(), {"model.widht": 3})


def test_failed_run_is_recorded_and_finished_runs_are_skipped(tmp_path):
  overrides = [{"optim.learning_rate": 1e-3}, {"optim.learning_rate": 1e15}]
  res = sweep.run_sweep(_config(), overrides, tmp_path, ensemble="off",
                        devices=jax.devices()[:1])
  rows = {r["run"]: r for r in res.rows.values()}
  statuses = sorted(r["status"] for r in rows.values())
  assert statuses == ["done", "failed"]
  failed = next(r for r in rows.values() if r["status"] == "failed")
  assert "non-finite loss" in failed["error"]
  # It diverged before its first save: the row promised a checkpoint in an empty directory.
  assert "no checkpoint was saved" in failed["error"] and "is kept" not in failed["error"]
  done = next(r for r in rows.values() if r["status"] == "done")
  assert done["num_params"] > 0 and done["tokens"] > 0 and done["train_flops"] > 0
  assert Path(done["probes"]["icl_regression"]).exists()
  # Rerun: the finished row is untouched (same wall time), the failed one is retried.
  before = done["wall_s"]
  res2 = sweep.run_sweep(_config(), overrides, tmp_path, ensemble="off",
                         devices=jax.devices()[:1])
  assert res2.rows[done["run"]]["wall_s"] == before


def test_kill_and_rerun_loses_no_row(tmp_path):
  # Three seeds of the tiny model, one by one: the same shapes, so runs after the first share
  # its compiled programs through the persistent cache (before: the 4-size `scale` sweep
  # compiled 4 models twice, 96 s of the default suite).
  config = tmp_path / "seeds_config.py"
  config.write_text("from configs.icl_regression import get_config\n\n\n"
                    "def get_sweep(name):\n  return [{'seed': s} for s in range(3)]\n")
  cmd = [sys.executable, "-m", "research.sweep", f"--config={config}:tiny",
         "--sweep=seeds", f"--workdir={tmp_path / 'sweep'}", "--ensemble=off",
         "--config.train.num_steps=20", f"--config.train.compile_cache_dir={tmp_path}/cache"]
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  results = tmp_path / "sweep" / "results.jsonl"
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None:
    if results.exists() and results.read_text().count("\n") >= 1:
      break
    time.sleep(0.05)
  assert proc.poll() is None, "sweep finished before the kill; lengthen it"
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  first = [json.loads(l) for l in results.read_text().splitlines()]
  assert len(first) >= 1 and all(r["status"] == "done" for r in first)
  subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
  final = {json.loads(l)["run"]: json.loads(l) for l in results.read_text().splitlines()}
  assert len(final) == 3 and all(r["status"] == "done" for r in final.values())
  for r in first:  # finished runs were not redone
    assert final[r["run"]]["wall_s"] == r["wall_s"]
  for r in final.values():  # one figure whichever way a row was made: the run's training seconds
    summary = json.loads((Path(r["dir"]) / "summary.json").read_text())
    assert r["wall_s"] == summary["train_wall_s"], r["run"]
    # The compute axis of scaling plots: the run's own FLOPs per token times its tokens.
    assert r["train_flops"] == summary["train_flops_per_token"] * summary["tokens_seen"] > 0


def test_override_of_the_wrong_type_names_the_key():
  with pytest.raises(InputError, match="model.num_layers.*holds an int"):
    sweep.apply_overrides(_config(), {"model.num_layers": "x"})
  with pytest.raises(InputError, match="optim.learning_rate.x"):
    sweep.apply_overrides(_config(), {"optim.learning_rate.x": 1})


def test_rerunning_a_finished_run_keeps_its_final_metrics(tmp_path):
  """A sweep killed after training but before its row was written reruns the run: the
  restored run trains no step, and its final metrics come from its own logs."""
  from research import train
  first = train.train_and_evaluate(_config(), str(tmp_path), devices=jax.devices()[:1])
  again = train.train_and_evaluate(_config(), str(tmp_path), devices=jax.devices()[:1])
  assert again["final_loss"] == first["final_loss"]
  assert again["final_steps_per_s"] == first["final_steps_per_s"]


def test_a_second_sweep_in_the_same_directory_is_refused(tmp_path):
  from research import workdir_lock
  held = workdir_lock.Lock(tmp_path, "a sweep")
  held.acquire()
  try:
    with pytest.raises(ValueError, match=r"is in use by a sweep of PID \d+"):
      sweep.run_sweep(_config(), [{"seed": 0}], tmp_path, devices=jax.devices()[:1])
  finally:
    held.release()
  with workdir_lock.Lock(tmp_path, "a sweep"):  # released: the next sweep may take it
    pass


def test_another_sweep_after_one_in_the_same_directory_is_refused(tmp_path, monkeypatch):
  """`--sweep=scale` after `--sweep=seeds` in one DIR trained both into one results table
  (audit 40, exit 0): the DIR keeps its sweep's identity (sweep.json) and refuses another,
  touching nothing; the same sweep reruns, and a DIR of an older version takes the next."""
  trained = fake_training(monkeypatch)
  seeds = {"config": "icl_regression.py", "sweep": "seeds"}
  run = lambda points, identity, d=tmp_path / "s": sweep.run_sweep(
      _config(), points, d, ensemble="off", devices=jax.devices()[:1], identity=identity)
  run([{"seed": 0}], seeds)
  before = sorted(p.name for p in (tmp_path / "s").iterdir())
  for other in ({**seeds, "sweep": "scale"}, {**seeds, "config": "lm.py"}):
    # The fix read "rerun --config=icl_regression.py --sweep=seeds", a file name that
    # research.sweep then refused (no such file): now it says where the path goes.
    with pytest.raises(InputError, match=r"holds another sweep \(config=icl_regression.py "
                       r"sweep=seeds\), and one directory keeps one sweep's results; pass "
                       r"another --workdir, or continue that sweep with "
                       r"--config=PATH/icl_regression.py\[:PRESET\] --sweep=seeds$"):
      run([{"model.width": 16}], other)
  assert sorted(p.name for p in (tmp_path / "s").iterdir()) == before and len(trained) == 1
  run([{"seed": 0}, {"seed": 1}], seeds)  # control: the same sweep, extended
  assert len(trained) == 2
  old = tmp_path / "old"  # no sweep.json: an older version's DIR, claimed by its own sweep
  run([{"seed": 0}], None, old)
  with pytest.raises(InputError, match=r"holds runs that are no point of --sweep=scale "
                     r"\(000_seed=0: another sweep's"):
    run([{"model.width": 16}], {**seeds, "sweep": "scale"}, old)
  assert not (old / "sweep.json").exists()
  run([{"seed": 0}, {"seed": 1}], seeds, old)
  assert json.loads((old / "sweep.json").read_text())["sweep"] == "seeds"


def test_ensemble_on_in_a_busy_workdir_is_refused_as_busy_naming_one_fix(tmp_path):
  """--ensemble=on was checked before the lock: a sweep whose workdir another sweep holds was
  told its points cannot ensemble, not that the workdir is busy; and that line named two
  fixes ("...; run it on its own; pass --ensemble=auto ...")."""
  from research import workdir_lock
  points = [{"task.pool_size": 4}, {"task.pool_size": 0}]
  held = workdir_lock.Lock(tmp_path, "a sweep")
  held.acquire()
  try:
    with pytest.raises(workdir_lock.WorkdirBusyError, match=r"is in use by a sweep of PID \d+"):
      sweep.run_sweep(_config(), points, tmp_path, ensemble="on", devices=jax.devices()[:1])
  finally:
    held.release()
  fresh = tmp_path / "new" / "sweep"
  with pytest.raises(InputError) as e:
    sweep.run_sweep(_config(), points, fresh, ensemble="on", devices=jax.devices()[:1])
  assert str(e.value) == ("--ensemble=on but task.pool_size=0 (a fresh task per prompt) cannot "
                          "share a program with finite pools; pass --ensemble=auto to run these "
                          "points one by one")
  assert not fresh.exists()  # the refusal leaves no directory behind, as before the lock


def test_a_directory_holding_another_configs_runs_is_refused(tmp_path):
  """Runs are found again by name (the sweep's own overrides only): a rerun with another
  base config in the same directory must not reuse or resume them."""
  sweep.run_sweep(_config(), [{"seed": 0}], tmp_path, ensemble="off", devices=jax.devices()[:1])
  other = _config()
  other.optim.learning_rate = 3e-3
  with pytest.raises(ValueError, match="optim.learning_rate: 0.001 -> 0.003"):
    sweep.run_sweep(other, [{"seed": 0}], tmp_path, ensemble="off", devices=jax.devices()[:1])
  cadence = _config()
  cadence.train.log_every = 10  # bookkeeping only: the same run, reused
  rows = sweep.run_sweep(cadence, [{"seed": 0}], tmp_path, ensemble="off",
                         devices=jax.devices()[:1]).rows
  assert [r["status"] for r in rows.values()] == ["done"]


def _rerun_recording_trained(overrides, workdir, monkeypatch):
  """The sweep rerun, with the names of the runs it trained (not took from their summary)."""
  from research import train
  trained, real = [], train.train_and_evaluate
  monkeypatch.setattr(train, "train_and_evaluate",
                      lambda cfg, d, **kw: trained.append(Path(d).name) or real(cfg, d, **kw))
  rows = sweep.run_sweep(_config(), overrides, workdir, ensemble="off",
                         devices=jax.devices()[:1]).rows
  return trained, rows


def test_a_finished_run_without_its_row_is_recorded_not_retrained(tmp_path, monkeypatch):
  """A sweep killed between a run's summary.json and its results row: the rerun takes the
  row from the run's summary (workdir.finished_summary, the one "finished" rule) and trains
  nothing; a run whose summary is missing is trained (the control)."""
  overrides = [{"seed": 0}, {"seed": 1}]
  sweep.run_sweep(_config(), overrides, tmp_path, ensemble="off", devices=jax.devices()[:1])
  first = {r["run"]: r for r in map(json.loads, (tmp_path / "results.jsonl").read_text().splitlines())}
  (tmp_path / "results.jsonl").unlink()
  names = sorted(first)
  (tmp_path / "runs" / names[1] / "summary.json").unlink()  # the control: not finished
  trained, rows = _rerun_recording_trained(overrides, tmp_path, monkeypatch)
  assert trained == [names[1]]
  assert rows[names[0]]["status"] == "done"
  assert rows[names[0]]["final"] == first[names[0]]["final"]


def test_a_run_deleted_after_its_row_is_trained_again_and_results_names_it(tmp_path, monkeypatch,
                                                                              capsys):
  """A done row whose run directory was deleted: the rerun reported everything done and never
  retrained it, and research.results showed one run fewer without a word (audit 39)."""
  import shutil
  from research import results, results_records
  from research.errors import RunsFailedError
  overrides = [{"seed": 0}, {"seed": 1}]
  sweep.run_sweep(_config(), overrides, tmp_path, ensemble="off", devices=jax.devices()[:1])
  names = sorted(p.name for p in (tmp_path / "runs").iterdir())
  shutil.rmtree(tmp_path / "runs" / names[1])
  with pytest.raises(RunsFailedError, match="1 run could not be read .*mend each as its line says"):
    results.main([str(tmp_path)])
  assert f"not in the table: {tmp_path / 'runs' / names[1]}: recorded in" in capsys.readouterr().err
  trained, rows = _rerun_recording_trained(overrides, tmp_path, monkeypatch)
  assert trained == [names[1]] and [rows[n]["status"] for n in names] == ["done", "done"]
  assert len(results_records.records([tmp_path])) == 2  # control: nothing missing, nothing named
  rows[names[1]]["status"] = "failed"  # a point refused at its start never had a directory:
  shutil.rmtree(tmp_path / "runs" / names[1])  # its row says why, nothing named "gone"; it is
  (tmp_path / "results.jsonl").write_text(  # a failed row of the table (it was left out)
      "".join(json.dumps(r) + "\n" for r in rows.values()))
  assert [r["state"] for r in results_records.records([tmp_path])] == ["finished", "failed"]


def test_points_added_to_a_finished_sweep_train_alone_and_the_others_stay(tmp_path,
                                                                         monkeypatch):
  """A width inserted into a finished sweep's list shifted the index in the names of the points
  after it: they trained again under their new names (002_width=32 beside 001_width=32) and
  the table kept both rows. Now only the new point trains; the finished runs are reused as an
  unchanged rerun reuses them, their files untouched, and a changed shared setting is still
  refused, naming the field, for a run a point kept under its old name too."""
  from research import train
  trained, real = [], train.train_and_evaluate
  monkeypatch.setattr(train, "train_and_evaluate",
                      lambda cfg, d, **kw: trained.append(Path(d).name) or real(cfg, d, **kw))
  run = lambda widths, config=None: sweep.run_sweep(
      config or _config(), [{"model.width": w} for w in widths], tmp_path, ensemble="off",
      devices=jax.devices()[:1], identity={"config": "icl_regression.py", "sweep": "w"})
  run([16, 32])
  files = lambda: {p: (p.stat().st_mtime_ns, p.read_bytes())
                   for p in (tmp_path / "runs").rglob("*") if p.is_file()}
  before, rows = files(), sweep.Results(tmp_path / "results.jsonl").rows
  results = run([16, 24, 32])
  assert trained == ["000_width=16", "001_width=32", "001_width=24"]
  assert {p: v for p, v in files().items() if p in before} == before
  names = results.names([{"model.width": w} for w in (16, 24, 32)])
  assert names == ["000_width=16", "001_width=24", "001_width=32"]
  assert sorted(results.rows) == sorted(names)  # every point once, no stale row
  assert all(results.rows[n] == rows[n] for n in rows)
  on_disk = [json.loads(l)["run"] for l in (tmp_path / "results.jsonl").read_text().splitlines()]
  assert sorted(on_disk) == sorted(names)
  run([16, 24, 32])  # stable: the rerun of the extended sweep trains nothing
  assert len(trained) == 3
  # A point removed from the list: its run stays (results.py tables it) and is named.
  from research import sweep_rundirs
  said = []
  monkeypatch.setattr(sweep_rundirs.logging, "warning", lambda f, *a: said.append(f % a))
  run([16, 32])
  assert len(trained) == 3 and len(said) == 1, said
  assert "1 run directory in " in said[0] and "is no point of this sweep (001_width=24)" in said[0]
  said.clear()
  run([16, 24, 32])  # control: every run a point
  assert said == []
  other = _config()
  other.optim.learning_rate = 3e-3
  with pytest.raises(InputError, match=r"runs/000_width=16 holds a finished run of another "
                     r"config \(optim.learning_rate: 0.001 -> 0.003"):
    run([12, 16], other)  # 16 keeps 000_width=16 (its own name is 001_width=16)
  assert len(trained) == 3 and not (tmp_path / "runs" / "000_width=12").exists()


def test_a_point_refused_as_given_ends_the_sweep_with_exit_2_not_rerun(tmp_path, monkeypatch):
  """The pod ladder swept on a CPU host: every point compiled, was refused by the host-memory
  check (InputError) and the sweep ended "7 of 7 runs failed ... rerun the command to retry
  them" (exit 6), which can never help. A refusal is recorded as such and the sweep ends
  with the point's own line (exit 2); the other points still train. Control: an ordinary
  failure stays exit 6, a rerun retries it."""
  from research import train
  from research.errors import RunsFailedError
  def fake_train(cfg, d, **kw):
    if cfg.seed == 1:
      raise InputError("the train step needs 2,140 GB of this host's memory; use a smaller size")
    if cfg.seed == 2:
      raise RuntimeError("a fault")
    Path(d).mkdir(parents=True)
    (Path(d) / "summary.json").write_text("{}")
    return {"final_step": 1}
  monkeypatch.setattr(train, "train_and_evaluate", fake_train)
  points = [{"seed": 0}, {"seed": 1}, {"seed": 2}]
  res = sweep.run_sweep(_config(), points, tmp_path, ensemble="off", devices=jax.devices()[:1])
  names = res.names(points)
  assert [res.rows[n]["status"] for n in names] == ["done", "failed", "failed"]
  assert [res.rows[n]["refused"] for n in names[1:]] == [True, False]
  with pytest.raises(InputError, match=r"^1 of 3 runs were refused as given \(001_seed=1: the "
                     r"train step needs 2,140 GB of this host's memory; use a smaller size\); "
                     r"1 more failed \(002_seed=2\), which a rerun retries; errors in "):
    sweep.check_finished(res, names, tmp_path)
  with pytest.raises(RunsFailedError, match="1 of 2 runs failed: 002_seed=2 .*rerun the command"):
    sweep.check_finished(res, [names[0], names[2]], tmp_path)
  sweep.check_finished(res, names[:1], tmp_path)  # all done: no exception


def test_a_long_run_name_ends_at_an_override_with_a_hash_not_mid_word():
  """The pod ladder's 11 overrides were cut at 120 characters mid-word ('...,topolog');
  a short name is as it always was."""
  from configs import lm_ladder
  points = lm_ladder.get_sweep("ladder@v5p:4x4x4")
  names = [sweep.run_name(i, p) for i, p in enumerate(points)]
  assert all(len(n) <= 120 for n in names) and len(set(names)) == len(names)
  assert names[0].startswith("000_num_layers=6,width=128,") and ",and_2_more_" in names[0]
  assert names[0].split(",")[-2] == "remat=none"  # whole overrides, then the count and hash
  other = dict(points[0], **{"train.grad_accum_steps": 2})  # differs in a left-out override
  assert sweep.run_name(0, other) != names[0]
  assert sweep.run_name(3, {"model.width": 64, "seed": 1}) == "003_width=64,seed=1"
  # A long name's hash is pinned: another serialisation of a point (config_files.point_key)
  # would rename every long-named run, and a sweep's rerun would train them all again.
  long = {**{f"model.f{i}": "x" * 9 for i in range(14)}, "mesh.shape": (1, 2)}
  assert sweep.run_name(7, long) == ("007_" + ",".join(f"f{i}=xxxxxxxxx" for i in range(7))
                                     + ",and_8_more_7bc4c808")


def test_a_refused_ensemble_names_the_way_out(tmp_path, monkeypatch):
  """An ensemble refused as a whole (its stacked step too big for the host) marked every
  point refused as given, though each alone may fit; the line now says --ensemble=off."""
  from research import ensemble
  def refuse(*a, **kw):
    raise InputError("an ensemble of 3 needs 40 GB of this host's memory and 20 GB are available")
  monkeypatch.setattr(ensemble, "train_ensemble", refuse)
  points = [{"seed": 0}, {"seed": 1}, {"seed": 2}]
  res = sweep.run_sweep(_config(), points, tmp_path, ensemble="on", devices=jax.devices()[:1])
  names = res.names(points)
  with pytest.raises(InputError, match=r"3 of 3 runs were refused as given \(000_seed=0: an "
                     r"ensemble of 3 needs .*; the points alone may fit: --ensemble=off trains "
                     r"them one at a time\)"):
    sweep.check_finished(res, names, tmp_path)


def test_a_run_name_of_exactly_120_characters_is_kept_whole():
  from research import sweep_results
  whole = sweep_results.run_name(0, {"model.a": "x" * 114})
  assert whole == "000_a=" + "x" * 114 and len(whole) == 120
  assert len(sweep_results.run_name(0, {"model.a": "x" * 115})) < 120  # one more: shortened
