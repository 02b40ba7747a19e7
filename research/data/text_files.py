"""Local files a run reads: a UTF-8 corpus (`read_file`) and a CSV of texts and labels
(`read_csv`, `encode_labels`).

Each returns the SHA-256 of the file's bytes with its contents: a run records the digest of the
data it trained on, and a resume on an edited file is refused (research/workdir_vocabulary.py).
A file that cannot be what the config says (missing, not UTF-8, a malformed CSV) raises
InputError naming the file, the line where there is one, and the fix; nothing is decoded with
replacement characters or trained on silently.
"""
from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np

from research.errors import InputError


def _existing_file(path: str, what: str) -> Path:
  p = Path(path).expanduser()
  if not p.is_file():
    raise InputError(f"config.task.path={path!r}: " + ("is a directory" if p.is_dir() else
                     "no such file") + f"; point it at {what}")
  return p


def _read_bytes(path: str, what: str, encoding: str = "utf-8") -> tuple[str, str]:
  """(text, SHA-256 of the file's bytes): a run records the digest of the data it trained
  on; a resume on an edited file is refused (research/workdir_vocabulary.py)."""
  data = _existing_file(path, what).read_bytes()
  try:
    text = data.decode(encoding)
  except UnicodeDecodeError as e:  # decoded with U+FFFD and trained on (a Latin-1 CSV export)
    raise InputError(f"config.task.path={path!r} is not UTF-8 text ({e.reason} at byte "
                     f"{e.start}); save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
  return text, hashlib.sha256(data).hexdigest()


def read_file(path: str) -> tuple[str, str]:
  """(text, SHA-256 of the file's bytes)."""
  text, digest = _read_bytes(path, "a UTF-8 text file")
  if not text.strip():
    raise InputError(f"config.task.path={path!r} is empty; give a text file with the corpus "
                     "to train on")
  return text, digest


def read_csv(path: str, text_column: str,
             label_column: str) -> tuple[list[str], list[str], str]:
  """(texts, label strings, SHA-256 of the file's bytes) of a CSV file with a header row; a
  malformed file raises InputError naming the file, the line and the fix."""
  if text_column == label_column:  # trained on its own labels (test accuracy 1), or on texts
    raise InputError(f"config.task.text_column and config.task.label_column are both "
                     f"{text_column!r}: the model would read its labels; set them to two "
                     "columns of the CSV's header")
  # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name.
  text, digest = _read_bytes(path, "a CSV file with a header row, e.g. text,label", "utf-8-sig")
  where = f"config.task.path={path!r}"
  with io.StringIO(text, newline="") as f:
    # strict: an unbalanced quote is an error, not a field that swallows the rest of the file.
    reader = csv.DictReader(f, strict=True)
    try:
      cols = reader.fieldnames or []
      if not cols:
        raise InputError(f"{where} is empty; a CSV needs a header row ({text_column},"
                         f"{label_column}) and one row per example")
      if len(cols) == 1 and any(sep in cols[0] for sep in "\t;|"):
        # A tab- or semicolon-separated file: "no column 'text'; set text_column" cannot fix it.
        raise InputError(f"{where}: its header is one column, {cols[0]!r}: the file is not "
                         "comma-separated; save it as a CSV, with commas between the fields")
      for c, field in ((text_column, "text_column"), (label_column, "label_column")):
        if c not in cols:
          raise InputError(f"{where} has no column {c!r} (its header: {', '.join(cols)}); set "
                           f"config.task.{field} to one of those or fix the header")
        if cols.count(c) > 1:  # csv would silently keep the last of them
          raise InputError(f"{where}: its header names column {c!r} {cols.count(c)} times; "
                           "rename all but one")
      rows = []
      for r in reader:
        if r[text_column] is None or r[label_column] is None:
          raise InputError(f"{where} line {reader.line_num} has fewer fields than the header; "
                           "fix that row (quote a field that holds a comma)")
        if any(x.strip() for x in r.get(None, [])):  # an unquoted comma shifted the fields
          # (a trailing comma's empty field is no harm)
          raise InputError(f"{where} line {reader.line_num} has more fields than the header; "
                           "quote a field that holds a comma")
        if not r[label_column].strip():
          raise InputError(f"{where} line {reader.line_num} has an empty {label_column!r}; "
                           "give that row its label or remove it")
        if not r[text_column].strip():  # a row of padding, trained on as an example
          raise InputError(f"{where} line {reader.line_num} has an empty {text_column!r}; "
                           "give that row its text or remove it")
        rows.append((r[text_column], r[label_column].strip()))
    except csv.Error as e:
      hint = ("a field is longer than the CSV limit: an unbalanced quote makes the rest of the "
              "file one field, or a text is too long; close the quote or shorten the text"
              if "field limit" in str(e) else
              "an unbalanced or stray quote; quote whole fields and double quotes inside them")
      # csv counts the lines of the rows it returned: the failing row starts on the next one.
      raise InputError(f"{where} line {reader.line_num + 1}: {e}: {hint}") from None
  if not rows:
    raise InputError(f"{where} has a header but no data rows; add one row per example")
  return [r[0] for r in rows], [r[1] for r in rows], digest


def encode_labels(labels: list[str]) -> tuple[np.ndarray, list[str]]:
  """Integer ids and names: numeric labels sort as numbers, others alphabetically."""
  names = sorted(set(labels))
  try:
    names = sorted(names, key=float)
  except ValueError:
    pass
  index = {n: i for i, n in enumerate(names)}
  return np.asarray([index[l] for l in labels], np.int32), names
