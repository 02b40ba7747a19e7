"""A vmapped ensemble trains each member as its solo run would; bad members freeze."""
import json
from pathlib import Path

import jax
import numpy as np
import pytest

from research import ensemble, ensemble_members
from research.checkpoint import Checkpointer, abstract_like
from research.experiment import Experiment


def _config():
  from configs import icl_regression
  c = icl_regression.get_config("tiny")
  c.optim.name = "adamw"
  c.mesh.data = 1
  c.train.compile_cache_dir = ""
  c.train.num_steps, c.train.steps_per_call, c.train.log_every = 20, 10, 10
  c.train.checkpoint_every = 10
  return c


MEMBERS = [{"seed": 0}, {"seed": 1, "optim.learning_rate": 3e-3},
           {"seed": 2, "optim.weight_decay": 0.1}, {"seed": 3, "optim.learning_rate": 1e12}]


def test_members_match_solo_runs_and_bad_member_freezes(tmp_path, caplog):
  c = _config()
  dirs = [tmp_path / f"m{i}" for i in range(len(MEMBERS))]
  with caplog.at_level("INFO"):
    summaries = ensemble.train_ensemble(c, MEMBERS, tmp_path / "ens", dirs,
                                        devices=jax.devices()[:1])
  # The progress line's loss is the mean of what the live members logged for that step (the
  # last step's mean alone, 5.175, was printed beside logged 4.73-5.29, mean 5.014).
  logged20 = [json.loads(l)["loss"] for d in dirs[:3]
              for l in (d / "metrics.jsonl").read_text().splitlines() if json.loads(l)["step"] == 20]
  assert len(logged20) == 3
  assert f"ensemble of 4, its live members' mean: step 20/20 | loss {np.mean(logged20):.4g}" in caplog.text
  assert [s["frozen"] for s in summaries] == [False, False, False, True]
  assert not np.isfinite(summaries[3]["frozen_loss"])
  # On disk it is JSON's null, not NaN (which strict JSON readers refuse); the error says it.
  def refuse(name):
    raise ValueError(f"{name} in summary.json")
  on_disk = json.loads((dirs[3] / "summary.json").read_text(), parse_constant=refuse)
  assert on_disk["frozen_loss"] is None and str(summaries[3]["frozen_loss"]) in on_disk["error"]
  # The frozen member reports the step its solo run reports (the bad update's count) ...
  solo = Experiment(ensemble._member_config(c, MEMBERS[3]), jax.devices()[:1])
  _, m = solo.multi_step_fn(20)(solo.init_state())
  bad = 1 + int(np.argmax(~np.isfinite(np.asarray(m["loss"]))))
  assert summaries[3]["frozen_at_step"] == bad
  # Its summary counts the updates done before the bad one, as the solo run that stops there.
  tokens = c.train.batch_size * solo.task.tokens_per_example
  assert (summaries[3]["final_step"], summaries[3]["tokens_seen"]) == (bad - 1, (bad - 1) * tokens)
  assert "non-finite loss" in summaries[3]["error"]
  # ... and, like the solo run, logs nothing from the window it froze in, saves no checkpoint.
  logged3 = dirs[3] / "metrics.jsonl"
  rows3 = logged3.read_text().splitlines() if logged3.exists() else []
  assert all(json.loads(r)["step"] < bad for r in rows3)
  assert not (dirs[3] / "checkpoints").exists()
  for i, member in enumerate(MEMBERS[:3]):
    solo_cfg = ensemble._member_config(c, member)
    exp = Experiment(solo_cfg, jax.devices()[:1])
    state, m = exp.multi_step_fn(20)(exp.init_state())
    logged = [json.loads(l) for l in (dirs[i] / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [10, 20]
    np.testing.assert_allclose(logged[-1]["loss"], np.mean(m["loss"][-10:]), rtol=1e-4)
    assert summaries[i]["final_loss"] == logged[-1]["loss"] and "error" not in summaries[i]
    # A member's own counts, as its solo run's summary: its tokens (not the ensemble's), its
    # parameters without the embeddings.
    assert summaries[i]["tokens_seen"] == 20 * c.train.batch_size * exp.task.tokens_per_example
    assert summaries[i]["num_non_embedding_params"] == exp.num_params - exp.num_embedding_params
    assert exp.num_embedding_params > 0
    # The ensemble's throughput counts every member's examples and tokens per step.
    perf = [json.loads(l) for l in (dirs[i] / "perf.jsonl").read_text().splitlines()]
    assert perf
    for r in perf:
      sps = r["ensemble_steps_per_s"]
      assert r["ensemble_examples_per_s"] == pytest.approx(sps * c.train.batch_size * 4)
      assert r["ensemble_tokens_per_s"] == pytest.approx(
          sps * c.train.batch_size * exp.task.tokens_per_example * 4)
    assert (dirs[i] / "probes" / "icl_regression.json").exists()
    # The member's own checkpoint restores as its solo run's state would.
    restored, _, at = Checkpointer(dirs[i] / "checkpoints", max_to_keep=1).restore(
        abstract_like(exp.abstract_state, exp.state_sharding))
    assert at == 20
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-4),
                 restored.params, state.params)


def test_can_ensemble_rejects_shape_changes():
  c = _config()
  assert ensemble.can_ensemble(c, [{"seed": 0}, {"optim.learning_rate": 1e-2}])[0]
  ok, why = ensemble.can_ensemble(c, [{"model.width": 64}])
  assert not ok and "model.width" in why



def test_members_start_from_the_base_seed_and_their_own_values():
  """A member that sets no seed trains at the config's seed (what its config.json says), not
  seed 0; each member's peak learning rate and weight decay are in its own optimiser state,
  for sgd as for adamw (plain adam has no decay to set)."""
  from research import optim
  c = _config()
  c.seed, c.optim.name, c.optim.weight_decay = 3, "sgd", 0.01
  members = [{"optim.learning_rate": 1e-3}, {"optim.weight_decay": 0.1}, {"seed": 5}]
  ens = ensemble.Ensemble(c, members, jax.devices()[:1])
  np.testing.assert_array_equal(ens.seeds, [3, 3, 5])
  assert [ensemble._member_config(c, m).seed for m in members] == [3, 3, 5]
  hp = optim.get_hyperparams(ens.init_state()["state"].opt_state)
  lr = c.optim.learning_rate
  np.testing.assert_allclose(hp["peak_lr"], [1e-3, lr, lr], rtol=1e-6)
  np.testing.assert_allclose(hp["weight_decay"], [0.01, 0.1, 0.01], rtol=1e-6)

def test_pool_size_members_match_solo_runs(tmp_path):
  """Raventós's M sweep as one program: member M trains as task.pool_size=M alone."""
  c = _config()
  c.optim.name = "adam"
  c.task.function, c.task.noise_std = "noisy_linear", 0.5
  members = [{"task.pool_size": 2}, {"task.pool_size": 16}, {"task.pool_size": 128}]
  assert ensemble.can_ensemble(c, members)[0]
  dirs = [tmp_path / f"m{i}" for i in range(len(members))]
  ensemble.train_ensemble(c, members, tmp_path / "ens", dirs, devices=jax.devices()[:1])
  for i, member in enumerate(members):
    solo = Experiment(ensemble._member_config(c, member), jax.devices()[:1])
    assert solo.task.pool_ws_MxD.shape[0] == member["task.pool_size"]
    _, m = solo.multi_step_fn(20)(solo.init_state())
    logged = [json.loads(l) for l in (dirs[i] / "metrics.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(logged[-1]["loss"], np.mean(m["loss"][-10:]), rtol=1e-4)
    pool_probe = json.loads((dirs[i] / "probes" / "icl_regression_pool.json").read_text())
    assert "dmmse" in pool_probe["curves"]
  # dMMSE on a member's fresh-task probe uses that member's pool, so it differs by M.
  dmmse = [json.loads((d / "probes" / "icl_regression.json").read_text())["curves"]["dmmse"]
           ["mean"][-1] for d in dirs]
  assert len(set(np.round(dmmse, 6))) == 3


def test_can_ensemble_pool_sizes():
  c = _config()
  ok, why = ensemble.can_ensemble(c, [{"task.pool_size": 4}, {"task.pool_size": 0}])
  assert not ok and "pool_size=0" in why
  ok, why = ensemble.can_ensemble(c, [{"task.pool_size": 4, "seed": 1}, {"task.pool_size": 8}])
  assert not ok and "seed" in why


def test_member_view_has_its_own_pool_when_others_set_one():
  c = _config()
  c.task.pool_size = 16
  members = [{"task.pool_size": 32}, {"optim.learning_rate": 2e-3}]
  ens = ensemble.Ensemble(c, members, jax.devices()[:1])
  assert ens.exp.task.pool_ws_MxD.shape[0] == 32  # the program holds the largest pool
  np.testing.assert_array_equal(ens.task_values["pool_size"], [32, 16])
  views = [ensemble._member_experiment(ens, m) for m in members]
  assert [v.task.pool_ws_MxD.shape[0] for v in views] == [32, 16]
  assert [v.config.task.pool_size for v in views] == [32, 16]
  np.testing.assert_array_equal(views[1].task.pool_ws_MxD, views[0].task.pool_ws_MxD[:16])


def test_seed_ensembles_need_a_seed_free_task_build():
  """A task built from the seed (class means, Markov tables, splits) cannot be shared by
  members of different seeds; regression without a pool and LM data can."""
  c = _config()
  assert ensemble.can_ensemble(c, [{"seed": 0}, {"seed": 1}])[0]
  from configs import arithmetic, bursty_classification, grokking, induction
  assert ensemble.can_ensemble(arithmetic.get_config("tiny"), [{"seed": 0}, {"seed": 1}])[0]
  for cfg in (bursty_classification.get_config("tiny"), induction.get_config("tiny"),
              grokking.get_config("tiny")):
    ok, why = ensemble.can_ensemble(cfg, [{"seed": 0}, {"seed": 1}])
    assert not ok and "seed" in why and ";" not in why  # the reason alone: the caller's fix
    assert ensemble.can_ensemble(cfg, [{"optim.learning_rate": 1e-3},
                                       {"optim.learning_rate": 2e-3}])[0]


def test_profile_of_the_ensemble_step_splits_op_time_by_kind(capsys):
  from experiments import profile_step
  out = profile_step.profile_ensemble(2, steps=10, steps_per_call=10)
  for r in (out["solo"], out["ensemble"]):
    assert r["kinds_s"]["matmul"] > 0 and r["step_s"] > 0 and r["matmul_flops_per_s"] > 0
  assert "member-steps/s" in capsys.readouterr().out


def test_benchmark_sweep_child_leaves_nothing_in_tmp(monkeypatch):
  """benchmark --cases ensemble starts two such children; each left ~20 MB of runs and
  compilation cache under /tmp/bench_ensemble_* and /tmp/bench_cache_*."""
  import types
  from experiments import bench_ensemble
  from research import sweep
  seen = []

  def fake_sweep(config, points, workdir, ensemble, devices):
    workdir.mkdir(parents=True)
    (workdir / "run.json").write_text("{}")
    seen.extend([Path(workdir), Path(config.train.compile_cache_dir)])
    return types.SimpleNamespace(rows={p["seed"]: {"status": "done"} for p in points})

  monkeypatch.setattr(sweep, "run_sweep", fake_sweep)
  bench_ensemble.child_sweep("off", 2)
  assert seen and not any(p.exists() for p in seen)
  assert seen[1].is_relative_to(seen[0].parent)  # the cache lived in the removed folder


def test_members_record_the_data_they_trained_on(tmp_path):
  """Review 40: ensemble members wrote no vocabulary.json, so a member's corpus could change
  under its resume or research.probe_checkpoints unnoticed; each records it as a solo run."""
  from configs import lm
  from research import errors, workdir
  corpus = tmp_path / "corpus.txt"
  corpus.write_text("abcdefgh " * 400)
  c = lm.get_config("tiny")
  c.mesh.data, c.train.compile_cache_dir = 1, ""
  c.train.num_steps, c.train.steps_per_call, c.train.log_every, c.train.checkpoint_every = 20, 10, 10, 10
  c.task.source, c.task.path, c.task.tokenizer = "file", str(corpus), "char"
  dirs = [tmp_path / "m0", tmp_path / "m1"]
  ensemble.train_ensemble(c, [{"seed": 0}, {"seed": 1}], tmp_path / "ens", dirs,
                          devices=jax.devices()[:1])
  for d in dirs:
    assert "sha256" in json.loads((d / workdir.VOCABULARY).read_text())["data"]
  corpus.write_text("hgfedcba " * 400)  # the same characters and bytes, other text
  c.train.num_steps = 30
  with pytest.raises(errors.InputError, match="is not the data this run trained on"):
    ensemble.train_ensemble(c, [{"seed": 0}, {"seed": 1}], tmp_path / "ens", dirs,
                            devices=jax.devices()[:1])


def test_a_sigterm_during_member_probes_stops_them_at_once(tmp_path, monkeypatch, caplog):
  """SIGTERM while member 0 probed went unnoticed: every member was probed and the sweep
  ended 'done', exit 0, past the scheduler's grace period. Now Preempted at once, as a solo
  run's probes; member 0 writes no summary (a rerun probes it) and member 1 is not probed.
  Control: the same ensemble without the signal probes both."""
  import os
  import signal
  import time
  from research import preemption
  probed = []

  def slow_probes(view, state, d):
    probed.append(Path(d).name)
    if os.environ.get("SEND_TERM"):
      os.kill(os.getpid(), signal.SIGTERM)
      time.sleep(5)  # a long probe: the signal must cut it, not wait for it
      probed.append("finished anyway")
    return {}
  monkeypatch.setattr(ensemble_members, "run_probes", slow_probes)
  c, members = _config(), [{"seed": 0}, {"seed": 1}]
  dirs = [tmp_path / "m0", tmp_path / "m1"]
  monkeypatch.setenv("SEND_TERM", "1")
  with pytest.raises(preemption.Preempted, match="while probing ensemble member 0 at step 20"):
    ensemble.train_ensemble(c, members, tmp_path / "ens", dirs, devices=jax.devices()[:1])
  assert probed == ["m0"] and not (dirs[0] / "summary.json").exists()
  assert "resumed" not in caplog.text  # control: the first run started fresh
  monkeypatch.delenv("SEND_TERM")
  with caplog.at_level("INFO"):
    ensemble.train_ensemble(c, members, tmp_path / "ens", dirs, devices=jax.devices()[:1])
  assert probed == ["m0", "m0", "m1"] and all((d / "summary.json").exists() for d in dirs)
  # The rerun says where it resumed, as a solo run does (it logged nothing of it).
  assert "resumed ensemble of 2 from checkpoint at step 20" in caplog.text


def test_a_members_lost_metrics_file_is_warned_of_at_the_resume(tmp_path, caplog):
  """A member's metrics.jsonl deleted before a resume was begun again silently at the resume
  step (exit 0, 'done'), where a solo run warns. Controls: the other member, and one frozen in
  its first steps (it has no rows to lose), not warned. Each member's own checkpoint moves to
  the step the extended ensemble reached (predict and init_from read it)."""
  c = _config()
  members = [{"seed": 0}, {"seed": 1}, {"seed": 2, "optim.learning_rate": 1e12}]
  dirs = [tmp_path / "m0", tmp_path / "m1", tmp_path / "m2"]
  first = ensemble.train_ensemble(c, members, tmp_path / "ens", dirs, devices=jax.devices()[:1])
  assert first[2]["frozen"] and first[2]["frozen_at_step"] <= 10
  (dirs[0] / "metrics.jsonl").unlink()
  c.train.num_steps = 30
  with caplog.at_level("WARNING"):
    ensemble.train_ensemble(c, members, tmp_path / "ens", dirs, devices=jax.devices()[:1])
  assert f"{dirs[0] / 'metrics.jsonl'} holds no row up to step 20" in caplog.text
  assert str(dirs[1] / "metrics.jsonl") not in caplog.text
  assert str(dirs[2] / "metrics.jsonl") not in caplog.text
  for d in dirs[:2]:
    assert Checkpointer(d / "checkpoints", max_to_keep=1).all_steps() == [30]


def test_benchmark_ensemble_numbers_from_the_clock(monkeypatch, capsys):
  """ensemble_case's arithmetic on a fake clock: the ensemble sweep's process takes 10 s and the
  sequential one 30 s (x3.00 end to end, members x steps / wall member-steps per second); in
  steady state 100 steps (2 calls of 50 after a warm-up) take 1 s solo (10 ms a step) and 2 s
  for 4 members (20 ms an ensemble step): 200 vs 100 member-steps/s, x2.00; the solo MFU is
  its FLOPs a step (FLOPs/token x batch x tokens/example) over 10 ms."""
  import types
  from experiments import bench_ensemble, benchmark
  clock = [0.0]
  monkeypatch.setattr(bench_ensemble.time, "perf_counter", lambda: clock[0])

  def spawn(*args):
    clock[0] += 10.0 if "--mode=on" in args else 30.0
    return {"wall_s": 9.0 if "--mode=on" in args else 29.0}

  class Fake:
    def __init__(self, c, *rest):
      self.per_call = 0.5 if len(rest) == 1 else 1.0  # Experiment(c, dev); Ensemble(c, seeds, dev)
      self.built = types.SimpleNamespace(train_flops_per_token=1000.0)
      self.task = types.SimpleNamespace(tokens_per_example=10)

    def multi_step_fn(self, k):
      assert k == 50

      def step(carry):
        clock[0] += self.per_call
        return carry, 0.0
      return step

    def init_state(self):
      return 0
  monkeypatch.setattr(benchmark, "_spawn", spawn)
  monkeypatch.setattr(benchmark, "_mfu", lambda flops_per_s: flops_per_s / 1e9)
  monkeypatch.setattr(ensemble, "Ensemble", Fake)
  import research.experiment
  monkeypatch.setattr(research.experiment, "Experiment", Fake)
  c = bench_ensemble._ensemble_config()
  out = bench_ensemble.ensemble_case(4, steady_steps=100)
  e2e, steady = out["end_to_end"], out["steady_state"]
  steps = c.train.num_steps
  assert e2e["speedup"] == 3.0 and (e2e["ensemble_wall_s"], e2e["sequential_wall_s"]) == (10, 30)
  assert e2e["ensemble_member_steps_per_s"] == 4 * steps / 10
  assert e2e["sequential_member_steps_per_s"] == 4 * steps / 30
  assert (e2e["ensemble_sweep_s"], e2e["sequential_sweep_s"]) == (9.0, 29.0)
  assert steady["solo_step_ms"] == pytest.approx(10.0)
  assert steady["ensemble_step_ms"] == pytest.approx(20.0)
  assert steady["ensemble_member_steps_per_s"] == pytest.approx(200.0)
  assert steady["sequential_member_steps_per_s"] == pytest.approx(100.0)
  assert steady["speedup"] == pytest.approx(2.0)
  assert steady["solo_mfu"] == pytest.approx(1000.0 * c.train.batch_size * 10 / 0.01 / 1e9)
  assert "x3.00" in capsys.readouterr().out


def test_members_keep_their_log_spaced_checkpoints(tmp_path):
  """train.keep_log_spaced: each member keeps the kept steps' checkpoints as its solo run
  does (research.probe_checkpoints probes them), each its slice of the stacked state at that
  step; they were in the stacked checkpoints alone and a member had only its final one. A
  member frozen at a non-finite loss keeps those before its freeze. Control: without
  keep_log_spaced a member keeps its final checkpoint only."""
  c = _config()
  c.train.num_steps, c.train.checkpoint_every, c.train.keep_log_spaced = 40, 0, True
  members = [{"seed": 0}, {"seed": 1}, {"seed": 2, "optim.learning_rate": 1e12}]
  dirs = [tmp_path / f"m{i}" for i in range(3)]
  summaries = ensemble.train_ensemble(c, members, tmp_path / "ens", dirs,
                                      devices=jax.devices()[:1])
  assert summaries[2]["frozen"] and summaries[2]["frozen_at_step"] <= 10
  for d in dirs[:2]:
    assert Checkpointer(d / "checkpoints", max_to_keep=1, read_only=True).all_steps() == [10, 20, 40]
  assert not (dirs[2] / "checkpoints").exists()  # frozen before step 10: nothing good to keep
  exp = Experiment(ensemble._member_config(c, members[1]), jax.devices()[:1])
  abstract = abstract_like(jax.eval_shape(exp.init_state), exp.state_sharding)
  member = Checkpointer(dirs[1] / "checkpoints", max_to_keep=1, read_only=True)
  at20 = jax.tree.leaves(member.restore(abstract, 20)[0].params)
  at40 = jax.tree.leaves(member.restore(abstract, 40)[0].params)
  import orbax.checkpoint as ocp
  whole = ocp.StandardCheckpointer().restore(tmp_path / "ens" / "checkpoints" / "20" / "state")
  whole = whole["state"]["params"]
  assert all(np.array_equal(a, np.asarray(b)[1]) for a, b in zip(at20, jax.tree.leaves(whole)))
  assert not all(np.array_equal(a, b) for a, b in zip(at20, at40))
  c.train.keep_log_spaced = False
  plain = [tmp_path / f"p{i}" for i in range(2)]
  ensemble.train_ensemble(c, members[:2], tmp_path / "ens_plain", plain, devices=jax.devices()[:1])
  assert Checkpointer(plain[0] / "checkpoints", max_to_keep=1, read_only=True).all_steps() == [40]
