"""The one config loader: a config file (`configs/X.py[:PRESET]`, or a researcher's own) run
as code, its `get_config(preset)` and `get_sweep(name[, preset=])`, every way they can fail as one
InputError naming the file and the fix. `research.cli` re-exports these names.
"""
from __future__ import annotations

import importlib.util
import json
import inspect
import re
from pathlib import Path

import ml_collections

from research.errors import InputError, closest, one_line


def load_config_module(path_text: str, flag: str = "--config",
                       usage: str = "FILE.py[:PRESET], e.g. configs/icl_regression.py:cpu"):
  """The config file's module, imported by path; every way it can fail is one InputError.
  usage: what the flag takes, for the messages."""
  path = Path(path_text).expanduser()
  example = usage.partition(", ")[2] or usage
  if not path_text:
    raise InputError(f"{flag} is empty; pass {usage}")
  if not path.exists():
    # Run outside the checkout, "configs/x.py" is not found; name the project's own copy.
    project = Path(__file__).resolve().parent.parent
    if not path.is_absolute() and (project / path).is_file():
      raise InputError(f"{flag}: no such file {path_text} in {Path.cwd()}; the project's is "
                       f"{project / path}: pass that path or run from {project}")
    near = closest(path.stem, [p.stem for p in path.parent.glob("*.py") if _is_config(p)]
                   if path.parent.is_dir() else [])
    if near:  # configs/icl_regresion.py: the file beside it that was meant
      raise InputError(f"{flag}: no such file {path_text} (did you mean "
                       f"{path.parent / near}.py?); pass {usage}")
    raise InputError(f"{flag}: no such file {path_text}; pass {usage}")
  if path.is_dir():
    raise InputError(f"{flag}: {path_text} is a directory; pass a config file in it, {example}")
  try:
    source = path.read_text(encoding="utf-8")
    code = compile(source, str(path), "exec")
  except SyntaxError as e:
    raise InputError(f"{flag}: {path_text} line {e.lineno}: syntax error ({e.msg}); fix the "
                     "config file") from None
  except (OSError, UnicodeDecodeError) as e:
    raise InputError(f"{flag}: cannot read {path_text} ({e}); pass a readable config file") from None
  spec = importlib.util.spec_from_file_location(f"_config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  try:
    exec(code, module.__dict__)  # noqa: S102 -- a config file is code by design
  except SystemExit as e:  # sys.exit() at import ended the command with no line (exit 1, 3...)
    raise InputError(f"{flag}: {path_text} called sys.exit({e.code!r}) when imported; a config "
                     "file defines get_config and returns its ConfigDict") from None
  except Exception as e:  # noqa: BLE001 -- anything it raises is the file's fault
    hint = (" (the config file's own directory is not on the import path: put what it imports "
            "in an installed package, or set PYTHONPATH)" if isinstance(e, ImportError) else "")
    raise InputError(f"{flag}: {path_text} raised {type(e).__name__} when imported: "
                     f"{one_line(e)}; fix the config file{hint}") from None
  return module


def _is_config(path: Path) -> bool:
  """A file beside a misspelt one that could be meant: it defines get_config."""
  try:
    return "def get_config" in path.read_text(encoding="utf-8")
  except (OSError, UnicodeDecodeError):
    return False


def config_from_module(module, preset: str, where: str) -> ml_collections.ConfigDict:
  """module.get_config(preset) with its failures (no get_config, unknown preset) as one line."""
  get_config = getattr(module, "get_config", None)
  if not callable(get_config):
    raise InputError(f"{where} defines no get_config(preset); a config file returns its "
                     "ConfigDict from get_config (see configs/icl_regression.py)")
  call = f"get_config({preset!r})" if preset else "get_config()"  # as it was called
  try:
    config = get_config(preset) if preset else get_config()
  except SystemExit as e:  # sys.exit() in a config file would end the command with no line
    raise InputError(f"{where}: {call} called sys.exit({e.code!r}); a config "
                     "file returns its ConfigDict (raise ValueError to refuse a preset)") from None
  except ValueError as e:  # the configs' "unknown preset 'x'; choose one of: ..."
    hint = (_misspelt(preset, e) if "preset" in str(e) else
            f" ({call} raised it; fix the config file)")
    raise InputError(f"{where}: {one_line(e)}{hint}") from None
  except Exception as e:  # noqa: BLE001 -- anything it raises is the file's fault
    if isinstance(e, TypeError) and preset and "positional argument" in str(e):
      raise InputError(f"{where}: this file's get_config takes no preset; drop ':{preset}'"
                       ) from None
    raise InputError(f"{where}: {call} raised {type(e).__name__}: "
                     f"{one_line(e)}; fix the config file or pick another preset") from None
  if not isinstance(config, ml_collections.ConfigDict):
    raise InputError(f"{where}: {call} returned {type(config).__name__}, "
                     "not an ml_collections.ConfigDict")
  if isinstance(config, ml_collections.FrozenConfigDict):
    config = config.as_configdict()  # overrides need a mutable one
  config.lock()  # an override must name an existing field
  return config


def _misspelt(name: str, refusal: Exception) -> str:
  """" (did you mean 'cpu'?)" when a config file's refusal lists its choices in the
  project's words ("...; choose one of: tiny, cpu, paper") and `name` misspells one."""
  listed = re.search(r"choose one of: (.*)$", one_line(refusal))
  if not listed:
    return ""
  # "..., 6p9b (pod sizes take @TOPOLOGY, e.g. 1b@v5e:4x4)", "ladder@TOPOLOGY": the names,
  # and a name's @TOPOLOGY kept as given (1bb@v5e:4x4 -> 1b@v5e:4x4)
  choices = re.sub(r"\s*\([^)]*\)", "", listed.group(1)).split(", ")
  head, at, tail = name.partition("@")
  near = closest(head, {c.partition("@")[0] for c in choices})
  return f" (did you mean {near + at + tail!r}?)" if near else ""


def split_spec(spec: str) -> tuple[str, str, str]:
  """'FILE[:PRESET]' -> (FILE, ':' or '', PRESET). A directory may have ':' in its name
  (runs/exp:2024/my.py) and so may a preset (configs/lm_ladder.py:1b@v5p:4x4x4): the file is
  the first prefix ending in '.py' that is a file, else the first prefix ending at a ':'
  that is one (a config file without .py), else the whole spec. When none is a file, FILE
  is up to the first '.py' (or the whole spec), so that "no such file" names what was meant."""
  spec = str(spec)
  after_py = [m.end() for m in re.finditer(r"\.py(?=:|$)", spec)]
  ends = dict.fromkeys(after_py + [i for i, ch in enumerate(spec) if ch == ":"] + [len(spec)])
  end = next((e for e in ends if Path(spec[:e]).expanduser().is_file()),
             after_py[0] if after_py else len(spec))
  return spec[:end], spec[end:end + 1], spec[end + 1:]


def load_config(spec: str, flag: str = "--config") -> ml_collections.ConfigDict:
  """'configs/X.py[:PRESET]' -> its locked ConfigDict (the one config loader)."""
  path_text, colon, preset = split_spec(spec)
  if colon and not preset.strip():
    # 'FILE.py:' would silently run the file's default preset (often the long cpu one).
    raise InputError(f"{flag}={spec}: no preset after ':'; write {path_text}:PRESET (e.g. "
                     f":tiny) or drop the ':' for the file's default preset")
  module = load_config_module(path_text, flag)
  return config_from_module(module, preset, f"{flag}={spec}")


def _takes_preset(fn) -> bool:
  """Whether get_sweep takes a `preset` keyword: a file whose sweeps only make sense on some
  of its presets (configs/lm_ladder.py's pod ladder) says so by taking it."""
  try:
    return "preset" in inspect.signature(fn).parameters
  except (TypeError, ValueError):
    return False


SEEDS = re.compile(r"seeds:(\d+)")
SEEDS_HINT = "or seeds:N (seeds 0 to N-1, with every config file)"


def seeds_sweep(name: str) -> list[dict] | None:
  """`seeds:N`, the sweep every config file has: seeds 0 to N-1 (values only, so it trains as
  one vmapped ensemble where the task allows). A trial found only the regression config with
  a seeds sweep, and a hand-written config for any other. None for another name."""
  m = SEEDS.fullmatch(name)
  if not m:
    return None
  if not 1 <= int(m.group(1)) <= 100_000:
    raise InputError(f"--sweep={name}: N in seeds:N counts the seeds, 1 or more (and at most "
                     "100,000); e.g. --sweep=seeds:5 runs seeds 0 to 4")
  return [{"seed": s} for s in range(int(m.group(1)))]


def load_sweep(spec: str, name: str, flag: str = "--sweep", *, seeds: bool = False) -> list[dict]:
  """get_sweep(name) of the config file in 'configs/X.py[:PRESET]', or get_sweep(name,
  preset=PRESET) where it takes one (the preset is '' when the spec names none). `seeds`:
  `seeds:N` (seeds_sweep) too, for any file (research.sweep; an experiment's --sweep picks
  among its file's grids, which seeds are not)."""
  path_text, _, preset = split_spec(spec)
  module = load_config_module(path_text, "--config")
  if seeds and (points := seeds_sweep(name)) is not None:  # after the file: a bad one first
    return points
  get_sweep = getattr(module, "get_sweep", None)
  if not callable(get_sweep):
    if seeds:
      raise InputError(f"{flag}={name}: {path_text} defines no get_sweep(name), so its only "
                       "sweep is seeds:N (seeds 0 to N-1); pick a config file that defines "
                       "sweeps (e.g. configs/icl_regression.py) for others")
    raise InputError(f"{flag}={name}: {path_text} defines no get_sweep(name); pick a config "
                     "file that defines sweeps (e.g. configs/icl_regression.py)")
  try:
    sweep = get_sweep(name, preset=preset) if _takes_preset(get_sweep) else get_sweep(name)
  except ValueError as e:  # "unknown sweep 'x'; choose one of: ..."
    hint = f"; {SEEDS_HINT}" if seeds else ""
    raise InputError(f"{flag}={name}: {one_line(e)}{_misspelt(name, e)}{hint}") from None
  except Exception as e:  # noqa: BLE001 -- anything else it raises is the file's fault
    raise InputError(f"{flag}={name}: get_sweep({name!r}) in {path_text} raised "
                     f"{type(e).__name__}: {one_line(e)}; fix the config file") from None
  if (not isinstance(sweep, (list, tuple)) or not sweep
      or not all(isinstance(o, dict) for o in sweep)):
    raise InputError(f"{flag}={name}: get_sweep({name!r}) in {path_text} returned "
                     f"{one_line(repr(sweep))[:80]}; it must return a non-empty list of "
                     "{'field.path': value} dicts, one per run")
  refuse_repeated_points(sweep, f"{flag}={name}: get_sweep({name!r}) in {path_text}")
  return list(sweep)


def point_key(point) -> str:
  """A sweep point's overrides as one comparable string (the same whether its tuples are
  tuples or, read back from results.jsonl, lists)."""
  return json.dumps(point, sort_keys=True, default=str)


def refuse_repeated_points(points, where: str) -> None:
  """The same run twice would take twice the time and give a doubled row (a point counted
  twice in a fit); `where` names what gave the points."""
  seen = {}
  for i, point in enumerate(points):
    key = point_key(point)
    if key in seen:
      raise InputError(f"{where} gives point {seen[key]} and point {i} the same overrides "
                       f"({one_line(repr(point))[:80]}); remove one, or give them different "
                       "seeds to train replicates")
    seen[key] = i
