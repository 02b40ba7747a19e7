"""What a run's numbers depend on besides config.json: JAX's random-stream settings, the
devices its mesh resolved to, and the config itself as trained (config.json can be edited).
Each checkpoint's meta keeps them ("environment"); a resume compares (research/train.py,
research/ensemble.py).

Another random stream (JAX_DEFAULT_PRNG_IMPL, JAX_ENABLE_X64, JAX_THREEFRY_PARTITIONABLE set
otherwise than when the run started) draws other data and dropout from the same keys: the
resumed steps would be another run's (a tiny regression run resumed at step 180 ended at loss
5.254 / 4.909 / 4.891 against 5.309 uninterrupted), so it is refused. Other devices (mesh
`-1` axes filled by another count, another process count) change only the order of the
step's reductions; the mesh may change on resume (research/workdir.py RESUMABLE), but the
change was recorded only where a mesh field changed: the resolved mesh now is, in the run's
config_changes.jsonl."""
from __future__ import annotations

import json

import jax

from research.errors import InputError
from research.workdir import config_json, saved_differences

# jax.config attribute -> the environment variable a user sets it with
STREAM = {"jax_default_prng_impl": "JAX_DEFAULT_PRNG_IMPL", "jax_enable_x64": "JAX_ENABLE_X64",
          "jax_threefry_partitionable": "JAX_THREEFRY_PARTITIONABLE"}


def current(mesh, config) -> dict:
  """This process's random-stream settings, the run's resolved mesh and its config (as
  config.json holds it)."""
  return {"random": {k: getattr(jax.config, k) for k in STREAM},
          "mesh": {str(k): int(v) for k, v in dict(mesh.shape).items()},
          "devices": int(mesh.devices.size), "processes": jax.process_count(),
          "config": json.loads(config_json(config))}


def compare(saved: dict | None, now: dict, workdir) -> list[str]:
  """The changes to record in config_changes.jsonl (the resolved mesh); InputError when the
  random streams differ, or a field no resume may change differs from the config the
  checkpoint was trained with (config.json edited by hand to match the command: the rerun's
  check reads config.json, and a batch size changed so trained on, its tokens counted as if
  every step had it). A checkpoint from before this record (no `saved`) is not compared."""
  if not saved:
    return []
  if "config" in saved:
    changed = saved_differences(saved["config"], now["config"])
    if changed:
      raise InputError(f"{workdir}'s newest checkpoint was trained with other settings than "
                       f"this command's ({'; '.join(changed)}), which config.json no longer "
                       "shows (edited?); rerun with the checkpoint's values, or start a new "
                       "--workdir (--config.init_from= to start from its weights)")
  stream = [f"{STREAM.get(k, k)}={saved['random'][k]} (now {now['random'].get(k)})"
            for k in saved.get("random", {}) if saved["random"][k] != now["random"].get(k)]
  if jax.process_count() > 1:  # each process its own environment: all refuse, or none would
    import numpy as np
    from jax.experimental import multihost_utils
    off = np.flatnonzero(np.asarray(multihost_utils.process_allgather(np.array(bool(stream)))))
    if len(off) and not stream:
      raise InputError(f"{workdir} was trained with other JAX random-stream settings than "
                       f"process(es) {off.tolist()} have now; start every process with "
                       f"{', '.join(STREAM.values())} as the run was started")
  if stream:
    raise InputError(f"{workdir} was trained with {', '.join(stream)}: another random stream, "
                     "so the resumed steps would draw another run's data; set it back as it "
                     "was, or start a new --workdir")
  shown = lambda e: (" ".join(f"{k}={v}" for k, v in e["mesh"].items())
                     + f" on {e['devices']} device(s), {e['processes']} process(es)")
  if (saved["mesh"], saved["devices"], saved["processes"]) == (
      now["mesh"], now["devices"], now["processes"]):
    return []
  return [f"resolved mesh: {shown(saved)} -> {shown(now)}"]
