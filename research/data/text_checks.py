"""What a researcher's own labelled text can hold that trains without error and misleads.

Each function returns the warning to log, or None; text_classification logs them when it
reads its data (every start, resume and probe), so they stand next to the numbers they
qualify. A trial found each one silent:
- a typo'd label (`nodigt` beside `nodigit`) became a third class of one row: a 3-way head,
  no ROC, and at some seeds a refusal (the row fell in the test split), at others none;
- texts longer than seq_len - 1 tokens were cut where the label-bearing end was (accuracy
  at chance, while research.predict warned for the same texts);
- a file of rows repeated three times put all 90 test texts in the training split too, so
  the held-out accuracy measured memorisation.
"""
from __future__ import annotations

import difflib
from collections import Counter

import numpy as np

FEW_ROWS = 5  # a class with fewer rows can be neither learnt nor tested


def _number(name: str) -> float | None:
  try:
    return float(name)
  except ValueError:
    return None


def _same_label(a: str, b: str) -> bool:
  """Two names a person would read as one label: case, surrounding spaces, 1 and 1.0."""
  return a.strip().casefold() == b.strip().casefold() or (
      _number(a) is not None and _number(a) == _number(b))


def few_row_classes(where: str, names: list[str], labels: np.ndarray) -> str | None:
  """Classes of fewer than FEW_ROWS rows, each with the label it looks like a typo of."""
  counts = np.bincount(labels, minlength=len(names))
  rare = [i for i in np.argsort(counts, kind="stable") if counts[i] < FEW_ROWS]
  if not rare:
    return None
  said = []
  for i in rare[:5]:
    others = [n for j, n in enumerate(names) if j != i and counts[j] >= counts[i]]
    like = [n for n in others if _same_label(names[i], n)] or (
        [] if _number(names[i]) is not None else difflib.get_close_matches(names[i], others, n=1, cutoff=0.6))
    said.append(f"{names[i]!r} ({counts[i]} row{'' if counts[i] == 1 else 's'}"
                + (f"; a typo of {like[0]!r}?)" if like else ")"))
  return (f"{where}: class {', '.join(said)} of {len(labels)} rows: under {FEW_ROWS} rows a "
          "class is neither learnt nor tested, and it is a class of its own in the model's "
          "head and every metric; correct the label, or add rows of that class")


def truncated(where: str, lengths_train: list[int], lengths_test: list[int],
              seq_len: int) -> str | None:
  """Texts longer than the seq_len - 1 tokens the model reads (text.pad_rows)."""
  keep = seq_len - 1
  cut_train = sum(n > keep for n in lengths_train)
  cut_test = sum(n > keep for n in lengths_test)
  if not cut_train and not cut_test:
    return None
  longest = max([*lengths_train, *lengths_test])
  return (f"{where}: {cut_train} of {len(lengths_train)} training and {cut_test} of "
          f"{len(lengths_test)} test texts are longer than the {keep} tokens the model reads "
          f"(config.task.seq_len={seq_len}; the longest has {longest}): only their first "
          f"{keep} tokens count, in training and in every metric; raise config.task.seq_len "
          "if the label depends on the rest")


def test_texts_in_training(where: str, train: list[str], test: list[str],
                           own_file: bool = True) -> str | None:
  """Test rows whose text the training split holds too (repeated rows of a merged file, or a
  dataset whose splits share texts: `own_file` False)."""
  seen = set(train)
  shared = Counter(t for t in test if t in seen)
  if not shared:
    return None
  n = sum(shared.values())
  fix = ("remove the repeats from the file" if own_file else
         "its splits share them; read its test accuracy with that in mind")
  return (f"{where}: {n} of {len(test)} test texts are in the training split too (e.g. "
          f"{_short(next(iter(shared)))!r}): test accuracy partly measures memorised rows; {fix}")


def _short(text: str, limit: int = 40) -> str:
  return text if len(text) <= limit else text[:limit] + "..."
