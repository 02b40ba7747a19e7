"""The collectives of a compiled program, read from its HLO text: research.aot's plan counts
each all-gather, reduce-scatter, all-reduce, all-to-all and collective-permute once, with the
bytes it returns per chip, however many fusions XLA:TPU writes it in; and, through the loops
that hold it (steps per call, microbatches, scanned layers, XLA:TPU's windowed matmuls), how
often it runs in a call and the bytes a chip receives for it; and the plan's comms/step line:
those bytes per step and the least time they take over the chip's ICI.
"""
from __future__ import annotations

import collections
import math
import re

from research.hardware import bytes_text

MFUS = (0.4, 0.6)  # the roofline's model-FLOPs utilisations

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
_COMPUTATION_RE = re.compile(r"^(?:ENTRY )?(%?\S+) \(.*\) -> (.*) \{$")
_ARRAY_RE = re.compile(r"([a-z]+[0-9]*(?:e[0-9]m[0-9][a-z]*)?)\[([0-9,]*)\]")
# Calls between computations: a while runs its body once per trip; the others run a callee
# once per call (a conditional's branches are counted as if each ran: an upper bound).
_WHILE_RE = re.compile(r"\swhile\(.*?condition=(%?[\w.\-]+), body=(%?[\w.\-]+)")
_KNOWN_TRIPS_RE = re.compile(r'"known_trip_count":\{"n":"([0-9]+)"')
_CALL_RE = re.compile(r"\b(?:calls|to_apply|true_computation|false_computation)=(%?[\w.\-]+)")
_CALL_LIST_RE = re.compile(r"\b(?:branch_computations|called_computations)=\{([^}]*)\}")
_INT_CONSTANT_RE = re.compile(r"^\s*(%\S+) = [su](?:8|16|32|64)\[\]\S* constant\(([0-9]+)\)")
_LOOP_TEST_RE = re.compile(r"ROOT \S+ = pred\[\]\S* compare\((%[\w.\-]+), (%[\w.\-]+)\), direction=LT")
_DEFINITION_RE = re.compile(r"^\s*(ROOT )?(%[\w.\-]+) = ")
# Who takes part: mesh['axis_0'=4,'axis_1'=1] {'axis_0'} | {{0,1,2,3},{4,5,6,7}} | [2,4]<=[8]
_MESH_GROUPS_RE = re.compile(r"replica_groups=mesh\[([^\]]*)\] \{([^}]*)\}")
_LIST_GROUPS_RE = re.compile(r"replica_groups=\{\{([0-9,]*)\}")
_IOTA_GROUPS_RE = re.compile(r"replica_groups=\[[0-9]+,([0-9]+)\]<=")


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


def _computations(hlo_text: str) -> tuple[str | None, dict[str, list[str]]]:
  """The entry computation's name and each computation's instruction lines."""
  comps, name, entry = {}, None, None
  for line in hlo_text.splitlines():
    header = _COMPUTATION_RE.match(line)
    if header:
      name = header.group(1)
      comps[name] = []
      entry = name if line.startswith("ENTRY ") else entry
    elif name is not None:
      comps[name].append(line)
  return entry, comps


def _definitions(lines: list[str]) -> dict[str, str]:
  """A computation's instructions by name ('%add.1' -> its line); the root also as 'ROOT'."""
  out = {}
  for line in lines:
    m = _DEFINITION_RE.match(line)
    if m:
      out[m.group(2)] = line
      if m.group(1):
        out["ROOT"] = line
  return out


def _through_copies(defs: dict[str, str], name: str) -> str:
  """The instruction's line, past the copies and bitcasts in front of it (8 at most)."""
  line = defs.get(name, "")
  for _ in range(8):
    source = re.search(r"\s(?:copy|bitcast)\((%[\w.\-]+)\)", line)
    if not source:
      break
    line = defs.get(source.group(1), "")
  return line


def _constant(defs: dict[str, str], name: str) -> int | None:
  """The integer an instruction holds, through copies and bitcasts of a constant; None if
  it is anything else."""
  value = _INT_CONSTANT_RE.match(_through_copies(defs, name))
  return int(value.group(2)) if value else None


def _operands(line: str, op: str) -> list[str]:
  """The operand names of `op(...)` on an instruction line."""
  call = re.search(r"\s" + re.escape(op) + r"\(([^)]*)\)", line)
  return re.findall(r"%[\w.\-]+", call.group(1)) if call else []


def _trip_count(while_line: str, caller: dict[str, str], condition: dict[str, str],
                body: dict[str, str]) -> int | None:
  """How often a while loop runs its body: XLA's known_trip_count where it writes one, else
  read off the loop as JAX's scans and fori_loops and XLA:TPU's windowed matmuls write it:
  the condition tests `i < N` (N a constant, i an element of the loop's tuple), the body
  adds a constant step to i (XLA:TPU unrolls its windowed loops by 2: step 2), and the
  tuple the loop starts from holds a constant there. None for any other loop."""
  known = _KNOWN_TRIPS_RE.search(while_line)
  if known:
    return int(known.group(1))
  test = _LOOP_TEST_RE.search(condition.get("ROOT", ""))
  if not test:
    return None
  counter, bound = test.group(1), _constant(condition, test.group(2))
  index = re.search(r"get-tuple-element\(%[\w.\-]+\), index=([0-9]+)", condition.get(counter, ""))
  update = _operands(body.get("ROOT", ""), "tuple")
  init = _operands(while_line, "while")
  if bound is None or not index or not init:
    return None
  k = int(index.group(1))
  start_tuple = _operands(caller.get(init[0], ""), "tuple")
  if k >= len(update) or k >= len(start_tuple):
    return None
  start = _constant(caller, start_tuple[k])
  step = None
  # The counter's update may reach the tuple through copies (XLA:TPU's windowed matmul
  # loops under remat dots: 6p9b@v5e:4x4's collective-permutes read "? runs" without this).
  for operand in _operands(_through_copies(body, update[k]), "add"):
    if f"index={k}" in body.get(operand, "") and "get-tuple-element(" in body[operand]:
      continue
    step = _constant(body, operand)
  if start is None or not step or step < 0:
    return None
  return max(0, -(-(bound - start) // step))


def runs_per_call(hlo_text: str) -> dict[str, int | None]:
  """How many times each computation runs in one call of the program: the product of the
  trip counts of the loops around it, summed over where it is called from. None under a
  loop whose trip count is not known (_trip_count); computations the entry never reaches
  are left out (a module without an ENTRY gives every computation 1)."""
  entry, comps = _computations(hlo_text)
  calls: dict[str, list[tuple[str, int | None]]] = {}
  defs = {name: _definitions(lines) for name, lines in comps.items()}
  for name, lines in comps.items():
    out = calls[name] = []
    for line in lines:
      loop = _WHILE_RE.search(line)
      if loop:
        trips = _trip_count(line, defs[name], defs.get(loop.group(1), {}),
                            defs.get(loop.group(2), {}))
        out.append((loop.group(2), trips))
        continue
      out.extend((callee, 1) for callee in _CALL_RE.findall(line))
      for group in _CALL_LIST_RE.findall(line):
        out.extend((callee, 1) for callee in re.findall(r"%[\w.\-]+", group))
  if entry is None:
    return {name: 1 for name in comps}
  order, seen = [], set()  # callers before callees (HLO's call graph has no cycles)

  def visit(name):
    seen.add(name)
    for callee, _ in calls.get(name, ()):
      if callee not in seen and callee in comps:
        visit(callee)
    order.append(name)

  visit(entry)
  runs: dict[str, int | None] = collections.defaultdict(int)
  runs[entry] = 1
  for name in reversed(order):
    for callee, trips in calls[name]:
      if callee in comps and runs[callee] is not None:
        times = None if runs[name] is None or trips is None else runs[name] * trips
        runs[callee] = None if times is None else runs[callee] + times
  return {name: runs[name] for name in order}


def _group_size(line: str, devices: int | None) -> int | None:
  """The chips in each of a collective's groups (its replica_groups); `devices` where it
  names none (the whole program)."""
  mesh = _MESH_GROUPS_RE.search(line)
  if mesh:
    sizes = dict(re.findall(r"'([^']+)'=([0-9]+)", mesh.group(1)))
    return math.prod(int(sizes[a]) for a in re.findall(r"'([^']+)'", mesh.group(2)))
  listed = _LIST_GROUPS_RE.search(line)
  if listed:
    return len([x for x in listed.group(1).split(",") if x])
  iota = _IOTA_GROUPS_RE.search(line)
  return int(iota.group(1)) if iota else devices


def _received_bytes(op: str, result_bytes: int, group: int | None) -> int | None:
  """What one chip receives for one run of a collective over `group` chips, as a ring (or
  a torus of rings) moves it: an all-gather the (n-1)/n of its result it did not hold, a
  reduce-scatter (n-1) shards (its input is n of its results), an all-reduce both of
  those on the whole array, an all-to-all (n-1)/n of it, a permute what it is sent."""
  if op == "collective-permute":
    return result_bytes
  if group is None:
    return None
  if op == "reduce-scatter":
    return result_bytes * (group - 1)
  share = result_bytes * (group - 1) // group
  return 2 * share if op == "all-reduce" else share


def collectives(hlo_text: str, devices: int | None = None) -> dict:
  """{op: {"count", "bytes", "runs", "received_bytes"}} of the collectives in an HLO module,
  per chip: count and bytes where they are written in the program, each once (`bytes`:
  result sizes); runs and received_bytes in one call of it (runs_per_call, _received_bytes;
  None where a loop's trip count or a group's size is not known). `devices`: the chips the
  program runs on, the group of a collective that names none.

  One collective is counted once however many computations it is written in: XLA:TPU
  splits an async all-gather into a start fusion, continuation fusions that advance it
  beside other work, and a done fusion, each holding a copy of the op with the collective's
  channel_id and shapes (410m@v5e:4x4: 4 all-gathers written 12 times, 0.11 GB read as
  0.45 GB; the tiny LM with fsdp=4 on v5e:2x2: 26 written 62 times). The shapes are part of
  the key because a channel_id is not unique across computations (that plan's loss
  all-reduce and its gradient all-reduce both carry 1); a collective XLA really duplicates
  (a loop unrolled) gets a new channel_id. The copies run where the first one is written.
  """
  runs = runs_per_call(hlo_text)
  found: dict = {}  # one entry per collective: [op, bytes, received per run, runs, gathers]
  scatter_result, runs_here = None, 1  # lines before any header: a fragment, run once
  for number, line in enumerate(hlo_text.splitlines()):
    header = _COMPUTATION_RE.match(line)
    if header:
      # XLA:TPU writes a reduce-scatter (FSDP's gradients) as an all-reduce of the whole
      # arrays sliced to this chip's shard, inside a fusion it names all-reduce-scatter, and
      # runs it as one reduce-scatter: counted as that, with the shards' bytes it returns
      # (the tiny LM with fsdp=4 on v5e:2x2 read all-reduce, 4x the bytes, no reduce-scatter).
      scatter_result = (header.group(2) if header.group(1).lstrip("%").startswith(
          "all-reduce-scatter") else None)
      runs_here = runs.get(header.group(1))  # None: not reached from the entry
    for type_text, op, start in _COLLECTIVE_RE.findall(line):
      type_text = _result_type(type_text, op, start)
      if op == "all-reduce" and scatter_result is not None:
        op, type_text = "reduce-scatter", scatter_result
      channel = _CHANNEL_RE.search(line)
      # a copy's layout may differ ({1,0} / {1,0:...S(1)}), its shapes do not
      key = ((op, channel.group(1), tuple(_ARRAY_RE.findall(type_text))) if channel
             else (op, "line", number))
      if key in found:  # a copy: the collective runs as often as its least-run copy (the
        known = [r for r in (found[key][3], runs_here) if r is not None]  # start fusion;
        found[key][3] = min(known) if known else None  # continuations run per loop trip)
        continue
      size = _array_bytes(type_text)
      # XLA:TPU (v5p's FSDP plans) writes an all-gather as an all-reduce of shards placed
      # in zeros: run, and counted, as the all-reduce it is, and said to gather.
      gathers = op == "all-reduce" and any("dynamic-update-slice" in name for name in
                                           _operands(line, "all-reduce" + start))
      found[key] = [op, size, _received_bytes(op, size, _group_size(line, devices)),
                    runs_here, gathers]
  out = {op: {"count": 0, "bytes": 0, "runs": 0, "received_bytes": 0} for op in COLLECTIVES}
  for op, size, received, times, gathers in found.values():
    row = out[op]
    row["count"] += 1
    row["bytes"] += size
    if gathers:
      row["gathers"] = row.get("gathers", 0) + 1
    row["runs"] = None if times is None or row["runs"] is None else row["runs"] + times
    row["received_bytes"] = (None if times is None or received is None
                             or row["received_bytes"] is None
                             else row["received_bytes"] + times * received)
  return out


def received_bytes(table: dict) -> int | None:
  """What a chip receives over all collectives of a `collectives` table (None if any is
  not known)."""
  values = [row.get("received_bytes") for row in table.values() if row["count"]]
  return None if None in values else sum(values)


def communication(table: dict | None, steps: int, chip) -> dict | None:
  """What a chip receives in one step's collectives (research.aot_hlo: each run of each,
  through the loops around it) and the least time that takes: those bytes over half the
  chip's ICI bandwidth, every link busy inbound (research/hardware.py's ici_bytes_per_s). None for a program
  the compiler refused; a figure is None where it is not known."""
  if table is None:
    return None
  received = received_bytes(table)
  per_step = None if received is None else received / steps
  ici = chip.ici_bytes_per_s if chip else None
  return {"received_bytes_per_step": per_step, "ici_bytes_per_s": ici,
          "ici_s_per_step_at_least": (per_step / (ici / 2)
                                      if per_step is not None and ici else None)}


def roofline(step_s: float, peak: float, tokens_per_step: int, num_steps: int,
             comm: dict | None) -> dict:
  """Step time, tokens/s and days at each MFU of MFUS. A step takes at least its compute
  (step_s at peak over the MFU) and at least its ICI bound (communication above): where
  the bound is longer, the step is the bound, `bound` says "communication" and
  `compute_step_s` keeps the compute figure (the tiny model on v5e:4x4: 5.1e-07 s of compute
  at 40% MFU against 1.63e-06 s to receive 325 kB, printed as a billion tokens/s)."""
  least = (comm or {}).get("ici_s_per_step_at_least")
  at = {}
  for m in MFUS:
    compute = step_s / m
    step = compute if least is None or least <= compute else least
    at[f"mfu_{int(m * 100)}"] = {
        "step_s": step, "compute_step_s": compute,
        "bound": "compute" if step == compute else "communication",
        "tokens_per_s": tokens_per_step / step, "days_for_num_steps": num_steps * step / 86400}
  return {"peak_flops_per_device": peak, "step_s_at_peak": step_s, **at, "num_steps": num_steps}


def peak_text(p: dict, r: dict) -> str:
  """The roofline's peak: '32.8 TFLOP/s per chip, float32 at precision highest, table (TPU
  v5e)' (a float32 run's dtype and precision: that v5e peak is a sixth of its 197), and under
  remat the chip's own work ('; remat full: the chip runs x1.32 the model FLOPs, so ...')."""
  source = p.get("peak_source", "table")
  precision = p.get("matmul_precision")
  # A chip table's rate (a local TPU's source names them already; train.peak_flops is the user's)
  dtype = (f", {p['dtype']}" + (f" at precision {precision}" if precision else "")
           if p["dtype"] != "bfloat16" and source.startswith("table")
           and p["dtype"] not in source else "")
  text = (f"{r['peak_flops_per_device'] / 1e12:.3g} TFLOP/s per "
          f"{'device' if p['topology'] == 'local' else 'chip'}{dtype}, {source}")
  if p.get("remat", "none") == "none":
    return text
  model, again = p["flops"]["model_per_step"], p["flops"].get("remat_recomputed_per_step")
  if not again or not model:  # a plan cached before the field: the README's full-remat figure
    return text + (f"; remat {p['remat']}: the chip runs more than the model FLOPs" + (
        " (about 8/6 of them)" if p["remat"] == "full" else "")
        + ", so this step at peak is a lower bound it cannot reach")
  over = (model + again) / model
  return text + (f"; remat {p['remat']}: the chip runs x{over:.2f} the model FLOPs, so this "
                 f"step at peak is a lower bound it cannot reach: >= "
                 f"{r['step_s_at_peak'] * over:.3g} s")


def communication_text(p: dict) -> str:
  """'all-gather 56 runs (0.40 MB) | ... -> 0.79 MB into a chip; ICI >= ...': each
  collective's runs and bytes received in a step, their total, and the least time."""
  steps, comm = p["steps_per_call"], p["communication"]
  parts = []
  for op, c in p["collectives"].items():
    if c["count"]:
      per = None if c.get("runs") is None else c["runs"] / steps
      runs = "?" if per is None else f"{per:,.0f}" if per == int(per) else f"{per:,.1f}"
      got = c.get("received_bytes")
      parts.append(f"{op} {runs} runs ({bytes_text(None if got is None else got / steps)})")
  if not parts:
    return "no collectives"
  text = " | ".join(parts) + f" -> {bytes_text(comm['received_bytes_per_step'])} into a chip"
  least = comm["ici_s_per_step_at_least"]
  if least is None:
    return text + ("" if comm["ici_bytes_per_s"] else "; no ICI bandwidth in the chip table")
  return text + (f"; ICI >= {least:.3g} s at {comm['ici_bytes_per_s'] / 2e9:,.0f} GB/s "
                 f"inbound (every link busy){ici_share(p)}")


def ici_share(p: dict) -> str:
  """', 19% of the 40%-MFU step': the least ICI time against the roofline's step; '' where
  either is unknown."""
  least = (p.get("communication") or {}).get("ici_s_per_step_at_least")
  roof = (p.get("roofline") or {}).get("mfu_40")
  if least is None or not roof:
    return ""
  # Against the compute: where the bound is longer, it is the step (roofline above).
  share = least / roof.get("compute_step_s", roof["step_s"])
  return (f", {share:.0%} of the 40%-MFU step" if share <= 1 else
          f", {share:.0%} of the 40%-MFU compute: the step is communication-bound")
