"""The words for a misspelt name: a flag (research/cli.py: the command's closest flag, a
boolean's --no form kept, absl's own flags never offered), an enum flag's value, a preset, a
sweep, a config file, reproduce's NAME; each with a control that gets no guess."""
import subprocess
import sys
from pathlib import Path

import pytest
from absl import flags

from experiments import reproduce
from research import cli, config_files
from research.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def _define(fv):
  flags.DEFINE_bool("gallery", False, "", flag_values=fv)
  flags.DEFINE_string("topology", None, "", flag_values=fv)


@pytest.mark.parametrize("arg,said", [
    ("--topolgy=v5e:4x4", "unknown flag --topolgy (did you mean --topology?)"),
    # absl's words were "Unknown command line flag 'nogalery'. Did you mean: gallery ?", and
    # --gallery turns on what the user meant to turn off
    ("--nogalery", "unknown flag --nogalery (did you mean --nogallery?)"),
    ("--zzz", "unknown flag --zzz; see --help"),  # control: nothing close, no guess
])
def test_a_mistyped_flag_gets_the_closest_of_the_commands_own(arg, said):
  with pytest.raises(InputError) as e:
    cli.parse_flags(_define, [arg])
  assert str(e.value).startswith(said), str(e.value)


def _define_config(fv):
  flags.DEFINE_string("config", None, "", flag_values=fv)
  flags.DEFINE_string("sweep", None, "", flag_values=fv)


@pytest.mark.parametrize("arg,said", [
    # A new user's trial: research.sweep --steps=10 got "did you mean --sweep?".
    ("--steps=10", "unknown flag --steps; this command sets it in the config: "
                   "--config.train.num_steps=N (--steps is the experiment scripts' flag)"),
    ("--seed=1", "unknown flag --seed; this command sets it in the config: --config.seed=N"),
    ("--preset=tiny", "unknown flag --preset; this command sets it in the config: "
                      "--config=FILE:PRESET"),
    ("--sweeep=x", "unknown flag --sweeep (did you mean --sweep?)"),  # control
])
def test_an_experiment_scripts_flag_is_spelt_as_a_config_command_takes_it(arg, said):
  with pytest.raises(InputError) as e:
    cli.parse_flags(_define_config, [arg])
  assert str(e.value).startswith(said), str(e.value)
  # Control: a command without --config (research.results) gets the plain answer.
  with pytest.raises(InputError) as e:
    cli.parse_flags(_define, ["--steps=10"])
  assert str(e.value).startswith("unknown flag --steps; see --help"), str(e.value)


def test_absls_own_flags_are_not_offered():
  """research.main --verbosty suggested absl's --verbosity (a logging flag, not the run's)."""
  proc = subprocess.run([sys.executable, "-m", "research.main", "--verbosty=1"], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2 and "unknown flag --verbosty" in proc.stderr
  assert "verbosity" not in proc.stderr, proc.stderr


def _refusal(fn, *args) -> str:
  with pytest.raises(InputError) as e:
    fn(*args)
  return str(e.value)


def _define_enum(fv):
  flags.DEFINE_enum("preset", "cpu", ["tiny", "cpu", "paper"], "", flag_values=fv)


@pytest.mark.parametrize("typed,guess", [("cpuu", "cpu"), ("papr", "paper"), ("zz", None)])
def test_a_misspelt_name_gets_the_choice_it_misspells(typed, guess):
  said = [
      _refusal(cli.parse_flags, _define_enum, [f"--preset={typed}"]),
      _refusal(config_files.load_config, f"configs/icl_regression.py:{typed}"),
  ]
  for text in said:
    assert "choose one of" in text or "should be one of" in text, text
    if guess:
      assert text.count("did you mean") == 1 and f"(did you mean '{guess}'?)" in text, text
    else:
      assert "did you mean" not in text, text


@pytest.mark.parametrize("spec,typed,guess", [
    ("icl_regression.py:cpu", "scal", "'scale'"), ("icl_regression.py:cpu", "sed", "'seeds'"),
    ("icl_regression.py:cpu", "zz", None),
    # the choices' parenthetical is no choice; the @TOPOLOGY given is kept
    ("lm_ladder.py", "laddr@v5e:4x4", "'ladder@v5e:4x4'")])
def test_a_misspelt_sweep_gets_the_sweep_it_misspells(spec, typed, guess):
  text = _refusal(config_files.load_sweep, f"configs/{spec}", typed)
  assert f"unknown sweep '{typed}'" in text
  assert (f"did you mean {guess}?" in text) if guess else "did you mean" not in text, text


@pytest.mark.parametrize("typed,guess", [
    ("configs/icl_regresion.py", "configs/icl_regression.py"),
    ("configs/Lm.py", "configs/lm.py"),  # the case folded
    ("configs/comon.py", None),  # configs/common.py is no config file: not offered
    ("configs/nothing_like_it.py", None)])
def test_a_misspelt_config_file_gets_the_file_beside_it(typed, guess, monkeypatch):
  monkeypatch.chdir(ROOT)
  text = _refusal(config_files.load_config, typed)
  assert f"no such file {typed}" in text
  assert (f"(did you mean {guess}?)" in text) if guess else "did you mean" not in text, text


@pytest.mark.parametrize("typed,guess", [("garg2023", "garg2022"), ("olson2022", "olsson2022"),
                                         ("xyz", None)])
def test_a_misspelt_experiment_name_gets_the_one_it_misspells(typed, guess, tmp_path):
  text = _refusal(reproduce.main, [typed, f"--workdir={tmp_path}"])
  assert text.startswith(f"NAME is '{typed}'")
  assert (f"(did you mean {guess!r}?)" in text) if guess else "did you mean" not in text, text
  assert not any(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.parametrize("typed,guess", [("1bb@v5e:4x4", "1b@v5e:4x4"), ("1B", "1b"),
                                         ("zzzz@v5e:4x4", None)])
def test_a_misspelt_ladder_preset_keeps_its_topology(typed, guess):
  """lm_ladder's choices end '6p9b (pod sizes take @TOPOLOGY, e.g. 1b@v5e:4x4)': the hint
  was 'e.g. 1b@v5e:4x4)'."""
  text = _refusal(config_files.load_config, f"configs/lm_ladder.py:{typed}")
  assert (f"(did you mean '{guess}'?)" in text) if guess else "did you mean" not in text, text


def _define_lists(fv):
  flags.DEFINE_list("pools", [], "", flag_values=fv)
  flags.DEFINE_multi_string("set", [], "", flag_values=fv)


def test_a_value_given_twice_in_a_list_is_refused():
  """raventos2023 --pools=4,4 trained pool 4 twice and schaeffer2023 --sizes=0,0 size 0 twice
  (a doubled point in the figure and the fit), exit 0."""
  text = _refusal(cli.parse_flags, _define_lists, ["--pools=4,64,4"])
  assert text == "--pools=4,64,4 gives '4' more than once; give each value once"
  # olsson2022 --layers=1,01 trained L1 and L01, the same config: numbers compare as numbers
  assert "gives '01' more than once" in _refusal(cli.parse_flags, _define_lists, ["--pools=1,01"])
  # a flag whose empty list means something (reddy2023's --sweeps=) is still checked for this
  assert "gives 'K' more than once" in _refusal(cli.parse_flags, _define_lists, ["--pools=K,K"],
                                                 "", ("pools",))
  # an empty value (`--over=,`) was "gives '' more than once"
  assert _refusal(cli.parse_flags, _define_lists, ["--pools=4,,64"]) == (
      "--pools=4,,64 has an empty value (two commas, or one at an end); give the values, e.g. "
      "--pools=a,b")
  # controls: distinct values, and a multi flag (--set) that is meant to repeat
  fv = cli.parse_flags(_define_lists, ["--pools=4,64", "--set=a=1", "--set=a=1"])
  assert fv.pools == ["4", "64"] and fv.set == ["a=1", "a=1"]


def test_a_global_flag_check_says_its_fix_once():
  """research.aot --topologies=A,A: the check's own fix, not '; see --help' after it."""
  proc = subprocess.run([sys.executable, "-m", "research.aot", "--ladder=configs/lm_ladder.py",
                         "--topologies=v5e:4x4,v5e:4x4"], cwd=ROOT, capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 2, proc.stderr
  assert proc.stderr.strip().splitlines()[-1] == (
      "error: --topologies=v5e:4x4,v5e:4x4 gives 'v5e:4x4' more than once; give each value once")


def test_a_misspelt_boolean_off_switch_is_offered_only_for_a_boolean():
  """--noFLAG turns a boolean off: --nogalery gets --nogallery; a string flag has no --no
  form, so --notopolgy gets the closest flag itself, never '--notopology'."""
  assert _refusal(cli.parse_flags, _define, ["--notopolgy=x"]).startswith(
      "unknown flag --notopolgy (did you mean --topology?)")


def _define_strings(fv):
  flags.DEFINE_string("out", "", "", flag_values=fv)
  flags.DEFINE_string("csv", None, "", flag_values=fv)
  flags.DEFINE_list("sweeps", ["a"], "", flag_values=fv)


def test_an_empty_value_is_refused_where_it_would_read_as_not_given():
  """--csv= (default unset) read as not given: refused. --out= where the default is '' itself
  means what the default means: accepted. A list given empty is refused unless `empty_ok`
  names it (reddy2023's --sweeps=: no sweeps)."""
  assert _refusal(cli.parse_flags, _define_strings, ["--csv="]) == (
      "--csv= is empty; give it a value or drop the flag")
  assert cli.parse_flags(_define_strings, ["--out="]).out == ""
  assert _refusal(cli.parse_flags, _define_strings, ["--sweeps="]) == (
      "--sweeps= is empty; give at least one value or drop the flag")
  assert cli.parse_flags(_define_strings, ["--sweeps="], "", ("sweeps",)).sweeps == []


def test_the_closest_name_ignores_case_and_needs_a_ratio_of_0_6():
  """errors.closest: case folded on both sides (1b misspells the preset 1B), difflib's ratio at
  least 0.6 ('abc' for 'abd' is 0.67; 'ab' for 'ac', 0.5, is no guess)."""
  from research import errors
  assert errors.closest("1b", ["1B", "7B"]) == "1B"
  assert errors.closest("abc", ["abd"]) == "abd"
  assert errors.closest("ab", ["ac"]) is None


def test_a_message_is_one_line():
  """errors.one_line: line breaks, tabs and runs of spaces become one space each."""
  from research import errors
  assert errors.one_line("config.json:\n  line 2\tcolumn  3\n") == "config.json: line 2 column 3"
