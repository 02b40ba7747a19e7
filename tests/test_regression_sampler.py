"""The regression sampler draws its Gaussians flat and reshapes them (regression._normal), which
XLA:CPU compiles in under half the time of a multi-dimensional draw. Runs must not notice: the
values are jax.random.normal's for the same key and shape, bit for bit."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import icl_regression
from research import cli, tasks
from research.tasks import regression


@pytest.mark.parametrize("shape", [(64, 41, 20), (64, 20), (7,), (2, 3, 4, 5), (1, 1)])
def test_flat_draw_is_jax_normal_bit_for_bit(shape):
  key = jax.random.key(3)
  np.testing.assert_array_equal(regression._normal(key, shape), jax.random.normal(key, shape))
  jitted = jax.jit(lambda k: regression._normal(k, shape))(key)
  np.testing.assert_array_equal(jitted, jax.jit(lambda k: jax.random.normal(k, shape))(key))


def test_negative_control_another_layout_differs():
  # The comparison above can fail: the same draw in another layout is other values.
  key = jax.random.key(3)
  other = jax.random.normal(key, (20, 41, 64)).transpose(2, 1, 0)
  assert not np.array_equal(regression._normal(key, (64, 41, 20)), other)


@pytest.mark.parametrize("function", ["linear", "noisy_linear", "quadratic", "relu_net",
                                      "decision_tree"])
def test_batches_equal_those_of_the_plain_draw(function, monkeypatch):
  c = cli.apply_overrides(icl_regression.get_config("tiny"), {"task.function": function})
  if function == "noisy_linear":
    c.task.noise_std = 0.5
  task = tasks.build(c.task, c.seed)
  sample = jax.jit(lambda k: task.sample(k, jnp.int32(10_000), 8))
  flat = sample(jax.random.key(0))
  monkeypatch.setattr(regression, "_normal", jax.random.normal)  # the draws as they were
  plain = jax.jit(lambda k: task.sample(k, jnp.int32(10_000), 8))(jax.random.key(0))
  for name in ("xs", "ys"):
    np.testing.assert_array_equal(flat[name], plain[name])


# What the task feeds the model and scores, pinned (a mutation audit moved each unseen: the
# tests above check the draws' bits only).
def test_the_curriculum_grows_at_its_boundary_not_a_step_early():
  c = regression.Curriculum(True, 2, 1, 16, 3, 500)
  assert [int(x) for x in c.active(jnp.int32(0), 5, 40)] == [2, 16]
  assert [int(x) for x in c.active(jnp.int32(499), 5, 40)] == [2, 16]
  assert [int(x) for x in c.active(jnp.int32(500), 5, 40)] == [3, 19]


def _noisy(noise):
  c = cli.apply_overrides(icl_regression.get_config("tiny"), {"task.function": "noisy_linear"})
  c.task.noise_std = noise
  c.task.curriculum.enabled = False
  return tasks.build(c.task, c.seed)


def test_label_noise_has_the_configured_standard_deviation():
  """noise_std 0.5 against the same draws without noise: the labels differ by 0.5 x N(0, 1)
  (squared, the task trained at 0.25)."""
  key = jax.random.key(0)
  noisy = _noisy(0.5).sample(key, jnp.int32(0), 4096)["ys"]
  clean = _noisy(1e-9).sample(key, jnp.int32(0), 4096)["ys"]
  assert abs(float(np.std(np.asarray(noisy - clean))) - 0.5) < 0.01


def test_the_loss_averages_over_the_active_points_only():
  """Under a points curriculum (4 of 41 active) an error of 1 at the active points and 10 at
  the others is a loss of 1: the inactive ones do not count (a mean over all is ~9.1)."""
  c = icl_regression.get_config("tiny")
  c.task.curriculum.enabled = True
  c.task.curriculum.points_start, c.task.curriculum.points_increment = 4, 1
  task = tasks.build(c.task, c.seed)
  batch = task.sample(jax.random.key(0), jnp.int32(0), 2)
  assert int(batch["n_points"]) == 4
  active = jnp.arange(task.n_points) < 4
  error = jnp.where(active, 1.0, 10.0)[None, :]
  out = jnp.zeros((2, 2 * task.n_points, 1)).at[:, ::2, 0].set(batch["ys"] + error)
  assert float(task.loss(out, batch)[0]) == pytest.approx(1.0, abs=1e-5)


def test_the_default_ridge_is_the_bayes_optimal_one():
  """ridge_lambda < 0 means the noise variance (0.25 at noise_std 0.5), not noise_std."""
  from research.tasks import regression_baselines as baselines
  task, probe = _noisy(0.5), icl_regression.get_config("tiny").probe
  assert probe.ridge_lambda < 0
  batch = task.sample(jax.random.key(1), jnp.int32(0), 8)
  np.testing.assert_allclose(np.asarray(task.baselines(probe)["ridge"](batch["xs"], batch["ys"])),
                             np.asarray(baselines.ridge(batch["xs"], batch["ys"], 0.25)),
                             rtol=1e-5, atol=1e-6)


# The function classes' definitions: a sparse w with one coordinate too many, a ReLU net at
# half its output scale and a tree that read the wrong nodes each passed the suite unseen.
def _function_task(function, **task):
  c = cli.apply_overrides(icl_regression.get_config("tiny"), {"task.function": function})
  c.task.curriculum.enabled = False
  for k, v in task.items():
    c.task[k] = v
  return tasks.build(c.task, c.seed)


def test_sparse_linear_w_has_exactly_sparsity_nonzero_coordinates():
  """y = x . w with `sparsity` (3 of 5) non-zero coordinates: least squares on a prompt's 11 > 5
  points recovers w exactly, and every w has 3 non-zeros (not 4)."""
  task = _function_task("sparse_linear")
  assert (task.n_dims, task.cfg.sparsity) == (5, 3)
  b = task.sample(jax.random.key(0), jnp.int32(0), 64, source="prior")
  xs, ys = np.asarray(b["xs"], np.float64), np.asarray(b["ys"], np.float64)
  for x, y in zip(xs, ys):
    w = np.linalg.lstsq(x, y, rcond=None)[0]
    assert int((np.abs(w) > 1e-4).sum()) == 3


@pytest.mark.parametrize("function", ["linear", "quadratic", "relu_net"])
def test_function_classes_have_output_variance_d(function):
  """Garg's scaling: E[y^2] = d for x ~ N(0, I_d) under every function class. Linear:
  E[(x.w)^2] = d; quadratic: sum_i w_i x_i^2 / sqrt(3) has E = d E[x^4] / 3 = d; ReLU net
  sqrt(2/h) sum_j w2_j relu(w1_j . x): E = (2/h) h E[relu(z)^2] with Var z = |x|^2, = d."""
  task = _function_task(function)
  ys = np.asarray(task.sample(jax.random.key(1), jnp.int32(0), 8192, source="prior")["ys"])
  assert np.mean(ys ** 2) == pytest.approx(task.n_dims, rel=0.08)


def test_decision_tree_descends_the_heap_from_the_root_to_a_leaf():
  """Depth-2 tree in heap layout: node i's children are 2i+1 (x[feature_i] <= 0) and 2i+2 (> 0);
  the leaf reached is node - (2^depth - 1). Recomputed from the same draws by that definition."""
  task = _function_task("decision_tree", tree_depth=2)
  d = task.n_dims
  key = jax.random.key(5)
  xs = jax.random.normal(jax.random.key(6), (16, 11, d))
  ys = np.asarray(task._function(key, xs, jnp.ones(d, bool), d, "prior"))
  k1, k2, _ = jax.random.split(key, 3)
  feat = np.asarray(jax.random.randint(k1, (16, 3), 0, d))
  leaves = np.asarray(regression._normal(k2, (16, 4)))
  xs = np.asarray(xs)
  for b in range(16):
    for n in range(11):
      node = 0
      for _ in range(2):
        node = 2 * node + (2 if xs[b, n, feat[b, node]] > 0 else 1)
      assert ys[b, n] == leaves[b, node - 3]


def test_tuned_lasso_picks_alpha_on_the_first_half_and_scores_the_second():
  """Per k, the alpha with the lowest mean error over the first half of the prompts, scored on
  the other half: alpha 0.01 wins at k = 0 (0.1 vs 0.2 on prompts 0-1) but its held-out errors
  are 5 (prompts 2-3); at k = 1 alpha 0.001 wins (0.3 vs 0.4) with held-out 7."""
  errs = {"lasso_alpha_0.001": np.array([[0.2, 0.3], [0.2, 0.3], [1.0, 7.0], [1.0, 7.0]]),
          "lasso_alpha_0.01": np.array([[0.1, 0.4], [0.1, 0.4], [5.0, 2.0], [5.0, 2.0]])}
  held, alphas = regression._tuned_lasso(errs)
  assert alphas == [0.01, 0.001]
  np.testing.assert_array_equal(held, [[5.0, 7.0], [5.0, 7.0]])
  assert regression._tuned_lasso({"model": np.zeros((4, 2))}) is None


def test_the_dmmse_baseline_uses_the_noise_variance():
  """The Bayes-optimal predictor over a task pool reads the noise variance (0.25 at noise_std
  0.5), floored at 1e-2, not noise_std."""
  from research.tasks import regression_baselines as baselines
  c = cli.apply_overrides(icl_regression.get_config("tiny"), {"task.function": "noisy_linear"})
  c.task.noise_std, c.task.pool_size = 0.5, 4
  task = tasks.build(c.task, c.seed)
  batch = task.sample(jax.random.key(2), jnp.int32(10 ** 6), 8)
  np.testing.assert_allclose(
      np.asarray(task.baselines(c.probe)["dmmse"](batch["xs"], batch["ys"])),
      np.asarray(baselines.dmmse(batch["xs"], batch["ys"], task.pool_ws_MxD, 0.25)),
      rtol=1e-5, atol=1e-6)


def _zero_model(inputs_BxTxD):
  return jnp.zeros(inputs_BxTxD.shape[:2] + (1,))


def test_probe_errors_score_exactly_num_prompts_prompts():
  """10 prompts in batches of 4: 4 + 4 + 2 rows per estimator, not 12."""
  task = _function_task("linear")
  probe = icl_regression.get_config("tiny").probe
  probe.num_prompts, probe.batch_size = 10, 4
  errs = task._probe_errors(_zero_model, jax.random.key(0), probe, "prior")
  assert {n: e.shape for n, e in errs.items()} == {n: (10, task.n_points) for n in errs}


def test_shift_probe_scores_predicting_zero_as_one_under_every_shift():
  """Errors are divided by d E[x_i^2] of the shift: predicting 0 scores E[y^2] / (d E[x^2]) = 1
  whatever the input scale (scale_2's raw error is 4; dividing the wrong way reads 16)."""
  task = _function_task("linear")
  probe = icl_regression.get_config("tiny").probe
  probe.num_prompts, probe.batch_size = 512, 512
  out = task.shift_probe(_zero_model, jax.random.key(0), probe, shifts=("none", "scale_2", "scale_0.5"))
  for shift, curves in out["shifts"].items():
    assert np.mean(curves["model"]) == pytest.approx(1.0, rel=0.1), shift


def test_training_prompts_draw_every_pool_task_and_only_pool_tasks():
  """pool_size 4: each training prompt's w (least squares on its 11 > 5 noise-free points) is
  one of the 4 pool rows, and all 4 occur, the last included; source='prior' draws fresh ones."""
  task = _function_task("linear", pool_size=4)
  pool = np.asarray(task.pool_ws_MxD, np.float64)

  def ws(source):
    b = task.sample(jax.random.key(0), jnp.int32(0), 64, source=source)
    return np.stack([np.linalg.lstsq(x, y, rcond=None)[0] for x, y in
                     zip(np.asarray(b["xs"], np.float64), np.asarray(b["ys"], np.float64))])
  dist = np.abs(ws("train")[:, None, :] - pool[None]).max(-1)  # prompts x pool rows
  assert (dist.min(1) < 1e-3).all()
  assert set(dist.argmin(1).tolist()) == {0, 1, 2, 3}
  assert (np.abs(ws("prior")[:, None, :] - pool[None]).max(-1).min(1) > 1e-2).all()


def test_probe_intervals_are_of_the_mean_over_prompts_not_of_single_prompts():
  """The 5-95% interval is over 32 bootstrap means of the error over 256 prompts. For the zero
  predictor a prompt's error at k is y^2 / d with y | x ~ N(0, |x|^2): mean 1, variance
  2 + 6 / d = 3.2 (d = 5), so the interval is about 3.29 * 1.79 / sqrt(256) = 0.37 wide.
  Averaging over the 32 resamples per prompt instead (the wrong axis) reads
  3.29 * 1.79 / sqrt(32) = 1.04; the spread of single prompts' errors would be wider still."""
  task = _function_task("linear")
  probe = icl_regression.get_config("tiny").probe
  probe.num_prompts, probe.batch_size, probe.bootstrap = 256, 256, 32
  curve = task.probe(_zero_model, jax.random.key(0), probe, step=0)["icl_regression"]["curves"]["model"]
  lo, mean, hi = (np.asarray(curve[f]) for f in ("lo", "mean", "hi"))
  assert np.all(lo < mean) and np.all(mean < hi)
  assert 0.2 < np.mean(hi - lo) < 0.6


def test_the_model_is_compared_with_the_tuned_lasso_on_its_held_out_prompts(monkeypatch):
  """The tuned Lasso is scored on the held-out half of the prompts; the model's curve there is
  recorded (model_held_out) with the same bootstrap draws. Control: the model's mean over every
  prompt differs from it (prompt-set noise, which at k = 0 read 0.549 vs 0.253)."""
  task = _function_task("linear")
  probe = icl_regression.get_config("tiny").probe
  probe.num_prompts, probe.bootstrap = 4, 16
  model = np.array([[1.0, 1.0], [3.0, 1.0], [0.5, 2.0], [0.5, 4.0]])
  lasso = np.array([[9.0, 9.0], [9.0, 9.0], [0.6, 2.1], [0.4, 3.9]])
  monkeypatch.setattr(task, "_probe_errors", lambda *a, **k: {
      "model": model, "lasso_alpha_0.01": lasso})
  monkeypatch.setattr(regression, "probe_summary", lambda result: {})
  res = task.probe(_zero_model, jax.random.key(0), probe, step=0)["icl_regression"]
  held, tuned = res["curves"]["model_held_out"], res["curves"]["lasso_tuned"]
  np.testing.assert_allclose(held["mean"], [0.5, 3.0])
  np.testing.assert_allclose(tuned["mean"], [0.5, 3.0])
  np.testing.assert_allclose(res["curves"]["model"]["mean"], [1.25, 2.0])  # the control
