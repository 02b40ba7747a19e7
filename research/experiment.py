"""`Experiment`: task + model + optimiser + mesh, and the jitted functions that close over them
(sections 1-3 of research/train.py's docstring): sharded init, the train step with gradient
accumulation, the multi-step program, predict. research/train.py and research/ensemble.py run it;
research/aot.py compiles its multi-step program for a TPU topology.
"""
from __future__ import annotations

import contextlib
import math
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec

from research import host_memory, keys, models, optim, sharding, tasks


def matmul_precision(config) -> str:
  """train.matmul_precision resolved: "highest" or "default". "auto" makes float32 mean
  float32 everywhere: at JAX's default precision a float32 matmul is one bf16 pass on a TPU
  and TF32 on an NVIDIA GPU (about 3 significant digits), exact only on CPU, so a science
  preset run on a Colab TPU would not compute what it computes on a laptop. bfloat16 compute
  keeps XLA's default."""
  chosen = config.train.get("matmul_precision", "auto")
  if chosen != "auto":
    return chosen
  return "default" if config.model.get("dtype", "float32") == "bfloat16" else "highest"


def _rows_over(batch, axes):
  """PartitionSpecs for a batch: each array's rows over mesh `axes`, scalars replicated."""
  return jax.tree.map(lambda x: PartitionSpec(axes) if jnp.ndim(x) else PartitionSpec(), batch)


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any


class Experiment:
  """Task + model + optimiser + mesh: everything jitted functions close over."""

  def __init__(self, config, devices=None, task=None):
    """task: the built task (research.predict builds one from a saved vocabulary);
    default: tasks.build(config.task, config.seed)."""
    self.config = config
    self.task = task if task is not None else tasks.build(config.task, config.seed)
    io = self.task.io
    self.built = models.build(config.model, io)
    self.model = self.built.module
    self.tx = optim.make(config.optim, config.train.num_steps)
    self.mesh = sharding.make_mesh(config.mesh, devices)
    self.rules = sharding.rules_from_config(config.sharding.rules)
    self.root_key = jax.random.key(config.seed)
    self.matmul_precision = matmul_precision(config)
    # Shapes only (eval_shape, then host zeros): running the sampler eagerly here
    # would compile a dozen one-off programs on every start, cached or not.
    self._dummy_inputs = jax.tree.map(
        lambda s: np.zeros(s.shape, s.dtype),
        jax.eval_shape(lambda: self.task.model_inputs(
            self.task.sample(jax.random.key(0), jnp.int32(0), 1))))
    self._state_shapes()
    # Created here (jit is lazy) so that ensemble members' views of this Experiment
    # share one compiled predict program instead of tracing one each.
    # Replicated outputs: every process can read them (multi-process runs).
    def apply(p, x):
      with self.precision():
        return self.model.apply({"params": p}, x, train=False)
    self._apply = jax.jit(apply, out_shardings=sharding.replicated(self.mesh))
    # The same forward with the task's reduction of its outputs in one program (`post`, static:
    # the LM's per-token losses): the outputs stay inside it instead of coming back whole and
    # being reduced op by op (6p9b's eval held 3-4 copies of its 3.3 GB logits a chip).
    self._apply_then = jax.jit(lambda p, x, extra, post: post(apply(p, x), extra),
                               static_argnums=3, out_shardings=sharding.replicated(self.mesh))
    self._precompiled = {}  # num_steps -> the program precompile() compiled and checked

  def precision(self):
    """The context every traced use of the model runs in: its matmuls at
    `self.matmul_precision` (read when the program is traced)."""
    if self.matmul_precision == "highest":
      return jax.default_matmul_precision("highest")
    return contextlib.nullcontext()  # XLA's default, or what JAX_DEFAULT_MATMUL_PRECISION says

  # --- 1/2. shardings and initialisation -------------------------------------
  def _init_boxed(self, key):
    return self.model.init({"params": key}, self._dummy_inputs, train=False)["params"]

  def _state_shapes(self) -> None:
    boxed = jax.eval_shape(self._init_boxed, jax.random.key(0))
    self.param_sharding = sharding.param_shardings(boxed, self.mesh, self.rules)
    params_abs = nn.unbox(boxed)
    opt_abs = jax.eval_shape(self.tx.init, params_abs)
    opt_sharding = sharding.like_params(opt_abs, params_abs, self.param_sharding, self.mesh)
    rep = sharding.replicated(self.mesh)
    self.state_sharding = TrainState(step=rep, params=self.param_sharding, opt_state=opt_sharding)
    self.abstract_state = TrainState(step=jax.ShapeDtypeStruct((), jnp.int32),
                                     params=params_abs, opt_state=opt_abs)
    self.num_params = sum(math.prod(x.shape) for x in jax.tree.leaves(params_abs))
    emb = [x for p, x in jax.tree_util.tree_leaves_with_path(params_abs)
           if "embed" in jax.tree_util.keystr(p)]
    self.num_embedding_params = sum(math.prod(x.shape) for x in emb)

  def init_from_key(self, root_key) -> TrainState:
    """Fresh state for the run whose root key is `root_key` (pure; vmappable)."""
    params = nn.unbox(self._init_boxed(jax.random.fold_in(root_key, keys.INIT)))
    return TrainState(step=jnp.int32(0), params=params, opt_state=self.tx.init(params))

  def init_state(self) -> TrainState:
    return jax.jit(self.init_from_key, out_shardings=self.state_sharding)(self.root_key)

  # --- 3. the train step ------------------------------------------------------
  def loss_fn(self, params, batch, step, root_key, *, train: bool = True, microbatch=None):
    rngs = {"dropout": jax.random.fold_in(jax.random.fold_in(root_key, keys.DROPOUT), step)}
    if microbatch is not None:  # gradient accumulation: fresh dropout masks per microbatch
      rngs["dropout"] = jax.random.fold_in(rngs["dropout"], microbatch)
    # The mesh lets the model pin its activations to the batch axes (transformer.Block):
    # left to XLA, FSDP's sharded weights can pull them onto `embed`.
    with self._mesh_context(), self.precision():
      outputs = self.model.apply({"params": params}, self.task.model_inputs(batch),
                                 train=train, rngs=rngs)
    return self.task.loss(outputs, batch)

  def _mesh_context(self):
    """This Experiment's mesh as the trace's abstract mesh, unless one is set already (inside
    _per_data_shard's shard_map, whose mesh marks `data` manual)."""
    if not jax.sharding.get_abstract_mesh().empty:
      return contextlib.nullcontext()
    return jax.sharding.use_abstract_mesh(self.mesh.abstract_mesh)

  def train_step(self, state: TrainState, root_key, task_values=None):
    """One optimiser step of the run whose root key is `root_key` (vmappable).

    task_values: keyword values for task.sample (an ensemble's per-member task
    values, e.g. the regression pool size), traced so that no value recompiles.
    """
    with self.precision():  # the task's own matmuls too (regression targets y = x w)
      return self._train_step(state, root_key, task_values)

  def _train_step(self, state: TrainState, root_key, task_values):
    step = state.step
    data_key = jax.random.fold_in(jax.random.fold_in(root_key, keys.DATA), step)
    batch = self.task.sample(data_key, step, self.config.train.batch_size,
                             **(task_values or {}))
    (loss, aux), grads = self._loss_and_grads(state.params, batch, step, root_key)
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    params = jax.tree.map(jnp.add, state.params, updates)
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads),
               "learning_rate": optim.current_lr(opt_state)} | aux
    return TrainState(step=step + 1, params=params, opt_state=opt_state), metrics

  def _on_batch_axis(self, batch):
    """The batch's rows split over the batch axes the compiler partitions here (only `fsdp`
    inside _per_data_shard, whose shards are already split over `data`)."""
    return jax.lax.with_sharding_constraint(batch, _rows_over(batch, sharding.batch_axes()))

  def _loss_and_grads(self, params, batch, step, root_key):
    """(loss, aux), grads of the step's batch, in `train.grad_accum_steps` microbatches.

    Microbatch j holds rows j, j + A, j + 2A, ... (A microbatches): each device's shard
    of the batch feeds every microbatch, so the split moves no data between devices.
    Loss, metrics and gradients are means over microbatches: the whole batch's values
    for a loss that is a mean over examples, with one microbatch's activations alive.
    """
    accum = self.config.train.grad_accum_steps
    # In one microbatch the compiler places the data-parallel reduction itself, and under
    # bf16 compute it reduced the weights' gradients in bf16 (the dot's output type, before
    # the cast to the float32 parameters': half of 14m's gradient on v5e:2x2, a trial), where
    # the same run in microbatches reduces float32 sums. A float32 run is left to it.
    low_precision = str(self.config.model.get("dtype", "float32")) != "float32"
    with self._mesh_context():
      if (accum > 1 or low_precision) and self._accumulates_per_data_shard():
        return self._per_data_shard(params, batch, step, root_key, accum)
      return self._accumulate(params, batch, step, root_key, accum)

  def _accumulates_per_data_shard(self) -> bool:
    """Whether microbatch gradients add up on each data shard before one all-reduce a step
    (_per_data_shard): with data parallelism, parameters that no rule splits over `data` (a
    manual `data` axis cannot hold them), and a step that does not depend on how the batch's
    rows are split over `data`. Two things would make it depend on that, so they keep the
    compiler's placement: a model whose examples meet in its forward pass (batch-statistics
    norms would see one shard's rows, not the microbatch's), and dropout (a shard draws masks
    for its rows' shape alone, so the masks would change with `mesh.data`; the whole
    microbatch's draw, split by the compiler, is the same on any mesh)."""
    uses_data = lambda s: "data" in jax.tree.leaves(tuple(s.spec))
    return (self.mesh.shape["data"] > 1 and not self.built.batch_statistics
            and not self.config.model.get("dropout", 0.0)
            and not any(uses_data(s) for s in jax.tree.leaves(self.param_sharding)))

  def _accumulate(self, params, batch, step, root_key, accum):
    grad_fn = jax.value_and_grad(self.loss_fn, has_aux=True)
    if accum == 1:
      return grad_fn(params, self._on_batch_axis(batch), step, root_key)
    micro = jax.tree.map(
        lambda x: (x.reshape(x.shape[0] // accum, accum, *x.shape[1:]).swapaxes(0, 1)
                   if jnp.ndim(x) else jnp.broadcast_to(x, (accum,))), batch)
    # Sharded like the parameters: left to itself, XLA may all-reduce full gradients
    # into a replicated sum (under FSDP, a whole model's fp32 gradients on every chip).
    like_params = lambda tree: jax.lax.with_sharding_constraint(
        tree, jax.tree.map(lambda s: s.spec, self.param_sharding))

    def one(grad_sum, j_and_batch):
      j, mb = j_and_batch
      (loss, aux), grads = grad_fn(params, self._on_batch_axis(mb), step, root_key, microbatch=j)
      return jax.tree.map(jnp.add, grad_sum, like_params(grads)), (loss, aux)

    zeros = like_params(jax.tree.map(jnp.zeros_like, params))
    grad_sum, (losses, aux) = jax.lax.scan(one, zeros, (jnp.arange(accum), micro))
    mean = lambda tree: jax.tree.map(lambda x: jnp.mean(x, axis=0), tree)
    return (jnp.mean(losses), mean(aux)), jax.tree.map(lambda g: g / accum, grad_sum)

  def _per_data_shard(self, params, batch, step, root_key, accum):
    """_accumulate on each data shard's rows, then one all-reduce of the sums over `data`.

    Left to XLA, data parallelism with scanned layers all-reduces each layer's gradient
    inside the backward layer loop, so once per layer per microbatch (research.aot's
    comms/step, 160m on v5e:4x4 in 64 microbatches: 21 GB a step into each chip where the
    parameters' float32 gradients are 0.65 GB). In a shard_map over `data` they stay each
    shard's own until the end: 1.2 GB a step there. Microbatch j still holds the rows j, j + A,
    ... of the whole batch (a shard's rows start at a multiple of A), so the step is the same
    up to float rounding, except that a loss or metric that divides by a count varying
    between rows (the LM's masked tokens) becomes a mean of n x A pieces' ratios instead of
    A, as microbatches already made it. The `fsdp` and `tensor` axes stay the compiler's."""
    n = self.mesh.shape["data"]

    def local(params, batch, step, root_key):
      out = self._accumulate(params, batch, step, root_key, accum)
      return jax.tree.map(lambda x: jax.lax.psum(x, "data") / n, out)

    # check_vma=False: with JAX's tracking of what varies over `data`, the gradient of the
    # parameters (the same on every shard) would be all-reduced where it is computed, which
    # is what this avoids, and a model's scan from a constant carry (the LSTM's zero state)
    # into per-shard values would not trace. The one psum above is the only reduction.
    return jax.shard_map(local, mesh=self.mesh, axis_names={"data"}, check_vma=False,
                         in_specs=(PartitionSpec(), _rows_over(batch, ("data",)),
                                   PartitionSpec(), PartitionSpec()),
                         out_specs=PartitionSpec())(params, batch, step, root_key)

  def multi_step_jit(self, num_steps: int):
    """The jitted (state, root_key) -> (state, per-step metrics) running `num_steps` steps.

    research/aot.py lowers this same function for a TPU topology it does not have.
    """
    # The root key is an argument, not a constant baked into the program: runs that
    # differ only in seed then share one compiled program (and its persistent cache
    # entry), so a sequential seed sweep compiles once.
    def run(state, root_key):
      return jax.lax.scan(lambda st, _: self.train_step(st, root_key), state, None,
                          length=num_steps)
    return jax.jit(run, in_shardings=(self.state_sharding, sharding.replicated(self.mesh)),
                   out_shardings=(self.state_sharding, sharding.replicated(self.mesh)),
                   donate_argnums=0)

  def precompile(self, num_steps: int, *, what: str) -> float:
    """On CPU, compiles the `num_steps` program before any state exists and refuses
    (InputError) one that the host's memory cannot hold (research/host_memory.py);
    multi_step_fn then calls that program. Returns the seconds it took (0 if not compiled)."""
    compiled, seconds = host_memory.compile_checked(
        self.multi_step_jit(num_steps), (self.abstract_state, self.root_key),
        devices=list(self.mesh.devices.flat),
        enabled=self.config.train.get("host_memory_check", True), what=what)
    if compiled is not None:
      self._precompiled[num_steps] = compiled
    return seconds

  def multi_step_fn(self, num_steps: int):
    """One jit call running `num_steps` steps; returns per-step metrics."""
    compiled = self._precompiled.pop(num_steps, None) or self.multi_step_jit(num_steps)
    return lambda state: compiled(state, self.root_key)

  def predict_fn(self, params):
    """inputs -> outputs with fixed params; one compiled program per Experiment. Its `then(post)`
    is inputs, extra -> post(outputs, extra) in one program (the task's eval reduction)."""
    fn = lambda inputs: self._apply(params, inputs)
    fn.then = lambda post: lambda inputs, extra: self._apply_then(params, inputs, extra, post)
    return fn
