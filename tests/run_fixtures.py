"""The smallest real training run the tests share: configs/icl_regression.py's tiny preset on
one device, without the persistent compile cache (the test session configures its own).
Used by tests/test_faults.py, tests/test_host_memory.py and tests/test_matmul_precision.py."""


def tiny_regression(**overrides):
  """The tiny preset with `overrides` ({"section.field": value}) set as given."""
  from configs import icl_regression
  c = icl_regression.get_config("tiny")
  c.mesh.data, c.train.compile_cache_dir = 1, ""
  for key, value in overrides.items():
    section, field = key.split(".")
    c[section][field] = value
  return c
