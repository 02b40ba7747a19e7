r"""Scaling laws L(N, D) on a synthetic language: a second-order Markov token stream.

  python -m experiments.scaling_laws --preset=cpu --workdir=runs/scaling_laws
  python -m research.sweep --config=configs/scaling_laws.py:cpu --sweep=scaling_grid \
      --workdir=runs/scaling_laws

The task is configs/induction.py's source with the copied spans switched off
(repeat_prob = 0): every token is drawn from logits = bigram(previous token) +
skip-bigram(token two back), random tables fixed by the seed. Copied spans
would add an induction-head phase change (a loss plateau, then a drop) that a
sum of power laws cannot describe; the pure Markov stream is stationary and
unlimited (no token is seen twice), so D counts fresh tokens, and its entropy
is the known floor of the loss (experiments/scaling_laws.py reports it next
to the fitted E). The MLP stays on so that capacity grows with every size.

Presets:
  tiny  2 sizes x 2 budgets (`scaling_grid_tiny`), seconds per run; for tests
  cpu   V = 128, context 64, batch 32 (2048 tokens/step); grid `scaling_grid`:
        SIZES x STEPS below (see experiments/scaling_laws.py for the measured time)
Every run has its own cosine schedule ending at its own num_steps (Hoffmann et
al. 2022: a run cut short of its schedule overstates the loss at that D).
"""
import ml_collections

from configs import induction

# (num_layers, width, num_heads), chosen so that the non-embedding parameter count
# roughly doubles from size to size (5.5k, 10.5k, 23k, 45k, 91k, 178k at V = 128; the
# read-out counts, token and position tables do not) while the token budget doubles
# from budget to budget: the grid's anti-diagonals are then IsoFLOP sets (C = 6ND
# within ~15%), which Hoffmann et al.'s approach 2 needs.
SIZES = ((1, 16, 2), (1, 24, 2), (2, 28, 2), (2, 40, 4), (3, 48, 4), (3, 68, 4))
STEPS = (250, 500, 1000, 2000)  # token budgets: x 2048 tokens per step = 0.5M .. 4.1M
TINY_SIZES = ((1, 16, 2), (1, 32, 2))
TINY_STEPS = (20, 40)


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  c = induction.get_config("tiny" if preset == "tiny" else "cpu")
  c.preset = preset
  c.task.vocab_size = 128       # V: more bigram structure to learn than V = 64 (N matters longer)
  c.task.markov_scale = 2.0     # peakier bigram: floor 2.92 nats vs 4.84 unigram (scale 1: 3.92)
  c.task.repeat_prob = 0.0      # pure Markov stream: no copied spans (no phase change)
  c.task.eval_sequences = 1024  # held-out sequences of the eval loss the fit uses (64k tokens)
  c.task.repeated_sequences = 16  # only for the task's attention scores; kept cheap
  c.model.attention_only = False  # MLPs on: parameters grow with every size
  c.model.num_layers, c.model.width, c.model.num_heads = SIZES[3]
  c.optim.learning_rate = 3e-3  # one peak lr for every size (not tuned per size)
  c.optim.warmup_steps = 50     # short: the smallest budget is 250 steps
  c.optim.weight_decay = 0.0    # unlimited fresh data: no regulariser needed
  c.train.steps_per_call = 50
  c.train.log_every = 50
  c.train.eval_every = 250      # held-out loss every 250 steps and at the last (what the fit uses)
  c.train.checkpoint_every = 0  # only at the end: a finished run is resumable / reusable
  c.probe.num_sequences, c.probe.batch_size = 256, 128
  if preset == "tiny":
    c.task.vocab_size, c.task.seq_len = 16, 32
    c.task.eval_sequences, c.task.repeated_sequences = 64, 8
    c.model.num_layers, c.model.width, c.model.num_heads = TINY_SIZES[0]
    c.optim.warmup_steps = 5
    c.train.batch_size, c.train.num_steps, c.train.steps_per_call = 16, TINY_STEPS[-1], 10
    c.train.log_every = c.train.eval_every = 10
    c.probe.num_sequences, c.probe.batch_size = 16, 16
  elif preset != "cpu":
    raise ValueError(f"unknown preset {preset!r}; choose one of: tiny, cpu")
  return c


def _grid(sizes, steps) -> list[dict]:
  return [{"model.num_layers": l, "model.width": w, "model.num_heads": h, "train.num_steps": s}
          for l, w, h in sizes for s in steps]


def get_sweep(name: str) -> list[dict]:
  """Sweeps as data (research.sweep): every size at every token budget."""
  if name == "scaling_grid":
    return _grid(SIZES, STEPS)
  if name == "scaling_grid_tiny":
    return _grid(TINY_SIZES, TINY_STEPS)
  raise ValueError(f"unknown sweep {name!r}; choose one of: scaling_grid, scaling_grid_tiny")
