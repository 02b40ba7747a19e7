"""Chan et al. 2022: which data properties make ICL emerge, Transformer vs LSTM.

  python -m experiments.chan2022 --preset=cpu --workdir=runs/chan2022      # Gaussian source
  python -m experiments.chan2022 --preset=cpu --steps=1000 --workdir=runs/chan_quick
  python -m experiments.chan2022 --preset=chan_cpu --workdir=runs/chan_omniglot  # prepared TFDS
  python -m experiments.chan2022 --preset=paper --workdir=runs/chan_paper  # Chan's, accelerator

A grid over the fraction of bursty sequences x the Zipf exponent x the model
family (cpu preset: Reddy's Gaussian classes with K = 2048, 2000 steps)
(configs/bursty_classification.py `get_sweep("chan_grid")`): the Transformer and an LSTM
on the same data and budget, its width matching the Transformer's parameter count on the cpu
presets, and Chan's 12 layers of width 64 (the Transformer's depth and width) on `paper`.
Every cell is one `train_and_evaluate` run in WORKDIR/CELL (reused when finished). Printed: ICL (holdout /
novel classes, labels reassigned) and in-weights (no support) accuracy per cell, both over
the full label vocabulary and restricted to the labels in the context. Writes
WORKDIR/results.json and WORKDIR/figures/chan_grid.png.
"""
from __future__ import annotations

from pathlib import Path

from absl import flags

from configs import bursty_classification
from experiments import common
from research import cli
from research.analysis import classification_plots as cplots
from research.workdir import write_json

PAPER = "Chan et al. 2022, data properties drive emergent ICL (burstiness x Zipf x model)"
PRESETS = {"tiny": "8 runs of the tiny config",
           "cpu": "8 runs of 2000 steps, Gaussian classes, K = 2048",
           "paper": "Omniglot (configs' `chan` preset), 8 runs of 5e5 steps; prepared TFDS "
                    "omniglot; an accelerator job",
           "chan_cpu": "Omniglot on CPU (prepared TFDS omniglot)"}
CONFIG_PRESET = {"paper": "chan"}  # the configs' preset behind a preset of this experiment

# Chan's trade-off needs classes the model cannot all memorise: on the Gaussian source
# K = 2048 (Reddy's K sweep: in-weights accuracy 0.04 at K = 2048 with uniform classes)
# and 2000 steps, so that a Zipfian skew makes the common classes learnable in weights.
PRESET_OVERRIDES = {"cpu": {"task.num_classes": 2048, "train.num_steps": 2000}}


def _iwl_chance(config) -> float:
  from research.tasks.classification import ClassificationTask
  return ClassificationTask(config.task, config.seed).iwl_chance["iwl"]


def run(preset: str, workdir, seed: int = 0, steps: int = 0, sweep: str = "chan_grid") -> None:
  """Trains (or reuses) every cell of the grid in WORKDIR/CELL; writes WORKDIR/results.json
  and WORKDIR/figures/chan_grid.png."""
  out = Path(workdir)
  base = dict(PRESET_OVERRIDES.get(preset, {}))
  if steps:
    base["train.num_steps"] = steps
  grid = cli.load_sweep(bursty_classification.__file__, sweep)
  make = lambda overrides: common.make_config(bursty_classification,
                                              CONFIG_PRESET.get(preset, preset), base | overrides,
                                              seed)
  make({})  # a bad preset fails before anything is written
  (out / "figures").mkdir(parents=True, exist_ok=True)
  cells = []
  for ov in grid:
    name = "_".join(f"{k.split('.')[-1]}{v}" for k, v in ov.items())
    cell_run = common.classification_run(out, name, make(ov))
    p = cell_run["probe"]["probes"]
    cell = {"model": ov.get("model.name", "transformer"),
            "data": f"p_bursty={ov.get('task.p_bursty', '-')}, alpha={ov.get('task.zipf_alpha', '-')}",
            "icl": p["icl"]["acc_full"], "icl_context": p["icl"]["acc_context"],
            "iwl": p["iwl"]["acc_full"],
            # Zipf-drawn queries mostly test frequent classes; uniform ones test every class.
            "iwl_uniform": p.get("iwl_uniform", p["iwl"])["acc_full"],
            # what answering the most frequent label scores on the Zipf-drawn queries (a run
            # probed before the probe recorded it: from its task)
            "iwl_chance": cell_run["probe"]["chance"].get("iwl") or _iwl_chance(make(ov)),
            "num_params": cell_run["summary"]["num_params"],
            "overrides": ov}
    cells.append(cell)
    print(f"[{name}] ICL {cell['icl']:.3f} (context {cell['icl_context']:.3f}) | in-weights "
          f"{cell['iwl']:.3f} | {cell['num_params']} params", flush=True)
  probe = cell_run["probe"]
  print(f"\nchance: {probe['chance']['full']:.3f} over the vocabulary, "
        f"{probe['chance']['context']:.3f} among the {probe['ways']} labels in context")
  print(f"{'model':12s} {'data':28s} {'ICL':>6s} {'ICL ctx':>8s} {'IWL':>6s}")
  for c in cells:
    print(f"{c['model']:12s} {c['data']:28s} {c['icl']:6.3f} {c['icl_context']:8.3f} {c['iwl']:6.3f}")
  cplots.grid(cells, out / "figures" / "chan_grid.png", row_key="model", col_key="data",
              title=f"Chan 2022 grid ({preset} preset)")
  write_json(out / "results.json", cells, indent=1)
  common.print_verdicts("chan2022", out, preset)
  print(f"\nresults: {out / 'results.json'}; figure: {out / 'figures' / 'chan_grid.png'}")


def define_flags(fv) -> None:
  common.define_run_flags(fv, PRESETS)
  flags.DEFINE_integer("steps", 0, "Override train.num_steps (0 = preset).", lower_bound=0,
                       flag_values=fv)
  flags.DEFINE_string("sweep", "chan_grid", "get_sweep() name in configs/bursty_classification.py.",
                      flag_values=fv)


def main(argv=None) -> int:
  args = common.parse_run_flags(define_flags, argv, __doc__, script=__file__,
                                results=("results.json",))
  with common.owned(args.workdir, args.experiment, args.preset, args.seed):
    run(args.preset, args.workdir, args.seed, args.steps, args.sweep)
  return 0


if __name__ == "__main__":
  cli.run_script(main)
