"""The benchmark's side-by-side comparison with the PyTorch peer (`experiments/peer_torch.py`,
the `bench` extra): `python -m experiments.benchmark --cases garg_small,garg_standard --vs-peer`.

Our trainer and the peer run the same configuration, each in a fresh child process,
interleaved A B A B ... after a warm-up pair; a ratio is reported per pair and as the median,
because only side-by-side ratios mean anything on a noisy machine.
"""
from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from pathlib import Path

from research.errors import InputError

PEER = Path(__file__).resolve().parent / "peer_torch.py"


def require_peer() -> None:
  """--vs-peer / --peer: refused before anything is measured when the bench extra is missing."""
  import importlib.util
  if not all(importlib.util.find_spec(m) for m in ("torch", "transformers")):
    raise InputError("the PyTorch peer needs torch and transformers: pip install -e '.[bench]'")


def peer_args(case: str) -> list[str]:
  """The peer's flags for the case's configuration (benchmark._regression_config: model,
  prompt and batch), on every core as our side runs."""
  from experiments.benchmark import _regression_config
  c = _regression_config(case, 1)
  m, t = c.model, c.task
  return [f"--n_layer={m.num_layers}", f"--n_head={m.num_heads}", f"--n_embd={m.width}",
          f"--n_dims={t.n_dims}", f"--n_points={t.n_points}", f"--batch={c.train.batch_size}",
          f"--threads={os.cpu_count()}"]


def child_peer(case: str, steps: int) -> dict:
  """Runs the peer script in this process; prints one JSON line."""
  import contextlib
  import io
  import runpy
  sys.argv = [str(PEER), *peer_args(case), f"--steps={steps}", "--warmup=3"]
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    runpy.run_path(str(PEER), run_name="__main__")
  fields = dict(kv.split("=") for kv in out.getvalue().split() if "=" in kv)
  return {"impl": "peer", "case": case, "params": int(fields["params"]),
          "step_s": float(fields["step_s"]), "examples_per_s": float(fields["examples_per_s"]),
          "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
          "loss": float(fields["loss"])}


def child_matmul(case: str = "", n: int = 2048, reps: int = 10) -> dict:
  """This host's fp32 matmul rate in XLA and in PyTorch (n x n, best of `reps`, same
  process, all cores). The ours/peer ratio moves with it from host to host (README: x1.12 on
  one host, x0.88 on another), so it is reported beside the ratio. With a CASE, also the
  case's MLP matmul ([batch x tokens, width] x [width, 4 width]) in the three orientations a
  train step runs it: forward (NN), the input's gradient (NT) and the weight's (TN)."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  import torch

  torch.set_num_threads(os.cpu_count())
  rng = np.random.default_rng(0)

  def best(call) -> float:
    call()
    times = []
    for _ in range(reps):
      t = time.perf_counter()
      call()
      times.append(time.perf_counter() - t)
    return min(times)

  def rates(lhs, rhs, dims) -> tuple[float, float, float]:
    """(XLA, PyTorch FLOP/s, FLOPs) of dot_general(lhs, rhs) contracting DIMS; the two
    products must agree, or the orientations timed were not the same matmul."""
    x, y = (jnp.asarray(v) for v in (lhs, rhs))
    mm = jax.jit(lambda a, b: jax.lax.dot_general(a, b, (dims, ((), ()))))
    flops = 2 * lhs.size * rhs.shape[1 - dims[1][0]]
    t_x = best(lambda: mm(x, y).block_until_ready())
    a, b = torch.from_numpy(lhs.copy()), torch.from_numpy(rhs.copy())
    a, b = (a.t() if dims[0][0] == 0 else a), (b.t() if dims[1][0] == 1 else b)
    with torch.no_grad():
      t_t = best(lambda: a @ b)
      np.testing.assert_allclose(np.asarray(mm(x, y)), (a @ b).numpy(), rtol=1e-3, atol=1e-2)
    return flops / t_x, flops / t_t, flops

  sq = rng.standard_normal((n, n)).astype(np.float32)
  xla, peer, _ = rates(sq, sq, ((1,), (0,)))
  out = {"n": n, "xla_flops_per_s": xla, "torch_flops_per_s": peer, "xla_over_torch": xla / peer}
  if case:
    from experiments.benchmark import _regression_config
    c = _regression_config(case, 1)
    tokens = c.train.batch_size * 2 * c.task.n_points  # (x, y) interleaved: 2 tokens a point
    width, hidden = c.model.width, int(c.model.width * c.model.mlp_ratio)
    x = rng.standard_normal((tokens, width)).astype(np.float32)
    w = rng.standard_normal((width, hidden)).astype(np.float32)
    dy = rng.standard_normal((tokens, hidden)).astype(np.float32)
    out["mlp"] = {"tokens": tokens, "width": width, "hidden": hidden}
    for name, lhs, rhs, dims in (("NN", x, w, ((1,), (0,))), ("NT", dy, w, ((1,), (1,))),
                                 ("TN", x, dy, ((0,), (0,)))):
      xla, peer, flops = rates(lhs, rhs, dims)
      out["mlp"][name] = {"xla_flops_per_s": xla, "torch_flops_per_s": peer, "flops": flops}
  return out


def vs_peer(case: str, pairs: int, steps: int, steps_per_call: int,
            sets: dict | None = None) -> dict:
  from experiments.benchmark import _spawn, set_args
  ours = lambda: _spawn("--child=ours", f"--case={case}", f"--steps={steps}",
                        f"--steps_per_call={steps_per_call}", *set_args(sets or {}))
  peer = lambda: _spawn("--child=peer", f"--case={case}", f"--steps={max(10, steps // 5)}")
  ours(), peer()  # warm-up pair (page cache, compile cache)
  rows = []
  for i in range(pairs):
    a, b = ours(), peer()
    ratio = a["examples_per_s"] / b["examples_per_s"]
    mem = a["peak_rss_mb"] / b["peak_rss_mb"]
    print(f"  {case} pair {i}: ours {a['examples_per_s']:.0f} ex/s (MFU "
          f"{100 * (a['mfu'] or 0):.1f}%), peer {b['examples_per_s']:.0f} ex/s -> x{ratio:.2f}; "
          f"peak RSS {a['peak_rss_mb']:.0f} vs {b['peak_rss_mb']:.0f} MB (x{mem:.2f})", flush=True)
    rows.append({"ours": a, "peer": b, "speed_ratio": ratio, "memory_ratio": mem})
  med = statistics.median(r["speed_ratio"] for r in rows)
  host = _spawn("--child=matmul", f"--case={case}")
  print(f"  {case}: median speed ratio x{med:.2f}; median MFU "
        f"{100 * statistics.median(r['ours']['mfu'] or 0 for r in rows):.1f}%; this host's "
        f"{host['n']}² fp32 matmul: XLA {host['xla_flops_per_s'] / 1e9:.0f}, PyTorch "
        f"{host['torch_flops_per_s'] / 1e9:.0f} GFLOP/s (x{host['xla_over_torch']:.2f}); the "
        "case's MLP matmul (XLA / PyTorch GFLOP/s): " + ", ".join(
            f"{k} {v['xla_flops_per_s'] / 1e9:.0f} / {v['torch_flops_per_s'] / 1e9:.0f}"
            for k, v in host["mlp"].items() if k in ("NN", "NT", "TN")), flush=True)
  return {"pairs": rows, "median_speed_ratio": med, "set": sets or {}, "host_matmul": host,
          "median_memory_ratio": statistics.median(r["memory_ratio"] for r in rows)}
