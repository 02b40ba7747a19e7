"""experiments/peer_torch.py: the benchmark's PyTorch peer keeps the one-line interface
experiments/benchmark.py parses, and says how to install it when torch is missing."""
import importlib.util
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / "experiments" / "peer_torch.py"
LINE = re.compile(r"^peer=hf_gpt2_torch params=(\d+) step_s=([\d.]+) "
                  r"examples_per_s=([\d.]+) loss=([\d.]+)$")


def _run(code_or_args, hide_torch=False):
  """Runs the peer as a script; with hide_torch, as if torch were not installed."""
  if hide_torch:
    # A None entry in sys.modules makes `import torch` raise ImportError.
    code = ("import sys, runpy; sys.modules['torch'] = None; sys.argv = [%r]; "
            "runpy.run_path(%r, run_name='__main__')" % (str(PEER), str(PEER)))
    cmd = [sys.executable, "-c", code]
  else:
    cmd = [sys.executable, str(PEER), *code_or_args]
  return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_missing_torch_is_one_line_naming_the_extra():
  r = _run([], hide_torch=True)
  assert r.returncode == 2
  lines = r.stderr.strip().splitlines()
  assert len(lines) == 1 and "pip install -e .[bench]" in lines[0], r.stderr
  assert "Traceback" not in r.stderr


def test_importing_without_torch_raises_import_error_naming_the_extra(monkeypatch):
  monkeypatch.setitem(sys.modules, "torch", None)
  spec = importlib.util.spec_from_file_location("peer_torch_probe", PEER)
  with pytest.raises(ImportError, match=r"pip install -e \.\[bench\]"):
    spec.loader.exec_module(importlib.util.module_from_spec(spec))


@pytest.mark.skipif(importlib.util.find_spec("torch") is None
                    or importlib.util.find_spec("transformers") is None,
                    reason="needs the bench extra (torch, transformers)")
def test_prints_the_line_the_benchmark_parses():
  r = _run(["--n_dims=4", "--n_points=5", "--n_embd=16", "--n_layer=1", "--n_head=2",
            "--batch=4", "--steps=2", "--warmup=1", "--threads=1"])
  assert r.returncode == 0, r.stderr
  m = LINE.match(r.stdout.strip().splitlines()[-1])
  assert m, r.stdout
  # read-in (4*16+16) + read-out (16+1) + GPT-2 with 1 layer, width 16, 10 positions.
  width, positions = 16, 10
  block = 2 * 2 * width + (3 * width * width + 3 * width) + (width * width + width) \
      + (4 * width * width + 4 * width) + (4 * width * width + width)
  gpt2 = 50257 * width + positions * width + block + 2 * width
  assert int(m.group(1)) == (4 * width + width) + (width + 1) + gpt2


def test_bad_step_count_exits_2():
  if importlib.util.find_spec("torch") is None:
    pytest.skip("argument checks run after the torch import")
  r = _run(["--steps=0"])
  assert r.returncode == 2 and "--steps" in r.stderr


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs the bench extra")
def test_host_matmul_rates_are_reported_beside_the_ratio():
  """--vs-peer prints this host's XLA and PyTorch matmul rates: the ratio moves with them."""
  from experiments import bench_peer
  r = bench_peer.child_matmul(n=256, reps=3)
  assert r["n"] == 256 and r["xla_flops_per_s"] > 1e8 and r["torch_flops_per_s"] > 1e8
  assert r["xla_over_torch"] == pytest.approx(r["xla_flops_per_s"] / r["torch_flops_per_s"])
  assert "mlp" not in r
  # With a case: its MLP matmul as the step runs it, forward and both gradients.
  # Garg small: 64 prompts of 41 (x, y) pairs = 5,248 tokens, width 128, MLP 512; each
  # orientation is the same 2 * 5248 * 128 * 512 FLOPs, and XLA's and torch's products agree.
  r = bench_peer.child_matmul("garg_small", n=64, reps=2)
  mlp = r.pop("mlp")
  assert (mlp.pop("tokens"), mlp.pop("width"), mlp.pop("hidden")) == (5248, 128, 512)
  assert set(mlp) == {"NN", "NT", "TN"}
  for v in mlp.values():
    assert v["flops"] == 2 * 5248 * 128 * 512
    assert v["xla_flops_per_s"] > 1e8 and v["torch_flops_per_s"] > 1e8


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="needs the bench extra (torch)")
def test_a_prefix_of_a_flag_is_refused_not_taken_for_it(capsys):
  """argparse's allow_abbrev took `--step=2` for --steps; the full name still parses."""
  spec = importlib.util.spec_from_file_location("peer_torch_flags", PEER)
  peer = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(peer)
  assert peer.parse_args(["--steps=2"]).steps == 2
  with pytest.raises(SystemExit) as e:
    peer.parse_args(["--step=2"])
  assert e.value.code == 2 and "unrecognized arguments: --step=2" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("torch") is None
                    or importlib.util.find_spec("transformers") is None,
                    reason="needs the bench extra (torch, transformers)")
def test_profile_step_profiles_the_peers_own_step():
  """profile_step --peer builds the step peer_torch.main times (build_step), not a copy;
  it found no `step` once main() came to define it (a KeyError in the child)."""
  from experiments import profile_step
  res = profile_step.peer_ops(["--n_dims=4", "--n_points=5", "--n_embd=16", "--n_layer=1",
                               "--n_head=2", "--batch=4", "--threads=1"], steps=2)
  assert res["step_s"] > 0
  assert any(op.endswith(("::mm", "::addmm")) for op in res["ops_us"]), sorted(res["ops_us"])


@pytest.mark.parametrize("op,kind", [
    ("aten::addmm", "matmul"), ("aten::mm", "matmul"), ("aten::bmm", "matmul"),
    ("aten::_scaled_dot_product_flash_attention_for_cpu", "matmul"),
    ("aten::_scaled_dot_product_flash_attention_for_cpu_backward", "matmul"),
    ("aten::scaled_dot_product_attention", "matmul"),
    ("aten::transpose", "layout"), ("aten::copy_", "layout"),
    ("aten::tanh", "elementwise"), ("aten::mul", "elementwise"), ("aten::softmax", "elementwise")])
def test_profile_step_counts_the_peers_fused_attention_as_matmul_time(op, kind):
  """transformers 5 runs GPT-2's attention as one SDPA op holding QK^T and PV, as our dot
  fusions hold theirs: counted as elementwise, the peer's matmul rate read too high."""
  from experiments import profile_step
  assert profile_step.peer_kind(op) == kind


# ------------------------------------- the peer's and the profile's arithmetic (no torch needed)
# The numbers the benchmark and profile_step print, from canned measurements: without the bench
# extra the tests above that run torch are skipped, and these still check the arithmetic.
def test_peer_runs_the_cases_configuration():
  """garg_small (benchmark.CASES: 6 layers, 4 heads, width 128; Garg's d = 20, 41 points;
  batch 64) as the peer's GPT-2 flags, on every core."""
  import os
  from experiments import bench_peer
  assert bench_peer.peer_args("garg_small") == [
      "--n_layer=6", "--n_head=4", "--n_embd=128", "--n_dims=20", "--n_points=41", "--batch=64",
      f"--threads={os.cpu_count()}"]


def test_vs_peer_reports_ours_over_the_peers_rate_and_the_median_pair(monkeypatch, capsys):
  """Three pairs at ours / peer examples per second 100/100, 150/100, 400/100: speed ratios
  1.0, 1.5, 4.0, median 1.5 (the mean, 2.17, is pulled by one noisy pair); peak RSS ratio
  ours / peer 2.0, 1.0, 0.5, median 1.0. The warm-up pair is not a pair."""
  from experiments import bench_peer, benchmark
  ours = iter([1.0, 100.0, 150.0, 400.0])  # the warm-up first
  rss = iter([1.0, 200.0, 100.0, 50.0])
  host = {"n": 64, "xla_flops_per_s": 2e9, "torch_flops_per_s": 1e9, "xla_over_torch": 2.0,
          "mlp": {}}

  def spawn(child, *args):
    if child == "--child=ours":
      return {"examples_per_s": next(ours), "peak_rss_mb": next(rss), "mfu": 0.1}
    if child == "--child=peer":
      return {"examples_per_s": 100.0, "peak_rss_mb": 100.0}
    return host
  monkeypatch.setattr(benchmark, "_spawn", spawn)
  out = bench_peer.vs_peer("garg_small", pairs=3, steps=10, steps_per_call=5)
  assert [r["speed_ratio"] for r in out["pairs"]] == [1.0, 1.5, 4.0]
  assert [r["memory_ratio"] for r in out["pairs"]] == [2.0, 1.0, 0.5]
  assert (out["median_speed_ratio"], out["median_memory_ratio"]) == (1.5, 1.0)
  assert "median speed ratio x1.50" in capsys.readouterr().out


class _FakeTensor:
  """The few torch.Tensor methods child_matmul uses, on a numpy array."""

  def __init__(self, a):
    self.a = a

  def t(self):
    return _FakeTensor(self.a.T)

  def __matmul__(self, other):
    return _FakeTensor(self.a @ other.a)

  def numpy(self):
    return self.a


def test_matmul_flops_count_each_orientation_of_the_mlp_matmul(monkeypatch):
  """Garg small's MLP matmul, [64 x 82 tokens, 128] x [128, 512], in its three orientations
  (forward NN, input gradient NT, weight gradient TN) is 2 x 5248 x 128 x 512 FLOPs each; the
  square one 2 n^3. torch stood in by numpy (the bench extra is not needed to count)."""
  import contextlib
  import types
  from experiments import bench_peer
  fake = types.SimpleNamespace(set_num_threads=lambda n: None, no_grad=contextlib.nullcontext,
                               from_numpy=_FakeTensor)
  monkeypatch.setitem(sys.modules, "torch", fake)
  r = bench_peer.child_matmul("garg_small", n=64, reps=1)
  assert r["n"] == 64 and r["xla_over_torch"] == r["xla_flops_per_s"] / r["torch_flops_per_s"]
  mlp = r["mlp"]
  assert (mlp["tokens"], mlp["width"], mlp["hidden"]) == (5248, 128, 512)
  assert [mlp[k]["flops"] for k in ("NN", "NT", "TN")] == [2 * 5248 * 128 * 512] * 3


class _FakeExperiment:
  """An Experiment whose step does nothing: 1000 train FLOPs a token, 10 tokens an example."""
  num_params = 1

  def __init__(self, c, devices=None, *a):
    self.built = types.SimpleNamespace(train_flops_per_token=1000.0)
    self.task = types.SimpleNamespace(tokens_per_example=10)

  def multi_step_fn(self, k):
    return lambda carry: (carry, 0.0)

  def init_state(self):
    return 0


def _fake_profiling(monkeypatch, traces):
  """Experiment / Ensemble replaced by _FakeExperiment, the device peak 1e9 FLOP/s, and each
  _trace call returning the next of `traces` ((op -> microseconds, wall seconds))."""
  from experiments import profile_step
  from research import ensemble, experiment, metrics
  monkeypatch.setattr(experiment, "Experiment", _FakeExperiment)
  monkeypatch.setattr(ensemble, "Ensemble", _FakeExperiment)
  monkeypatch.setattr(metrics, "device_peak_flops", lambda dtype: (1e9, "fake"))
  it = iter(traces)
  monkeypatch.setattr(profile_step, "_trace", lambda fn, carry, calls: next(it))
  return profile_step


def test_profile_splits_op_time_per_step_and_counts_mfu_on_the_wall_step(monkeypatch):
  """20 profiled steps (2 calls of 10): dot ops 100,000 us and copies 20,000 us, so 5 ms and
  1 ms a step; wall 0.2 s, so 10 ms a step. A step is 1000 FLOPs/token x 10 tokens x a batch
  of 64 = 640,000 FLOPs: MFU 640,000 / 0.01 s / 1e9 = 6.4%, matmul rate 640,000 / 5 ms =
  1.28e8 FLOP/s."""
  import collections
  ps = _fake_profiling(monkeypatch, [(collections.Counter({"dot.1": 100_000.0,
                                                           "copy.2": 20_000.0}), 0.2)])
  out = ps.profile_ours("garg_small", steps=20, steps_per_call=10)
  assert out["kinds_s"] == pytest.approx({"matmul": 0.005, "layout": 0.001})
  assert out["step_s"] == pytest.approx(0.01) and out["ops_s"] == pytest.approx(0.006)
  assert out["mfu"] == pytest.approx(0.064)
  assert out["matmul_flops_per_s"] == pytest.approx(1.28e8)


def test_profile_of_an_ensemble_step_counts_every_members_flops(monkeypatch, capsys):
  """Solo: 10 steps in 0.1 s (10 ms). An ensemble of 4: 10 steps in 0.2 s (20 ms) doing 4
  members' FLOPs: MFU 4 x that of one step's FLOPs at 20 ms, 2x the solo MFU; 4 / 0.02 = 200
  member-steps/s vs 100, x2.00."""
  import collections
  from experiments import bench_ensemble
  batch = bench_ensemble._ensemble_config().train.batch_size
  ps = _fake_profiling(monkeypatch, [(collections.Counter({"dot.1": 50_000.0}), 0.1),
                                     (collections.Counter({"dot.1": 100_000.0}), 0.2)])
  out = ps.profile_ensemble(4, steps=10, steps_per_call=10)
  flops = 1000.0 * batch * 10
  assert out["solo"]["mfu"] == pytest.approx(flops / 0.01 / 1e9)
  assert out["ensemble"]["mfu"] == pytest.approx(4 * flops / 0.02 / 1e9)
  assert out["ensemble"]["matmul_flops_per_s"] == pytest.approx(4 * flops / 0.01)
  assert "member-steps/s: ensemble 200 vs solo 100 (x2.00)" in capsys.readouterr().out


def test_profile_of_the_peer_counts_mfu_on_its_step(monkeypatch, capsys):
  """The peer's 20 profiled steps: mm 100,000 us, add 20,000 us (5 and 1 ms a step), its
  step 10 ms: MFU 640,000 FLOPs / 0.01 s / 1e9 = 6.4%."""
  ps = _fake_profiling(monkeypatch, [])
  monkeypatch.setattr(ps, "peer_ops", lambda args, steps: {
      "step_s": 0.01, "ops_us": {"aten::mm": 100_000.0, "aten::add": 20_000.0}})
  out = ps.profile_peer("garg_small", steps=20)
  assert out == {"step_s": 0.01, "kinds_s": pytest.approx({"matmul": 0.005,
                                                           "elementwise": 0.001})}
  assert "MFU 6.4%" in capsys.readouterr().out


@pytest.mark.parametrize("op, kind", [
    ("dot.3", "matmul"), ("ynn_fusion.1", "matmul"), ("copy.2", "layout"),
    ("transpose.7", "layout"), ("reduce.4", "reduce"), ("loop_reduce_fusion.9", "reduce"),
    ("while.1", "control"), ("add.5", "elementwise"), ("loop_add_fusion", "elementwise")])
def test_profile_kinds_of_our_ops(op, kind):
  """XLA:CPU op names '<name>.<id>': a reduce anywhere in the name (XLA names a fusion by its
  root: loop_reduce_fusion) is reduce time."""
  from experiments import profile_step
  assert profile_step.kind_of(op) == kind
