"""`train_and_evaluate(config, workdir)`: the whole training run, in sections.

1. Setup: task, model, optimiser, mesh, shardings (research/experiment.py's `Experiment`).
2. Sharded init (jit with out_shardings), or restore of the newest complete
   checkpoint onto the same shardings.
3. The loop (research/loop.py, shared with vmapped ensembles): one jit call runs
   `steps_per_call` steps through `lax.scan`, with data sampled on device from
   fold_in(seed, step) and the state donated; `_SoloStep` says what a solo run logs
   and that a non-finite loss stops it.
4. Probes at the end: curves as JSON, then figures rendered from the JSON.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import jax
import numpy as np
from absl import logging

from research import checkpoint as ckpt_lib
from research import cli, errors, init_from, keys, output_paths
from research import metrics as metrics_lib
from research import loop, models, optim, preemption, run_environment
from research import workdir as workdir_lib
from research import workdir_layout, workdir_lock, workdir_resume, workdir_vocabulary
from research.experiment import Experiment, TrainState
from research.preemption import Preempted  # noqa: F401 (entry points catch train.Preempted)


class NonFiniteLossError(errors.ResearchError, FloatingPointError):
  exit_code = errors.EXIT_NONFINITE

  def __init__(self, message: str, step: int | None = None):
    super().__init__(message)
    self.step = step  # the first step whose loss was not finite


def _enable_compile_cache(cache_dir: str) -> None:
  if not cache_dir:
    return
  path = os.path.expanduser(cache_dir)
  if "://" not in path:  # JAX would warn on every program and compile it again each start
    output_paths.check_workdir(path, flag="--config.train.compile_cache_dir")
  jax.config.update("jax_compilation_cache_dir", path)
  # Cache every program: on CPU even the small ones cost seconds to compile.
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def _new_to_every_process(workdir: Path) -> bool:
  """Whether the workdir did not exist before this run. In a multi-process run every process
  looks before any of them makes it (an all-gather between): process 0 undoes a refused
  start only in a workdir the run made, and when another process had made it first, process
  0 saw a workdir that was there before and left the refused start's .lock behind."""
  there = workdir.exists()
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    there = bool(np.any(multihost_utils.process_allgather(np.array(there))))
  return not there


def train_and_evaluate(config, workdir: str, *, devices=None, peers=()) -> dict:
  """Trains (or resumes) in `workdir`; returns the final metrics and probe paths.

  A workdir holds one run: a config that differs from its config.json outside
  workdir.RESUMABLE is refused before anything is written (ConfigChangedError), and a
  second process on the same workdir is refused while the first holds its lock. `peers`: the
  other runs of its sweep, whose recorded data a new run's must match."""
  output_paths.check_local(workdir, "workdir")  # before Path() makes gs://B the folder gs:/B
  workdir = Path(workdir)
  workdir_layout.check_layout(workdir)
  workdir_lib.check_same_config(workdir, config)
  workdir_layout.check_finished_has_checkpoints(workdir)
  fresh = _new_to_every_process(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  lock = (workdir_lock.Lock(workdir, "a training run") if jax.process_index() == 0
          else contextlib.nullcontext())
  # The handler first: once the lock names this process, SIGTERM never kills it mid-write.
  with preemption.Guard() as guard, lock:
    try:
      workdir_lib.check_same_config(workdir, config)  # again: it may have changed before the lock
      return _train(config, workdir, devices, guard, peers)
    except BaseException as e:
      if fresh and jax.process_index() == 0:  # refused (bad input): leave no run behind
        workdir_layout.remove_if_unstarted(
            workdir, refused=cli.out_of_memory(e) or cli.exit_code(e) == errors.EXIT_INPUT)
      raise


def _train(config, workdir: Path, devices, guard: preemption.Guard, peers=()) -> dict:
  _enable_compile_cache(config.train.compile_cache_dir)
  tr = config.train
  ckpt = ckpt_lib.Checkpointer.for_training(workdir / workdir_lib.CHECKPOINTS, tr)
  resuming = ckpt.latest_step() is not None
  if not resuming and config.get("init_from", ""):
    # A mistyped init_from is refused before the model and its data are built (it came
    # after their log lines); the parameters themselves are matched after init below.
    init_from.check_init_from(config.init_from)
  exp = Experiment(config, devices)
  workdir_vocabulary.check(workdir, exp.task)
  workdir_vocabulary.check_peers(workdir, exp.task, config, peers)
  logging.info("model: %s, %d params (%d non-embedding), %.3g train FLOPs/token; mesh %s",
               config.model.name, exp.num_params, exp.num_params - exp.num_embedding_params,
               exp.built.train_flops_per_token, dict(exp.mesh.shape))

  def precompile() -> float:
    """On CPU: the step compiled, and refused if this host's memory cannot hold it, before
    the state is built or restored (a pod preset on a laptop was killed by the kernel
    mid-run); after the cheaper refusals, which name their input more precisely."""
    first_call = loop.call_steps(tr, ckpt.latest_step() or 0)
    return (exp.precompile(first_call, what=f"this run ({exp.num_params:,} parameters)")
            if first_call > 0 else 0.0)

  environment, env_changes = run_environment.current(exp.mesh, config), []
  if resuming:
    workdir_resume.check_has_config(workdir)  # before the restore, which may seal a checkpoint
    precompile_s = precompile()
    abstract = ckpt_lib.abstract_like(exp.abstract_state, exp.state_sharding)
    state, prior, restored = ckpt.restore(abstract, seal=True)  # prior: its training seconds
    # The config is the source of truth for values it owns: a resumed run with a
    # new learning rate or weight decay uses them (shapes must still match).
    values = {"peak_lr": config.optim.learning_rate}
    if config.optim.name != "adam":
      values["weight_decay"] = config.optim.weight_decay
    state = state.replace(opt_state=optim.set_hyperparams(state.opt_state, **values))
    workdir_resume.check_not_past(restored, tr.num_steps, workdir)  # refused: nothing resumed
    workdir_resume.check_trains_changes(workdir, config, restored)  # a new lr with no step left
    env_changes = run_environment.compare(prior.get("environment"), environment, workdir)
    if jax.process_index() == 0:  # a damaged metrics.jsonl (...): refused before config.json
      workdir_resume.check_readable(workdir, restored, tr.log_every)
    logging.info("resumed from checkpoint at step %d", restored)
  else:
    models.check_max_len(config.model, exp.task.io)
    fresh_head = ""
    if config.get("init_from", ""):  # token ids that mean other tokens fit by shape alone
      fresh_head = init_from.check_vocabulary(config.init_from, exp.task, workdir)
    precompile_s = precompile()
    state, prior = exp.init_state(), {}
    if config.get("init_from", ""):  # fine-tuning: matching params from another run's checkpoint
      state = state.replace(params=init_from.init_params_from(
          config.init_from, state.params, exp.param_sharding, fresh_head))
  start = int(state.step)
  # Only now, with the state restored: a resume refused above leaves config.json as it was.
  if jax.process_index() == 0:
    workdir_resume.record_start(workdir, config, start, env_changes)
    workdir_vocabulary.record(workdir, exp.task, start)
  writer = metrics_lib.MetricsWriter(str(workdir), resume_step=start)

  peak, peak_src = metrics_lib.device_peak_flops(config.model.dtype, tr.peak_flops,
                                                 exp.matmul_precision)
  tokens_per_step = tr.batch_size * exp.task.tokens_per_example
  progress = metrics_lib.Progress(
      total_steps=tr.num_steps, examples_per_step=tr.batch_size, tokens_per_step=tokens_per_step,
      flops_per_step=exp.built.train_flops_per_token * tokens_per_step, peak_flops=peak,
      num_devices=len(exp.mesh.devices.flat))
  logging.info("peak %.3g FLOP/s per device (%s)", peak, peak_src)

  solo = _SoloStep(exp, writer, ckpt, precompile_s)
  try:
    out = loop.run(solo, state, start=start, train=tr, ckpt=ckpt, writers=[writer], guard=guard,
                   progress=progress, prior=prior, environment=environment)
  except NonFiniteLossError as e:
    # Recorded as an ensemble member's freeze is: without it the run read as "unfinished"
    # (research.results' state), like one still going or interrupted. A retry removes it
    # when it starts (workdir_resume.record_start).
    if jax.process_index() == 0:
      workdir_lib.write_json(workdir / workdir_lib.SUMMARY, {
          "final_step": e.step - 1, workdir_lib.NONFINITE_AT: e.step,
          "error": f"NonFiniteLossError: {e}"})
    raise
  state, step, last = out.state, out.step, writer.latest()
  if step == start and start:  # restored a finished run: its final metrics are on disk
    last = metrics_lib.logged_at(workdir, start)

  summary = {"final_step": step, "train_wall_s": out.train_wall_s, "compile_s": out.compile_s,
             "num_params": exp.num_params,
             "num_non_embedding_params": exp.num_params - exp.num_embedding_params,
             "train_flops_per_token": exp.built.train_flops_per_token,
             "tokens_seen": step * tokens_per_step} | {f"final_{k}": v for k, v in last.items()}
  with guard.interruptible(f"preempted (SIGTERM) while probing step {step}; the final "
                          "checkpoint is saved; rerun the same command to probe"):
    summary["probes"] = run_probes(exp, state, workdir)
    if step == start and start:  # nothing trained: the recorded training figures stand
      summary = workdir_resume.kept_training_record(workdir, summary)
      if not any(k.startswith("final_") and k != "final_step" for k in summary):
        # A run shortened to a step it was preempted at, between log steps: nothing measured
        # the model there, and a row of an earlier step would be mislabelled as final.
        logging.warning("no metrics row or summary holds step %d, where this run now ends "
                        "(saved between log steps?): summary.json gets no final_* values; its "
                        "probes measure the model at step %d", start, start)
    if jax.process_index() == 0:  # strict: a NaN probe figure is written as null
      workdir_lib.write_json(workdir / workdir_lib.SUMMARY, summary, strict=True)
  return summary


class _SoloStep:
  """One run's step in the shared loop (research/loop.py): a non-finite loss stops the run."""

  label = ""

  def __init__(self, exp: Experiment, writer, ckpt: ckpt_lib.Checkpointer, precompile_s: float):
    self.exp, self.writer, self.ckpt, self.precompile_s = exp, writer, ckpt, precompile_s

  def call(self, num_steps: int):
    return self.exp.multi_step_fn(num_steps)

  def check(self, first: int, end: int, m: dict) -> None:
    losses = np.asarray(m["loss"])
    if not np.all(np.isfinite(losses)):
      bad = first + int(np.argmax(~np.isfinite(losses)))
      # Said as it is: before the first save there is none (the message promised one in an
      # empty directory). A save still in flight holds checked losses; finished first, the
      # step named is on disk (a failed one ends the run as the disk failure, exit 5).
      self.ckpt.wait()
      saved = self.ckpt.latest_step()
      kept = (f"the last good checkpoint, step {saved}, is kept in {self.ckpt.directory}"
              if saved is not None else f"no checkpoint was saved before it (a rerun starts "
              "from step 0)")
      raise NonFiniteLossError(f"non-finite loss at step {bad} (window {first}-{end}); "
                               f"stopped; {kept}; lower the learning rate or add clipping",
                               step=bad)

  def log(self, end: int, m: dict, rates: dict) -> float:
    # Means over the last jit call's steps: the same rows whether or not the
    # run was interrupted and resumed in between.
    row = {k: float(np.mean(v)) for k, v in m.items()}
    self.writer.write(end, row)
    if rates:
      self.writer.write(end, rates, perf=True)
    return row["loss"]

  def evaluate(self, state: TrainState, step: int) -> None:
    periodic_eval(self.exp, state, step, self.writer)


def train_or_reuse(config, workdir: str, *, devices=None) -> dict:
  """`train_and_evaluate`, except that a finished run of this config in `workdir` is reused.

  Finished: workdir.finished_summary (the one rule). Calling train_and_evaluate on a
  finished run would restore it and probe again for nothing.
  """
  summary = workdir_lib.finished_summary(workdir, config)
  if summary is not None:
    logging.info("reusing the finished run in %s", workdir)
    return summary
  return train_and_evaluate(config, str(workdir), devices=devices)


def periodic_eval(exp: Experiment, state: TrainState, step: int, writer) -> None:
  """Dense in-training measurements (e.g. ICL score, attention progress measures).

  A task opts in by defining `evaluate(exp, params, key) -> {name: scalar}`;
  rows go to metrics.jsonl with an `eval_` prefix. The key depends on the step
  only, so a resumed run logs the same values.
  """
  evaluate = getattr(exp.task, "evaluate", None)
  if evaluate is None:
    return
  key = jax.random.fold_in(jax.random.fold_in(exp.root_key, keys.EVAL), step)
  with exp.precision():
    values = jax.device_get(evaluate(exp, state.params, key))
  writer.write(step, {f"eval_{k}": v for k, v in values.items()})


def run_probes(exp: Experiment, state: TrainState, workdir: Path) -> dict[str, str]:
  """Evaluates the task's probes; writes probes/*.json and renders figures/*.png."""
  key = jax.random.fold_in(exp.root_key, keys.PROBE)
  # probes that apply the model themselves (attention maps, ablations): the run's precision
  with exp.precision(), _task_code(exp, "probe", int(state.step)):
    results = exp.task.probe(exp.predict_fn(state.params), key, exp.config.probe,
                             step=int(state.step))
  _check_shape(exp.config.task.name, results)
  paths = {}
  if jax.process_index() != 0:
    return paths
  (workdir / workdir_lib.PROBES).mkdir(exist_ok=True)
  (workdir / "figures").mkdir(exist_ok=True)
  render = getattr(exp.task, "render", None)  # a task's figure; none drawn without one
  if render is None:
    logging.warning("task %r has no render(probe_json, png): its probes are written, no "
                    "figure", exp.config.task.name)
  for stem, result in results.items():
    path = workdir_lib.probe_file(workdir, stem)
    result = _plain(result, f"task {exp.config.task.name!r}'s probe result {stem!r}")
    workdir_lib.write_json(path, result, indent=1)
    fig = workdir / "figures" / f"{stem}.png"
    if render is not None:
      with workdir_lib.atomic_path(fig) as tmp, _task_code(exp, "render", int(state.step)):
        render(path, tmp)
    paths[stem] = str(path)
    logging.info("probe %s -> %s%s%s", stem, path, f", figure {fig}" if render else "",
                 "".join(f"; {k} {v:.4g}" if isinstance(v, float) else f"; {k} {v}"
                         for k, v in result.get("summary", {}).items()))
  return paths


@contextlib.contextmanager
def _task_code(exp: Experiment, what: str, step: int):
  """An exception in the task's probe or render, named as the task's: it read "an internal
  error, not your input: please report it" for a bug in a researcher's own task. Errors of
  the project's vocabulary, a preemption, running out of memory and I/O errors (a full disk
  under a figure: exit 5) pass as they are."""
  try:
    yield
  except Exception as e:  # noqa: BLE001 -- re-raised, named
    if isinstance(e, (errors.ResearchError, OSError, MemoryError)) or cli.is_preemption(e) or \
        cli.out_of_memory(e):
      raise
    raise errors.TaskCodeError(
        f"task {exp.config.task.name!r}'s {what} raised {type(e).__name__}: "
        f"{errors.one_line(e)[:300]}; the run's checkpoint at step {step} is "
        f"saved: once its {what} is fixed, the same command probes the run again without "
        "training (a shipped task's: please report it)") from e


def _check_shape(task: str, results) -> None:
  """What README "Adding a task" says a probe returns: {stem: result dict}, a result's
  "summary" a dict. None, a list, or a number for a summary ended in an AttributeError read
  as an internal error (one after its file was written)."""
  where = f"task {task!r}'s probe"
  if not isinstance(results, dict):
    raise errors.InputError(f"{where} returned a {type(results).__name__}; return a dict "
                            "{file stem: result dict} (README, Adding a task)")
  for stem, result in results.items():
    if not isinstance(result, dict) or not isinstance(result.get("summary", {}), dict):
      what = (f"a {type(result).__name__}" if not isinstance(result, dict) else
              f"a dict whose 'summary' is a {type(result['summary']).__name__}")
      raise errors.InputError(f"{where} result {stem!r} is {what}; each result is a dict, its "
                              "'summary' (if any) a dict of scalars (README, Adding a task)")


def _plain(obj, where: str):
  """A probe result as JSON holds it: numpy and JAX arrays and scalars (what a task's probe
  computes with) become lists and numbers; they ended a finished run's probes in a
  "not JSON serializable" internal error. Anything else JSON has no value for is named."""
  if isinstance(obj, dict):
    return {str(k): _plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
  if obj is None or isinstance(obj, (str, bool, int, float)):
    return obj
  if isinstance(obj, (np.ndarray, np.generic, jax.Array)):
    return _plain(obj.tolist(), where)  # an object array's items are checked too
  raise errors.InputError(f"{where} is of type {type(obj).__name__}, which a probe file cannot "
                          "hold; return numbers, strings, lists and dicts (numpy and JAX values "
                          "are converted)")
