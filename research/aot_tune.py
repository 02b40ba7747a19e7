"""`python -m research.aot ... --tune`: the lightest layout of a run that fits its chips.

A layout here is the remat policy and the number of microbatches (`train.grad_accum_steps`);
the mesh stays the config's. The search compiles candidates with research.aot's planner
and keeps the first, in this order of preference, whose plan leaves MARGIN of the usable
HBM free:
  remat none (the backward pass recomputes nothing), then dots (it recomputes what is not a
  projection or MLP matmul: the elementwise ops and attention's batched QK^T and AV, at
  context 2,048 from 4% (6.9B) to 17% (14M) of the ladder's forward FLOPs by this project's
  count, twice that as computed, the causal mask's half included), then full (the whole
  forward pass again: a third more FLOPs per step, 8 instead of 6 x parameters per token);
  within a policy, the fewest microbatches (each is one more trip round the accumulation
  loop, with smaller matmuls, and under FSDP the parameters are gathered again).
Remat comes first because its cost is a share of every step's FLOPs, while at the ladder's
per-chip microbatches (2,048 tokens or more) the matmuls stay large; what more microbatches
cost is communication, which each candidate's line prints as the least ICI time of its
collectives (research.aot's comms/step): for the ladder's chosen layouts 0.4-28% of the
compute at 40% MFU, so with communication overlapped with compute the order is also the
fastest first. This is a rule, not a measurement: the plans predict memory and bytes, not
the speed of one layout against another on a TPU.

Within a policy the search assumes memory falls as microbatches grow (each holds fewer
activations): it tries 1, then the most the batch allows, then bisects between. When no
candidate keeps the margin, the first that fits at all is taken and said to be tight.
"""
from __future__ import annotations

import copy
from typing import Callable

from research import aot_hlo
from research.errors import InputError

POLICIES = ("none", "dots", "full")
SEARCHED = ("model.remat", "train.grad_accum_steps")  # what a search sets; the rest is kept
# Left free of the usable HBM: a later change to the model or the compiler that grows the
# program by a few percent must not turn a planned cell into one that does not fit.
MARGIN = 0.05


def microbatch_counts(config, num_devices: int) -> list[int]:
  """The powers of two that split the batch evenly over data x fsdp in every microbatch."""
  from research import sharding  # jax: imported when a search starts, as research.aot does
  try:
    shape = sharding.mesh_shape(config.mesh, num_devices)
  except sharding.MeshError as e:  # before any compile, which would say the same
    raise InputError(str(e)) from None
  batch, shards = int(config.train.batch_size), shape[0] * shape[1]
  if batch < 1 or batch % shards:  # 0 sequences a shard divided by every count: no end
    raise InputError(f"config.train.batch_size={batch} is not divisible by mesh data x fsdp = "
                     f"{shards}; use a multiple of it")
  per_shard = batch // shards
  counts = [1]
  while per_shard % (counts[-1] * 2) == 0:
    counts.append(counts[-1] * 2)
  return counts


def candidate(config, remat: str, microbatches: int):
  out = copy.deepcopy(config)
  out.model.remat, out.train.grad_accum_steps = remat, microbatches
  return out


def check(config, num_devices: int) -> None:
  """The config's mesh and batch, as research.aot's plan checks them, for a search: one line
  (InputError) before any compile. Not its own microbatches, which the search replaces (the
  6p9b preset's 16 cannot split v5p:8x8x8's 2 sequences a chip; 1 and 2 can)."""
  from research import config_check
  name = config.model.get("name", "transformer")
  if name != "transformer" or "remat" not in config.model:  # ResNet's config: a traceback
    raise InputError(f"--tune searches {' and '.join(SEARCHED)}, and config.model.name="
                     f"{name!r} has no remat; drop --tune and set --config.train."
                     "grad_accum_steps yourself")
  config_check.validate(candidate(config, config.model.get("remat", "none"), 1), num_devices)


def roomy(plan: dict) -> bool:
  """Fits with MARGIN of the capacity to spare."""
  m = plan["memory_per_device"]
  return bool(m["fits"]) and m["total_bytes"] <= (1 - MARGIN) * m["capacity_bytes"]


def _ici(plan: dict) -> str:
  """'; ICI >= 1.81 s a step, 19% of the 40%-MFU step': what a layout's collectives cost at
  least (research.aot's comms/step), beside its memory, since more microbatches under FSDP
  gather the weights more often; '' where not known."""
  least = (plan.get("communication") or {}).get("ici_s_per_step_at_least")
  return "" if least is None else f"; ICI >= {least:.3g} s a step{aot_hlo.ici_share(plan)}"


def search(config, num_devices: int, plan_of: Callable, log: Callable = lambda _: None):
  """(the chosen plan or None when nothing fits, its verdict 'roomy' | 'tight' | 'none',
  every plan tried in order). plan_of(config) -> research.aot.plan's dict."""
  counts = microbatch_counts(config, num_devices)
  tried: dict[tuple[str, int], dict] = {}

  def attempt(remat: str, i: int) -> bool:
    key = (remat, counts[i])
    if key not in tried:
      tried[key] = plan_of(candidate(config, remat, counts[i]))
      m = tried[key]["memory_per_device"]
      verdict = ("fits" if roomy(tried[key]) else
                 f"fits, inside the {MARGIN:.0%} margin" if m["fits"] else "no")
      log(f"  remat {remat:<4} x{counts[i]:<3} {m['total_bytes'] / 1e9:6.1f} GB of "
          f"{m['capacity_bytes'] / 1e9:.1f}: {verdict}{_ici(tried[key])}")
    return roomy(tried[key])

  for remat in POLICIES:
    if attempt(remat, 0):
      return tried[(remat, counts[0])], "roomy", list(tried.values())
    last = len(counts) - 1
    if last == 0 or not attempt(remat, last):
      continue
    bad, good = 0, last  # bisect: counts[bad] keeps no margin, counts[good] does
    while good - bad > 1:
      mid = (bad + good) // 2
      bad, good = (bad, mid) if attempt(remat, mid) else (mid, good)
    return tried[(remat, counts[good])], "roomy", list(tried.values())
  # No policy bisected (each would have returned), so `tried` is in order of preference.
  fitting = [p for p in tried.values() if p["memory_per_device"]["fits"]]
  if fitting:
    return fitting[0], "tight", list(tried.values())
  return None, "none", list(tried.values())


def tuned_row(config, num_devices: int, plan_of: Callable, log: Callable) -> dict:
  """The plan research.aot shows for a tuned cell: the chosen layout's (or, when nothing
  fits, the last tried: the most memory-sparing policy and microbatches), with `tune`: the
  verdict and every layout tried; from_cache only when every plan came from the cache."""
  chosen, verdict, tried = search(config, num_devices, plan_of, log)
  row = chosen or tried[-1]
  return row | {"from_cache": all(p["from_cache"] for p in tried), "tune": {
      "verdict": verdict, "margin": MARGIN,
      "tried": [{"remat": p["remat"], "microbatches": p["grad_accum_steps"],
                 "total_bytes": p["memory_per_device"]["total_bytes"],
                 "fits": p["memory_per_device"]["fits"], "roomy": roomy(p)} for p in tried]}}


def summary(rows: list[dict]) -> str:
  """What a tuned --ladder adds under its table: each cell's LAYOUTS entry and verdict."""
  lines = [f"Lightest layouts with {MARGIN:.0%} of the usable HBM free (remat none < dots < full, "
           "then fewest microbatches; research/aot_tune.py), as configs/lm_ladder.py LAYOUTS:"]
  for r in rows:
    t = r["tune"]
    note = {"roomy": "", "tight": "  # fits, but inside the margin",
            "none": "  # NOTHING FITS: shown is the last layout tried"}[t["verdict"]]
    lines.append(f"    {layout_line(r['size'], r['topology'], r)}{note}  # {len(t['tried'])} tried")
  return "\n".join(lines)


def verdict_line(row: dict) -> str:
  t, m, mesh = row["tune"], row["memory_per_device"], row["mesh"]
  chosen = f"remat {row['remat']}, {row['grad_accum_steps']} microbatch(es)"
  state = m["params_and_optimizer_bytes"]
  fix = (f"parameters and optimiser state alone need {state / 1e9:.1f} GB a chip of "
         f"{m['capacity_bytes'] / 1e9:.1f}: use more chips" if state > m["capacity_bytes"] else
         "use more chips, or shard more of config.mesh (fsdp, tensor)")
  return {"roomy": f"lightest layout with {t['margin']:.0%} of the usable HBM free: {chosen}",
          "tight": f"nothing keeps {t['margin']:.0%} of the usable HBM free; the lightest that "
                   f"fits: {chosen}",
          "none": f"NO LAYOUT FITS (remat none, dots, full x 1-{row['grad_accum_steps']} "
                  f"microbatches); the last tried: {chosen}; {fix}"}[t["verdict"]] + (
      f" ({len(t['tried'])} compiled; the mesh kept as configured: data={mesh['data']} "
      f"fsdp={mesh['fsdp']} tensor={mesh['tensor']})")


def cell_line(preset: str, topology: str, row: dict) -> str | None:
  """What a single tuned ladder cell (preset SIZE@SLICE) prints to paste; None otherwise."""
  if "@" not in preset or row["tune"]["verdict"] == "none":
    return None
  return ("as a configs/lm_ladder.py LAYOUTS line: "
          + layout_line(preset.partition("@")[0], topology, row))


def layout_line(size: str, topology: str, plan: dict) -> str:
  """The configs/lm_ladder.py LAYOUTS entry for a chosen plan."""
  mesh = plan["mesh"]
  kind = ("_DP" if mesh["fsdp"] == 1 and mesh["tensor"] == 1 else
          "_FSDP" if mesh["data"] == 1 and mesh["tensor"] == 1 else
          f"({mesh['data']}, {mesh['fsdp']}, {mesh['tensor']})")
  return f'("{size}", "{topology}"): ({kind}, "{plan["remat"]}", {plan["grad_accum_steps"]}),'
