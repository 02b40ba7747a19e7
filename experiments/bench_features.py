"""Benchmark cases for compilation and the Transformer's large-model features.

`python -m experiments.benchmark --cases NAME[,NAME]` runs them (each measurement in its
own child process, as every benchmark case); NAME is a key of CASES:

  scan_compile    trace + lower and XLA compile time of the first train step, 24 layers
                  (Garg small's blocks), model.scan_layers on vs off; the same pair at
                  2 layers is the control (scanning a shallow model saves little);
                  --set model.remat=full compares both with remat, as the ladder's
                  tightest pod layouts run
  scan_compile_tpu  the same four programs compiled by XLA:TPU for a v5e:2x2 slice on this
                  host (libtpu, research.aot), --pairs rounds
  scan_compile_ladder  the first call of configs/lm_ladder.py's 24-layer size (410m, as a pod
                  runs it: bf16, fused attention and QKV, 10 steps per call; remat dots
                  in 1 microbatch, as measured before the tuned layouts)
                  compiled by XLA:CPU, scanned vs unrolled, --pairs rounds; the same
                  model cut to 2 layers is the control
  scan_compile_ladder_tpu  that pair compiled by XLA:TPU for v5p:4x4x4, the slice the
                  preset's layout was planned for, --pairs rounds
  compile_parts   where that compile time goes: the step's parts (sampler, forward loss,
                  loss + gradients, Adam update) compiled alone, each in a fresh process,
                  24 and 2 layers, unrolled and scanned, beside the whole step
  remat           step time and XLA's temporary buffer bytes of Garg small with
                  model.remat none / full / dots, interleaved rounds (--pairs)
  attention_qkv   Garg small with model.fused_qkv and model.attention='fused' on and off,
                  interleaved rounds (--pairs); the peer comparison of a choice is then
                  `--cases garg_small --vs-peer --set model.fused_qkv=True ...`
  steps_per_call  1 vs 50 train steps per jit call
  compile_cache   first call with a cold vs a warm persistent compilation cache

`--set FIELD=VALUE` applies to every program that scan_compile, scan_compile_tpu,
compile_parts, remat and attention_qkv compare (both sides of each pair), except the field
the case varies, which is refused.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time


def _ours(case: str, steps: int, steps_per_call: int, sets: dict, env=None) -> dict:
  from experiments.benchmark import _spawn, set_args
  return _spawn("--child=ours", f"--case={case}", f"--steps={steps}",
                f"--steps_per_call={steps_per_call}", *set_args(sets), env=env)


# The config fields each case compares values of; --set may not fix them.
_DEPTH_PAIRS = ("model.scan_layers", "model.num_layers")  # scanned vs unrolled, deep vs shallow
VARIES = {"scan_compile": _DEPTH_PAIRS, "scan_compile_tpu": _DEPTH_PAIRS,
          "scan_compile_ladder": _DEPTH_PAIRS, "scan_compile_ladder_tpu": _DEPTH_PAIRS,
          "compile_parts": _DEPTH_PAIRS, "remat": ("model.remat",),
          "attention_qkv": ("model.attention", "model.fused_qkv")}


# The cases that run --pairs rounds.
READS_PAIRS = ("remat", "attention_qkv", "scan_compile_tpu", "scan_compile_ladder",
               "scan_compile_ladder_tpu")

# The cases whose programs a --set reaches; every other case runs a fixed config.
TAKE_SET = ("garg_small", "garg_standard", *VARIES)


def check_sets(cases, sets: dict) -> None:
  """Before anything is measured: a --set that a chosen case would ignore (a fixed config),
  or of a field that a chosen case varies (it would silently make the two sides of its pairs
  equal), is refused."""
  from research.errors import InputError
  fixed = [case for case in cases if case not in TAKE_SET]
  if sets and fixed:
    runs = "runs a fixed config" if len(fixed) == 1 else "run fixed configs"
    raise InputError(f"--set applies only to the cases {', '.join(TAKE_SET)}; "
                     f"{', '.join(fixed)} {runs}: pass --cases with only those cases, and run "
                     "the others without --set")
  for case in cases:
    clash = sorted(set(sets) & set(VARIES.get(case, ())))
    if clash:
      raise InputError(f"--set {clash[0]}: --cases {case} compares values of it; drop the "
                       f"--set, or run {case} without it")
  for case in cases:  # after every clash: the field a case varies is the first thing to name
    if sets and case in ("garg_small", "garg_standard"):  # a misspelt field: refused here,
      from experiments.benchmark import _regression_config  # not in the child after "== case"
      _regression_config(case, 1, sets=sets)


def check_flags_reach(a) -> None:
  """A tuning flag that none of --cases reads is refused (each case runs its own settings
  otherwise): `--cases lm_10m --pairs 5` measured once, `--dtype=bfloat16 --vs-peer` ran fp32,
  both without a word."""
  from experiments.benchmark import CONFIG_CASES
  from research.errors import InputError
  garg, paired = ("garg_small", "garg_standard"), READS_PAIRS
  stepped = (*garg, *CONFIG_CASES, "remat", "attention_qkv")
  reach = {  # flag: (the cases it reaches, in words for the message)
      "vs_peer": (garg, "garg_small and garg_standard"),
      "dtype": (() if a.vs_peer else garg,
                "garg_small and garg_standard without --vs-peer (the peer runs fp32; "
                "--set model.dtype=bfloat16 sets our side alone)"),
      "pairs": ((*garg, *paired) if a.vs_peer else paired,
                f"{', '.join(paired)}, and the Garg cases with --vs-peer"),
      "steps": ((*stepped, "steps_per_call"), f"{', '.join(stepped)} and steps_per_call"),
      "steps_per_call": (stepped, ", ".join(stepped))}
  from research import cli
  if a["dtype"].present and "model.dtype" in cli.overrides_from_args(a.set):
    raise InputError("--dtype and --set model.dtype both set the compute dtype (the --set won, "
                     "silently); pass one of them")
  for name, (cases, words) in reach.items():
    given = a.vs_peer if name == "vs_peer" else a[name].present
    if given and not set(a.cases) & set(cases):
      raise InputError(f"--{name.replace('_', '-') if name == 'vs_peer' else name} applies to "
                       f"{words}; --cases {','.join(a.cases)} "
                       f"{'reads' if len(a.cases) == 1 else 'read'} it nowhere: drop it, or add "
                       "such a case")


def _sets(a, case: str) -> dict:
  """The command's --set FIELD=VALUE, applied to every program that CASE compares."""
  from research import cli
  sets = cli.overrides_from_args(a.set)
  check_sets([case], sets)
  return sets


def _scan_ratios(label: str, unrolled: dict, scanned: dict) -> dict:
  """Unrolled over scanned: compile alone and trace + lower + compile; printed on one line."""
  ratio = unrolled["compile_s"] / scanned["compile_s"]
  total = lambda r: r["lower_s"] + r["compile_s"]
  ratio_total = total(unrolled) / total(scanned)
  print(f"  {label}: unrolled trace+lower {unrolled['lower_s']:.1f}s + compile "
        f"{unrolled['compile_s']:.1f}s, scanned {scanned['lower_s']:.1f}s + "
        f"{scanned['compile_s']:.1f}s -> compile x{ratio:.2f}, trace+lower+compile "
        f"x{ratio_total:.2f}", flush=True)
  return {"compile_ratio": ratio, "lower_and_compile_ratio": ratio_total}


def scan_compile_case(a) -> dict:
  sets, out = _sets(a, "scan_compile"), {}
  for case in ("deep24", "shallow2"):
    runs = {scan: _ours(case, 1, 1, {**sets, "model.scan_layers": scan}) for scan in (False, True)}
    out[case] = {"unrolled": runs[False], "scanned": runs[True],
                 **_scan_ratios(case, runs[False], runs[True])}
  return out


PARTS = ("sampler", "forward", "gradient", "optimizer", "step")

# --child=parts cases beside benchmark.CASES: a ladder size as its preset has it, with what
# the case changes (the control differs from the 24-layer model in depth alone). Remat dots
# in 1 microbatch, the 410m v5p:4x4x4 layout until the tuned layouts of 2026-12-05 (none in 4),
# so the figures measured before (README "Transformer features") stay this program's.
_LAYOUT_MEASURED = {"model.remat": "dots", "train.grad_accum_steps": 1}
LADDER_CASES = {"ladder410m": ("410m", _LAYOUT_MEASURED),
                "ladder410m_2layers": ("410m", {**_LAYOUT_MEASURED, "model.num_layers": 2})}


def _ladder_config(case: str, sets: dict, local: bool):
  """The case's preset, on this host's one CPU device when `local`; --set last."""
  from experiments.benchmark import ROOT
  from research import cli
  size, changes = LADDER_CASES[case]
  c = cli.apply_overrides(cli.load_config(f"{ROOT / 'configs/lm_ladder.py'}:{size}"), changes)
  if local:
    c.mesh.data, c.mesh.fsdp, c.mesh.tensor = 1, 1, 1
  return cli.apply_overrides(c, sets, text=True, flag="--set ")


def child_parts(case: str, part: str, sets: dict, topology: str = "") -> dict:
  """Trace + lower and compile seconds of one PART of the case's train step, compiled alone
  in this process from abstract state (`step`: the whole jitted step, as scan_compile).
  With a TOPOLOGY, the whole step compiled by XLA:TPU for that slice (research.aot); a
  LADDER_CASES case is its preset's first call (research.aot's plan), for this CPU or the
  TOPOLOGY."""
  import jax
  import jax.numpy as jnp
  from experiments.benchmark import _regression_config
  from research.experiment import Experiment

  if topology or case in LADDER_CASES:
    from research import aot
    jax.config.update("jax_platforms", "cpu")  # libtpu as a compiler only, as research.aot
    if case in LADDER_CASES:
      c = _ladder_config(case, sets, local=not topology)
    else:
      c = _regression_config(case, 1, "float32", sets)
      c.mesh.data = -1  # data-parallel over the slice's chips
    cpu0 = time.process_time()
    p = aot.plan(c, aot.topology_target(topology) if topology else aot.local_target())
    return {"case": case, "part": "step", "set": sets, "topology": topology,
            "lower_s": p["lower_s"], "compile_s": p["compile_s"] - p["lower_s"],
            "cpu_s": time.process_time() - cpu0}
  c = _regression_config(case, 1, "float32", sets)
  exp = Experiment(c, jax.devices()[:1])
  state, key, n = exp.abstract_state, exp.root_key, c.train.batch_size
  batch = jax.eval_shape(lambda: exp.task.sample(key, jnp.int32(0), n))
  fn, args = {
      "sampler": (lambda k, s: exp.task.sample(k, s, n), (key, state.step)),
      "forward": (lambda p, b, s, k: exp.loss_fn(p, b, s, k), (state.params, batch, state.step, key)),
      "gradient": (lambda p, b, s, k: exp._loss_and_grads(p, b, s, k),
                   (state.params, batch, state.step, key)),
      "optimizer": (lambda g, st: exp.tx.update(g, st.opt_state, st.params), (state.params, state)),
      "step": (None, (state, key))}[part]
  jitted = exp.multi_step_jit(1) if part == "step" else jax.jit(fn)
  t0, cpu0 = time.perf_counter(), time.process_time()
  lowered = jitted.trace(*args).lower()
  t1 = time.perf_counter()
  lowered.compile()
  t2 = time.perf_counter()
  return {"case": case, "part": part, "set": sets, "lower_s": t1 - t0, "compile_s": t2 - t1,
          "cpu_s": time.process_time() - cpu0}


def _compile_rounds(a, name: str, cases: tuple, topology: str, where: str) -> dict:
  """--pairs interleaved rounds of each case's step compiled scanned and unrolled, each in a
  fresh process (--child=parts); medians, and their ratios per case."""
  from experiments.benchmark import _spawn, set_args
  sets = _sets(a, name)
  variants = [(case, scan) for case in cases for scan in (False, True)]
  runs = {v: [] for v in variants}
  for i in range(a.pairs):
    for case, scan in variants:
      r = _spawn("--child=parts", f"--case={case}", "--part=step", f"--topology={topology}",
                 *set_args({**sets, "model.scan_layers": scan}))
      runs[(case, scan)].append(r)
      print(f"  round {i} {case} scan_layers={scan}: trace+lower {r['lower_s']:.1f}s + "
            f"compile {r['compile_s']:.1f}s", flush=True)
  out = {}
  for case in cases:
    med = {scan: {k: statistics.median(r[k] for r in runs[(case, scan)])
                  for k in ("lower_s", "compile_s")} for scan in (False, True)}
    out[case] = {"unrolled": runs[(case, False)], "scanned": runs[(case, True)],
                 **_scan_ratios(f"{case} ({where}, medians of {a.pairs})", med[False], med[True])}
  return out


def scan_compile_tpu_case(a) -> dict:
  """scan_compile's programs compiled by XLA:TPU for a v5e:2x2 slice on this host (libtpu,
  research.aot): the compiler a pod run meets, whose per-layer cost is far above XLA:CPU's."""
  from research import aot
  aot.require_libtpu("--cases scan_compile_tpu")  # before any child starts
  return _compile_rounds(a, "scan_compile_tpu", ("deep24", "shallow2"), "v5e:2x2", "v5e:2x2")


def scan_compile_ladder_case(a) -> dict:
  """The ladder's 24-layer size as a pod sweep compiles it (scan_compile's Garg small blocks
  are 128 wide, with no vocabulary), by XLA:CPU; the 2-layer cut is the control."""
  return _compile_rounds(a, "scan_compile_ladder", tuple(LADDER_CASES), "", "XLA:CPU")


def scan_compile_ladder_tpu_case(a) -> dict:
  """The same pair compiled by XLA:TPU for the slice the plain 410m preset's layout was
  planned for (configs/lm_ladder.py's DEFAULT_TOPOLOGY), FSDP over its 64 chips."""
  from configs import lm_ladder
  from research import aot
  aot.require_libtpu("--cases scan_compile_ladder_tpu")  # before any child starts
  topology = lm_ladder.DEFAULT_TOPOLOGY
  return _compile_rounds(a, "scan_compile_ladder_tpu", tuple(LADDER_CASES), topology, topology)


def compile_parts_case(a) -> dict:
  from experiments.benchmark import _spawn, set_args
  sets, out = _sets(a, "compile_parts"), {}
  for label, case, scan in (("24 layers unrolled", "deep24", False),
                            ("24 layers scanned", "deep24", True),
                            ("2 layers unrolled", "shallow2", False),
                            ("2 layers scanned", "shallow2", True)):
    runs = {part: _spawn("--child=parts", f"--case={case}", f"--part={part}",
                         *set_args({**sets, "model.scan_layers": scan})) for part in PARTS}
    # CPU seconds beside wall seconds: on a shared host the CPU time is the steadier figure.
    print(f"  {label} (trace + lower + compile, each alone; wall / CPU s): " + ", ".join(
        f"{part} {r['lower_s'] + r['compile_s']:.2f} / {r['cpu_s']:.2f}"
        for part, r in runs.items()), flush=True)
    out[label] = runs
  return out


def _rounds(a, name: str, case: str, variants: dict[str, dict]) -> dict:
  """Interleaved rounds (one run of each variant per round); medians per variant."""
  base_sets = _sets(a, name)
  runs = {name: [] for name in variants}
  for i in range(a.pairs):
    for name, sets in variants.items():
      r = _ours(case, a.steps, a.steps_per_call, {**base_sets, **sets})
      runs[name].append(r)
      print(f"  round {i} {name}: step {1e3 * r['step_s']:.1f} ms, {r['examples_per_s']:.0f} ex/s, "
            f"XLA temporaries {r['temp_bytes'] / 2**20:.0f} MiB", flush=True)
  base = next(iter(variants))
  med = {n: statistics.median(r["step_s"] for r in rs) for n, rs in runs.items()}
  out = {n: {"median_step_s": med[n], "step_s": [r["step_s"] for r in rs],
             "temp_bytes": rs[0]["temp_bytes"], "speed_vs_" + base: med[base] / med[n]}
         for n, rs in runs.items()}
  for n in variants:
    print(f"  {n}: median step {1e3 * med[n]:.1f} ms, x{med[base] / med[n]:.2f} the speed of "
          f"{base}; temporaries {out[n]['temp_bytes'] / 2**20:.0f} MiB", flush=True)
  return out


def remat_case(a) -> dict:
  return _rounds(a, "remat", "garg_small", {f"remat={p}": {"model.remat": p}
                                   for p in ("none", "full", "dots")})


def attention_qkv_case(a) -> dict:
  return _rounds(a, "attention_qkv", "garg_small", {
      f"attention={att},fused_qkv={qkv}": {"model.attention": att, "model.fused_qkv": qkv}
      for att in ("explicit", "fused") for qkv in (False, True)})


def steps_per_call_case(a) -> dict:
  """1 vs 50 steps per jit call, on the `tiny` preset and on the cpu preset's model (--steps
  steps each, 500 when not given)."""
  from experiments.benchmark import _spawn
  steps, out = (a.steps if a["steps"].present else 500), {}
  for label, child, case in (("tiny preset", "--child=config", "tiny_preset"),
                             ("cpu-preset model, batch 64", "--child=ours", "tiny")):
    one = _spawn(child, f"--case={case}", f"--steps={steps}", "--steps_per_call=1")
    many = _spawn(child, f"--case={case}", f"--steps={steps}", "--steps_per_call=50")
    ratio = one["step_s"] / many["step_s"]
    print(f"  {label}: 1 step/call {1 / one['step_s']:.0f} steps/s, 50 steps/call "
          f"{1 / many['step_s']:.0f} steps/s -> x{ratio:.2f}", flush=True)
    out[case] = {"one_per_call": one, "fifty_per_call": many, "ratio": ratio}
  return out


def compile_cache_case(a) -> dict:
  del a
  with tempfile.TemporaryDirectory() as cache:
    env = os.environ | {"BENCH_CACHE": cache}
    # One step per call: the time to the first step is then setup + compile.
    cold, warm = (_ours("garg_small", 1, 1, {}, env=env) for _ in range(2))
  ratio = cold["first_step_s"] / warm["first_step_s"]
  print(f"  garg_small first call: cold {cold['first_step_s']:.1f}s, cached "
        f"{warm['first_step_s']:.1f}s -> x{ratio:.2f}", flush=True)
  return {"cold_s": cold["first_step_s"], "warm_s": warm["first_step_s"], "ratio": ratio}


CASES = {"scan_compile": scan_compile_case, "scan_compile_tpu": scan_compile_tpu_case,
         "scan_compile_ladder": scan_compile_ladder_case,
         "scan_compile_ladder_tpu": scan_compile_ladder_tpu_case,
         "compile_parts": compile_parts_case,
         "remat": remat_case,
         "attention_qkv": attention_qkv_case, "steps_per_call": steps_per_call_case,
         "compile_cache": compile_cache_case}
