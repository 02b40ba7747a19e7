"""The `ensemble` case of experiments.benchmark: 16 seeds of the tiny regression config as
one vmapped program (research.ensemble) against 16 sequential runs, end to end (the sweep
command's two paths, each in a fresh process) and in steady state (the compiled step alone).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from experiments import benchmark


def _ensemble_config():
  from configs import icl_regression
  c = icl_regression.get_config("tiny")
  c.optim.name = "adamw"  # so that weight decay is a member value too
  c.mesh.data = 1
  return c


def child_sweep(mode: str, members: int) -> dict:
  """One sweep of `members` seeds (ensemble on or off) in a fresh process with a fresh
  persistent compilation cache: what a user waits for from a cold start."""
  import jax
  from research import sweep

  c = _ensemble_config()
  # Removed afterwards: each child left ~20 MB of runs and cache in /tmp.
  with tempfile.TemporaryDirectory(prefix="bench_ensemble_") as work:
    c.train.compile_cache_dir = str(Path(work) / "compile_cache")
    t = time.perf_counter()
    rows = sweep.run_sweep(c, [{"seed": s} for s in range(members)], Path(work) / mode,
                           ensemble=mode, devices=jax.devices()[:1]).rows
    wall = time.perf_counter() - t
  assert all(r["status"] == "done" for r in rows.values()), rows
  return {"wall_s": wall, "steps": c.train.num_steps}


def ensemble_case(members: int, steady_steps: int) -> dict:
  """16 seeds of the tiny regression config: one vmapped program vs 16 sequential runs.

  Two measurements, both printed. End to end: the sweep command's two paths
  (research.sweep.run_sweep with ensemble on / off) on the `tiny` preset as it is
  (40 steps), each in its own fresh process with a fresh persistent cache (the
  sequential runs after the first hit it): imports, set-up, compilation, training,
  checkpoints, probes and files, which is what a user waits for. Steady state: the
  compiled train step alone after warm-up, solo vs the ensemble, over `steady_steps`
  steps: the compute the two do per member.
  """
  import jax
  from research import ensemble
  from research.experiment import Experiment

  c = _ensemble_config()
  seeds = [{"seed": s} for s in range(members)]
  dev = jax.devices()[:1]
  # Process start (interpreter, imports, JAX) counts too: time the child from outside.
  wall = {}
  for mode in ("on", "off"):
    t = time.perf_counter()
    r = benchmark._spawn("--child=sweep", f"--mode={mode}", f"--members={members}")
    wall[mode] = time.perf_counter() - t
    wall[mode + "_in_process"] = r["wall_s"]
  e2e = {"ensemble_member_steps_per_s": members * c.train.num_steps / wall["on"],
         "sequential_member_steps_per_s": members * c.train.num_steps / wall["off"],
         "ensemble_wall_s": wall["on"], "sequential_wall_s": wall["off"],
         "ensemble_sweep_s": wall["on_in_process"], "sequential_sweep_s": wall["off_in_process"],
         "speedup": wall["off"] / wall["on"], "steps": c.train.num_steps}

  k = 50
  c.train.compile_cache_dir = ""

  def step_time(fn, carry):
    carry, m = fn(carry)
    jax.block_until_ready(m)
    t = time.perf_counter()
    for _ in range(max(1, steady_steps // k)):
      carry, m = fn(carry)
    jax.block_until_ready(m)
    return (time.perf_counter() - t) / (max(1, steady_steps // k) * k)

  exp = Experiment(c, dev)
  solo_s = step_time(exp.multi_step_fn(k), exp.init_state())
  ens = ensemble.Ensemble(c, seeds, dev)
  ens_s = step_time(ens.multi_step_fn(k), ens.init_state())
  steady = {"solo_step_ms": 1e3 * solo_s, "ensemble_step_ms": 1e3 * ens_s,
            "ensemble_member_steps_per_s": members / ens_s,
            "sequential_member_steps_per_s": 1 / solo_s, "speedup": members * solo_s / ens_s,
            "solo_mfu": benchmark._mfu(exp.built.train_flops_per_token * c.train.batch_size
                             * exp.task.tokens_per_example / solo_s)}
  print(f"  end to end (tiny preset, {e2e['steps']} steps, the sweep command's two paths, each a fresh process): "
        f"ensemble of {members} {wall['on']:.1f} s vs {members} sequential runs "
        f"{wall['off']:.1f} s -> {e2e['ensemble_member_steps_per_s']:.0f} vs "
        f"{e2e['sequential_member_steps_per_s']:.0f} member-steps/s, x{e2e['speedup']:.2f}",
        flush=True)
  print(f"  steady state (compiled step only, {k} steps per call): solo {1e3 * solo_s:.2f} ms "
        f"(MFU {100 * (steady['solo_mfu'] or 0):.1f}%), ensemble {1e3 * ens_s:.1f} ms -> "
        f"{steady['ensemble_member_steps_per_s']:.0f} vs {steady['sequential_member_steps_per_s']:.0f}"
        f" member-steps/s, x{steady['speedup']:.2f}", flush=True)
  return {"members": members, "end_to_end": e2e, "steady_state": steady}
