"""Where scan_layers and fused_qkv put the parameters: `transformer.convert_params` between
layouts (layer i stays layer i, query/key/value stay themselves), `match_layout` for
`init_from` from any layout into any other, the scanned model's initialisation, and a
resume refused when the layout changed."""
import dataclasses
import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import checkpoint as ckpt_lib
from research import experiment, init_from, train
from research.models import transformer as T
from transformer_fixtures import BASE, induction_cfg, plain_params, tokens

LAYOUTS = list(itertools.product((False, True), repeat=2))  # (scan_layers, fused_qkv)


def _labelled_params(num_layers=12):
  """A plain-layout tree whose every value says where it belongs: 100 * layer + 10 * part
  (query 1, key 2, value 3, the rest 4) + 1 for biases. 12 layers: block_10 sorts before
  block_2 as a string."""
  def leaf(shape, layer, part, bias=False):
    return jnp.full(shape, 100 * layer + 10 * part + bias, jnp.float32)
  blocks = {f"block_{i}": {
      "attn": {n: {"kernel": leaf((4, 2, 2), i, j + 1), "bias": leaf((2, 2), i, j + 1, True)}
               for j, n in enumerate(("query", "key", "value"))}
              | {"out": {"kernel": leaf((2, 2, 4), i, 4), "bias": leaf((4,), i, 4, True)}},
      "ln_1": {"scale": leaf((4,), i, 4), "bias": leaf((4,), i, 4, True)}}
      for i in range(num_layers)}
  return blocks | {"token_embed": {"embedding": jnp.zeros((5, 4))}}


def _equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_layout_round_trip_and_scanned_init_layout():
  params = plain_params()
  scanned_fused = T.convert_params(params, scan_layers=True, fused_qkv=True)
  assert set(scanned_fused) >= {"layers"} and not any(k.startswith("block_") for k in scanned_fused)
  assert scanned_fused["layers"]["attn"]["qkv"]["kernel"].shape == (3, 32, 3, 4, 8)
  back = T.unrolled_params(scanned_fused)
  assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), back, params))
  # What the scanned, fused model initialises has the converted tree's structure and
  # the logical axis 'layers' (left replicated by the sharding rules) in front.
  cfg = dataclasses.replace(BASE, scan_layers=True, fused_qkv=True)
  boxed = T.Transformer(cfg).init(jax.random.key(0), tokens())["params"]
  assert jax.tree.structure(nn.unbox(boxed)) == jax.tree.structure(scanned_fused)
  assert boxed["layers"]["attn"]["qkv"]["kernel"].names == ("layers", "embed", "qkv", "heads", "kv")
  # Each scanned layer draws its own weights (nn.scan splits the 'params' rng), as
  # unrolled blocks do: a shared draw would start every layer identical.
  layers = nn.unbox(boxed)["layers"]
  for kernel in (layers["attn"]["qkv"]["kernel"], layers["mlp"]["fc_in"]["kernel"]):
    assert all(not np.array_equal(kernel[i], kernel[j]) for i, j in ((0, 1), (1, 2), (0, 2)))


@pytest.mark.parametrize("fused", [False, True])
def test_stacked_layer_i_is_block_i(fused):
  """convert_params stacks block_i at index i of 'layers' and back, at 12 layers (where a
  string sort would put block_10 second); fused q/k/v stacked in query, key, value order."""
  params = _labelled_params()
  scanned = T.convert_params(params, scan_layers=True, fused_qkv=fused)
  for path, x in jax.tree_util.tree_leaves_with_path(scanned["layers"]):
    for i in range(12):
      assert np.all(np.asarray(x[i]) // 100 == i), (jax.tree_util.keystr(path), i)
  if fused:
    qkv = scanned["layers"]["attn"]["qkv"]
    assert [int(qkv["kernel"][5, 0, j, 0, 0]) for j in range(3)] == [510, 520, 530]
    assert [int(qkv["bias"][5, j, 0, 0]) for j in range(3)] == [511, 521, 531]
  _equal(T.unrolled_params(scanned), params)


@pytest.mark.parametrize("source,target", list(itertools.product(LAYOUTS, LAYOUTS)),
                         ids=lambda l: f"scan={l[0]},fused={l[1]}")
def test_match_layout_reads_any_layout_in_any_other(source, target):
  """init_from's conversion: another run's parameters, in whichever layout it trained,
  arrive in this model's layout with every value where the plain layout puts it, also
  for a Transformer inside another module (the image-sequence wrapper's)."""
  params = _labelled_params()
  src = T.convert_params(params, scan_layers=source[0], fused_qkv=source[1])
  like = T.convert_params(jax.tree.map(jnp.zeros_like, params), scan_layers=target[0],
                          fused_qkv=target[1])
  want = T.convert_params(params, scan_layers=target[0], fused_qkv=target[1])
  _equal(T.match_layout(src, like), want)
  _equal(T.match_layout({"head": {"w": 1.0}, "inner": src}, {"head": {"w": 0.0}, "inner": like}),
         {"head": {"w": 1.0}, "inner": want})


def test_layout_changes_never_mis_restore(tmp_path):
  """A run trained unscanned: resuming it scanned or with fused QKV is refused naming the
  fields (each alone too), and `init_from` into a scanned, fused-QKV model copies every
  weight into the new layout."""
  from research.errors import InputError
  c = induction_cfg()
  c.train.num_steps = c.train.checkpoint_every = 10
  train.train_and_evaluate(c, str(tmp_path / "a"), devices=jax.devices()[:1])
  c2 = induction_cfg(scan_layers=True, fused_qkv=True)
  c2.train.num_steps = 20
  with pytest.raises(InputError) as e:
    train.train_and_evaluate(c2, str(tmp_path / "a"), devices=jax.devices()[:1])
  assert "model.scan_layers" in str(e.value) and "model.fused_qkv" in str(e.value)
  assert "\n" not in str(e.value)
  for field in ("scan_layers", "fused_qkv"):
    c3 = induction_cfg(**{field: True})
    c3.train.num_steps = 20
    with pytest.raises(InputError, match=f"model.{field}"):
      train.train_and_evaluate(c3, str(tmp_path / "a"), devices=jax.devices()[:1])
  exp = experiment.Experiment(c2, jax.devices()[:1])
  fresh = exp.init_state().params
  got = init_from.init_params_from(str(tmp_path / "a"), fresh, exp.param_sharding)
  trained = experiment.Experiment(c, jax.devices()[:1])
  ckpt = ckpt_lib.Checkpointer(tmp_path / "a" / "checkpoints", max_to_keep=2, async_save=False)
  state, _, _ = ckpt.restore(ckpt_lib.abstract_like(trained.abstract_state, trained.state_sharding))
  ckpt.close()
  want = T.convert_params(state.params, scan_layers=True, fused_qkv=True)
  assert jax.tree.structure(got) == jax.tree.structure(want)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_array_equal(a, b)
  # Negative control: the fresh scanned parameters are not the trained ones.
  assert not np.array_equal(fresh["layers"]["attn"]["qkv"]["kernel"],
                            want["layers"]["attn"]["qkv"]["kernel"])
