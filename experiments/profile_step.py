"""Where a train step's time goes: ours (jax.profiler) and the peer's (torch.profiler).

  python -m experiments.profile_step --case garg_small [--peer] [--steps 20]
  python -m experiments.profile_step --ensemble 16 --steps 300 --steps_per_call 50

Ours: the benchmark case's compiled multi-step call runs under `jax.profiler.trace`;
the Perfetto trace it writes is read back here and the device ops (XLA:CPU thunks)
are summed per kind: matmuls (`dot*` and the YNNPACK/oneDNN fusions that hold the
dots), copies and transposes (layout changes), and the other elementwise / reduction
fusions. The matmul FLOP rate is the case's model FLOPs (benchmark.py's count)
over the time of the ops that hold them, against the peak measured at start-up. With
--peer the peer's step runs under torch.profiler and its CPU ops are summed the same
way (aten::mm / addmm / bmm / baddbmm and the fused scaled_dot_product attention ops vs
the rest). Run it on an otherwise idle machine.
"""
from __future__ import annotations

import collections
import glob
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from absl import flags

from experiments import bench_ensemble, bench_peer, benchmark
from research import cli
from research.errors import InputError

ROOT = Path(__file__).resolve().parents[1]

MATMUL = ("dot", "ynn_fusion", "onednn", "custom-call", "convolution")
LAYOUT = ("copy", "transpose", "bitcast")
HOST = ("ThunkExecutor", "$", "Slinky", "PjitFunction", "TfrtCpu", "PjRt")


def kind_of(op: str) -> str:
  name = op.split(".")[0]
  if name.startswith(MATMUL):
    return "matmul"
  if name.startswith(LAYOUT):
    return "layout"
  if "reduce" in name:
    return "reduce"
  if name.startswith(("while", "call", "conditional")):
    return "control"
  return "elementwise"


def _summarise(per_op_us: dict[str, float], steps: int, step_s: float, flops: float,
               peak: float) -> dict:
  kinds = collections.Counter()
  for op, us in per_op_us.items():
    kinds[kind_of(op)] += us / steps / 1e6
  busy = sum(kinds.values())
  out = {"step_s": step_s, "ops_s": busy, "kinds_s": dict(kinds),
         "matmul_flops_per_s": flops / kinds["matmul"] if kinds["matmul"] else None,
         "mfu": flops / step_s / peak if peak else None}
  print(f"  step {1e3 * step_s:.1f} ms (op time summed {1e3 * busy:.1f} ms; MFU "
        f"{100 * (out['mfu'] or 0):.1f}%)")
  for k, s in kinds.most_common():
    print(f"    {k:12s} {1e3 * s:8.2f} ms  {100 * s / busy:5.1f}%")
  if out["matmul_flops_per_s"] and peak:
    print(f"  matmul ops run the model FLOPs at {out['matmul_flops_per_s'] / 1e9:.0f} GFLOP/s "
          f"= {100 * out['matmul_flops_per_s'] / peak:.0f}% of the {peak / 1e9:.0f} GFLOP/s peak")
  top = sorted(per_op_us.items(), key=lambda kv: -kv[1])[:8]
  print("  largest ops: " + ", ".join(f"{op} {v / steps / 1e3:.2f} ms" for op, v in top))
  return out


def _trace(fn, carry, calls: int) -> tuple[collections.Counter, float]:
  """(device-op time per op name in microseconds, unprofiled wall seconds) of `calls`
  calls of the compiled multi-step `fn`, after one warm-up call."""
  import jax

  carry, m = fn(carry)
  jax.block_until_ready(m)
  t = time.perf_counter()
  for _ in range(calls):
    carry, m = fn(carry)
  jax.block_until_ready(m)
  wall = time.perf_counter() - t
  trace_dir = tempfile.mkdtemp(prefix="profile_step_")
  with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
    for _ in range(calls):
      carry, m = fn(carry)
    jax.block_until_ready(m)
  path = glob.glob(f"{trace_dir}/**/*.trace.json.gz", recursive=True)[-1]
  events = json.load(gzip.open(path))
  events = events["traceEvents"] if isinstance(events, dict) else events
  per_op = collections.Counter()
  for e in events:
    if e.get("ph") == "X" and not e["name"].startswith(HOST):
      per_op[e["name"]] += e.get("dur", 0)
  return per_op, wall


def profile_ours(case: str, steps: int, steps_per_call: int) -> dict:
  import jax
  from research import metrics
  from research.experiment import Experiment

  c = benchmark._regression_config(case, steps_per_call)
  c.train.compile_cache_dir = ""
  exp = Experiment(c, jax.devices()[:1])
  calls = max(1, steps // steps_per_call)
  per_op, wall = _trace(exp.multi_step_fn(steps_per_call), exp.init_state(), calls)
  flops = exp.built.train_flops_per_token * c.train.batch_size * exp.task.tokens_per_example
  peak, _ = metrics.device_peak_flops("float32")
  print(f"== ours: {case}, {exp.num_params} params, {calls * steps_per_call} profiled steps")
  return _summarise(per_op, calls * steps_per_call, wall / (calls * steps_per_call), flops, peak)


def profile_ensemble(members: int, steps: int, steps_per_call: int) -> dict:
  """The ensemble benchmark's setting (benchmark.py --cases ensemble): the `tiny` regression
  step solo, then `members` seeds as one vmapped step, op time by kind for each."""
  import jax
  from research import ensemble, metrics
  from research.experiment import Experiment

  c = bench_ensemble._ensemble_config()
  c.train.compile_cache_dir = ""
  calls = max(1, steps // steps_per_call)
  exp = Experiment(c, jax.devices()[:1])
  flops = exp.built.train_flops_per_token * c.train.batch_size * exp.task.tokens_per_example
  peak, _ = metrics.device_peak_flops("float32")
  per_op, wall = _trace(exp.multi_step_fn(steps_per_call), exp.init_state(), calls)
  print(f"== solo tiny step, {exp.num_params} params, {calls * steps_per_call} profiled steps")
  solo = _summarise(per_op, calls * steps_per_call, wall / (calls * steps_per_call), flops, peak)
  ens = ensemble.Ensemble(c, [{"seed": s} for s in range(members)], jax.devices()[:1])
  per_op, wall = _trace(ens.multi_step_fn(steps_per_call), ens.init_state(), calls)
  print(f"== ensemble of {members}, per ensemble step")
  out = _summarise(per_op, calls * steps_per_call, wall / (calls * steps_per_call),
                   members * flops, peak)
  print(f"  member-steps/s: ensemble {members / out['step_s']:.0f} vs solo "
        f"{1 / solo['step_s']:.0f} (x{members * solo['step_s'] / out['step_s']:.2f})")
  return {"solo": solo, "ensemble": out}


PEER_PROFILE = r"""
import runpy, sys, time, json
from torch.profiler import profile, ProfilerActivity
g = runpy.run_path(sys.argv[1], run_name="peer")  # the peer's module, main() not run
step, _ = g["build_step"](g["parse_args"](sys.argv[2:]))
for _ in range(3): step()
with profile(activities=[ProfilerActivity.CPU]) as prof:
  t = time.perf_counter()
  for _ in range(STEPS): step()
  dt = (time.perf_counter() - t) / STEPS
ops = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
print(json.dumps({"step_s": dt, "ops_us": ops}))
"""


def peer_kind(op: str) -> str:
  """matmul | layout | elementwise for a torch.profiler op name ('aten::addmm')."""
  name = op.split("::")[-1]
  # transformers' SDPA attention runs as one fused op (its QK^T and PV matmuls with the
  # softmax between), as our fusions that hold dots count as matmul time.
  if (name in ("mm", "addmm", "bmm", "baddbmm", "matmul", "linear")
      or name.lstrip("_").startswith("scaled_dot_product")):
    return "matmul"
  if name in ("copy_", "contiguous", "clone", "transpose", "permute", "t", "view", "reshape",
              "cat", "stack"):
    return "layout"
  return "elementwise"


def peer_ops(args: list, steps: int) -> dict:
  """{step_s, ops_us}: the peer's own step (peer_torch.build_step with ARGS, its flags)
  under torch.profiler for STEPS steps, in a child process as the benchmark runs it."""
  code = PEER_PROFILE.replace("STEPS", str(steps))
  proc = subprocess.run([sys.executable, "-c", code, str(bench_peer.PEER), *args],
                        capture_output=True, text=True)
  if proc.returncode:  # an internal error: keep the peer's own traceback for the report
    raise RuntimeError(f"the peer's profile exited {proc.returncode}:\n{proc.stderr[-2000:]}")
  return json.loads(proc.stdout.strip().splitlines()[-1])


def profile_peer(case: str, steps: int) -> dict:
  from research import metrics
  res = peer_ops(bench_peer.peer_args(case), steps)
  kinds = collections.Counter()
  for op, us in res["ops_us"].items():
    kinds[peer_kind(op)] += us / steps / 1e6
  c = benchmark._regression_config(case, 1)
  from research.experiment import Experiment
  import jax
  exp = Experiment(c, jax.devices()[:1])
  flops = exp.built.train_flops_per_token * c.train.batch_size * exp.task.tokens_per_example
  peak, _ = metrics.device_peak_flops("float32")
  busy = sum(kinds.values())
  mfu = flops / res["step_s"] / peak if peak else 0.0
  print(f"== peer: {case}, {steps} profiled steps: step {1e3 * res['step_s']:.1f} ms "
        f"(self time summed {1e3 * busy:.1f} ms; MFU {100 * mfu:.1f}%)")
  for k, s in kinds.most_common():
    print(f"    {k:12s} {1e3 * s:8.2f} ms  {100 * s / busy:5.1f}%")
  if kinds["matmul"]:
    print(f"  matmul ops run the model FLOPs at {flops / kinds['matmul'] / 1e9:.0f} GFLOP/s")
  top = sorted(res["ops_us"].items(), key=lambda kv: -kv[1])[:8]
  print("  largest ops: " + ", ".join(f"{op} {v / steps / 1e3:.2f} ms" for op, v in top))
  return {"step_s": res["step_s"], "kinds_s": dict(kinds)}


def define_flags(fv) -> None:
  flags.DEFINE_enum("case", "garg_small", sorted(benchmark.CASES), "Benchmark case.",
                    flag_values=fv)
  flags.DEFINE_integer("steps", 20, "Profiled steps.", lower_bound=1, flag_values=fv)
  flags.DEFINE_integer("steps_per_call", 10, "Steps per jit call.", lower_bound=1,
                       flag_values=fv)
  flags.DEFINE_bool("peer", False, "Also profile the PyTorch peer.", flag_values=fv)
  flags.DEFINE_integer("ensemble", 0, "Instead: the tiny step solo and as an N-member "
                       "ensemble.", lower_bound=0, flag_values=fv)


def main(argv=None) -> None:
  args = cli.parse_flags(define_flags, argv, __doc__)
  # Whole jit calls are profiled: --steps 5 with 10 per call profiled 10 steps, --steps 3
  # with 2 per call 2, and --ensemble profiled the tiny step whatever --case or --peer said.
  if args.steps % args.steps_per_call:
    raise InputError(f"--steps={args.steps} is not a multiple of --steps_per_call="
                     f"{args.steps_per_call}; whole jit calls are profiled, e.g. --steps="
                     f"{max(1, round(args.steps / args.steps_per_call)) * args.steps_per_call}")
  if args.ensemble:
    ignored = [f for f, given in (("--case", args["case"].present), ("--peer", args.peer)) if given]
    if ignored:
      raise InputError(f"--ensemble profiles the tiny preset's step alone; drop {ignored[0]}")
  if args.peer:
    bench_peer.require_peer()
  if args.ensemble:
    print(json.dumps(profile_ensemble(args.ensemble, args.steps, args.steps_per_call)))
    return
  out = {"ours": profile_ours(args.case, args.steps, args.steps_per_call)}
  if args.peer:
    out["peer"] = profile_peer(args.case, args.steps)
  print(json.dumps(out))


if __name__ == "__main__":
  cli.run_script(main)
