"""Garg et al. 2022: what can Transformers learn in context? (linear regression)

  python -m experiments.garg2022 --preset=cpu --workdir=runs/garg2022
  python -m experiments.garg2022 --preset=tiny --workdir=/tmp/garg --seed=1

The main job of this repository (configs/icl_regression.py:PRESET, the run `python -m
research.main` trains) in WORKDIR, then Garg's test-time distribution shifts on the finished
model (WORKDIR/distribution_shift.json), then Garg's second function class, sparse linear
regression compared with Lasso by the task's own probe, in WORKDIR/sparse_linear/. Each run
is reused when WORKDIR already holds it finished. Prints this seed's claim verdicts as
`reproduce garg2022` scores them (common.print_verdicts; reproduce aggregates the seeds).
"""
from __future__ import annotations

from pathlib import Path

from configs import icl_regression
from experiments import common
from research import cli
from research.workdir import write_json

PAPER = "Garg et al. 2022, What Can Transformers Learn In-Context? (linear regression)"
PRESETS = {"tiny": "the tiny config: linear run, shift probe, sparse-linear run",
           "cpu": "the linear run (the README main job), the distribution-shift probe and "
                  "the sparse-linear run",
           "paper": "the paper preset of configs/icl_regression.py: an accelerator job"}

# Non-zero coordinates of w for the sparse-linear run: Garg's s = 3 of d = 20; the cpu
# and tiny presets (d = 5) keep w sparse with s = 2.
GARG_SPARSITY = {"paper": 3, "cpu": 2, "tiny": 2}


def write_shift_probe(run_dir: Path) -> Path:
  """Garg's test-time distribution shifts on the finished run: run_dir/distribution_shift.json."""
  import jax

  from research import keys, predict
  exp, params, step = predict.load_run(run_dir)
  key = jax.random.fold_in(exp.root_key, keys.SHIFT_PROBE)  # not the probe's prompts
  with exp.precision():  # the targets' matmuls too, as in training
    res = exp.task.shift_probe(exp.predict_fn(params), key, exp.config.probe)
  path = Path(run_dir) / "distribution_shift.json"
  write_json(path, res | {"step": int(step)}, indent=1)
  d = res["n_dims"]
  tail = lambda c: sum(c[d:]) / max(len(c) - d, 1)  # mean error over k >= d
  for shift, curves in res["shifts"].items():
    print(f"shift {shift:10s}: error at k >= d: model {tail(curves['model']):.3f}, least squares "
          f"{tail(curves['least_squares']):.3f}", flush=True)
  return path


def run(preset: str, workdir, seed: int = 0) -> None:
  """The linear run and its shift probe in WORKDIR, the sparse-linear run in
  WORKDIR/sparse_linear."""
  workdir = Path(workdir)
  common.train_or_reuse(common.make_config(icl_regression, preset, seed=seed), workdir)
  write_shift_probe(workdir)
  sparse = {"task.function": "sparse_linear", "task.sparsity": GARG_SPARSITY[preset]}
  common.train_or_reuse(common.make_config(icl_regression, preset, sparse, seed),
                        workdir / "sparse_linear")
  common.print_verdicts("garg2022", workdir, preset)


def define_flags(fv) -> None:
  common.define_run_flags(fv, PRESETS)


def main(argv=None) -> int:
  args = common.parse_run_flags(define_flags, argv, __doc__, script=__file__,
                                results=("distribution_shift.json", "sparse_linear"))
  with common.owned(args.workdir, args.experiment, args.preset, args.seed):
    run(args.preset, args.workdir, args.seed)
  return 0


if __name__ == "__main__":
  cli.run_script(main)
