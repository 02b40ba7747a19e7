"""The shipped config files. `shipped()` builds each file's default and `tiny` presets once:
research/config_check.py compares a config's task, model and probe fields with theirs, so
that a field no shipped config of the task has (a misspelling) is refused, not ignored."""
import functools
import importlib
from pathlib import Path


@functools.lru_cache(maxsize=1)
def shipped() -> tuple:
  out = []
  for path in sorted(Path(__file__).parent.glob("*.py")):
    if path.name in ("__init__.py", "common.py"):
      continue
    module = importlib.import_module(f"configs.{path.stem}")
    out += [module.get_config(), module.get_config("tiny")]
  return tuple(out)
