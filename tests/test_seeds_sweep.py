"""--sweep=seeds:N, the sweep every config file has (research/config_files.py): seeds 0 to
N-1. A trial found a seeds sweep in the regression config alone and wrote a config per task
for the others; research.sweep --ensemble=auto then ran them one by one without saying so."""
import json

import jax
import pytest

from research import cli, sweep, sweep_identity
from research.errors import InputError
from test_sweep import _config, fake_training


@pytest.mark.parametrize("spec", ["configs/grokking.py:tiny", "configs/bursty_classification.py",
                                  "configs/icl_regression.py:tiny"])
def test_seeds_n_is_a_sweep_of_every_config_file(spec):
  assert cli.load_sweep(spec, "seeds:3", seeds=True) == [{"seed": 0}, {"seed": 1}, {"seed": 2}]
  # Control: an experiment's --sweep (seeds=False) picks among its file's grids only.
  with pytest.raises(InputError, match="seeds:3"):
    cli.load_sweep(spec, "seeds:3")
  # Control: a file's own sweep is still its own (the regression file's ten seeds).
  if "icl_regression" in spec:
    assert len(cli.load_sweep(spec, "seeds")) == 10


@pytest.mark.parametrize("spec,name,match", [
    ("configs/icl_regression.py", "seeds:0", r"N in seeds:N counts the seeds, 1 or more"),
    ("configs/icl_regression.py", "seedz", r"unknown sweep 'seedz'; choose one of: dims, scale, "
     r"seeds \(did you mean 'seeds'\?\); or seeds:N \(seeds 0 to N-1, with every config file\)$"),
    ("configs/grokking.py", "scale", r"defines no get_sweep\(name\), so its only sweep is "
     r"seeds:N"),
    ("configs/nosuch.py", "seeds:2", r"nosuch.py")])  # the file first, the sweep after
def test_bad_seeds_sweeps_are_one_line(spec, name, match):
  with pytest.raises(InputError, match=match):
    cli.load_sweep(spec, name, seeds=True)


def test_more_seeds_extend_the_sweep_in_its_directory(tmp_path, monkeypatch, caplog):
  """seeds:2 then seeds:3 in one directory is the same sweep given a seed more (the third
  trains alone); so are the config's own seeds grid (10 seeds; a review found it and seeds:N
  refused each other's directory) and seeds:12 after it. Another sweep there is still refused
  (control)."""
  trained = fake_training(monkeypatch)
  spec = "configs/icl_regression.py"
  run = lambda name: sweep.run_sweep(
      _config(), cli.load_sweep(spec, name, seeds=True), tmp_path,
      ensemble="off", devices=jax.devices()[:1],
      identity={"config": "icl_regression.py", "sweep": name},
      grid=lambda other: sweep_identity.grid(spec, other))
  record = lambda: json.loads((tmp_path / "sweep.json").read_text())["sweep"]
  run("seeds:2")
  run("seeds:3")
  assert trained == ["000_seed=0", "001_seed=1", "002_seed=2"]
  run("seeds:2")  # fewer: the directory still holds, and its record names, three seeds
  assert record() == "seeds:3"
  with pytest.raises(InputError, match=r"holds another sweep \(config=icl_regression.py "
                     r"sweep=seeds:3\)"):
    run("scale")
  run("seeds")  # the config's grid of seeds 0-9
  assert trained[3:] == [f"00{s}_seed={s}" for s in range(3, 10)] and record() == "seeds"
  run("seeds:12")
  assert trained[10:] == ["010_seed=10", "011_seed=11"] and record() == "seeds:12"
  run("seeds")
  assert len(trained) == 12 and record() == "seeds:12"
  with pytest.raises(InputError, match=r"holds another sweep \(config=icl_regression.py "
                     r"sweep=seeds:12\)"):
    run("dims")


def test_auto_says_when_the_points_do_not_train_as_one_ensemble(tmp_path, monkeypatch, caplog):
  """--ensemble=auto on points that cannot share a program (seeds of a task whose data is
  the seed's) said nothing of running them one by one; it says why now. Control: points that
  do ensemble are not said to run one by one."""
  from research import ensemble, train
  monkeypatch.setattr(train, "train_and_evaluate", lambda *a, **k: (_ for _ in ()).throw(
      RuntimeError("not trained here")))
  monkeypatch.setattr(ensemble, "train_ensemble", lambda *a, **k: (_ for _ in ()).throw(
      RuntimeError("not trained here")))
  c = _config()
  with caplog.at_level("INFO"):
    sweep.run_sweep(c, [{"seed": 0}, {"model.width": 64}], tmp_path / "a", ensemble="auto",
                    devices=jax.devices()[:1])
  assert "the 2 runs to do train one by one, not as one vmapped ensemble: overrides change " \
         "model.width" in caplog.text
  caplog.clear()
  with caplog.at_level("INFO"):
    sweep.run_sweep(c, [{"seed": 0}, {"seed": 1}], tmp_path / "b", ensemble="auto",
                    devices=jax.devices()[:1])
  assert "one by one" not in caplog.text
