"""The collectives of a compiled program, read from its HLO text: research.aot's plan counts
each all-gather, reduce-scatter, all-reduce, all-to-all and collective-permute once, with the
bytes it returns per chip, however many fusions XLA:TPU writes it in.
"""
from __future__ import annotations

import math
import re

COLLECTIVES = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")
_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "f8e4m3fn": 1, "f8e5m2": 1, "bf16": 2, "f16": 2,
                "s16": 2, "u16": 2, "f32": 4, "s32": 4, "u32": 4, "f64": 8, "s64": 8, "u64": 8,
                "c64": 8, "c128": 16}
# `%name = TYPE op(` where TYPE is one array type or a tuple of them; async pairs are
# counted at their -start, whose TYPE for these two holds the operand before the result
# (XLA:TPU's collective-permute-start: (operand, result, u32[], u32[])).
_START_RESULT = {"all-gather": 1, "collective-permute": 1}
_COLLECTIVE_RE = re.compile(r"=\s*(\(.*?\)|\S+)\s+(" + "|".join(COLLECTIVES) + r")(-start)?\(")
_CHANNEL_RE = re.compile(r"\bchannel_id=([0-9]+)")
# A computation's header, `%name (params) -> RESULT {`.
_COMPUTATION_RE = re.compile(r"^(%\S+|ENTRY \S+) \(.*\) -> (.*) \{$")
_ARRAY_RE = re.compile(r"([a-z]+[0-9]*(?:e[0-9]m[0-9][a-z]*)?)\[([0-9,]*)\]")


def _array_bytes(type_text: str) -> int:
  total = 0
  for dtype, dims in _ARRAY_RE.findall(type_text):
    if dtype in _DTYPE_BYTES:
      total += _DTYPE_BYTES[dtype] * math.prod(int(d) for d in dims.split(",") if d)
  return total


def _tuple_items(type_text: str) -> list[str]:
  """The top-level elements of a tuple type '(a, (b, c), d[1,2]{1,0:T(8,128)})'; [type_text]
  for an array type."""
  if not type_text.startswith("("):
    return [type_text]
  items, depth, start = [], 0, 1
  for i, ch in enumerate(type_text):
    if ch in "([{":
      depth += 1
    elif ch in ")]}":
      depth -= 1
    if (ch == "," and depth == 1) or depth == 0:
      items.append(type_text[start:i].strip())
      start = i + 1
    if depth == 0:
      break
  return items


def _result_type(type_text: str, op: str, start: str) -> str:
  """The result part of a collective's type: an async -start's operand is no result."""
  if start and op in _START_RESULT:
    items = _tuple_items(type_text)
    if len(items) > _START_RESULT[op]:
      return items[_START_RESULT[op]]
  return type_text


def collectives(hlo_text: str) -> dict:
  """{op: {"count", "bytes"}} of the collectives in an HLO module (result sizes, per chip).

  Counted where they appear in the program: an op inside a loop body (scanned layers,
  microbatches, steps per call) counts once. One collective is counted once however many
  computations it is written in: XLA:TPU splits an async all-gather into a start fusion,
  continuation fusions that advance it beside other work, and a done fusion, each holding
  a copy of the op with the collective's channel_id and shapes (410m@v5e:4x4: 4 all-gathers
  written 12 times, 0.11 GB read as 0.45 GB; the tiny LM with fsdp=4 on v5e:2x2: 26 written
  62 times). The shapes are part of the key because a channel_id is not unique across
  computations (that plan's loss all-reduce and its gradient all-reduce both carry 1);
  a collective XLA really duplicates (a loop unrolled) gets a new channel_id.
  """
  out = {op: {"count": 0, "bytes": 0} for op in COLLECTIVES}
  seen, scatter_result = set(), None
  for line in hlo_text.splitlines():
    header = _COMPUTATION_RE.match(line)
    if header:
      # XLA:TPU writes a reduce-scatter (FSDP's gradients) as an all-reduce of the whole
      # arrays sliced to this chip's shard, inside a fusion it names all-reduce-scatter, and
      # runs it as one reduce-scatter: counted as that, with the shards' bytes it returns
      # (the tiny LM with fsdp=4 on v5e:2x2 read all-reduce, 4x the bytes, no reduce-scatter).
      scatter_result = (header.group(2) if header.group(1).startswith("%all-reduce-scatter")
                        else None)
    for type_text, op, start in _COLLECTIVE_RE.findall(line):
      type_text = _result_type(type_text, op, start)
      if op == "all-reduce" and scatter_result is not None:
        op, type_text = "reduce-scatter", scatter_result
      channel = _CHANNEL_RE.search(line)
      if channel:  # a copy's layout may differ ({1,0} / {1,0:...S(1)}), its shapes do not
        key = (op, channel.group(1), tuple(_ARRAY_RE.findall(type_text)))
        if key in seen:
          continue
        seen.add(key)
      out[op]["count"] += 1
      out[op]["bytes"] += _array_bytes(type_text)
  return out
