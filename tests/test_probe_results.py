"""What a task's probe returns reaches probes/STEM.json as JSON: numpy and JAX values (what a
task computes with) are converted; anything else is named in one line (it ended a finished
run's probes in "Object of type ArrayImpl is not JSON serializable", an internal error)."""
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
