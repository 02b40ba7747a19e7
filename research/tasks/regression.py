"""In-context regression (Garg et al. 2022; Raventós et al. 2023).

Each sequence draws a function f from a class and n points x_i ~ N(0, I_d); the
model reads the interleaved prompt (x_1, y_1, x_2, y_2, ...), with y embedded as
[y, 0, ..., 0], and predicts f(x_k) at every x position from the k earlier
pairs. Data is generated on device from `fold_in(seed, step)`, so a resumed run
sees the same batches.

Shape legend: B batch, N points per prompt, D input dims, M pool tasks,
T = 2N interleaved tokens, Hd hidden units (ReLU nets), Nd tree nodes.
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from research import keys
from research.models import IOSpec
from research.tasks import regression_baselines as bl
from research.tasks.fields import ConfigError, choice, positive

FUNCTIONS = ("linear", "sparse_linear", "noisy_linear", "quadratic", "relu_net", "decision_tree")


@dataclasses.dataclass(frozen=True)
class Curriculum:
  """Garg's curriculum: active dims and points grow every `every` steps."""
  enabled: bool
  dims_start: int
  dims_increment: int
  points_start: int
  points_increment: int
  every: int

  def active(self, step, n_dims: int, n_points: int):
    if not self.enabled:
      return jnp.int32(n_dims), jnp.int32(n_points)
    stage = step // self.every
    return (jnp.minimum(n_dims, self.dims_start + self.dims_increment * stage),
            jnp.minimum(n_points, self.points_start + self.points_increment * stage))


# Test-time input shifts (Garg et al. 2022, Sec. 4): name -> E[x_i^2], by which errors
# are divided so that predicting 0 scores 1 under every shift.
SHIFTS = {"none": 1.0, "scale_0.5": 0.25, "scale_2": 4.0, "scale_3": 9.0, "orthant": 1.0,
          "skewed": 1.0}


# The README main job's headline: error/d at most this at every k >= 2d (Garg Fig. 1's
# "matches least squares", whose error is 0 from k = d), and below averaging at every k >= 2.
HEADLINE_ERROR = 0.05


def probe_summary(result: dict) -> dict:
  """The probe's scalars (research.results shows them as columns probes.STEM.FIELD): the
  model's error/d at k = d and k = 2d, its worst from k = 2d on, whether it is below
  averaging at every k >= 2, and, for noise-free linear functions, the main job's headline."""
  d, model = result["n_dims"], result["curves"]["model"]["mean"]
  avg = result["curves"]["averaging"]["mean"]
  from_2d = model[2 * d:]
  out = {"error_at_d": model[d] if d < len(model) else None,
         "error_at_2d": model[2 * d] if from_2d else None,
         "worst_from_2d": max(from_2d) if from_2d else None,
         "below_averaging_from_2": all(m < a for m, a in zip(model[2:], avg[2:]))}
  if result["function"] == "linear" and from_2d:
    out["headline"] = out["worst_from_2d"] <= HEADLINE_ERROR and out["below_averaging_from_2"]
  return out


def shift_inputs(shift: str, key, xs_BxNxD):
  """x ~ N(0, I) -> the shifted distribution. scale_s: x * s. orthant (Garg Sec. 4): the
  examples of a prompt in one random orthant (|x| times a sign pattern per prompt) and its last
  point, the query the claim scores (ORTHANT_QUERY), in the opposite orthant. skewed: covariance
  with eigenvalues proportional to 1/i^2 (trace d) in a random basis."""
  b, _, d = xs_BxNxD.shape
  if shift.startswith("scale_"):
    return xs_BxNxD * float(shift.split("_", 1)[1])
  if shift == "orthant":
    signs_BxD = jnp.where(jax.random.bernoulli(key, 0.5, (b, d)), 1.0, -1.0)
    flip_N = jnp.where(jnp.arange(xs_BxNxD.shape[1]) == xs_BxNxD.shape[1] - 1, -1.0, 1.0)
    return jnp.abs(xs_BxNxD) * signs_BxD[:, None, :] * flip_N[None, :, None]
  if shift == "skewed":
    eig_D = 1.0 / jnp.arange(1, d + 1) ** 2
    eig_D = eig_D * d / eig_D.sum()
    basis_DxD, _ = jnp.linalg.qr(jax.random.normal(key, (d, d)))
    return (xs_BxNxD * jnp.sqrt(eig_D)) @ basis_DxD.T
  raise ValueError(f"unknown input shift {shift!r}; choose one of: {', '.join(SHIFTS)}")


# Under the orthant shift only the last position's query lies outside the examples' orthant.
ORTHANT_QUERY = "last"

# Penalties tried for the tuned-Lasso baseline (sklearn objective), one octave-decade apart.
LASSO_ALPHAS = (0.001, 0.01, 0.1, 1.0)
# (a, b): the probe also records the mean squared difference of a's and b's predictions.
PREDICTION_PAIRS = (("model", "ridge"), ("model", "dmmse"), ("ridge", "dmmse"))


def _normal(key, shape: tuple[int, ...]) -> jax.Array:
  """jax.random.normal(key, shape), drawn flat and reshaped: the same values (threefry's
  counter is the element's flat index), and XLA:CPU compiles a 1-D draw in under half the
  time of a 3-D one (0.27 vs 0.63 CPU s for the 64 x 41 x 20 inputs of Garg's setup: the
  sampler is compiled into every train step; benchmark --cases compile_parts)."""
  return jax.random.normal(key, (math.prod(shape),)).reshape(shape)


def _tuned_lasso(errs: dict):
  """Lasso with alpha tuned per k as a user would: the alpha of LASSO_ALPHAS with the lowest
  error on the first half of the prompts, scored on the second half. None without the grid."""
  grid = [(a, errs[f"lasso_alpha_{a:g}"]) for a in LASSO_ALPHAS if f"lasso_alpha_{a:g}" in errs]
  if not grid:
    return None
  e_AxPxN = np.stack([e for _, e in grid])
  half = e_AxPxN.shape[1] // 2
  best_N = e_AxPxN[:, :half].mean(1).argmin(0)
  held_PxN = e_AxPxN[best_N, half:, np.arange(e_AxPxN.shape[2])].T
  return held_PxN, [grid[i][0] for i in best_N.tolist()]


class RegressionTask:
  """Sampler, input encoding, loss and probe of in-context regression."""

  name = "regression"
  probe_name = "icl_regression"

  @staticmethod
  def build_uses_seed(cfg) -> bool:
    return cfg.pool_size > 0  # only the finite task pool is drawn at build time

  @staticmethod
  def check_config(cfg) -> None:
    """Raises ConfigError (one line) on the first invalid config.task field."""
    t = cfg.task
    choice(cfg, "task", "function", FUNCTIONS)
    positive(cfg, "task", "n_dims", "relu_hidden", "tree_depth")
    positive(cfg, "task", "noise_std", "pool_size", allow_zero=True)
    if t.n_points < 2:
      raise ConfigError(f"config.task.n_points={t.n_points} must be at least 2")
    if t.function == "noisy_linear" and t.noise_std <= 0:
      raise ConfigError("config.task.noise_std must be > 0 for function='noisy_linear' "
                        "(Raventós: 0.5); or use function='linear'")
    if t.function == "sparse_linear" and not 1 <= t.sparsity <= t.n_dims:
      raise ConfigError(f"config.task.sparsity={t.sparsity} must be in [1, n_dims={t.n_dims}]")
    if t.curriculum.enabled:
      for f in ("dims_start", "points_start", "every"):
        if t.curriculum[f] <= 0:
          raise ConfigError(f"config.task.curriculum.{f}={t.curriculum[f]} must be positive")
      for f in ("dims_increment", "points_increment"):  # a shrinking curriculum reaches 0 dims
        if t.curriculum[f] < 0:
          raise ConfigError(f"config.task.curriculum.{f}={t.curriculum[f]} must be >= 0 (the "
                            "curriculum grows the task); e.g. 1")

  def __init__(self, cfg, seed: int):
    self.cfg = cfg
    self.function = cfg.function
    self.n_dims, self.n_points = int(cfg.n_dims), int(cfg.n_points)
    self.noise_std = float(cfg.noise_std)
    self.curriculum = Curriculum(**{k: cfg.curriculum[k] for k in (
        "enabled", "dims_start", "dims_increment", "points_start", "points_increment", "every")})
    self.pool_ws_MxD = None
    if cfg.pool_size > 0:
      pool_key = jax.random.fold_in(jax.random.key(seed), keys.TASK_POOL)
      self.pool_ws_MxD = jax.random.normal(pool_key, (cfg.pool_size, self.n_dims))
    self.io = IOSpec(output_dim=1, seq_len=2 * self.n_points, input_dim=self.n_dims)

  @property
  def tokens_per_example(self) -> int:
    return 2 * self.n_points

  # --- data -----------------------------------------------------------------
  def sample(self, key, step, batch_size: int, *, source: str = "train", pool_size=None,
             shift: str = "none"):
    """A batch {xs: BxNxD, ys: BxN, n_dims, n_points} for `step` (curriculum).

    source: 'train' (pool tasks when pool_size > 0), 'prior' (fresh w ~ N(0, I):
    tasks never seen in pretraining) or 'pool' (the pretraining tasks).
    pool_size: a (traced) M <= cfg.pool_size: draw tasks from the pool's first M
    rows only. Under threefry-partitionable keys those rows equal the pool a run
    with task.pool_size=M builds, so an ensemble over M (one program, the largest
    pool) samples exactly what each solo run samples.
    shift: a test-time input distribution (SHIFTS; Garg et al. Sec. 4), applied to
    x before the function, so y = f(shifted x).
    """
    n, d = self.n_points, self.n_dims
    d_act, n_act = self.curriculum.active(step, d, n)
    kx, kf, kn = jax.random.split(key, 3)
    dim_mask_D = jnp.arange(d) < d_act
    xs_BxNxD = _normal(kx, (batch_size, n, d))
    if shift != "none":
      xs_BxNxD = shift_inputs(shift, jax.random.fold_in(kx, 1), xs_BxNxD)
    xs_BxNxD = xs_BxNxD * dim_mask_D
    ys_BxN = self._function(kf, xs_BxNxD, dim_mask_D, d_act, source, pool_size)
    if self.noise_std > 0:
      ys_BxN = ys_BxN + self.noise_std * _normal(kn, ys_BxN.shape)
    return {"xs": xs_BxNxD, "ys": ys_BxN, "n_dims": d_act, "n_points": n_act}

  def _function(self, key, xs_BxNxD, dim_mask_D, d_act, source, pool_size=None):
    b, _, d = xs_BxNxD.shape
    f = self.function
    k1, k2, k3 = jax.random.split(key, 3)
    if f in ("linear", "noisy_linear", "sparse_linear"):
      use_pool = self.pool_ws_MxD is not None and source != "prior"
      if use_pool:
        m = self.pool_ws_MxD.shape[0] if pool_size is None else pool_size
        idx_B = jax.random.randint(k1, (b,), 0, m)
        w_BxD = self.pool_ws_MxD[idx_B]
      else:
        w_BxD = _normal(k1, (b, d))
      if f == "sparse_linear":
        # s coordinates chosen uniformly among the active ones: lowest s random scores.
        scores_BxD = jnp.where(dim_mask_D, jax.random.uniform(k2, (b, d)), 2.0)
        rank_BxD = jnp.argsort(jnp.argsort(scores_BxD, axis=-1), axis=-1)
        w_BxD = w_BxD * (rank_BxD < self.cfg.sparsity)
      return jnp.einsum("bnd,bd->bn", xs_BxNxD, w_BxD * dim_mask_D)
    if f == "quadratic":
      w_BxD = _normal(k1, (b, d)) * dim_mask_D
      return jnp.einsum("bnd,bd->bn", xs_BxNxD ** 2, w_BxD) / math.sqrt(3)
    if f == "relu_net":
      h = self.cfg.relu_hidden
      w1_BxDxH = _normal(k1, (b, d, h))
      w2_BxH = _normal(k2, (b, h))
      hidden_BxNxH = jax.nn.relu(jnp.einsum("bnd,bdh->bnh", xs_BxNxD, w1_BxDxH))
      return jnp.einsum("bnh,bh->bn", hidden_BxNxH, w2_BxH) * math.sqrt(2 / h)
    if f == "decision_tree":
      depth = self.cfg.tree_depth
      nodes = 2 ** depth - 1
      feat_BxNd = jax.random.randint(k1, (b, nodes), 0, jnp.maximum(d_act, 1))
      leaves_BxL = _normal(k2, (b, 2 ** depth))
      node_BxN = jnp.zeros(xs_BxNxD.shape[:2], jnp.int32)
      for _ in range(depth):  # descend: right child when the node's feature is > 0
        f_BxN = jnp.take_along_axis(feat_BxNd, node_BxN, axis=1)
        go_right = jnp.take_along_axis(xs_BxNxD, f_BxN[..., None], axis=2)[..., 0] > 0
        node_BxN = 2 * node_BxN + 1 + go_right
      return jnp.take_along_axis(leaves_BxL, node_BxN - nodes, axis=1)
    raise ValueError(f"config.task.function={f!r} is not valid; choose one of: {', '.join(FUNCTIONS)}")

  def model_inputs(self, batch):
    """Garg's interleaving: (x_1, [y_1, 0..0], x_2, ...) -> B x 2N x D."""
    xs_BxNxD, ys_BxN = batch["xs"], batch["ys"]
    b, n, d = xs_BxNxD.shape
    ys_wide_BxNxD = jnp.zeros_like(xs_BxNxD).at[..., 0].set(ys_BxN)
    return jnp.stack([xs_BxNxD, ys_wide_BxNxD], axis=2).reshape(b, 2 * n, d)

  @staticmethod
  def predictions(outputs_BxTx1):
    return outputs_BxTx1[:, ::2, 0]  # read at x positions

  def loss(self, outputs, batch):
    """MSE over all prefixes of the active points (Garg)."""
    err_BxN = (self.predictions(outputs) - batch["ys"]) ** 2
    mask_N = jnp.arange(self.n_points) < batch["n_points"]
    loss = jnp.sum(err_BxN * mask_N) / (err_BxN.shape[0] * batch["n_points"])
    return loss, {"normalised_error": loss / batch["n_dims"]}

  # --- probe ----------------------------------------------------------------
  def baselines(self, probe_cfg) -> dict:
    """Estimators evaluated on the probe's prompts, chosen by function class."""
    out = {"least_squares": bl.least_squares, "averaging": bl.averaging,
           "nearest_neighbours": lambda x, y: bl.nearest_neighbours(x, y, probe_cfg.knn)}
    noise_var = self.noise_std ** 2
    if self.function == "sparse_linear":
      out["lasso"] = lambda x, y: bl.lasso(x, y, probe_cfg.lasso_alpha)
      # The grid a user would tune alpha over; `probe` picks one per k on held-out prompts.
      for alpha in LASSO_ALPHAS:
        out[f"lasso_alpha_{alpha:g}"] = lambda x, y, a=alpha: bl.lasso(x, y, a)
    if noise_var > 0:
      lam = probe_cfg.ridge_lambda if probe_cfg.ridge_lambda >= 0 else noise_var
      out["ridge"] = lambda x, y: bl.ridge(x, y, lam)
    if self.pool_ws_MxD is not None:
      pool = self.pool_ws_MxD
      out["dmmse"] = lambda x, y: bl.dmmse(x, y, pool, max(noise_var, 1e-2))
    return out

  @staticmethod
  def render(probe_json, out_png):
    from research.analysis import plots  # matplotlib only when probing
    return plots.render_probe(probe_json, out_png)

  def probe(self, predict_fn, key, probe_cfg, *, step: int) -> dict[str, dict]:
    """Normalised squared error by number of in-context examples k, per estimator.

    Returns {probe file stem: result}; with a task pool, both fresh tasks
    (`icl_regression`, the ICL generalisation) and pretraining tasks
    (`icl_regression_pool`) are probed.
    """
    sources = {"prior": self.probe_name}
    if self.pool_ws_MxD is not None:
      sources["pool"] = self.probe_name + "_pool"
    results = {}
    for source, stem in sources.items():
      errs = self._probe_errors(predict_fn, jax.random.fold_in(key, len(results)),
                                probe_cfg, source)
      tuned = _tuned_lasso(errs)
      if tuned is not None:
        errs["lasso_tuned"], alphas = tuned
        # The model on the tuned Lasso's own held-out prompts: against the model's mean over
        # every prompt, k = 0 (where every estimator predicts 0) differed by the two prompt
        # sets alone (0.549 vs 0.253 on a tiny run's 64 prompts).
        errs["model_held_out"] = errs["model"][len(errs["model"]) - len(errs["lasso_tuned"]):]
      rng = np.random.default_rng(int(probe_cfg.bootstrap_seed))
      # The same resampled prompts for every curve over the same prompts (paired): all of
      # them, or the held-out half of the tuned Lasso and the model's curve there.
      draws = {probe_cfg.num_prompts: rng.integers(0, probe_cfg.num_prompts,
                                                   (probe_cfg.bootstrap, probe_cfg.num_prompts))}
      curves = {}
      for name, e_PxN in errs.items():
        if len(e_PxN) not in draws:
          draws[len(e_PxN)] = rng.integers(0, len(e_PxN), (probe_cfg.bootstrap, len(e_PxN)))
        idx = draws[len(e_PxN)]
        boot_RxN = e_PxN[idx].mean(axis=1)
        curves[name] = {"mean": e_PxN.mean(0).tolist(),
                        "lo": np.percentile(boot_RxN, 5, axis=0).tolist(),
                        "hi": np.percentile(boot_RxN, 95, axis=0).tolist()}
      results[stem] = {"k": list(range(self.n_points)), "curves": curves, "n_dims": self.n_dims,
                       "step": int(step), "function": self.function, "source": source,
                       "num_prompts": int(probe_cfg.num_prompts),
                       "interval": "bootstrap 5-95% of the mean over prompts"}
      if tuned is not None:
        results[stem]["lasso_tuned_alpha"] = alphas
      results[stem]["summary"] = probe_summary(results[stem])
    return results

  def shift_probe(self, predict_fn, key, probe_cfg, shifts=tuple(SHIFTS)) -> dict:
    """Normalised error by k of the model and least squares under test-time input
    shifts on fresh tasks (error / (d E[x_i^2]): predicting 0 scores 1 under every shift)."""
    out = {"k": list(range(self.n_points)), "n_dims": self.n_dims,
           "num_prompts": int(probe_cfg.num_prompts), "orthant_query": ORTHANT_QUERY,
           "shifts": {}}
    for i, shift in enumerate(shifts):
      errs = self._probe_errors(predict_fn, jax.random.fold_in(key, i), probe_cfg, "prior",
                                shift=shift, only=("least_squares",))
      out["shifts"][shift] = {n: (e.mean(0) / SHIFTS[shift]).tolist() for n, e in errs.items()}
    return out

  def _probe_errors(self, predict_fn, key, probe_cfg, source, *, shift: str = "none",
                    only=None):
    """Per-prompt squared errors / d, (prompts x N), for the model and baselines."""
    bs, total = int(probe_cfg.batch_size), int(probe_cfg.num_prompts)
    big_step = jnp.int32(2 ** 30)  # past the end of any curriculum
    baselines = self.baselines(probe_cfg)  # each is jitted once, at module level
    if only is not None:
      baselines = {n: f for n, f in baselines.items() if n in only}
    errs = {"model": []} | {n: [] for n in baselines}
    for start in range(0, total, bs):
      batch = self.sample(jax.random.fold_in(key, start), big_step, min(bs, total - start),
                          source=source, shift=shift)
      ys = batch["ys"]
      preds = {"model": self.predictions(predict_fn(self.model_inputs(batch)))}
      preds |= {n: f(batch["xs"], ys) for n, f in baselines.items()}
      for n, p in preds.items():
        errs[n].append(np.asarray((p - ys) ** 2 / self.n_dims, dtype=np.float64))
      # Raventós compare predictions, not errors: mean squared difference between the model's
      # (and each estimator's) predictions on the same prompts, / d like the errors.
      for a, b in PREDICTION_PAIRS:
        if a in preds and b in preds:
          errs.setdefault(f"{a}_vs_{b}", []).append(
              np.asarray((preds[a] - preds[b]) ** 2 / self.n_dims, dtype=np.float64))
    return {n: np.concatenate(v) for n, v in errs.items()}
