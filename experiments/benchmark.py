"""Training throughput, MFU, compile time and memory; optionally against the peer.

  python -m experiments.benchmark [--cases garg_small,garg_standard,...] [--vs-peer]
      [--pairs 3] [--set model.fused_qkv=True ...] [--out runs/benchmark.json]

Every measurement runs in a child process (so peak memory is per run and
caches are honest). With --vs-peer, our trainer and the PyTorch + Hugging Face
peer (`experiments/peer_torch.py`, needs the `bench` extra) run on the
same configuration interleaved A B A B ... after a warm-up pair
(experiments/bench_peer.py); the ratio is reported per pair and as the median,
because only side-by-side ratios are meaningful on a noisy machine.

Model FLOPs per step (MaxText-style): 6 x matmul parameters per token (read-in,
attention projections, MLP, read-out; no embedding lookups) plus the causal
attention term 6 x L x T x D per token (QK^T and AV, fwd+bwd, halved), times
tokens per step. MFU divides by step time and the peak: on CPU a large fp32
matmul measured at start-up (printed), on accelerators a per-device table.

The Transformer features of config.model (scan_layers, remat, attention,
fused_qkv) have their own cases in experiments/bench_features.py: `scan_compile`,
`remat`, `attention_qkv`; the `ensemble` case (16 seeds vmapped vs sequential) is in
experiments/bench_ensemble.py. `--set model.FIELD=VALUE` applies to the Garg cases and to
every program those cases, `scan_compile_tpu`, `scan_compile_ladder(_tpu)` and `compile_parts`
compare (a field a case varies is refused); the other cases run fixed configs, so a --set
with any of them is refused, as is a --pairs, --steps, --steps_per_call, --dtype or
--vs-peer that none of --cases reads.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from research.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


# Garg et al.'s configurations (REFERENCES.md): d = 20, 41 points, batch 64.
CASES = {
    "garg_small": dict(num_layers=6, num_heads=4, width=128),
    "garg_standard": dict(num_layers=12, num_heads=8, width=256),
    "tiny": dict(num_layers=3, num_heads=2, width=64),
    # Compile time, scanned vs unrolled (bench_features.scan_compile_case): deep, and the control.
    "deep24": dict(num_layers=24, num_heads=4, width=128),
    "shallow2": dict(num_layers=2, num_heads=4, width=128),
}


def _regression_config(case: str, steps_per_call: int, dtype: str = "float32",
                       sets: dict | None = None):
  from configs import icl_regression
  from research import cli, config_check
  c = icl_regression.get_config("cpu")
  m = CASES[case]
  c.model.num_layers, c.model.num_heads, c.model.width = m["num_layers"], m["num_heads"], m["width"]
  c.model.dtype = dtype
  c.model.positions = "learned"  # as the peer's GPT-2
  if case != "tiny":
    c.task.n_dims, c.task.n_points = 20, 41
  c.train.batch_size = 64
  c.optim.name, c.optim.learning_rate, c.optim.schedule = "adam", 1e-4, "constant"
  c.optim.warmup_steps, c.optim.grad_clip_norm = 0, 0.0  # as the peer: plain Adam
  c.train.steps_per_call = steps_per_call
  # Only the jitted call is timed (as child_config): the preset's cadences would refuse a
  # --steps_per_call that does not divide them (20 was refused by its log_every of 250).
  c.train.log_every, c.train.eval_every, c.train.checkpoint_every = steps_per_call, 0, 0
  c.mesh.data = 1
  if "train.steps_per_call" in (sets or {}):  # timed with the flag's value: ignored before
    raise InputError(f"--set train.steps_per_call={sets['train.steps_per_call']}: the benchmark "
                     "times --steps_per_call steps per call; pass --steps_per_call="
                     f"{sets['train.steps_per_call']}")
  # Last, so that a --set of a field the case sets (model.dtype, train.batch_size) holds.
  c = cli.apply_overrides(c, sets or {}, text=True, flag="--set ")
  # As research.main checks it: --set model.width=7 or train.batch_size=0 was measured
  # (0 ex/s, a NaN loss in the JSON) with exit 0.
  config_check.validate(c, 1)
  return c


def _measure(case: str, c, steps: int, steps_per_call: int) -> dict:
  """Builds config `c`'s trainer on one device and times it: set-up + compile + first call,
  then the steady step time over `steps`."""
  import jax
  from research import metrics
  from research.experiment import Experiment

  t0 = time.perf_counter()
  exp = Experiment(c, jax.devices()[:1])
  state = exp.init_state()
  t_lower = time.perf_counter()
  lowered = exp.multi_step_jit(steps_per_call).lower(state, exp.root_key)  # trace + lower
  t_compile = time.perf_counter()
  compiled = lowered.compile()
  compile_s = time.perf_counter() - t_compile
  memory = compiled.memory_analysis()  # XLA's buffers for the call (None where unsupported)
  fn = lambda s: compiled(s, exp.root_key)
  state, m = fn(state)
  jax.block_until_ready(m)
  first_step_s = time.perf_counter() - t0  # setup + compile + one call
  calls = max(1, steps // steps_per_call)
  t = time.perf_counter()
  for _ in range(calls):
    state, m = fn(state)
  jax.block_until_ready(m)
  step_s = (time.perf_counter() - t) / (calls * steps_per_call)
  tokens = c.train.batch_size * exp.task.tokens_per_example
  flops = exp.built.train_flops_per_token * tokens
  peak, src = metrics.device_peak_flops(c.model.dtype)
  return {"impl": "ours", "case": case, "model": c.model.name, "params": exp.num_params,
          "first_step_s": first_step_s, "lower_s": t_compile - t_lower, "compile_s": compile_s,
          "step_s": step_s, "temp_bytes": getattr(memory, "temp_size_in_bytes", 0),
          "examples_per_s": c.train.batch_size / step_s, "tokens_per_s": tokens / step_s,
          "flops_per_step": flops, "peak_flops": peak, "peak_source": src,
          "mfu": flops / step_s / peak if peak else None,
          "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
          "loss": float(m["loss"][-1]), "device": jax.devices()[0].device_kind}


def child_ours(case: str, steps: int, steps_per_call: int, dtype: str, sets: dict) -> dict:
  """Measures our trainer on a Garg case in this process; prints one JSON line."""
  from research.train import _enable_compile_cache

  _enable_compile_cache(os.environ.get("BENCH_CACHE", ""))
  return _measure(case, _regression_config(case, steps_per_call, dtype, sets),
                  steps, steps_per_call) | {"set": sets}


# Other model families through the same trainer: (config file, preset, overrides).
# lm_10m: byte vocabulary, context 256, 6 layers / width 384 (10.7M parameters) on a
# text file written here. lstm: Reddy's bursty classification with the LSTM that
# matches the Transformer's parameters. resnet_embedder: Chan's Omniglot sequences,
# every exemplar embedded by the ResNet (images come from tfds' mock data: only
# their shapes matter for throughput).
CONFIG_CASES = {
    # The `tiny` preset itself (2 layers / width 32, 11 points, batch 64): the config
    # whose dispatch cost steps_per_call exists for.
    "tiny_preset": ("configs/icl_regression.py", "tiny", {"train.num_steps": 1000}),
    "lm_10m": ("configs/lm.py", "cpu", {"model.num_layers": 6, "model.width": 384,
                                        "model.num_heads": 6, "task.seq_len": 256,
                                        "train.batch_size": 8}),
    "lstm": ("configs/bursty_classification.py", "cpu", {"model.name": "lstm"}),
    "resnet_embedder": ("configs/bursty_classification.py", "chan_cpu",
                        {"train.batch_size": 8, "task.n_rare": 150, "task.n_common": 10,
                         "task.n_holdout": 20}),  # class counts that fit the mock data
}


def _corpus_file() -> str:
  """~1 MB of text (this repository's Python sources, repeated) for the LM case."""
  text = "".join(p.read_text() for p in sorted((ROOT / "research").rglob("*.py")))
  path = Path(tempfile.mkdtemp(prefix="bench_lm_")) / "corpus.txt"
  path.write_text(text * max(1, 1_000_000 // len(text)))
  return str(path)


def child_config(case: str, steps: int, steps_per_call: int) -> dict:
  """Measures our trainer on CONFIG_CASES[case]; prints one JSON line."""
  import contextlib

  from research import cli, config_check

  path, preset, overrides = CONFIG_CASES[case]
  # Only the jitted training call is timed: no periodic evaluation, logging or saving.
  overrides = dict(overrides, **{"train.steps_per_call": steps_per_call, "mesh.data": 1,
                                 "train.eval_every": 0, "train.log_every": steps_per_call,
                                 "train.checkpoint_every": 0})
  if case == "lm_10m":
    overrides["task.path"] = _corpus_file()
  c = cli.apply_overrides(cli.load_config(f"{ROOT / path}:{preset}"), overrides)
  config_check.validate(c, 1)
  mock = contextlib.nullcontext()
  if c.task.get("source") == "omniglot":
    import tensorflow_datasets as tfds
    mock = tfds.testing.mock_data(num_examples=200)
  with mock:
    return _measure(case, c, steps, steps_per_call)


def _spawn(*args: str, env: dict | None = None) -> dict:
  proc = subprocess.run([sys.executable, "-m", "experiments.benchmark", *args], cwd=ROOT,
                        capture_output=True, text=True, env=env or os.environ.copy())
  lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
  if proc.returncode == 2:  # the child refused an input this command passed on (--set, ...)
    errs = [l[len("error: "):] for l in proc.stderr.splitlines() if l.startswith("error: ")]
    raise InputError((errs or [proc.stderr.strip()[-500:]])[-1])
  if proc.returncode or not lines:
    raise RuntimeError(f"benchmark child {args} failed:\n{proc.stderr[-3000:]}")
  return json.loads(lines[-1])


def set_args(sets: dict) -> list[str]:
  return [f"--set={k}={v}" for k, v in sets.items()]


def _mfu(flops_per_s: float) -> float | None:
  """MFU against the device peak; None where the peak is unknown (an accelerator
  missing from research/metrics.py's table)."""
  from research import metrics
  peak, _ = metrics.device_peak_flops("float32")
  return flops_per_s / peak if peak else None


def define_flags(fv) -> None:
  from absl import flags
  flags.DEFINE_list("cases", ["garg_small", "garg_standard", "lm_10m", "lstm", "resnet_embedder",
                              "steps_per_call", "compile_cache", "ensemble"],
                    "Cases to measure.", flag_values=fv)
  flags.DEFINE_bool("vs_peer", False, "Interleave with the PyTorch peer.", flag_values=fv)
  flags.DEFINE_alias("vs-peer", "vs_peer", flag_values=fv)
  flags.DEFINE_integer("pairs", 3, "Interleaved pairs with --vs-peer.", lower_bound=1,
                       flag_values=fv)
  flags.DEFINE_integer("steps", 100, "Timed steps per run.", lower_bound=1, flag_values=fv)
  flags.DEFINE_integer("steps_per_call", 10, "Steps per jit call.", lower_bound=1,
                       flag_values=fv)
  flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "Model dtype.", flag_values=fv)
  flags.DEFINE_multi_string("set", [], "FIELD=VALUE on the Garg cases' config and on "
                            "what scan_compile(_tpu, _ladder, _ladder_tpu), compile_parts, "
                            "remat and attention_qkv compare (repeatable), e.g. "
                            "model.fused_qkv=True.",
                            flag_values=fv)
  flags.DEFINE_string("out", "runs/benchmark.json", "Result file.", flag_values=fv)
  flags.DEFINE_enum("child", None, ["ours", "peer", "config", "sweep", "parts", "matmul"],
                    "Internal: measure one thing in this process.", flag_values=fv)
  flags.DEFINE_enum("mode", "on", ["on", "off", "auto"], "Internal: ensemble mode.", flag_values=fv)
  flags.DEFINE_integer("members", 16, "Internal: members.", lower_bound=1, flag_values=fv)
  flags.DEFINE_string("case", "garg_small", "Internal (--child): the case.", flag_values=fv)
  flags.DEFINE_string("part", "step", "Internal (--child=parts): the part.", flag_values=fv)
  flags.DEFINE_string("topology", "", "Internal (--child=parts): a TPU slice.", flag_values=fv)


def _check_child(a, sets: dict) -> None:
  """--child's own inputs, before any measurement (a wrong --case was a KeyError)."""
  from experiments import bench_features
  cases = {"ours": CASES, "peer": CASES, "matmul": CASES, "config": CONFIG_CASES,
           "parts": {**CASES, **bench_features.LADDER_CASES}}.get(a.child)
  if cases is not None and a.case not in cases:
    raise InputError(f"--child={a.child} --case={a.case}: unknown case; choose from: "
                     + ", ".join(sorted(cases)))
  if a.child == "parts" and a.case in bench_features.LADDER_CASES and a.part != "step":
    raise InputError(f"--case={a.case} compiles the whole step only; drop --part={a.part}")
  if a.child == "parts" and a.part not in bench_features.PARTS:
    raise InputError(f"--part={a.part}: unknown part; choose from: "
                     + ", ".join(bench_features.PARTS))
  if sets and a.child not in ("ours", "parts"):  # the other children run fixed configs
    raise InputError(f"--set applies to --child=ours and --child=parts, not --child={a.child}; "
                     "drop the --set")


def main(argv=None) -> None:
  from research import cli, output_paths
  from research.workdir import write_json

  a = cli.parse_flags(define_flags, argv, __doc__)
  from experiments import bench_ensemble, bench_features, bench_peer
  known = {"garg_small", "garg_standard", "ensemble", *CONFIG_CASES, *bench_features.CASES}
  sets = cli.overrides_from_args(a.set)
  if a.child:
    _check_child(a, sets)
  else:
    # The child-only flags do nothing here: `--case=lm_10m` (profile_step's spelling) would
    # run the whole default list.
    internal = [n for n in ("case", "mode", "members", "part", "topology") if a[n].present]
    if internal:
      raise InputError(f"--{internal[0]} is internal to the benchmark's child processes; "
                       "choose what to measure with --cases=NAME[,NAME]")
    if set(a.cases) - known:
      raise InputError(f"--cases: unknown {sorted(set(a.cases) - known)}; choose from: "
                       + ", ".join(sorted(known)))
    bench_features.check_sets(a.cases, sets)
    bench_features.check_flags_reach(a)
  children = {  # --child=NAME: one measurement in this process, printed as JSON for _spawn
      "ours": lambda: child_ours(a.case, a.steps, a.steps_per_call, a.dtype, sets),
      "sweep": lambda: bench_ensemble.child_sweep(a.mode, a.members),
      "config": lambda: child_config(a.case, a.steps, a.steps_per_call),
      "peer": lambda: bench_peer.child_peer(a.case, a.steps),
      "matmul": lambda: bench_peer.child_matmul(a.case),
      "parts": lambda: bench_features.child_parts(a.case, a.part, sets, a.topology)}
  if a.child:
    print(json.dumps(children[a.child]()))
    return
  output_paths.check_output(a.out, "--out", example="benchmark.json")  # now, not after the measurements
  if a.vs_peer:
    bench_peer.require_peer()
  results = {}
  for case in a.cases:
    print(f"== {case}", flush=True)
    if case in ("garg_small", "garg_standard"):
      if a.vs_peer:
        results[case] = bench_peer.vs_peer(case, a.pairs, a.steps, a.steps_per_call, sets)
      else:
        r = _spawn("--child=ours", f"--case={case}", f"--steps={a.steps}",
                   f"--steps_per_call={a.steps_per_call}", f"--dtype={a.dtype}", *set_args(sets))
        print(f"  {case}: {r['examples_per_s']:.0f} ex/s, step {1e3 * r['step_s']:.1f} ms, MFU "
              f"{100 * (r['mfu'] or 0):.1f}% of {r['peak_flops']:.3g} FLOP/s ({r['peak_source']}), "
              f"compile+first call {r['first_step_s']:.1f}s, peak RSS {r['peak_rss_mb']:.0f} MB")
        results[case] = r
    elif case in CONFIG_CASES:
      r = _spawn("--child=config", f"--case={case}", f"--steps={a.steps}",
                 f"--steps_per_call={a.steps_per_call}")
      print(f"  {case} ({r['model']}, {r['params'] / 1e6:.2f}M params): {r['examples_per_s']:.0f} "
            f"ex/s, {r['tokens_per_s']:.0f} tok/s, step {1e3 * r['step_s']:.1f} ms, MFU "
            f"{100 * (r['mfu'] or 0):.1f}%, compile+first call {r['first_step_s']:.1f}s, "
            f"peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
      results[case] = r
    elif case == "ensemble":
      results[case] = bench_ensemble.ensemble_case(16, 500)
    else:  # the rest of `known`
      results[case] = bench_features.CASES[case](a)
  Path(a.out).parent.mkdir(parents=True, exist_ok=True)
  write_json(a.out, results, indent=1)
  print(f"wrote {a.out}")


if __name__ == "__main__":
  from research import cli
  cli.run_script(main)
