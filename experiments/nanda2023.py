"""Grokking with progress measures (Power et al. 2022; Nanda et al. 2023).

  python -m experiments.nanda2023 --preset=cpu --workdir=runs/nanda2023
  python -m experiments.nanda2023 --preset=paper --workdir=runs/nanda2023_paper
  python -m experiments.nanda2023 --preset=cpu --workdir=runs/wd05 --set optim.weight_decay=0.5

Trains configs/grokking.py:PRESET (with the --set overrides) twice, with its weight decay
(1.0) and with weight decay 0 (the control), in WORKDIR/wd_<value>/ (each a normal run
directory: rerunning resumes).
Unless `task.key_freqs` fixes them, the main run is then replayed with its final key
frequencies fixed (WORKDIR/wd_<value>_final_freqs/, the same model), so that its
restricted and excluded loss use the final model's frequencies at every step, as
Nanda et al.'s do; the control's use each step's largest.
Progress measures come from the task's `evaluate` every `train.eval_every` steps
(metrics.jsonl `eval_*`): train/test accuracy and loss, weight norm, restricted
and excluded Fourier loss, the key frequencies. Writes:
  WORKDIR/grokking.json   per run: first step with train acc >= 0.99, first step
                          with test acc >= 0.95, final values, final key
                          frequencies and embedding spectrum, training seconds
                          (wall_s: kept when a rerun reuses the run; this call's
                          in call_wall_s, experiments/common.wall_times)
  WORKDIR/grokking.png    the progress measures of both runs
and prints one line per run, then this seed's claim verdicts as `reproduce nanda2023` scores
them (common.print_verdicts).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from absl import flags, logging

from configs import grokking as grokking_config
from experiments import common
from research import cli
from research.errors import InputError
from research.workdir import CHECKPOINTS, write_json


PAPER = "Nanda et al. 2023 / Power et al. 2022, grokking and progress measures"
PRESETS = {"tiny": "wd 1.0 and the wd 0 control, p = 31",
           "cpu": "wd 1.0, its replay with the final key frequencies, and the wd 0 control",
           "paper": "40k full-batch steps x 3 runs: wd 1.0, its replay, the control"}

TRAIN_THRESHOLD, TEST_THRESHOLD = 0.99, 0.95


def final_spectrum(config, workdir: Path) -> list[float]:
  """Embedding norm per frequency of the newest checkpoint's parameters."""
  from research import checkpoint as ckpt_lib
  from research import experiment

  exp = experiment.Experiment(config)
  ckpt = ckpt_lib.Checkpointer(workdir / CHECKPOINTS, max_to_keep=config.train.keep_checkpoints,
                               async_save=False, read_only=True)
  try:
    state, _, _ = ckpt.restore(ckpt_lib.abstract_like(exp.abstract_state, exp.state_sharding))
  finally:
    ckpt.close()
  return exp.task.embedding_spectrum(state.params)


def write_scaled_init(config, workdir: Path) -> None:
  """Step-0 checkpoint with the initial weights times `config.init_scale`; the trainer
  resumes from it. Nanda et al. initialise with std 1/sqrt(width) (0.088 at width 128),
  4.4x the Transformer's 0.02; the scale decides whether the model first memorises
  (large init, then grokking) or generalises at once (small init: Liu et al. 2023)."""
  import jax

  from research import checkpoint as ckpt_lib
  from research import experiment
  from research import workdir as workdir_lib

  scale = float(config.get("init_scale", 1.0))
  ckpt = ckpt_lib.Checkpointer(workdir / CHECKPOINTS, max_to_keep=config.train.keep_checkpoints,
                               async_save=False)
  try:
    if scale == 1.0 or ckpt.latest_step() is not None:
      return
    exp = experiment.Experiment(config)
    state = exp.init_state()
    params = jax.tree.map(lambda x: x * scale, state.params)
    # The run's config first, as the trainer writes it: a workdir with checkpoints and no
    # config.json is refused as tampered (research/workdir_resume.py), and this returns early
    # then.
    workdir_lib.write_text(workdir / workdir_lib.CONFIG, workdir_lib.config_json(config))
    ckpt.save(0, state.replace(params=params, opt_state=exp.tx.init(params)), {"step": 0})
    ckpt.wait()
  finally:
    ckpt.close()


def replay_with_final_freqs(config, workdir: Path) -> tuple[Path, dict]:
  """Nanda et al. measure restricted and excluded loss at every checkpoint with the key
  frequencies of the final model; an evaluation during training only knows the current
  model's largest ones. So the run is replayed with `task.key_freqs` fixed to its final
  key frequencies, in WORKDIR/wd_<value>_final_freqs: training is deterministic and the
  frequencies enter only the evaluations, so the replay trains the same model (its
  train/test curves equal the first run's) and logs Nanda's progress measures."""
  from research import train
  from research.analysis import emergence_plots

  freqs = emergence_plots.key_freqs(emergence_plots.read_eval_rows(workdir / "metrics.jsonl")[-1])
  replay = config.copy_and_resolve_references()
  replay.task.key_freqs = tuple(freqs)
  out = workdir.parent / f"{workdir.name}_final_freqs"
  write_scaled_init(replay, out)
  summary = train.train_or_reuse(replay, str(out))
  logging.info("replayed %s with the final key frequencies %s in %s", workdir, freqs, out)
  return out, summary


def summarise_run(rows: list[dict], times: dict, spectrum: list[float]) -> dict:
  from research.analysis.emergence_plots import first_step, key_freqs

  last = rows[-1]
  freqs = key_freqs(last)
  return {
      "train_acc_099_step": first_step(rows, "train_accuracy", TRAIN_THRESHOLD),
      "test_acc_095_step": first_step(rows, "test_accuracy", TEST_THRESHOLD),
      "final_step": last["step"],
      "final": {k: last[k] for k in ("train_accuracy", "test_accuracy", "train_loss", "test_loss",
                                     "weight_norm", "restricted_loss", "excluded_loss",
                                     "key_freq_share") if k in last},
      "max_test_accuracy": max(r.get("test_accuracy", 0.0) for r in rows),
      "final_key_freqs": freqs,
      "final_embedding_spectrum": spectrum,
      **times,  # common.wall_times: wall_s (training) and call_wall_s
  }


def reached(step: int | None, run: dict) -> str:
  """'at step 1200', or 'never (within 2500 steps)' for a threshold the run did not reach
  (grokking.json keeps null; the console line said "at step None")."""
  return f"at step {step}" if step is not None else f"never (within {run['final_step']} steps)"


def _run_configs(base, decays: list[float]) -> list:
  """The main run's config and its control's, the control checked before either trains: at the
  run's own weight decay it would be the run itself (one folder, no control: the claim could
  only say NOT_SHOWN), and its decay is held to the run's rules (>= 0, adamw); the main run's
  config is `base` (make_config validated it)."""
  import jax
  from research import config_check
  if len(decays) == 2 and decays[1] == decays[0]:
    raise InputError(f"--control_weight_decay={decays[1]:g} is the run's own weight decay "
                     f"(optim.weight_decay={decays[0]:g}), so the control would be the same run; "
                     "give the control another value (default 0) or pass --nocontrol")
  configs = []
  for wd in decays:
    config = base.copy_and_resolve_references()
    config.optim.weight_decay = wd
    configs.append(config)
  if len(configs) == 2:
    try:
      config_check.validate(configs[1], jax.device_count())
    except InputError as e:
      raise InputError(f"--control_weight_decay={decays[1]:g}: {e}") from None
  return configs


def run(preset: str, workdir, seed: int = 0, control: bool = True,
        control_weight_decay: float = 0.0, overrides: dict | None = None) -> None:
  """Trains (or reuses) configs/grokking.py:PRESET (with `overrides`, dotted fields) and its
  weight-decay control in WORKDIR/wd_<value>; writes WORKDIR/grokking.json and its figure.
  Raises ValueError for a config grokking cannot use (config_check.ConfigError is one)."""
  from research import train
  from research.analysis import emergence_plots

  base = common.make_config(grokking_config, preset, overrides, seed)
  if base.task.operation != "mod_add" or not base.train.eval_every:
    raise ValueError("grokking needs config.task.operation='mod_add' and config.train.eval_every > 0")
  decays = [float(base.optim.weight_decay)] + ([float(control_weight_decay)] if control else [])
  configs = _run_configs(base, decays)
  root = Path(workdir)
  root.mkdir(parents=True, exist_ok=True)
  results, metric_files, spectra = {}, {}, {}
  for wd, config in zip(decays, configs):
    label = f"wd={wd:g}"
    workdir = root / f"wd_{wd:g}"
    t0 = time.perf_counter()
    write_scaled_init(config, workdir)
    trained = [train.train_or_reuse(config, str(workdir))]
    if wd == decays[0] and not len(base.task.key_freqs):
      workdir, replayed = replay_with_final_freqs(config, workdir)
      trained.append(replayed)
    times = common.wall_times(trained, t0)
    rows = emergence_plots.read_eval_rows(workdir / "metrics.jsonl")
    spectra[label] = final_spectrum(config, workdir)
    results[label] = summarise_run(rows, times, spectra[label]) | {"workdir": str(workdir)}
    metric_files[label] = workdir / "metrics.jsonl"
    r = results[label]
    print(f"{label}: train acc >= {TRAIN_THRESHOLD} {reached(r['train_acc_099_step'], r)}, "
          f"test acc >= {TEST_THRESHOLD} {reached(r['test_acc_095_step'], r)} "
          f"(final train {r['final'].get('train_accuracy', float('nan')):.4f}, "
          f"test {r['final'].get('test_accuracy', float('nan')):.4f}, "
          f"max test {r['max_test_accuracy']:.4f}, weight norm {r['final']['weight_norm']:.1f}, "
          f"key freqs {r['final_key_freqs']}; {r['final_step']} steps, {common.wall_text(times)})",
          flush=True)
  out = {"config": json.loads(base.to_json_best_effort()),
         "thresholds": {"train_accuracy": TRAIN_THRESHOLD, "test_accuracy": TEST_THRESHOLD},
         "runs": results}
  write_json(root / "grokking.json", out, indent=1)
  fig = emergence_plots.render_grokking(metric_files, root / "grokking.png", spectra=spectra)
  logging.info("wrote %s and %s", root / "grokking.json", fig)
  print(f"wrote {root / 'grokking.json'} and {fig}")
  common.print_verdicts("nanda2023", root, preset)


def define_flags(fv) -> None:
  common.define_run_flags(fv, PRESETS)
  flags.DEFINE_multi_string("set", [], "Config override, KEY=VALUE, e.g. "
                            "optim.weight_decay=0.5 (repeatable).", flag_values=fv)
  flags.DEFINE_float("control_weight_decay", 0.0, "Weight decay of the control run.",
                     flag_values=fv)
  flags.DEFINE_bool("control", True, "Also train the control (--nocontrol: only the config's "
                    "weight decay, e.g. while tuning a preset).", flag_values=fv)


def main(argv=None) -> int:
  args = common.parse_run_flags(define_flags, argv, __doc__, script=__file__,
                                results=("grokking.json",))
  overrides = common.typed_overrides(grokking_config.get_config(args.preset), args.set)
  with common.owned(args.workdir, args.experiment, args.preset, args.seed):
    run(args.preset, args.workdir, args.seed, args.control, args.control_weight_decay, overrides)
  return 0


if __name__ == "__main__":
  cli.run_script(main)
