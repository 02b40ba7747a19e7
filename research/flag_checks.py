"""Checks of a command's absl flags beyond absl's own, in the project's words (research/cli.py
applies them to every command): a flag given more than once, an empty list or path, a value
given twice in a list, a mistyped flag name or enum value (research.errors.closest)."""
from __future__ import annotations

import re
from typing import Iterable

from absl import flags

from research.errors import InputError, closest, one_line


def given_repeatedly(flag: str, times: int, values: Iterable[str] = (), hint: str = ""
                     ) -> InputError:
  """The one wording for a flag given more than once, whichever command parses it."""
  shown = f" ({', then '.join(map(repr, values))})" if values else ""
  return InputError(f"{flag} is given {times} times{shown}, and only the last would count; "
                    f"give it once{hint}")


def require(given: dict[str, object]) -> None:
  """InputError naming the required flags (FLAG=WHAT: value) left out, not the whole list:
  "--config, --sweep and --workdir are required" sent a user who gave two to look for which."""
  missing = [flag for flag, value in given.items() if value is None]  # "" has its own line
  if missing:
    flags_ = list(given)
    needs = flags_[0] if len(flags_) == 1 else ", ".join(flags_[:-1]) + " and " + flags_[-1]
    raise InputError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing; "
                     f"the command needs {needs}")


def check_list_values(fv: flags.FlagValues, empty_ok: Iterable[str] = ()) -> None:
  """A list flag given as `--sizes=` parses to [], which would read as "the default";
  `empty_ok` names the flags where an empty list means something (reddy2023's --sweeps=).
  So does a string flag whose default is None (unset) given as `--csv=` (an unset shell
  variable, most often): it was read as not given (no CSV written, the default --out).
  --workdir= is left to check_workdir, which names its own fix. A value given twice in a
  list (`--pools=4,4`, `--sizes=0,0`) trained the same run twice, a doubled point in the
  figure and the fit: refused (a multi flag, --set or --text, may repeat)."""
  for name in list(fv):
    flag = fv[name]
    if not flag.present or name != flag.name:
      continue
    if isinstance(flag.value, list) and not flag.value and name not in empty_ok:
      raise InputError(f"--{name}= is empty; give at least one value or drop the flag")
    if isinstance(flag.value, list) and not isinstance(flag, flags.MultiFlag):
      if any(str(v).strip() == "" for v in flag.value):  # `--over=,`, `--sizes=0,,1`
        raise InputError(f"--{name}={','.join(map(str, flag.value))} has an empty value "
                         "(two commas, or one at an end); give the values, e.g. "
                         f"--{name}=a,b")
      keys = [_as_number(v) for v in flag.value]  # 1 and 01 are one layer count
      twice = [v for i, v in enumerate(flag.value) if keys[i] in keys[:i]]
      if twice:
        raise InputError(f"--{name}={','.join(map(str, flag.value))} gives {twice[0]!r} more "
                         "than once; give each value once")
    if flag.value == "" and flag.default is None and name not in ("workdir", *empty_ok):
      raise InputError(f"--{name}= is empty; give it a value or drop the flag")


def _as_number(value):
  """A list value as the number it names (`01` is 1), else as given."""
  try:
    return float(value)
  except (TypeError, ValueError):
    return value


def refuse_repeated(fv: flags.FlagValues) -> None:
  """A flag given twice keeps its last value and drops the first unread: research.aot
  --ladder=... --topologies=v5e:4x4 --topologies=v5p:4x4x4 planned v5p:4x4x4 alone (exit 0,
  the table one slice short), --topology=v5p:4x4x4 --topology=v5e:4x4 planned v5e. A multi
  flag (--set a=1 --set b=2) is meant to repeat."""
  for name in list(fv):
    flag = fv[name]
    if name != flag.name or isinstance(flag, flags.MultiFlag) or flag.present < 2:
      continue
    hint = (f" (a list takes every value at once: --{name}=A,B)"
            if isinstance(flag.value, list) else "")
    raise given_repeatedly(f"--{name}", flag.present, hint=hint)


# The experiment scripts' flags (experiments/common.py) as a command that takes --config spells
# them: a user coming from `python -m experiments.NAME --steps=...` types those.
_CONFIG_SPELLINGS = {"steps": "--config.train.num_steps=N", "seed": "--config.seed=N",
                     "preset": "--config=FILE:PRESET"}


def flag_error(e: Exception, fv: flags.FlagValues) -> str:
  """absl's "Unknown command line flag 'topolgy'. Did you mean: topologies, topology ?" in
  the project's words, the closest flag first: "unknown flag --topolgy (did you mean
  --topology?)". Other errors as they are, on one line."""
  if not isinstance(e, flags.UnrecognizedFlagError):
    # absl's "flag --preset=cpuu: value should be one of <tiny|cpu|paper>": add the hint
    enum = re.match(r"flag --[\w.]+=(.*): value should be one of <(.*)>$", one_line(e))
    near = closest(enum.group(1), enum.group(2).split("|")) if enum else None
    return one_line(e) + (f" (did you mean {near!r}?)" if near else "")
  name = e.flagname
  # The command's own flags: absl's (--log_dir, --verbosity, ...) would be odd advice.
  ours = {f.name: f for module, fs in fv.flags_by_module_dict().items()
          if not module.startswith("absl") for f in fs}
  if name in _CONFIG_SPELLINGS and "config" in ours:  # "did you mean --sweep?" for --steps
    return (f"unknown flag --{name}; this command sets it in the config: "
            f"{_CONFIG_SPELLINGS[name]} (--{name} is the experiment scripts' flag)")
  near = closest(name, ours)
  if name.startswith("no"):  # --noFLAG turns a boolean off: suggest it the same way
    off = closest(name[2:], [n for n, f in ours.items() if isinstance(f, flags.BooleanFlag)])
    near = f"no{off}" if off else near
  return f"unknown flag --{name}" + (f" (did you mean --{near}?)" if near else "")
