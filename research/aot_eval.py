"""The evaluation program of a research.aot plan: the program a run evaluates with every
`train.eval_every` steps and in its final probes, `probe.batch_size` sequences through the
model and the task's reduction of its outputs (`eval_post`: the LM's per-token losses) in one
program (Experiment._apply_then; a task without one: the forward, Experiment._apply), its
result replicated on every chip so that every process can read it, with the optimiser state
that stays in HBM beside it.

The plan's verdict was the train step's alone: a trial compiled 6p9b@v5e:4x4's eval forward
(8 x 2048 tokens, fp32 logits over 50,304 tokens replicated: 3.30 GB of output) at a 14.56 GB
peak per chip, which with the Adam moments' 3.43 GB makes 18.0 GB against the 16.91 the
compiler allows, while the table said it fits: the run would have stopped at its first
evaluation, step 1000.
"""
from __future__ import annotations

import time

from research import aot_compile, aot_memory
from research.aot_targets import not_persisted


# 2: the forward and the task's reduction of its outputs (the LM's losses) in one program, as
# the run evaluates (Experiment.predict_fn's `then`); 1 (no key) planned the forward alone,
# whose logits the run then reduced op by op outside it: 3-4 copies of them a chip.
FORMAT = 2


def is_current(found: dict) -> bool:
  """Whether a (cached) plan holds this version's evaluation, or none to plan (None)."""
  return "eval" in found and (found["eval"] is None or found["eval"].get("format") == FORMAT)


def plan(exp, config, target, state_bytes: int, params_bytes: int) -> dict | None:
  """Per-chip memory of the evaluation forward (its program: parameters, inputs, logits,
  temporaries) plus the optimiser state resident meanwhile, with its verdict; None for a
  config without probe.batch_size (no LM-style evaluation to plan)."""
  import jax
  import jax.numpy as jnp

  batch = int(config.get("probe", {}).get("batch_size", 0) or 0)
  if batch <= 0:
    return None
  params = jax.tree.map(lambda x, sh: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sh),
                        exp.abstract_state.params, exp.param_sharding)
  inputs = jax.tree.map(lambda x: jax.ShapeDtypeStruct((batch, *x.shape[1:]), x.dtype),
                        exp._dummy_inputs)
  post = getattr(exp.task, "eval_post", None)  # the LM's per-token losses, in the program
  if post is not None:
    tokens = jax.ShapeDtypeStruct((batch, exp.task.tokens_per_example + 1), jnp.int32)
    lower = lambda: exp._apply_then.lower(params, inputs, tokens, post)
  else:
    lower = lambda: exp._apply.lower(params, inputs)
  t0 = time.perf_counter()
  preset = config.get("preset", "")
  try:
    with not_persisted(target):
      compiled = aot_compile.compiled(
          lower(), f"the eval forward of {preset or 'the config'} for {target.name}")
  except jax.errors.JaxRuntimeError as e:
    if "RESOURCE_EXHAUSTED" not in str(e):
      raise
    compiled = aot_memory.OutOfMemory(str(e))
  program = aot_memory.per_chip(compiled, compiled.memory_analysis(), params_bytes, target)
  resident = state_bytes - params_bytes  # the optimiser state (the program holds the parameters)
  memory = {**program, "program_bytes": program["total_bytes"], "optimizer_bytes": resident,
            "total_bytes": program["total_bytes"] + resident}
  return {"format": FORMAT, "batch_size": batch, "tokens": batch * exp.task.tokens_per_example,
          "compile_s": time.perf_counter() - t0,
          "memory_per_device": aot_memory.fit(target, memory)}


def plan_alone(config, target) -> dict | None:
  """The evaluation program's part of a plan alone: for a plan cached before plans held it,
  whose train step need not be compiled again (research/aot_ladder.py)."""
  from research import experiment
  aot_compile.reinstall()
  exp = experiment.Experiment(config, target.devices)
  return plan(exp, config, target, aot_memory.shard_bytes(exp.abstract_state, exp.state_sharding),
              aot_memory.shard_bytes(exp.abstract_state.params, exp.param_sharding))


def text(p: dict, gb) -> str:
  """The report's line for plan `p`: 'forward of 8 x 2048 tokens: program 14.56 GB +
  optimiser state 3.44 GB = 17.99 GB -> DOES NOT FIT (over by 1.08 GB): ...'."""
  if not is_current(p):
    return ("not planned by this version (a plan cached before it: a --ladder run without "
            "--cached_only plans it)")
  e = p["eval"]
  if e is None:
    return "not planned (no probe.batch_size)"
  m = e["memory_per_device"]
  head = (f"forward of {e['batch_size']} x {e['tokens'] // e['batch_size']} tokens: program "
          f"{gb(m['program_bytes'])} + optimiser state {gb(m['optimizer_bytes'])} = "
          f"{gb(m['total_bytes'])}")
  if m["fits"] is None:
    return f"{head} -> capacity unknown"
  if m["fits"]:
    return f"{head} -> FITS ({gb(m['headroom_bytes'])} free)"
  over = (f" (over by {gb(-m['headroom_bytes'])})" if m["headroom_bytes"] is not None
          and m["headroom_bytes"] < 0 else " (the compiler refused it)")
  return (f"{head} -> DOES NOT FIT{over}: the run would stop at its first evaluation; lower "
          "--config.probe.batch_size")


def fits(p: dict) -> bool | None:
  """The plan's verdict over both programs: the train step's, and the evaluation's where
  planned (a plan cached before it has none: the train step's alone)."""
  train = p["memory_per_device"]["fits"]
  e = p.get("eval") if is_current(p) else None
  if not e or train is False:
    return train
  ev = e["memory_per_device"]["fits"]
  return False if ev is False else None if ev is None or train is None else True
