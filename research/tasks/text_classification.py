"""Text classification: a sequence model with a classifier read-out, on a CSV or TFDS split.

Data: a local CSV with text and label columns (train/test split by the seed,
labels encoded from the whole file) or a TFDS dataset (`imdb_reviews`,
`ag_news_subset`, ...: text feature(s) and an integer label). Texts are
tokenised (byte, char or a word vocabulary built from the training split),
truncated to seq_len - 1 tokens, followed by EOS and right-padded. `sample`
draws B training rows uniformly with replacement from `fold_in(seed, step)`:
data is a pure function of (seed, step), so resume is exact.

Read-out: the model (Transformer or LSTM, `output_dim` = number of classes)
emits per-position logits; `readout='last'` takes them at the EOS token (the
last real token, which a causal model has read everything before), `'mean'`
averages them over the real tokens. The loss is cross-entropy on the label.

Evaluation on the test split: accuracy and loss every train.eval_every steps
(`eval_test_accuracy`), and at the end probes/text_classification.json with
accuracy with its Wilson 95% interval, loss, the confusion matrix and, for two
classes, the ROC curve and AUC, next to the null baseline (research/analysis/classification_baselines.py): the
accuracy of always answering the training split's most frequent label, and
balanced accuracy against its chance 1/K; figures/text_classification.png is
rendered from that file.

Shape legend: B batch, L sequence length, O classes, N rows.
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from research.analysis import classification_baselines
from research.data import text as text_lib
from research.data import text_checks, text_files
from research.data import tfds_arrays
from research.errors import InputError
from research.models import IOSpec
from research.tasks.fields import ConfigError, check_text_task, choice, positive

SOURCES = ("csv", "tfds")
READOUTS = ("last", "mean")


def _warn(message: str | None) -> None:
  if message:
    logging.warning("%s", message)


def load_split(cfg, seed: int):
  """(train texts, train label ids, test texts, test label ids, label names, description);
  the description (the CSV's rows and SHA-256, TFDS's name/config/version and sizes) is
  recorded in the workdir (research/workdir_vocabulary.py)."""
  if cfg.source == "csv":
    texts, raw, digest = text_files.read_csv(cfg.path, cfg.text_column, cfg.label_column)
    labels, names = text_files.encode_labels(raw)
    order = np.random.default_rng(seed).permutation(len(texts))
    n_test = max(1, int(round(len(texts) * cfg.test_fraction)))
    if len(texts) - n_test < 1:
      raise InputError(f"config.task.path={cfg.path!r} has {len(texts)} rows: too few to split "
                       f"with config.task.test_fraction={cfg.test_fraction}; add rows")
    test, train = order[:n_test], order[n_test:]
    if absent := sorted(set(range(len(names))) - set(labels[train].tolist())):
      # Trained without ever seeing the class, silently (a 50:1 file at one seed).
      counts = np.bincount(labels, minlength=len(names))
      which = ", ".join(f"{names[i]!r} ({counts[i]} row{'' if counts[i] == 1 else 's'})"
                        for i in absent[:5])
      raise InputError(f"config.task.path={cfg.path!r}: no row of class {which} is in the "
                       f"training split (config.seed={seed}, config.task.test_fraction="
                       f"{cfg.test_fraction}), so the model could never predict it; add rows "
                       "of that class, or choose another seed or test_fraction")
    # After the refusal above (one line for a class the split left out), else said here.
    _warn(text_checks.few_row_classes(f"config.task.path={cfg.path!r}", names, labels))
    return ([texts[i] for i in train], labels[train], [texts[i] for i in test], labels[test],
            names, {"path": cfg.path, "rows": len(texts), "sha256": digest})
  if cfg.source == "tfds":
    limit = int(cfg.max_examples)
    out, info = [], None
    for split in (cfg.train_split, cfg.test_split):
      records, info = text_lib.tfds_records(cfg.dataset, split, cfg.data_dir, limit)
      if records and cfg.label_key not in records[0]:
        raise InputError(f"config.task.label_key={cfg.label_key!r} is not a feature of "
                         f"{cfg.dataset}; set it to one of: {', '.join(sorted(records[0]))}")
      out.append(([text_lib.join_fields(r, cfg.text_key) for r in records],
                  np.asarray([int(r[cfg.label_key]) for r in records], np.int32)))
    num = int(max(out[0][1].max(initial=0), out[1][1].max(initial=0)) + 1)
    names = [str(i) for i in range(num)]
    try:  # ClassLabel names when the dataset info has them
      feature_names = list(info.features[cfg.label_key].names)
      if len(feature_names) >= num:
        names = feature_names
    except Exception:  # noqa: BLE001 -- no info / not a ClassLabel: keep the numbers
      pass
    return out[0][0], out[0][1], out[1][0], out[1][1], names, {
        "dataset": tfds_arrays.full_name(info, cfg.dataset), "examples": [len(out[0][1]),
                                                                          len(out[1][1])]}
  raise ValueError(f"config.task.source={cfg.source!r} is not valid; choose one of: "
                   + ", ".join(SOURCES))


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[list, list, float]:
  """(fpr, tpr, AUC) of binary scores; AUC by the rank statistic (ties count half)."""
  pos, neg = int(positive.sum()), int((~positive).sum())
  if not pos or not neg:
    return [0.0, 1.0], [0.0, 1.0], float("nan")
  order = np.argsort(-scores, kind="stable")
  s, p = scores[order], positive[order]
  last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # end of each group of equal scores
  tpr = np.r_[0.0, np.cumsum(p)[last] / pos]
  fpr = np.r_[0.0, np.cumsum(~p)[last] / neg]
  auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoid = rank AUC with ties
  return fpr.tolist(), tpr.tolist(), auc


class TextClassificationTask:
  name = "text_classification"
  probe_name = "text_classification"

  @staticmethod
  def check_config(cfg) -> None:
    """Raises ConfigError (one line) on the first invalid config.task field."""
    check_text_task(cfg, SOURCES, text_lib.TOKENIZERS)
    choice(cfg, "task", "readout", READOUTS)
    positive(cfg, "task", "max_examples", allow_zero=True)
    if cfg.task.source == "csv" and not 0 < cfg.task.test_fraction < 1:
      raise ConfigError(f"config.task.test_fraction={cfg.task.test_fraction} must be in (0, 1)")
    if cfg.task.tokenizer == "word" and cfg.task.vocab_size <= text_lib.NUM_SPECIAL:
      raise ConfigError(f"config.task.vocab_size={cfg.task.vocab_size} must exceed the "
                        f"{text_lib.NUM_SPECIAL} special ids for tokenizer='word'")

  def __init__(self, cfg, seed: int):
    self.cfg = cfg
    self.seq_len = int(cfg.seq_len)
    tr_x, tr_y, te_x, te_y, self.label_names, self.corpus = load_split(cfg, seed)
    self.tokenizer = text_lib.make_tokenizer(cfg.tokenizer, tr_x, int(cfg.vocab_size))
    self.num_classes = len(self.label_names)
    if self.num_classes < 2:
      source = f"config.task.path={cfg.path!r}" if cfg.source == "csv" else cfg.dataset
      raise InputError(f"{source} has {self.num_classes} label(s) "
                       f"({', '.join(self.label_names) or 'none'}); a classifier needs at least "
                       "2: add examples of another class")
    train_ids = [self.tokenizer.encode(t) for t in tr_x]
    test_ids = [self.tokenizer.encode(t) for t in te_x]
    where = f"config.task.path={cfg.path!r}" if cfg.source == "csv" else cfg.dataset
    _warn(text_checks.truncated(where, [len(i) for i in train_ids], [len(i) for i in test_ids],
                                self.seq_len))
    _warn(text_checks.test_texts_in_training(where, tr_x, te_x, own_file=cfg.source == "csv"))
    train_tokens, train_len = text_lib.pad_rows(train_ids, self.seq_len)
    self.test_tokens, self.test_lengths = text_lib.pad_rows(test_ids, self.seq_len)
    self.test_labels = te_y
    # The null baseline's label is the training split's (a constant model learns it there).
    self.train_label_counts = np.bincount(tr_y, minlength=self.num_classes)
    # One row per example: tokens, then length and label in the last two columns.
    rows = np.concatenate([train_tokens, train_len[:, None], tr_y[:, None]], axis=1)
    self.rows = text_lib.Rows(rows, cfg.placement)
    self.num_train = len(tr_y)
    self.io = IOSpec(output_dim=self.num_classes, seq_len=self.seq_len,
                     vocab_size=self.tokenizer.vocab_size)
    logging.info("text classification: %d train / %d test, %d classes %s, vocabulary %d (%s)",
                 len(tr_y), len(te_y), self.num_classes, self.label_names[:10],
                 self.tokenizer.vocab_size, cfg.tokenizer)

  tokens_per_example = property(lambda self: self.seq_len)

  def vocabulary(self) -> dict:
    """Tokeniser and label names, saved in the workdir: `research.predict` rebuilds the
    task from them (`for_prediction`) without the training data."""
    return {"tokenizer": text_lib.tokenizer_state(self.tokenizer), "labels": self.label_names}

  @classmethod
  def for_prediction(cls, cfg, vocabulary: dict) -> "TextClassificationTask":
    """The task as predict needs it (encode, probabilities, io), from a saved vocabulary:
    no data is read, so a moved or edited data file changes nothing."""
    self = cls.__new__(cls)
    self.cfg, self.seq_len = cfg, int(cfg.seq_len)
    self.tokenizer = text_lib.tokenizer_from_state(vocabulary["tokenizer"])
    self.label_names = list(vocabulary["labels"])
    self.num_classes = len(self.label_names)
    # One all-PAD row: model shapes are traced from a sampled batch.
    self.rows = text_lib.Rows(np.zeros((1, self.seq_len + 2), np.int32), "device")
    self.num_train = 1
    self.test_tokens, self.test_lengths = self.encode([])
    self.test_labels = np.zeros((0,), np.int32)
    self.train_label_counts = np.zeros((self.num_classes,), np.int64)
    self.io = IOSpec(output_dim=self.num_classes, seq_len=self.seq_len,
                     vocab_size=self.tokenizer.vocab_size)
    return self

  def encode(self, texts) -> tuple[np.ndarray, np.ndarray]:
    """(tokens N x L, lengths N) for raw texts, as the model reads them."""
    return text_lib.pad_rows([self.tokenizer.encode(t) for t in texts], self.seq_len)

  # --- data and loss --------------------------------------------------------------
  def sample(self, key, step, batch_size: int):
    del step
    rows_B = jax.random.randint(key, (batch_size,), 0, self.num_train)
    r = self.rows.gather(rows_B)
    return {"tokens": r[:, :self.seq_len], "lengths": r[:, self.seq_len],
            "labels": r[:, self.seq_len + 1]}

  def model_inputs(self, batch):
    return batch["tokens"]

  def logits(self, outputs_BxLxO, lengths_B):
    """The classifier read-out over per-position outputs."""
    if self.cfg.readout == "mean":
      mask_BxL = jnp.arange(outputs_BxLxO.shape[1])[None] < lengths_B[:, None]
      total = jnp.sum(outputs_BxLxO * mask_BxL[..., None], axis=1)
      return total / jnp.maximum(lengths_B, 1)[:, None].astype(outputs_BxLxO.dtype)
    last_B = jnp.clip(lengths_B - 1, 0, outputs_BxLxO.shape[1] - 1)
    return jnp.take_along_axis(outputs_BxLxO, last_B[:, None, None], axis=1)[:, 0]

  def loss(self, outputs, batch):
    logits_BxO = self.logits(outputs, batch["lengths"])
    labels_B = batch["labels"]
    ce_B = -jnp.take_along_axis(jax.nn.log_softmax(logits_BxO), labels_B[:, None], -1)[:, 0]
    return jnp.mean(ce_B), {"accuracy": jnp.mean(jnp.argmax(logits_BxO, -1) == labels_B)}

  # --- evaluation ----------------------------------------------------------------
  def probabilities(self, apply_fn, tokens, lengths, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N x O) for encoded rows."""
    out = []
    for s in range(0, len(tokens), batch_size):
      logits = self.logits(apply_fn(jnp.asarray(tokens[s:s + batch_size])),
                           jnp.asarray(lengths[s:s + batch_size]))
      out.append(np.asarray(jax.nn.softmax(logits.astype(jnp.float32)), np.float64))
    return np.concatenate(out) if out else np.zeros((0, self.num_classes))

  def _test_metrics(self, apply_fn, batch_size: int) -> dict:
    probs = self.probabilities(apply_fn, self.test_tokens, self.test_lengths, batch_size)
    y = self.test_labels
    p_true = np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0)
    # The majority baseline sits beside the accuracy in metrics.jsonl and the run's final
    # `done:` line, where a constant model's 0.85 was otherwise read as learning.
    majority = int(np.argmax(self.train_label_counts))
    return {"test_accuracy": float(np.mean(probs.argmax(-1) == y)),
            "test_majority_accuracy": float(np.mean(y == majority)),
            "test_loss": float(np.mean(-np.log(p_true))), "probs": probs}

  def evaluate(self, exp, params, key) -> dict:
    del key
    m = self._test_metrics(exp.predict_fn(params), int(exp.config.probe.batch_size))
    return {k: v for k, v in m.items() if k != "probs"}

  def probe(self, predict_fn, key, probe_cfg, *, step: int) -> dict[str, dict]:
    del key
    m = self._test_metrics(predict_fn, int(probe_cfg.batch_size))
    y, pred = self.test_labels, m["probs"].argmax(-1)
    confusion = np.zeros((self.num_classes, self.num_classes), np.int64)
    np.add.at(confusion, (y, pred), 1)
    res = {"kind": "text_classification", "step": int(step), "source": self.cfg.source,
           "dataset": self.cfg.dataset if self.cfg.source == "tfds" else self.cfg.path,
           "labels": self.label_names, "num_examples": int(len(y)),
           "accuracy": m["test_accuracy"], "loss": m["test_loss"],
           "confusion_matrix": confusion.tolist(),
           "confusion_axes": "rows: true label, columns: predicted label"}
    res |= classification_baselines.probe_fields(y, pred, self.train_label_counts, "rows")
    res["majority_label"] = self.label_names[res["majority_label_id"]]
    if self.num_classes == 2:
      fpr, tpr, auc = roc_curve(m["probs"][:, 1], y == 1)
      res |= {"roc_auc": auc, "roc": {"fpr": fpr, "tpr": tpr}}
    # research.results' probes.text_classification.* columns, and the probe's console line
    # (train.run_probes prints them): the accuracy first, its baseline next to it.
    res["summary"] = classification_baselines.summary(res)
    return {self.probe_name: res}

  @staticmethod
  def render(json_path, png_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from research.analysis.plots import save_figure
    res = json.loads(Path(json_path).read_text())
    cm = np.asarray(res["confusion_matrix"])
    binary = "roc" in res
    fig, axes = plt.subplots(1, 2 if binary else 1, figsize=(8.0 if binary else 4.5, 3.6),
                             dpi=110, squeeze=False)
    ax = axes[0, 0]
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
      ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
              color="white" if v > cm.max() / 2 else "black")
    ticks = range(len(res["labels"]))
    names = [n[:12] for n in res["labels"]]
    ax.set_xticks(ticks, names, fontsize=7, rotation=45 if len(names) > 3 else 0)
    ax.set_yticks(ticks, names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    title = f"accuracy {res['accuracy']:.3f}"
    if "majority_accuracy" in res:  # a file from before the baseline has none to show
      title += (f" [{res['accuracy_lo']:.2f}, {res['accuracy_hi']:.2f}], majority "
                f"{res['majority_accuracy']:.3f} ({res['majority_label'][:12]!r})\n"
                f"balanced {res['balanced_accuracy']:.3f} (chance {res['chance_balanced']:.2f}), ")
    else:
      title += ", "
    ax.set_title(title + f"loss {res['loss']:.3f} ({res['num_examples']} test)", fontsize=7)
    if binary:
      ax = axes[0, 1]
      ax.plot(res["roc"]["fpr"], res["roc"]["tpr"], color="#d62728",
              label=f"AUC {res['roc_auc']:.3f}")
      ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
      ax.set_xlabel("false positive rate")
      ax.set_ylabel("true positive rate")
      ax.legend(fontsize=7, frameon=False, loc="lower right")
      ax.set_title(f"ROC ({res['labels'][1]} positive)", fontsize=8)
    fig.suptitle(f"{res['dataset']}, step {res['step']}", fontsize=8)
    return save_figure(fig, png_path)
