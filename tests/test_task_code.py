"""A researcher's own task code, as the project meets it: what its probe returns reaches
probes/STEM.json as JSON (numpy and JAX values converted; anything else named in one line: it
ended a finished run's probes in "Object of type ArrayImpl is not JSON serializable", an
internal error); a bug in its probe or render is named as the task's; a task without
check_config is said to be unchecked; a field check_config reads that the config lacks is
one clean line (trial 65a)."""
import contextlib
import json
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import train
from research.errors import InputError


def _fake_exp(probe):
  task = SimpleNamespace(probe=probe)  # no render: probes written, no figure
  config = SimpleNamespace(task=SimpleNamespace(name="sign_icl"), probe={})
  return SimpleNamespace(root_key=jax.random.key(0), precision=contextlib.nullcontext,
                         task=task, config=config, predict_fn=lambda params: None)


def test_numpy_and_jax_values_are_written_as_numbers_and_lists(tmp_path):
  result = {"summary": {"accuracy": np.float32(0.75), "above_chance": np.bool_(True),
                        "n": np.int64(64), "loss": jnp.float32(0.5)},
            "curve": jnp.arange(3.0), "per_k": [np.array([1, 2]), {"nan": float("nan")}],
            2: "an int key"}
  state = SimpleNamespace(params=None, step=jnp.int32(40))
  paths = train.run_probes(_fake_exp(lambda *a, **k: {"sign": result}), state, tmp_path)
  written = json.loads((tmp_path / "probes" / "sign.json").read_text())
  assert paths == {"sign": str(tmp_path / "probes" / "sign.json")}
  assert written["summary"] == {"accuracy": 0.75, "above_chance": True, "n": 64, "loss": 0.5}
  assert written["curve"] == [0.0, 1.0, 2.0] and written["per_k"][0] == [1, 2]
  assert np.isnan(written["per_k"][1]["nan"]) and written["2"] == "an int key"


def test_a_value_no_json_can_hold_is_named_with_its_place(tmp_path):
  state = SimpleNamespace(params=None, step=jnp.int32(40))
  probe = lambda *a, **k: {"sign": {"summary": {"fit": object()}}}  # control: not converted
  with pytest.raises(InputError, match=r"^task 'sign_icl''s probe result 'sign'\['summary'\]"
                     r"\['fit'\] is of type object, which a probe file cannot hold; return"):
    train.run_probes(_fake_exp(probe), state, tmp_path)
  assert not (tmp_path / "probes" / "sign.json").exists()


@pytest.mark.parametrize("where", ["probe", "render"])
def test_a_tasks_own_bug_is_named_as_the_tasks_with_its_traceback(where, tmp_path, capsys):
  """A render written for the parsed JSON (it is given the file's path) crashed after training
  with "an internal error, not your input: please report it" (trial 65a). The task's code is
  named now, its traceback kept, exit 1; control: the project's own errors (an InputError of
  the task) pass as they are."""
  from research import cli, errors

  def broken(probe_json, out_png):
    return probe_json["summary"]  # a PosixPath is not subscriptable

  exp = _fake_exp(lambda *a, **k: {"sign": {"summary": {"acc": 0.5}}} if where == "render"
                  else 1 / 0)
  exp.task.render = broken
  state = SimpleNamespace(params=None, step=jnp.int32(40))
  with pytest.raises(errors.TaskCodeError) as e:
    train.run_probes(exp, state, tmp_path)
  kind = "TypeError" if where == "render" else "ZeroDivisionError"
  assert str(e.value).startswith(f"task 'sign_icl''s {where} raised {kind}: ")
  assert "checkpoint at step 40 is saved" in str(e.value)
  with pytest.raises(SystemExit) as code:
    cli._fail_for(e.value)
  err = capsys.readouterr().err
  assert code.value.code == 1 and "Traceback" in err and "internal error" not in err
  assert err.strip().splitlines()[-1].startswith(f"error: task 'sign_icl''s {where} raised")

  def refusing(*a, **k):
    raise InputError("config.probe.x must be positive")
  with pytest.raises(InputError, match="must be positive"):
    train.run_probes(_fake_exp(refusing), state, tmp_path)

  def disk_full(*a, **k):  # an I/O error keeps its exit code (5), not the task's bug's
    raise OSError(28, "No space left on device")
  with pytest.raises(OSError, match="No space left") as e:
    train.run_probes(_fake_exp(disk_full), state, tmp_path)
  assert not isinstance(e.value, errors.TaskCodeError) and cli.exit_code(e.value) == 5


def test_a_task_without_check_config_is_said_to_be_unchecked(monkeypatch, caplog):
  """A missing render was warned, a missing check_config not (bad values trained silently);
  control: a task with one says nothing."""
  from research import cli, config_check, tasks
  c = cli.load_config("configs/icl_regression.py:tiny")
  with caplog.at_level("WARNING"):
    config_check.validate(c, num_devices=1)
  assert "check_config" not in caplog.text
  plain = type("Unchecked", (), {})
  monkeypatch.setitem(tasks.REGISTRY, "regression", plain)
  monkeypatch.setattr(tasks, "_UNCHECKED_SAID", set())
  with caplog.at_level("WARNING"):
    config_check.validate(c, num_devices=1)
  assert "task 'regression' has no check_config(cfg): none of its config.task values is " \
      "checked" in caplog.text


def test_a_field_check_config_reads_and_the_config_lacks_is_one_clean_line():
  """The file misspelled a field its check_config reads: the line held ml_collections' raw
  KeyError text ('flip_prob\\'\\nDid you mean ...). Control: a field simply absent."""
  from research import cli, config_check
  c = cli.load_config("configs/icl_regression.py:tiny")
  with c.unlocked():
    c.task.n_pionts = c.task.n_points
    del c.task["n_points"]
  with pytest.raises(InputError) as e:
    config_check.validate(c, num_devices=1)
  assert str(e.value) == (
      "config.task.name='regression': the task's check_config reads a field 'n_points' that "
      "this config lacks (it has 'n_pionts': a misspelling in the config file?); use the config "
      "file written for that task (configs/*.py), each field spelled as the task reads it")
  with c.unlocked():
    del c.task["n_pionts"]
  with pytest.raises(InputError, match=r"reads a field 'n_points' that this config lacks; use"):
    config_check.validate(c, num_devices=1)


@pytest.mark.parametrize("returned, said", [
    (None, "task 'sign_icl''s probe returned a NoneType; return a dict"),
    ({"sign": [1, 2]}, "task 'sign_icl''s probe result 'sign' is a list; each result is a dict"),
    ({"sign": {"summary": 0.5}}, "result 'sign' is a dict whose 'summary' is a float;"),
    ({"sign": {"when": np.array([np.datetime64("2026-12-07")])}},
     r"result 'sign'\['when'\]\[0\] is of type date, which a probe file cannot hold"),
    ({"sign": {"objects": np.array([1, object()], dtype=object)}},
     r"result 'sign'\['objects'\]\[1\] is of type object")])
def test_a_probe_result_of_another_shape_is_named(returned, said, tmp_path):
  """A review found these AttributeErrors and "not JSON serializable" read as internal errors
  (one after its file was written); control: the first test's result is written."""
  state = SimpleNamespace(params=None, step=jnp.int32(40))
  with pytest.raises(InputError, match=said):
    train.run_probes(_fake_exp(lambda *a, **k: returned), state, tmp_path)
  assert not (tmp_path / "probes" / "sign.json").exists()
