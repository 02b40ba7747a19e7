"""research.aot_targets without compiling: what a topology name is refused with, what libtpu is
asked for (a fake get_topology_desc), the chatter filter, and the compilation-cache guard."""
import math
import os

import jax
import pytest

from research import aot_targets
from research.errors import InputError


def test_an_unknown_chip_is_offered_the_plannable_ones_not_v3():
  with pytest.raises(InputError, match="CHIP one of") as e:
    aot_targets.check_topology_name("v9z:2x2")
  offered = str(e.value).split("CHIP one of ")[1].split(", e.g.")[0]
  assert "v5e" in offered and "v3" not in offered
  assert "lower case" not in str(e.value)


def test_an_upper_case_name_is_given_in_lower_case():
  with pytest.raises(InputError, match=r"\(lower case: v5e:4x4\)"):
    aot_targets.check_topology_name("V5E:4x4")


@pytest.fixture
def asked(monkeypatch):
  """A fake libtpu that lists one device per chip of the name asked and records the call."""
  from jax.experimental import topologies
  calls = []

  def desc(platform, topology_name, **config):
    calls.append((topology_name, config))
    n = math.prod(int(x) for x in topology_name.split(":")[1].split("x"))
    return type("Desc", (), {"devices": [object()] * (n * calls_per_chip[0])})()
  calls_per_chip = [1]
  monkeypatch.setattr(aot_targets, "require_libtpu", lambda what: None)
  monkeypatch.setattr(topologies, "get_topology_desc", desc)
  return calls, calls_per_chip


@pytest.mark.parametrize("name,config", [
    ("v4:2x2x1", {"chip_config_name": "megacore"}),         # one device per v4 chip
    ("v5e:1x1", {"chips_per_host_bounds": (1, 1, 1)}),     # a one-chip VM's host
    ("v6e:1x1", {"chips_per_host_bounds": (1, 1, 1)}),
    ("v5e:2x2", {}), ("v5p:2x2x2", {})])
def test_libtpu_is_asked_for_one_device_per_chip(asked, name, config):
  calls, _ = asked
  target = aot_targets.topology_target(name)
  assert calls == [(name, config)]
  assert len(target.devices) == math.prod(int(x) for x in name.split(":")[1].split("x"))


def test_a_chip_listed_as_more_devices_than_chips_is_refused(asked):
  _, per_chip = asked
  per_chip[0] = 2
  with pytest.raises(InputError, match="libtpu lists 8 devices for 4 chips"):
    aot_targets.topology_target("v5e:2x2")


def test_libtpus_chatter_is_dropped_and_other_lines_kept(capfd):
  with aot_targets._libtpu_chatter_dropped():
    os.write(2, b"E0000 could not determine TPU type\nkeep this line\n")
  err = capfd.readouterr().err
  assert "keep this line" in err and "could not determine TPU" not in err


def test_a_slices_program_is_kept_out_of_the_cache_and_the_setting_restored():
  name = "jax_persistent_cache_min_compile_time_secs"
  before = getattr(jax.config, name)
  with aot_targets.not_persisted(aot_targets.Target("v5e:2x2", [], None)):
    assert getattr(jax.config, name) == float("inf")
  assert getattr(jax.config, name) == before
  with aot_targets.not_persisted(aot_targets.Target("local", [], None)):
    assert getattr(jax.config, name) == before  # this host's programs are cached as set
