r"""Ahead-of-time plan of a run on a TPU slice, compiled on this host (no TPU needed).

  python -m research.aot --config=configs/lm_ladder.py:1b@v5p:4x4x4 --topology=v5p:4x4x4 \
      [--config.a.b=v ...] [--out=plan.json]
  python -m research.aot --config=configs/icl_regression.py:cpu      # the local devices
  python -m research.aot --ladder=configs/lm_ladder.py --topologies=v5e:4x4,v5p:4x4x4 --markdown

It builds the run's own `Experiment` (task, model, optimiser, mesh and sharding rules)
on the devices of `jax.experimental.topologies.get_topology_desc` (libtpu compiles
for a slice it does not have), lowers the same jitted multi-step the trainer runs with
abstract state (ShapeDtypeStructs carrying their shardings) and compiles it. From the
compiled program: per-chip memory (`memory_analysis()`: arguments, outputs, temporaries)
against the HBM the TPU compiler lets a program use (research/hardware.py: the chip's HBM
less what the compiler keeps, measured per chip kind), XLA's FLOPs per chip (`cost_analysis()`)
beside the project's own count (research/models: 6 x matmul params + attention per
token), the collectives in the HLO, and a roofline: step time at the chip's peak,
tokens/s at 40% and 60% MFU, and days for `train.num_steps`, each step no shorter than the
collectives' ICI bound (then said to be communication-bound). Without --topology it
compiles for this host's devices, so on a TPU VM the plan can be checked against a run.
The compile runs in a worker thread, so that Ctrl-C (exit 130) and SIGTERM (exit 143) stop
the command at once with one line (research/aot_compile.py).

`--ladder` plans every pod size of a ladder config on each topology and prints the
README's ladder table, each cell compiled once (research/aot_ladder.py, the plan cache).
`--tune` (either mode) compiles remat policies x microbatches and keeps the lightest layout
that fits (research/aot_tune.py). The slice or local devices it compiles for:
research/aot_targets.py.
"""
from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

from absl import flags, logging

from research import aot_compile, aot_eval, aot_memory, aot_tune, cli, hardware, output_paths
from research.aot_hlo import (MFUS, collectives, communication, communication_text, peak_text,
                              roofline)
# The planner's namespace (research/aot_ladder.py resolves its slices through it).
from research.aot_targets import (Target, check_topology_name, local_target, not_persisted,
                                  require_libtpu, topology_target)
from research.errors import InputError
from research.workdir import write_json

cli.define_config_flag()
_TOPOLOGY = flags.DEFINE_string("topology", "", "TPU slice to compile for, e.g. v5e:4x4, "
                                "v5p:4x4x4; empty = this host's devices.")
_OUT = flags.DEFINE_string("out", "", "Write the plan(s) as JSON here.")
_LADDER = flags.DEFINE_string("ladder", "", "A ladder config (configs/lm_ladder.py): plan its "
                              "POD_SIZES on --topologies.")
_TOPOLOGIES = flags.DEFINE_list("topologies", ["v5e:4x4", "v5p:4x4x4", "v5p:4x8x8", "v5p:8x8x8"],
                                "Topologies for --ladder.")
_SIZES = flags.DEFINE_list("sizes", [], "Sizes for --ladder (default: all of POD_SIZES).")
_MARKDOWN = flags.DEFINE_bool("markdown", False, "Print the --ladder table as markdown.")
_PLAN_CACHE = flags.DEFINE_string("plan_cache", "~/.cache/research_jax/plans", "--ladder: "
                                  "directory of cell plans, each compiled once; '' = no cache.")
_TUNE = flags.DEFINE_bool("tune", False, "Compile remat policies x microbatches and show the "
                          "lightest layout that fits (research/aot_tune.py).")
_CACHED_ONLY = flags.DEFINE_bool("cached_only", False, "--ladder: print the cells found in "
                                 "--plan_cache and list the others; compile nothing.")


def plan(config, target: Target) -> dict:
  """Compiles the config's multi-step for `target`; the figures of the module docstring."""
  import jax

  from research import config_check, experiment, models
  aot_compile.reinstall()  # over libtpu's SIGTERM handler, loaded with the target's devices
  config_check.validate(config, len(target.devices))
  exp = experiment.Experiment(config, target.devices)
  models.check_max_len(config.model, exp.task.io)
  tr = config.train
  steps = int(tr.steps_per_call)
  abstract = jax.tree.map(lambda x, sh: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sh),
                          exp.abstract_state, exp.state_sharding)
  key = jax.eval_shape(lambda: jax.random.key(0))
  t0 = time.perf_counter()
  lowered = exp.multi_step_jit(steps).lower(abstract, key)
  lower_s = time.perf_counter() - t0
  try:
    with not_persisted(target):
      preset = config.get("preset", "")
      compiled = aot_compile.compiled(lowered, f"{preset} for {target.name}" if preset
                                      else f"the config for {target.name}")
  except jax.errors.JaxRuntimeError as e:
    if "RESOURCE_EXHAUSTED" not in str(e):
      raise
    compiled = aot_memory.OutOfMemory(str(e))  # the TPU compiler refuses what cannot fit
  compile_s = time.perf_counter() - t0

  state_b = aot_memory.shard_bytes(exp.abstract_state, exp.state_sharding)
  params_b = aot_memory.shard_bytes(exp.abstract_state.params, exp.param_sharding)
  mem = compiled.memory_analysis()
  memory = aot_memory.per_chip(compiled, mem, state_b, target)
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  # A refused program has no cost analysis and no HLO: unknown (None), not 0 and "none".
  xla_flops = None if mem is None else float(cost.get("flops", 0.0)) if cost else 0.0

  n_dev = len(target.devices)
  inner_loops = bool(config.model.get("scan_layers", False)) or tr.get("grad_accum_steps", 1) > 1
  tokens_per_step = tr.batch_size * exp.task.tokens_per_example
  model_flops = exp.built.train_flops_per_token * tokens_per_step
  recomputed = _remat_flops_per_token(exp) * tokens_per_step
  dtype = str(config.model.dtype)
  if target.name == "local":  # the device the run would use: its peak as the trainer's MFU takes it
    from research import metrics
    peak, peak_source = metrics.device_peak_flops(dtype, float(tr.get("peak_flops", 0) or 0),
                                                  exp.matmul_precision)
    peak = peak or None
  else:
    peak = target.chip.peak_flops(dtype, exp.matmul_precision) if target.chip else None
    peak_source = f"table ({target.chip.name})" if target.chip else "no chip table entry"
  result = {
      "config": config.get("preset", ""), "topology": target.name, "devices": n_dev,
      "device_kind": getattr(target.devices[0], "device_kind", ""),
      "chip": target.chip.name if target.chip else None,
      "mesh": {k: int(v) for k, v in exp.mesh.shape.items()},
      "num_params": exp.num_params, "dtype": dtype, "matmul_precision": exp.matmul_precision,
      "remat": config.model.get("remat", "none"),
      "scan_layers": bool(config.model.get("scan_layers", False)),
      "batch_size": int(tr.batch_size), "grad_accum_steps": int(tr.get("grad_accum_steps", 1)),
      "tokens_per_step": tokens_per_step, "steps_per_call": steps,
      "compile_s": compile_s, "lower_s": lower_s,  # compile_s: trace + lower + XLA compile
      # + hbm_bytes (nominal), usable_bytes (the compiler's limit less what it keeps),
      # capacity_bytes (the one checked), headroom_bytes and fits: hardware.memory_fit.
      "memory_per_device": aot_memory.fit(target, memory),
      "flops": {
          "model_per_step": model_flops, "model_per_device_per_step": model_flops / n_dev,
          # XLA's cost analysis counts a loop body once: the steps_per_call loop gives
          # one step, and a scanned-layer or microbatch loop one layer or microbatch of it,
          # so the comparison with the model count is only made without inner loops.
          "xla_per_device_per_step": xla_flops,
          # What remat's backward pass runs again, beyond the model count (the chip's work is
          # the sum: the step at peak is then a bound below what it can reach).
          "remat_recomputed_per_step": recomputed,
          "xla_over_model": (xla_flops / (model_flops / n_dev)
                             if xla_flops is not None and model_flops and not inner_loops
                             else None)},
      "collectives": None if mem is None else collectives(compiled.as_text(), n_dev),
  }
  result["communication"] = communication(result["collectives"], steps, target.chip)
  result["peak_source"] = peak_source  # where the roofline's peak comes from, or why none
  if peak:
    result["roofline"] = roofline(model_flops / (n_dev * peak), peak, tokens_per_step,
                                  int(tr.num_steps), result["communication"])
  result["eval"] = aot_eval.plan(exp, config, target, state_b, params_b)
  return result


# Only the evaluation program of a plan (a plan cached before plans held it): the ladder's.
plan_eval = aot_eval.plan_alone


def _remat_flops_per_token(exp) -> float:
  """transformer.remat_flops_per_token of the run's model (0 for a model without remat)."""
  from research.models import transformer
  cfg = getattr(exp.built.module, "cfg", None)
  if not isinstance(cfg, transformer.TransformerConfig):
    return 0.0
  return transformer.remat_flops_per_token(cfg, exp.task.io.seq_len)


def _mfu_step(v: dict) -> str:
  """'9.73 s/step', or where the ICI bound is longer than the compute at that MFU
  'communication-bound: 1.63e-06 s/step (the ICI bound; compute 5.1e-07 s)'."""
  if v.get("bound") != "communication":
    return f"{v['step_s']:.3g} s/step"
  return (f"communication-bound: {v['step_s']:.3g} s/step (the ICI bound; compute "
          f"{v['compute_step_s']:.3g} s)")


def _gb(b) -> str:
  return "?" if b is None else f"{b / 1e9:.2f} GB"


def _days(d: float) -> str:
  """One decimal from 1 day up; below, two significant digits (14m@v5p:8x8x8's 143k steps
  at 40% MFU, 0.0020 days, printed as 0.0 days)."""
  return f"{d:.1f}" if d >= 1 else f"{d:.2g}"


def capacity_text(m: dict) -> str:
  """'16.91 GB the compiler allows (15.75 GiB; HBM nominally 16 GiB)': the capacity a plan's
  memory was checked against, in GB and in GiB, and the chip's nominal HBM beside it. On v5p
  the compiler allows 95.74 GiB of the nominal 95: 'of 102.80 GB usable (HBM 95 GiB = 102.01
  GB)' read as usable above the HBM."""
  if m.get("capacity_bytes") is None:
    return "?"
  if m.get("host_available_bytes") is not None:
    share = (f" ({_gb(m['host_available_bytes'])} shared by its devices)"
             if m["host_available_bytes"] > m["capacity_bytes"] else "")
    return f"{_gb(m['capacity_bytes'])} of this host's available memory{share}"
  hbm = m.get("hbm_bytes")
  if hbm is None:  # a plan cached before the field, for a chip no longer in the table
    return _gb(m["capacity_bytes"])
  nominal = (f"{hbm // hardware.GiB} GiB" if hbm % hardware.GiB == 0 else _gb(hbm))
  if m.get("usable_bytes") is None:
    exact = "" if nominal.endswith(" GB") else f" = {_gb(hbm)}"
    return f"HBM {nominal}{exact} (usable not measured)"
  return (f"{_gb(m['capacity_bytes'])} the compiler allows "
          f"({m['capacity_bytes'] / hardware.GiB:.2f} GiB; HBM nominally {nominal})")


def report(p: dict) -> str:
  """The plan as the console table."""
  m, f = p["memory_per_device"], p["flops"]
  refused = m.get("compiler_error")
  if m["fits"] is None:
    verdict = "capacity unknown (no table entry for this device)"
  elif m["fits"]:
    verdict = f"FITS ({_gb(m['headroom_bytes'])} free, {m['total_bytes'] / m['capacity_bytes']:.0%} used)"
  elif refused:
    verdict = ("DOES NOT FIT (the compiler refused it" + (
        f"; over by {_gb(-m['headroom_bytes'])})" if m["headroom_bytes"] is not None
        and m["headroom_bytes"] < 0 else ")"))
  else:
    verdict = f"DOES NOT FIT (over by {_gb(-m['headroom_bytes'])})"
  mesh = " ".join(f"{k}={v}" for k, v in p["mesh"].items())
  if refused:
    xla, coll = "XLA not known (the compiler refused the program)", "not known (not compiled)"
  else:
    xla = f"XLA {f['xla_per_device_per_step']:.3g} per chip" + (
        f" (x{f['xla_over_model']:.2f} the model count)" if f["xla_over_model"] else
        " (one layer / microbatch: XLA counts a loop body once)")
    coll = (" | ".join(f"{op} {c['count']} ({_gb(c['bytes'])}" + (
        f"; {c['gathers']} of them gather shards padded with zeros, all-gathers as XLA wrote "
        "them" if c.get("gathers") else "") + ")"
        for op, c in p["collectives"].items() if c["count"]) or "none")
  lines = [
      f"config       {p['config']}: {hardware.millions(p['num_params'])} params, {p['dtype']}, remat "
      f"{p['remat']}, scan_layers {p['scan_layers']}, batch {p['batch_size']} x "
      f"{p['tokens_per_step'] // p['batch_size']} tokens in {p['grad_accum_steps']} microbatch(es)",
      f"target       {p['topology']}: {p['devices']} x {p['device_kind']} "
      f"({p['chip'] or 'no chip table entry'}); mesh {mesh}",
      f"compile      {'refused for lack of HBM after ' if refused else ''}{p['compile_s']:.1f} s ("
      + (f"trace + lower {p['lower_s']:.1f} s; " if "lower_s" in p else "")
      + f"{p['steps_per_call']} steps per call)",
      f"memory/chip  params+optimiser {_gb(m['params_and_optimizer_bytes'])} | temporaries "
      f"{_gb(m['temporary_bytes'])} | total {_gb(m['total_bytes'])} of {capacity_text(m)}"
      f" -> {verdict}",
      f"eval/chip    {aot_eval.text(p, _gb)}",
      f"FLOPs/step   model {f['model_per_step']:.3g} ({f['model_per_device_per_step']:.3g} per "
      f"chip) | {xla}",
      f"collectives  {coll}"]
  r = p.get("roofline")
  if not refused and p.get("communication") and any(c["count"] for c in p["collectives"].values()):
    lines.append(f"comms/step   {communication_text(p)}")
  if r:
    # A program that does not fit still gets its roofline (how long it would take on the
    # chips that could hold it), said as such.
    lines.append(f"roofline     {'' if m['fits'] is not False else 'if it fit: '}step "
                 f"{r['step_s_at_peak']:.3g} s at peak ({peak_text(p, r)})" + "".join(
                     f" | {k[4:]}% MFU: {_mfu_step(v)}, {v['tokens_per_s']:,.0f} tok/s, "
                     f"{_days(v['days_for_num_steps'])} days for {r['num_steps']} steps"
                     for k, v in r.items() if k.startswith("mfu_")))
  elif p.get("peak_source"):
    lines.append(f"roofline     none: no peak FLOP/s for this device ({p['peak_source']}); "
                 "pass --config.train.peak_flops=FLOP/s")
  return "\n".join(lines)


def main(argv) -> None:
  if len(argv) > 1:
    raise InputError(f"unexpected arguments {argv[1:]}; overrides look like --config.model.width=128")
  ladder_only = [f"--{n}" for n in ("topologies", "sizes", "markdown", "cached_only", "plan_cache")
                 if flags.FLAGS[n].present]
  if _LADDER.value and _TOPOLOGY.value:
    raise InputError("--topology plans one --config; with --ladder list the slices in "
                     "--topologies=v5e:4x4,v5p:4x4x4")
  if _LADDER.value and cli._OVERRIDES:
    # Each cell's config is its SIZE@TOPOLOGY preset; an override was dropped unread (exit 0,
    # the plan for the preset's own num_steps). Not applied to every cell: a mesh, remat or
    # batch override would replace the layout chosen for each size and slice.
    first = next(iter(cli._OVERRIDES))
    raise InputError(f"--config.{first}=... overrides one --config, and --ladder plans each "
                     "size's own preset; plan that cell alone with --config=configs/"
                     f"lm_ladder.py:SIZE@TOPOLOGY --topology=TOPOLOGY --config.{first}=...")
  if _TUNE.value and (searched := [f for f in aot_tune.SEARCHED if f in cli._OVERRIDES]):
    raise InputError(f"--tune chooses {' and '.join(aot_tune.SEARCHED)} itself; drop "
                     f"--config.{searched[0]}=... (or drop --tune to plan that value)")
  if _TUNE.value and _CACHED_ONLY.value:
    raise InputError("--tune compiles the layouts it tries and --cached_only compiles nothing; "
                     "drop one of them")
  if _CACHED_ONLY.value and _PLAN_CACHE.present and not _PLAN_CACHE.value:
    # It printed blank rows and "from the plan cache (off): none", exit 0.
    raise InputError("--cached_only prints the cells in the plan cache and --plan_cache= turns "
                     "it off; pass --plan_cache=DIR, or drop --cached_only to compile the cells")
  if ladder_only and not _LADDER.value:
    raise InputError(f"{', '.join(ladder_only)} need{'s' if len(ladder_only) == 1 else ''} "
                     "--ladder=FILE; drop it, or add --ladder=configs/lm_ladder.py")
  # The --out path is checked before any compile (the large plans take minutes).
  out = output_paths.check_output(_OUT.value, "--out", example="plan.json") if _OUT.value else None
  if out and _LADDER.value:
    from research import aot_ladder
    aot_ladder.check_out(out, _OUT.value, _PLAN_CACHE.value)
  import jax
  if _TOPOLOGY.value or _LADDER.value:
    # Plans for a slice use libtpu as a compiler only: keep the host backend on CPU
    # rather than probing for a TPU that is not there.
    jax.config.update("jax_platforms", "cpu")
  if _LADDER.value:
    if flags.FLAGS.config:
      raise InputError("pass either --ladder=FILE or --config=FILE[:PRESET], not both")
    aot_compile.stop_quickly(f"the cells planned before it are in --plan_cache={_PLAN_CACHE.value}"
                             " and a rerun compiles the rest" if _PLAN_CACHE.value
                             else "nothing was written")
    from research import aot_ladder
    plans, unplanned = aot_ladder.ladder(_LADDER.value, _TOPOLOGIES.value, _SIZES.value,
                                         _PLAN_CACHE.value, _CACHED_ONLY.value,
                                         planner=sys.modules[__name__],
                                         render=None if _MARKDOWN.value else report,
                                         tune=_TUNE.value)
    print(aot_ladder.markdown(plans) if _MARKDOWN.value else "\n\n".join(report(p) for p in plans))
    if _TUNE.value:
      print("\n" + aot_tune.summary(plans))
    cell = lambda p: f"{p['size']}@{p['topology']}"
    print(f"\nfrom the plan cache ({_PLAN_CACHE.value or 'off'}): "
          f"{', '.join(cell(p) for p in plans if p['from_cache']) or 'none'}; compiled now: "
          f"{', '.join(cell(p) for p in plans if not p['from_cache']) or 'none'}"
          + (f"; not yet planned: {', '.join(unplanned)}" if unplanned else "")
          + (" (whether each chip comes in that shape is unchecked: libtpu is not installed)"
             if unplanned and importlib.util.find_spec("libtpu") is None else ""))
  else:
    config = cli.config_from_flags()
    # The slice first: a shape the chip lacks is one error line, with no warning before it.
    target = topology_target(_TOPOLOGY.value) if _TOPOLOGY.value else local_target()
    aot_compile.stop_quickly("nothing was written")  # once libtpu, which replaces it, loaded
    planned_for = config.get("topology", "")
    if planned_for and not _TOPOLOGY.value and target.devices[0].platform == "cpu":
      # A pod preset planned for this host's CPU (exit 0: "DOES NOT FIT (over by 296 GB)" and
      # a 2,282-day roofline), where the slice it was laid out for was meant.
      raise InputError(f"--config={flags.FLAGS.config} is laid out for {planned_for} and this "
                       f"host has {len(target.devices)} CPU device(s); add "
                       f"--topology={planned_for} to compile it for that slice")
    # Planned for another slice (--topology's name, or this TPU VM's devices): the warning
    # research.main and research.sweep give too.
    if warning := hardware.planned_topology_warning(planned_for, target.devices,
                                                    name=_TOPOLOGY.value,
                                                    preset=config.get("preset", "")):
      logging.warning("%s", warning)
    if _TUNE.value:
      if target.chip is None:
        raise InputError("--tune compares each layout with a TPU's usable HBM, and these are "
                         "this host's CPU devices; pass --topology=CHIP:SHAPE, e.g. v5e:4x4")
      aot_tune.check(config, len(target.devices))
      preset = config.get("preset", "")
      print(f"tuning {preset or 'the config'} on {target.name}:")
      plans = [aot_tune.tuned_row(config, len(target.devices),
                                  lambda c: plan(c, target) | {"from_cache": False}, print)]
      print(aot_tune.verdict_line(plans[0]))
      if line := aot_tune.cell_line(preset, target.name, plans[0]):
        print(line)
    else:
      plans = [plan(config, target)]
    print(report(plans[0]))
    if _TUNE.value and plans[0]["tune"]["verdict"] == "none":
      _write(out, plans[0])
      # A search that found nothing is a run the memory cannot hold: exit 2, as research.main's.
      raise InputError(f"no layout of {preset or 'the config'} fits {target.name} (the lines "
                       "above); plan it on a slice with more chips or HBM")
  _write(out, plans if _LADDER.value else plans[0])


def _write(out: Path | None, what) -> None:
  if out:
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, what)  # atomic: never half a file
    print(f"wrote {out}")


if __name__ == "__main__":
  cli.run(main)
