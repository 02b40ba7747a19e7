"""research.aot_tune (`python -m research.aot ... --tune`): the lightest layout that fits,
remat none < dots < full, then the fewest microbatches, with 5% of the usable HBM free.

The search is tested on a fake planner whose memory is a known function of the layout (so
the expected choice is computed by hand), then through research.aot on a real libtpu compile.
"""
import importlib.util
import subprocess
import sys

import ml_collections
import pytest

from research import aot, aot_ladder, aot_tune

needs_libtpu = pytest.mark.skipif(importlib.util.find_spec("libtpu") is None,
                                  reason="libtpu is in the dev extra: pip install -e '.[dev]'")
CAPACITY = 100.0


def _config(batch=64, data=4, fsdp=1):
  return ml_collections.ConfigDict({
      "model": {"remat": "full"}, "mesh": {"data": data, "fsdp": fsdp, "tensor": 1},
      "train": {"batch_size": batch, "grad_accum_steps": 1}})


def _planner(peak: dict, calls: list):
  """Memory = peak[remat] / microbatches against a capacity of 100 bytes."""
  def plan_of(config):
    remat, mb = config.model.remat, config.train.grad_accum_steps
    calls.append((remat, mb))
    total = peak[remat] / mb
    return {"remat": remat, "grad_accum_steps": mb, "mesh": {"data": 4, "fsdp": 1, "tensor": 1},
            "from_cache": False, "memory_per_device": {
                "total_bytes": total, "capacity_bytes": CAPACITY, "fits": total <= CAPACITY,
                "params_and_optimizer_bytes": peak.get("state", 0)}}
  return plan_of


def test_microbatch_counts_divide_every_shard():
  assert aot_tune.microbatch_counts(_config(batch=64), 4) == [1, 2, 4, 8, 16]
  assert aot_tune.microbatch_counts(_config(batch=24, data=-1), 8) == [1]  # 3 a shard
  assert aot_tune.microbatch_counts(_config(batch=1024, data=1, fsdp=-1), 512) == [1, 2]


def test_no_remat_in_the_fewest_microbatches_that_keep_the_margin():
  calls = []
  # none: 400 / mb -> x4 is 100 (fits, but inside the 5% margin), x8 is 50: x8.
  chosen, verdict, tried = aot_tune.search(_config(), 4, _planner(
      {"none": 400, "dots": 200, "full": 90}, calls))
  assert (chosen["remat"], chosen["grad_accum_steps"], verdict) == ("none", 8, "roomy")
  # 1, then the most (16), then bisected: 4 (no), 8 (yes); full x1 (which fits) never tried.
  assert calls == [("none", 1), ("none", 16), ("none", 4), ("none", 8)]
  assert len(tried) == 4


def test_a_lighter_policy_wins_over_fewer_microbatches():
  calls = []
  # none never keeps the margin; dots does from x2; full would at x1 but recomputes more.
  chosen, verdict, _ = aot_tune.search(_config(), 4, _planner(
      {"none": 10_000, "dots": 150, "full": 60}, calls))
  assert (chosen["remat"], chosen["grad_accum_steps"], verdict) == ("dots", 2, "roomy")
  assert ("full", 1) not in calls and calls[:2] == [("none", 1), ("none", 16)]


def test_a_later_policy_with_room_wins_over_one_inside_the_margin():
  # As 410m on v5e:4x4: none fits only inside the margin (x16: 97.5), dots has room from x8.
  chosen, verdict, _ = aot_tune.search(_config(), 4, _planner(
      {"none": 1560, "dots": 400, "full": 100}, []))
  assert (chosen["remat"], chosen["grad_accum_steps"], verdict) == ("dots", 8, "roomy")


def test_inside_the_margin_is_taken_only_when_nothing_keeps_it():
  # 96 at every count of every policy: fits, never with 5 free; the lightest that fits.
  chosen, verdict, _ = aot_tune.search(_config(batch=4), 4, _planner(
      {"none": 96, "dots": 96, "full": 96}, []))
  assert (chosen["remat"], chosen["grad_accum_steps"], verdict) == ("none", 1, "tight")


def test_nothing_fits_is_said_and_shows_the_last_layout_tried():
  calls = []
  row = aot_tune.tuned_row(_config(), 4, _planner({"none": 1e9, "dots": 1e9, "full": 1e9}, calls),
                           lambda _: None)
  assert row["tune"]["verdict"] == "none" and (row["remat"], row["grad_accum_steps"]) == ("full", 16)
  assert calls == [(r, m) for r in aot_tune.POLICIES for m in (1, 16)]  # no bisecting a policy
  assert "NO LAYOUT FITS" in aot_tune.verdict_line(row)                  # whose most fails
  assert "shard more of config.mesh" in aot_tune.verdict_line(row)
  assert "the mesh kept as configured: data=4 fsdp=1 tensor=1" in aot_tune.verdict_line(row)
  # The state alone over the capacity: no layout of this mesh can help, only more chips.
  row = aot_tune.tuned_row(_config(), 4, _planner(
      {"none": 1e9, "dots": 1e9, "full": 1e9, "state": 150}, []), lambda _: None)
  assert "parameters and optimiser state alone need 0.0 GB a chip of 0.0: use more chips" in (
      aot_tune.verdict_line(row))


def test_the_layout_line_is_a_lm_ladder_entry():
  row = {"mesh": {"data": 1, "fsdp": 16, "tensor": 1}, "remat": "dots", "grad_accum_steps": 4}
  assert aot_tune.layout_line("1b", "v5e:4x4", row) == '("1b", "v5e:4x4"): (_FSDP, "dots", 4),'
  row["mesh"] = {"data": 16, "fsdp": 1, "tensor": 1}
  assert aot_tune.layout_line("70m", "v5e:4x4", row).endswith('(_DP, "dots", 4),')
  # A single tuned cell prints its line under the slice it was tuned for, not its preset's.
  row["tune"] = {"verdict": "roomy"}
  assert aot_tune.cell_line("1b@v5e:4x4", "v5e:8x8", row) == (
      'as a configs/lm_ladder.py LAYOUTS line: ("1b", "v5e:8x8"): (_DP, "dots", 4),')
  assert aot_tune.cell_line("tiny", "v5e:2x2", row) is None  # not a ladder cell
  row["tune"] = {"verdict": "none"}
  assert aot_tune.cell_line("1b@v5e:4x4", "v5e:8x8", row) is None  # nothing to paste
  row["mesh"] = {"data": 2, "fsdp": 4, "tensor": 2}
  assert aot_tune.layout_line("6p9b", "v5e:4x4", row).endswith('((2, 4, 2), "dots", 4),')


@needs_libtpu
def test_a_tuned_ladder_keeps_every_candidate_in_the_plan_cache(tmp_path, monkeypatch):
  from tests.test_aot_ladder import _TINY_LADDER
  path = tmp_path / "tiny_ladder.py"
  path.write_text(_TINY_LADDER)
  cache, calls, real = tmp_path / "plans", [], aot.plan

  compiled = {}

  def plan_shrunk(config, target):  # a real compile, judged against a capacity of 1 GB
    calls.append((config.model.remat, config.train.grad_accum_steps))
    # One real compile per microbatch count (what a plan's figures depend on here); the
    # selection and the cache are what this test checks, six compiles took ~60 s.
    k = config.train.grad_accum_steps
    compiled[k] = compiled.get(k) or real(config, target)
    out, total = compiled[k], 2e9 / k
    return out | {"memory_per_device": out["memory_per_device"] | {
        "total_bytes": total, "capacity_bytes": 1e9, "fits": total <= 1e9}}

  monkeypatch.setattr(aot, "plan", plan_shrunk)
  monkeypatch.setattr(aot_ladder, "_checked_again", lambda found: found)  # keep the 1 GB
  rows, _ = aot_ladder.ladder(str(path), ["v5e:2x2"], [], str(cache), planner=aot, tune=True)
  # Batch 8 over 4 chips: 1 or 2 microbatches. 2 GB in 1, 1 GB in 2: fits, but never with 5%
  # free, so every policy is tried at both counts and the lightest that fits is kept.
  assert rows[0]["tune"]["verdict"] == "tight"
  assert (rows[0]["remat"], rows[0]["grad_accum_steps"]) == ("none", 2)
  assert len(calls) == 6 and len(list(cache.glob("*.json"))) == 6
  assert '"none", 2),  # fits, but inside the margin  # 6 tried' in aot_tune.summary(rows)
  monkeypatch.setattr(aot, "plan", lambda *a: pytest.fail("a cached candidate was compiled"))
  again, _ = aot_ladder.ladder(str(path), ["v5e:2x2"], [], str(cache), planner=aot, tune=True)
  assert again[0]["from_cache"] and again[0]["tune"] == rows[0]["tune"]


@needs_libtpu
def test_tune_from_the_command_line():
  r = subprocess.run([sys.executable, "-m", "research.aot", "--config=configs/lm_ladder.py:tiny",
                      "--topology=v5e:2x2", "--tune"], capture_output=True, text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  assert "lightest layout with 5% of the usable HBM free: remat none, 1 microbatch" in r.stdout


@needs_libtpu
def test_a_model_no_layout_fits_is_said_to_fit_nowhere():
  """The negative control, through the compiler: 6.9B parameters on 4 v5e chips (20.6 GB of
  state a chip against 16.9) fit in no remat policy and no number of microbatches."""
  r = subprocess.run([sys.executable, "-m", "research.aot", "--config=configs/lm_ladder.py:6p9b",
                      "--topology=v5e:2x2", "--tune"], capture_output=True, text=True, timeout=300)
  # Exit 2 (was 0: a script could not tell), after the lines that say why.
  assert r.returncode == 2, r.stderr[-2000:]
  assert [l for l in r.stderr.splitlines() if l.startswith("error:")] == [
      "error: no layout of 6p9b fits v5e:2x2 (the lines above); plan it on a slice with more "
      "chips or HBM"]
  assert "NO LAYOUT FITS (remat none, dots, full x 1-256 microbatches)" in r.stdout
  assert "(6 compiled;" in r.stdout and "DOES NOT FIT" in r.stdout
  # 20.6 GB of parameters and Adam state a chip: no remat or microbatches can help.
  assert "parameters and optimiser state alone need 20.6 GB a chip of 16.9: use more chips" in (
      r.stdout)


@pytest.mark.parametrize("args,needle", [
    (["--ladder=configs/lm_ladder.py", "--cached_only", "--tune"],
     "--tune compiles the layouts it tries"),
    (["--config=configs/lm_ladder.py:tiny", "--tune"], "these are this host's CPU devices"),
    # an override the search replaces was dropped unread (exit 0)
    (["--config=configs/lm_ladder.py:tiny", "--tune", "--config.train.grad_accum_steps=4"],
     "--tune chooses model.remat and train.grad_accum_steps itself; drop "
     "--config.train.grad_accum_steps=..."),
    pytest.param(["--config=configs/lm_ladder.py:tiny", "--topology=v5e:2x2", "--tune",
                  "--config.mesh.data=3"], "config.mesh", marks=needs_libtpu),  # was a traceback
])
def test_tune_refusals_are_one_line(args, needle):
  from tests.test_aot import _exits_2_with_one_line
  _exits_2_with_one_line(args, needle)


def test_tune_does_not_refuse_the_microbatches_it_replaces():
  """6p9b's v5p:4x4x4 preset has 16 microbatches, which 1024 sequences over 512 chips cannot
  be split into: --tune on v5p:8x8x8 was refused for them before trying 1 and 2."""
  from research import cli, config_check
  from research.errors import InputError
  config = cli.load_config("configs/lm_ladder.py:6p9b")
  with pytest.raises(InputError, match="grad_accum_steps"):  # control: the preset as it is
    config_check.validate(config, 512)
  aot_tune.check(config, 512)  # what research.aot --tune checks: passes
  assert aot_tune.microbatch_counts(config, 512) == [1, 2]
  with pytest.raises(InputError, match="config.mesh"):  # and it still checks the mesh
    aot_tune.check(cli.apply_overrides(config, {"mesh.data": 3}), 512)


def test_a_model_without_remat_is_refused_in_one_line():
  """A ResNet's config has no model.remat: setting it was a locked-ConfigDict traceback."""
  from research import cli
  from research.errors import InputError
  with pytest.raises(InputError, match="config.model.name='resnet' has no remat; drop --tune"):
    aot_tune.check(cli.load_config("configs/resnet_images.py:tiny"), 4)
  aot_tune.check(cli.load_config("configs/lm_ladder.py:tiny"), 4)  # control: a transformer


def test_a_mesh_that_does_not_fit_the_slice_is_an_input_error():
  from research.errors import InputError
  with pytest.raises(InputError, match="config.mesh"):
    aot_tune.search(_config(data=3), 4, _planner({"none": 1, "dots": 1, "full": 1}, []))


def test_a_batch_smaller_than_the_shards_is_an_input_error_not_a_hang():
  from research.errors import InputError
  with pytest.raises(InputError, match="batch_size=8 is not divisible by mesh data x fsdp = 16"):
    aot_tune.microbatch_counts(_config(batch=8, data=16), 16)


@needs_libtpu
def test_a_directory_at_a_candidates_cache_path_is_refused_before_its_compile(tmp_path,
                                                                                 monkeypatch):
  """It was compiled, then its write failed (exit 5), the compile lost."""
  from research import cli
  from research.errors import InputError
  from tests.test_aot_ladder import _TINY_LADDER
  path, cache, calls = tmp_path / "tiny_ladder.py", tmp_path / "plans", []
  path.write_text(_TINY_LADDER)
  preset = cli.config_from_module(cli.load_config_module(str(path), "--ladder"), "tiny@v5e:2x2",
                                  "--ladder")
  blocked = cache / f"{aot_ladder.plan_key(aot_tune.candidate(preset, 'dots', 1), 'v5e:2x2')}.json"
  blocked.mkdir(parents=True)
  fake = _planner({"none": 1e9, "dots": 1, "full": 1}, calls)  # none never fits: dots is next
  monkeypatch.setattr(aot, "plan", lambda c, t: fake(c) | {
      k: v for k, v in _FAKE_FIELDS.items()})
  monkeypatch.setattr(aot_ladder, "_checked_again", lambda found: found)
  with pytest.raises(InputError, match=r"where the plan of tiny@v5e:2x2 \(remat dots, 1 "
                                       r"microbatches\) is kept, is not a file"):
    aot_ladder.ladder(str(path), ["v5e:2x2"], [], str(cache), planner=aot, tune=True)
  assert calls == [("none", 1), ("none", 2)]  # dots x1 was never compiled
  assert len(list(cache.glob("*.json"))) == 3  # the two plans made, and the directory


# What a cached plan needs besides memory (research.aot_ladder._PLAN_FIELDS, the table row).
_FAKE_FIELDS = {"num_params": 1000, "batch_size": 8, "compile_s": 1.0, "flops": {},
                "collectives": {}, "communication": None, "topology": "v5e:2x2",
                "roofline": {"mfu_40": {"step_s": 1.0, "tokens_per_s": 2.0}}}


def test_a_tuned_row_is_from_the_cache_only_when_every_layout_tried_was():
  """from_cache: all of the layouts tried came from the plan cache; one compiled now makes the
  row new (a mutation audit's any() went unseen: the fake planner's plans were all new)."""
  def planner(cached):
    plan_of, seen = _planner({"none": 400, "dots": 200, "full": 90}, []), []

    def cached_plan_of(config):
      seen.append(1)
      return plan_of(config) | {"from_cache": cached(len(seen))}
    return cached_plan_of
  row = aot_tune.tuned_row(_config(), 4, planner(lambda i: i == 1), lambda _: None)
  assert len(row["tune"]["tried"]) == 4 and row["from_cache"] is False
  row = aot_tune.tuned_row(_config(), 4, planner(lambda i: True), lambda _: None)
  assert row["from_cache"] is True


def test_a_batch_that_does_not_split_over_data_times_fsdp_is_an_input_error():
  from research.errors import InputError
  """data=2, fsdp=2: the batch is split over 4 shards, so 6 (divisible by data alone) is
  refused; 8 gives 2 a shard, microbatches 1 and 2."""
  with pytest.raises(InputError, match="batch_size=6 is not divisible by mesh data x fsdp = 4"):
    aot_tune.microbatch_counts(_config(batch=6, data=2, fsdp=2), 4)
  assert aot_tune.microbatch_counts(_config(batch=8, data=2, fsdp=2), 4) == [1, 2]
