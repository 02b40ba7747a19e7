"""research.config_files, in-process: how a config file is found in a FILE[:PRESET] spec, what
its get_config/get_sweep may return, and the one-line refusal each way it can be wrong names.
(tests/test_entry_points.py checks a few of these refusals through the commands' exit codes;
these pin the loader's own behaviour at its edges, fast.)"""
import textwrap

import ml_collections
import pytest

from research import config_files
from research.errors import InputError


def _write(tmp_path, name, body):
  path = tmp_path / name
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(textwrap.dedent(body))
  return path


_DEFAULTED = """
    import ml_collections
    def get_config(preset="cpu"):
      if preset not in ("cpu", "tiny"):
        raise ValueError(f"unknown preset {preset!r}; choose one of: cpu, tiny")
      return ml_collections.ConfigDict({"preset": preset, "width": 8})
    """


def test_an_empty_config_path_is_refused_as_empty_not_as_the_current_directory():
  """Path('') is '.', a directory that exists: the refusal must say the flag was empty."""
  with pytest.raises(InputError, match="--config is empty; pass FILE.py"):
    config_files.load_config_module("")


def test_a_directory_is_refused_naming_it(tmp_path):
  with pytest.raises(InputError, match=r"is a directory; pass a config file in it"):
    config_files.load_config(str(tmp_path))


def test_sys_exit_at_import_is_an_input_error(tmp_path):
  path = _write(tmp_path, "exits.py", "import sys\nsys.exit(3)\n")
  with pytest.raises(InputError, match=r"called sys.exit\(3\) when imported"):
    config_files.load_config(str(path))


def test_only_an_import_error_gets_the_import_path_hint(tmp_path):
  missing = _write(tmp_path, "imports.py", "import no_such_module_for_this_test\n")
  with pytest.raises(InputError, match="raised ModuleNotFoundError when imported.*import path"):
    config_files.load_config(str(missing))
  typo = _write(tmp_path, "typo.py", "x = undefined_name\n")
  with pytest.raises(InputError, match="raised NameError when imported") as e:
    config_files.load_config(str(typo))
  assert "import path" not in str(e.value)


def test_a_misspelt_file_is_offered_only_a_neighbour_that_defines_get_config(tmp_path):
  """A helper module beside the configs is not a config file: no 'did you mean' for it."""
  _write(tmp_path, "helpers.py", "WIDTH = 8\n")
  with pytest.raises(InputError, match="no such file") as e:
    config_files.load_config(str(tmp_path / "helper.py"))
  assert "did you mean" not in str(e.value)
  _write(tmp_path, "regression.py", _DEFAULTED)
  with pytest.raises(InputError, match=r"did you mean .*regression\.py\?"):
    config_files.load_config(str(tmp_path / "regresion.py"))


def test_a_get_config_that_is_not_callable_is_named(tmp_path):
  path = _write(tmp_path, "notfn.py", "get_config = 3\n")
  with pytest.raises(InputError, match="defines no get_config"):
    config_files.load_config(str(path))


def test_no_preset_calls_get_config_with_no_argument(tmp_path):
  """The file's own default preset, not get_config('')."""
  path = _write(tmp_path, "defaulted.py", _DEFAULTED)
  assert config_files.load_config(str(path)).preset == "cpu"
  assert config_files.load_config(f"{path}:tiny").preset == "tiny"


def test_a_preset_refusal_gets_the_preset_it_misspells_and_another_value_error_its_origin(
    tmp_path):
  path = _write(tmp_path, "defaulted.py", _DEFAULTED)
  with pytest.raises(InputError, match=r"unknown preset 'tinny'.* \(did you mean 'tiny'\?\)$"):
    config_files.load_config(f"{path}:tinny")
  bad = _write(tmp_path, "bad.py", """
      def get_config():
        raise ValueError("width must be even")
      """)
  with pytest.raises(InputError, match=r"width must be even \(get_config\(\) raised it; fix"):
    config_files.load_config(str(bad))


def test_a_preset_for_a_file_without_presets_is_named_and_a_missing_one_is_not(tmp_path):
  """'takes no preset; drop :X' only where a preset was given: a get_config that requires one,
  called without, is the file's TypeError."""
  plain = _write(tmp_path, "plain.py", """
      import ml_collections
      def get_config():
        return ml_collections.ConfigDict({"width": 8})
      """)
  with pytest.raises(InputError, match="takes no preset; drop ':tiny'"):
    config_files.load_config(f"{plain}:tiny")
  needs = _write(tmp_path, "needs.py", """
      import ml_collections
      def get_config(preset):
        return ml_collections.ConfigDict({"preset": preset})
      """)
  with pytest.raises(InputError, match=r"get_config\(\) raised TypeError") as e:
    config_files.load_config(str(needs))
  assert "drop" not in str(e.value)


def test_get_config_must_return_a_config_dict(tmp_path):
  path = _write(tmp_path, "plain_dict.py", "def get_config():\n  return {'width': 8}\n")
  with pytest.raises(InputError, match="returned dict, not an ml_collections.ConfigDict"):
    config_files.load_config(str(path))


def test_a_frozen_config_comes_back_mutable_and_locked(tmp_path):
  """Overrides set existing fields (so it must not be frozen) and only those (locked)."""
  path = _write(tmp_path, "frozen.py", """
      import ml_collections
      def get_config():
        return ml_collections.FrozenConfigDict({"width": 8})
      """)
  config = config_files.load_config(str(path))
  assert not isinstance(config, ml_collections.FrozenConfigDict)
  config.width = 16
  assert config.width == 16
  with pytest.raises((AttributeError, KeyError)):
    config.widht = 16


@pytest.mark.parametrize("spec,split", [
    ("nowhere/a.pyx/b.py:tiny", ("nowhere/a.pyx/b.py", ":", "tiny")),  # '.py' ends a name only
    ("nowhere/a.py:b.py", ("nowhere/a.py", ":", "b.py")),  # none a file: up to the first '.py'
])
def test_split_spec_of_files_that_do_not_exist(spec, split):
  assert config_files.split_spec(spec) == split


def test_split_spec_prefers_a_file_ending_in_py_to_a_file_at_a_colon(tmp_path):
  """'a' and 'a:x/my.py' both files: the spec names the .py one, its preset after it."""
  _write(tmp_path, "a", "")
  my = _write(tmp_path, "a:x/my.py", _DEFAULTED)
  assert config_files.split_spec(f"{my}:tiny") == (str(my), ":", "tiny")


def test_a_blank_preset_after_the_colon_is_refused(tmp_path):
  path = _write(tmp_path, "defaulted.py", _DEFAULTED)
  with pytest.raises(InputError, match="no preset after ':'"):
    config_files.load_config(f"{path}: ")


_SWEEPS = """
    def get_sweep(name):
      return {"ok": [{"seed": 0}, {"seed": 1}], "empty": [], "mixed": [{"seed": 0}, 3],
              "twice": [{"seed": 0, "width": 2}, {"seed": 1}, {"width": 2, "seed": 0}]}[name]
    """


@pytest.mark.parametrize("name,match", [
    ("empty", "returned \\[\\]; it must return a non-empty list"),
    ("mixed", "it must return a non-empty list of"),
    ("twice", "gives point 0 and point 2 the same overrides"),  # the same dict in another order
])
def test_a_sweep_must_be_distinct_override_dicts(tmp_path, name, match):
  path = _write(tmp_path, "sweeps.py", _SWEEPS)
  with pytest.raises(InputError, match=match):
    config_files.load_sweep(str(path), name)


def test_a_sweep_comes_back_whole(tmp_path):
  path = _write(tmp_path, "sweeps.py", _SWEEPS)
  assert config_files.load_sweep(str(path), "ok") == [{"seed": 0}, {"seed": 1}]


def test_the_second_of_a_repeated_point_is_named_against_its_first():
  with pytest.raises(InputError, match="gives point 1 and point 2 the same"):
    config_files.refuse_repeated_points([{"a": 0}, {"a": 1}, {"a": 1}], "here")


def test_a_point_key_ignores_the_order_of_its_fields_and_list_or_tuple():
  assert config_files.point_key({"a": 1, "b": (2, 3)}) == config_files.point_key(
      {"b": [2, 3], "a": 1})


def test_a_choice_with_a_parenthetical_is_still_offered(tmp_path):
  """'choose one of: cpu, paper (hours on a pod)': the note is not part of the name."""
  path = _write(tmp_path, "noted.py", """
      def get_config(preset="cpu"):
        raise ValueError(f"unknown preset {preset!r}; choose one of: cpu, paper (hours on a pod)")
      """)
  with pytest.raises(InputError, match=r"\(did you mean 'paper'\?\)"):
    config_files.load_config(f"{path}:papr")
