"""Classical in-context linear-regression baselines (Garg et al. 2022; Raventos et al. 2023).

A batch of prompts is ``xs_BxNxD`` (float32) with targets ``ys_BxN``. For every
position k = 0..N-1 each baseline predicts y_k from x_k using ONLY the k earlier
pairs (x_0, y_0)..(x_{k-1}, y_{k-1}). With no context (k = 0) every baseline
predicts 0, except ``dmmse`` which predicts the prior mean (mean_m x_0 . w_m).

All functions are pure ``jax.numpy``, vectorised over batch and position (no
Python loops over either), jitted (non-array knobs are static), float32, and
return ``preds_BxN``.

Shape legend (suffixes of variable names):
  B: batch size            N: prompt length (axis of query position k, or of
  D: input dimension          context index i; "NxN" is [k, i])
  M: number of pool tasks  R: min(N, D) (singular values)   S: neighbours kept

Why the "prefix" trick works: the statistics for query position k are exclusive
prefix sums over i < k (Gram matrices, X^T y, log-likelihoods), or equivalently
the full N-row system with rows i >= k zeroed. Both are computed for all k at
once, so the whole (B, N) grid is one batched linear-algebra call.
"""

import functools

import jax
import jax.numpy as jnp
from jax import lax

# Reference baselines should not silently use TF32/bf16 matmuls on accelerators.
_HI = lax.Precision.HIGHEST


def _prefix_mask(n: int) -> jax.Array:
  """mask_NxN[k, i] = (i < k): which context pairs query position k may see."""
  idx_N = jnp.arange(n)
  return idx_N[None, :] < idx_N[:, None]


def _exclusive_cumsum(a: jax.Array, axis: int) -> jax.Array:
  """sum_{i<k} a_i along `axis`. Pad+shift (not cumsum - a) to avoid cancellation."""
  cs = jnp.cumsum(a, axis=axis)
  cs = jnp.moveaxis(cs, axis, 0)
  out = jnp.concatenate([jnp.zeros_like(cs[:1]), cs[:-1]], axis=0)
  return jnp.moveaxis(out, 0, axis)


def _prefix_moments(xs_BxNxD, ys_BxN):
  """Exclusive-prefix Gram matrices X_k^T X_k and moments X_k^T y_k for every k."""
  outer_BxNxDxD = xs_BxNxD[..., :, None] * xs_BxNxD[..., None, :]
  gram_BxNxDxD = _exclusive_cumsum(outer_BxNxDxD, axis=1)
  xty_BxNxD = _exclusive_cumsum(xs_BxNxD * ys_BxN[..., None], axis=1)
  return gram_BxNxDxD, xty_BxNxD


def _predict(xs_BxNxD, w_BxNxD):
  """pred_k = x_k . w_k, where w_k was fitted on the prefix before k."""
  return jnp.einsum("bnd,bnd->bn", xs_BxNxD, w_BxNxD, precision=_HI)


@jax.jit
def least_squares(xs_BxNxD: jax.Array, ys_BxN: jax.Array) -> jax.Array:
  """Minimum-norm least squares (pseudo-inverse) fitted on the k prefix pairs.

  For k < D the system is under-determined and this is the minimum-norm
  interpolant. We zero rows i >= k of the full N x D system instead of slicing:
  zero rows change neither the residual's dependence on w nor the row space, so
  the min-norm LS solution is identical, and all B*N systems share one shape.
  """
  b, n, d = xs_BxNxD.shape
  mask_NxN = _prefix_mask(n)
  x_BxNxNxD = jnp.where(mask_NxN[None, :, :, None], xs_BxNxD[:, None, :, :], 0.0)
  y_BxNxN = jnp.where(mask_NxN[None], ys_BxN[:, None, :], 0.0)

  # Thin SVD pinv, written out to control the cutoff. The zeroed rows yield
  # singular values that are only roundoff (~eps * s_max), so a relative cutoff
  # is essential (numpy's lstsq default, eps * max(N, D), is too tight in
  # float32; we use 10x that, as jnp.linalg.pinv does). At k = 0 all s == 0,
  # cutoff == 0 and `s > cutoff` is False, so w = 0 without dividing by zero.
  u_BxNxNxR, s_BxNxR, vt_BxNxRxD = jnp.linalg.svd(x_BxNxNxD, full_matrices=False)
  rcond = 10.0 * max(n, d) * jnp.finfo(jnp.float32).eps
  cutoff_BxNx1 = rcond * jnp.max(s_BxNxR, axis=-1, keepdims=True)
  keep_BxNxR = s_BxNxR > cutoff_BxNx1
  s_inv_BxNxR = jnp.where(keep_BxNxR, 1.0 / jnp.where(keep_BxNxR, s_BxNxR, 1.0), 0.0)
  uty_BxNxR = jnp.einsum("bkir,bki->bkr", u_BxNxNxR, y_BxNxN, precision=_HI)
  w_BxNxD = jnp.einsum("bkrd,bkr->bkd", vt_BxNxRxD, uty_BxNxR * s_inv_BxNxR, precision=_HI)
  return _predict(xs_BxNxD, w_BxNxD)


@jax.jit
def ridge(xs_BxNxD: jax.Array, ys_BxN: jax.Array, lam) -> jax.Array:
  """Ridge: w_k = (X_k^T X_k + lam I)^{-1} X_k^T y_k. `lam` may be traced; needs lam > 0.

  (lam = 0 makes the k < D systems singular; use `least_squares` for that.)
  """
  d = xs_BxNxD.shape[-1]
  lam = jnp.asarray(lam, jnp.float32)
  gram_BxNxDxD, xty_BxNxD = _prefix_moments(xs_BxNxD, ys_BxN)
  a_BxNxDxD = gram_BxNxDxD + lam * jnp.eye(d, dtype=jnp.float32)
  # SPD system; at k = 0 it is lam*I w = 0, so w = 0 as required.
  w_BxNxD = jnp.linalg.solve(a_BxNxDxD, xty_BxNxD[..., None])[..., 0]
  return _predict(xs_BxNxD, w_BxNxD)


@jax.jit
def averaging(xs_BxNxD: jax.Array, ys_BxN: jax.Array) -> jax.Array:
  """Garg et al.'s averaging estimator: w_k = mean_{i<k} x_i y_i; pred = x_k . w_k."""
  n = xs_BxNxD.shape[1]
  _, xty_BxNxD = _prefix_moments(xs_BxNxD, ys_BxN)
  # max(k, 1): at k = 0 the sum is exactly 0, so the divisor is irrelevant.
  count_N = jnp.maximum(jnp.arange(n), 1).astype(jnp.float32)
  return _predict(xs_BxNxD, xty_BxNxD / count_N[None, :, None])


@functools.partial(jax.jit, static_argnames=("num_neighbours",))
def nearest_neighbours(xs_BxNxD: jax.Array, ys_BxN: jax.Array,
                       num_neighbours: int = 3) -> jax.Array:
  """Mean y of the (up to) `num_neighbours` nearest earlier x's (Euclidean).

  With fewer than `num_neighbours` earlier points, all of them are averaged.
  Ties are broken by lax.top_k (lowest index first).
  """
  if num_neighbours < 1:
    raise ValueError(f"num_neighbours must be >= 1, got {num_neighbours}")
  n = xs_BxNxD.shape[1]
  s = min(num_neighbours, n)  # top_k needs s <= N; extra neighbours never exist anyway
  # Explicit differences rather than |a|^2+|b|^2-2ab: no cancellation, and the
  # B*N*N*D tensor is small for in-context regression prompts.
  diff_BxNxNxD = xs_BxNxD[:, :, None, :] - xs_BxNxD[:, None, :, :]
  dist_BxNxN = jnp.sum(diff_BxNxNxD**2, axis=-1)
  # Future / current points get +inf distance, so they are picked only when
  # fewer than s valid points exist; they are then masked out below.
  dist_BxNxN = jnp.where(_prefix_mask(n)[None], dist_BxNxN, jnp.inf)
  neg_dist_BxNxS, idx_BxNxS = lax.top_k(-dist_BxNxN, s)
  valid_BxNxS = jnp.isfinite(neg_dist_BxNxS)
  y_BxNxS = jnp.take_along_axis(
      jnp.broadcast_to(ys_BxN[:, None, :], dist_BxNxN.shape), idx_BxNxS, axis=-1)
  total_BxN = jnp.sum(jnp.where(valid_BxNxS, y_BxNxS, 0.0), axis=-1)
  count_BxN = jnp.sum(valid_BxNxS, axis=-1).astype(jnp.float32)
  return total_BxN / jnp.maximum(count_BxN, 1.0)  # k = 0: 0 / 1 = 0


@functools.partial(jax.jit, static_argnames=("batch_chunk",))
def dmmse(xs_BxNxD: jax.Array, ys_BxN: jax.Array, pool_ws_MxD: jax.Array,
          noise_var, batch_chunk: int = 64) -> jax.Array:
  """Bayes-optimal (posterior-mean) predictor for a uniform prior over M pool tasks.

  log p(m | prefix k) = -sum_{i<k} (y_i - x_i . w_m)^2 / (2 noise_var) + const,
  pred_k = sum_m softmax_m(log p) * x_k . w_m. At k = 0 the posterior is uniform,
  giving the prior mean mean_m x_0 . w_m. `noise_var` may be traced.

  Memory: the per-example work is N x M (task predictions, residuals,
  log-likelihoods, posterior). Materialising that for the whole batch would be
  B*N*M*4 bytes per buffer (1280*17*65536*4 B = 5.7 GB, times a few live
  buffers), so examples are processed `batch_chunk` at a time with
  lax.map(batch_size=...), a scan over chunks each vmapped. Peak memory is
  about 4 * batch_chunk * N * M * 4 bytes (~1.1 GB for batch_chunk=64, N=17,
  M=65536), independent of B. B need not be a multiple of batch_chunk.
  """
  pool_ws_MxD = jnp.asarray(pool_ws_MxD, jnp.float32)
  noise_var = jnp.asarray(noise_var, jnp.float32)

  def one_prompt(args):
    x_NxD, y_N = args
    task_preds_NxM = jnp.dot(x_NxD, pool_ws_MxD.T, precision=_HI)
    sq_err_NxM = (y_N[:, None] - task_preds_NxM) ** 2
    # Exclusive cumsum: the posterior used at k only sees residuals of i < k.
    logits_NxM = -_exclusive_cumsum(sq_err_NxM, axis=0) / (2.0 * noise_var)
    # softmax subtracts the max logit, so tiny noise_var (huge logits) is safe.
    post_NxM = jax.nn.softmax(logits_NxM, axis=-1)
    return jnp.sum(post_NxM * task_preds_NxM, axis=-1)

  return lax.map(one_prompt, (xs_BxNxD, ys_BxN), batch_size=batch_chunk)


@functools.partial(jax.jit, static_argnames=("num_iters",))
def _lasso_weights(xs_BxNxD: jax.Array, ys_BxN: jax.Array, alpha,
                   num_iters: int = 300) -> jax.Array:
  """Lasso weights w_k for every prefix (see `lasso`); returns w_BxNxD."""
  n, d = xs_BxNxD.shape[1:]
  alpha = jnp.asarray(alpha, jnp.float32)
  gram_BxNxDxD, xty_BxNxD = _prefix_moments(xs_BxNxD, ys_BxN)
  # Smooth part f(w) = (1/(2k))|y - Xw|^2 has gradient A w - c with
  # A = X^T X / k, c = X^T y / k. (max(k,1): at k = 0 both are exactly 0.)
  inv_k_N = 1.0 / jnp.maximum(jnp.arange(n), 1).astype(jnp.float32)
  a_BxNxDxD = gram_BxNxDxD * inv_k_N[None, :, None, None]
  c_BxNxD = xty_BxNxD * inv_k_N[None, :, None]
  # Lipschitz constant of grad f = largest eigenvalue of A (D x D, cheap).
  lip_BxN = jnp.linalg.eigvalsh(a_BxNxDxD)[..., -1]
  # L = 0 only when the prefix is all zeros (e.g. k = 0): then c = 0 too and the
  # optimum is w = 0, which a zero step keeps exactly.
  pos = lip_BxN > 0
  step_BxNx1 = jnp.where(pos, 1.0 / jnp.where(pos, lip_BxN, 1.0), 0.0)[..., None]
  thresh_BxNx1 = step_BxNx1 * alpha

  def soft_threshold(v, t):
    return jnp.sign(v) * jnp.maximum(jnp.abs(v) - t, 0.0)

  def body(_, state):
    # FISTA (Beck & Teboulle 2009) with gradient-based adaptive restart
    # (O'Donoghue & Candes 2015): momentum is reset per (b, k) when it points
    # uphill. This kills the oscillations of plain FISTA on the strongly convex
    # k >= D problems (much faster convergence there) at negligible cost.
    w_BxNxD, z_BxNxD, t_BxNx1 = state
    grad_BxNxD = jnp.einsum("bnij,bnj->bni", a_BxNxDxD, z_BxNxD, precision=_HI) - c_BxNxD
    w_new_BxNxD = soft_threshold(z_BxNxD - step_BxNx1 * grad_BxNxD, thresh_BxNx1)
    restart_BxNx1 = jnp.sum((z_BxNxD - w_new_BxNxD) * (w_new_BxNxD - w_BxNxD),
                            axis=-1, keepdims=True) > 0
    t_BxNx1 = jnp.where(restart_BxNx1, 1.0, t_BxNx1)
    t_new_BxNx1 = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * t_BxNx1**2))
    z_new_BxNxD = w_new_BxNxD + ((t_BxNx1 - 1.0) / t_new_BxNx1) * (w_new_BxNxD - w_BxNxD)
    return w_new_BxNxD, z_new_BxNxD, t_new_BxNx1

  w0_BxNxD = jnp.zeros_like(c_BxNxD)
  t0_BxNx1 = jnp.ones(c_BxNxD.shape[:-1] + (1,), jnp.float32)
  w_BxNxD, _, _ = lax.fori_loop(0, num_iters, body, (w0_BxNxD, w0_BxNxD, t0_BxNx1))
  return w_BxNxD


@functools.partial(jax.jit, static_argnames=("num_iters",))
def lasso(xs_BxNxD: jax.Array, ys_BxN: jax.Array, alpha,
          num_iters: int = 300) -> jax.Array:
  """Lasso on each prefix, sklearn's objective (1/(2k))|y_k - X_k w|^2 + alpha |w|_1.

  Solved by `num_iters` FISTA steps with step 1/L, L = lambda_max(X_k^T X_k / k)
  per (b, k); pred = x_k . w_k. `alpha` may be traced. Accuracy is set by the
  fixed iteration budget, not float32: with 300 steps the KKT residual is
  ~1e-6 for D=4, but ~1e-3 for small alpha on under-determined (k < D, D >= 8)
  prefixes; raise `num_iters` (e.g. 3000 gives ~1e-5) if that matters.
  """
  return _predict(xs_BxNxD, _lasso_weights(xs_BxNxD, ys_BxN, alpha, num_iters))
