"""research.aot's roofline line says what its peak is and what the chip runs: a float32 plan's
peak is the float32-at-HIGHEST rate (v5e: 32.8 TFLOP/s, a sixth of the 197 people know), and
under remat the chip runs more than the model FLOPs, so "step X s at peak" is a lower bound it
cannot reach (trial66b, defect 6). The JSON keeps its keys; remat's work is one key more."""
import dataclasses

import pytest

from aot_fixtures import config, dp_plan, needs_libtpu, v5e  # noqa: F401 (fixtures)
from research import aot, aot_hlo
from research.models import transformer


def _roofline_line(plan: dict) -> str:
  (line,) = [l for l in aot.report(plan).splitlines() if l.startswith("roofline")]
  return line


def test_remats_recomputed_flops_by_hand():
  """160m (12 layers, width 768, MLP x4) at 2048 tokens: full runs the blocks' forward again,
  2 x 12 x 12 x 768^2 = 169,869,312 matmul FLOPs, plus attention's QK^T and AV,
  2 x 2 x 12 x 2048 x 768 / 2 = 37,748,736, per token; dots the attention part alone. Against
  the model count (6 x 123,568,128 matmul params + 113,246,208 attention): x1.24 and x1.04,
  below 8/6 because the read-out is not recomputed."""
  cfg = transformer.TransformerConfig(num_layers=12, width=768, num_heads=12, output_dim=50_304,
                                      vocab_size=50_304, max_len=2048)
  model = 6 * transformer.matmul_params_per_token(cfg) + transformer.attention_flops_per_token(
      cfg, 2048)
  assert model == 6 * 123_568_128 + 113_246_208
  full = transformer.remat_flops_per_token(dataclasses.replace(cfg, remat="full"), 2048)
  dots = transformer.remat_flops_per_token(dataclasses.replace(cfg, remat="dots"), 2048)
  assert (full, dots) == (169_869_312 + 37_748_736, 37_748_736)
  assert transformer.remat_flops_per_token(cfg, 2048) == 0
  assert (model + full) / model == pytest.approx(1.2429, abs=1e-4)


@needs_libtpu
def test_a_float32_plan_names_its_precision_and_a_bf16_plan_reads_as_before(v5e, dp_plan):
  assert dp_plan["dtype"] == "float32" and dp_plan["matmul_precision"] == "highest"
  assert "at peak (32.8 TFLOP/s per chip, float32 at precision highest, table (TPU v5e)) | " in (
      _roofline_line(dp_plan))
  assert dp_plan["flops"]["remat_recomputed_per_step"] == 0
  bf16 = aot.plan(config(**{"model.dtype": "bfloat16"}), v5e)
  assert "at peak (197 TFLOP/s per chip, table (TPU v5e)) | " in _roofline_line(bf16)


@needs_libtpu
@pytest.mark.parametrize("remat", ["full", "dots"])
def test_under_remat_the_line_says_the_step_at_peak_cannot_be_reached(v5e, dp_plan, remat):
  plan = aot.plan(config(**{"model.remat": remat}), v5e)
  f, r = plan["flops"], plan["roofline"]
  cfg = transformer.TransformerConfig(num_layers=2, width=128, num_heads=4, output_dim=512,
                                      vocab_size=512, max_len=128, remat=remat)
  assert f["remat_recomputed_per_step"] == (
      transformer.remat_flops_per_token(cfg, 128) * plan["tokens_per_step"])
  assert f["model_per_step"] == dp_plan["flops"]["model_per_step"]  # the model count as before
  over = (f["model_per_step"] + f["remat_recomputed_per_step"]) / f["model_per_step"]
  assert over > 1
  assert (f"; remat {remat}: the chip runs x{over:.2f} the model FLOPs, so this step at peak is "
          f"a lower bound it cannot reach: >= {r['step_s_at_peak'] * over:.3g} s) | "
          ) in _roofline_line(plan)
  # a plan cached before the field: said without the figure (full: the README's 8/6)
  cached = plan | {"flops": {k: v for k, v in f.items() if k != "remat_recomputed_per_step"}}
  said = aot_hlo.peak_text(cached, r)
  assert said.endswith(f"; remat {remat}: the chip runs more than the model FLOPs"
                       + (" (about 8/6 of them)" if remat == "full" else "")
                       + ", so this step at peak is a lower bound it cannot reach")
