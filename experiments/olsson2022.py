"""Induction heads and the phase change (Olsson et al. 2022): 1, 2, 3 attention-only layers.

  python -m experiments.olsson2022 --preset=cpu --workdir=runs/olsson2022
  python -m experiments.olsson2022 --preset=cpu --workdir=runs/olsson2022 --layers=2
  python -m experiments.olsson2022 --preset=tiny --workdir=/tmp/olsson --seed=1

Trains configs/induction.py:PRESET with 1, 2 and 3 (tiny: 1 and 2) attention-only layers in
WORKDIR/L<n>/ (normal run directories: rerunning resumes / reuses them). The
dense schedule comes from the task's `evaluate` (metrics.jsonl `eval_*` every
`train.eval_every` steps): ICL score, loss, per-head prefix-matching and
previous-token scores. Then, per model:
  * phase change: the window of `--window_fraction` of training where the ICL
    score falls fastest (research/probes/attention.steepest_drop);
  * heads whose prefix-matching score rises by >= --min_rise in that window;
  * ablation: those heads zeroed in the final model (head_mask), ICL score change.
Writes WORKDIR/olsson2022.json, WORKDIR/olsson2022_curves.png (loss, ICL score,
top prefix-matching vs tokens, windows shaded) and WORKDIR/olsson2022_heads.png
(layer x head prefix-matching before / after the window), and prints each claim's verdict
from the scorer that `reproduce olsson2022` uses (experiments/claims/olsson.py).
"""
from __future__ import annotations

import time
from pathlib import Path

from absl import flags

from experiments import common
from research import cli
from research.errors import InputError
from research.workdir import CHECKPOINTS, write_json


PAPER = "Olsson et al. 2022, in-context learning and induction heads (1-3 layers)"
PRESETS = {"tiny": "1 and 2 layers of the tiny config",
           "cpu": "1, 2 and 3 layers",
           "paper": "width 768, context 512, 20k steps x 3 models"}


def layers_for(preset: str) -> tuple[str, ...]:
  """The layer counts a preset trains by default (tiny: the two that differ)."""
  return ("1", "2") if preset == "tiny" else ("1", "2", "3")


TARGETS = {"prefix_matching_2l": 0.5, "icl_drop_2l": 0.3, "window_max_fraction": 0.25,
           "prefix_matching_1l_max": 0.2, "ablation_recovery": 0.5}


def final_params(config, workdir: Path):
  from research import checkpoint as ckpt_lib
  from research import experiment

  exp = experiment.Experiment(config)
  ckpt = ckpt_lib.Checkpointer(workdir / CHECKPOINTS, max_to_keep=config.train.keep_checkpoints,
                               async_save=False, read_only=True)
  try:
    state, _, _ = ckpt.restore(ckpt_lib.abstract_like(exp.abstract_state, exp.state_sharding))
  finally:
    ckpt.close()
  return exp, state.params


def analyse(config, workdir: Path, rows: list[dict], window_fraction: float, min_rise: float):
  """Phase-change window, rising heads and their ablation for one run."""
  import numpy as np

  from research.probes import attention as scores

  mc, tr = config.model, config.train
  names = [f"L{i}H{h}" for i in range(mc.num_layers) for h in range(mc.num_heads)]
  steps = np.array([r["step"] for r in rows])
  icl = np.array([r["icl_score"] for r in rows])
  pm = np.array([[r[f"pm_{n}"] for n in names] for r in rows])
  intervals = max(1, round(window_fraction * tr.num_steps / tr.eval_every))
  win = scores.steepest_drop(steps, icl, intervals)
  heads = scores.rising_heads(pm, win["start_index"], win["end_index"], names, min_rise=min_rise)
  exp, params = final_params(config, workdir)
  with exp.precision():  # the run's matmul precision, as its periodic evals (train.py)
    full = float(exp.task.eval_raw(exp, params)["icl_score"])
    ablation = {"heads": [h["head"] for h in heads], "icl_score": full}
    if heads:
      mask = scores.head_mask(mc.num_layers, mc.num_heads, ablation["heads"])
      ablation["icl_score_ablated"] = float(exp.task.eval_raw(exp, params, mask)["icl_score"])
      ablation["icl_change"] = ablation["icl_score_ablated"] - full
  tokens_per_step = tr.batch_size * config.task.seq_len
  final = rows[-1]
  return {
      "num_layers": mc.num_layers, "steps": int(steps[-1]), "tokens_per_step": tokens_per_step,
      "window": win | {"fraction_of_training": (win["end_step"] - win["start_step"]) / tr.num_steps},
      "rising_heads": heads, "ablation": ablation,
      "final": {"icl_score": final["icl_score"], "loss": final["loss"],
                "prefix_matching_max": final["pm_max"], "previous_token_max": final["prev_max"],
                "prefix_matching": {n: final[f"pm_{n}"] for n in names},
                "previous_token": {n: final[f"prev_{n}"] for n in names},
                "copying": {n: final.get(f"copy_{n}") for n in names}},
      "prefix_matching_before": pm[win["start_index"]].reshape(mc.num_layers, -1).tolist(),
      "prefix_matching_after": pm[win["end_index"]].reshape(mc.num_layers, -1).tolist(),
      "best_prefix_matching_ever": float(pm.max()), "icl_min": float(icl.min()),
      "loss_curve": {"step": steps.tolist(), "loss": [float(r["loss"]) for r in rows]},
      "icl_curve": {"step": steps.tolist(), "icl_score": icl.astype(float).tolist()},
      # every head's prefix-matching score at each evaluation of icl_curve: the scorer checks
      # that the ablated heads form in its phase-change window (experiments/claims/olsson.py)
      "prefix_curve": {n: pm[:, j].astype(float).tolist() for j, n in enumerate(names)},
  }


def run(preset: str, workdir, seed: int = 0, layers=None, window_fraction: float = 0.125,
        min_rise: float = 0.1, num_steps: int = 0) -> None:
  """Trains (or reuses) one run per layer count (default: layers_for(preset)) in
  WORKDIR/L<n>; writes WORKDIR/olsson2022.json and the figures."""
  import jax

  from configs import induction as cfg_mod
  from research import config_check, train
  from research.analysis import emergence_plots
  from research.probes import plots

  layers = layers_for(preset) if layers is None else layers
  if not all(str(n).isdigit() and int(n) > 0 for n in layers):
    raise InputError(f"--layers={','.join(map(str, layers))}: give positive layer counts, e.g. 1,2,3")
  root = Path(workdir)
  root.mkdir(parents=True, exist_ok=True)
  results, runs = {}, {}
  for n in map(str, layers):
    config = common.seeded(cfg_mod.get_config(preset), seed)
    config.model.num_layers = int(n)
    if num_steps:
      config.train.num_steps = num_steps
    config_check.validate(config, jax.device_count())
    workdir = root / f"L{n}"
    t0 = time.perf_counter()
    times = common.wall_times([train.train_or_reuse(config, str(workdir))], t0)
    rows = emergence_plots.read_eval_rows(workdir / "metrics.jsonl")
    res = analyse(config, workdir, rows, window_fraction, min_rise)
    results[n] = res | times | {"workdir": str(workdir)}
    runs[n] = {"rows": rows, "window": res["window"], "tokens_per_step": res["tokens_per_step"],
               "before": res["prefix_matching_before"], "after": res["prefix_matching_after"]}
    w, ab = res["window"], res["ablation"]
    ablated = ablation_text(ab)
    print(f"{n}-layer: final prefix-matching max {res['final']['prefix_matching_max']:.3f} "
          f"(best ever {res['best_prefix_matching_ever']:.3f}), final ICL score "
          f"{res['final']['icl_score']:.3f}; steepest ICL drop {w['drop']:.3f} nats in steps "
          f"{w['start_step']}-{w['end_step']} ({w['fraction_of_training']:.2f} of training); "
          f"rising heads {[h['head'] for h in res['rising_heads']]}; {ablated}; "
          f"{common.wall_text(times)}",
          flush=True)
  out = {"preset": preset, "seed": seed, "targets": TARGETS, "runs": results}
  write_json(root / "olsson2022.json", out, indent=1)
  f1 = plots.render_curves(runs, root / "olsson2022_curves.png")
  f2 = plots.render_head_maps(runs, root / "olsson2022_heads.png")
  common.print_verdicts("olsson2022", root, preset)
  print(f"wrote {root / 'olsson2022.json'}, {f1}, {f2}")


def ablation_text(ablation: dict) -> str:
  """The ablation's line: a run with no rising head has none ('nan vs 0.163' before)."""
  if "icl_score_ablated" not in ablation:
    return "no rising head to ablate"
  return (f"ablated ICL score {ablation['icl_score_ablated']:.3f} vs "
          f"{ablation['icl_score']:.3f} (change {ablation['icl_change']:+.3f})")


def define_flags(fv) -> None:
  common.define_run_flags(fv, PRESETS)
  flags.DEFINE_list("layers", None, "Attention-only layer counts (default: 1,2,3; tiny: 1,2).",
                    flag_values=fv)
  flags.DEFINE_float("window_fraction", 0.125, "Phase-change window, fraction of training.",
                     flag_values=fv)
  flags.DEFINE_float("min_rise", 0.1, "Prefix-matching rise that marks a head.", flag_values=fv)
  flags.DEFINE_integer("num_steps", 0, "Override train.num_steps (0 = preset).", lower_bound=0,
                       flag_values=fv)


def main(argv=None) -> int:
  args = common.parse_run_flags(define_flags, argv, __doc__, script=__file__,
                                results=("olsson2022.json",))
  with common.owned(args.workdir, args.experiment, args.preset, args.seed):
    run(args.preset, args.workdir, args.seed, args.layers, args.window_fraction, args.min_rise,
        args.num_steps)
  return 0


if __name__ == "__main__":
  cli.run_script(main)
