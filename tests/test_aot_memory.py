"""research/aot_memory.py: a compiled plan's per-chip memory, and the two forms of the TPU
compiler's refusal."""
from aot_fixtures import dp_plan, needs_libtpu, v5e  # noqa: F401 (fixtures)
from research import aot, aot_memory, hardware


def test_both_forms_of_the_compilers_refusal_are_read():
  """XLA:TPU refuses in two forms; the second ('Used ... of ... hbm') was not parsed, so
  70m@v5e:4x4 in 8 microbatches, refused for 9 MB, read as 0.85 GB (its state alone)."""
  temps = aot_memory.OutOfMemory("RESOURCE_EXHAUSTED: Ran out of memory on HBM, the total memory "
                           "required for HLO temporaries (28.37G) exceeds available HBM (15.75G).")
  assert (temps.required, temps.used, temps.available) == (
      round(28.37 * 2 ** 30), None, round(15.75 * 2 ** 30))
  whole = aot_memory.OutOfMemory("RESOURCE_EXHAUSTED: E1000: CompileTimeHbmOom: XLA:TPU compile "
                           "permanent error. Ran out of memory in memory space hbm. Used 15.76G "
                           "of 15.75G hbm. Exceeded hbm capacity by 9.18M.\nmore")
  assert (whole.required, whole.used, whole.available) == (
      None, round(15.76 * 2 ** 30), round(15.75 * 2 ** 30))
  # A refused plan's figures: 'Used' is the whole program, the state (held as its arguments)
  # included once; the temporaries form adds the state to them. A mutation audit counted the
  # state twice in the first unseen, which printed 'over by' the state's size too much.
  class Dev:
    platform = "tpu"
  tpu = aot.Target("v5e:4x4", [Dev()], hardware.chip_for_topology("v5e:4x4"))
  state = 10 ** 9
  m = aot_memory.per_chip(whole, None, state, tpu)
  assert (m["total_bytes"], m["temporary_bytes"]) == (whole.used, whole.used - state)
  m = aot_memory.per_chip(temps, None, state, tpu)
  assert (m["total_bytes"], m["temporary_bytes"]) == (state + temps.required, temps.required)


def test_a_tpu_plan_takes_the_lower_of_xlas_peak_and_its_sum(monkeypatch):
  """memory_analysis()'s temporaries overstated 14m@v5e:4x4 in 4 microbatches by 3.8 GB (19.97
  GB summed, a 15.97 GB peak, which the compiler accepted: DOES NOT FIT where it fit), and on
  small programs the peak is the higher one; a CPU's peak omits temporaries."""
  class Mem:
    peak_memory_in_bytes = 15_974_857_728

  class Dev:
    platform = "tpu"
  tpu = aot.Target("v5e:4x4", [Dev()], hardware.chip_for_topology("v5e:4x4"))
  assert aot_memory.tpu_peak(Mem(), tpu) == 15_974_857_728
  Dev.platform = "cpu"
  assert aot_memory.tpu_peak(Mem(), tpu) is None  # control: the sum stays on CPU
  Dev.platform, Mem.peak_memory_in_bytes = "tpu", 0
  assert aot_memory.tpu_peak(Mem(), tpu) is None  # no peak reported


@needs_libtpu
def test_the_plans_total_is_at_most_both_figures(dp_plan):
  """On the compiled test plan: the total is the lower of XLA's peak and the summed parts
  (here the sum: a small program's peak is the higher one)."""
  m = dp_plan["memory_per_device"]
  summed = m["argument_bytes"] + m["output_bytes"] - m["alias_bytes"] + m["xla_temp_size_bytes"]
  assert m["peak_bytes"] is not None
  assert m["total_bytes"] == min(summed, m["peak_bytes"])


def test_a_peak_below_the_sum_is_the_total_with_donated_state_counted_once():
  """Hand-made memory_analysis(): 100 B of arguments, all donated to 100 B of outputs (alias
  100), 1000 B of temporaries, a peak of 400 B. The peak is the lower figure, so the total is
  400 and the temporaries 400 - (100 + 100 - 100) = 300 (a mutation audit left the alias out
  of that difference, total 300, unseen: the compiled test plan's sum is its lower figure)."""
  class Mem:
    argument_size_in_bytes = output_size_in_bytes = alias_size_in_bytes = 100
    temp_size_in_bytes, generated_code_size_in_bytes, peak_memory_in_bytes = 1000, 7, 400

  class Dev:
    platform = "tpu"
  tpu = aot.Target("v5e:2x2", [Dev()], hardware.chip_for_topology("v5e:2x2"))
  m = aot_memory.per_chip(None, Mem(), 100, tpu)
  assert (m["temporary_bytes"], m["total_bytes"], m["xla_temp_size_bytes"], m["peak_bytes"]) == (
      300, 400, 1000, 400)
  assert m["generated_code_bytes"] == 7 and m["compiler_error"] is None
  Mem.peak_memory_in_bytes = 2000  # the sum (1100) is lower: it stands
  assert aot_memory.per_chip(None, Mem(), 100, tpu)["total_bytes"] == 1100


@needs_libtpu
def test_a_slices_program_is_kept_out_of_the_persistent_cache(tmp_path):
  """libtpu compiles a slice with a compile-only client, which cannot load a cached executable
  back: each plan stored its TPU program in the persistent cache (a user's
  JAX_COMPILATION_CACHE_DIR, the test session's) and the next compile of the same program
  warned "Error reading persistent compilation cache entry" and compiled again. In a fresh
  process with its own empty cache (the session's may hold an entry an older version stored,
  which warns whatever the code does now): a slice's plan compiled twice stores nothing and
  warns nothing, while a local program is stored (the control: the cache is on)."""
  import subprocess
  import sys
  from pathlib import Path
  root, cache = Path(__file__).resolve().parents[1], tmp_path / "cache"
  script = f"""
import os, sys, warnings
import jax
jax.config.update("jax_compilation_cache_dir", {str(cache)!r})
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
sys.path.insert(0, "tests")
from aot_fixtures import config
from research import aot
jax.jit(lambda x: x * 3 + 1)(1.0).block_until_ready()  # a local program: cached
v5e = aot.topology_target("v5e:2x2")
with warnings.catch_warnings(record=True) as caught:
  warnings.simplefilter("always")
  first, again = aot.plan(config(), v5e), aot.plan(config(), v5e)
print("warned", [str(w.message)[:80] for w in caught if "compilation cache" in str(w.message)])
print("same", again["memory_per_device"] == first["memory_per_device"])
print("restored", jax.config.jax_persistent_cache_min_compile_time_secs)
print("stored", sorted(n.split("-")[0] for n in os.listdir({str(cache)!r})))
"""
  out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True,
                       timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
  assert lines["warned"] == "[]" and lines["same"] == "True", out.stdout
  assert lines["restored"] == "0.0", out.stdout  # the setting is put back
  stored = lines["stored"]  # local programs (the control's, the plan's set-up), no jit_run
  assert "'jit__lambda'" in stored and "jit_run" not in stored, out.stdout
