"""research/run_environment.py: a resume under another JAX random stream, or with a field
config.json was edited to hide, is refused; one on other devices is recorded (a fault trial
resumed a run under JAX_THREEFRY_PARTITIONABLE=0, on 8 devices instead of 1, and at batch 32
after editing config.json to say 32: each exit 0, nothing recorded, other numbers)."""
import json
import shutil

import jax
import pytest

from research import errors, train, workdir
from run_fixtures import tiny_regression as _tiny


def _snapshot(directory):
  return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
          if p.is_file()}


@pytest.fixture(scope="module")
def half(tmp_path_factory):
  """20 of 40 steps of the tiny run, its mesh's data axis filled (-1) by one device."""
  wd = tmp_path_factory.mktemp("half") / "run"
  train.train_and_evaluate(_tiny(**{"train.num_steps": 20, "mesh.data": -1}), str(wd),
                           devices=jax.devices()[:1])
  return wd


def test_another_random_stream_is_refused_with_the_workdir_untouched(half, tmp_path):
  wd = shutil.copytree(half, tmp_path / "run")
  before = _snapshot(wd)
  flag = "jax_threefry_partitionable"
  was = getattr(jax.config, flag)
  jax.config.update(flag, not was)
  try:
    with pytest.raises(errors.InputError, match=rf"JAX_THREEFRY_PARTITIONABLE={was} \(now "
                       rf"{not was}\): another random stream") as e:
      train.train_and_evaluate(_tiny(**{"train.num_steps": 40, "mesh.data": -1}), str(wd),
                               devices=jax.devices()[:1])
  finally:
    jax.config.update(flag, was)
  assert e.value.exit_code == 2 and "\n" not in str(e.value)
  assert _snapshot(wd) == before
  # control: set back as it was, the run resumes and records no change
  summary = train.train_and_evaluate(_tiny(**{"train.num_steps": 40, "mesh.data": -1}),
                                     str(wd), devices=jax.devices()[:1])
  assert summary["final_step"] == 40
  assert workdir.read_jsonl(wd / workdir.CHANGES) == [
      {"step": 20, "changes": ["train.num_steps: 20 -> 40"]}]


def test_other_devices_are_recorded_as_a_change_of_the_resolved_mesh(half, tmp_path):
  if len(jax.devices()) < 2:
    pytest.skip("needs 2 devices (tests run on 8 simulated CPU devices)")
  wd = shutil.copytree(half, tmp_path / "run")
  train.train_and_evaluate(_tiny(**{"train.num_steps": 40, "mesh.data": -1}), str(wd),
                           devices=jax.devices()[:2])
  (row,) = workdir.read_jsonl(wd / workdir.CHANGES)
  assert row["step"] == 20 and row["changes"][0] == "train.num_steps: 20 -> 40"
  assert row["changes"][1] == ("resolved mesh: data=1 fsdp=1 tensor=1 on 1 device(s), 1 "
                               "process(es) -> data=2 fsdp=1 tensor=1 on 2 device(s), 1 "
                               "process(es)")
  # a rerun of the finished run on 1 device saves nothing, so its checkpoint still says 2:
  # the change is recorded once per step, not again on every rerun
  for _ in range(2):
    train.train_and_evaluate(_tiny(**{"train.num_steps": 40, "mesh.data": -1}), str(wd),
                             devices=jax.devices()[:1])
  rows = workdir.read_jsonl(wd / workdir.CHANGES)
  assert [r["step"] for r in rows] == [20, 40], rows
  # control: a checkpoint from before the record (no environment in its meta) compares nothing
  from research import run_environment
  assert run_environment.compare(None, {"random": {}}, wd) == []
  meta = json.loads((wd / "checkpoints" / "40" / "meta" / "metadata").read_text())
  assert meta["environment"]["mesh"]["data"] == 2 and meta["environment"]["devices"] == 2


def test_a_config_json_edited_to_match_a_changed_command_is_refused(half, tmp_path):
  """config.json edited to batch 32, the command at 32: the rerun's check reads config.json,
  so steps 20-40 trained at batch 32 and summary.json counted every step's tokens at 32. The
  checkpoint's own record of its config refuses it, naming the field. Control: a resumable
  field changed the same way (train.eval_every) is no refusal."""
  wd = shutil.copytree(half, tmp_path / "run")
  saved = json.loads((wd / "config.json").read_text())
  batch = saved["train"]["batch_size"]
  saved["train"]["batch_size"] = 2 * batch
  (wd / "config.json").write_text(json.dumps(saved))
  before = _snapshot(wd)
  edited = _tiny(**{"train.num_steps": 40, "mesh.data": -1, "train.batch_size": 2 * batch})
  with pytest.raises(errors.InputError, match=rf"train.batch_size: {batch} -> {2 * batch}") as e:
    train.train_and_evaluate(edited, str(wd), devices=jax.devices()[:1])
  assert e.value.exit_code == 2 and _snapshot(wd) == before
  saved["train"]["batch_size"], saved["train"]["eval_every"] = batch, 5
  (wd / "config.json").write_text(json.dumps(saved))
  ok = _tiny(**{"train.num_steps": 40, "mesh.data": -1, "train.eval_every": 5})
  assert train.train_and_evaluate(ok, str(wd), devices=jax.devices()[:1])["final_step"] == 40


def test_the_record_holds_every_random_stream_setting_and_the_devices_in_use(tmp_path):
  """current(): each of JAX's three random-stream settings, the resolved mesh, the devices in
  it (all of them, not its first axis) and the process count. A run started under
  JAX_ENABLE_X64 is refused on resume without it; another process count is recorded as a
  change of the resolved mesh, and the same environment as none."""
  from research import run_environment, sharding
  c = _tiny(**{"mesh.data": 1, "mesh.fsdp": 2})
  env = run_environment.current(sharding.make_mesh(c.mesh, jax.devices()[:2]), c)
  assert env["random"] == {k: getattr(jax.config, k) for k in (
      "jax_default_prng_impl", "jax_enable_x64", "jax_threefry_partitionable")}
  assert (env["mesh"], env["devices"], env["processes"]) == (
      {"data": 1, "fsdp": 2, "tensor": 1}, 2, 1)
  assert env["config"]["mesh"]["fsdp"] == 2
  assert run_environment.compare(env, env, tmp_path) == []
  x64 = json.loads(json.dumps(env))
  x64["random"]["jax_enable_x64"] = not env["random"]["jax_enable_x64"]
  with pytest.raises(errors.InputError, match=rf"JAX_ENABLE_X64={not jax.config.jax_enable_x64} "
                     rf"\(now {jax.config.jax_enable_x64}\): another random stream"):
    run_environment.compare(x64, env, tmp_path)
  two = dict(env, processes=2)
  assert run_environment.compare(two, env, tmp_path) == [
      "resolved mesh: data=1 fsdp=2 tensor=1 on 2 device(s), 2 process(es) -> data=1 fsdp=2 "
      "tensor=1 on 2 device(s), 1 process(es)"]
