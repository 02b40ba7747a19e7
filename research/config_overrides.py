"""The one dotted-override setter: `apply_overrides(config, {"a.b": value})` for
`--config.a.b=v` flags, sweep points, ensemble members and experiment scripts' `--set a.b=v`
(research/cli.py re-exports it beside the config loader). Errors are InputError lines that
name the closest existing field or the type the field holds."""
from __future__ import annotations

import ast
import copy
import difflib
import numbers
from typing import Iterable

import ml_collections

from research.errors import InputError


def leaf_paths(node, prefix: str = "") -> list[str]:
  """Every dotted path in `node`, its sections' as well as its fields'."""
  return [path for k, v in node.items() for path in [prefix + k] + (
      leaf_paths(v, f"{prefix}{k}.") if isinstance(v, ml_collections.ConfigDict) else [])]


def abbreviated(key: str, paths: Iterable[str]) -> list[str]:
  """The paths of `key`'s section whose last name `key`'s abbreviates by its words' initials
  (optim.lr: optim.learning_rate), which no spelling distance finds (it offered optim.b2)."""
  section, _, last = key.rpartition(".")
  return [p for p in paths if len(last) >= 2 and p.rpartition(".")[0] == section
          and "".join(w[0] for w in p.rpartition(".")[2].split("_") if w) == last.lower()]


def did_you_mean(key: str, paths: Iterable[str]) -> str:
  """"did you mean 'a.b'?" for an unknown dotted `key` among the known `paths`, or "": the
  right name in another section (train.seed for seed) beats a close spelling. The one hint
  for an override and for a config file's own field (research/config_check.py)."""
  paths = list(paths)
  last = key.rsplit(".", 1)[-1]
  same = [p for p in paths if p.rsplit(".", 1)[-1] == last and p != key]
  close = difflib.get_close_matches(key, same, n=1, cutoff=0) or abbreviated(key, paths) or \
      difflib.get_close_matches(key, paths, n=1, cutoff=0.6)
  return f"did you mean {close[0]!r}?" if close else ""


def _unknown(config, key: str, part: str, where: str) -> InputError:
  hint = did_you_mean(key, leaf_paths(config))
  return InputError(f"unknown config field {part!r} in {where}{'; ' + hint if hint else ''} "
                    "(the config file lists every field, each with a comment)")


_BOOLS = {"true": True, "1": True, "yes": True, "on": True,
          "false": False, "0": False, "no": False, "off": False}


def _literal(text: str):
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def _from_text(current, text: str):
  """A command-line string as the type of the field it overrides."""
  if isinstance(current, bool):
    return _BOOLS[text.strip().lower()]
  if isinstance(current, (int, float)):
    return type(current)(text.strip())
  if isinstance(current, (tuple, list)):
    parsed = _literal(text) if text.strip() else ()
    if isinstance(parsed, str) and "," in parsed:  # a,b,c without brackets
      parsed = tuple(_literal(v.strip()) for v in parsed.split(","))
    return parsed if isinstance(parsed, (tuple, list)) else (parsed,)
  return text if isinstance(current, str) else _literal(text)


def coerce(current, value):
  """`value` as the type the field holds (an int where a float is held is fine, numpy
  numbers too); TypeError if it is not one."""
  if current is None:
    return value
  if isinstance(value, bool) != isinstance(current, bool):
    raise TypeError(value)
  if isinstance(current, int) and not isinstance(current, bool):
    if not isinstance(value, numbers.Integral):
      raise TypeError(value)
    return int(value)
  if isinstance(current, float):
    if not isinstance(value, numbers.Real):
      raise TypeError(value)
    return float(value)
  if isinstance(current, (tuple, list)) and isinstance(value, (tuple, list)):
    return type(current)(value)
  if not isinstance(value, type(current)):
    raise TypeError(value)
  return value


def type_name(current) -> str:
  if isinstance(current, (tuple, list)):
    return f"a {type(current).__name__} such as (1, 2)"
  return {bool: "a bool (true/false)", int: "an int", float: "a float",
          str: "a string"}.get(type(current), type(current).__name__)


def apply_overrides(config, overrides: dict, *, text: bool = False, flag: str = "",
                    where: str = "override") -> ml_collections.ConfigDict:
  """A copy of `config` with each dotted field 'a.b.c' set (the one override setter).

  `text=True`: the values are command-line strings, parsed as the field's type
  (`flag` + key=value names the argument in errors); otherwise Python values of the
  field's type (an int where a float is held is accepted). An unknown field names the
  closest existing one; a wrong type names the type the field holds. FieldReference links
  are kept within the copy: an override of a linked field updates the fields computed
  from it (as ml_collections' config flags did), and never reaches `config`.
  """
  cfg = copy.deepcopy(config)
  for key, value in overrides.items():
    arg = f"{flag}{key}={value}" if text else f"{where} {key}={value!r}"
    node = cfg
    *path, last = str(key).split(".")
    for part in path:
      if not isinstance(node, ml_collections.ConfigDict) or part not in node:
        raise _unknown(cfg, key, part, arg)
      node = node[part]
    if not isinstance(node, ml_collections.ConfigDict) or last not in node:
      raise _unknown(cfg, key, last, arg)
    current = node[last]
    if isinstance(current, ml_collections.ConfigDict):
      raise InputError(f"{arg}: config.{key} is a section, not a field; set one of its "
                       f"fields, e.g. {key}.{next(iter(current.keys()), 'FIELD')}=VALUE")
    try:
      node[last] = coerce(current, _from_text(current, value) if text else value)
    except (TypeError, ValueError, KeyError):
      raise InputError(f"{arg}: config.{key} holds {type_name(current)}; give a value of "
                       "that type") from None
  return cfg


def refuse_replaced(given: Iterable[str], points: Iterable[dict], flag: str, by: str) -> None:
  """Overrides the user gave (`flag`KEY=...) that a sweep's points set again would be
  replaced in every run, silently: refused, naming both. A key clashes with a point's key
  when they are equal or one is a section of the other (model vs model.width)."""
  set_by_points = sorted({k for p in points for k in p})
  for key in given:
    for other in set_by_points:
      if key == other or key.startswith(other + ".") or other.startswith(key + "."):
        raise InputError(f"{flag}{key}: {by} sets {other} in every run, so this override "
                         f"would be replaced; drop it, or pick a sweep that does not set {other}")
