"""Numbers the other tests leave at one configuration (mutation audit 6D): the ResNet FLOP
counts behind MFU (a classifier's head, an embedder's backward pass, a bottleneck and an odd
image through the stem pool), the first image of an exemplar sequence, MFU's peak on an
accelerator, and the induction probes' positions, windows and head rises on short contexts."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import models
from research.models import resnet
from research.probes import attention as scores
from test_resnet import _resnet_cfg

# ----------------------------------------------------------------------------- ResNet FLOPs
def test_classifier_flops_are_three_forward_passes_and_the_head():
  """Forward + backward = 3 forward passes of the convolutions, plus the linear head's 6 FLOPs
  per parameter (16 features x 10 classes): dropping the head or the backward went unseen."""
  io = models.IOSpec(output_dim=10, seq_len=1, image_shape=(12, 12, 1), images_per_sequence=1)
  built = models.build(_resnet_cfg("resnet"), io)
  fwd = resnet.forward_flops(resnet.config_from(_resnet_cfg("resnet")), (12, 12, 1))
  assert built.train_flops_per_token == 3 * fwd + 6 * 16 * 10


@pytest.mark.parametrize("name", ["transformer", "lstm"])
def test_embedder_flops_add_three_forward_passes_per_image_per_position(name):
  """An image-sequence model costs its sequence model (reading vectors + 16 features) plus,
  per position, images_per_sequence / seq_len images at forward + backward (3x)."""
  io = models.IOSpec(output_dim=5, seq_len=6, input_dim=3, image_shape=(10, 10, 1),
                     images_per_sequence=4)
  built = models.build(_resnet_cfg(name), io)
  seq = models.build(_resnet_cfg(name), models.IOSpec(output_dim=5, seq_len=6, input_dim=3 + 16))
  fwd = resnet.forward_flops(resnet.config_from(_resnet_cfg(name)), (10, 10, 1))
  assert built.train_flops_per_token == pytest.approx(
      seq.train_flops_per_token + 4 / 6 * 3 * fwd, rel=1e-12)


def test_forward_flops_of_a_strided_bottleneck_after_an_odd_stem_pool():
  """By hand, on a 7x7 image: stem 3x3 1->4 at 7x7; the SAME 3x3/2 max-pool leaves 4x4 (not
  3x3: ceil, as the model's pool does, checked below); a bottleneck block 4->8 at stride 2:
  1x1 projection 4->8 to 2x2, 1x1 4->2 at 4x4 (stride 1: the stride is the 3x3's), 3x3 2->2
  at stride 2 to 2x2, 1x1 2->8 at 2x2."""
  cfg = resnet.ResNetConfig(blocks=(1,), channels=(8,), strides=(2,), stem_channels=4,
                            stem_kernel=3, stem_stride=1, stem_pool=True, bottleneck=True)
  stem = 2 * 49 * 9 * 1 * 4
  proj = 2 * 4 * 1 * 4 * 8
  b1, b2, b3 = 2 * 16 * 1 * 4 * 2, 2 * 4 * 9 * 2 * 2, 2 * 4 * 1 * 2 * 8
  assert resnet.forward_flops(cfg, (7, 7, 1)) == stem + proj + b1 + b2 + b3 == 4456
  pooled = nn.max_pool(jnp.zeros((1, 7, 7, 4)), (3, 3), strides=(2, 2), padding="SAME")
  assert pooled.shape[1:3] == (4, 4)


def test_the_first_image_reaches_the_position_that_shows_it():
  """image_index 0 is an image (the first of the sequence), -1 is none: a change to image 0
  changes position 0's output and no position showing no image."""
  io = models.IOSpec(output_dim=5, seq_len=4, input_dim=3, image_shape=(4, 4, 1),
                     images_per_sequence=2)
  built = models.build(_resnet_cfg("transformer"), io)
  inputs = {"images": jax.random.uniform(jax.random.key(0), (1, 2, 4, 4, 1)),
            "image_index": jnp.array([[0, -1, 1, -1]], jnp.int32),
            "vectors": jax.random.normal(jax.random.key(1), (1, 4, 3))}
  changed = dict(inputs, images=inputs["images"].at[:, 0].set(0.0))

  @jax.jit  # one compiled program for init and both applications (unjitted: 13 s)
  def outputs(inputs, changed):
    params = nn.unbox(built.module.init(jax.random.key(2), inputs)["params"])
    return (built.module.apply({"params": params}, inputs),
            built.module.apply({"params": params}, changed))
  out, out_changed = outputs(inputs, changed)
  diff = np.abs(np.asarray(out_changed - out)).max(-1)[0]
  assert diff[0] > 0  # causal: every later position may move too


# ----------------------------------------------------------------------------- MFU's peak
def test_accelerator_peak_is_per_device_times_devices(monkeypatch):
  """On an accelerator the step's peak is the per-device peak times the devices it runs on
  (MFU = achieved / peak); on a CPU the host's measured peak counts once per process."""
  from research.metrics import Progress

  class Device:
    platform = "tpu"
  monkeypatch.setattr(jax, "devices", lambda *a: [Device()])
  p = Progress(total_steps=10, examples_per_step=1, tokens_per_step=1, flops_per_step=50.0,
               peak_flops=100.0, num_devices=8)
  assert p.peak == 800.0
  Device.platform = "cpu"
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  assert Progress(total_steps=10, examples_per_step=1, tokens_per_step=1, flops_per_step=50.0,
                  peak_flops=100.0, num_devices=8).peak == 200.0


# ----------------------------------------------------------------------------- probes
def test_icl_positions_of_a_short_context_stay_inside_it():
  """Tokens 50 and 500 of 512 scaled to 20: round(1.95) = 2 and round(19.53) = 20, the
  latter clipped to the last token 19 (index 20 is past the end: jnp indexing would clamp
  silently, and a slice there is empty, a NaN score)."""
  assert scores.icl_positions(20) == (2, 19)
  lpp = np.arange(20.0)
  early, late = scores.icl_positions(20)
  assert float(scores.icl_score(lpp, early, late, half_window=2)) == pytest.approx(
      np.mean([17, 18, 19]) - np.mean([1, 2, 3, 4]))


def test_icl_score_window_never_reads_the_unused_position_zero():
  """loss_per_position[0] predicts nothing (no token before it): the early window is cut at
  1. A huge value there must not move the score."""
  lpp = np.array([1e6, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
  got = float(scores.icl_score(lpp, 1, 6, half_window=1))
  assert got == pytest.approx(np.mean([5.0, 6.0, 7.0]) - np.mean([1.0, 2.0]))


def test_rising_heads_report_the_score_before_and_after_the_window():
  """before = score at the window's start, after = at its end (the ladder and Olsson tables
  print them); rise = after - before."""
  s = np.array([[0.1, 0.5], [0.2, 0.5], [0.7, 0.4]])
  out = scores.rising_heads(s, 0, 2, ["L0H0", "L0H1"])
  assert out == [{"head": "L0H0", "rise": pytest.approx(0.6), "before": 0.1, "after": 0.7}]
