"""Device mesh and logical-axis sharding, as pure functions of config.

Models name their parameter axes logically (`embed`, `mlp`, `heads`, ...);
`config.sharding.rules` maps each logical name to mesh axes (`data`, `fsdp`,
`tensor`). Data parallel: batch over `data`; FSDP: batch over `fsdp` too and
parameters' `embed` axis over `fsdp`; tensor parallel: `mlp`/`heads`/`vocab`
over `tensor`. `jax.jit` with these NamedShardings is pjit: no pmap anywhere.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")


class MeshError(ValueError):
  pass


def mesh_shape(mesh_cfg, num_devices: int) -> tuple[int, ...]:
  """Resolves sizes (one may be -1: "the rest") and checks they fit the devices."""
  sizes = [int(mesh_cfg[a]) for a in MESH_AXES]
  fill = [a for a, s in zip(MESH_AXES, sizes) if s == -1]
  bad = [a for a, s in zip(MESH_AXES, sizes) if s == 0 or s < -1]
  if bad or len(fill) > 1:
    raise MeshError(f"config.mesh.{(bad or fill)[0]}={mesh_cfg[(bad or fill)[0]]} is invalid; "
                    "each mesh size must be a positive integer, and at most one may be -1 (fill)")
  known = math.prod(s for s in sizes if s != -1)
  if fill:
    if num_devices % known:
      raise MeshError(f"config.mesh: fixed sizes multiply to {known}, which does not divide the "
                      f"{num_devices} available devices; choose sizes whose product divides it "
                      f"({_divisors_text(num_devices)})")
    sizes[MESH_AXES.index(fill[0])] = num_devices // known
  if math.prod(sizes) != num_devices:
    shape = f"data x fsdp x tensor = {'x'.join(map(str, sizes))} = {math.prod(sizes)} devices"
    if num_devices % known:
      # "Set one size to -1" would only lead to the message above: no fill makes 3 divide 16.
      raise MeshError(f"config.mesh: {shape}, and {known} does not divide the {num_devices} "
                      f"available devices; choose sizes whose product divides it "
                      f"({_divisors_text(num_devices)}) and set one size to -1 to fill the rest")
    raise MeshError(f"config.mesh: {shape}, but {num_devices} are available; "
                    "set one size to -1 to fill the rest")
  return tuple(sizes)


def _divisors_text(n: int) -> str:
  """'1, 2, 4, 8 or 16': the products a mesh of n devices can fix (the first 12 and n on a
  slice of thousands)."""
  found = [d for d in range(1, n + 1) if n % d == 0]
  shown = found if len(found) <= 13 else found[:12] + ["...", n]
  return ", ".join(map(str, shown[:-1])) + f" or {shown[-1]}" if len(found) > 1 else str(n)


def make_mesh(mesh_cfg, devices: Sequence[jax.Device] | None = None) -> Mesh:
  devices = list(devices if devices is not None else jax.devices())
  shape = mesh_shape(mesh_cfg, len(devices))
  return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES),
                       devices=devices)


def rules_from_config(rules_cfg) -> tuple[tuple[str, Any], ...]:
  """Config stores rules as (logical, mesh axis | tuple of mesh axes | None) pairs."""
  return tuple((str(k), tuple(v) if isinstance(v, list) else v) for k, v in rules_cfg)


def _axis_size(mesh: Mesh, axes) -> int:
  if axes is None:
    return 1
  axes = (axes,) if isinstance(axes, str) else axes
  return math.prod(mesh.shape[a] for a in axes)


def _logical_to_named(logical: PartitionSpec, shape, mesh: Mesh, rules) -> NamedSharding:
  """Logical spec -> NamedSharding; a dim that the mesh does not divide stays replicated
  (e.g. a read-in of width 5 on a 2-way fsdp axis) rather than failing to compile."""
  mapped = nn.logical_to_mesh_axes(logical, rules)
  spec = [ax if dim % _axis_size(mesh, ax) == 0 else None for ax, dim in zip(mapped, shape)]
  return NamedSharding(mesh, PartitionSpec(*spec))


def param_shardings(abstract_boxed: Any, mesh: Mesh, rules) -> Any:
  """NamedShardings for a tree of (Partitioned-boxed) abstract params, unboxed structure."""
  specs = nn.get_partition_spec(abstract_boxed)
  shapes = nn.unbox(abstract_boxed)
  return jax.tree.map(lambda spec, s: _logical_to_named(spec, s.shape, mesh, rules),
                      specs, shapes, is_leaf=lambda x: isinstance(x, PartitionSpec))


def _dict_keys(path) -> tuple[str, ...]:
  return tuple(str(p.key) for p in path if isinstance(p, jax.tree_util.DictKey))


def like_params(abstract_tree: Any, params_abstract: Any, params_sharding: Any, mesh: Mesh) -> Any:
  """Shardings for a tree that contains params-shaped subtrees (optimizer state).

  A leaf whose dict-key path ends with a parameter's path and has that
  parameter's shape gets the parameter's sharding; anything else (step
  counters, scalars) is replicated.
  """
  by_path = {}
  for (path, leaf), sh in zip(jax.tree_util.tree_leaves_with_path(params_abstract),
                              jax.tree.leaves(params_sharding)):
    by_path[_dict_keys(path)] = (leaf.shape, sh)
  replicated = NamedSharding(mesh, PartitionSpec())

  def pick(path, leaf):
    keys = _dict_keys(path)
    for start in range(len(keys)):
      hit = by_path.get(keys[start:])
      if hit is not None and hit[0] == np.shape(leaf):
        return hit[1]
    return replicated

  return jax.tree_util.tree_map_with_path(pick, abstract_tree)


def batch_axes() -> tuple[str, ...]:
  """The batch mesh axes that the compiler partitions at this point of a trace: BATCH_AXES
  less those a shard_map has made manual (Experiment's gradient accumulation per data
  shard); () outside a mesh context or on a mesh without them."""
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty or not set(BATCH_AXES) <= set(mesh.axis_names):
    return ()
  return tuple(a for a in BATCH_AXES if a not in mesh.manual_axes)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())
