"""research.aot's comms/step on compiled plans: the bytes a chip receives in a step's
collectives, against what data parallelism must move (a ring all-reduce of the float32
gradients, once a step, however many steps per call or microbatches). The HLO reading
itself is tests/test_aot_collectives.py's, without compiling."""
import pytest

from aot_fixtures import config, dp_plan, needs_libtpu, v5e  # noqa: F401 (fixtures)
from research import aot, experiment


@needs_libtpu
def test_data_parallel_reduces_gradients(dp_plan):
  c = dp_plan["collectives"]
  assert c["all-reduce"]["count"] >= 1 and c["all-reduce"]["bytes"] > 0
  assert c["all-gather"]["count"] == 0  # replicated parameters: nothing to gather


@needs_libtpu
def test_a_step_receives_its_gradient_all_reduce_once(v5e, dp_plan):
  """Data parallel over 4 chips: a ring all-reduce of the float32 gradients (4 bytes a
  parameter) brings each chip 2 x 3/4 of them a step; 200 GB/s of v5e's 400 both ways is
  inbound. Per step the same at 2 steps per call in 2 microbatches (XLA sums the
  microbatches before reducing): counted once where it is written, as before the loops'
  trips were read, the looped plan read half of it."""
  n = dp_plan["num_params"]
  comm = dp_plan["communication"]
  assert comm["received_bytes_per_step"] == pytest.approx(1.5 * 4 * n, rel=1e-3)
  assert comm["ici_s_per_step_at_least"] == pytest.approx(comm["received_bytes_per_step"] / 200e9)
  looped = aot.plan(config(**{"train.steps_per_call": 2, "train.log_every": 2,
                               "train.grad_accum_steps": 2}), v5e)
  assert looped["communication"]["received_bytes_per_step"] == pytest.approx(1.5 * 4 * n, rel=0.05)
  assert looped["collectives"]["all-reduce"]["runs"] >= 2 * 1  # per call: at least once a step
  assert "comms/step   all-reduce" in aot.report(looped) and "ICI >= " in aot.report(looped)


@needs_libtpu
def test_scanned_layers_in_microbatches_reduce_gradients_once_a_step(v5e, dp_plan, monkeypatch):
  """Scanned layers in 4 microbatches, data parallel: the microbatches' gradients add up on
  each chip (Experiment._per_data_shard) and are all-reduced once a step, as without them.
  Negative control: the accumulation left to XLA, which all-reduces each layer's gradient
  inside the backward layer loop, once per microbatch (160m on v5e:4x4: 21 GB a step)."""
  n = dp_plan["num_params"]
  scanned = {"model.scan_layers": True, "train.grad_accum_steps": 4, "train.batch_size": 16}
  once = aot.plan(config(**scanned), v5e)["communication"]["received_bytes_per_step"]
  assert once == pytest.approx(1.5 * 4 * n, rel=0.01)
  monkeypatch.setattr(experiment.Experiment, "_accumulates_per_data_shard", lambda self: False)
  per_microbatch = aot.plan(config(**scanned), v5e)["communication"]["received_bytes_per_step"]
  assert per_microbatch > 2 * once, (per_microbatch, once)


@needs_libtpu
def test_bf16_gradients_are_reduced_in_float32_in_one_microbatch_too(v5e, dp_plan, monkeypatch):
  """bf16 compute, float32 parameters, data parallel in one microbatch: the compiler
  all-reduced the weights' gradients in bf16 (the dots' output type, before the cast to
  float32), half the float32 bytes for them, where the same run in microbatches reduces
  float32 sums; a trial read 192 MB a step for 70m on v5p:4x4x4 against 282 MB of float32
  gradients. Now one float32 all-reduce, as in microbatches. Negative control: the reduction
  left to the compiler again, fewer bytes than the float32 gradients."""
  n = dp_plan["num_params"]
  bf16 = {"model.dtype": "bfloat16", "train.grad_accum_steps": 1}
  got = aot.plan(config(**bf16), v5e)["communication"]["received_bytes_per_step"]
  assert got == pytest.approx(1.5 * 4 * n, rel=0.01)
  monkeypatch.setattr(experiment.Experiment, "_accumulates_per_data_shard", lambda self: False)
  compilers = aot.plan(config(**bf16), v5e)["communication"]["received_bytes_per_step"]
  assert compilers < 0.9 * 1.5 * 4 * n, (compilers, n)


def test_a_step_the_ici_bound_rules_out_is_the_bound():
  """The tiny LM on v5e:4x4 (batch 16) printed 'ICI >= 1.63e-06 s ..., 318% of the 40%-MFU
  step' and then '40% MFU: 5.1e-07 s/step, 1,003,157,144 tok/s' and days from it, unmarked:
  the step is the longer of the compute and the ICI bound, and says which set it."""
  from research import aot_hlo, aot_ladder
  comm = {"received_bytes_per_step": 325e3, "ici_bytes_per_s": 400e9,
          "ici_s_per_step_at_least": 1.63e-6}
  roof = aot_hlo.roofline(2.04e-7, 32.8e12, 512, 40, comm)
  r40, r60 = roof["mfu_40"], roof["mfu_60"]
  assert r40["bound"] == r60["bound"] == "communication"
  assert r40["step_s"] == r60["step_s"] == 1.63e-6
  assert r40["compute_step_s"] == pytest.approx(5.1e-7)
  assert r40["tokens_per_s"] == pytest.approx(512 / 1.63e-6)
  assert r40["days_for_num_steps"] == pytest.approx(40 * 1.63e-6 / 86400)
  plan = {"roofline": roof, "communication": comm, "steps_per_call": 1,
          "collectives": {"all-reduce": {"count": 2, "runs": 2, "received_bytes": 325e3}}}
  text = aot_hlo.communication_text(plan)
  assert text.endswith("320% of the 40%-MFU compute: the step is communication-bound")
  assert aot._mfu_step(r40) == ("communication-bound: 1.63e-06 s/step (the ICI bound; compute "
                                "5.1e-07 s)")
  # Where the compute is the longer (every cell of the README's ladder, <= 28%), as before.
  fast = aot_hlo.roofline(2.04e-7, 32.8e12, 512, 40, comm | {"ici_s_per_step_at_least": 1e-7})
  assert fast["mfu_40"]["bound"] == "compute" and fast["mfu_40"]["step_s"] == pytest.approx(5.1e-7)
  assert fast["mfu_60"]["tokens_per_s"] == pytest.approx(1.5 * fast["mfu_40"]["tokens_per_s"])
  assert aot._mfu_step(fast["mfu_40"]) == "5.1e-07 s/step"
  slow = comm | {"ici_s_per_step_at_least": 2.5e-7}
  assert aot_hlo.communication_text(plan | {"roofline": fast, "communication": slow}).endswith(
      ", 49% of the 40%-MFU step")
  unknown = aot_hlo.roofline(2.04e-7, 32.8e12, 512, 40, None)  # a refused program: compute alone
  assert unknown["mfu_40"]["bound"] == "compute"
  # A plan cached before the field (compute step alone) is made again from its figures.
  old = {"tokens_per_step": 512, "communication": comm, "roofline": {
      "peak_flops_per_device": 32.8e12, "step_s_at_peak": 2.04e-7, "num_steps": 40,
      "mfu_40": {"step_s": 5.1e-7, "tokens_per_s": 1.0e9, "days_for_num_steps": 2.4e-10}}}
  again = aot_ladder._roofline_again(old)["roofline"]
  assert again == roof
  assert aot_ladder._roofline_again({"roofline": None}) == {"roofline": None}
