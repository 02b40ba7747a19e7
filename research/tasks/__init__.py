"""Task registry: `config.task.name` -> task class.

A task owns what a paper varies: how batches are sampled (on device, from
`fold_in(seed, step)`), how a batch becomes model inputs (`model_inputs`), the
loss, and its probes and baselines. See `regression.py` for the interface:
  io: research.models.IOSpec            what the model reads and writes
  tokens_per_example: int               for throughput and MFU
  sample(key, step, batch_size) -> dict jittable batch; `key` is fold_in(the data key, step)
                                        already, `step` a traced int32 (never a Python int)
  model_inputs(batch) -> array          model input
  loss(outputs, batch) -> (scalar, {name: scalar})   the scalars are metrics.jsonl's columns
  probe(predict_fn, key, probe_cfg, step=) -> {file stem: result}: each result a dict JSON
                                        holds (numpy / JAX values are converted), written to
                                        probes/STEM.json; its "summary" dict of scalars is the
                                        run's `probe` log line and research.results'
                                        probes.STEM.* columns
  check_config(cfg)                     (static; without it no config.task field is checked
                                        before the run, and a warning says so) raises
                                        fields.ConfigError, one line, on the first invalid
                                        config.task field
  render(probe_path, out_png)           (static, optional) the figure of each probe file,
                                        given the path of its JSON (read it with json.load);
                                        without it the probes' JSON is written, no figure
  build_uses_seed(cfg) -> bool          (static, optional) whether building the task draws
                                        from the seed (splits, tables, pools); absent = yes.
                                        Seed ensembles need a seed-free build.
"""
from __future__ import annotations

from research.tasks.arithmetic import ArithmeticTask
from research.tasks.classification import ClassificationTask
from research.tasks.ginc import GincTask
from research.tasks.image_classification import ImageClassificationTask
from research.tasks.induction import InductionTask
from research.tasks.lm import LMTask
from research.tasks.regression import RegressionTask
from research.tasks.text_classification import TextClassificationTask

REGISTRY = {
    "regression": RegressionTask,
    "arithmetic": ArithmeticTask,
    "classification": ClassificationTask,
    "image_classification": ImageClassificationTask,
    "induction": InductionTask,
    "ginc": GincTask,
    "lm": LMTask,
    "text_classification": TextClassificationTask,
}


def build(task_cfg, seed: int):
  if task_cfg.name not in REGISTRY:
    raise ValueError(f"config.task.name={task_cfg.name!r} is not valid; choose one of: "
                     + ", ".join(sorted(REGISTRY)))
  return REGISTRY[task_cfg.name](task_cfg, seed)


def build_uses_seed(task_cfg) -> bool:
  """Whether the task built from `task_cfg` depends on the seed beyond its batches (which
  always do): a task that does not say is assumed to, the safe answer for ensembles."""
  rule = getattr(REGISTRY.get(task_cfg.name), "build_uses_seed", None)
  return True if rule is None else bool(rule(task_cfg))


def check_config(cfg) -> None:
  """The task's own field checks (research/config_check.py calls this before anything compiles)."""
  rule = getattr(REGISTRY[cfg.task.name], "check_config", None)
  if rule is not None:
    rule(cfg)
  elif cfg.task.name not in _UNCHECKED_SAID:  # as a missing render is said: once a process
    _UNCHECKED_SAID.add(cfg.task.name)
    from absl import logging
    logging.warning("task %r has no check_config(cfg): none of its config.task values is "
                    "checked before the run (README, Adding a task)", cfg.task.name)


_UNCHECKED_SAID: set = set()
