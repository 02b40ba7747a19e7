"""Many small models in one program: runs that differ only in values train vmapped.

Parameters and optimiser state carry a leading member axis; per-member values
(seed, peak learning rate, weight decay) are arrays, so one compiled program
serves every member and no value change recompiles. Each member's metrics, periodic
evals, probes and final checkpoint go to its own workdir as a solo run would write them. A
regression task-pool size M (Raventós's task diversity) is a value too: the
program holds the largest pool and each member draws from its first M rows,
which are exactly the pool its solo run builds. A member
whose loss turns non-finite is frozen (its state stops changing, its logs stop) and
reported with the step and loss its solo run would report; the others continue. Training
runs through the solo run's loop (research/loop.py) with `_EnsembleStep`: the same deferred
metric read, cadences and SIGTERM handling (the stacked checkpoint holds every member);
what each member leaves in its folder at the end: research/ensemble_members.py.

Shape legend: M ensemble members, K steps per jit call.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.sharding import NamedSharding, PartitionSpec

from research import checkpoint as ckpt_lib
from research import metrics as metrics_lib
from research import host_memory, loop, models, optim, preemption, run_environment, sharding, tasks
from research import workdir as workdir_lib
from research import ensemble_members, workdir_lock, workdir_resume, workdir_vocabulary
from research.experiment import Experiment, TrainState
from research.train import _enable_compile_cache, periodic_eval

# Overrides that change only values, never shapes, and so can share a program.
VALUE_FIELDS = ("seed", "optim.learning_rate", "optim.weight_decay", "task.pool_size")
# Value fields the task reads: config key -> keyword of task.sample.
TASK_VALUES = {"task.pool_size": "pool_size"}


def can_ensemble(config, overrides: Sequence[dict]) -> tuple[bool, str]:
  """Whether these runs may train as one vmapped program, and if not, why: the reason alone,
  so that the caller's line names one fix (research.sweep: --ensemble=auto)."""
  keys = {k for o in overrides for k in o}
  other = sorted(keys - set(VALUE_FIELDS))
  if other:
    return False, f"overrides change {', '.join(other)} (ensembles vary only {VALUE_FIELDS})"
  pools = [o.get("task.pool_size", config.task.get("pool_size", 0)) for o in overrides]
  if "seed" in keys and any(pools):
    return False, ("the task pool is a function of the seed, so members of different seeds "
                   "cannot share one")
  if "seed" in keys and tasks.build_uses_seed(config.task):
    # The program holds one task, built with the base seed: members of other seeds would
    # train and be probed on its data (class means, Markov tables, splits), not their own.
    declared = hasattr(tasks.REGISTRY.get(config.task.name), "build_uses_seed")
    return False, (f"task {config.task.name!r} "
                   + ("builds its data from the seed (splits, tables or class means)" if declared
                      else "does not declare its data the same for every seed (a task class's "
                           "static build_uses_seed(cfg) returning False), so it is taken to build "
                           "it from the seed")
                   + ", and runs of different seeds cannot share one program's data")
  if "task.pool_size" in keys:
    if config.task.name != "regression":
      return False, f"task.pool_size is a regression value, not one of task {config.task.name!r}"
    if not all(p > 0 for p in pools):
      return False, ("task.pool_size=0 (a fresh task per prompt) cannot share a program with "
                     "finite pools")
  if "optim.weight_decay" in keys and config.optim.name == "adam":
    return False, "plain adam has no weight decay to vary"
  return True, ""


def _check_prefix_pools() -> None:
  """Member M's pool is the first M rows of the largest pool only when threefry keys
  generate each element from its index (partitionable mode): then a (M_max, D) draw
  starts with the (M, D) draw its solo run makes."""
  impl = jax.config.jax_default_prng_impl
  if not jax.config.jax_threefry_partitionable or impl not in ("threefry2x32", "threefry"):
    raise ValueError(
        "ensembles over task.pool_size need jax_threefry_partitionable=True and the threefry "
        f"PRNG (got partitionable={jax.config.jax_threefry_partitionable}, impl={impl!r}); "
        "unset JAX_THREEFRY_PARTITIONABLE / JAX_DEFAULT_PRNG_IMPL or run pool sizes sequentially")


def _member_sharding(tree_sharding: Any) -> Any:
  """Same sharding with a replicated leading member axis."""
  return jax.tree.map(lambda s: NamedSharding(s.mesh, PartitionSpec(None, *s.spec)),
                      tree_sharding)


class Ensemble:
  def __init__(self, config, members: Sequence[dict], devices=None):
    ok, why = can_ensemble(config, members)
    if not ok:
      raise ValueError(f"cannot ensemble: {why}; train these members as separate runs")
    self.members = list(members)
    self.base_config = config  # members' own configs derive from it (probes, config.json)
    get = lambda k, default: np.array([m.get(k, default) for m in members])
    # Task values: the program is built for the largest value (the largest pool)
    # and each member's own value is passed to task.sample as an array.
    self.task_values = {}
    for key, kwarg in TASK_VALUES.items():
      if any(key in m for m in members):
        _check_prefix_pools()
        values = get(key, config.task[key.split(".", 1)[1]]).astype(np.int32)
        config = _member_config(config, {key: int(values.max())})
        self.task_values[kwarg] = values
    self.config = config
    self.exp = Experiment(config, devices)
    self.size = len(members)
    self.seeds = get("seed", config.seed).astype(np.uint32)
    self.lrs = get("optim.learning_rate", config.optim.learning_rate).astype(np.float32)
    self.wds = get("optim.weight_decay", config.optim.weight_decay).astype(np.float32)
    self.state_sharding = {"state": _member_sharding(self.exp.state_sharding),
                           "frozen": sharding.replicated(self.exp.mesh),
                           "frozen_step": sharding.replicated(self.exp.mesh),
                           "frozen_loss": sharding.replicated(self.exp.mesh)}
    self._precompiled = {}  # num_steps -> the program precompile() compiled and checked

  def root_keys(self):
    return jax.vmap(jax.random.key)(jnp.asarray(self.seeds))

  def init_state(self) -> dict:
    def init(seeds):
      state = jax.vmap(self.exp.init_from_key)(jax.vmap(jax.random.key)(seeds))
      values = {"peak_lr": self.lrs}
      if self.config.optim.name != "adam":
        values["weight_decay"] = self.wds
      state = state.replace(opt_state=optim.set_hyperparams(state.opt_state, **values))
      return {"state": state, "frozen": jnp.zeros(self.size, bool),
              "frozen_step": jnp.full(self.size, -1, jnp.int32),
              "frozen_loss": jnp.zeros(self.size, jnp.float32)}
    return jax.jit(init, out_shardings=self.state_sharding)(jnp.asarray(self.seeds))

  def precompile(self, num_steps: int, abstract) -> float:
    """Experiment.precompile for the whole ensemble (`abstract`: its carry's shapes)."""
    compiled, seconds = host_memory.compile_checked(
        self.multi_step_fn(num_steps), (abstract,), devices=list(self.exp.mesh.devices.flat),
        enabled=self.config.train.get("host_memory_check", True),
        what=f"an ensemble of {self.size}")
    if compiled is not None:
      self._precompiled[num_steps] = compiled
    return seconds

  def multi_step_fn(self, num_steps: int):
    """The jitted carry -> (carry, (per-step metrics K x M, frozen flags M))."""
    if num_steps in self._precompiled:
      return self._precompiled.pop(num_steps)
    exp = self.exp

    def member_step(state: TrainState, root_key, frozen, task_values):
      new, m = exp.train_step(state, root_key, task_values)
      bad = ~jnp.isfinite(m["loss"])
      keep_old = frozen | bad
      new = jax.tree.map(lambda a, b: jnp.where(keep_old, a, b), state, new)
      return new.replace(step=state.step + 1), m, bad

    def one(carry, _):
      task_values = {k: jnp.asarray(v) for k, v in self.task_values.items()}
      new, m, bad = jax.vmap(member_step)(carry["state"], self.root_keys(), carry["frozen"],
                                          task_values)
      newly = bad & ~carry["frozen"]
      carry = {"state": new, "frozen": carry["frozen"] | bad,
               # Step labels count updates done (a solo run's non-finite loss at step s
               # is the loss of update s), so the bad update is the carried step + 1.
               "frozen_step": jnp.where(newly, carry["state"].step + 1, carry["frozen_step"]),
               "frozen_loss": jnp.where(newly, m["loss"], carry["frozen_loss"])}
      return carry, m

    def run(carry):
      # The flags after the call travel with its metrics: the host reads them one call
      # late (research/loop.py), when the carry has moved on.
      carry, m = jax.lax.scan(one, carry, None, length=num_steps)
      return carry, (m, carry["frozen"])

    return jax.jit(run, in_shardings=(self.state_sharding,),
                   out_shardings=(self.state_sharding, sharding.replicated(exp.mesh)),
                   donate_argnums=0)


def train_ensemble(config, members: Sequence[dict], workdir: str | Path,
                   member_dirs: Sequence[str | Path], *, devices=None,
                   finished: Sequence[bool] | None = None, peers=()) -> list[dict | None]:
  """Trains members as one program; member i writes to member_dirs[i] as a solo run.

  Checkpoints of the stacked state live in `workdir/checkpoints`; rerunning
  resumes from them. Returns one summary per member; None for a member `finished` marks
  (probed and summarised by an earlier session, which stopped while probing the others).
  The ensemble directory and every member directory are locked for the whole run, as a
  solo run locks its own. `peers`: the other runs of its sweep, whose recorded data a new
  member's must match (research/workdir_vocabulary.py `check_peers`).
  """
  workdir = Path(workdir)
  with contextlib.ExitStack() as stack:
    if jax.process_index() == 0:
      for d in [workdir, *map(Path, member_dirs)]:
        stack.enter_context(workdir_lock.Lock(d, "an ensemble"))
    guard = stack.enter_context(preemption.Guard())
    return _train_ensemble(config, members, workdir, member_dirs, devices, guard,
                           finished or [False] * len(members), peers)


def _train_ensemble(config, members, workdir: Path, member_dirs, devices,
                    guard: preemption.Guard, finished: Sequence[bool],
                    peers=()) -> list[dict | None]:
  workdir.mkdir(parents=True, exist_ok=True)
  _enable_compile_cache(config.train.compile_cache_dir)
  ens = Ensemble(config, members, devices)
  tr = config.train
  ckpt = ckpt_lib.Checkpointer.for_training(workdir / workdir_lib.CHECKPOINTS, tr)
  abstract = jax.eval_shape(ens.init_state)
  first_call = loop.call_steps(tr, ckpt.latest_step() or 0)
  if ckpt.latest_step() is None:
    models.check_max_len(config.model, ens.exp.task.io)  # first: it names the input
  precompile_s = ens.precompile(first_call, abstract) if first_call > 0 else 0.0  # train.py's check
  environment, env_changes = run_environment.current(ens.exp.mesh, config), []
  if ckpt.latest_step() is not None:
    carry, prior, start = ckpt.restore(ckpt_lib.abstract_like(abstract, ens.state_sharding), seal=True)
    workdir_resume.check_not_past(start, tr.num_steps, workdir)
    env_changes = run_environment.compare(prior.get("environment"), environment, workdir)
    logging.info("resumed ensemble of %d from checkpoint at step %d", ens.size, start)
  else:
    carry, start, prior = ens.init_state(), 0, {}
  dirs = [Path(d) for d in member_dirs]
  if jax.process_index() == 0:  # every member's files, before any member's config is written
    # A member frozen early has no rows to miss; the others are warned of a lost metrics.jsonl
    # as a solo run is (a member's, deleted, was silently begun again at the resume).
    frozen = np.asarray(jax.device_get(carry["frozen"]))
    for d, gone, member in zip(dirs, frozen, members):
      workdir_resume.check_readable(d, 0 if gone else start, tr.log_every)
      workdir_vocabulary.check(d, ens.exp.task)  # and the data it trained on (one task for all)
      workdir_vocabulary.check_peers(d, ens.exp.task, _member_config(config, member), peers)
  writers = []
  for d, member, done in zip(dirs, members, finished):
    if done:  # probed and summarised by an earlier session (start is the end): left as it is
      writers.append(_Untouched())
      continue
    d.mkdir(parents=True, exist_ok=True)
    if jax.process_index() == 0:
      workdir_lib.write_text(d / workdir_lib.CONFIG,
                             workdir_lib.config_json(_member_config(config, member)))
      workdir_resume.append_changes(d, start, env_changes)
      workdir_vocabulary.record(d, ens.exp.task, start)
    writers.append(metrics_lib.MetricsWriter(str(d), resume_step=start))
  views = [_member_experiment(ens, m) for m in members]
  # One compiled slice for every member (a traced index), keeping the parameters'
  # shardings: indexing leaf by leaf would compile a program per leaf shape, and a
  # host copy would not work for parameters sharded across processes.
  take = jax.jit(lambda s, i: jax.tree.map(lambda x: x[i], s),
                 out_shardings=ens.exp.state_sharding)

  tokens = tr.batch_size * ens.exp.task.tokens_per_example
  peak, _ = metrics_lib.device_peak_flops(config.model.dtype, tr.peak_flops,
                                          ens.exp.matmul_precision)
  progress = metrics_lib.Progress(
      total_steps=tr.num_steps, examples_per_step=tr.batch_size * ens.size,
      tokens_per_step=tokens * ens.size,
      flops_per_step=ens.exp.built.train_flops_per_token * tokens * ens.size,
      peak_flops=peak, num_devices=len(ens.exp.mesh.devices.flat))
  kind = _EnsembleStep(ens, writers, views, take, precompile_s)
  out = loop.run(kind, carry, start=start, train=tr, ckpt=ckpt, writers=writers, guard=guard,
                 progress=progress, prior=prior, environment=environment)
  carry, step, last = out.state, out.step, [w.latest() for w in writers]
  if step == start and start:  # restored a finished ensemble: final metrics are on disk
    last = [metrics_lib.logged_at(d, start) for d in dirs]
  times = {"train_wall_s": out.train_wall_s, "compile_s": out.compile_s}  # every session's
  fates = jax.device_get({k: carry[k] for k in ("frozen", "frozen_step", "frozen_loss")})
  kept = ckpt_lib.kept_steps(tr)
  if kept:
    ensemble_members.save_histories(workdir / workdir_lib.CHECKPOINTS,
                                    ckpt_lib.abstract_like(abstract, ens.state_sharding), take,
                                    dirs, finished, fates, kept, step)
  return [None if finished[i] else
          ensemble_members.finish(ens, i, fates, take(carry["state"], jnp.int32(i)), views[i],
                                  dirs[i], last[i], step=step, times=times, tokens=tokens,
                                  guard=guard, kept=kept)
          for i in range(ens.size)]


class _Untouched:
  """The writer of a finished member (research.sweep continues an ensemble only at its last
  step, so nothing is written): its metrics, perf and TensorBoard files stay as they are."""

  def write(self, step: int, metrics: dict, *, perf: bool = False) -> None:
    raise AssertionError(f"a finished ensemble member was given step {step}'s metrics")

  def sync(self) -> None:
    pass

  def close(self) -> None:
    pass

  def latest(self) -> dict:
    return {}


class _EnsembleStep:
  """The ensemble's step in the shared loop (research/loop.py): members are independent,
  so a non-finite loss stops none; its member is frozen in the program, stops logging here
  and is reported at the end (ensemble_members.finish)."""

  def __init__(self, ens: Ensemble, writers, views: list[Experiment], take, precompile_s: float):
    self.ens, self.writers, self.views, self.take = ens, writers, views, take
    self.precompile_s = precompile_s
    # The line's loss is the members' mean of what each logged (the mean over the call's steps,
    # as a solo run's line): the last step's alone printed 5.175 beside logged 4.73-5.29.
    self.label = f"ensemble of {ens.size}, its live members' mean: "  # a frozen one's left out

  def call(self, num_steps: int):
    return self.ens.multi_step_fn(num_steps)

  def check(self, first: int, end: int, out) -> None:
    del first, end, out

  def log(self, end: int, out, rates: dict) -> float:
    m, frozen = out  # K x M metrics, the frozen flags after the call
    rates = {f"ensemble_{r}": v for r, v in rates.items()}
    losses = []
    for i, w in enumerate(self.writers):
      if frozen[i]:  # a solo run stops at its non-finite loss and logs nothing after
        continue
      row = {name: float(np.mean(v[:, i])) for name, v in m.items()}
      w.write(end, row)
      losses.append(row["loss"])
      if rates:
        w.write(end, rates, perf=True)
    return float(np.mean(losses)) if losses else float("nan")  # every member frozen

  def evaluate(self, carry: dict, step: int) -> None:
    frozen = np.asarray(jax.device_get(carry["frozen"]))
    for i in np.flatnonzero(~frozen):
      periodic_eval(self.views[i], self.take(carry["state"], jnp.int32(i)), step, self.writers[i])


def _member_config(config, member: dict):
  """The member's config: the base with its values, set as a sweep sets them (research/cli.py)."""
  from research import cli
  return cli.apply_overrides(config, member, where="ensemble member")


def _member_experiment(ens: Ensemble, member: dict) -> Experiment:
  """The ensemble's experiment seen from one member (its seed for probe keys, and its
  own task when task values differ: its pool for dMMSE and the pool probe)."""
  exp = ens.exp
  view = object.__new__(Experiment)
  view.__dict__.update(exp.__dict__)
  view.config = _member_config(ens.base_config, member)
  view.root_key = jax.random.key(view.config.seed)
  if ens.task_values:
    view.task = tasks.build(view.config.task, view.config.seed)
  return view
