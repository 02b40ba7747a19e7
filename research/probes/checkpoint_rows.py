"""What a row of research.probe_checkpoints (probes/checkpoints.jsonl) says, in a console
line and in the flat scalars research.results tables: the ICL score with its standard error
and window count, the top prefix-matching head against uniform attention, and how many
few-shot cells are above chance. No JAX: research.results reads rows without it."""
from __future__ import annotations


def top_prefix_head(row: dict) -> tuple[str, float] | None:
  """(name, score) of the head with the highest prefix-matching score; None without heads
  (an LSTM)."""
  heads = row.get("heads") or {}
  if not heads:
    return None
  name = max(heads, key=lambda h: heads[h]["prefix"])
  return name, float(heads[name]["prefix"])


def few_shot_cells(row: dict) -> list[dict]:
  """The row's few-shot cells with k >= 1 (k = 0 has no example in its context); JSON keys
  are strings, a row still in memory has int keys."""
  return [cell for by_k in (row.get("few_shot") or {}).values()
          for k, cell in by_k.items() if str(k) != "0"]


def above_chance(cell: dict) -> bool:
  """Exact match's whole 95% interval above its chance level (few_shot.above_chance on a
  row's [mean, lo, hi] form)."""
  return cell["exact_match"][1] > cell["chance"]["exact_match"]


def console_line(row: dict) -> str:
  """One checkpoint's row in a line; a probe that found nothing says so here too (a trial:
  heads at the uniform level and no cell above chance, while the console printed only the
  loss and the ICL score)."""
  line = (f"step {row['step']}: loss {row['loss']:.4f}, ICL score {row['icl_score']:+.4f} "
          f"+- {row['icl_score_se']:.4f} (token {row['late']} minus token {row['early']}, "
          f"{row['num_windows']} windows)")
  if top := top_prefix_head(row):
    line += (f"; top prefix-matching head {top[0]} {top[1]:.3f} (uniform attention "
             f"{row['prefix_baseline']:.3f})")
  if cells := few_shot_cells(row):
    line += (f"; few-shot cells (k >= 1) with exact match above chance: "
             f"{sum(map(above_chance, cells))} of {len(cells)}")
  return line


SCALARS = ("step", "loss", "icl_score", "icl_score_se", "num_windows",
           "prefix_baseline")


def summary(row: dict) -> dict:
  """The flat scalars of one row (research.results' `probes.checkpoints.*` columns)."""
  out = {k: row[k] for k in SCALARS if isinstance(row.get(k), (int, float))}
  if top := top_prefix_head(row):
    out["prefix_top_head"], out["prefix_top"] = top
  if cells := few_shot_cells(row):
    out["few_shot_cells"] = len(cells)
    out["few_shot_above_chance"] = sum(map(above_chance, cells))
  return out
