"""The helpers every config check uses (research/config_check.py and each task's
`check_config`): one error class and one wording for "choose one of" and "must be positive".

Each task checks its own `config.task` fields in a `check_config(cfg)` static method, which
config_check calls through the task registry, so a new task needs no edit there.
"""
from __future__ import annotations

import contextlib
import contextvars
import math

from research.errors import InputError


class ConfigError(InputError):
  pass


def choice(cfg, section: str, field: str, valid) -> None:
  value = cfg[section][field]
  if value not in valid:
    raise ConfigError(f"config.{section}.{field}={value!r} is not valid; choose one of: "
                      + ", ".join(map(str, valid)))


def _number(section: str, field: str, value) -> None:
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise ConfigError(f"config.{section}.{field}={value!r} must be a number (it is a "
                      f"{type(value).__name__}); write it without quotes")


def integer(cfg, section: str, *fields: str) -> None:
  """Fields that size arrays or count steps: 4.0 would fail deep inside JAX."""
  for field in fields:
    value = cfg[section][field]
    _number(section, field, value)
    if not isinstance(value, int):
      raise ConfigError(f"config.{section}.{field}={value!r} must be an integer; write "
                        f"{int(value) if math.isfinite(value) else 1}")


# The largest step count or size: steps (TrainState.step, the schedule's count) and array
# sizes are int32 on the device, and a larger Python int passed every check, then failed at
# the first call (an OverflowError traceback, exit 1).
INT32_MAX = 2 ** 31 - 1


def positive(cfg, section: str, *fields: str, allow_zero: bool = False,
             at_most: int | None = None) -> None:
  for field in fields:
    value = cfg[section][field]
    _number(section, field, value)
    if not math.isfinite(value):
      raise ConfigError(f"config.{section}.{field}={value!r} must be a finite number")
    if value < 0 or (value == 0 and not allow_zero):
      raise ConfigError(f"config.{section}.{field}={value!r} must be "
                        + ("non-negative" if allow_zero else "positive"))
    if at_most is not None and value > at_most:
      why = " (2**31 - 1: steps and sizes are int32 on the device)" if at_most == INT32_MAX else ""
      raise ConfigError(f"config.{section}.{field}={value!r} is too large; it must be at most "
                        f"{at_most}{why}")


def check_text_task(cfg, sources, tokenizers) -> None:
  """Fields shared by the text tasks (research/tasks/lm.py, text_classification.py)."""
  from research.data import text as text_lib
  t = cfg.task
  choice(cfg, "task", "source", sources)
  choice(cfg, "task", "tokenizer", tokenizers)
  choice(cfg, "task", "placement", text_lib.PLACEMENTS)
  if t.seq_len < 2:
    raise ConfigError(f"config.task.seq_len={t.seq_len} must be at least 2")
  if t.source in ("file", "csv") and not t.path:
    raise ConfigError(f"config.task.source={t.source!r} needs config.task.path=FILE")
  if t.source == "tfds" and not t.dataset:
    raise ConfigError("config.task.source='tfds' needs config.task.dataset=NAME")
  if cfg.model.name not in ("transformer", "lstm"):
    raise ConfigError(f"config.model.name={cfg.model.name!r} is not valid for "
                      f"task.name={t.name!r}; choose one of: lstm, transformer")
  if init_from := cfg.get("init_from", ""):  # refused before its data are read
    from research import init_from as init_from_lib
    init_from_lib.check_init_from(init_from)
  _data_file(cfg)


_READ_DATA = contextvars.ContextVar("read_data", default=True)


@contextlib.contextmanager
def data_files_unread():
  """Checks inside it leave the task's data file alone: a saved run's config is checked
  for research.predict, which rebuilds the task from the run's saved vocabulary (the data
  may have moved since training)."""
  token = _READ_DATA.set(False)
  try:
    yield
  finally:
    _READ_DATA.reset(token)


def _data_file(cfg) -> None:
  """A text or CSV file the task reads is read now: its errors (missing, empty, a missing
  column, one class, a broken quote) end the command before the workdir is touched."""
  from research.data import text as text_lib, text_files
  if not _READ_DATA.get():
    return
  t = cfg.task
  try:
    if t.source == "file":
      text_files.read_file(t.path)
    elif t.source == "stdlib":
      text_lib.stdlib_files(t.path)
    elif t.source == "csv":
      _, labels, _ = text_files.read_csv(t.path, t.text_column, t.label_column)
      if len(set(labels)) < 2:
        raise InputError(f"config.task.path={t.path!r}: every row has the label {labels[0]!r} "
                         f"(column {t.label_column!r}); a classifier needs at least 2 classes")
  except InputError as e:
    raise ConfigError(str(e)) from None
