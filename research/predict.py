"""Use a finished run: predict labels for new text, or initialise another run from it.

  python -m research.predict --workdir=runs/tc --text="great film" [--text="..."]
  python -m research.predict --workdir=runs/tc --file=lines.txt     # one text per line

The run's task and model are rebuilt from DIR/config.json and the tokenizer and label
names the run saved in DIR/vocabulary.json (the training data is not read: it may have
moved or changed), and the newest complete checkpoint is restored
(research/checkpoint.py). Each input
prints one line: the predicted label, its probability, then every class's, then the text
(its tabs, line breaks and backslashes written \\t, \\n, \\r, \\\\: a --text with a line break
printed two lines, and the tab-separated columns no longer parsed).

Initialising another run from this one is `config.init_from`
(research/init_from.py).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import ml_collections
import numpy as np
from absl import flags, logging

from research import cli, output_paths, workdir_layout
from research.data import text as text_lib
from research.errors import InputError, RunIOError

# Parameter scopes that belong to the task's head, not the shared body, at any depth: the
# sequence models' `read_out`, the ResNet classifier's `head`, and a wrapped model's
# (e.g. the image-exemplar model's sequence_model/read_out).
# --- prediction ----------------------------------------------------------------------
def open_run(workdir: str | Path, config=None):
  """The Experiment (task, model, shapes) of a run, rebuilt from its config.json on this
  process's first device (or from CONFIG, its saved_run_config already read);
  research.probe_checkpoints restores each checkpoint into it."""
  from research import experiment, workdir_vocabulary
  workdir = Path(workdir).expanduser()
  config = saved_run_config(workdir) if config is None else config
  exp = experiment.Experiment(config, jax.local_devices()[:1], task=_saved_task(workdir, config))
  # A task rebuilt from its data (lm: no for_prediction) must give the tokenizer the run
  # saved (an edited corpus of as many characters gave other ids, silently) and be the data
  # the run trained on (research.probe_checkpoints reads its held-out windows).
  workdir_vocabulary.check(workdir, exp.task)
  return exp


def saved_run_config(workdir: Path):
  """The run's config.json as a checked ConfigDict for one device, without init_from (the
  run's own checkpoint holds every parameter); edited or damaged: one InputError line."""
  from research import config_check, config_defaults, workdir as workdir_lib
  from research.tasks import fields
  cfg_path = workdir / "config.json"
  if not cfg_path.is_file():
    raise FileNotFoundError(f"{cfg_path} not found: --workdir must be a run's workdir")
  saved = workdir_lib.saved_config(workdir)  # damaged, or no task.name: one line
  fix = ("edited or damaged since training; put the run's config.json back (a field with no "
         "default in research/config_defaults.py: written by an older version, add it)")
  try:
    # Fields added since the run was written: the values it trained with (config_defaults).
    config = ml_collections.ConfigDict(config_defaults.filled(saved)[0])
    config.mesh.data, config.mesh.fsdp, config.mesh.tensor = 1, 1, 1
    config.init_from = ""
    with fields.data_files_unread():  # the task comes from the saved vocabulary (predict)
      config_check.validate(config, 1)  # before the model is built from it
  except (InputError, AttributeError, KeyError, TypeError, ValueError) as e:  # ConfigError too
    # The problem, not the check's fix (written for a config being started, not a saved one).
    missing = isinstance(e, (AttributeError, KeyError)) and e.args
    problem = (f"no field {str(e.args[0]).strip(chr(34) + chr(39))!r}" if missing
               else cli.one_line(e).split("; ")[0][:200])
    raise InputError(f"{cfg_path} is not a valid run config ({problem}); {fix}") from None
  return config


def load_run(workdir: str | Path):
  """(Experiment, params, step) of a finished run, on this process's first device. A run
  training there deletes old checkpoints as it saves (keep-latest-N): one listed, then gone
  before it was read, is read again from a fresh listing (it said FileNotFoundError, exit 2)."""
  from research import checkpoint as ckpt_lib
  exp = open_run(workdir)
  workdir = Path(workdir).expanduser()
  abstract = ckpt_lib.abstract_like(exp.abstract_state, exp.state_sharding)
  for attempt in range(3):
    try:
      state, step = _restore_newest(workdir, abstract)
      return exp, state.params, step
    except FileNotFoundError:
      if attempt == 2:
        raise RunIOError(f"the checkpoints in {workdir} were deleted while being read, three "
                         "times (a run training there?); try again when it has finished") from None
      logging.warning("a checkpoint in %s was deleted while being read; reading the newest again",
                      workdir)


def _restore_newest(workdir: Path, abstract):
  from research import checkpoint as ckpt_lib, workdir as workdir_lib
  ck = ckpt_lib.Checkpointer(workdir / workdir_lib.CHECKPOINTS, max_to_keep=1_000_000,
                             async_save=False, read_only=True)
  try:
    steps = ck.all_steps()
    if not steps:  # was exit 4, "no complete checkpoint in ...", naming no fix
      raise InputError(f"--workdir={workdir} has no complete checkpoint to predict with; "
                       "train it first (python -m research.main with this --workdir)")
    check_fits(workdir, ck, steps[-1], abstract)
    try:
      state, _, step = ck.restore(abstract)  # an unreadable newest one: the previous, warned
    except ckpt_lib.CheckpointError as e:
      # Restore reports a step deleted while it read as unreadable: a run training there
      # saved a newer one and removed this one (keep-latest-N), which is no damage.
      if ckpt_lib.complete_steps(ck.directory) != steps:
        raise FileNotFoundError(2, "a checkpoint changed while being read", str(ck.directory))
      raise type(e)(f"{e}; restore the run's checkpoints from a backup, or retrain it") from None
  finally:
    ck.close()
  return state, step


def check_fits(workdir: Path, ck, step: int, abstract) -> None:
  """Checkpoint `step` has the shapes of the model the run's own files describe; if not,
  one of them was edited since training (a refusal naming them, not a checkpoint error)."""
  from research import workdir as workdir_lib
  mismatch = ck.mismatches(step, abstract)
  if mismatch:
    files = [n for n in (workdir_lib.CONFIG, workdir_lib.VOCABULARY) if (workdir / n).is_file()]
    raise InputError(
        f"checkpoint {step} in {workdir} does not fit the model its {' and '.join(files)} "
        f"describe{'s' if len(files) == 1 else ''} ({'; '.join(mismatch[:2])}): edited since "
        f"training; restore {'them' if len(files) > 1 else 'it'} from a backup of the run")


def _saved_task(workdir: Path, config):
  """The task rebuilt from the run's saved vocabulary.json (no training data needed, and
  an edited data file changes nothing); None (rebuild from the data) for a run saved
  before vocabularies were, or a task that does not predict from one."""
  from research import tasks, workdir as workdir_lib
  build = getattr(tasks.REGISTRY.get(config.task.name), "for_prediction", None)
  path = workdir / workdir_lib.VOCABULARY
  # A damaged file is refused, never read as absent: that would rebuild the task from the
  # data file, which may have changed since training (other ids, other labels).
  fix = ("restore it from a backup of the run; or delete it to rebuild the tokenizer and "
         "labels from the training data, right only if that data is unchanged since training")
  vocabulary = None if build is None else workdir_lib.read_object(
      path, "does not hold the run's tokenizer and labels (not a JSON object)", fix)
  if vocabulary is None:
    logging.info("%s: rebuilding the %s task from its data%s", workdir, config.task.name,
                 "" if build is None and path.is_file() else " (no saved vocabulary)")
    return None
  problem = _vocabulary_problem(vocabulary)
  if problem is None:
    try:
      return build(config.task, vocabulary)
    except (KeyError, TypeError, ValueError) as e:  # a field of the wrong kind
      problem = cli.one_line(f"{type(e).__name__}: {e}")
  raise InputError(f"{path} is damaged ({problem}); {fix}")


def _vocabulary_problem(vocabulary: dict) -> str | None:
  """What is wrong with a saved vocabulary's shape (text_classification's `vocabulary()`:
  a tokenizer state and the label names), or None."""
  def wrong(key: str, want: str) -> str:
    if key not in vocabulary:
      return f'no "{key}" ({want})'
    return f'"{key}" is {json.dumps(vocabulary[key])[:60]}, not {want}'

  tokenizer, labels = vocabulary.get("tokenizer"), vocabulary.get("labels")
  if not isinstance(tokenizer, dict):
    return wrong("tokenizer", "the tokenizer's state")
  if not (isinstance(labels, list) and len(labels) >= 2
          and all(isinstance(l, str) for l in labels)):
    return wrong("labels", "a list of at least 2 label names")
  if len(set(labels)) < len(labels):  # predict printed "neg 0.842 neg=0.158"
    return wrong("labels", "distinct label names")
  words = tokenizer.get({"char": "chars", "word": "words"}.get(tokenizer.get("kind"), ""), [])
  if not (isinstance(words, list) and all(isinstance(w, str) for w in words)):
    return f'the tokenizer\'s {tokenizer["kind"]}s are not a list of strings'
  return None


def predict_texts(exp, params, texts: list[str]) -> list[dict]:
  """[{'label', 'probability', 'probabilities': {label: p}}] for raw texts."""
  task = exp.task
  if not hasattr(task, "label_names"):
    raise InputError(f"task {exp.config.task.name!r} does not predict labels; "
                     "research.predict needs a text_classification run")
  tokens, lengths = task.encode(texts)
  probs = task.probabilities(exp.predict_fn(params), tokens, lengths)
  out = []
  for n, (text, p) in enumerate(zip(texts, probs), 1):
    i = int(np.argmax(p))
    out.append({"label": task.label_names[i], "probability": float(p[i]),
                "probabilities": {n: float(v) for n, v in zip(task.label_names, p)},
                **_what_the_model_read(task, text, n)})
  return out


def _what_the_model_read(task, text: str, n: int) -> dict:
  """How much of text N the model read, with a warning where it was not all of it: a 95,000-
  character text was cut to its first 31 tokens, and a text of words the run never saw
  (every id UNK) got as confident an answer as any, without a word (a trial)."""
  ids = np.asarray(task.tokenizer.encode(text))
  used = ids[:task.seq_len - 1]  # text_lib.pad_rows: L - 1 tokens and EOS
  unknown = int(np.sum(used == text_lib.UNK)) if task.tokenizer.kind != "byte" else 0
  if len(ids) > len(used):
    logging.warning("text %d: %d %s tokens, of which the model reads the first %d "
                    "(task.seq_len = %d); the rest did not count", n, len(ids),
                    task.tokenizer.kind, len(used), task.seq_len)
  if len(used) and unknown == len(used):
    logging.warning("text %d: none of its %d %s tokens is in the run's vocabulary (each is "
                    "UNK): its label is the model's answer to unknown tokens, not to the text",
                    n, len(used), task.tokenizer.kind)
  return {"tokens": int(len(ids)), "tokens_read": int(len(used)), "unknown_tokens": unknown}


def _define_flags() -> None:
  """Command-line flags, defined only when this module is the program: the trainer
  imports it as a library (init_from), and absl flags are process-global."""
  global _WORKDIR, _TEXT, _FILE
  _WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a text_classification run.")
  _TEXT = flags.DEFINE_multi_string("text", [], "Text to classify (repeatable).")
  _FILE = flags.DEFINE_string("file", None, "File with one text per line.")


def _read_lines(path: str) -> list[str]:
  p = Path(path).expanduser()
  if not p.is_file():
    problem = ("is a directory" if p.is_dir() else "is not a regular file" if p.exists()
               else "no such file")
    raise InputError(f"--file={path}: {problem}; pass a text file with one text per line")
  try:
    text = p.read_text(encoding="utf-8")
  except UnicodeDecodeError as e:
    raise InputError(f"--file={path} is not UTF-8 text ({e.reason} at byte {e.start}); "
                     "save it as UTF-8") from None
  # Lines end at "\n" only (a "\r" before it too): str.splitlines also splits at form feeds,
  # U+2028 and other characters a text may hold, so a 2-line file gave 4 predictions.
  lines = [l.removesuffix("\r") for l in text.removesuffix("\n").split("\n")]
  blank = [i for i, l in enumerate(lines, 1) if not l.strip()]
  if len(blank) == len(lines):
    raise InputError(f"--file={path} holds no text; put one text per line")
  if blank:  # said, so that rows are not pasted beside the file's lines one to one
    shown = ", ".join(map(str, blank[:5])) + (" ..." if len(blank) > 5 else "")
    logging.warning("--file=%s: %d blank line%s (line %s) skipped: the rows printed are the "
                    "file's other %d lines, in order", path, len(blank),
                    "" if len(blank) == 1 else "s", shown, len(lines) - len(blank))
  if p.suffix.lower() in (".csv", ".tsv"):
    logging.warning("--file=%s reads one text per line: a CSV's header and every column of a "
                    "row (its label too) are classified as one text", path)
  return [l for l in lines if l.strip()]


def main(argv) -> int:
  if len(argv) > 1:
    raise InputError(f"unexpected arguments {argv[1:]}; quote a text with spaces: --text=\"a b\"")
  if not _WORKDIR.value or not (_TEXT.value or _FILE.value):
    raise InputError("--workdir=DIR and --text=... (or --file=lines.txt) are required")
  if any(not t.strip() for t in _TEXT.value):  # --file skips blank lines likewise
    raise InputError("--text is empty; give the text to classify, e.g. --text=\"a great film\"")
  texts = list(_TEXT.value) + (_read_lines(_FILE.value) if _FILE.value else [])
  output_paths.check_local(_WORKDIR.value, "--workdir")
  workdir = workdir_layout.check_run_to_read(_WORKDIR.value, "--workdir",
                                             "a finished text_classification run",
                                             task="text_classification")
  from research import workdir as workdir_lib
  saved = workdir_lib.saved_config(workdir)  # broken JSON: refused naming the file and the fix
  task_name = saved["task"]["name"]  # saved_config refused a config.json without one
  from research import tasks
  if getattr(tasks.REGISTRY.get(task_name), "for_prediction", None) is None:
    # Refused before the run is rebuilt: rebuilding reads its data and compiles its model.
    raise InputError(f"--workdir={_WORKDIR.value} is a {task_name!r} run, which does not predict "
                     "labels; research.predict needs a text_classification run")
  try:
    exp, params, step = load_run(_WORKDIR.value)
  except InputError:  # names its file and the fix already (a damaged vocabulary.json)
    raise
  except ValueError as e:  # the run's own data or config no longer loads
    raise InputError(f"--workdir={_WORKDIR.value}: {e}") from None
  rows = predict_texts(exp, params, texts)
  print(f"# {_WORKDIR.value} checkpoint {step}; label\tprobability\tall probabilities\ttext")
  for text, r in zip(texts, rows):
    probs = " ".join(f"{k}={v:.3f}" for k, v in r["probabilities"].items())
    print(f"{r['label']}\t{r['probability']:.3f}\t{probs}\t{_one_field(text)}", flush=True)
  return 0


def _one_field(text: str) -> str:
  return (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
          .replace("\r", "\\r"))


if __name__ == "__main__":
  _define_flags()
  cli.run(main)
