"""Tests for research.optim: schedules, optimizer updates, masks, injection."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from ml_collections import ConfigDict

from research import optim


def make_cfg(**overrides):
  cfg = dict(name="adam", learning_rate=1e-2, schedule="constant",
             warmup_steps=0, decay_steps=0, end_lr_fraction=0.0,
             b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, momentum=0.0,
             nesterov=False, grad_clip_norm=0.0, wd_exempt_norms=False,
             wd_exempt_biases=False, wd_exempt_embeddings=False)
  cfg.update(overrides)
  return ConfigDict(cfg)


# Trees and expected values use numpy: every eager jnp op compiles once per
# shape, which dominated this file's runtime. jit accepts numpy inputs.
def params_tree():
  f32 = lambda x: np.asarray(x, np.float32)
  return {
      "ln_1": {"scale": f32([1.5] * 3), "bias": f32([0.5] * 3)},
      "dense": {"kernel": f32(np.arange(6.0).reshape(3, 2) - 2.0),
                "bias": f32([0.25, -0.75])},
      "token_embed": {"embedding": f32(np.linspace(-1, 1, 8).reshape(4, 2))},
  }


def grads_like(params, seed=0):
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(
      lambda x: rng.normal(size=x.shape).astype(np.float32), params)


def np_norm(tree):
  return np.sqrt(sum(np.sum(np.square(x)) for x in jax.tree_util.tree_leaves(tree)))


def assert_trees_close(a, b, rtol=1e-6, atol=1e-8):
  jax.tree_util.tree_map(
      lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


# ---------------------------------------------------------------- schedules

LR = 0.1


@pytest.mark.parametrize("kwargs, num_steps, expected", [
    (dict(schedule="constant"), 100, {0: LR, 50: LR, 1000: LR}),
    (dict(schedule="constant", warmup_steps=10), 100,
     {0: 0.0, 5: LR / 2, 10: LR, 99: LR}),
    # Cosine: peak at warmup end, half-way point is the mean of peak and end.
    (dict(schedule="warmup_cosine", warmup_steps=100, decay_steps=1100,
          end_lr_fraction=0.1), 5000,
     {0: 0.0, 50: LR / 2, 100: LR, 600: LR * (0.1 + 0.9 * 0.5),
      350: LR * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4))),
      1100: LR * 0.1, 4000: LR * 0.1}),
    # decay_steps=0 means decay ends at num_steps.
    (dict(schedule="warmup_cosine", warmup_steps=10, end_lr_fraction=0.0), 110,
     {10: LR, 60: LR / 2, 110: 0.0}),
    # Raventós et al.: warmup to 250k, linear decay to 0 at 500k.
    (dict(schedule="warmup_linear", warmup_steps=250_000, decay_steps=500_000),
     500_000, {0: 0.0, 125_000: LR / 2, 250_000: LR, 375_000: LR / 2,
               500_000: 0.0, 600_000: 0.0}),
    (dict(schedule="warmup_linear", warmup_steps=10, end_lr_fraction=0.2), 20,
     {10: LR, 15: LR * 0.6, 20: LR * 0.2}),
    # Inverse-sqrt: lr * sqrt(warmup / step) after warmup.
    (dict(schedule="warmup_rsqrt", warmup_steps=100), 10_000,
     {0: 0.0, 50: LR / 2, 100: LR, 400: LR / 2, 1600: LR / 4, 10_000: LR / 10}),
])
def test_schedule_values(kwargs, num_steps, expected):
  sched = optim.make_schedule(make_cfg(learning_rate=LR, **kwargs), num_steps)
  for step, want in expected.items():
    np.testing.assert_allclose(sched(step), want, rtol=1e-5, atol=1e-8,
                               err_msg=f"step {step}")


@pytest.mark.parametrize("schedule", optim.VALID["schedule"])
def test_optimizer_lr_equals_schedule_exactly(schedule):
  # sgd on unit gradients: -update is exactly the lr applied at each step.
  cfg = make_cfg(name="sgd", learning_rate=0.3, schedule=schedule,
                 warmup_steps=7, decay_steps=40, end_lr_fraction=0.05)
  num_steps = 50
  opt = optim.make(cfg, num_steps)
  params = {"w": jnp.zeros(())}
  grads = {"w": jnp.ones(())}

  def step(state, _):
    updates, state = opt.update(grads, state, params)
    return state, (-updates["w"], optim.current_lr(state))

  _, (applied, logged) = jax.jit(
      lambda s: jax.lax.scan(step, s, None, length=num_steps))(opt.init(params))
  want = optim.make_schedule(cfg, num_steps)(jnp.arange(num_steps))
  # Same float32 formula; only XLA's cos may differ by 1 ulp jit-vs-eager.
  np.testing.assert_allclose(applied, want, rtol=2e-7, atol=0)
  np.testing.assert_allclose(logged, want, rtol=2e-7, atol=0)


# --------------------------------------------------------------- optimizers

def test_adam_matches_optax_and_closed_form():
  cfg = make_cfg(name="adam", learning_rate=1e-2, b1=0.8, b2=0.95, eps=1e-6)
  params = params_tree()
  opt, ref = optim.make(cfg, 10), optax.adam(1e-2, b1=0.8, b2=0.95, eps=1e-6)
  state, ref_state = opt.init(params), ref.init(params)
  g0 = grads_like(params)
  # First bias-corrected Adam step is -lr * g / (|g| + eps).
  first, _ = jax.jit(opt.update)(g0, state, params)
  assert_trees_close(
      first, jax.tree_util.tree_map(lambda g: -1e-2 * g / (np.abs(g) + 1e-6), g0))
  for i in range(3):
    g = grads_like(params, seed=i)
    updates, state = jax.jit(opt.update)(g, state, params)
    ref_updates, ref_state = jax.jit(ref.update)(g, ref_state, params)
    assert_trees_close(updates, ref_updates)


def test_adamw_matches_optax_with_mask():
  cfg = make_cfg(name="adamw", learning_rate=3e-3, weight_decay=0.1,
                 wd_exempt_norms=True, wd_exempt_biases=True)
  params = params_tree()
  opt = optim.make(cfg, 10)
  ref = optax.adamw(3e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.1,
                    mask=optim.wd_mask(cfg))
  state, ref_state = opt.init(params), ref.init(params)
  for i in range(3):
    g = grads_like(params, seed=i)
    updates, state = jax.jit(opt.update)(g, state, params)
    ref_updates, ref_state = jax.jit(ref.update)(g, ref_state, params)
    assert_trees_close(updates, ref_updates)


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False),
                                                (0.9, True)])
def test_sgd_matches_optax(momentum, nesterov):
  cfg = make_cfg(name="sgd", learning_rate=0.05, momentum=momentum,
                 nesterov=nesterov)
  params = params_tree()
  opt = optim.make(cfg, 10)
  ref = optax.sgd(0.05, momentum=momentum or None, nesterov=nesterov)
  state, ref_state = opt.init(params), ref.init(params)
  for i in range(3):
    g = grads_like(params, seed=i)
    updates, state = jax.jit(opt.update)(g, state, params)
    ref_updates, ref_state = jax.jit(ref.update)(g, ref_state, params)
    assert_trees_close(updates, ref_updates)


def test_sgd_nesterov_weight_decay_first_update_closed_form():
  lr, m, wd = 0.05, 0.9, 0.01
  cfg = make_cfg(name="sgd", learning_rate=lr, momentum=m, nesterov=True,
                 weight_decay=wd)
  params = params_tree()
  g = grads_like(params)
  opt = optim.make(cfg, 10)
  updates, _ = jax.jit(opt.update)(g, opt.init(params), params)
  # trace_1 = g; nesterov direction = g + m * trace_1; decay is decoupled.
  want = jax.tree_util.tree_map(lambda g, p: -lr * ((1 + m) * g + wd * p),
                                g, params)
  assert_trees_close(updates, want)


def test_grad_clipping_bounds_update():
  cfg = make_cfg(name="sgd", learning_rate=0.5, grad_clip_norm=1.0)
  params = params_tree()
  opt = optim.make(cfg, 10)
  big = jax.tree_util.tree_map(lambda g: 100.0 * g, grads_like(params))
  updates, _ = jax.jit(opt.update)(big, opt.init(params), params)
  np.testing.assert_allclose(np_norm(updates), 0.5, rtol=1e-5)
  # Direction preserved; gradients under the threshold pass unchanged.
  norm = np_norm(big)
  assert_trees_close(updates, jax.tree_util.tree_map(lambda g: -0.5 * g / norm, big))
  small = jax.tree_util.tree_map(lambda g: 1e-3 * g, grads_like(params))
  updates, _ = jax.jit(opt.update)(small, opt.init(params), params)
  assert_trees_close(updates, jax.tree_util.tree_map(lambda g: -0.5 * g, small))


# ------------------------------------------------------------ weight decay

@pytest.mark.parametrize("flags, exempt", [
    ({}, set()),
    (dict(wd_exempt_norms=True), {"ln_1/scale", "ln_1/bias"}),
    (dict(wd_exempt_biases=True), {"ln_1/bias", "dense/bias"}),
    (dict(wd_exempt_embeddings=True), {"token_embed/embedding"}),
    (dict(wd_exempt_norms=True, wd_exempt_biases=True,
          wd_exempt_embeddings=True),
     {"ln_1/scale", "ln_1/bias", "dense/bias", "token_embed/embedding"}),
])
def test_wd_mask_exempts_expected_leaves(flags, exempt):
  mask = optim.wd_mask(make_cfg(**flags))(params_tree())
  got = {f"{mod}/{leaf}" for mod, leaves in mask.items()
         for leaf, decays in leaves.items() if not decays}
  assert got == exempt


def test_wd_mask_norm_naming_conventions():
  params = {"LayerNorm_0": {"scale": 1.0, "bias": 0.0},
            "block": {"final_norm": {"scale": 1.0}, "ln2": {"scale": 1.0},
                      "linear": {"kernel": 1.0, "scale": 1.0}}}
  mask = optim.wd_mask(make_cfg(wd_exempt_norms=True))(params)
  assert mask == {"LayerNorm_0": {"scale": False, "bias": False},
                  "block": {"final_norm": {"scale": False},
                            "ln2": {"scale": False},
                            "linear": {"kernel": True, "scale": True}}}


@pytest.mark.parametrize("name", ["adamw", "sgd"])
def test_weight_decay_applies_only_to_masked_leaves(name):
  lr, wd = 0.1, 0.5
  cfg = make_cfg(name=name, learning_rate=lr, weight_decay=wd,
                 wd_exempt_norms=True, wd_exempt_biases=True,
                 wd_exempt_embeddings=True)
  params = params_tree()
  zeros = jax.tree_util.tree_map(np.zeros_like, params)
  opt = optim.make(cfg, 10)
  updates, _ = jax.jit(opt.update)(zeros, opt.init(params), params)
  np.testing.assert_allclose(updates["dense"]["kernel"],
                             -lr * wd * params["dense"]["kernel"], rtol=1e-6)
  for mod, leaf in [("ln_1", "scale"), ("ln_1", "bias"), ("dense", "bias"),
                    ("token_embed", "embedding")]:
    np.testing.assert_array_equal(updates[mod][leaf], 0.0)


# ------------------------------------------------------------- validation

@pytest.mark.parametrize("overrides, field", [
    (dict(name="adamax"), "optim.name"),
    (dict(schedule="cosine"), "optim.schedule"),
    (dict(name="adam", weight_decay=0.1), "optim.weight_decay"),
    (dict(schedule="warmup_rsqrt", warmup_steps=0), "optim.warmup_steps"),
    (dict(schedule="warmup_cosine", warmup_steps=10, decay_steps=5),
     "optim.decay_steps"),
    (dict(warmup_steps=-1), "optim.warmup_steps"),
    (dict(name="sgd", momentum=1.0), "optim.momentum"),
    (dict(grad_clip_norm=-1.0), "optim.grad_clip_norm"),
])
def test_invalid_config_raises_naming_field(overrides, field):
  with pytest.raises(ValueError, match=field):
    optim.make(make_cfg(**overrides), 100)


def test_invalid_name_message_lists_choices():
  with pytest.raises(ValueError) as e:
    optim.make(make_cfg(name="adamax"), 100)
  assert str(e.value) == ("optim.name='adamax' is not valid; choose one of: "
                          "adam, adamw, sgd")
  with pytest.raises(ValueError, match="optim.schedule"):
    optim.make_schedule(make_cfg(schedule="step"), 100)


def test_valid_lists_choices():
  assert optim.VALID == {
      "name": ("adam", "adamw", "sgd"),
      "schedule": ("constant", "warmup_cosine", "warmup_linear",
                   "warmup_rsqrt")}


# ------------------------------------------------- jit and hyperparameters

@pytest.mark.parametrize("name", optim.VALID["name"])
def test_training_under_jit(name):
  cfg = make_cfg(name=name, learning_rate=0.05, schedule="warmup_cosine",
                 warmup_steps=2, weight_decay=0.0 if name == "adam" else 1e-3,
                 momentum=0.9, grad_clip_norm=1.0, wd_exempt_biases=True)
  opt = optim.make(cfg, 20)
  params = params_tree()
  loss = lambda p: sum(jnp.sum(x ** 2) for x in jax.tree_util.tree_leaves(p))

  @jax.jit
  def train_step(params, state):
    grads = jax.grad(loss)(params)
    updates, state = opt.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  state = opt.init(params)
  start = jax.jit(loss)(params)
  for _ in range(20):
    params, state = train_step(params, state)
  end = jax.jit(loss)(params)
  assert np.isfinite(end) and end < start


def test_set_hyperparams_vmapped_ensemble():
  cfg = make_cfg(name="adamw", learning_rate=1e-2, weight_decay=0.0)
  opt = optim.make(cfg, 10)
  params = {"w": jnp.ones((2, 3))}  # 2 identical members
  grads = {"w": jnp.ones((2, 3))}
  state = jax.vmap(opt.init)(params)
  state = optim.set_hyperparams(state, peak_lr=jnp.array([1e-2, 3e-2]),
                                weight_decay=jnp.array([0.0, 0.1]))
  updates, state = jax.jit(jax.vmap(opt.update))(grads, state, params)
  # Adam's first step has unit magnitude: update = -lr * (1 + wd * p).
  np.testing.assert_allclose(updates["w"][0], -1e-2, rtol=1e-5)
  np.testing.assert_allclose(updates["w"][1], -3e-2 * 1.1, rtol=1e-5)
  np.testing.assert_allclose(optim.current_lr(state), [1e-2, 3e-2], rtol=1e-6)
  assert optim.get_hyperparams(state)["peak_lr"].dtype == jnp.float32


def test_set_hyperparams_rejects_derived_or_absent():
  opt = optim.make(make_cfg(name="adam"), 10)
  state = opt.init({"w": jnp.ones(3)})
  with pytest.raises(ValueError, match="lr_factor"):
    optim.set_hyperparams(state, lr_factor=2.0)
  with pytest.raises(ValueError, match="weight_decay"):
    optim.set_hyperparams(state, weight_decay=0.1)


def test_wd_mask_sees_through_partitioned_boxes():
  # Sharded models box their params in nn.Partitioned, whose tree path ends in `.value`:
  # the leaf's own name is the one before it, so a boxed LayerNorm scale is still exempt.
  import flax.linen as nn
  box = lambda x: nn.Partitioned(np.asarray(x, np.float32), names=(None,))
  params = {"ln_f": {"scale": box([1.0]), "bias": box([0.0])},
            "dense": {"kernel": box([2.0]), "bias": box([0.5])},
            "embed": {"embedding": box([3.0])}}
  mask = optim.wd_mask(make_cfg(wd_exempt_norms=True, wd_exempt_biases=True,
                                wd_exempt_embeddings=True))(params)
  flat = {optim._key_name(p[0]) + "/" + optim._key_name(p[1]): v
          for p, v in jax.tree_util.tree_leaves_with_path(mask)}
  assert flat == {"ln_f/scale": False, "ln_f/bias": False, "dense/kernel": True,
                  "dense/bias": False, "embed/embedding": False}


@pytest.mark.parametrize("flag, exempt", [("wd_exempt_norms", ("ln_1", "scale")),
                                          ("wd_exempt_biases", ("dense", "bias")),
                                          ("wd_exempt_embeddings", ("token_embed", "embedding"))])
def test_each_exemption_flag_alone_reaches_the_optimizer(flag, exempt):
  # One flag alone must still build the mask: the exempt leaf gets no decay, a kernel does.
  lr, wd = 0.1, 0.5
  cfg = make_cfg(name="adamw", learning_rate=lr, weight_decay=wd, **{flag: True})
  params = params_tree()
  zeros = jax.tree_util.tree_map(np.zeros_like, params)
  opt = optim.make(cfg, 10)
  updates, _ = jax.jit(opt.update)(zeros, opt.init(params), params)
  np.testing.assert_array_equal(updates[exempt[0]][exempt[1]], 0.0)
  np.testing.assert_allclose(updates["dense"]["kernel"],
                             -lr * wd * params["dense"]["kernel"], rtol=1e-6)
