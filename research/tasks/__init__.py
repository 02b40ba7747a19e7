"""Task registry: `config.task.name` -> task class.

A task owns what a paper varies: how batches are sampled (on device, from
`fold_in(seed, step)`), how a batch becomes model inputs (`model_inputs`), the
loss, and its probes and baselines. See `regression.py` for the interface:
  io: research.models.IOSpec            what the model reads and writes
  tokens_per_example: int               for throughput and MFU
  sample(key, step, batch_size) -> dict jittable batch
  model_inputs(batch) -> array          model input
  loss(outputs, batch) -> (scalar, {name: scalar})
  probe(predict_fn, key, probe_cfg, step=) -> {file stem: json-able result}
"""
from __future__ import annotations

from research.tasks.regression import RegressionTask

REGISTRY = {
    "regression": RegressionTask,
}


def build(task_cfg, seed: int):
  if task_cfg.name not in REGISTRY:
    raise ValueError(f"config.task.name={task_cfg.name!r} is not valid; choose one of: "
                     + ", ".join(sorted(REGISTRY)))
  return REGISTRY[task_cfg.name](task_cfg, seed)
