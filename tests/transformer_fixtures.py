"""What the Transformer feature tests share (tests/test_transformer_features.py,
tests/test_transformer_layouts.py): a small model, its parameters in the plain layout, and
the outputs and gradients of any feature's model on them."""
import flax.linen as nn
import jax
import jax.numpy as jnp

from research.models import transformer as T

BASE = T.TransformerConfig(num_layers=3, width=32, num_heads=4, output_dim=7, vocab_size=7,
                           max_len=16, positions="rotary")
FP32_TOL = 1e-5   # relative to the largest magnitude: reordered fp32 sums, nothing more
BF16_TOL = 3e-2   # bf16 keeps 8 mantissa bits (~4e-3 per rounding), compounded over layers


def tokens():
  return jax.random.randint(jax.random.key(1), (4, 12), 0, 7)


def plain_params(cfg=BASE):
  """Initialised, then every parameter moved off its initial value: biases start at zero and
  LayerNorm scales at one, so a bias or scale put in the wrong place by a layout conversion
  (fused q/k/v, stacked layers) would change nothing on freshly initialised parameters."""
  params = nn.unbox(T.Transformer(cfg).init(jax.random.key(0), tokens())["params"])
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(9), len(leaves))
  return jax.tree.unflatten(treedef, [x + 0.05 * jax.random.normal(k, x.shape, x.dtype)
                                      for x, k in zip(leaves, keys)])


def out_and_grads(cfg, params_plain):
  """Outputs and gradients (in the plain layout) of `cfg`'s model on the plain params."""
  model = T.Transformer(cfg)
  params = T.convert_params(params_plain, scan_layers=cfg.scan_layers, fused_qkv=cfg.fused_qkv)
  toks = tokens()

  def loss(p):
    logits = model.apply({"params": p}, toks, train=True)
    return jnp.mean(jax.nn.log_softmax(logits)[..., 0] ** 2), logits

  grads, out = jax.grad(loss, has_aux=True)(params)
  return out, T.unrolled_params(grads)


def rel_err(a, b) -> float:
  """Largest absolute difference over the largest magnitude, across a whole tree."""
  diff = max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  scale = max(float(jnp.max(jnp.abs(y))) for y in jax.tree.leaves(b))
  return diff / scale


def induction_cfg(**model):
  from configs import induction
  c = induction.get_config("tiny")
  c.train.compile_cache_dir = ""
  c.model.update(model)
  return c
