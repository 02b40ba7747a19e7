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
