r"""Probes of every kept checkpoint of a language-model run, after the fact (issue 18 §3).

  python -m research.probe_checkpoints --workdir=runs/ladder/c3 [--out=FILE] [--windows=N] \
      [--few_shot_prompts=100]

WORKDIR is any `lm` run with checkpoints (research.main / research.sweep wrote it; this
command trains nothing). Its model and task are rebuilt from WORKDIR/config.json (the
training data is read again for its held-out windows), and each complete checkpoint, oldest
first, is restored and scored on the first N held-out windows (default: the run's
probe.eval_sequences). One JSON row per checkpoint goes to WORKDIR/probes/checkpoints.jsonl
(or --out), rewritten atomically after each one:

  step, tokens (step x batch x seq_len), num_params, loss (mean nats per token),
  loss_by_position (column i: predicting token i + 1 from tokens 0..i),
  icl_score, icl_score_se, early, late, half_window, num_windows, seq_len, windows_asked
  (N, or 0 for all; num_windows is N or the run's held-out windows, if fewer)

ICL score (Olsson et al. 2022): loss at token 500 minus loss at token 50 of a 512-token
context, both scaled to the run's context L (research/probes/attention.py icl_positions:
early = round(50 L / 512), late = min(L - 1, round(500 L / 512)); L = 128 gives tokens 12
and 125, L = 32 gives 3 and 31), each the mean over +-L // 64 positions (as the induction
task). Negative: later context helps. icl_score_se is its standard error over windows (each
window's own late-minus-early difference), the noise an untrained model's score sits in.

  heads: {'LiHj': {prefix, previous, copying}} per head (none for an LSTM). prefix-matching
    and previous-token scores (research/probes/attention.py) on `REPEATED` held-out windows whose first half
    is repeated in place of the second (Olsson's test for induction heads, on tokens the
    model knows; the uniform causal attention baseline is `prefix_baseline`); copying: the eigenvalue score of the
    head's direct-path OV circuit (tasks/induction.ov_factors).
  few_shot: research/probes/few_shot.py's copy / add / lookup prompts at k = 0, 1, 2, 4, 8
    shots (those that fit the context), --few_shot_prompts per cell (0 = off): per task and
    k, each metric's mean and 95% interval and its chance level.

Resumable: steps already in the output file are skipped, so a rerun probes only checkpoints
saved since (e.g. while the run still trains). A checkpoint that cannot be read is reported
and left for the next run (exit 6 when any failed).
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import numpy as np
from absl import flags, logging

from research import checkpoint as ckpt_lib
from research import cli, output_paths, predict
from research import workdir as workdir_lib
from research import workdir_layout, workdir_lock
from research.errors import InputError, RunsFailedError
from research.models import transformer
from research.probes import attention as scores
from research.probes import checkpoint_rows
from research.probes import few_shot
from research.tasks import induction

REPEATED = 32      # repeated random sequences for the head scores
PROBE_SEED = 0     # the same few-shot prompts for every checkpoint

OUT = Path("probes") / "checkpoints.jsonl"


def icl_summary(ce_WxL) -> dict:
  """ICL score, its standard error over windows, and its positions, from per-window losses
  (column i: predicting token i + 1)."""
  ce = np.asarray(ce_WxL, np.float64)
  seq_len = ce.shape[1]
  early, late = scores.icl_positions(seq_len)
  half_window = max(0, seq_len // 64)
  # Token-aligned: lpp[:, j] is the loss of predicting token j; token 0 is never predicted.
  lpp = np.concatenate([np.full((ce.shape[0], 1), np.nan), ce], axis=1)
  per_window = np.asarray(jax.vmap(
      lambda l: scores.icl_score(l, early, late, half_window))(lpp), np.float64)
  se = per_window.std(ddof=1) / np.sqrt(len(per_window)) if len(per_window) > 1 else float("nan")
  return {"icl_score": float(per_window.mean()), "icl_score_se": float(se), "early": early,
          "late": late, "half_window": half_window}


def repeated_tokens(exp, num: int = REPEATED) -> np.ndarray:
  """num x L: the first half of each of the first `num` held-out windows, repeated (odd L:
  the first half is one token longer). Tokens the model saw in training: a byte model has
  never seen most random byte ids, whose untrained embeddings say nothing about its heads."""
  windows = np.asarray(exp.task.eval_windows[:num])[:, :int(exp.task.seq_len)]
  seq_len = windows.shape[1]
  first = windows[:, :seq_len - seq_len // 2]
  return np.concatenate([first, first[:, :seq_len // 2]], axis=1).astype(np.int32)


@functools.lru_cache(maxsize=1)
def _pattern_scores(exp, period: int):
  """params, repeated tokens -> [(prefix, previous) per head] per layer, one compiled program
  per run (applied eagerly, the model's attention compiled ~100 programs of one op each).
  One entry: probe_run probes a run's checkpoints in a row, and a larger cache kept earlier
  runs' Experiments (their task data, their mesh) alive through a whole ladder's probes."""
  def scores_of(params, rep):
    _, state = exp.model.apply({"params": params}, rep, mutable=["intermediates"])
    return [(scores.prefix_matching_score(attn, period), scores.previous_token_score(attn))
            for attn in transformer.attention_maps(state.get("intermediates", {})).values()]
  return jax.jit(scores_of)


def head_scores(exp, params) -> dict:
  """{'LiHj': {prefix, previous, copying}} and the uniform-attention prefix baseline."""
  seq_len = int(exp.task.seq_len)
  period = seq_len - seq_len // 2
  layers = jax.device_get(_pattern_scores(exp, period)(params, repeated_tokens(exp)))
  if not layers:  # a model without attention (model.name='lstm'): no heads to score
    return {}
  copying = induction.copying_scores(params)
  heads = {}
  for layer, (prefix, previous) in enumerate(layers):
    prefix, previous = np.asarray(prefix, np.float64), np.asarray(previous, np.float64)
    for h in range(prefix.shape[0]):
      name = f"L{layer}H{h}"
      heads[name] = {"prefix": float(prefix[h]), "previous": float(previous[h]),
                     "copying": copying[name]}
  return {"heads": heads, "prefix_baseline": scores.uniform_prefix_baseline(period)}


def few_shot_scores(exp, params, num_prompts: int) -> dict:
  """few_shot.evaluate on the shots that fit the context; per task and k, each metric as
  [mean, lo, hi] and its chance level."""
  tok, seq_len = exp.task.tokenizer, int(exp.task.seq_len)
  out = {}
  for task in few_shot.TASKS:
    shots = [k for k in few_shot.SHOTS if few_shot.fits(task, k, tok, seq_len, num_prompts)]
    res = few_shot.evaluate(exp.predict_fn(params), tok, seq_len, tasks=(task,), shots=shots,
                            num_prompts=num_prompts, batch_size=min(num_prompts, 100),
                            seed=PROBE_SEED, bootstrap=500)
    out[task] = {k: {m: [c[m]["mean"], c[m]["lo"], c[m]["hi"]] for m in few_shot.am.METRICS}
                 | {"chance": c["chance"]} for k, c in res["tasks"][task].items()}
  return out


ROW_KEYS = ("step", "num_windows")  # what a rerun reads of each row it finds in --out


def probe_checkpoint(exp, params, num_windows: int, few_shot_prompts: int = 0) -> dict:
  """The row of one checkpoint's parameters (without its step)."""
  with exp.precision():  # as in training (train.matmul_precision)
    ce = exp.task.eval_losses(exp.predict_fn(params), num_windows,
                              int(exp.config.probe.batch_size))
    row = {"loss": float(ce.mean()), **icl_summary(ce), "num_windows": int(ce.shape[0]),
           "seq_len": int(ce.shape[1]), "loss_by_position": ce.mean(0).tolist(),
           **head_scores(exp, params), "few_shot_prompts": int(few_shot_prompts)}
    if few_shot_prompts:
      row["few_shot"] = few_shot_scores(exp, params, few_shot_prompts)
  return row


FEW_SHOT_DEFAULT = 100  # prompts per cell when --few_shot_prompts is not given, on text


def probe_run(workdir: str | Path, out: str | Path | None = None, windows: int = 0,
              few_shot_prompts: int | None = 0) -> list[int]:
  """Probes every checkpoint of `workdir` not yet in `out`; returns the steps it probed.
  `few_shot_prompts` None: FEW_SHOT_DEFAULT on a run trained on text, 0 on a
  task.source='synthetic' one (ids without text, so no prompt can be written)."""
  output_paths.check_local(workdir, "--workdir")
  workdir = workdir_layout.check_run_to_read(workdir, "--workdir", "an lm run", task="lm")
  saved = workdir_lib.saved_config(workdir)  # broken JSON: an InputError that says so
  task = saved["task"]["name"]  # saved_config refused a config.json without one
  if task != "lm":
    raise InputError(f"--workdir={workdir} is a {task!r} run; "
                     "research.probe_checkpoints probes language-model (task.name='lm') runs")
  ck = ckpt_lib.Checkpointer(workdir / workdir_lib.CHECKPOINTS, max_to_keep=1_000_000,
                             async_save=False, read_only=True)
  try:
    steps = ck.all_steps()
    if not steps:
      raise InputError(f"--workdir={workdir} has no complete checkpoint; train it first "
                       "(configs/lm_ladder.py's cpu preset keeps log-spaced ones)")
    config = predict.saved_run_config(workdir)  # edited: refused before anything is written
    few_shot_prompts = _few_shot_for(workdir, config, few_shot_prompts)
    # Checked before the lock beside it is taken: a directory or a read-only place was an
    # I/O error (exit 5, no fix named) and could leave a stray .lock behind.
    given, out = out, Path(out).expanduser() if out else workdir / OUT
    try:
      output_paths.check_output(str(out), "--out", example="checkpoints.jsonl", rewrites=True)
    except InputError as e:
      if given:
        raise
      # Its reason, about the default place, not a flag given (a read-only workdir).
      raise InputError(f"--workdir={workdir}: the probe's rows go to {OUT} in it unless "
                       f"--out says otherwise, and " + str(e).replace(f"--out={out}", str(out))
                       + "; or pass --out=FILE elsewhere") from None
    _refuse_another_runs(out, workdir)
    out.parent.mkdir(parents=True, exist_ok=True)
    # A folder of the user's other than the run's keeps no .lock after the probe.
    tidy = not out.parent.resolve().is_relative_to(workdir.resolve())
    with workdir_lock.Lock(out.parent, "research.probe_checkpoints", tidy=tidy):
      return _probe_steps(workdir, ck, steps, out, windows, few_shot_prompts, config)
  finally:
    ck.close()


def _refuse_another_runs(out: Path, workdir: Path) -> None:
  """Rows are matched to checkpoints by step alone: --out into another run's directory (its
  probes/checkpoints.jsonl) skipped this run's steps that one had probed and appended the
  rest to the other run's record."""
  real = out.resolve()
  other = next((d for d in real.parents if d != workdir.resolve()
                and not workdir.resolve().is_relative_to(d) and workdir_lib.is_run_dir(d)), None)
  if other is not None:
    raise InputError(f"--out={out} is inside another run ({other}), whose probe rows it would "
                     f"mix with {workdir}'s; leave --out out (the rows go to {workdir / OUT}) "
                     "or name a file outside both runs")


def _few_shot_for(workdir: Path, config, asked: int | None) -> int:
  """The few-shot prompts per cell for this run: a synthetic run's tokenizer has no text
  to encode prompts with (an AttributeError traceback at the default 100 before)."""
  synthetic = config.task.get("source") == "synthetic"
  if asked is None:
    return 0 if synthetic else FEW_SHOT_DEFAULT
  if asked and synthetic:
    raise InputError(f"--few_shot_prompts={asked}: --workdir={workdir} trained on "
                     "task.source='synthetic' ids, which have no text to write the few-shot "
                     "prompts in; pass --few_shot_prompts=0 (its loss and head probes still run)")
  return asked


def _probe_steps(workdir: Path, ck, steps: list[int], out: Path, windows: int,
                 few_shot_prompts: int, config) -> list[int]:
  """Probes STEPS not yet in OUT; CONFIG: the run's saved_run_config."""
  rows = _read_rows(out)
  other = {r.get("few_shot_prompts", 0) for r in rows} - {few_shot_prompts}
  if other:
    raise InputError(f"{out} holds rows with {sorted(other)} few-shot prompts per cell, this "
                     f"probe {few_shot_prompts}; pass --few_shot_prompts={sorted(other)[0]} or "
                     "another --out")
  done = {r["step"] for r in rows}
  # Rows over the windows asked for (num_windows is min(asked, the run's held-out windows);
  # rows of older versions lack windows_asked): when nothing is new, only a mismatch needs
  # the run rebuilt to be sure of, so that the same flags are refused whether or not a
  # checkpoint was added since.
  windows = windows or int(config.probe.eval_sequences)
  asked = {r.get("windows_asked", r["num_windows"]) for r in rows}
  if not set(steps) - done and asked <= {windows}:
    logging.info("%s: all %d checkpoints already in %s", workdir, len(steps), out)
    return []
  exp = predict.open_run(workdir, config)  # refuses data changed since training (its record)
  wanted = min(windows, len(exp.task.eval_windows)) if windows else len(exp.task.eval_windows)
  other = {r["num_windows"] for r in rows} - {wanted}
  if other:
    raise InputError(f"{out} holds rows over {sorted(other)} held-out windows, this probe "
                     f"{wanted}; pass --windows={sorted(other)[0]} or another --out")
  if not set(steps) - done:
    logging.info("%s: all %d checkpoints already in %s", workdir, len(steps), out)
    return []
  todo = [s for s in steps if s not in done]
  _say_what_the_scores_rest_on(exp, config, windows)
  logging.info("%s: %d checkpoints, %d already in %s, %d to probe", workdir, len(steps),
               len(steps) - len(todo), out, len(todo))
  abstract = ckpt_lib.abstract_like(exp.abstract_state, exp.state_sharding)
  predict.check_fits(workdir, ck, todo[-1], abstract)  # an edited config.json: say so first
  tokens_per_step = int(exp.config.train.batch_size) * int(exp.task.seq_len)
  probed, failed = [], []
  for step in todo:
    try:
      state, _, _ = ck.restore(abstract, step=step)
    except ckpt_lib.CheckpointError as e:  # deleted by a live run, or damaged: not ours to fix
      logging.warning("checkpoint %d not probed: %s", step, e)
      failed.append(f"{step} ({cli.one_line(e)[:200]})")
      continue
    row = {"step": step, "tokens": step * tokens_per_step, "num_params": int(exp.num_params),
           **probe_checkpoint(exp, state.params, windows, few_shot_prompts),
           "windows_asked": windows}  # 0: all
    rows = sorted(rows + [row], key=lambda r: r["step"])
    workdir_lib.write_text(out, "".join(json.dumps(r) + "\n" for r in rows))
    probed.append(step)
    print(checkpoint_rows.console_line(row), flush=True)
  if failed and not probed and not done:  # nothing restorable: the run's checkpoints are gone
    raise ckpt_lib.CheckpointError(
        f"no checkpoint of {workdir} could be restored: {'; '.join(failed)}; restore its "
        "checkpoints directory from a backup or retrain the run")
  if failed:
    raise RunsFailedError(f"{len(failed)} checkpoint(s) of {workdir} not probed: "
                          + "; ".join(failed) + f"; the others are in {out}")
  return probed


def _say_what_the_scores_rest_on(exp, config, windows: int) -> None:
  """Warnings a reader of the rows needs: fewer held-out windows than asked (the rows said
  so, the console did not), and a synthetic run's uniform ids, from which nothing can be
  learnt, so that every score is noise around its uniform level."""
  have = len(exp.task.eval_windows)
  if windows > have:
    logging.warning("%d held-out windows asked for, the run has %d: each row is over those %d",
                    windows, have, have)
  if config.task.get("source") == "synthetic":
    logging.warning("task.source='synthetic': uniform random ids, which no model can predict "
                    "better than log(vocab) = %.3f nats at any position, so the ICL and head "
                    "scores below are noise around 0 and the uniform baseline, not "
                    "in-context learning; probe a run trained on text for that",
                    np.log(int(exp.task.io.vocab_size)))


def _read_rows(out: Path) -> list[dict]:
  """The rows already in OUT, each checked to be one this command wrote (it writes the whole
  file atomically, so a torn or foreign line is not its own): another file given as --out
  was overwritten (a one-line text file read as a torn JSONL line) or was a traceback."""
  try:
    lines = out.read_text(encoding="utf-8").splitlines()
  except FileNotFoundError:
    return []
  except (OSError, UnicodeDecodeError) as e:
    raise InputError(f"{out} cannot be read as probe rows ({cli.one_line(e)[:120]}); "
                     "pass --out=FILE, a new file or one this command wrote") from None
  rows = []
  for i, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      row = json.loads(line)
    except ValueError:
      row = None
    if not (isinstance(row, dict) and all(type(row.get(k)) is int for k in ROW_KEYS)):
      raise InputError(f"{out} is not a file of research.probe_checkpoints rows (line {i} is "
                       f"not one: no integer {' and '.join(ROW_KEYS)}); it is left as it is: "
                       "pass --out=FILE, a new file or one this command wrote")
    rows.append(row)
  return rows


def _define_flags() -> None:
  """Flags only when this module is the program (absl flags are process-global)."""
  global _WORKDIR, _OUT, _WINDOWS, _FEW_SHOT
  _WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of an lm run with checkpoints.")
  _OUT = flags.DEFINE_string("out", None, f"JSONL file of the rows; default WORKDIR/{OUT}.")
  _WINDOWS = flags.DEFINE_integer("windows", 0, "Held-out windows per checkpoint; 0 = the "
                                  "run's probe.eval_sequences.")
  _FEW_SHOT = flags.DEFINE_integer("few_shot_prompts", None, "Prompts per few-shot (task, k) "
                                   f"cell; 0 = no few-shot probe; default {FEW_SHOT_DEFAULT}, "
                                   "0 on a task.source='synthetic' run.")


def main(argv) -> int:
  if len(argv) > 1:
    raise InputError(f"unexpected arguments {argv[1:]}; pass --workdir=DIR [--out=FILE]")
  if not _WORKDIR.value:
    raise InputError("--workdir=DIR is required: the workdir of an lm run with checkpoints")
  if _WINDOWS.value < 0:
    raise InputError(f"--windows={_WINDOWS.value} must be >= 0 (0: the run's probe.eval_sequences)")
  if _FEW_SHOT.value is not None and _FEW_SHOT.value < 0:
    raise InputError(f"--few_shot_prompts={_FEW_SHOT.value} must be >= 0 (0: no few-shot probe)")
  probed = probe_run(_WORKDIR.value, _OUT.value, _WINDOWS.value, _FEW_SHOT.value)
  print(f"probed {len(probed)} checkpoint(s): {probed}", flush=True)
  return 0


if __name__ == "__main__":
  _define_flags()
  cli.run(main)
