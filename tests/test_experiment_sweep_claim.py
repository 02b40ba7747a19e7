"""An experiment script's --workdir that a research.sweep wrote (its sweep.json) is refused
whatever its experiment.json says (research/workdir_layout._check_experiment); helpers from
tests/test_experiment_workdirs.py."""
import json

import pytest

from experiments import scaling_laws, schaeffer2023
from tests.test_experiment_workdirs import a_sweep, listing, refused

pytestmark = pytest.mark.usefixtures("wall_times")  # conftest: never the tracked file


@pytest.mark.parametrize("module", [scaling_laws, schaeffer2023])
def test_a_research_sweeps_directory_is_never_claimed(module, tmp_path, monkeypatch, capfd):
  """trial66a: the refusal of a research.sweep directory said to write experiment.json; done,
  scaling_laws trained its grid into the user's sweep (two configs in one results.jsonl).
  Its sweep.json (research.sweep's alone) refuses it whatever experiment.json says."""
  ran, name = [], module.__name__.split(".")[1]
  monkeypatch.setattr(module, "run", lambda *a, **k: ran.append(a))
  sweep, argv = a_sweep(tmp_path / "S"), ["--preset=tiny", f"--workdir={tmp_path / 'S'}"]
  (sweep / "sweep.json").write_text('{"config": "my_tc.py", "sweep": "width"}')
  code, line = refused(module.main, argv, monkeypatch, capfd)
  assert code == 2 and "sweep.json: research.sweep's, config=my_tc.py, sweep=width" in line
  assert "experiment.json" not in line, line  # no hint to claim it
  (sweep / "experiment.json").write_text(json.dumps({"experiment": name}))  # the old hint, done
  before = listing(tmp_path)
  code, line = refused(module.main, argv, monkeypatch, capfd)
  assert code == 2 and "holds a sweep (results.jsonl, runs, sweep.json" in line, line
  assert f"its experiment.json does not make it {name}'s" in line, line
  assert not ran and listing(tmp_path) == before
  # Control: without sweep.json (its own sweep from before the mark) the mark is offered, and
  # with it the directory is reused.
  (sweep / "sweep.json").unlink()
  (sweep / "experiment.json").unlink()
  code, line = refused(module.main, argv, monkeypatch, capfd)
  assert code == 2 and f'write {{"experiment": "{name}"}} into' in line, line
  (sweep / "experiment.json").write_text(json.dumps({"experiment": name}))
  assert module.main(argv) == 0 and len(ran) == 1
