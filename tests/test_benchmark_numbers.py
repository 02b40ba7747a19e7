"""The benchmarks' arithmetic on fake clocks and hand-made records (experiments/benchmark.py,
experiments/bench_features.py): step time, FLOPs and MFU, Garg et al.'s shapes, the compile
rounds and the feature ratios."""
import types

import pytest

from experiments import bench_features, benchmark


def test_benchmark_step_time_flops_and_mfu_arithmetic(monkeypatch):
  """With a clock that advances 1 s per read, the steady phase (4 steps as 2 calls of 2) takes
  1 s: step_s = 1/4 and every rate follows from it and the model's FLOPs per token."""
  from research import metrics
  from research.experiment import Experiment
  import jax
  ticks = iter(range(1000))
  monkeypatch.setattr(benchmark, "time", types.SimpleNamespace(
      perf_counter=lambda: float(next(ticks))))
  monkeypatch.setattr(metrics, "device_peak_flops", lambda *a, **k: (1e9, "test"))
  c = benchmark._regression_config("tiny", 2, sets={"model.num_layers": "1",
                                                    "model.width": "16"})
  r = benchmark._measure("tiny", c, steps=4, steps_per_call=2)
  exp = Experiment(c, jax.devices()[:1])
  tokens = 64 * exp.task.tokens_per_example
  flops = exp.built.train_flops_per_token * tokens
  assert (r["compile_s"], r["lower_s"], r["step_s"]) == (1.0, 1.0, 0.25)
  assert r["examples_per_s"] == 256 and r["tokens_per_s"] == tokens * 4
  assert r["flops_per_step"] == flops and r["mfu"] == pytest.approx(flops * 4 / 1e9)
  # first_step_s: from before the set-up (tick 0) to after the first call (tick 4): set-up,
  # trace + lower, compile and one call, not only what follows the compile.
  assert r["first_step_s"] == 4.0
  # The loss recorded is the LAST step's of the last call (the 6th step: 3 calls of 2), not
  # the first step of that call.
  state, fn = exp.init_state(), exp.multi_step_jit(2)
  for _ in range(3):
    state, m = fn(state, exp.root_key)
  assert r["loss"] == float(m["loss"][-1]) != float(m["loss"][0])


def test_benchmark_garg_cases_are_garg_et_als_shapes():
  """Garg et al.: d = 20, 41 points per prompt, batch 64 (the tiny case keeps the cpu task)."""
  c = benchmark._regression_config("garg_small", 1)
  assert (c.task.n_dims, c.task.n_points, c.train.batch_size) == (20, 41, 64)
  assert (c.model.num_layers, c.model.num_heads, c.model.width) == (6, 4, 128)
  c = benchmark._regression_config("garg_standard", 1)
  assert (c.task.n_dims, c.task.n_points, c.model.num_layers, c.model.width) == (20, 41, 12, 256)


def test_benchmark_compile_rounds_cache_and_default_steps(monkeypatch):
  """_compile_rounds: the ratios of the MEDIANS over the rounds (unrolled compile 6, 1, 8 ->
  6; scanned 2, 2, 5 -> 2), unrolled over scanned; compile_cache: cold over warm first call;
  steps_per_call times 500 steps when --steps is not given."""
  class A(types.SimpleNamespace):
    def __getitem__(self, name):
      return types.SimpleNamespace(present=False)
  a = A(pairs=3, steps=100, set=[])
  runs = iter([{"lower_s": 2.0, "compile_s": 6.0}, {"lower_s": 1.0, "compile_s": 2.0},
               {"lower_s": 2.0, "compile_s": 1.0}, {"lower_s": 1.0, "compile_s": 2.0},
               {"lower_s": 2.0, "compile_s": 8.0}, {"lower_s": 1.0, "compile_s": 5.0}])
  monkeypatch.setattr(benchmark, "_spawn", lambda *a, **k: next(runs))
  out = bench_features._compile_rounds(a, "scan_compile_ladder", ("deep24",), "", "XLA:CPU")
  assert out["deep24"]["compile_ratio"] == 3.0
  assert out["deep24"]["lower_and_compile_ratio"] == pytest.approx(8 / 3)
  first = iter([{"first_step_s": 8.0}, {"first_step_s": 2.0}])
  monkeypatch.setattr(bench_features, "_ours", lambda *a, **k: next(first))
  assert bench_features.compile_cache_case(a) == {"cold_s": 8.0, "warm_s": 2.0, "ratio": 4.0}
  asked = []
  monkeypatch.setattr(benchmark, "_spawn", lambda *args, **k: asked.append(args) or {"step_s": 1.0})
  bench_features.steps_per_call_case(a)
  assert {s for args in asked for s in args if s.startswith("--steps=")} == {"--steps=500"}


def test_benchmark_feature_ratios_are_the_baselines_over_the_variants(monkeypatch):
  """'compile xR' is unrolled / scanned (> 1: scanning compiles faster); 'speed_vs_BASE' is
  BASE's median step over the variant's (> 1: the variant is faster); 'ratio' of
  steps_per_call is 1-step-per-call time over 50-steps-per-call time."""
  r = bench_features._scan_ratios("x", {"compile_s": 6.0, "lower_s": 2.0},
                                  {"compile_s": 2.0, "lower_s": 2.0})
  assert r == {"compile_ratio": 3.0, "lower_and_compile_ratio": 2.0}

  class A(types.SimpleNamespace):
    def __getitem__(self, name):
      return types.SimpleNamespace(present=name == "steps")
  a = A(pairs=3, steps=10, steps_per_call=5, set=[])
  times = iter([0.4, 0.1, 0.2, 0.1, 0.4, 0.2])  # rounds of (base, fast): medians 0.4, 0.1
  monkeypatch.setattr(bench_features, "_ours",
                      lambda *a, **k: {"step_s": next(times), "examples_per_s": 1.0,
                                       "temp_bytes": 0})
  out = bench_features._rounds(a, "remat", "garg_small", {"base": {}, "fast": {}})
  assert out["fast"]["speed_vs_base"] == 4.0 and out["base"]["speed_vs_base"] == 1.0
  assert out["fast"]["median_step_s"] == 0.1

  spawned = iter([{"step_s": 0.5}, {"step_s": 0.125}, {"step_s": 1.0}, {"step_s": 0.5}])
  monkeypatch.setattr(benchmark, "_spawn", lambda *a, **k: next(spawned))
  out = bench_features.steps_per_call_case(a)
  assert out["tiny_preset"]["ratio"] == 4.0 and out["tiny"]["ratio"] == 2.0


def test_benchmark_pairs_reach_the_garg_cases_only_with_vs_peer():
  """--pairs is read by the paired cases, and by garg_small only with --vs-peer: without it
  `--cases garg_small --pairs 5` would measure once, silently, so it is refused."""
  from research.errors import InputError

  class A(types.SimpleNamespace):
    def __getitem__(self, name):
      return types.SimpleNamespace(present=name == "pairs")
  with pytest.raises(InputError, match="--pairs applies to"):
    bench_features.check_flags_reach(A(vs_peer=False, cases=["garg_small"], set=[]))
  bench_features.check_flags_reach(A(vs_peer=True, cases=["garg_small"], set=[]))  # control
  bench_features.check_flags_reach(A(vs_peer=False, cases=["remat"], set=[]))
