"""research.experiment.Experiment on the tiny regression preset: what one train step computes
(its batch, its dropout, its update and metrics), how gradient accumulation splits a batch,
and that the multi-step program runs the steps asked and reuses the precompiled program."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import icl_regression
from research import experiment, host_memory, keys


def _config(accum=1, dropout=0.0, seed=3):
  c = icl_regression.get_config("tiny")
  c.train.compile_cache_dir = ""
  c.train.batch_size, c.train.grad_accum_steps = 16, accum
  c.mesh.update(data=1, fsdp=8, tensor=1)
  c.model.dropout = dropout
  c.seed = seed
  return c


@pytest.fixture(scope="module")
def exp():
  return experiment.Experiment(_config())


@pytest.fixture(scope="module")
def with_dropout():
  """Two microbatches a step, dropout 0.3."""
  return experiment.Experiment(_config(accum=2, dropout=0.3))


def _accumulating(exp, accum):
  """exp taking `accum` microbatches a step (read when a step is traced)."""
  exp.config.train.grad_accum_steps = accum
  return exp


def _batch(exp, step):
  data_key = jax.random.fold_in(jax.random.fold_in(exp.root_key, keys.DATA), step)
  return exp.task.sample(data_key, jnp.int32(step), exp.config.train.batch_size)


def _close(a, b, tol=1e-5):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


def test_parameter_counts_are_element_counts(exp):
  params = exp.init_state().params
  leaves = jax.tree_util.tree_leaves_with_path(params)
  assert exp.num_params == sum(x.size for _, x in leaves) > len(leaves)
  embed = sum(x.size for p, x in leaves if "embed" in jax.tree_util.keystr(p))
  assert exp.num_embedding_params == embed < exp.num_params


def test_the_seed_is_the_root_key_and_init_draws_from_its_init_stream(exp):
  """research/keys.py: parameters come from fold_in(root, INIT), apart from the data stream."""
  assert jax.random.key_data(exp.root_key).tolist() == jax.random.key_data(
      jax.random.key(3)).tolist()  # config.seed
  want = jax.tree.map(lambda x: getattr(x, "value", x),
                      exp._init_boxed(jax.random.fold_in(exp.root_key, keys.INIT)),
                      is_leaf=lambda x: hasattr(x, "value"))
  _close(exp.init_from_key(exp.root_key).params, want, tol=0)


def test_a_step_trains_on_its_own_batch_and_counts_itself(exp):
  """Step s samples fold_in(fold_in(root, DATA), s): steps 0 and 1 from the same parameters
  see different batches; the step advances by one; the update goes down the gradient; the
  metrics are that batch's loss and gradient norm."""
  step = jax.jit(lambda s: exp.train_step(s, exp.root_key))
  grads_at = jax.jit(lambda p, b, s: exp._loss_and_grads(p, b, s, exp.root_key))
  state0 = exp.init_state()
  state1, m0 = step(state0)  # step 0: the warmup's zero rate
  new, m1 = step(state1)
  assert int(state1.step) == 1 and int(new.step) == 2 and float(m1["learning_rate"]) > 0
  (loss, _), grads = grads_at(state1.params, _batch(exp, 1), jnp.int32(1))
  np.testing.assert_allclose(float(m1["loss"]), float(loss), rtol=1e-5)
  np.testing.assert_allclose(float(m1["grad_norm"]), float(optax.tree.norm(grads)), rtol=1e-5)
  moved = jax.tree.map(lambda a, b: a - b, new.params, state1.params)
  assert float(sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grads),
                                                  jax.tree.leaves(moved)))) < 0
  (loss0_on_1, _), _ = grads_at(state0.params, _batch(exp, 1), jnp.int32(1))
  assert float(m0["loss"]) != float(loss0_on_1)  # step 1's batch is not step 0's


def test_dropout_masks_change_with_the_step(with_dropout):
  exp = with_dropout
  params = exp.init_state().params
  batch = _batch(exp, 0)
  loss = jax.jit(lambda s: exp.loss_fn(params, batch, s, exp.root_key)[0])
  assert float(loss(jnp.int32(0))) != float(loss(jnp.int32(1)))


def test_accumulated_microbatches_give_the_whole_batchs_loss_and_gradients(exp):
  """Without dropout, A microbatches' mean loss and gradient are the whole batch's."""
  params = exp.init_state().params
  batch = _batch(exp, 0)
  grads_of = lambda e: jax.jit(lambda p, b: e._loss_and_grads(p, b, jnp.int32(0), e.root_key))
  try:
    (loss1, aux1), g1 = grads_of(_accumulating(exp, 1))(params, batch)
    (loss2, aux2), g2 = grads_of(_accumulating(exp, 2))(params, batch)
  finally:
    _accumulating(exp, 1)
  np.testing.assert_allclose(float(loss2), float(loss1), rtol=1e-5)
  _close(g2, g1, tol=1e-5)
  _close(aux2, aux1, tol=1e-5)


def test_microbatch_j_holds_rows_j_j_plus_a_and_its_own_dropout(with_dropout):
  """With dropout the split shows: microbatch j is rows j, j + A, ... with the microbatch
  index j folded into its dropout key (Experiment._loss_and_grads's docstring)."""
  exp = with_dropout
  params = exp.init_state().params
  batch = _batch(exp, 0)
  step = jnp.int32(0)
  (loss, _), _ = jax.jit(lambda p, b: exp._loss_and_grads(p, b, step, exp.root_key))(params, batch)
  rows = lambda j: jax.tree.map(lambda x: x[j::2] if jnp.ndim(x) else x, batch)
  one = jax.jit(lambda p, b, j: exp.loss_fn(p, b, step, exp.root_key, microbatch=j)[0])
  want = np.mean([float(one(params, rows(j), jnp.int32(j))) for j in (0, 1)])
  np.testing.assert_allclose(float(loss), want, rtol=1e-5)


def test_the_multi_step_program_runs_the_steps_asked_and_reuses_the_precompiled_one(
    exp, monkeypatch):
  seen = {}
  real = host_memory.compile_checked

  def checked(fn, args, **kw):
    seen["enabled"] = kw["enabled"]
    return real(fn, args, **kw)
  monkeypatch.setattr(host_memory, "compile_checked", checked)
  with exp.config.unlocked():
    del exp.config.train["host_memory_check"]  # a config of one's own: checked by default
  try:
    exp.precompile(3, what="test")
  finally:
    with exp.config.unlocked():
      exp.config.train.host_memory_check = True
  assert seen["enabled"] is True and 3 in exp._precompiled
  monkeypatch.setattr(exp, "multi_step_jit", lambda n: pytest.fail("recompiled"))
  state, metrics = exp.multi_step_fn(3)(exp.init_state())
  assert int(state.step) == 3 and metrics["loss"].shape == (3,)
  assert 3 not in exp._precompiled  # used once
