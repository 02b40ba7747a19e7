"""--config=FILE[:PRESET] where FILE's directory has ':' in its name (runs/exp:2024/my.py)
and where the preset does (configs/lm_ladder.py:1b@v5p:4x4x4). The file used to be cut at
the first ':' ("no such file runs/exp")."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from research import cli
from research.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def colon_dir(tmp_path):
  d = tmp_path / "run:2024"
  d.mkdir()
  shutil.copy(ROOT / "configs" / "icl_regression.py", d / "my.py")
  return d


@pytest.mark.parametrize("suffix,preset", [(":tiny", "tiny"), ("", "cpu")])  # "": the default
def test_a_config_in_a_directory_with_a_colon_loads(colon_dir, suffix, preset):
  assert cli.load_config(f"{colon_dir / 'my.py'}{suffix}").preset == preset


def test_its_sweeps_load(colon_dir):
  assert len(cli.load_sweep(f"{colon_dir / 'my.py'}:tiny", "seeds")) == 10


def test_a_sweep_gets_the_preset_of_its_spec():
  """load_sweep passes get_sweep the spec's preset where it takes one ('' for none): the CPU
  ladder is refused on the ladder's pod and tiny presets, instead of training the CPU sizes on
  a pod preset's data and setup, and ladder@TOPOLOGY on the cpu preset."""
  assert len(cli.load_sweep("configs/lm_ladder.py:cpu", "ladder")) == 6
  assert len(cli.load_sweep("configs/lm_ladder.py", "ladder")) == 6  # the default, cpu
  for preset in ("1b@v5p:4x4x4", "tiny"):
    with pytest.raises(InputError, match=rf"--sweep=ladder: sweep 'ladder' is the CPU ladder .* "
                       rf"not '{preset}'"):
      cli.load_sweep(f"configs/lm_ladder.py:{preset}", "ladder")
  with pytest.raises(InputError, match="runs the pod sizes .* not on preset 'cpu'"):
    cli.load_sweep("configs/lm_ladder.py:cpu", "ladder@v5p:4x4x4")


@pytest.mark.parametrize("spec,split", [
    ("configs/lm_ladder.py:1b@v5e:4x4", ("configs/lm_ladder.py", ":", "1b@v5e:4x4")),
    ("configs/icl_regression.py:tiny", ("configs/icl_regression.py", ":", "tiny")),
    ("configs/icl_regression.py:", ("configs/icl_regression.py", ":", "")),
    ("configs/icl_regression.py", ("configs/icl_regression.py", "", "")),
    ("configs/nope.py:tiny", ("configs/nope.py", ":", "tiny")),   # missing: named up to .py
    ("configs/nope:tiny", ("configs/nope:tiny", "", "")),          # no .py: the whole spec
])
def test_split_spec(spec, split):
  assert cli.split_spec(spec) == split


def test_the_ladders_pod_presets_keep_their_colon():
  """The control: a preset with ':' in it (SIZE@CHIP:SHAPE) is still the file's preset."""
  c = cli.load_config("configs/lm_ladder.py:1b@v5e:4x4")
  assert (c.preset, c.topology) == ("1b@v5e:4x4", "v5e:4x4")


@pytest.mark.parametrize("suffix", [":tiny", ""])
def test_a_missing_file_is_named_whole(colon_dir, suffix):
  path = colon_dir / "nope.py"
  with pytest.raises(InputError, match=f"no such file {path};"):
    cli.load_config(f"{path}{suffix}")


def test_research_main_reads_it(colon_dir, tmp_path):
  """End to end: the file loads and the override after it is checked against it (a
  misspelt one stops the command before anything trains)."""
  proc = subprocess.run(
      [sys.executable, "-m", "research.main", f"--config={colon_dir / 'my.py'}:tiny",
       f"--workdir={tmp_path / 'w'}", "--config.model.widht=3"],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert proc.stderr.count("error:") == 1 and "did you mean 'model.width'" in proc.stderr
  assert not (tmp_path / "w").exists()


def test_a_project_config_named_from_outside_the_checkout_gets_its_whole_path(tmp_path,
                                                                             monkeypatch):
  """From another folder "configs/x.py" is not found; the hint repeated the path that
  failed. Control: a name the project has no file for keeps the plain usage line."""
  monkeypatch.chdir(tmp_path)
  want = ROOT / "configs" / "icl_regression.py"
  with pytest.raises(InputError, match=f"the project's is {want}: pass that path or run from "
                                       f"{ROOT}$"):
    cli.load_config("configs/icl_regression.py:tiny")
  with pytest.raises(InputError, match=r"no such file configs/nope.py; pass FILE.py\[:PRESET\]"):
    cli.load_config("configs/nope.py:tiny")
