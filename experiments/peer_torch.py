"""The benchmark's PyTorch peer: in-context linear regression trained as Garg et al. (2022)
train it, on Hugging Face transformers' GPT2Model -- what a researcher would pick instead of
this project.

  python experiments/peer_torch.py [--n_dims 20] [--n_points 41] [--n_embd 256]
      [--n_layer 12] [--n_head 8] [--batch 64] [--steps 20] [--warmup 3] [--threads 2]

`experiments/benchmark.py --vs-peer` runs it beside the project's own trainer on the same
configuration and parses its one output line:

  peer=hf_gpt2_torch params=N step_s=S examples_per_s=E loss=L

Setup (Garg et al. 2022, docs/REFERENCES.md): x ~ N(0, I_d), w ~ N(0, I_d), y = w.x; the
prompt interleaves (x_1, y_1, ..., x_n, y_n) as 2n tokens with y embedded as [y, 0, ..., 0];
read-in Linear(d, width), a GPT-2 backbone with every dropout off, read-out Linear(width, 1);
the prediction for y_i is read at x_i's position and the loss is the mean squared error over
all prefixes; plain Adam at 1e-4. Needs the `bench` extra (torch, transformers).
"""
from __future__ import annotations

import argparse
import sys
import time

_MISSING = ("experiments/peer_torch.py needs torch and transformers: "
            "pip install -e .[bench]")
try:
  import torch
  from transformers import GPT2Config, GPT2Model
except ImportError:
  if __name__ == "__main__":
    print(f"error: {_MISSING}", file=sys.stderr)
    sys.exit(2)
  raise ImportError(_MISSING) from None


def parse_args(argv=None) -> argparse.Namespace:
  # No prefixes: `--step=2` taken as --steps would pass a typo silently.
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
  p.add_argument("--n_dims", type=int, default=20, help="input dimension d")
  p.add_argument("--n_points", type=int, default=41, help="(x, y) pairs per prompt")
  p.add_argument("--n_embd", type=int, default=256, help="model width")
  p.add_argument("--n_layer", type=int, default=12)
  p.add_argument("--n_head", type=int, default=8)
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--steps", type=int, default=20, help="timed steps")
  p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
  p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
  args = p.parse_args(argv)
  if args.steps < 1 or args.n_dims < 1 or args.n_points < 1:
    p.error("--steps, --n_dims and --n_points must be at least 1")  # exits 2, one line
  return args


class InContextRegressor(torch.nn.Module):
  """Garg et al.'s model: read-in, GPT-2 backbone, read-out at x positions."""

  def __init__(self, n_dims: int, n_points: int, width: int, n_layer: int, n_head: int):
    super().__init__()
    # Dropout off everywhere: the project's trainer has none on this task, so both sides
    # do the same arithmetic per step.
    config = GPT2Config(n_positions=2 * n_points, n_embd=width, n_layer=n_layer,
                        n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        use_cache=False)
    self.read_in = torch.nn.Linear(n_dims, width)
    self.backbone = GPT2Model(config)
    self.read_out = torch.nn.Linear(width, 1)

  def forward(self, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    batch, n, d = xs.shape
    ys_wide = torch.cat([ys.view(batch, n, 1), torch.zeros(batch, n, d - 1)], dim=2)
    tokens = torch.stack((xs, ys_wide), dim=2).view(batch, 2 * n, d)
    hidden = self.backbone(inputs_embeds=self.read_in(tokens)).last_hidden_state
    return self.read_out(hidden)[:, ::2, 0]  # predictions of y_i, read at x_i


def build_step(args: argparse.Namespace):
  """(step, parameter count): one Adam step on a fresh batch per call, returning its loss.
  Module-level so that experiments/profile_step.py --peer profiles the same step."""
  torch.set_num_threads(args.threads)
  torch.manual_seed(0)
  model = InContextRegressor(args.n_dims, args.n_points, args.n_embd, args.n_layer,
                             args.n_head)
  opt = torch.optim.Adam(model.parameters(), lr=1e-4)
  n_params = sum(p.numel() for p in model.parameters())

  def step() -> float:
    xs = torch.randn(args.batch, args.n_points, args.n_dims)
    w = torch.randn(args.batch, args.n_dims, 1)
    ys = (xs @ w)[:, :, 0]
    loss = ((model(xs, ys) - ys) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()  # .item() synchronises, so the timer sees finished steps

  return step, n_params


def main(argv=None) -> None:
  args = parse_args(argv)
  step, n_params = build_step(args)
  for _ in range(args.warmup):
    step()
  t0 = time.perf_counter()
  for _ in range(args.steps):
    loss = step()
  step_s = (time.perf_counter() - t0) / args.steps
  print(f"peer=hf_gpt2_torch params={n_params} step_s={step_s:.4f} "
        f"examples_per_s={args.batch / step_s:.1f} loss={loss:.3f}")


if __name__ == "__main__":
  main()
