"""Next-token language modelling on real text (a local file, a TFDS corpus, or the Python
standard library's own source, which every machine has).

The corpus is read and tokenised once on the host (byte- or character-level,
`research/data/text.py`), documents are packed into one token stream with EOS
between them, and the stream is held as an array jitted code indexes (on device
when small, else in host memory). `sample` draws, from `fold_in(seed, step)`:
  window='random'  B start offsets uniformly in the training stream, or
  window='chunks'  B of its non-overlapping (L+1)-token rows, with replacement,
and returns the (L+1)-token windows; inputs are the first L tokens, targets the
last L. A batch is a pure function of (seed, step), so the step counter in the
checkpoint is the whole iterator state and a resumed run is exact.

Validation: the first `probe.eval_sequences` non-overlapping windows of the
held-out text (the eval split, or the file's last `valid_fraction`), logged as
`eval_valid_loss` every train.eval_every steps and written to probes/lm.json
with the loss by position and a sampled continuation.

Shape legend: B batch, L sequence length, V vocabulary, N tokens in the stream.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from research.data import text as text_lib
from research.data import text_files
from research.data import tfds_arrays
from research.errors import InputError
from research.models import IOSpec
from research.tasks.fields import ConfigError, check_text_task, choice, positive

SOURCES = ("file", "tfds", "stdlib", "synthetic")
WINDOWS = ("random", "chunks")
LM_TOKENIZERS = ("byte", "char")


def load_corpus(cfg) -> tuple[list[str], list[str], dict]:
  """(train documents, eval documents, description) from config.task (deterministic); the
  description (sizes; the file's or stdlib's SHA-256, TFDS's name/config/version) is logged,
  written to probes/lm.json and recorded in the workdir (research/workdir_vocabulary.py)."""
  if cfg.source == "file":
    text, digest = text_files.read_file(cfg.path)
    train, valid = text_lib.split_text(text, cfg.valid_fraction)
    return [train], [valid], {"path": cfg.path, "bytes": [len(t.encode()) for t in (train, valid)],
                              "sha256": digest}
  if cfg.source == "tfds":
    limit = int(cfg.max_documents)
    train, info = text_lib.tfds_texts(cfg.dataset, cfg.train_split, cfg.text_key, cfg.data_dir,
                                      limit)
    valid, _ = text_lib.tfds_texts(cfg.dataset, cfg.eval_split, cfg.text_key, cfg.data_dir, limit)
    return train, valid, {"dataset": tfds_arrays.full_name(info, cfg.dataset),
                          "documents": [len(train), len(valid)]}
  if cfg.source == "stdlib":  # path "" = this interpreter's; valid_fraction of the files
    return text_lib.stdlib_texts(cfg.path, cfg.valid_fraction, int(cfg.max_documents))
  raise ValueError(f"config.task.source={cfg.source!r} is not valid; choose one of: "
                   + ", ".join(SOURCES))


def mix_few_shot(docs: list[str], fraction: float) -> tuple[list[str], dict]:
  """`docs` with k-shot documents of the few-shot probe's tasks (research/probes/few_shot.py)
  added so that they make up `fraction` of the training bytes, every document at a fixed
  pseudo-random place (the corpus and its order stay the same on every run). Held-out text is
  never mixed: the ICL score and loss are the corpus's own."""
  from research.probes import few_shot
  corpus_bytes = sum(len(d.encode()) + 1 for d in docs)
  added = few_shot.training_documents(round(corpus_bytes * fraction / (1 - fraction)))
  order = np.random.default_rng(few_shot.TRAINING_SALT).permutation(len(docs) + len(added))
  pool = docs + added
  mixed = [pool[i] for i in order]
  return mixed, {"fraction": float(fraction), "documents": len(added),
                 "bytes": sum(len(d.encode()) + 1 for d in added), "tasks": list(few_shot.TASKS)}


class SyntheticTokenizer:
  """Ids only: the `synthetic` source's tokens stand for a vocabulary it does not have."""
  kind = "synthetic"

  def __init__(self, vocab_size: int):
    self.vocab_size = int(vocab_size)

  def decode(self, ids) -> str:
    return " ".join(str(int(i)) for i in ids)


SYNTHETIC_EVAL_WINDOWS = 256  # held-out windows of a synthetic run (configs/lm.py's eval_sequences)


def synthetic_stream(vocab_size: int, num_tokens: int) -> np.ndarray:
  """Uniform non-special ids: a corpus-free stand-in with a pod-scale vocabulary.

  For AOT plans (research/aot.py) and throughput runs of the ladder
  (configs/lm_ladder.py): the step's shapes, FLOPs and memory are those of a real
  corpus with this vocabulary; the loss stays at log(vocab), nothing is learnt.
  """
  rng = np.random.default_rng(0)
  return rng.integers(text_lib.NUM_SPECIAL, vocab_size, num_tokens, dtype=np.int64)


class LMTask:
  name = "lm"
  probe_name = "lm"

  @staticmethod
  def build_uses_seed(cfg) -> bool:
    return False

  @staticmethod
  def check_config(cfg) -> None:
    """Raises ConfigError (one line) on the first invalid config.task / config.probe field."""
    check_text_task(cfg, SOURCES, LM_TOKENIZERS)
    choice(cfg, "task", "window", WINDOWS)
    positive(cfg, "task", "max_documents", allow_zero=True)
    fraction = cfg.task.get("synthetic_fraction", 0.0)
    if not 0 <= fraction < 1 or (fraction and cfg.task.source == "synthetic"):
      raise ConfigError(f"config.task.synthetic_fraction={fraction} must be in [0, 1) and 0 for "
                       "source='synthetic' (the share of k-shot documents mixed into the text)")
    if cfg.task.source in ("file", "stdlib") and not 0 < cfg.task.valid_fraction < 1:
      raise ConfigError(f"config.task.valid_fraction={cfg.task.valid_fraction} must be in (0, 1)")
    if cfg.task.source == "synthetic" and cfg.task.get("vocab_size", 0) <= text_lib.NUM_SPECIAL:
      raise ConfigError(f"config.task.vocab_size={cfg.task.get('vocab_size', 0)} must exceed the "
                        f"{text_lib.NUM_SPECIAL} special ids for source='synthetic'")
    positive(cfg, "probe", "eval_sequences", "generate_tokens", "temperature", allow_zero=True)

  def __init__(self, cfg, seed: int):
    del seed  # the corpus and its order are fixed; batches come from the step key
    self.cfg = cfg
    self.seq_len = int(cfg.seq_len)
    if cfg.source == "synthetic":
      self.tokenizer = SyntheticTokenizer(cfg.vocab_size)
      v = self.tokenizer.vocab_size
      # Tokens are drawn in `sample`; these windows are only for the evaluation and probes
      # to read. 4 of them gave research.probe_checkpoints an ICL score 2.7 standard errors
      # below 0 on uniform ids, where any model's expected score is 0 (a trial).
      valid = synthetic_stream(v, SYNTHETIC_EVAL_WINDOWS * (self.seq_len + 1))
      stream = valid[:4 * (self.seq_len + 1)]
      self.corpus = {"vocab_size": v}
    else:
      train_docs, valid_docs, self.corpus = load_corpus(cfg)
      if float(cfg.get("synthetic_fraction", 0.0)):
        train_docs, self.corpus["synthetic"] = mix_few_shot(train_docs, cfg.synthetic_fraction)
      self.tokenizer = text_lib.make_tokenizer(cfg.tokenizer, train_docs)
      v = self.tokenizer.vocab_size
      stream = text_lib.pack(self.tokenizer.encode(d) for d in train_docs)
      valid = text_lib.pack(self.tokenizer.encode(d) for d in valid_docs)
    need = self.seq_len + 1
    for what, s in (("training", stream), ("evaluation", valid)):
      if len(s) < need:
        source = f"config.task.path={cfg.path!r}" if cfg.source == "file" else cfg.source
        raise InputError(f"the {what} text of {source} has {len(s)} tokens, fewer than "
                         f"config.task.seq_len + 1 = {need}; lower seq_len or use more text")
    dtype = text_lib.smallest_int_dtype(v)
    self.num_train_tokens, self.num_eval_tokens = len(stream), len(valid)
    if cfg.window == "chunks":
      self.rows = text_lib.Rows(text_lib.chunk(stream, need).astype(dtype), cfg.placement)
    else:  # one column: a window is L+1 consecutive row indices
      self.rows = text_lib.Rows(stream.astype(dtype)[:, None], cfg.placement)
    self.eval_windows = text_lib.chunk(valid, need)
    self.io = IOSpec(output_dim=v, seq_len=self.seq_len, vocab_size=v)
    logging.info("lm corpus (%s %s): %d train / %d eval tokens, vocabulary %d (%s), rows on %s",
                 cfg.source, self.corpus, len(stream), len(valid), v, self.tokenizer.kind,
                 "device" if self.rows.on_device else "host")

  @property
  def tokens_per_example(self) -> int:
    return self.seq_len

  def vocabulary(self) -> dict:
    """The tokeniser, saved in the workdir (research/workdir_resume.py record_start)."""
    return {"tokenizer": text_lib.tokenizer_state(self.tokenizer)}

  # --- data -------------------------------------------------------------------
  def sample(self, key, step, batch_size: int):
    del step
    need = self.seq_len + 1
    if self.cfg.source == "synthetic":  # uniform ids drawn on device, no stream to index
      return {"tokens": jax.random.randint(key, (batch_size, need), text_lib.NUM_SPECIAL,
                                           self.io.vocab_size, jnp.int32)}
    if self.cfg.window == "chunks":
      rows_B = jax.random.randint(key, (batch_size,), 0, len(self.rows))
      return {"tokens": self.rows.gather(rows_B)}
    start_B = jax.random.randint(key, (batch_size,), 0, len(self.rows) - need + 1)
    idx_BxL = start_B[:, None] + jnp.arange(need)[None]
    return {"tokens": self.rows.gather(idx_BxL)[..., 0]}

  def model_inputs(self, batch):
    return batch["tokens"][:, :-1]

  @staticmethod
  def token_losses(logits_BxLxV, tokens_BxL1):
    """Per-token cross-entropy (nats) and a mask of real (non-PAD) targets."""
    targets_BxL = tokens_BxL1[:, 1:]
    logp = jax.nn.log_softmax(logits_BxLxV.astype(jnp.float32))
    # The target's log-probability as a product with its one-hot row, not a gather: the same
    # value bit for bit (the other terms are exact zeros), and a backward pass that fuses
    # into the softmax's where the gather's scatter-add could hold another (tokens x vocab)
    # float32 buffer (research.aot, 160m on v5e:4x4: 1.3 GB less per chip, 1b 0.4 GB).
    ce_BxL = -jnp.sum(logp * jax.nn.one_hot(targets_BxL, logp.shape[-1], dtype=logp.dtype), -1)
    return ce_BxL, (targets_BxL != text_lib.PAD).astype(jnp.float32)

  def loss(self, outputs, batch):
    ce_BxL, mask_BxL = self.token_losses(outputs, batch["tokens"])
    denom = jnp.maximum(mask_BxL.sum(), 1.0)
    correct = (jnp.argmax(outputs, -1) == batch["tokens"][:, 1:]) * mask_BxL
    return jnp.sum(ce_BxL * mask_BxL) / denom, {"accuracy": correct.sum() / denom}

  # --- evaluation ---------------------------------------------------------------
  def eval_losses(self, apply_fn, num: int, batch_size: int) -> np.ndarray:
    """Per-token losses (windows x L) on the first `num` evaluation windows (0: all);
    column i is the loss of predicting window token i + 1 from tokens 0..i."""
    windows = self.eval_windows[:num] if num else self.eval_windows
    # One program for the forward and the losses where the function offers it
    # (Experiment.predict_fn): its logits never leave the chips whole.
    losses = (apply_fn.then(self.eval_post) if hasattr(apply_fn, "then") else
              lambda x, tokens: self.eval_post(apply_fn(x), tokens))
    out = []
    for s in range(0, len(windows), batch_size):
      tokens = jnp.asarray(windows[s:s + batch_size])
      out.append(np.asarray(losses(self.model_inputs({"tokens": tokens}), tokens), np.float64))
    return np.concatenate(out)

  @staticmethod
  def eval_post(logits_BxLxV, tokens_BxL1):
    """An evaluation batch's outputs reduced to what the host reads: per-token losses (the
    program research.aot plans as the run's evaluation, research/aot_eval.py)."""
    return LMTask.token_losses(logits_BxLxV, tokens_BxL1)[0]

  def evaluate(self, exp, params, key) -> dict:
    del key
    probe = exp.config.probe
    ce = self.eval_losses(exp.predict_fn(params), int(probe.eval_sequences), int(probe.batch_size))
    loss = float(ce.mean())
    return {"valid_loss": loss, "valid_perplexity": float(math.exp(min(loss, 50.0)))}

  def generate(self, predict_fn, key, prompt_ids, num_tokens: int, temperature: float):
    """Samples a continuation; each step runs the model on the last L tokens (padded)."""
    ids = list(int(i) for i in prompt_ids)
    L = self.seq_len
    for i in range(num_tokens):
      ctx = ids[-L:]
      x = np.full((1, L), text_lib.PAD, np.int32)
      x[0, :len(ctx)] = ctx
      logits = np.asarray(predict_fn(jnp.asarray(x)))[0, len(ctx) - 1].astype(np.float64)
      if temperature <= 0:
        nxt = int(np.argmax(logits))
      else:
        nxt = int(jax.random.categorical(jax.random.fold_in(key, i), logits / temperature))
      ids.append(nxt)
    return ids[len(prompt_ids):]

  def probe(self, predict_fn, key, probe_cfg, *, step: int) -> dict[str, dict]:
    ce = self.eval_losses(predict_fn, int(probe_cfg.eval_sequences), int(probe_cfg.batch_size))
    loss = float(ce.mean())
    prompt = self.eval_windows[0][:max(1, min(self.seq_len // 2, 32))]
    cont = self.generate(predict_fn, key, prompt, int(probe_cfg.generate_tokens),
                         float(probe_cfg.temperature))
    return {self.probe_name: {
        "kind": "lm", "step": int(step), "source": self.cfg.source,
        "dataset": {"tfds": self.cfg.dataset, "stdlib": f"Python {self.corpus.get('python')} stdlib"
                    }.get(self.cfg.source, self.cfg.path),
        "corpus": self.corpus,
        "tokenizer": self.cfg.tokenizer, "vocab_size": self.tokenizer.vocab_size,
        "seq_len": self.seq_len, "num_train_tokens": int(self.num_train_tokens),
        "num_eval_tokens": int(self.num_eval_tokens), "num_eval_windows": int(ce.shape[0]),
        "eval_loss": loss, "eval_perplexity": float(math.exp(min(loss, 50.0))),
        "bits_per_token": loss / math.log(2),
        "loss_by_position": ce.mean(0).tolist(),
        "sample": {"prompt": self.tokenizer.decode(prompt),
                   "continuation": self.tokenizer.decode(cont),
                   "temperature": float(probe_cfg.temperature)}}}

  @staticmethod
  def render(json_path, png_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from research.analysis.plots import save_figure
    res = json.loads(Path(json_path).read_text())
    fig, ax = plt.subplots(figsize=(5.5, 3.2), dpi=110)
    curve = res["loss_by_position"]
    ax.plot(range(1, len(curve) + 1), curve, color="#1f77b4")
    ax.axhline(res["eval_loss"], color="k", lw=0.8, ls="--",
               label=f"mean {res['eval_loss']:.3f} nats (ppl {res['eval_perplexity']:.2f})")
    ax.set_xlabel("token position")
    ax.set_ylabel("eval loss (nats)")
    ax.set_title(f"{res['dataset']} ({res['tokenizer']}), step {res['step']}", fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    return save_figure(fig, png_path)
