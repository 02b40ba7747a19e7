"""The shipped config files. `shipped()` builds each file's default and `tiny` presets once:
research/config_check.py compares a config's task, model and probe fields with theirs, so
that a field no shipped config of the task has (a misspelling) is refused, not ignored.

A file (or one of its two presets) that fails to build is left out with a warning naming
it: one half-written config file had emptied the reference for every task, so that every
run's misspelled fields were ignored without a word."""
import functools
import importlib
from pathlib import Path


@functools.lru_cache(maxsize=1)
def shipped() -> tuple:
  out = []
  for path in sorted(Path(__file__).parent.glob("*.py")):
    if path.name in ("__init__.py", "common.py"):
      continue
    try:
      module = importlib.import_module(f"configs.{path.stem}")
    except Exception as e:  # noqa: BLE001 -- any failure of a user's file: named, left out
      _left_out(path.name, "failed to import", e)
      continue
    for preset in (None, "tiny"):
      try:
        out.append(module.get_config() if preset is None else module.get_config(preset))
      except Exception as e:  # noqa: BLE001
        _left_out(path.name, f"get_config({'' if preset is None else repr(preset)}) raised", e)
  return tuple(out)


def _left_out(name: str, what: str, e: Exception) -> None:
  from absl import logging
  logging.warning("configs/%s: %s %s: %s; its fields are left out of the reference that "
                  "misspelled config fields are checked against (every shipped config's "
                  "default and tiny presets must build)", name, what, type(e).__name__, e)
