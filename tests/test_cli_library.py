"""research/cli.py as a library: one config loader and setter, how `--config.x` and a script's
`--set` are split and refused, the exit code of each exception (and which runtime errors are
a lost process of a multi-process run: errors.lost_peer), and which library log lines reach a
user."""
import sys

import pytest

from research import cli
from research.errors import InputError


def test_one_loader_and_one_setter(tmp_path):
  config = cli.load_config("configs/icl_regression.py:tiny")
  assert config.preset == "tiny" and config.is_locked
  text = cli.apply_overrides(config, {"model.width": "48", "optim.learning_rate": "1e-3",
                                      "task.curriculum.enabled": "false",
                                      "sharding.rules": "()"}, text=True, flag="--config.")
  assert (text.model.width, text.optim.learning_rate) == (48, 1e-3)
  assert text.task.curriculum.enabled is False and text.sharding.rules == ()
  assert config.model.width != 48  # a copy: the loaded config is unchanged
  values = cli.apply_overrides(config, {"optim.learning_rate": 1, "seed": 3})
  assert isinstance(values.optim.learning_rate, float) and values.seed == 3
  for bad, needle in (({"seed": 1.5}, "holds an int"), ({"seed": True}, "holds an int"),
                      ({"model.name": 3}, "holds a string"),
                      ({"task.curriculum.enabled": "yes"}, "holds a bool"),
                      ({"optim.learning_rat": 1.0}, "did you mean 'optim.learning_rate'")):
    with pytest.raises(InputError, match=needle):
      cli.apply_overrides(config, bad)
  # FieldReference links are kept within the copy, as ml_collections' config flags kept
  # them: grokking's full batch is int(modulus^2 * train_fraction); the base is unchanged.
  grok = cli.load_config("configs/grokking.py:cpu")
  base = (grok.task.modulus, grok.train.batch_size)
  point = cli.apply_overrides(grok, {"task.modulus": "101", "task.train_fraction": "0.5"},
                              text=True)
  assert (point.task.modulus, point.train.batch_size) == (101, int(101 * 101 * 0.5))
  assert (grok.task.modulus, grok.train.batch_size) == base != (101, 5100)



def test_config_overrides_split_at_the_first_equals_and_a_repeat_must_agree():
  """`--config.a.b=v` is split at its first '=' (a value may hold one: a path, an expression);
  the same override given twice is refused only when its values differ (all but the last
  would be dropped unread), so a repeated identical one is no refusal."""
  rest, given = cli._split_overrides(["prog", "--config.task.path=data=v2.csv", "--workdir=w"])
  assert rest == ["prog", "--workdir=w"] and given == {"task.path": "data=v2.csv"}
  rest, given = cli._split_overrides(["prog", "--config.seed=1", "--config.seed", "1"])
  assert rest == ["prog"] and given == {"seed": "1"}
  with pytest.raises(InputError, match=r"--config.seed is given 2 times \('1', then '2'\)"):
    cli._split_overrides(["prog", "--config.seed=1", "--config.seed=2"])


def test_a_scripts_set_must_name_a_field_and_be_given_once():
  """An experiment script's --set: `=5` names no field, and a field given twice is refused
  even with the same value (as the script's other repeated flags are)."""
  assert cli.overrides_from_args([" model.width =64", "seed=3"]) == {"model.width": "64",
                                                                     "seed": "3"}
  for args in (["=5"], ["model.width"]):
    with pytest.raises(InputError, match="is not FIELD=VALUE"):
      cli.overrides_from_args(args)
  with pytest.raises(InputError, match=r"--set model.width is given 2 times \('64', then '64'\)"):
    cli.overrides_from_args(["model.width=64", "model.width=64"])


def test_each_exception_maps_to_its_documented_exit_code():
  """research/errors.py's table: a file the user named and a flag error are input (2), any
  other OSError is the disk (5), anything else is a bug (1)."""
  from absl import flags
  from research import errors
  assert cli.exit_code(FileNotFoundError(2, "No such file", "data.csv")) == errors.EXIT_INPUT == 2
  assert cli.exit_code(flags.IllegalFlagValueError("bad")) == 2
  assert cli.exit_code(OSError(28, "No space left on device")) == errors.EXIT_IO == 5
  assert cli.exit_code(errors.RunsFailedError("x")) == 6
  assert cli.exit_code(KeyError("x")) == 1


def test_a_scripts_int_result_is_its_exit_code(monkeypatch):
  """run_script: main's int result is the exit code (reproduce: 6 when some runs failed),
  anything else exits 0."""
  monkeypatch.setattr(sys, "argv", ["script"])
  for result, code in ((6, 6), (None, 0), ({"done": 1}, 0)):
    with pytest.raises(SystemExit) as e:
      cli.run_script(lambda argv, r=result: r)
    assert e.value.code == code


def test_library_chatter_is_dropped_but_its_warnings_are_kept():
  """DropLibraryChatter: a library's INFO records are dropped, its WARNING and above kept
  (but Orbax's with a traceback, which becomes one line of ours); the run's own INFO lines
  are kept."""
  import logging
  def record(path, level, exc_info=None):
    return logging.LogRecord("x", level, path, 1, "msg", None, exc_info)
  lib, orbax, own = ("/venv/lib/site-packages/jax/_src/x.py",
                     "/venv/lib/site-packages/orbax/checkpoint/x.py", "/repo/research/train.py")
  keep = cli.DropLibraryChatter().filter
  assert not keep(record(lib, logging.INFO)) and keep(record(lib, logging.WARNING))
  assert keep(record(lib, logging.ERROR)) and keep(record(orbax, logging.WARNING))
  assert not keep(record(orbax, logging.ERROR, (OSError, OSError("x"), None)))
  assert keep(record(own, logging.INFO)) and keep(record(own, logging.DEBUG))
  assert not keep(record("/usr/lib/python3/dist-packages/x.py", logging.INFO))
  # TFDS's warning of a version folder that is not there, above our line that the dataset is
  # not prepared (and how to build it); control: its other warnings are kept.
  tfds = "/venv/lib/site-packages/tensorflow_datasets/core/utils/file_utils.py"
  variant = logging.LogRecord("x", logging.WARNING, tfds, 1,
                              "Variant folder %s has no %s", ("/d/x/1.0.0", "dataset_info.json"),
                              None)  # as TFDS logs it
  assert not keep(variant) and keep(record(tfds, logging.WARNING))


def test_only_a_multi_process_runs_lost_connection_is_a_lost_peer(monkeypatch):
  """What errors.lost_peer reads as another process gone, also inside the error a failed
  checkpoint save wraps it in, and the line's reason (gloo's source location dropped);
  anything else stays what it was (an internal error with its traceback, a write error)."""
  import jax

  from research import checkpoint, errors

  class JaxRuntimeError(Exception):
    pass

  reset = JaxRuntimeError("UNKNOWN: Gloo AllGather failed: [external/gloo/gloo/transport/tcp/"
                          "pair.cc:538] Read error [127.0.0.1]:30080: Connection reset by peer")
  def backends_started():
    raise AssertionError("process_count() starts JAX's backends: not for a bad flag's error")

  monkeypatch.setattr(jax, "process_count", backends_started)
  assert errors.lost_peer(errors.InputError("--config=x.py: no such file")) == ""
  monkeypatch.setattr(jax, "process_count", lambda: 1)
  assert errors.lost_peer(reset) == ""  # one process: no peer to lose
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  assert errors.lost_peer(reset) == ("UNKNOWN: Gloo AllGather failed: Read error "
                                     "[127.0.0.1]:30080: Connection reset by peer")
  for text in ("UNKNOWN: Gloo AllReduce failed: Connection closed by peer [127.0.0.1]:1",
               "UNKNOWN: Gloo Broadcast failed: Write error: Broken pipe",
               "UNAVAILABLE: Task 1 heartbeat timeout.",
               # research.main's --collective_timeout ended a wait on a process that is gone
               # or stopped answering (gloo's two wordings of it)
               "UNKNOWN: Gloo AllGather failed: Application timeout caused pair closure",
               "UNKNOWN: Gloo AllReduce failed: Timed out waiting 20000ms for recv operation "
               "to complete"):
    assert errors.lost_peer(JaxRuntimeError(text)) == text
  try:  # a save's collective failed: the write error wraps it
    try:
      raise reset
    except JaxRuntimeError as e:
      raise checkpoint.CheckpointWriteError("a checkpoint save at step <= 20 failed") from e
  except checkpoint.CheckpointWriteError as wrapped:
    assert errors.lost_peer(wrapped).endswith("Connection reset by peer")
  assert errors.lost_peer(JaxRuntimeError("INTERNAL: Generated function failed: CpuCallback")) == ""
  # a host callback's own broken connection is this process's failure, not a lost peer
  assert errors.lost_peer(JaxRuntimeError(
      "INTERNAL: Generated function failed: CpuCallback error: ConnectionResetError: [Errno "
      "104] Connection reset by peer")) == ""
  try:  # a cause that is not it does not hide the collective's error it was handled in
    try:
      raise reset
    except JaxRuntimeError:
      raise RuntimeError("closing failed") from ValueError("unrelated")
  except RuntimeError as beside:
    assert errors.lost_peer(beside).endswith("Connection reset by peer")
  assert errors.lost_peer(OSError("Connection reset by peer")) == ""  # not a collective's
