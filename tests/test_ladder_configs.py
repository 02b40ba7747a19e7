"""The chip table (research/hardware.py) and the LM ladder's configs (configs/lm_ladder.py):
layouts, sizes, presets, topologies. No libtpu needed (TPU compiles: tests/test_aot.py)."""
import math

import jax
import jax.numpy as jnp
import pytest

from configs import lm_ladder
from research import cli, config_check, hardware


# --- no libtpu needed: the chip table and the ladder configs ----------------------------
@pytest.mark.parametrize("kind,name", [
    ("TPU v5 lite", "TPU v5e"), ("TPU v5", "TPU v5p"), ("TPU v6 lite", "TPU v6e"),
    ("TPU v4", "TPU v4"), ("NVIDIA H100 80GB HBM3", "NVIDIA H100"),
    ("NVIDIA A100-SXM4-80GB", "NVIDIA A100"), ("NVIDIA A100-SXM4-40GB", "NVIDIA A100 40GB"),
    ("NVIDIA A100-PCIE-40GB", "NVIDIA A100 40GB"), ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe"),
    ("NVIDIA H200", "NVIDIA H200"), ("Tesla T4", None),
    # Not in the table: no namesake's figures (they matched as substrings: GH200 read as an
    # H200, H100 NVL as the SXM part, a 40 GB A100 with 80 GB).
    ("NVIDIA GH200 480GB", None), ("NVIDIA H100 NVL", None), ("NVIDIA H200 NVL", None),
    ("NVIDIA A100", None)])
def test_chip_table_lookup(kind, name):
  chip = hardware.chip_for_device_kind(kind)
  assert (chip.name if chip else None) == name
  if chip:
    assert chip.bf16_flops >= chip.fp32_flops > 0 and chip.hbm_bytes > 8e9


@pytest.mark.parametrize("name", ["NVIDIA A100", "NVIDIA A100 40GB", "NVIDIA H100",
                                  "NVIDIA H100 PCIe", "NVIDIA H200"])
def test_gpu_fp32_peak_is_the_tf32_rate_jax_runs_float32_matmuls_at(name):
  """jax.lax.Precision.DEFAULT runs a float32 matmul on the TF32 tensor cores of these GPUs,
  dense at half the bf16 rate; the table held the non-tensor FP32 rate (A100 19.5, H100 67
  TFLOP/s), so an fp32 run's MFU read 8x / 7.4x too high."""
  assert "tensorfloat32" in jax.lax.Precision.__doc__  # the behaviour the peak rests on
  chip = hardware.chip_named(name)
  assert chip.peak_flops("float32") == pytest.approx(chip.bf16_flops / 2, rel=1e-3)


@pytest.mark.parametrize("topology", ["v5e:4x4", "v5p:4x4x4", "v5p:4x8x8", "v5p:8x8x8"])
def test_every_ladder_layout_validates_on_its_slice(topology):
  chips = math.prod(int(x) for x in topology.split(":")[1].split("x"))
  for size in lm_ladder.POD_SIZES:
    assert (size, topology) in lm_ladder.LAYOUTS
    c = lm_ladder.get_config(f"{size}@{topology}")
    config_check.validate(c, chips)
    assert c.model.dtype == "bfloat16" and c.topology == topology
  for overrides in lm_ladder.get_sweep(f"ladder@{topology}"):  # the sweep drives the same layouts
    config_check.validate(cli.apply_overrides(lm_ladder.get_config(f"1b@{topology}"), overrides),
                          chips)


def test_a_slice_without_a_planned_layout_warns(monkeypatch):
  warned = []
  monkeypatch.setattr(lm_ladder.logging, "warning", lambda *a: warned.append(a[0] % a[1:]))
  lm_ladder.get_config("1b@v5e:4x4")  # control: a planned layout says nothing
  assert warned == []
  c = lm_ladder.get_config("1b@v5e:8x8")
  assert (c.mesh.fsdp, c.model.remat, c.train.grad_accum_steps) == (-1, "full", 1)
  assert len(warned) == 1 and "no layout is recommended for 1b on v5e:8x8" in warned[0]
  assert "lm_ladder.py:1b@v5e:8x8 --topology=v5e:8x8 --tune" in warned[0]
  c = lm_ladder.get_config("160m@v5e:8x8")  # the size's own mesh: data parallel to 160m
  assert (c.mesh.data, c.mesh.fsdp, c.model.remat) == (-1, 1, "full")
  warned.clear()  # the sweep over the same slice: it ran every size on the guess silently
  lm_ladder.get_sweep("ladder@v5e:4x4", preset="1b@v5e:4x4")
  assert warned == []
  points = lm_ladder.get_sweep("ladder@v5e:8x8", preset="1b@v5e:4x4")
  # Each size keeps its mesh (pure data parallel up to 160m, FSDP from 410m: a 14m guess
  # was FSDP, against the rule, and --tune kept it); remat full in 1 microbatch to be tuned.
  assert [(p["mesh.data"], p["mesh.fsdp"], p["model.remat"], p["train.grad_accum_steps"])
          for p in points] == [(-1, 1, "full", 1)] * 3 + [(1, -1, "full", 1)] * 4
  assert len(warned) == 1 and "no layout is recommended for 14m, 70m" in warned[0]
  assert "on v5e:8x8" in warned[0] and "--topologies=v5e:8x8 --tune" in warned[0]


def test_under_tune_the_warning_does_not_advise_tune(monkeypatch):
  """research.aot --config=...:14m@v5e:2x2 --tune warned "find ones that fit with python -m
  research.aot --config=... --tune" to a user running that command."""
  from absl import flags
  from research import aot  # noqa: F401 (defines --tune)
  warned = []
  monkeypatch.setattr(lm_ladder.logging, "warning", lambda *a: warned.append(a[0] % a[1:]))
  monkeypatch.setattr(flags.FLAGS["tune"], "value", True)
  lm_ladder.get_config("14m@v5e:2x2")
  assert len(warned) == 1 and "no layout is recommended for 14m on v5e:2x2" in warned[0]
  assert "--tune searches remat and microbatches on its mesh there" in warned[0]
  assert "python -m research.aot" not in warned[0]
  monkeypatch.setattr(flags.FLAGS["tune"], "value", False)  # the control: without --tune
  lm_ladder.get_config("14m@v5e:2x2")
  assert "--topology=v5e:2x2 --tune" in warned[1]


def test_ladder_sizes_follow_pythia():
  from research import models, tasks
  for size, expected in (("14m", 14e6), ("160m", 162e6), ("1b", 1.01e9), ("6p9b", 6.86e9)):
    c = lm_ladder.get_config(size)
    module = models.build(c.model, tasks.build(c.task, c.seed).io).module
    shapes = jax.eval_shape(lambda: module.init(
        {"params": jax.random.key(0)}, jnp.zeros((1, c.task.seq_len), jnp.int32)))
    n = sum(math.prod(x.shape) for x in jax.tree.leaves(shapes))
    assert n == pytest.approx(expected, rel=0.03), (size, n)


def test_ladder_presets_refuse_bad_names():
  with pytest.raises(ValueError, match="choose one of"):
    lm_ladder.get_config("3b")
  with pytest.raises(ValueError, match="only pod sizes"):
    lm_ladder.get_config("cpu@v5e:4x4")


@pytest.mark.parametrize("topology", ["nope", "v5e:4x", "v5e:0x4", "v9:4x4", "v5e:4x4x4x4",
                                      "V5E:4x4"])
def test_a_bad_topology_is_refused_by_the_preset_and_the_config_check(topology):
  """14m@nope warned, then trained on the default layout (out of memory on this host); the
  preset now refuses it before it warns about the missing layout."""
  with pytest.raises(ValueError, match=f"'{topology}' is not a TPU topology name"):  # the preset
    lm_ladder.get_config(f"14m@{topology}")
  with pytest.raises(config_check.ConfigError, match="is not a TPU topology"):  # a sweep point too
    config_check.validate(cli.apply_overrides(lm_ladder.get_config("14m"),
                                              {"topology": topology}), 16)


@pytest.mark.parametrize("topology,needle", [
    ("v5e:4x4x4", "TPU v5e slices are 2-D; write 2 sizes, e.g. v5e:4x4"),
    ("v5p:4x4", "TPU v5p slices are 3-D; write 3 sizes, e.g. v5p:4x4x4"),
    # Not whole 2x2 hosts: libtpu refuses them, research.sweep took ladder@v5e:3x3 (7 runs)
    ("v5e:3x3", "TPU v5e slices are made of hosts of 2x2 chips: both sizes must be even"),
    ("v5p:3x4x4", "TPU v5p slices are made of hosts of 2x2 chips: the first two sizes"),
    # Larger than any slice: libtpu planned them (v5e:64x64, 4,096 chips; exit 0)
    ("v5e:32x32", "v5e:32x32 is 1,024 chips in a shape TPU v5e does not come in: its largest "
     "slice is 16x16 \\(256 chips\\)"),
    ("v5e:2x32", "its largest slice is 16x16"),
    ("v5p:16x16x32", "8,192 chips in a shape TPU v5p does not come in: its largest slice is "
     "16x16x24"),
    ("v6e:32x32", "TPU v6e does not come in")])
def test_a_shape_the_chip_never_comes_in_is_refused_everywhere(topology, needle):
  """1b@v5e:4x4x4 and ladder@v5e:4x4x4 were accepted (research.aot alone checked the number of
  sizes): the run then trained on the fallback layout under a slice that does not exist."""
  with pytest.raises(ValueError, match=needle):
    lm_ladder.get_config(f"1b@{topology}")
  with pytest.raises(ValueError, match=needle):
    lm_ladder.get_sweep(f"ladder@{topology}", preset="1b@v5e:4x4")
  with pytest.raises(config_check.ConfigError, match=needle):
    config_check.validate(cli.apply_overrides(lm_ladder.get_config("14m"),
                                              {"topology": topology}), 16)
  for good in ("v5e:4x4", "v5p:4x4x4", "v5e:1x1", "v5p:2x2x3", "v5e:16x16",  # control: real
               "v5p:16x16x24", "v4:16x16x16"):                             # shapes pass
    lm_ladder.get_config(f"1b@{good}")
    lm_ladder.get_sweep(f"ladder@{good}", preset=f"1b@{good}")
    config_check.validate(cli.apply_overrides(lm_ladder.get_config("14m"), {"topology": good}), 16)


def test_synthetic_tokens_cannot_be_learnt(tmp_path):
  """The ladder's corpus-free source: uniform ids over [3, V), so the loss stays at
  log(V - 3) and never below (a stream with any structure would be learnt)."""
  from research import train
  c = cli.apply_overrides(lm_ladder.get_config("tiny"), {"train.compile_cache_dir": ""})
  summary = train.train_and_evaluate(c, str(tmp_path))
  floor = math.log(c.task.vocab_size - 3)
  assert floor - 0.02 < summary["final_loss"] < floor + 0.3, (summary["final_loss"], floor)


def test_cpu_ladder_sweep_spans_0p1m_to_10m(tmp_path):
  from research import models, tasks
  corpus = tmp_path / "corpus.txt"
  corpus.write_text("the quick brown fox jumps over the lazy dog. " * 200)
  counts = []
  for overrides in lm_ladder.get_sweep("ladder"):
    c = cli.apply_overrides(lm_ladder.get_config("cpu"), overrides | {"task.source": "file",
                                                                    "task.path": str(corpus)})
    config_check.validate(c, 1)
    module = models.build(c.model, tasks.build(c.task, c.seed).io).module
    shapes = jax.eval_shape(lambda: module.init(
        {"params": jax.random.key(0)}, jnp.zeros((1, c.task.seq_len), jnp.int32)))
    counts.append(sum(math.prod(x.shape) for x in jax.tree.leaves(shapes)))
  assert counts == sorted(counts) and 0.08e6 < counts[0] < 0.2e6 and 8e6 < counts[-1] < 12e6, counts
