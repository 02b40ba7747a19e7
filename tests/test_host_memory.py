"""A CPU run the host's memory cannot hold is refused before any state exists (exit 2), instead
of being killed by the kernel once it touched the memory (research/host_memory.py)."""
from pathlib import Path

import jax
import numpy as np
import pytest

from research import errors, ensemble, host_memory, train
from run_fixtures import tiny_regression as _tiny

GB = 10 ** 9


def test_check_refuses_only_beyond_what_is_available(monkeypatch):
  host_memory.check(5 * GB, what="this run", available=5 * GB)  # control: exactly fits
  with pytest.raises(errors.InputError) as e:
    host_memory.check(5 * GB + 1, what="this run", available=5 * GB)
  message = str(e.value)
  assert message.startswith("this run needs 5 GB of this host's memory") and "5 GB are available" in message
  assert "--config.train.host_memory_check=False" in message and "research.aot" in message
  monkeypatch.setattr(host_memory, "available_bytes", lambda: None)
  host_memory.check(10 ** 15, what="this run")  # not Linux: nothing known, nothing checked


def test_available_is_the_lower_of_the_host_and_its_container(tmp_path, monkeypatch):
  meminfo = tmp_path / "meminfo"
  meminfo.write_text("MemTotal:       24000000 kB\nMemFree:  1000 kB\nMemAvailable:   20000000 kB\n")
  cgroup = tmp_path / "cgroup"
  cgroup.mkdir()
  monkeypatch.setattr(host_memory, "_MEMINFO", meminfo)
  monkeypatch.setattr(host_memory, "_CGROUP", cgroup)
  monkeypatch.setattr(host_memory, "_SELF_CGROUP", tmp_path / "self_cgroup")  # absent: the root
  assert host_memory.available_bytes() == 20000000 * 1024  # no cgroup files: the host's
  (cgroup / "memory.max").write_text("max\n")
  (cgroup / "memory.current").write_text("123\n")
  assert host_memory.available_bytes() == 20000000 * 1024  # an unlimited container
  (cgroup / "memory.max").write_text(f"{8 * GB}\n")
  (cgroup / "memory.current").write_text(f"{3 * GB}\n")
  assert host_memory.available_bytes() == 5 * GB  # the container's 8 GB limit, 3 GB used
  meminfo.unlink()
  assert host_memory.available_bytes() == 5 * GB
  (cgroup / "memory.max").unlink()
  assert host_memory.available_bytes() is None


def test_page_cache_and_nested_limits_of_the_container(tmp_path, monkeypatch):
  """memory.current counts the page cache, which the kernel drops before it kills anything:
  a container that read its data sits near its limit and would refuse every run. A limit on
  the process's own cgroup below the root (a systemd slice, a batch job) counts too."""
  cgroup = tmp_path / "cgroup"
  job = cgroup / "slurm" / "job_7"
  job.mkdir(parents=True)
  monkeypatch.setattr(host_memory, "_MEMINFO", tmp_path / "absent")
  monkeypatch.setattr(host_memory, "_CGROUP", cgroup)
  self_cgroup = tmp_path / "self_cgroup"
  self_cgroup.write_text("4:memory:/ignored_v1\n0::/slurm/job_7\n")
  monkeypatch.setattr(host_memory, "_SELF_CGROUP", self_cgroup)
  (cgroup / "memory.max").write_text(f"{8 * GB}\n")
  (cgroup / "memory.current").write_text(f"{8 * GB}\n")   # full, but 6 GB of it page cache
  (cgroup / "memory.stat").write_text(f"anon {2 * GB}\ninactive_file {6 * GB}\nactive_file 0\n")
  assert host_memory.available_bytes() == 6 * GB
  (job / "memory.max").write_text(f"{3 * GB}\n")          # the job's own, tighter limit
  (job / "memory.current").write_text(f"{1 * GB}\n")
  assert host_memory.available_bytes() == 2 * GB


def test_a_cgroup_v1_container_limit(tmp_path, monkeypatch):
  """Hosts that still mount the v1 memory controller (this project's development host does):
  a Docker container sees its group at the mount's root; v1 writes "no limit" as ~2^63."""
  v1 = tmp_path / "cgroup" / "memory"
  v1.mkdir(parents=True)
  monkeypatch.setattr(host_memory, "_MEMINFO", tmp_path / "absent")
  monkeypatch.setattr(host_memory, "_CGROUP", tmp_path / "cgroup")
  self_cgroup = tmp_path / "self_cgroup"
  self_cgroup.write_text("9:name=systemd:/\n4:memory:/docker/abc\n0::/\n")
  monkeypatch.setattr(host_memory, "_SELF_CGROUP", self_cgroup)
  (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")
  (v1 / "memory.usage_in_bytes").write_text(f"{2 * GB}\n")
  assert host_memory.available_bytes() is None  # unlimited
  (v1 / "memory.limit_in_bytes").write_text(f"{4 * GB}\n")
  (v1 / "memory.stat").write_text(f"inactive_file 5\ntotal_inactive_file {1 * GB}\n")
  assert host_memory.available_bytes() == 3 * GB  # 4 GB limit, 2 GB used of which 1 GB cache


G = 2 ** 10  # MiB in a GiB: processes exchange MiB


def _gathered(monkeypatch, rows):
  """A multi-process run whose all-gather returns `rows` (process_row's: need, machine
  available, machine key, cgroup available, cgroup key)."""
  from jax.experimental import multihost_utils
  monkeypatch.setattr(jax, "process_count", lambda: len(rows))
  monkeypatch.setattr(multihost_utils, "process_allgather", lambda row: np.asarray(rows))


def test_processes_sharing_memory_are_summed_against_it(monkeypatch):
  """Each process of a multi-process run fits alone; two on one machine do not: every process
  is refused with the same line (one refusing alone would leave the other waiting in its
  first collective, and checking each alone passed both)."""
  _gathered(monkeypatch, [[6 * G, 10 * G, 7, -1, -1], [6 * G, 10 * G, 7, -1, -1]])
  with pytest.raises(errors.InputError) as e:
    host_memory.check_processes(6 * 2 ** 30, what="this run")
  assert "needs 12.9 GB of the memory of the machine of processes 0, 1 (of 2)" in str(e.value)
  assert "10.7 GB are available" in str(e.value)
  _gathered(monkeypatch, [[6 * G, 10 * G, 7, -1, -1], [6 * G, 10 * G, 8, -1, -1]])  # control:
  host_memory.check_processes(6 * 2 ** 30, what="this run")                         # 2 machines
  _gathered(monkeypatch, [[6 * G, 10 * G, 7, -1, -1], [6 * G, -1, 7, -1, -1]])  # least known
  with pytest.raises(errors.InputError):
    host_memory.check_processes(6 * 2 ** 30, what="this run")
  _gathered(monkeypatch, [[6 * G, -1, 7, -1, -1], [6 * G, -1, 7, -1, -1]])  # nothing known
  host_memory.check_processes(6 * 2 ** 30, what="this run")
  # Two containers on a 100 GiB machine, each limited to 8: summed per limit, not per machine.
  _gathered(monkeypatch, [[6 * G, 100 * G, 7, 8 * G, 1], [6 * G, 100 * G, 7, 8 * G, 2]])
  host_memory.check_processes(6 * 2 ** 30, what="this run")
  _gathered(monkeypatch, [[6 * G, 100 * G, 7, 8 * G, 1], [6 * G, 100 * G, 7, 8 * G, 1]])
  with pytest.raises(errors.InputError, match=r"memory limit \(cgroup\) of processes 0, 1 \(of 2\)"):
    host_memory.check_processes(6 * 2 ** 30, what="this run")
  # A process whose check is off (-1) turns it off for all: none may wait for the others.
  _gathered(monkeypatch, [[12 * G, 10 * G, 7, -1, -1], [-1, 10 * G, 7, -1, -1]])
  host_memory.check_processes(12 * 2 ** 30, what="this run")


def test_the_worst_pool_is_the_one_named():
  rows = [[1 * G, 4 * G, 1, -1, -1], [9 * G, 10 * G, 2, -1, -1], [2 * G, 20 * G, 1, -1, -1],
          [1 * G, 10 * G, 2, -1, -1]]
  assert host_memory.worst_pool(rows) == (10 * G, 10 * G, "the memory of the machine", [1, 3])
  # A pool with nothing available is over, not tied with one that fits exactly.
  assert host_memory.worst_pool([[10, 10, 1, -1, -1], [1, 0, 2, -1, -1]])[3] == [1]
  assert host_memory.worst_pool([[1, -1, 3, -1, -1]]) is None


def test_the_row_rounds_against_the_run_and_never_overflows(monkeypatch):
  """The need is rounded up and the available memory down to MiB: 1 byte over 5 GB (not a
  whole number of MiB) is refused, as the single-process check refuses it; a need beyond
  int32 MiB is clamped, not an OverflowError."""
  monkeypatch.setattr(host_memory, "_meminfo_available", lambda: 5 * GB)
  monkeypatch.setattr(host_memory, "_tightest_cgroup", lambda: None)
  from jax.experimental import multihost_utils
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  monkeypatch.setattr(multihost_utils, "process_allgather",
                      lambda row: np.stack([row, row * [0, 1, 0, 1, 1] + [0, 0, 1, 0, 0]]))
  host_memory.check_processes(5 * GB - 2 * 2 ** 20, what="this run")  # control: fits
  with pytest.raises(errors.InputError):
    host_memory.check_processes(5 * GB + 1, what="this run")
  row = host_memory.process_row(10 ** 20)
  assert row[0] == 2 ** 31 - 1 and row[1] == 5 * GB // 2 ** 20 and row[3] == row[4] == -1


def _needed(monkeypatch) -> list[int]:
  """The bytes each check was asked about, the host given 1 TB (nothing refused)."""
  asked = []
  real = host_memory.check
  monkeypatch.setattr(host_memory, "available_bytes", lambda: 10 ** 12)
  monkeypatch.setattr(host_memory, "check", lambda need, **kw: (asked.append(need), real(need, **kw)))
  return asked


def test_the_need_counts_state_and_activations_per_device(monkeypatch, tmp_path):
  """The figure is the compiled step's: at least the parameters + Adam's two moments, on
  every device this process drives, and more with a larger batch (activations)."""
  asked = _needed(monkeypatch)
  from research.experiment import Experiment
  for devices, batch in ((1, 64), (2, 128), (1, 256)):
    c = _tiny(**{"mesh.data": devices, "train.batch_size": batch})
    exp = Experiment(c, jax.devices()[:devices])
    exp.precompile(c.train.steps_per_call, what="this run")
  one, two, big = asked
  state_bytes = 3 * 4 * Experiment(_tiny(), jax.devices()[:1]).num_params  # fp32 params, mu, nu
  assert one > state_bytes
  # Data parallel over 2 CPU devices, 64 examples each: the same program on each (a replica
  # of the state and the same activations), so the host holds it twice.
  assert 1.8 < two / one < 2.2
  assert big > one        # the batch's activations are in it


def test_a_run_too_large_for_the_host_is_refused_before_its_state_and_leaves_nothing(
    monkeypatch, tmp_path):
  asked = _needed(monkeypatch)
  monkeypatch.setattr(host_memory, "available_bytes", lambda: 10 ** 5)  # 100 kB free
  init_called = []
  monkeypatch.setattr(train.Experiment, "init_state",
                      lambda self: init_called.append(1))  # never reached
  with pytest.raises(errors.InputError, match="host_memory_check=False"):
    train.train_and_evaluate(_tiny(), str(tmp_path / "run"), devices=jax.devices()[:1])
  assert asked and asked[0] > 10 ** 5 and not init_called
  assert not (tmp_path / "run").exists()  # a refused start leaves no workdir behind


def test_the_checked_program_is_the_one_trained_and_the_check_can_be_turned_off(
    monkeypatch, tmp_path):
  """The loop calls the program compiled for the check (no second compile); with
  train.host_memory_check=False nothing is compiled ahead and the run is the same."""
  asked = _needed(monkeypatch)
  compiled_calls = []
  real = host_memory.compile_checked

  def counting(*args, **kwargs):
    compiled, seconds = real(*args, **kwargs)
    if compiled is None:
      return compiled, seconds
    return (lambda *a: (compiled_calls.append(1), compiled(*a))[1]), seconds
  monkeypatch.setattr(host_memory, "compile_checked", counting)
  on = train.train_and_evaluate(_tiny(), str(tmp_path / "on"), devices=jax.devices()[:1])
  assert len(asked) == 1 and compiled_calls == [1] * (40 // _tiny().train.steps_per_call)
  off = train.train_and_evaluate(_tiny(**{"train.host_memory_check": False}), str(tmp_path / "off"),
                                 devices=jax.devices()[:1])
  assert len(asked) == 1 and len(compiled_calls) == 40 // _tiny().train.steps_per_call
  assert on["final_loss"] == off["final_loss"]
  # The compile before the loop is training time, as the first call's compile is without it.
  assert on["train_wall_s"] >= on["compile_s"] and off["train_wall_s"] >= off["compile_s"]


def test_the_ensemble_trains_with_the_checked_program(monkeypatch, tmp_path):
  _needed(monkeypatch)
  used = []
  real = host_memory.compile_checked

  def counting(*args, **kwargs):
    compiled, seconds = real(*args, **kwargs)
    return (lambda *a: (used.append(1), compiled(*a))[1]), seconds
  monkeypatch.setattr(host_memory, "compile_checked", counting)
  ensemble.train_ensemble(_tiny(), [{"seed": 0}, {"seed": 1}], tmp_path / "ens",
                          [tmp_path / "m0", tmp_path / "m1"], devices=jax.devices()[:1])
  assert len(used) == 40 // _tiny().train.steps_per_call


def test_an_ensemble_too_large_for_the_host_is_refused(monkeypatch, tmp_path):
  monkeypatch.setattr(host_memory, "available_bytes", lambda: 10 ** 5)
  members = [{"seed": 0}, {"seed": 1}]
  with pytest.raises(errors.InputError, match="an ensemble of 2 needs"):
    ensemble.train_ensemble(_tiny(), members, tmp_path / "ens",
                            [tmp_path / "m0", tmp_path / "m1"], devices=jax.devices()[:1])
  assert not any(Path(tmp_path / "ens" / "checkpoints").glob("*"))


def test_a_multi_process_workdir_is_new_only_if_no_process_saw_it(monkeypatch, tmp_path):
  """Process 1 may make the workdir before process 0 looks: each looks first, then they
  gather, so process 0 still knows the run made it (and undoes a refused start)."""
  from jax.experimental import multihost_utils
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  monkeypatch.setattr(multihost_utils, "process_allgather", lambda x: np.array([x, False]))
  assert train._new_to_every_process(tmp_path / "run")
  monkeypatch.setattr(multihost_utils, "process_allgather", lambda x: np.array([x, True]))
  assert not train._new_to_every_process(tmp_path / "run")  # another process saw it there


def test_a_shared_pool_is_checked_against_the_least_available_any_process_saw():
  """Two processes on one machine read 8 and 10 GiB available: 10 GiB needed is refused
  against 8 (a mutation audit's max passed it, the kill this check exists to prevent)."""
  G = 2 ** 30 // host_memory.MIB  # MiB in a GiB, the rows' unit
  rows = [[5 * G, 8 * G, 7, -1, -1], [5 * G, 10 * G, 7, -1, -1]]
  need, available, what, members = host_memory.worst_pool(rows)
  assert (need, available, what, members) == (10 * G, 8 * G, "the memory of the machine", [0, 1])
  with pytest.raises(errors.InputError, match="needs 10.7 GB .* 8.59 GB are available"):
    host_memory.check(need * host_memory.MIB, available=available * host_memory.MIB,
                      what="this run")


def test_a_donated_buffer_is_counted_once():
  """arguments + outputs - aliases + temporaries: a step whose state is donated writes its
  output into the input's buffer, so 4096 float32 in and out need 16 KiB, not 32."""
  import jax.numpy as jnp
  compiled = jax.jit(lambda x: x * 2 + 1, donate_argnums=0).lower(
      jnp.ones(4096, jnp.float32)).compile()
  m = compiled.memory_analysis()
  assert m.alias_size_in_bytes == 4096 * 4  # XLA's CPU backend honours the donation
  assert host_memory.program_bytes(compiled) == 4096 * 4 + m.temp_size_in_bytes
  kept = jax.jit(lambda x: x * 2 + 1).lower(jnp.ones(4096, jnp.float32)).compile()
  assert host_memory.program_bytes(kept) == 2 * 4096 * 4 + kept.memory_analysis().temp_size_in_bytes
