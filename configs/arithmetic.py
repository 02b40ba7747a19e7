r"""Multi-digit arithmetic for emergence (Wei et al. 2022; Schaeffer et al. 2023).

  python -m research.main --config=configs/arithmetic.py:cpu --workdir=runs/arith
  python -m research.main --config=configs/arithmetic.py:cpu --workdir=runs/mul \
      --config.task.operation=mul --config.task.num_digits=2
  (sweep over model size: get_sweep("scale"), consumed by research/sweep.py)

Presets:
  tiny   seconds; for tests
  cpu    3-digit addition, 2 layers / width 64; ~3 min on 2 CPU cores; probe on
         10,000 held-out problems (exact match, per-token accuracy, edit distance,
         log-likelihood, Brier, each with a 95% interval; chance = the best
         input-independent predictor on those problems)
The probe writes probes/arithmetic.json and figures/arithmetic.png.
"""
import ml_collections

from configs import common


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  c = common.base(preset)

  c.task = ml_collections.ConfigDict()
  c.task.name = "arithmetic"    # task registry key (research/tasks/__init__.py)
  c.task.operation = "add"      # add | mul (multi-digit) | mod_add | mod_sub | mod_mul (a o b mod p)
  c.task.num_digits = 3         # add/mul: digits per operand (zero-padded); answer n+1 (add) or 2n (mul)
  c.task.reverse_answer = False  # add/mul: answer digits least significant first
  c.task.modulus = 113          # mod_*: p; vocabulary p + 1 ('=' is p)
  c.task.train_fraction = 1.0   # mod_*: fraction of the p^2 pairs used for training (split from the seed)
  c.task.full_batch = False     # mod_*: every step trains on all training pairs (batch_size must match)
  c.task.held_out_fraction = 0.1  # add/mul: fraction of (a, b) pairs held out for the probe and
                                # evaluation, by a fixed hash of the pair (not the seed); never
                                # trained on, not even as in-context examples
  c.task.num_shots = 0          # solved examples in context before the query (few-shot format)
  c.task.loss_on_shots = False  # also train on the in-context examples' answer tokens
  c.task.eval_problems = 1024   # add/mul: held-out problems per in-training evaluation (train.eval_every)
  c.task.num_key_freqs = 5      # mod_add: key Fourier frequencies for restricted / excluded loss
  c.task.key_freqs = ()         # mod_add: fixed key frequencies; () = the largest of the current model

  c.model = ml_collections.ConfigDict()
  c.model.name = "transformer"  # model registry key (research/models/__init__.py)
  c.model.num_layers = 2
  c.model.width = 64            # residual stream width
  c.model.num_heads = 4
  c.model.mlp_ratio = 4.0       # MLP hidden = mlp_ratio * width
  c.model.positions = "learned"  # learned | rotary | none
  c.model.max_len = 0           # position table size; 0 = the task's sequence length
  c.model.dropout = 0.0
  c.model.attention_only = False  # drop the MLPs
  c.model.use_layernorm = True
  common.transformer_features(c.model)

  c.optim = common.optim(learning_rate=3e-3, b2=0.98, weight_decay=0.1)

  c.train = common.train(
      batch_size=128, num_steps=3000, log_every=500, eval_every=500, checkpoint_every=1000)

  c.probe = ml_collections.ConfigDict()
  c.probe.num_prompts = 10_000  # held-out problems (>= 10,000 resolves small accuracies; fewer
                                # when the held-out set is smaller: each once, noted)
  c.probe.batch_size = 2000     # problems per forward pass
  c.probe.bootstrap = 1000      # bootstrap resamples for the 95% intervals of continuous metrics
  c.probe.bootstrap_seed = 0
  c.probe.knn = 1               # unused by this task (kept: the shared probe checks read it)

  c.mesh = common.mesh()

  c.sharding = common.sharding()

  if preset == "tiny":
    c.task.num_digits = 2
    c.task.eval_problems = 64
    c.model.num_layers, c.model.width, c.model.num_heads = 1, 32, 2
    c.train.num_steps, c.train.steps_per_call, c.train.log_every = 40, 10, 20
    c.train.eval_every, c.train.checkpoint_every = 20, 20
    c.optim.warmup_steps = 10
    c.probe.num_prompts, c.probe.batch_size, c.probe.bootstrap = 256, 128, 100
  elif preset != "cpu":
    raise ValueError(f"unknown preset {preset!r}; choose one of: tiny, cpu")
  return c


# Model sizes of the scale sweep: (layers, width, heads). Parameters for the cpu
# task (3-digit addition, vocabulary 14): 4.0k, 8.2k, 15k, 27k, 59k, 153k (x39; see
# tests/test_arithmetic.py::test_scale_sweep_spans_30x). The cpu model (2, 64: 103k)
# already solves it in 3000 steps, so the sizes bracket the transition; "scale_large"
# continues to 0.8M parameters for longer budgets.
SCALE = ((1, 16, 2), (1, 24, 2), (2, 24, 2), (2, 32, 2), (2, 48, 4), (3, 64, 4))
SCALE_LARGE = SCALE + ((4, 96, 4), (4, 128, 4))


def get_sweep(name: str) -> list[dict]:
  """Sweeps as data: lists of override dicts (used by the sweep command)."""
  if name in ("scale", "scale_large"):
    return [{"model.num_layers": l, "model.width": w, "model.num_heads": h}
            for l, w, h in (SCALE if name == "scale" else SCALE_LARGE)]
  if name == "digits":
    return [{"task.num_digits": n} for n in (1, 2, 3, 4, 5)]
  raise ValueError(f"unknown sweep {name!r}; choose one of: scale, scale_large, digits")
