"""experiments/peer_torch.py: the benchmark's PyTorch peer keeps the one-line interface
experiments/benchmark.py parses, and says how to install it when torch is missing."""
import importlib.util
import re
import subprocess
import sys
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
