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
