"""Tests for research.tasks.regression_baselines against float64 NumPy loop references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.tasks import regression_baselines as rb

RTOL = ATOL = 1e-4


def _data(seed, b=3, n=9, d=4, noise=0.1):
  rng = np.random.default_rng(seed)
  xs = rng.normal(size=(b, n, d)).astype(np.float32)
  w = rng.normal(size=(b, d)).astype(np.float32)
  ys = (np.einsum("bnd,bd->bn", xs, w) + noise * rng.normal(size=(b, n))).astype(np.float32)
  return xs, ys


# ---------------------------------------------------------------- references


def _ref_least_squares(xs, ys):
  xs, ys = xs.astype(np.float64), ys.astype(np.float64)
  b, n, d = xs.shape
  out = np.zeros((b, n))
  for bi in range(b):
    for k in range(1, n):
      w = np.linalg.lstsq(xs[bi, :k], ys[bi, :k], rcond=None)[0]  # min-norm for k < d
      out[bi, k] = xs[bi, k] @ w
  return out


def _ref_ridge(xs, ys, lam):
  xs, ys = xs.astype(np.float64), ys.astype(np.float64)
  b, n, d = xs.shape
  out = np.zeros((b, n))
  for bi in range(b):
    for k in range(n):
      x, y = xs[bi, :k], ys[bi, :k]
      w = np.linalg.inv(x.T @ x + lam * np.eye(d)) @ (x.T @ y)
      out[bi, k] = xs[bi, k] @ w
  return out


def _ref_averaging(xs, ys):
  xs, ys = xs.astype(np.float64), ys.astype(np.float64)
  b, n, d = xs.shape
  out = np.zeros((b, n))
  for bi in range(b):
    for k in range(1, n):
      w = np.zeros(d)
      for i in range(k):
        w += xs[bi, i] * ys[bi, i]
      out[bi, k] = xs[bi, k] @ (w / k)
  return out


def _ref_knn(xs, ys, nn):
  xs, ys = xs.astype(np.float64), ys.astype(np.float64)
  b, n, _ = xs.shape
  out = np.zeros((b, n))
  for bi in range(b):
    for k in range(1, n):
      dists = [np.linalg.norm(xs[bi, k] - xs[bi, i]) for i in range(k)]
      order = np.argsort(dists)[:nn]
      out[bi, k] = np.mean([ys[bi, i] for i in order])
  return out


def _ref_dmmse(xs, ys, pool, noise_var):
  xs, ys, pool = xs.astype(np.float64), ys.astype(np.float64), pool.astype(np.float64)
  b, n, _ = xs.shape
  out = np.zeros((b, n))
  for bi in range(b):
    for k in range(n):
      loglik = np.array([
          -sum((ys[bi, i] - xs[bi, i] @ wm) ** 2 for i in range(k)) / (2 * noise_var)
          for wm in pool
      ])
      post = np.exp(loglik - loglik.max())
      post /= post.sum()
      out[bi, k] = sum(p * (xs[bi, k] @ wm) for p, wm in zip(post, pool))
  return out


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("b,n,d", [(3, 9, 4), (2, 6, 8)])  # n > d, and all k < d
def test_least_squares_matches_numpy(b, n, d):
  xs, ys = _data(0, b, n, d)
  got = np.asarray(rb.least_squares(xs, ys))
  np.testing.assert_allclose(got, _ref_least_squares(xs, ys), rtol=RTOL, atol=ATOL)
  # Independent cross-check of the k < d min-norm branch via an explicit pinv.
  k = min(d, n) - 1
  w = np.linalg.pinv(xs[0, :k].astype(np.float64)) @ ys[0, :k]
  np.testing.assert_allclose(got[0, k], xs[0, k] @ w, rtol=RTOL, atol=ATOL)


def test_least_squares_exact_on_noiseless_data():
  xs, ys = _data(1, b=4, n=12, d=4, noise=0.0)
  got = np.asarray(rb.least_squares(xs, ys))
  np.testing.assert_allclose(got[:, 4:], ys[:, 4:], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("lam", [0.1, 1.0])
def test_ridge_matches_closed_form(lam):
  xs, ys = _data(2)
  got = np.asarray(rb.ridge(xs, ys, lam))
  np.testing.assert_allclose(got, _ref_ridge(xs, ys, lam), rtol=RTOL, atol=ATOL)


def test_averaging_matches_loop():
  xs, ys = _data(3)
  np.testing.assert_allclose(
      np.asarray(rb.averaging(xs, ys)), _ref_averaging(xs, ys), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("nn", [1, 3, 20])  # 20 > n: always average all earlier points
def test_nearest_neighbours_matches_loop(nn):
  xs, ys = _data(4)  # continuous Gaussian points: distances distinct a.s.
  got = np.asarray(rb.nearest_neighbours(xs, ys, num_neighbours=nn))
  np.testing.assert_allclose(got, _ref_knn(xs, ys, nn), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("noise_var,batch_chunk", [(0.25, 2), (1.0, 64), (1e-3, 3)])
def test_dmmse_matches_explicit_posterior(noise_var, batch_chunk):
  rng = np.random.default_rng(5)
  b, n, d, m = 5, 9, 4, 7
  pool = rng.normal(size=(m, d)).astype(np.float32)
  xs = rng.normal(size=(b, n, d)).astype(np.float32)
  task = rng.integers(m, size=b)
  ys = (np.einsum("bnd,bd->bn", xs, pool[task])
        + np.sqrt(noise_var) * rng.normal(size=(b, n))).astype(np.float32)
  got = np.asarray(rb.dmmse(xs, ys, pool, noise_var, batch_chunk=batch_chunk))
  assert np.all(np.isfinite(got))
  np.testing.assert_allclose(got, _ref_dmmse(xs, ys, pool, noise_var), rtol=RTOL, atol=ATOL)


def _lasso_kkt_violation(x, y, w, alpha):
  """Max violation of the subgradient optimality conditions of the sklearn lasso."""
  k = x.shape[0]
  g = x.T @ (x @ w - y) / k  # gradient of the smooth part
  active = np.abs(w) > 1e-6
  viol_active = np.abs(g + alpha * np.sign(w))[active]
  viol_zero = np.maximum(np.abs(g) - alpha, 0.0)[~active]
  return max(viol_active.max(initial=0.0), viol_zero.max(initial=0.0))


@pytest.mark.parametrize("alpha", [0.02, 0.2])
def test_lasso_kkt(alpha):
  xs, ys = _data(6, b=3, n=9, d=4)
  w = np.asarray(rb._lasso_weights(xs, ys, alpha)).astype(np.float64)
  preds = np.asarray(rb.lasso(xs, ys, alpha))
  b, n, d = xs.shape
  for bi in range(b):
    for k in range(1, n):  # includes k < d (non-strongly-convex) prefixes
      x, y = xs[bi, :k].astype(np.float64), ys[bi, :k].astype(np.float64)
      assert _lasso_kkt_violation(x, y, w[bi, k], alpha) < 1e-3, (bi, k)
  np.testing.assert_allclose(preds, np.einsum("bnd,bnd->bn", xs, w), rtol=RTOL, atol=ATOL)


def test_lasso_orthogonal_design_soft_threshold():
  # With X_k^T X_k / k = I the lasso solution is soft_threshold(X_k^T y_k / k, alpha).
  # Same (3, 9, 4) shape as test_lasso_kkt so the compiled FISTA loop is reused.
  d, alpha = 4, 0.45
  xs, ys = _data(7, b=3, n=9, d=d)
  q, _ = np.linalg.qr(np.random.default_rng(7).normal(size=(d, d)))
  xs[0, :d] = np.sqrt(d) * q  # rows orthogonal: X^T X = d I at prefix k = d
  c = xs[0, :d].astype(np.float64).T @ ys[0, :d] / d
  expected_w = np.sign(c) * np.maximum(np.abs(c) - alpha, 0.0)
  # Sanity: this seed gives both zeroed and shrunk-but-nonzero coordinates.
  assert np.any(expected_w == 0) and np.any(expected_w != 0)
  w = np.asarray(rb._lasso_weights(xs, ys, alpha))[0, d]
  np.testing.assert_allclose(w, expected_w, rtol=RTOL, atol=ATOL)
  pred = np.asarray(rb.lasso(xs, ys, alpha))[0, d]
  np.testing.assert_allclose(pred, xs[0, d] @ expected_w, rtol=RTOL, atol=ATOL)


def test_k0_predictions():
  xs, ys = _data(8)
  pool = np.random.default_rng(8).normal(size=(5, 4)).astype(np.float32)
  for preds in [rb.least_squares(xs, ys), rb.ridge(xs, ys, 0.5), rb.averaging(xs, ys),
                rb.nearest_neighbours(xs, ys), rb.lasso(xs, ys, 0.1)]:
    np.testing.assert_array_equal(np.asarray(preds)[:, 0], 0.0)
  prior_mean = (xs[:, 0] @ pool.T).mean(-1)
  np.testing.assert_allclose(np.asarray(rb.dmmse(xs, ys, pool, 0.5))[:, 0], prior_mean,
                             rtol=RTOL, atol=ATOL)


def test_jit_with_traced_hyperparameters():
  # Every public function is already jax.jit-decorated (all tests above run
  # compiled); here the float hyperparameters are tracers of an outer jit.
  xs, ys = _data(9)
  pool = np.random.default_rng(9).normal(size=(6, 4)).astype(np.float32)
  cases = {
      "ridge": (lambda x, y, h: rb.ridge(x, y, h), _ref_ridge(xs, ys, 0.5)),
      "dmmse": (lambda x, y, h: rb.dmmse(x, y, pool, h, batch_chunk=2),
                _ref_dmmse(xs, ys, pool, 0.5)),
      "lasso": (lambda x, y, h: rb.lasso(x, y, h * 0.2), np.asarray(rb.lasso(xs, ys, 0.1))),
  }
  for name, (fn, expected) in cases.items():
    got = jax.jit(fn)(jnp.asarray(xs), jnp.asarray(ys), jnp.float32(0.5))  # h is traced
    assert got.shape == ys.shape and got.dtype == jnp.float32, name
    np.testing.assert_allclose(np.asarray(got), expected, rtol=RTOL, atol=ATOL, err_msg=name)


def test_input_shifts_statistics_and_function_of_shifted_x():
  """Garg's test-time shifts: the shape of each distribution, and y = f(shifted x) (least
  squares stays exact at k >= d under every shift)."""
  from configs import icl_regression
  from research.tasks import regression
  key = jax.random.key(0)
  xs = jax.random.normal(key, (512, 16, 5))
  np.testing.assert_allclose(regression.shift_inputs("scale_3", key, xs), 3 * xs)
  orth = np.asarray(regression.shift_inputs("orthant", key, xs))
  signs = np.sign(orth)
  # Garg Sec. 4: the examples share one orthant and the query (the last point) lies in the
  # opposite one.
  assert (signs[:, :-1] == signs[:, :1, :]).all()
  assert (signs[:, -1] == -signs[:, 0]).all()
  assert 0.3 < (signs[:, 0, :] > 0).mean() < 0.7  # orthants vary across prompts
  skew = np.asarray(regression.shift_inputs("skewed", key, xs)).reshape(-1, 5)
  eig = np.sort(np.linalg.eigvalsh(np.cov(skew.T)))[::-1]
  want = 1 / np.arange(1, 6) ** 2
  np.testing.assert_allclose(eig, want * 5 / want.sum(), rtol=0.15)
  with pytest.raises(ValueError, match="unknown input shift"):
    regression.shift_inputs("rotate", key, xs)
  cfg = icl_regression.get_config("tiny").task
  task = regression.RegressionTask(cfg, 0)
  for shift in regression.SHIFTS:
    b = task.sample(key, 10 ** 6, 8, source="prior", shift=shift)
    pred = rb.least_squares(b["xs"], b["ys"])
    err = (np.asarray(pred) - np.asarray(b["ys"])) ** 2
    assert err[:, task.n_dims + 1:].max() < 1e-3 * regression.SHIFTS[shift], shift
  # No shift leaves the training distribution's draws unchanged.
  np.testing.assert_array_equal(task.sample(key, 0, 4)["xs"], task.sample(key, 0, 4, shift="none")["xs"])
