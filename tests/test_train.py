"""End-to-end trainer: outputs, probe format, dims override, non-finite loss."""
import json

import jax
import numpy as np
import pytest

from research import experiment, train


def _tiny(tmp_path, **overrides):
  from configs import icl_regression
  c = icl_regression.get_config("tiny")
  c.mesh.data = 1
  c.train.compile_cache_dir = ""
  for key, value in overrides.items():
    section, field = key.split(".")
    c[section][field] = value
  return c


def test_run_writes_outputs_and_probe_format(tmp_path):
  c = _tiny(tmp_path, **{"task.n_dims": 8, "task.n_points": 17})
  summary = train.train_and_evaluate(c, str(tmp_path), devices=jax.devices()[:1])
  assert summary["final_step"] == 40
  for name in ("config.json", "metrics.jsonl", "summary.json", "figures/icl_regression.png"):
    assert (tmp_path / name).exists(), name
  rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in rows] == [20, 40]
  assert {"loss", "grad_norm", "learning_rate", "normalised_error"} <= set(rows[-1])
  perf = [json.loads(l) for l in (tmp_path / "perf.jsonl").read_text().splitlines()]
  for key in ("steps_per_s", "examples_per_s", "tokens_per_s", "mfu", "eta_s"):
    assert key in perf[-1]
  probe = json.loads((tmp_path / "probes" / "icl_regression.json").read_text())
  assert probe["n_dims"] == 8 and probe["k"] == list(range(17)) and probe["step"] == 40
  assert {"model", "least_squares", "averaging", "nearest_neighbours"} <= set(probe["curves"])
  for curve in probe["curves"].values():
    mean, lo, hi = (np.array(curve[k]) for k in ("mean", "lo", "hi"))
    assert mean.shape == (17,) and np.all(lo <= mean + 1e-9) and np.all(mean <= hi + 1e-9)
  ls = np.array(probe["curves"]["least_squares"]["mean"])
  # Noiseless least squares: error (d-k)/d for k < d, 0 once k >= d (Garg's headline).
  np.testing.assert_allclose(ls[:8], (8 - np.arange(8)) / 8, atol=0.15)
  assert np.all(ls[9:] < 1e-3)


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
  c = _tiny(tmp_path)
  c.train.num_steps = 40
  train.train_and_evaluate(c, str(tmp_path), devices=jax.devices()[:1])  # good run to 40
  c.train.num_steps = 80
  c.optim.learning_rate = 1e30  # params ~1e30 -> loss overflows float32
  with pytest.raises(train.NonFiniteLossError, match=r"non-finite loss at step \d+ \(window") as e:
    train.train_and_evaluate(c, str(tmp_path), devices=jax.devices()[:1])
  steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert steps[-1] <= 60  # nothing after the blow-up was saved
  assert (f"the last good checkpoint, step {steps[-1]}, is kept in {tmp_path / 'checkpoints'};"
          in str(e.value)), e.value  # the one a rerun resumes from, named
  from research import checkpoint
  exp = experiment.Experiment(c, jax.devices()[:1])
  ck = checkpoint.Checkpointer(tmp_path / "checkpoints", max_to_keep=3)
  state, _, step = ck.restore(checkpoint.abstract_like(exp.abstract_state, exp.state_sharding))
  ck.close()
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state.params))
  # Recorded as failed, not left reading as unfinished (still going, or interrupted).
  from research import results_records
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["error"].startswith("NonFiniteLossError: non-finite loss at step")
  assert summary["nonfinite_at_step"] == summary["final_step"] + 1 > 40
  assert results_records.records([tmp_path])[0]["state"] == "failed"
  # A retry at a sound learning rate removes the failure when it starts, and finishes.
  c.optim.learning_rate = 1e-3
  assert train.train_and_evaluate(c, str(tmp_path), devices=jax.devices()[:1])["final_step"] == 80
  assert "error" not in json.loads((tmp_path / "summary.json").read_text())
  assert results_records.records([tmp_path])[0]["state"] == "finished"


def test_nonfinite_loss_before_the_first_save_promises_no_checkpoint(tmp_path):
  """`--config.optim.learning_rate=1e4` diverged in the first window and said 'The last good
  checkpoint is kept in .../checkpoints', an empty directory (a sweep's failed row too)."""
  c = _tiny(tmp_path)
  c.optim.learning_rate = 1e30
  with pytest.raises(train.NonFiniteLossError, match="no checkpoint was saved before it") as e:
    train.train_and_evaluate(c, str(tmp_path), devices=jax.devices()[:1])
  assert "is kept" not in str(e.value) and "lower the learning rate" in str(e.value)
  assert not any((tmp_path / "checkpoints").iterdir())
  assert "error" in json.loads((tmp_path / "summary.json").read_text())
  # It trained nothing to protect: another config starts afresh there, as before the failure
  # was recorded.
  c.optim.learning_rate, c.model.width = 1e-3, 2 * c.model.width
  train.train_and_evaluate(c, str(tmp_path), devices=jax.devices()[:1])
  assert json.loads((tmp_path / "config.json").read_text())["model"]["width"] == c.model.width


def test_a_start_refused_at_its_first_call_leaves_no_workdir(tmp_path):
  """A batch too large for the device (exit 2, RESOURCE_EXHAUSTED at the first compile) left
  config.json, .lock, checkpoints/ and tensorboard/ in the workdir it made; a bad input
  leaves the workdir untouched. (On CPU research/host_memory.py now refuses it before its
  state exists, tests/test_host_memory.py; without that check XLA's allocation fails.)"""
  from research import cli
  c = _tiny(tmp_path, **{"train.batch_size": 100_000_000, "train.host_memory_check": False})
  with pytest.raises(Exception) as e:
    train.train_and_evaluate(c, str(tmp_path / "run"), devices=jax.devices()[:1])
  assert cli.out_of_memory(e.value), e.value
  assert not (tmp_path / "run").exists(), sorted((tmp_path / "run").rglob("*"))


def test_resume_with_different_shapes_lists_the_parameters(tmp_path):
  from research import checkpoint
  c = _tiny(tmp_path)
  train.train_and_evaluate(c, str(tmp_path), devices=jax.devices()[:1])
  c.model.width = 64
  # A rerun is refused by config.json first (tests/test_faults.py), or for lacking it
  # (tests/test_workdir_tampering.py); the restore still checks shapes itself.
  exp = experiment.Experiment(c, jax.devices()[:1])
  ck = checkpoint.Checkpointer(tmp_path / "checkpoints", max_to_keep=3, async_save=False)
  try:
    with pytest.raises(checkpoint.CheckpointError,
                       match=r"shape \(32,\) in checkpoint vs \(64,\)"):
      ck.restore(checkpoint.abstract_like(exp.abstract_state, exp.state_sharding))
  finally:
    ck.close()


def test_progress_has_no_rates_for_an_untimed_window():
  from research.metrics import Progress
  p = Progress(total_steps=100, examples_per_step=1, tokens_per_step=1, flops_per_step=1.0,
               peak_flops=1.0, num_devices=1)
  p.start(10)  # after the first call of 10 steps
  assert p.measure(10) == {}
  assert p.measure(20)["steps_per_s"] > 0


def test_cpu_mfu_counts_the_host_peak_once_however_many_devices():
  """The CPU peak is measured across all cores: 8 simulated devices share it."""
  import jax
  from research.metrics import Progress
  assert jax.device_count() == 8 and jax.devices()[0].platform == "cpu"
  p = Progress(total_steps=10, examples_per_step=1, tokens_per_step=1, flops_per_step=1.0,
               peak_flops=100.0, num_devices=8)
  assert p.peak == 100.0


def test_a_v3_devices_peak_is_half_its_chips(monkeypatch):
  """A TPU v3 chip shows as two devices (one per core): counting the chip's peak per device
  doubled the host's peak and halved the MFU a v3 run reported."""
  import jax
  from research import metrics

  class Device:
    platform, device_kind = "tpu", "TPU v3"
  monkeypatch.setattr(jax, "devices", lambda *a: [Device()])
  assert metrics.device_peak_flops("bfloat16")[0] == 123e12 / 2
  Device.device_kind = "TPU v4"  # the control: one device per chip (megacore)
  assert metrics.device_peak_flops("bfloat16")[0] == 275e12


def test_init_from_starts_heads_fresh_at_any_depth(monkeypatch):
  """Fine-tuning onto another label set: the ResNet's `head` and a wrapped model's
  `sequence_model/read_out` start fresh; a body shape mismatch is still an error."""
  import jax
  import numpy as np
  from research import init_from
  params = {"head": {"kernel": np.zeros((5, 2))},
            "sequence_model": {"read_out": {"kernel": np.zeros((4, 3))},
                               "block": {"kernel": np.zeros((2, 2))}}}
  source = {"head/kernel": np.ones((5, 9)), "sequence_model/read_out/kernel": np.ones((4, 7)),
            "sequence_model/block/kernel": np.ones((2, 2))}
  monkeypatch.setattr(init_from, "_raw_params", lambda workdir: (source, 7))
  warned = []
  monkeypatch.setattr(init_from.logging, "warning", lambda msg, *a: warned.append(msg % a))
  shardings = jax.tree.map(lambda _: jax.sharding.SingleDeviceSharding(jax.devices()[0]), params)
  new = init_from.init_params_from("run", params, shardings)
  np.testing.assert_array_equal(new["sequence_model"]["block"]["kernel"], np.ones((2, 2)))
  np.testing.assert_array_equal(new["head"]["kernel"], np.zeros((5, 2)))
  assert not warned  # control: every parameter of the source was used
  source["sequence_model/block_1/kernel"] = np.ones((2, 2))  # a deeper source: its block_1
  init_from.init_params_from("run", params, shardings)
  assert "not used ['sequence_model/block_1/kernel']" in warned[0]  # was dropped without a word
  source["sequence_model/block/kernel"] = np.ones((3, 3))
  with pytest.raises(init_from.InitFromError, match="block"):
    init_from.init_params_from("run", params, shardings)


def _events(tb_dir):
  """Every Event in a directory's TFRecord event files (length, crc, data, crc records)."""
  import struct
  from pathlib import Path

  from tensorboardX.proto import event_pb2
  out = []
  for path in sorted(Path(tb_dir).iterdir()):
    data, i = path.read_bytes(), 0
    while i < len(data):
      (n,) = struct.unpack("<Q", data[i:i + 8])
      out.append(event_pb2.Event.FromString(data[i + 12:i + 12 + n]))
      i += 12 + n + 4
  return out


def test_a_resume_tells_tensorboard_to_drop_the_killed_runs_later_events(tmp_path):
  """A run killed at step 50 and resumed from its checkpoint at 40 wrote steps 41-50 twice;
  the resumed writer's SessionLog.START at step 41 makes TensorBoard drop the older ones."""
  from research import metrics
  from tensorboardX.proto import event_pb2
  for resume_step in (0, 40):  # 0, a fresh start, is the control: no START event
    w = metrics.MetricsWriter(str(tmp_path), resume_step=resume_step)
    w.write(resume_step + 10, {"loss": 1.0})
    w.close()
  starts = [e.step for e in _events(tmp_path / "tensorboard")
            if e.HasField("session_log") and e.session_log.status == event_pb2.SessionLog.START]
  assert starts == [41]


def test_init_from_a_sweeps_folder_names_one_of_its_runs(tmp_path):
  """init_from at a sweep's ensemble/KEY (an --ensemble=on sweep's members' stacked state)
  was exit 1, 'error: KeyError: 'params' (an internal error ...)' with a traceback; the sweep
  itself, its runs/ and ensemble/ said only 'no checkpoints/ directory'. Each is now one
  line naming a run's folder to give instead, nothing written."""
  import re
  import shutil
  from research import (cli, config_check, errors, init_from, probe_checkpoints, sweep,
                        workdir_layout)
  c = _tiny(tmp_path, **{"train.num_steps": 20})
  (tmp_path / "reviews.csv").write_text("text,label\n" + "good film,pos\nbad film,neg\n" * 20)
  sweep.run_sweep(c, [{"seed": 0}, {"seed": 1}], tmp_path / "sw", ensemble="on",
                  devices=jax.devices()[:1])
  (key,) = (tmp_path / "sw" / "ensemble").iterdir()
  runs = tmp_path / "sw" / "runs"
  shutil.copytree(key, tmp_path / "moved")  # an ensemble moved out of its sweep
  for folder, what in ((key, "a sweep's ensemble (the stacked training state of its members), "
                             "not a run; point it at one member's run folder"),
                       (tmp_path / "sw", "a sweep's directory, not a run; point it at one of "
                                         "the sweep's runs"),
                       (runs, "a sweep's runs/ folder, not a run; point it at one of the "
                              "sweep's runs"),
                       (key.parent, "a sweep's ensemble/ folder, not a run; point it at one "
                                    "of the sweep's runs")):
    c.init_from = str(folder)
    with pytest.raises(init_from.InitFromError) as e:
      train.train_and_evaluate(c, str(tmp_path / "new"), devices=jax.devices()[:1])
    assert str(e.value) == (f"config.init_from={folder} is {what}, {runs}/NAME (e.g. "
                            f"{runs / '000_seed=0'})")
    assert e.value.exit_code == errors.EXIT_INPUT and not (tmp_path / "new").exists()
    # The text tasks' config check, research.predict and research.probe_checkpoints said
    # "no checkpoints/ directory" / "holds no config.json" there (a new user's trial).
    text = cli.load_config("configs/text_classification.py:tiny")
    text.task.path, text.init_from = str(tmp_path / "reviews.csv"), str(folder)
    with pytest.raises(errors.InputError, match=re.escape(f"config.init_from={folder} is {what}, "
                                                          f"{runs}/NAME (e.g. ")):
      config_check.validate(text, 1)
    with pytest.raises(errors.InputError, match=re.escape(f"--workdir={folder} is {what}, "
                                                          f"{runs}/NAME (e.g. ")):
      workdir_layout.check_run_to_read(folder, "--workdir", "a run")
    # A command that reads one task's runs names none of another's (research.predict on a
    # sweep of lm runs named one, which it then refused: a trial); this sweep's are regression.
    with pytest.raises(errors.InputError, match=re.escape(
        f"--workdir={folder} is {what.split(', not a run')[0]}, and none of its runs is a "
        "task.name='lm' run with a checkpoint; pass the --workdir of one")):
      probe_checkpoints.probe_run(folder)
    with pytest.raises(errors.InputError, match=re.escape(f"{runs}/NAME (e.g. ")):
      workdir_layout.check_run_to_read(folder, "--workdir", "a run", task=c.task.name)
  c.init_from = str(tmp_path / "moved")
  with pytest.raises(init_from.InitFromError, match=r"holds no run's parameters \(a sweep's "
                     r"ensemble\?\); point it at one member's run folder, SWEEP/runs/NAME$"):
    train.train_and_evaluate(c, str(tmp_path / "new"), devices=jax.devices()[:1])
  assert workdir_layout.check_run_to_read(runs / "000_seed=0", "--workdir", "a run") == \
      runs / "000_seed=0"
  c.init_from = str(runs / "000_seed=0")  # the control: a member's run folder
  assert train.train_and_evaluate(c, str(tmp_path / "new"), devices=jax.devices()[:1])[
      "final_step"] == 20


def test_a_rerun_of_a_finished_run_writes_the_same_summary(tmp_path):
  """A run's summary.json took its last training row alone; the same command again (which
  trains nothing) read the final step's rows back from metrics.jsonl, the final evaluation's
  with them, and added final_eval_* the first summary lacked. Now the first run writes them
  too, and the rerun reproduces the file byte for byte (its wall times: the run's own)."""
  from configs import arithmetic
  c = arithmetic.get_config("tiny")  # an evaluation every 20 steps, the last at step 40
  c.mesh.data, c.train.compile_cache_dir = 1, ""
  first = train.train_and_evaluate(c, str(tmp_path), devices=jax.devices()[:1])
  written = (tmp_path / "summary.json").read_bytes()
  evals = [k for k in first if k.startswith("final_eval_")]
  assert evals and "final_loss" in first and "final_steps_per_s" in first, first
  assert train.train_and_evaluate(c, str(tmp_path), devices=jax.devices()[:1]) == first
  assert (tmp_path / "summary.json").read_bytes() == written


def test_the_non_finite_step_named_is_the_first_bad_one_of_its_window():
  """A window of steps 4-6 whose step 5 is the first NaN: the error names 5 (the step the
  summary records as nonfinite_at_step; final_step 4 is the last good one)."""
  class Ckpt:
    directory = "/run/checkpoints"

    def wait(self):
      pass

    def latest_step(self):
      return 3

  solo = train._SoloStep(None, None, Ckpt(), 0.0)
  solo.check(4, 6, {"loss": np.array([1.0, 2.0, 3.0])})  # finite: nothing raised
  with pytest.raises(train.NonFiniteLossError, match=r"at step 5 \(window 4-6\)") as e:
    solo.check(4, 6, {"loss": np.array([1.0, np.nan, np.inf])})
  assert e.value.step == 5
  with pytest.raises(train.NonFiniteLossError) as e:
    solo.check(4, 6, {"loss": np.array([1.0, 2.0, np.inf])})
  assert e.value.step == 6


def test_periodic_eval_keys_depend_on_the_step_alone():
  """Each eval row draws its data from fold_in(fold_in(root, EVAL), step): a different
  sample every step (not one fixed set re-scored), the same one on a resume."""
  import contextlib
  from research import keys
  seen, rows = [], []

  class Task:
    def evaluate(self, exp, params, key):
      seen.append(np.asarray(jax.random.key_data(key)
                             if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key))
      return {"score": 1.0}

  class Exp:
    task, root_key = Task(), jax.random.PRNGKey(7)

    def precision(self):
      return contextlib.nullcontext()

  class Writer:
    def write(self, step, row):
      rows.append((step, row))

  class State:
    params = None

  for step in (3, 4, 3):
    train.periodic_eval(Exp(), State(), step, Writer())
  root = jax.random.PRNGKey(7)
  for step, got in zip((3, 4, 3), seen):
    np.testing.assert_array_equal(
        got, np.asarray(jax.random.fold_in(jax.random.fold_in(root, keys.EVAL), step)))
  assert not np.array_equal(seen[0], seen[1])
  assert rows == [(3, {"eval_score": 1.0}), (4, {"eval_score": 1.0}), (3, {"eval_score": 1.0})]


class _Stop(Exception):
  pass


def _stop_at_the_loop(monkeypatch):
  """Runs train_and_evaluate up to the loop (nothing trained) and returns what it got: the
  Experiment, and loop.run's state and Progress."""
  from research import loop
  got = {}
  real = train.Experiment

  def experiment_(*args, **kwargs):
    got["exp"] = real(*args, **kwargs)
    return got["exp"]

  def run(kind, state, **kwargs):
    got["state"], got["progress"] = state, kwargs["progress"]
    kwargs["ckpt"].close()  # the loop owns these: closed however it ends
    for w in kwargs["writers"]:
      w.close()
    raise _Stop

  monkeypatch.setattr(train, "Experiment", experiment_)
  monkeypatch.setattr(loop, "run", run)
  return got


def test_progress_gets_the_runs_examples_tokens_and_flops_per_step(tmp_path, monkeypatch):
  """MFU and throughput come from Progress's per-step figures: batch_size examples,
  batch_size x tokens_per_example tokens, and FLOPs/token x tokens per step."""
  got = _stop_at_the_loop(monkeypatch)
  c = _tiny(tmp_path, **{"train.batch_size": 8, "train.host_memory_check": False})
  with pytest.raises(_Stop):
    train.train_and_evaluate(c, str(tmp_path / "run"), devices=jax.devices()[:1])
  exp, p = got["exp"], got["progress"]
  tokens = 8 * exp.task.tokens_per_example
  assert exp.task.tokens_per_example > 1  # tokens and examples are different figures
  assert (p.examples, p.tokens, p.total) == (8, tokens, 40)
  assert p.flops == exp.built.train_flops_per_token * tokens


def test_a_resume_applies_the_configs_new_learning_rate_and_weight_decay(tmp_path, monkeypatch):
  """optim.learning_rate and optim.weight_decay are RESUMABLE: the restored optimiser state's
  injected values are replaced by the config's before the loop trains on from it."""
  from research import optim
  c = _tiny(tmp_path, **{"train.num_steps": 1, "optim.name": "adamw",
                         "optim.weight_decay": 0.1, "optim.learning_rate": 1e-3,
                         "optim.warmup_steps": 0, "optim.decay_steps": 20,
                         "train.host_memory_check": False})
  monkeypatch.setattr(train, "run_probes", lambda *args: {})  # not what this test is about
  train.train_and_evaluate(c, str(tmp_path), devices=jax.devices()[:1])
  got = _stop_at_the_loop(monkeypatch)
  c.train.num_steps, c.optim.weight_decay, c.optim.learning_rate = 20, 0.25, 5e-4
  with pytest.raises(_Stop):
    train.train_and_evaluate(c, str(tmp_path), devices=jax.devices()[:1])
  hp = optim.get_hyperparams(got["state"].opt_state)
  assert int(got["state"].step) == 1
  np.testing.assert_allclose(float(hp["weight_decay"]), 0.25, rtol=1e-6)
  np.testing.assert_allclose(float(hp["peak_lr"]), 5e-4, rtol=1e-6)
