"""research.aot: the real train step compiled for a TPU topology on this CPU host (libtpu).

Figures are checked against what they must be: per-chip parameter + Adam bytes against
12 bytes per fp32 parameter (params, mu, nu) divided by the shards, XLA's FLOPs against
the model's own 6ND-style count, collectives against the mesh; a model too large for a
v5e chip must come back DOES NOT FIT, and one the compiler accepts FITS (the capacity is
the HBM the compiler lets a program use, research/hardware.py).
"""
import importlib.util
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from aot_fixtures import config as _config, dp_plan, needs_libtpu, v5e  # noqa: F401 (fixtures)
from research import aot, aot_ladder, aot_memory, hardware
from research.errors import InputError

@needs_libtpu
def test_topology_devices(v5e):
  assert len(v5e.devices) == 4 and v5e.chip.name == "TPU v5e"


@needs_libtpu
def test_a_one_chip_slice_is_planned():
  """v5e:1x1 (a v5litepod-1 VM) was refused with libtpu's 'not divisible by the given (or
  default) chips_per_host_bounds 2x2x1'."""
  assert len(aot.topology_target("v5e:1x1").devices) == 1
  assert len(aot.topology_target("v6e:1x1").devices) == 1


@needs_libtpu
def test_v4_plans_one_device_per_chip():
  """libtpu listed a v4 slice's two TensorCores per chip, which jax's mesh code refuses on v4
  (an AssertionError traceback, exit 1); the megacore chip config gives one device per chip,
  as on a v4 VM, and the plan's figures are the chip table's."""
  v4 = aot.topology_target("v4:2x2x1")
  assert len(v4.devices) == 4 and v4.chip.name == "TPU v4"
  p = aot.plan(_config(), v4)
  assert p["devices"] == 4 and p["mesh"]["data"] == 4
  assert p["memory_per_device"]["hbm_bytes"] == 32 * 2 ** 30
  assert p["memory_per_device"]["capacity_bytes"] == 31_485 * 2 ** 20  # 30.75 GiB - 3 MiB
  # The tiny preset computes in float32, so its matmuls run at HIGHEST (train.matmul_precision
  # auto): six bf16 passes.
  assert p["matmul_precision"] == "highest"
  assert p["roofline"]["peak_flops_per_device"] == pytest.approx(275e12 / 6)


@pytest.mark.parametrize("name,match", [
    ("v5e:2x2x2", "TPU v5e slices are 2-D; write 2 sizes, e.g. v5e:4x4"),
    ("v6e:2x2x1", "TPU v6e slices are 2-D"), ("v5p:4x4", "TPU v5p slices are 3-D; write 3 sizes"),
    ("v4:2x2", "TPU v4 slices are 3-D")])
def test_a_shape_of_the_wrong_rank_is_refused(name, match):
  """libtpu planned v5e:2x2x2 as 8 chips (exit 0), a slice v5e never comes in."""
  with pytest.raises(InputError, match=f"--topology={name}: {match}"):
    aot.check_topology_name(name)
  aot.check_topology_name({"v5e": "v5e:2x4", "v6e": "v6e:4x4", "v5p": "v5p:2x2x1",
                           "v4": "v4:2x2x1"}[name.split(":")[0]])  # control: the right rank


def test_v3_is_refused_not_planned_per_core(monkeypatch):
  """A v3 chip is two devices with half its HBM and peak each: the plan printed 8 x TPU v3,
  17.18 GB and 62 TFLOP/s 'per chip' for v3:2x2. Refused by name (no libtpu needed) and on a
  v3 host."""
  with pytest.raises(InputError, match=r"--topologies=v3:2x2: a TPU v3 chip is two devices.*plan on v4"):
    aot.check_topology_name("v3:2x2", "--topologies")

  class Core:
    device_kind = "TPU v3"
  monkeypatch.setattr(jax, "devices", lambda: [Core()] * 8)
  with pytest.raises(InputError, match="this host's 8 devices: a TPU v3 chip is two devices"):
    aot.local_target()


@needs_libtpu
def test_memory_is_params_and_adam_state(dp_plan):
  n = dp_plan["num_params"]
  mem = dp_plan["memory_per_device"]
  # Data parallel: every chip holds fp32 params + Adam mu + nu (12 bytes per parameter),
  # plus a few scalars (step, counts, injected hyperparameters). Tolerance 0.1%.
  assert mem["params_and_optimizer_bytes"] == pytest.approx(12 * n, rel=1e-3)
  assert mem["argument_bytes"] >= mem["params_and_optimizer_bytes"]
  assert mem["total_bytes"] >= mem["argument_bytes"]
  assert mem["hbm_bytes"] == 16 * 2 ** 30 and mem["usable_bytes"] == 16_126 * 2 ** 20
  assert mem["capacity_bytes"] == mem["usable_bytes"] and mem["fits"] is True


@needs_libtpu
def test_xla_flops_match_the_model_count(dp_plan):
  # Band: the model count is matmuls only (6 x params + attention); XLA also counts the
  # softmax, norms, loss and the Adam update, so it is somewhat above, never far below.
  assert 1.0 <= dp_plan["flops"]["xla_over_model"] <= 1.3, dp_plan["flops"]  # here 1.12
  # Per device: the step's model FLOPs over v5e:2x2's 4 chips (a mutation audit wrote the
  # whole step's there, unseen: xla_over_model divides by its own model_flops / n_dev).
  f = dp_plan["flops"]
  assert dp_plan["devices"] == 4
  assert f["model_per_device_per_step"] == pytest.approx(f["model_per_step"] / 4, rel=1e-12)


@needs_libtpu
def test_fsdp_shards_state_and_gathers(v5e, dp_plan):
  fsdp = aot.plan(_config(**{"mesh.data": 1, "mesh.fsdp": 4}), v5e)
  ratio = (fsdp["memory_per_device"]["params_and_optimizer_bytes"]
           / dp_plan["memory_per_device"]["params_and_optimizer_bytes"])
  # Every matrix has a 128-wide embed axis split 4 ways; the biases and norms stay whole.
  assert 0.25 <= ratio < 0.35, ratio
  assert fsdp["collectives"]["all-gather"]["count"] >= 1
  # Each chip receives the 3/4 of every float32 matrix it does not hold at least once a
  # step (the forward) and at most twice (gathered again for the backward): 3 to 6 bytes a
  # parameter, less the few that are not sharded. Measured 4.1.
  gathered = fsdp["collectives"]["all-gather"]["received_bytes"] / fsdp["num_params"]
  assert 0.9 * 3 <= gathered <= 6, gathered


@needs_libtpu
def test_negative_control_too_large_does_not_fit(v5e):
  # 2M-token vocabulary x width 1024, embedding and read-out: 4.1e9 fp32 parameters
  # replicated with Adam state (~49 GB per chip) against a 16 GB v5e chip.
  huge = aot.plan(_config(**{"task.vocab_size": 2_000_000, "model.width": 1024,
                             "model.num_heads": 8, "model.num_layers": 1}), v5e)
  mem = huge["memory_per_device"]
  assert mem["fits"] is False and mem["headroom_bytes"] < -30e9
  assert "DOES NOT FIT (the compiler refused it; over by" in aot.report(huge)
  assert "RESOURCE_EXHAUSTED" in mem["compiler_error"]  # refused: no FLOPs or collectives
  assert huge["flops"]["xla_per_device_per_step"] is None and huge["collectives"] is None
  assert huge["communication"] is None and "comms/step" not in aot.report(huge)
  assert "XLA not known" in aot.report(huge) and "collectives  not known" in aot.report(huge)


@needs_libtpu
def test_report_and_markdown_rows(dp_plan):
  text = aot.report(dp_plan)
  assert "FITS" in text and "40% MFU" in text and "all-reduce" in text
  # compile_s is trace + lower + XLA compile; lower_s its first part, both reported
  assert 0 < dp_plan["lower_s"] < dp_plan["compile_s"]
  assert f"trace + lower {dp_plan['lower_s']:.1f} s" in text
  cached = {k: v for k, v in dp_plan.items() if k != "lower_s"}  # a plan cached before the field
  assert "trace + lower" not in aot.report(cached) and "steps per call" in aot.report(cached)
  row = aot_ladder.markdown([{"size": "tiny"} | dp_plan]).splitlines()[-1]
  assert row.startswith("| tiny |") and "| yes |" in row and " MB, >= " in row
  roof = dp_plan["roofline"]
  assert roof["mfu_60"]["compute_step_s"] == pytest.approx(roof["mfu_40"]["compute_step_s"] / 1.5)
  # ... and each figure from the plan, not only their ratio (a mutation audit left the step
  # on one chip, 4x slow here, days in hours, sequences as tokens: all unseen). The step's
  # model FLOPs over every chip at its peak; tokens are sequences x 128 (the fixture's).
  peak = hardware.chip_named("TPU v5e").peak_flops(dp_plan["dtype"], dp_plan["matmul_precision"])
  step = dp_plan["flops"]["model_per_step"] / (dp_plan["devices"] * peak)
  assert roof["peak_flops_per_device"] == peak and dp_plan["devices"] == 4
  assert roof["step_s_at_peak"] == pytest.approx(step)
  assert dp_plan["tokens_per_step"] == dp_plan["batch_size"] * 128
  least = dp_plan["communication"]["ici_s_per_step_at_least"]
  for m in (0.4, 0.6):
    row = roof[f"mfu_{int(m * 100)}"]
    assert row["compute_step_s"] == pytest.approx(step / m)
    # The step is the longer of the compute and the ICI bound, and says which set it.
    assert row["step_s"] == pytest.approx(max(step / m, least))
    assert row["bound"] == ("communication" if least > step / m else "compute")
    assert row["tokens_per_s"] == pytest.approx(dp_plan["tokens_per_step"] / row["step_s"])
    assert row["days_for_num_steps"] == pytest.approx(roof["num_steps"] * row["step_s"] / 86_400)


# --- the memory verdict: the capacity the TPU compiler enforces, not the datasheet's -----
_MiB, _GiB = 2 ** 20, 2 ** 30


def test_usable_hbm_is_the_compilers_limit_less_what_it_keeps():
  """The figures research/hardware.py records (its docstring: the limits libtpu's refusals
  name, less the MiB it kept when bisected to the byte), below each chip's nominal HBM
  but v5p's, whose datasheet '95 GB' is under the compiler's 95.74 GiB."""
  usable = {c.topology_prefix: (c.usable_hbm_bytes, c.hbm_bytes) for c in hardware.CHIPS}
  assert usable["v4"] == (int(30.75 * _GiB) - 3 * _MiB, 32 * _GiB)
  assert usable["v5e"] == (int(15.75 * _GiB) - 2 * _MiB, 16 * _GiB)
  assert usable["v6e"] == (int(31.25 * _GiB) - 4 * _MiB, 32 * _GiB)
  assert usable["v5p"] == (98_041 * _MiB, 95 * _GiB) and f"{98_042 * _MiB / _GiB:.2f}" == "95.74"
  assert usable["v3"][0] is None and hardware.chip_named("NVIDIA H100").usable_hbm_bytes is None


@pytest.mark.parametrize("kind", ["v4", "v5e", "v5p", "v6e"])
def test_fits_at_the_usable_boundary(kind):
  """The verdict at the boundary: a total at the usable bytes fits, one byte more does not.
  The hunt's case: 16.34 GB (15.22 GiB) per v5e chip, which the compiler accepted, read
  DOES NOT FIT against the decimal 16e9; 17.15 GB (15.97 GiB), which it refused, must not fit."""
  chip = hardware.chip_for_topology(f"{kind}:2x2")
  cap = chip.usable_hbm_bytes

  def fit(total, error=None):
    return hardware.memory_fit({"total_bytes": total, "compiler_error": error}, chip)
  assert fit(cap)["fits"] is True and fit(cap)["headroom_bytes"] == 0
  assert fit(cap + 1)["fits"] is False and fit(cap + 1)["headroom_bytes"] == -1
  assert fit(cap - 10 ** 9, "RESOURCE_EXHAUSTED: ...")["fits"] is False  # refused: never fits
  m = fit(cap)
  assert (m["hbm_bytes"], m["usable_bytes"], m["capacity_bytes"]) == (chip.hbm_bytes, cap, cap)
  if kind == "v5e":
    assert cap / 1e9 == pytest.approx(16.909, abs=1e-3)
    assert fit(16.34e9)["fits"] is True and fit(17.15e9)["fits"] is False
    assert fit(16.1e9)["fits"] is True  # the README's 6p9b on v5e-16 (was **no** against 16e9)


def test_report_names_the_usable_and_the_nominal_hbm():
  chip = hardware.chip_for_topology("v5e:2x2")
  plan = {"config": "tiny", "num_params": 1e6, "dtype": "float32", "remat": "none",
          "scan_layers": False, "batch_size": 640, "tokens_per_step": 640 * 2048,
          "grad_accum_steps": 1, "topology": "v5e:2x2", "devices": 4,
          "device_kind": "TPU v5 lite", "chip": chip.name, "mesh": {"data": 4, "fsdp": 1, "tensor": 1}, "compile_s": 53.0,
          "steps_per_call": 1, "collectives": {}, "communication": None, "flops": {
              "model_per_step": 1e12, "model_per_device_per_step": 2.5e11,
              "xla_per_device_per_step": 3e11, "xla_over_model": 1.2},
          "memory_per_device": hardware.memory_fit({
              "params_and_optimizer_bytes": 5e7, "temporary_bytes": 16.29e9,
              "total_bytes": 16.34e9, "compiler_error": None}, chip)}
  text = aot.report(plan)
  assert ("total 16.34 GB of 16.91 GB the compiler allows (15.75 GiB; HBM nominally 16 GiB) -> FITS (0.57 GB free, "
          "97% used)") in text
  gpu = hardware.chip_named("NVIDIA H100")
  plan["memory_per_device"] = hardware.memory_fit(plan["memory_per_device"], gpu)
  assert "of HBM 80.00 GB (usable not measured) -> FITS" in aot.report(plan)
  row = aot_ladder.markdown([{"size": "tiny", "roofline": {"mfu_40": {
      "step_s": 1.0, "tokens_per_s": 1.0}}} | plan | {"memory_per_device": hardware.memory_fit(
          plan["memory_per_device"], chip)}]).splitlines()[-1]
  assert "| 16.3 (16.9) | ? | yes (eval not planned) |" in row  # a plan made before the eval was


@pytest.mark.slow
@needs_libtpu
@pytest.mark.parametrize("topology", ["v4:2x2x1", "v5e:2x2", "v5p:2x2x1", "v6e:2x2"])
def test_the_compiler_accepts_up_to_the_usable_bytes_and_no_more(topology):
  """The usable figures against libtpu itself (2 small compiles per chip kind, ~1 s each):
  one uint8 output 128 KiB under the usable bytes (room for the ~50 KB of code) compiles,
  one of the usable bytes (plus the 512-byte argument) is refused. A libtpu that moves its
  limit fails here; measure again as research/hardware.py says."""
  from jax.sharding import SingleDeviceSharding
  target = aot.topology_target(topology)
  dev, cap = target.devices[0], target.chip.usable_hbm_bytes
  x = jax.ShapeDtypeStruct((1,), jnp.uint8, sharding=SingleDeviceSharding(dev))

  def compiles(n):
    f = jax.jit(lambda x: jnp.broadcast_to(x, (n,)) + jnp.uint8(1),
                out_shardings=SingleDeviceSharding(dev))
    try:
      f.lower(x).compile()
    except jax.errors.JaxRuntimeError as e:
      assert "RESOURCE_EXHAUSTED" in str(e)
      return False
    return True
  assert compiles(cap - 128 * 1024) and not compiles(cap)


@needs_libtpu
@pytest.mark.parametrize("name", ["v9z:2x2", "v5e", "v5e:3x3"])
def test_bad_topology_is_input_error(name):
  with pytest.raises(InputError, match="--topology"):
    aot.topology_target(name)


def test_missing_libtpu_names_the_install(monkeypatch):
  monkeypatch.setattr(aot.importlib.util, "find_spec", lambda name: None)
  with pytest.raises(InputError, match=r"pip install -e '\.\[tpu\]'"):
    aot.topology_target("v5e:2x2")


def test_benchmark_tpu_compile_case_without_libtpu_names_the_install(monkeypatch):
  from experiments import bench_features
  monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
  with pytest.raises(InputError, match=r"scan_compile_tpu needs libtpu.*pip install -e '\.\[tpu\]'"):
    bench_features.scan_compile_tpu_case(None)


def test_benchmark_ladder_compile_case_compiles_the_presets_first_call(monkeypatch):
  """scan_compile_ladder's child plans the 410m preset as a run would start it, on this
  host's one CPU device; its control is the same config but for the depth."""
  from experiments import bench_features
  planned = []
  monkeypatch.setattr(aot, "plan", lambda c, target: planned.append((c, target)) or
                      {"lower_s": 1.0, "compile_s": 3.0})
  r = bench_features.child_parts("ladder410m", "step", {"model.scan_layers": "False"})
  (c, target), = planned
  assert (r["lower_s"], r["compile_s"]) == (1.0, 2.0)  # compile alone, as the other children
  assert target.name == "local" and (c.mesh.data, c.mesh.fsdp, c.mesh.tensor) == (1, 1, 1)
  assert (c.model.num_layers, c.model.width, c.model.scan_layers) == (24, 1024, False)
  assert c.train.steps_per_call == 10 and c.model.dtype == "bfloat16"
  # The layout its README figures were measured with, whatever the preset's is now.
  assert (c.model.remat, c.train.grad_accum_steps) == ("dots", 1)
  deep, shallow = (bench_features._ladder_config(case, {}, local=True).to_dict()
                   for case in bench_features.LADDER_CASES)
  assert (deep["model"].pop("num_layers"), shallow["model"].pop("num_layers")) == (24, 2)
  assert deep == shallow


@needs_libtpu
def test_mesh_and_batch_errors_are_input_errors(v5e):
  with pytest.raises(InputError, match="mesh"):
    aot.plan(_config(**{"mesh.data": 3}), v5e)
  with pytest.raises(InputError, match="batch_size"):
    aot.plan(_config(**{"train.batch_size": 6}), v5e)


@needs_libtpu
@pytest.mark.parametrize("args,needle", [
    (["--topology=v9z:2x2"], "not a TPU topology"),
    (["--topology=v5e:3x3"], "hosts of 2x2 chips: both sizes must be even"),
    (["--topology=v5e:2x6x2"], "slices are 2-D"),
    (["--topology=v5e:2x2", "--config.mesh.data=3"], "config.mesh"),
    (["--topology=v3:2x2"], "no one-device-per-chip mode"),
])
def test_cli_exits_2_with_one_line(args, needle):
  _exits_2_with_one_line(["--config=configs/lm_ladder.py:tiny", *args], needle)


def _exits_2_with_one_line(args, needle):
  proc = subprocess.run([sys.executable, "-m", "research.aot", *args],
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2, proc.stderr[-2000:]
  errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1 and needle in errors[0] and "Traceback" not in proc.stderr
  # Nothing else but the run's own absl log lines (`I1203 10:00:01.07 ... lm.py:154] ...`).
  others = [l for l in proc.stderr.splitlines()
            if not l.startswith("error:") and not re.match(r"[IWE]\d{4} [\d:.]+ +\d+ \w+\.py:\d+\]", l)]
  assert not others, others


# A flag the mode ignores would plan something else than asked; --out fails before compiling.
@pytest.mark.parametrize("args,needle", [
    (["--ladder=configs/lm_ladder.py", "--topology=v5e:2x2", "--cached_only"], "--topologies="),
    (["--config=configs/lm_ladder.py:tiny", "--cached_only"], "--cached_only needs --ladder"),
    (["--ladder=configs/lm_ladder.py", "--topologies=v5e:4x4,v9:1", "--cached_only"],
     "--topologies='v9:1' is not a TPU topology"),
    (["--config=configs/lm_ladder.py:tiny", "--out=README.md/plan.json"], "README.md is a file"),
    (["--ladder=configs/lm_ladder.py", "--topologies="], "--topologies= is empty"),
    # the first was dropped unread, exit 0: the table one slice short, the plan another slice
    (["--ladder=configs/lm_ladder.py", "--topologies=v5e:4x4", "--topologies=v5p:4x4x4",
      "--cached_only"], "--topologies is given 2 times, and only the last would count; give it "
     "once (a list takes every value at once: --topologies=A,B)"),
    (["--config=configs/lm_ladder.py:tiny", "--topology=v5p:4x4x4", "--topology=v5e:2x2"],
     "--topology is given 2 times"),
    (["--config=configs/lm_ladder.py:tiny", "--config.train.num_steps=5",
      "--config.train.num_steps=6"], "--config.train.num_steps is given 2 times ('5', then '6'), and only the last would count"),
    (["--config=configs/lm_ladder.py:tiny", "--out=configs"], "--out=configs is a directory"),
    # each exit 0 before: blank rows "from the plan cache (off)"; a pod preset planned for
    # this host's CPU (a 2,282-day roofline); '14m@' planned v5p:4x4x4 as '14m@'
    (["--ladder=configs/lm_ladder.py", "--sizes=14m", "--topologies=v5e:4x4", "--cached_only",
      "--plan_cache="], "--cached_only prints the cells in the plan cache and --plan_cache= "
     "turns it off"),
    (["--config=configs/lm_ladder.py:14m@v5e:4x4"], "--config=configs/lm_ladder.py:14m@v5e:4x4 "
     "is laid out for v5e:4x4 and this host has"),
    (["--config=configs/lm_ladder.py:14m"], "is laid out for v5p:4x4x4"),
    (["--config=configs/lm_ladder.py:14m@", "--topology=v5e:4x4"],
     "preset '14m@' names no topology after '@'"),
    # was ignored, exit 0: the plan said days for the preset's 143000 steps
    (["--ladder=configs/lm_ladder.py", "--sizes=14m", "--topologies=v5e:2x2", "--cached_only",
      "--plan_cache=", "--config.train.num_steps=5"], "--config.train.num_steps=... overrides one --config"),
])
def test_flags_that_do_not_fit_the_mode_exit_2(args, needle):
  _exits_2_with_one_line(args, needle)


def test_a_local_plan_checks_this_hosts_memory_and_takes_the_runs_peak(monkeypatch):
  """Without --topology on CPU: the capacity was '?' (a 2,136 GB step read 'capacity
  unknown' on a 23 GB host, exit 0), the target read '(None)', and no roofline was printed
  even with train.peak_flops set. Now the host's available memory shared by its devices
  (what research.main checks before a CPU run), the run's own peak, and a line saying why
  when there is none."""
  from research import host_memory
  target = aot.local_target()
  p = aot.plan(_config(**{"train.peak_flops": 1e11}), target)
  m = p["memory_per_device"]
  assert m["host_available_bytes"] > 0 and m["fits"] is True
  assert m["capacity_bytes"] == m["host_available_bytes"] // len(target.devices)
  assert p["roofline"]["peak_flops_per_device"] == 1e11 and p["peak_source"] == "config"
  text = aot.report(p)
  assert "of this host's available memory" in text and "(no chip table entry)" in text
  assert "TFLOP/s per device, config)" in text and "if it fit" not in text
  # The same step against a host with 1 kB free: does not fit, its roofline said as such.
  monkeypatch.setattr(host_memory, "available_bytes", lambda: 1000)
  bare = {k: v for k, v in m.items() if k not in ("host_available_bytes",)}
  small = aot_memory.local_fit(target, hardware.memory_fit(bare, None))
  assert small["fits"] is False and small["headroom_bytes"] < 0
  assert "roofline     if it fit: step" in aot.report(p | {"memory_per_device": small})
  none = {k: v for k, v in p.items() if k != "roofline"} | {
      "peak_source": "unknown device 'Tesla T4': set config.train.peak_flops for MFU"}
  assert ("roofline     none: no peak FLOP/s for this device (unknown device 'Tesla T4'"
          in aot.report(none))

