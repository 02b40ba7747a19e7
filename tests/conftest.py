"""Tests run on 8 simulated CPU devices so sharding code paths are real."""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
# CPU only, even where libtpu is installed (the dev extra, for tests/test_aot*.py): JAX would
# otherwise probe for a TPU, print libtpu's warnings and hold /tmp/libtpu_lockfile.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)
# Tests compile many small programs; a shared persistent cache makes reruns fast.
jax.config.update("jax_compilation_cache_dir",
                  os.environ.get("RESEARCH_TEST_CACHE", os.path.expanduser("~/.cache/research_jax_tests")))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


@pytest.fixture
def tiny_config():
  from configs import icl_regression
  c = icl_regression.get_config("tiny")
  c.train.compile_cache_dir = ""  # the test session configures the cache itself
  return c


@pytest.fixture
def wall_times(tmp_path, monkeypatch):
  """Runs in tests record their wall times here, never in experiments/wall_times.json (files
  that run reproduce opt in: pytestmark = pytest.mark.usefixtures("wall_times"))."""
  from experiments import summaries
  path = tmp_path / "wall_times.json"
  monkeypatch.setattr(summaries, "WALL_TIMES", path)
  return path
