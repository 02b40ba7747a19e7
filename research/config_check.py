"""Config validation that runs before anything compiles.

Every failure is a `ConfigError` whose message is one line naming the field,
the bad value and the fix; every entry point prints it and exits 2 (research/cli.py).
Unknown fields and wrong types are caught earlier, by research/cli.py's override setter.
"""
from __future__ import annotations

import math

from research import models, optim, sharding, tasks
from research.errors import InputError
from research.models import lstm, resnet, transformer
from research.tasks import arithmetic, classification, image_classification, omniglot, regression


class ConfigError(InputError):
  pass


def _choice(cfg, section: str, field: str, valid) -> None:
  value = cfg[section][field]
  if value not in valid:
    raise ConfigError(f"config.{section}.{field}={value!r} is not valid; choose one of: "
                      + ", ".join(map(str, valid)))


def _positive(cfg, section: str, *fields: str, allow_zero: bool = False) -> None:
  for field in fields:
    value = cfg[section][field]
    if not math.isfinite(value):
      raise ConfigError(f"config.{section}.{field}={value!r} must be a finite number")
    if value < 0 or (value == 0 and not allow_zero):
      raise ConfigError(f"config.{section}.{field}={value!r} must be "
                        + ("non-negative" if allow_zero else "positive"))


def _regression(cfg) -> None:
  t = cfg.task
  _choice(cfg, "task", "function", regression.FUNCTIONS)
  _positive(cfg, "task", "n_dims", "relu_hidden", "tree_depth")
  _positive(cfg, "task", "noise_std", "pool_size", allow_zero=True)
  if t.n_points < 2:
    raise ConfigError(f"config.task.n_points={t.n_points} must be at least 2")
  if t.function == "noisy_linear" and t.noise_std <= 0:
    raise ConfigError("config.task.noise_std must be > 0 for function='noisy_linear' "
                      "(Raventós: 0.5); or use function='linear'")
  if t.function == "sparse_linear" and not 1 <= t.sparsity <= t.n_dims:
    raise ConfigError(f"config.task.sparsity={t.sparsity} must be in [1, n_dims={t.n_dims}]")
  if t.curriculum.enabled:
    for f in ("dims_start", "points_start", "every"):
      if t.curriculum[f] <= 0:
        raise ConfigError(f"config.task.curriculum.{f}={t.curriculum[f]} must be positive")


def _arithmetic(cfg) -> None:
  t = cfg.task
  _choice(cfg, "task", "operation", arithmetic.OPERATIONS)
  _positive(cfg, "task", "num_digits", "eval_problems", "num_key_freqs")
  _positive(cfg, "task", "num_shots", allow_zero=True)
  modular = t.operation.startswith("mod_")
  if modular and t.modulus < 2:
    raise ConfigError(f"config.task.modulus={t.modulus} must be at least 2")
  if not 0 < t.train_fraction <= 1:
    raise ConfigError(f"config.task.train_fraction={t.train_fraction} must be in (0, 1]")
  if not modular and not 0 < t.held_out_fraction < 1:
    raise ConfigError(f"config.task.held_out_fraction={t.held_out_fraction} must be in (0, 1)")
  if modular and arithmetic.num_train_pairs(t.modulus, t.train_fraction) < 1:
    raise ConfigError(f"config.task.train_fraction={t.train_fraction} leaves no training pairs")
  if t.operation == "mod_add" and t.num_key_freqs > (t.modulus - 1) // 2:
    raise ConfigError(f"config.task.num_key_freqs={t.num_key_freqs} exceeds the "
                      f"{(t.modulus - 1) // 2} frequencies of modulus {t.modulus}")
  freqs = list(t.key_freqs)
  if len(set(freqs)) != len(freqs) or any(not 1 <= f <= (t.modulus - 1) // 2 for f in freqs):
    raise ConfigError(f"config.task.key_freqs={tuple(freqs)} must be distinct frequencies in "
                      f"[1, (modulus-1)/2 = {(t.modulus - 1) // 2}]; () = the largest per eval")
  if t.full_batch:
    if not modular or t.num_shots:
      raise ConfigError("config.task.full_batch=True needs a mod_* operation and num_shots=0")
    n = arithmetic.num_train_pairs(t.modulus, t.train_fraction)
    if cfg.train.batch_size != n:
      raise ConfigError(f"config.train.batch_size={cfg.train.batch_size} must equal the "
                        f"{n} training pairs (int(modulus^2 * train_fraction)) when "
                        f"config.task.full_batch=True; set --config.train.batch_size={n}")


def _model_extras(cfg) -> None:
  """Fields of the LSTM and of the ResNet embedder / classifier, when the config has them."""
  m = cfg.model
  if m.name == "lstm":
    _choice(cfg, "model", "cell", lstm.CELLS)
    _positive(cfg, "model", "lstm_width", "lstm_layers", allow_zero=True)
  if "resnet" in m:
    r = m.resnet
    if r.norm not in resnet.NORMS:
      raise ConfigError(f"config.model.resnet.norm={r.norm!r} is not valid; choose one of: "
                        + ", ".join(resnet.NORMS))
    if not len(r.blocks) == len(r.channels) == len(r.strides) or not len(r.blocks):
      raise ConfigError(f"config.model.resnet.blocks/channels/strides need one entry per stage; got "
                        f"{tuple(r.blocks)}, {tuple(r.channels)}, {tuple(r.strides)}")
    if min(tuple(r.blocks) + tuple(r.channels) + tuple(r.strides)) < 1:
      raise ConfigError("config.model.resnet.blocks/channels/strides must be positive")


def _classification(cfg) -> None:
  t = cfg.task
  _choice(cfg, "task", "source", classification.SOURCES)
  _choice(cfg, "task", "loss_on", classification.LOSS_ON)
  _positive(cfg, "task", "num_context")
  _positive(cfg, "task", "num_labels", "burstiness", "ways", "zipf_alpha", "n_common",
            allow_zero=True)
  for f in ("p_bursty", "novel_fraction"):
    if not 0 <= t[f] <= 1:
      raise ConfigError(f"config.task.{f}={t[f]} must be in [0, 1]")
  n, b = t.num_context, t.burstiness
  ways = t.ways or (n // b if b else 0)
  if b and ways * b > n:
    raise ConfigError(f"config.task.ways={ways} x burstiness={b} exceeds num_context={n}")
  if t.novel_fraction > 0 and (not b or t.source != "gaussian"):
    raise ConfigError("config.task.novel_fraction > 0 needs source='gaussian' and burstiness > 0")
  if t.source == "gaussian":
    _positive(cfg, "task", "num_classes", "dim")
    _positive(cfg, "task", "epsilon", allow_zero=True)
    num_train = t.num_classes
    if t.n_common >= t.num_classes:
      raise ConfigError(f"config.task.n_common={t.n_common} must be below num_classes={t.num_classes}")
  else:
    _positive(cfg, "task", "n_rare", "n_holdout")
    _positive(cfg, "task", "pixel_noise", allow_zero=True)
    _choice(cfg, "task", "image_size", omniglot.IMAGE_SIZES)
    _choice(cfg, "task", "exemplars", ("all", "single"))
    num_train = t.n_rare + t.n_common
  labels = t.num_labels or num_train
  p = cfg.probe
  pways = p.ways or ways or 2
  pshots = p.shots or n // pways
  if pways * pshots > n:
    raise ConfigError(f"config.probe.ways={pways} x shots={pshots} exceeds num_context={n}")
  distinct = max(pways + n - pways * pshots, ways + n - ways * b if b else 0)
  if labels < distinct:
    raise ConfigError(f"config.task.num_labels={labels} is below the {distinct} distinct classes a "
                      "context can hold (ways + fillers); raise it or lower probe.ways / num_context")
  if t.source == "omniglot" and t.n_holdout < pways + (n - pways * pshots > 0):
    raise ConfigError(f"config.task.n_holdout={t.n_holdout} is too few for {pways}-way ICL probes "
                      "(fillers need one more)")
  if b and num_train - t.n_common < max(ways, pways):
    raise ConfigError(f"config.task: {num_train - t.n_common} rare classes cannot fill "
                      f"{max(ways, pways)}-way bursty contexts; add classes or lower ways")
  _positive(cfg, "probe", "eval_sequences")
  _model_extras(cfg)


def _image_classification(cfg) -> None:
  _choice(cfg, "task", "augment", image_classification.AUGMENTS)
  _positive(cfg, "task", "num_classes", "eval_examples", allow_zero=True)
  if cfg.model.name != "resnet":
    raise ConfigError(f"config.model.name={cfg.model.name!r} is not valid for "
                      "task.name='image_classification'; choose one of: resnet")
  _model_extras(cfg)


def _text_common(cfg, sources, tokenizers) -> None:
  """Fields shared by the text tasks (research/tasks/lm.py, text_classification.py)."""
  from research.data import text as text_lib
  t = cfg.task
  _choice(cfg, "task", "source", sources)
  _choice(cfg, "task", "tokenizer", tokenizers)
  _choice(cfg, "task", "placement", text_lib.PLACEMENTS)
  if t.seq_len < 2:
    raise ConfigError(f"config.task.seq_len={t.seq_len} must be at least 2")
  if t.source in ("file", "csv") and not t.path:
    raise ConfigError(f"config.task.source={t.source!r} needs config.task.path=FILE")
  if t.source == "tfds" and not t.dataset:
    raise ConfigError("config.task.source='tfds' needs config.task.dataset=NAME")
  if cfg.model.name not in ("transformer", "lstm"):
    raise ConfigError(f"config.model.name={cfg.model.name!r} is not valid for "
                      f"task.name={t.name!r}; choose one of: lstm, transformer")
  init_from = cfg.get("init_from", "")
  if init_from:
    from pathlib import Path
    if not (Path(init_from).expanduser() / "checkpoints").is_dir():
      raise ConfigError(f"config.init_from={init_from!r} has no checkpoints/ directory; "
                        "point it at the --workdir of a finished run")
  _data_file(cfg)
  _model_extras(cfg)


def _data_file(cfg) -> None:
  """A text or CSV file the task reads is read now: its errors (missing, empty, a missing
  column, one class, a broken quote) end the command before the workdir is touched."""
  from research.data import text as text_lib
  t = cfg.task
  try:
    if t.source == "file":
      text_lib.read_file(t.path)
    elif t.source == "csv":
      _, labels = text_lib.read_csv(t.path, t.text_column, t.label_column)
      if len(set(labels)) < 2:
        raise InputError(f"config.task.path={t.path!r}: every row has the label {labels[0]!r} "
                         f"(column {t.label_column!r}); a classifier needs at least 2 classes")
  except InputError as e:
    raise ConfigError(str(e)) from None


def _lm(cfg) -> None:
  from research.data import text as text_lib
  from research.tasks import lm
  _text_common(cfg, lm.SOURCES, lm.LM_TOKENIZERS)
  _choice(cfg, "task", "window", lm.WINDOWS)
  _positive(cfg, "task", "max_documents", allow_zero=True)
  if cfg.task.source == "file" and not 0 < cfg.task.valid_fraction < 1:
    raise ConfigError(f"config.task.valid_fraction={cfg.task.valid_fraction} must be in (0, 1)")
  if cfg.task.source == "synthetic" and cfg.task.get("vocab_size", 0) <= text_lib.NUM_SPECIAL:
    raise ConfigError(f"config.task.vocab_size={cfg.task.get('vocab_size', 0)} must exceed the "
                      f"{text_lib.NUM_SPECIAL} special ids for source='synthetic'")
  _positive(cfg, "probe", "eval_sequences", "generate_tokens", "temperature", allow_zero=True)


def _text_classification(cfg) -> None:
  from research.data import text as text_lib
  from research.tasks import text_classification as tc
  _text_common(cfg, tc.SOURCES, text_lib.TOKENIZERS)
  _choice(cfg, "task", "readout", tc.READOUTS)
  _positive(cfg, "task", "max_examples", allow_zero=True)
  if cfg.task.source == "csv" and not 0 < cfg.task.test_fraction < 1:
    raise ConfigError(f"config.task.test_fraction={cfg.task.test_fraction} must be in (0, 1)")
  if cfg.task.tokenizer == "word" and cfg.task.vocab_size <= text_lib.NUM_SPECIAL:
    raise ConfigError(f"config.task.vocab_size={cfg.task.vocab_size} must exceed the "
                      f"{text_lib.NUM_SPECIAL} special ids for tokenizer='word'")


TASK_CHECKS = {"regression": _regression, "arithmetic": _arithmetic,
               "classification": _classification, "image_classification": _image_classification,
               "lm": _lm, "text_classification": _text_classification}


def _induction(cfg) -> None:
  t = cfg.task
  _positive(cfg, "task", "vocab_size", "span_len", "eval_sequences", "repeated_sequences")
  _positive(cfg, "task", "markov_scale", "skip_scale", allow_zero=True)
  if t.seq_len < 16:
    raise ConfigError(f"config.task.seq_len={t.seq_len} must be at least 16")
  if t.span_len > t.seq_len // 4:
    raise ConfigError(f"config.task.span_len={t.span_len} must be at most seq_len/4 = {t.seq_len // 4}")
  if not 0 <= t.repeat_prob <= 1:
    raise ConfigError(f"config.task.repeat_prob={t.repeat_prob} must be in [0, 1]")
  if cfg.model.name != "transformer":
    raise ConfigError(f"config.model.name={cfg.model.name!r} is not valid for task.name="
                      "'induction' (attention scores need attention maps); choose one of: transformer")
  _positive(cfg, "probe", "num_sequences")


def _ginc(cfg) -> None:
  t = cfg.task
  _positive(cfg, "task", "n_entities", "n_concepts", "n_docs", "trans_temp", "start_temp")
  _positive(cfg, "task", "n_ood_concepts", allow_zero=True)
  if t.n_properties < 2:
    raise ConfigError(f"config.task.n_properties={t.n_properties} must be at least 2 "
                      "(property 0 emits the delimiter)")
  if t.vocab_size < 2:
    raise ConfigError(f"config.task.vocab_size={t.vocab_size} must be at least 2 (delimiter + a word)")
  if not 0 <= t.value_identity_coeff <= 1:
    raise ConfigError(f"config.task.value_identity_coeff={t.value_identity_coeff} must be in [0, 1]")
  if t.get("prompt_mode", "sample") not in ("sample", "argmax"):
    raise ConfigError(f"config.task.prompt_mode={t.prompt_mode!r} is not a prompt mode; choose "
                      "'sample' (Xie's released prompts) or 'argmax' (most likely path)")
  if not 2 <= t.seq_len <= t.doc_len:
    raise ConfigError(f"config.task.seq_len={t.seq_len} must be in [2, doc_len={t.doc_len}]")
  if min(cfg.probe.example_lengths, default=0) < 2:
    raise ConfigError(f"config.probe.example_lengths={tuple(cfg.probe.example_lengths)} must be "
                      "non-empty, each >= 2 (k-1 inputs + 1 label)")
  _model_extras(cfg)


TASK_CHECKS.update({"induction": _induction, "ginc": _ginc})


def _model(cfg) -> None:
  m = cfg.model
  _choice(cfg, "model", "name", sorted(models.REGISTRY))
  _positive(cfg, "model", "num_layers", "width", "num_heads", "mlp_ratio")
  _positive(cfg, "model", "max_len", allow_zero=True)
  _choice(cfg, "model", "positions", ("learned", "rotary", "none"))
  _choice(cfg, "model", "dtype", ("float32", "bfloat16"))
  if m.width % m.num_heads:
    raise ConfigError(f"config.model.width={m.width} is not divisible by "
                      f"config.model.num_heads={m.num_heads}; pick a width that is a multiple")
  if m.positions == "rotary" and (m.width // m.num_heads) % 2:
    raise ConfigError("config.model.positions='rotary' needs an even head width "
                      f"(width/num_heads = {m.width // m.num_heads})")
  if not 0 <= m.dropout < 1:
    raise ConfigError(f"config.model.dropout={m.dropout} must be in [0, 1)")
  if m.name == "transformer":
    _transformer_features(cfg)


def _transformer_features(cfg) -> None:
  m = cfg.model
  _choice(cfg, "model", "remat", ("none", *transformer.REMAT_POLICIES))
  _choice(cfg, "model", "attention", ("explicit", "fused"))
  if m.attention == "fused" and m.dropout > 0:
    raise ConfigError(f"config.model.attention='fused' has no attention dropout but "
                      f"config.model.dropout={m.dropout}; use attention='explicit' or dropout=0")


def _optim(cfg) -> None:
  _choice(cfg, "optim", "name", optim.VALID["name"])
  _choice(cfg, "optim", "schedule", optim.VALID["schedule"])
  _positive(cfg, "optim", "learning_rate")
  _positive(cfg, "optim", "warmup_steps", "decay_steps", "weight_decay", "momentum",
            "grad_clip_norm", "end_lr_fraction", allow_zero=True)
  _positive(cfg, "optim", "eps")
  for f in ("b1", "b2"):
    if not 0 <= cfg.optim[f] < 1:
      raise ConfigError(f"config.optim.{f}={cfg.optim[f]!r} must be in [0, 1)")
  if not 0 <= cfg.optim.end_lr_fraction <= 1:
    raise ConfigError(f"config.optim.end_lr_fraction={cfg.optim.end_lr_fraction!r} must be in [0, 1]")
  _schedule(cfg)
  if cfg.optim.name == "adam" and cfg.optim.weight_decay > 0:
    raise ConfigError("config.optim.weight_decay > 0 needs config.optim.name='adamw' "
                      "(decoupled decay) or 'sgd'; plain adam takes no weight decay")


def _schedule(cfg) -> None:
  """The schedule's phases fit together (research/optim.py would refuse them at build time,
  after compilation started)."""
  o, steps = cfg.optim, cfg.train.num_steps
  warmup, decay_end = int(o.warmup_steps), int(o.decay_steps) or int(steps)
  if o.schedule in ("warmup_cosine", "warmup_linear") and decay_end <= warmup:
    where = (f"config.optim.decay_steps={o.decay_steps}" if o.decay_steps else
             f"config.train.num_steps={steps} (decay ends there when optim.decay_steps=0)")
    raise ConfigError(f"{where} must exceed config.optim.warmup_steps={warmup} for "
                      f"schedule={o.schedule!r}; lengthen the decay or shorten the warmup")
  if o.schedule == "warmup_rsqrt" and warmup == 0:
    raise ConfigError("config.optim.warmup_steps=0 with schedule='warmup_rsqrt' would give a "
                      "zero learning rate; set warmup_steps > 0")


def _train(cfg, num_devices: int) -> None:
  tr = cfg.train
  _positive(cfg, "train", "batch_size", "num_steps", "steps_per_call", "log_every",
            "keep_checkpoints")
  _positive(cfg, "train", "checkpoint_every", "eval_every", "peak_flops", allow_zero=True)
  for f in ("log_every", "checkpoint_every", "eval_every"):
    if tr[f] % tr.steps_per_call:
      raise ConfigError(f"config.train.{f}={tr[f]} must be a multiple of "
                        f"config.train.steps_per_call={tr.steps_per_call}")
  try:
    shape = sharding.mesh_shape(cfg.mesh, num_devices)
  except sharding.MeshError as e:
    raise ConfigError(str(e)) from None
  batch_shards = shape[0] * shape[1]
  if tr.batch_size % batch_shards:
    raise ConfigError(f"config.train.batch_size={tr.batch_size} is not divisible by "
                      f"mesh data x fsdp = {batch_shards}; use a multiple of it")
  _positive(cfg, "train", "grad_accum_steps")
  # Every microbatch is spread over all of data x fsdp, like the whole batch.
  if tr.batch_size % (tr.grad_accum_steps * batch_shards):
    raise ConfigError(f"config.train.batch_size={tr.batch_size} is not divisible by "
                      f"config.train.grad_accum_steps x mesh data x fsdp = "
                      f"{tr.grad_accum_steps} x {batch_shards}; use a multiple of it")


def validate(cfg, num_devices: int) -> None:
  """Raises ConfigError (one line) on the first invalid field."""
  if cfg.task.name not in tasks.REGISTRY:
    raise ConfigError(f"config.task.name={cfg.task.name!r} is not valid; choose one of: "
                      + ", ".join(sorted(tasks.REGISTRY)))
  TASK_CHECKS.get(cfg.task.name, lambda c: None)(cfg)
  _model(cfg)
  _optim(cfg)
  _train(cfg, num_devices)
  _positive(cfg, "probe", *(f for f in ("num_prompts", "batch_size", "bootstrap", "knn")
                            if f in cfg.probe))  # the fields a task's probe uses
  for f, low in (("lasso_alpha", 0.0), ("ridge_lambda", -1.0)):
    if f in cfg.probe and not (math.isfinite(cfg.probe[f]) and cfg.probe[f] >= low):
      raise ConfigError(f"config.probe.{f}={cfg.probe[f]!r} must be a finite number >= {low}")
