"""research.aot_ladder: every (size, topology) cell of a ladder config planned once and kept
in the plan cache; --cached_only compiles nothing but still refuses a slice name that is wrong.
"""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from research import aot, aot_ladder, cli, output_paths
from research.errors import InputError

needs_libtpu = pytest.mark.skipif(importlib.util.find_spec("libtpu") is None,
                                  reason="libtpu is in the dev extra: pip install -e '.[dev]'")


# --- the ladder's plan cache: each (size, topology) cell compiled once --------------------
_TINY_LADDER = '''
from configs import lm_ladder
from research import cli

POD_SIZES = {"tiny": None}
WIDTH = 128


def get_config(preset):
  size, _, topology = preset.partition("@")
  c = cli.apply_overrides(lm_ladder.get_config(size), {
      "model.width": WIDTH, "model.num_heads": 4, "task.seq_len": 128,
      "train.steps_per_call": 1, "train.eval_every": 0, "train.checkpoint_every": 0})
  c.topology = topology
  return c
'''


@pytest.fixture
def tiny_ladder(tmp_path):
  """A ladder file of one size (the tiny preset at width 128) and an empty plan cache."""
  path = tmp_path / "tiny_ladder.py"
  path.write_text(_TINY_LADDER)
  return str(path), tmp_path / "plans"


def _counting(monkeypatch, fake=None):
  """aot.plan replaced by a counter around the real one (or `fake`): the compiles made."""
  calls, real = [], aot.plan

  def counted(config, target):
    calls.append(config.model.width)
    return fake(config, target) if fake else real(config, target)

  monkeypatch.setattr(aot, "plan", counted)
  return calls


@needs_libtpu
def test_ladder_second_call_compiles_nothing(tiny_ladder, monkeypatch):
  path, cache = tiny_ladder
  calls = _counting(monkeypatch)
  first, unplanned = aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), planner=aot)
  assert calls == [128] and unplanned == [] and not first[0]["from_cache"]
  assert len(list(cache.glob("*.json"))) == 1

  def refuse(*args):
    raise AssertionError("a cached cell was compiled again")
  monkeypatch.setattr(aot, "plan", refuse)  # its slice is still resolved: milliseconds
  second, _ = aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), planner=aot)
  assert second[0]["from_cache"] and aot_ladder.markdown(second) == aot_ladder.markdown(first)
  assert second[0]["memory_per_device"] == first[0]["memory_per_device"]


def _fake_plan(config, target):
  del target  # the cache logic only: no libtpu, no compile
  return {"topology": "v5e:2x2", "num_params": 1000, "mesh": {"data": 4, "fsdp": 1, "tensor": 1},
          "remat": "none", "batch_size": 8, "grad_accum_steps": 1, "compile_s": 1.0,
          "memory_per_device": {"total_bytes": 2e9, "capacity_bytes": 16e9, "fits": True},
          "flops": {}, "collectives": {}, "communication": None, "roofline": {"mfu_40": {"step_s": 1.0,
                                                                  "tokens_per_s": 2.0}},
          "eval": None}  # no evaluation planned (research/aot_eval.py)


def test_plan_cache_misses_on_a_changed_field_or_version(tiny_ladder, monkeypatch):
  path, cache = tiny_ladder
  calls = _counting(monkeypatch, _fake_plan)
  monkeypatch.setattr(aot, "topology_target", lambda name, flag="": None)
  aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), planner=aot)
  aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), planner=aot)
  assert calls == [128]  # the negative control of the misses below: the same cell hits
  Path(path).write_text(_TINY_LADDER.replace("WIDTH = 128", "WIDTH = 96"))
  rows, _ = aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), planner=aot)
  assert calls == [128, 96] and not rows[0]["from_cache"]
  monkeypatch.setattr(aot_ladder, "_versions", lambda: {"jax": "0.0.0", "jaxlib": "0.0.0",
                                                 "libtpu": "0.0.0"})
  aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), planner=aot)
  assert calls == [128, 96, 96] and len(list(cache.glob("*.json"))) == 3


def test_a_short_step_is_not_printed_as_zero():
  """14m@v5p:8x8x8 (1.16e14 model FLOPs a step over 512 x 459 TFLOP/s at 40% MFU: 0.00123 s,
  0.0020 days for 143k steps) read 0.00 s in the table and 0.0 days in the report."""
  plan = _fake_plan(None, None) | {"size": "14m"}
  plan["roofline"]["mfu_40"]["step_s"] = 0.00123
  assert "| 0.00123 s |" in aot_ladder.markdown([plan])
  plan["roofline"]["mfu_40"]["step_s"] = 9.7345  # from 1 s up: two decimals, as before
  assert "| 9.73 s |" in aot_ladder.markdown([plan])
  plan["roofline"]["mfu_40"]["step_s"] = 1.0  # 1 s itself: two decimals
  assert "| 1.00 s |" in aot_ladder.markdown([plan])
  assert (aot._days(0.00204), aot._days(16.13)) == ("0.002", "16.1")
  # One decimal from 1 day up, not from 10 (a mutation audit's threshold went unseen).
  assert [aot._days(d) for d in (1.0, 2.0, 9.96)] == ["1.0", "2.0", "10.0"]


def test_a_small_model_is_not_printed_as_zero_parameters():
  """The tiny preset's 59,776 parameters read "0M" in the table (and 0.1M in the plan)."""
  plan = _fake_plan(None, None) | {"size": "tiny", "num_params": 59_776}
  assert "| tiny | 0.06M |" in aot_ladder.markdown([plan])
  from research import hardware
  assert [hardware.millions(n) for n in (59_776, 2_512_000, 14_067_712, 1_011_781_632)] == [
      "0.06M", "2.5M", "14M", "1,012M"]  # from 10M up: whole millions, as before


@pytest.mark.parametrize("damage", ["{\"memory_per_device\": ", "[1, 2]", "{}", "KEYED"])
def test_corrupt_cache_file_is_planned_again_with_a_warning(tiny_ladder, monkeypatch, damage):
  from absl import logging as absl_logging
  path, cache = tiny_ladder
  calls = _counting(monkeypatch, _fake_plan)
  monkeypatch.setattr(aot, "topology_target", lambda name, flag="": None)
  aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), planner=aot)
  (file,) = cache.glob("*.json")
  if damage == "KEYED":  # the right key and every field, one of the wrong shape: a traceback
    damage = json.dumps(json.loads(file.read_text()) | {"memory_per_device": {}})
  file.write_text(damage)
  warnings = []
  monkeypatch.setattr(absl_logging, "warning", lambda msg, *a: warnings.append(msg % a))
  rows, _ = aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), planner=aot)
  assert calls == [128, 128] and not rows[0]["from_cache"]
  assert len(warnings) == 1 and str(file) in warnings[0] and "not planned" in warnings[0]
  rows, _ = aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), planner=aot)  # rewritten whole
  assert calls == [128, 128] and rows[0]["from_cache"]


def test_cached_only_compiles_nothing_and_lists_the_missing_cells(tiny_ladder, monkeypatch):
  path, cache = tiny_ladder
  calls = _counting(monkeypatch, _fake_plan)
  monkeypatch.setattr(aot, "topology_target", lambda name, flag="": None)
  rows, unplanned = aot_ladder.ladder(path, ["v5e:2x2", "v5e:4x4"], [], str(cache),
                                      cached_only=True, planner=aot)
  assert rows == [] and unplanned == ["tiny@v5e:2x2", "tiny@v5e:4x4"] and calls == []
  aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), planner=aot)
  rows, unplanned = aot_ladder.ladder(path, ["v5e:2x2", "v5e:4x4"], [], str(cache),
                                      cached_only=True, planner=aot)
  assert [r["topology"] for r in rows] == ["v5e:2x2"] and unplanned == ["tiny@v5e:4x4"]


def test_a_cached_plans_verdict_is_made_again_against_the_chip_table(tiny_ladder, monkeypatch):
  """A plan cached when the table held v5e's decimal 16e9 B read **no** at 16.1 GB per chip
  (the README's 6p9b on v5e-16), a program the compiler accepted; the cache keeps the
  compiler's bytes, and the verdict is made against the usable HBM when the plan is read,
  under --cached_only too. A chip the table lacks keeps the cached figures."""
  path, cache = tiny_ladder
  old = {"chip": "TPU v5e", "memory_per_device": {
      "total_bytes": 16.1e9, "capacity_bytes": 16e9, "fits": False, "headroom_bytes": -0.1e9,
      "compiler_error": None}}
  _counting(monkeypatch, lambda c, t: _fake_plan(c, t) | old)
  monkeypatch.setattr(aot, "topology_target", lambda name, flag="": None)
  first, _ = aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), planner=aot)
  assert "| 16.1 (16.0) | - | **no** |" in aot_ladder.markdown(first)  # as it was written
  for cached_only in (False, True):
    rows, _ = aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), cached_only, planner=aot)
    m = rows[0]["memory_per_device"]
    assert rows[0]["from_cache"] and m["fits"] is True and m["capacity_bytes"] == 16_126 * 2 ** 20
    assert m["hbm_bytes"] == 16 * 2 ** 30 and "| 16.1 (16.9) | - | yes |" in aot_ladder.markdown(rows)
  (file,) = cache.glob("*.json")
  file.write_text(file.read_text().replace('"TPU v5e"', '"TPU v9"'))
  rows, _ = aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), True, planner=aot)
  assert rows[0]["memory_per_device"]["fits"] is False  # no table entry: left as cached


def test_plan_cache_that_is_a_file_is_input_error(tiny_ladder, tmp_path):
  path, _ = tiny_ladder
  (tmp_path / "afile").write_text("x")
  for cached_only in (False, True):
    with pytest.raises(InputError, match="--plan_cache=.*afile is a file"):
      aot_ladder.ladder(path, ["v5e:2x2"], [], str(tmp_path / "afile"), cached_only,
                        planner=aot)


def test_cached_only_reads_a_read_only_plan_cache(tiny_ladder, monkeypatch):
  """--cached_only writes nothing, yet refused a shared read-only cache ('is not
  writable'); a run that compiles still needs to write there."""
  path, cache = tiny_ladder
  _counting(monkeypatch, _fake_plan)
  monkeypatch.setattr(aot, "topology_target", lambda name, flag="": None)
  aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), planner=aot)
  monkeypatch.setattr(output_paths, "_writable", lambda directory: False)  # root writes through 0o555
  rows, unplanned = aot_ladder.ladder(path, ["v5e:2x2", "v5e:4x4"], [], str(cache),
                                      cached_only=True, planner=aot)
  assert [r["topology"] for r in rows] == ["v5e:2x2"] and unplanned == ["tiny@v5e:4x4"]
  with pytest.raises(InputError, match="--plan_cache=.* is not writable"):
    aot_ladder.ladder(path, ["v5e:4x4"], [], str(cache), planner=aot)


@pytest.mark.parametrize("cached_only", [True, False])
@pytest.mark.parametrize("cache,out", [("plans", "plans"), ("a/plans", "a"), ("plans", "plans/x.json")])
def test_out_on_the_plan_cache_or_above_it_is_refused(tmp_path, cached_only, cache, out):
  """--cached_only --plan_cache=X --out=X wrote '[]' as the file X where the cache directory
  belongs (every later run: 'is a file'); compiling, the cache made first took --out's place
  (exit 5 after the compiles). Refused before anything, nothing written."""
  args = ["--ladder=configs/lm_ladder.py", "--sizes=14m", "--topologies=v5e:2x2",
          f"--plan_cache={tmp_path / cache}", f"--out={tmp_path / out}"]
  proc = subprocess.run([sys.executable, "-m", "research.aot", *args,
                         *(["--cached_only"] if cached_only else [])],
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2, proc.stderr[-2000:]
  (line,) = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert "a folder above it or a file in it; write the plans to a file outside it" in line
  assert not (tmp_path / out).exists()


def test_a_directory_in_a_cells_place_is_refused_before_compiling(tiny_ladder, monkeypatch):
  """The cell compiled, then its write failed (exit 5, 'Is a directory') and the compile was
  lost; now exit 2 before compiling. --cached_only lists the cell as not planned."""
  path, cache = tiny_ladder
  calls = _counting(monkeypatch, _fake_plan)
  monkeypatch.setattr(aot, "topology_target", lambda name, flag="": None)
  aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), planner=aot)
  (file,) = cache.glob("*.json")
  file.unlink()
  file.mkdir()
  with pytest.raises(InputError, match=rf"{file}, where the plan of tiny@v5e:2x2 is kept, is "
                     rf"not a file; remove it \(rm -r {file}\) or pass another --plan_cache"):
    aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), planner=aot)
  assert calls == [128] and file.is_dir()
  rows, unplanned = aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), cached_only=True,
                                      planner=aot)
  assert rows == [] and unplanned == ["tiny@v5e:2x2"]


def test_cached_only_refuses_a_misspelt_slice_without_libtpu(tiny_ladder, monkeypatch):
  """No libtpu: a name that is not CHIP:SHAPE is still exit 2; a well-spelt one is listed
  as not yet planned, its shape unchecked (aot says so)."""
  path, cache = tiny_ladder
  real_find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == "libtpu" else real_find_spec(name, *a))
  for bad in ("v5e:4x", "v5e:4x4x", "v5e:0x4", "v5e4x4", "v5e:4*4", "V5E:4x4"):
    with pytest.raises(InputError, match="not a TPU topology name"):
      aot_ladder.ladder(path, [bad], [], str(cache), cached_only=True, planner=aot)
  # v5e:3x3 and v5e:32x32 (more chips than a v5e pod, which libtpu would plan) are refused
  # by the host rules (research/hardware.py) with libtpu or without; a real shape is listed,
  # unchecked.
  with pytest.raises(InputError, match="--topologies=v5e:3x3: TPU v5e slices are made of hosts"):
    aot_ladder.ladder(path, ["v5e:3x3"], [], str(cache), cached_only=True, planner=aot)
  with pytest.raises(InputError, match="v5e:32x32 is 1,024 chips in a shape TPU v5e does not"):
    aot_ladder.ladder(path, ["v5e:32x32"], [], str(cache), cached_only=True, planner=aot)
  rows, unplanned = aot_ladder.ladder(path, ["v5e:8x16"], [], str(cache), cached_only=True,
                                      planner=aot)
  assert rows == [] and unplanned == ["tiny@v5e:8x16"]


@needs_libtpu
def test_cached_only_refuses_a_shape_the_chip_does_not_have(tiny_ladder, monkeypatch):
  """With libtpu, --cached_only resolves the unplanned cells' slices (nothing compiled): a
  v5e has no 3x3 slice, which was listed as "not yet planned", exit 0."""
  path, cache = tiny_ladder
  calls = _counting(monkeypatch, _fake_plan)
  with pytest.raises(InputError, match="--topologies=v5e:3x3: "):
    aot_ladder.ladder(path, ["v5e:2x2", "v5e:3x3"], [], str(cache), cached_only=True,
                      planner=aot)
  rows, unplanned = aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), cached_only=True,
                                      planner=aot)
  assert rows == [] and unplanned == ["tiny@v5e:2x2"] and calls == []


def test_a_cell_named_twice_is_one_row_and_a_preset_is_refused(tiny_ladder, monkeypatch):
  path, cache = tiny_ladder
  calls = _counting(monkeypatch, _fake_plan)
  monkeypatch.setattr(aot, "topology_target", lambda name, flag="": None)
  rows, _ = aot_ladder.ladder(path, ["v5e:2x2", "v5e:2x2"], ["tiny", "tiny"], str(cache),
                              planner=aot)
  assert len(rows) == 1 and calls == [128]
  with pytest.raises(InputError, match=r"--ladder takes the file alone.*--sizes"):
    aot_ladder.ladder(f"{path}:tiny", ["v5e:2x2"], [], str(cache), planner=aot)


@pytest.mark.parametrize("args", [[], ["--help"], ["--ladder=configs/lm_ladder.py"]])
def test_running_the_library_module_points_to_research_aot(args):
  """python -m research.aot_ladder was a silent exit 0 whatever it was given."""
  proc = subprocess.run([sys.executable, "-m", "research.aot_ladder", *args],
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2 and proc.stdout == "", proc.stderr
  (line,) = proc.stderr.splitlines()
  assert line.startswith("error: ") and "python -m research.aot --ladder=" in line


def test_a_cached_file_holding_another_plans_key_is_a_miss(tiny_ladder, monkeypatch):
  """A file at a cell's path whose own plan_key is another (copied or renamed into place) is
  not that cell's plan: it is compiled again, never read (a mutation audit dropped the
  check unseen: every cached file of the tests was written under its own key)."""
  path, cache = tiny_ladder
  calls = _counting(monkeypatch, _fake_plan)
  monkeypatch.setattr(aot, "topology_target", lambda name, flag="": None)
  aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), planner=aot)
  (file,) = cache.glob("*.json")
  found = json.loads(file.read_text())
  file.write_text(json.dumps(found | {"plan_key": "0" * 32}))
  rows, _ = aot_ladder.ladder(path, ["v5e:2x2"], [], str(cache), planner=aot)
  assert calls == [128, 128] and not rows[0]["from_cache"]
