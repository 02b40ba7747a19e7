"""Writes one notebook per paper into colab/ (outputs stripped), from the texts below.

  python colab/build_notebooks.py          # rewrite colab/<name>.ipynb for every paper
  python colab/build_notebooks.py --check  # exit 1 if a stored notebook differs from its text

Every paper notebook has the same spine, so it lives here once: install, devices and
preset, `experiments.reproduce.reproduce(NAME, PRESET, WORKDIR)` (the command's own
function: it trains, scores each headline claim and renders the figures), the verdict
table and figures, then one "change one thing" cell that calls the same library with one
knob turned. Only the texts and that last cell differ per paper. The quickstart notebook
is written by hand. tests/test_notebooks.py executes every notebook on the tiny preset.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

INSTALL = """\
# Install (Colab): set RESEARCH_REPO to this project's git URL, or upload the project
# folder and `pip install -e` it; locally, `pip install -e .` from the repository root.
import importlib.util, os, subprocess, sys
if importlib.util.find_spec('research') is None:
    REPO = os.environ.get('RESEARCH_REPO')
    if not REPO:
        raise RuntimeError('research is not installed: set RESEARCH_REPO=<git url of this project> '
                           'or run `pip install -e <project folder>` first')
    subprocess.run(['git', 'clone', '-q', REPO, 'research_repo'], check=True)
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-e', 'research_repo'], check=True)
    sys.path.insert(0, os.path.abspath('research_repo'))  # importable without a kernel restart"""

SETUP = """\
PRESET = os.environ.get('RESEARCH_NOTEBOOK_PRESET', 'tiny')  # 'tiny' | 'cpu' | 'paper'
WORKDIR = os.environ.get('RESEARCH_NOTEBOOK_WORKDIR', '/tmp/{name}')
import jax
from pathlib import Path
from IPython.display import Image, Markdown, display
from experiments import reproduce
# The configs' mesh.data = -1 spreads the batch over every device of this runtime
# (TPU cores, GPUs or the CPU), so the same cells run on all of them.
print(jax.device_count(), 'device(s):', jax.devices())
print(reproduce.SPECS['{name}'].paper)
for preset, expected in reproduce.SPECS['{name}'].times.items():
    print(f'  {{preset:5s}}: {{expected}}')"""

RUN = """\
summary = reproduce.reproduce('{name}', PRESET, Path(WORKDIR))
assert not summary['error'], summary['error']
display(Markdown(reproduce.table(summary['claims'])))
for figure in summary['figures']:
    display(Image(figure))"""

PAPERS = {
    "garg2022": dict(
        title="Garg et al. 2022: what can Transformers learn in context? (linear regression)",
        intro="A Transformer trained on prompts (x_1, f(x_1), ..., x_k) of random linear functions "
              "predicts f(x_k+1) as well as least squares once k >= d, and far better than "
              "averaging or nearest neighbours.",
        change_md="Garg's other function classes: a ReLU network instead of a linear map "
                  "(the probe's baselines follow the class).",
        change="""\
from configs import icl_regression
from research import train
config = icl_regression.get_config(PRESET)
config.task.function = 'relu_net'
result = train.train_or_reuse(config, f'{WORKDIR}/relu_net')
display(Image(f'{WORKDIR}/relu_net/figures/icl_regression.png'))"""),
    "raventos2023": dict(
        title="Raventós et al. 2023: task diversity and the emergence of non-Bayesian ICL",
        intro="Pretrained on a finite pool of M regression tasks, a Transformer behaves like the "
              "Bayes posterior over that pool (dMMSE) when M is small and like ridge regression "
              "(the prior's optimum on fresh tasks) once M passes a threshold M*. Every M trains "
              "as one member of a single vmapped ensemble.",
        change_md="A different grid of pool sizes: the ensemble holds the largest pool, every "
                  "member samples from its own first M tasks.",
        change="""\
from experiments import raventos2023
res = raventos2023.main([f'--preset={PRESET}', f'--out={WORKDIR}/pools', '--pools=4,64,1024'])
print('M* =', res['m_star'])
display(Image(f'{WORKDIR}/pools/figures/raventos2023.png'))"""),
    "chan2022": dict(
        title="Chan et al. 2022: data distributional properties drive emergent in-context learning",
        intro="In-context learning of few-shot classification appears when training sequences are "
              "bursty and classes follow a Zipfian long tail, and needs a Transformer: an LSTM "
              "of the same size learns in weights only.",
        change_md="One bursty-classification run with half the sequences bursty.",
        change="""\
from configs import bursty_classification
from research import train
config = bursty_classification.get_config('chan' if PRESET == 'paper' else PRESET)  # as reproduce
config.task.p_bursty = 0.5
result = train.train_or_reuse(config, f'{WORKDIR}/p_bursty_0.5')
print({k: v for k, v in result.items() if k.startswith('final_')})"""),
    "reddy2023": dict(
        title="Reddy 2023: the mechanistic basis of abrupt in-context learning",
        intro="With bursty sequences a Transformer's in-context accuracy jumps abruptly from "
              "chance to near 1; without burstiness (B = 0) it learns the classes in weights.",
        change_md="The Transformer run with four times as many classes K (more classes favour "
                  "in-context over in-weights learning).",
        change="""\
from configs import bursty_classification
from experiments import reddy2023
config = bursty_classification.get_config(PRESET)
config.task.num_classes *= 4
res = reddy2023.run_one(Path(WORKDIR) / 'more_classes', 'transformer', config)"""),
    "olsson2022": dict(
        title="Olsson et al. 2022: in-context learning and induction heads",
        intro="Attention-only Transformers with two or more layers form induction heads in a "
              "short phase change in which the in-context-learning score drops; one-layer "
              "models cannot. Ablating the detected heads undoes most of the drop.",
        change_md="A full two-layer Transformer (with MLPs) instead of attention-only.",
        change="""\
from configs import induction
from research import train
config = induction.get_config(PRESET)
config.model.num_layers, config.model.attention_only = 2, False
result = train.train_or_reuse(config, f'{WORKDIR}/full_2l')
print({k: v for k, v in result.items() if k.startswith('final_')})"""),
    "xie2021": dict(
        title="Xie et al. 2021: in-context learning as implicit Bayesian inference (GINC)",
        intro="Language models pretrained on a mixture of HMMs (GINC) infer the latent concept "
              "from in-context examples: accuracy rises with the number of examples n and their "
              "length k; Transformers are compared with an LSTM.",
        change_md="Only the LSTM and the smallest Transformer, side by side.",
        change="""\
from experiments import xie2021
res = xie2021.run(PRESET, f'{WORKDIR}/two_models', models=('transformer_s', 'lstm'))"""),
    "schaeffer2023": dict(
        title="Schaeffer et al. 2023: are emergent abilities a mirage? (exact match vs continuous metrics)",
        intro="Across model sizes, exact match on multi-digit arithmetic looks sharp while "
              "per-token accuracy, edit distance and log-likelihood of the same outputs change "
              "smoothly: the sharpness comes from the metric.",
        change_md="The same sweep on multiplication instead of addition.",
        change="""\
from experiments import emergence_scale
res = emergence_scale.main([f'--preset={PRESET}', f'--out={WORKDIR}/mul', '--sizes=0,1',
                            '--set', 'task.operation=mul'])"""),
    "nanda2023": dict(
        title="Nanda et al. 2023 / Power et al. 2022: grokking and its progress measures",
        intro="On modular addition with 30% of pairs for training, a one-layer Transformer "
              "memorises first and generalises much later, with weight decay; Fourier "
              "progress measures show the circuit forming before test accuracy jumps.",
        change_md="Half of the pairs for training, without the weight-decay-0 control run.",
        change="""\
from configs import grokking as grokking_config
from experiments import grokking
config = grokking_config.get_config(PRESET)
config.task.train_fraction = 0.5   # the full batch follows (a FieldReference)
res = grokking.run(config, f'{WORKDIR}/half', control=False)"""),
    "besiroglu2024": dict(
        title="Besiroglu et al. 2024: Chinchilla scaling, a replication attempt",
        intro="Approach 3 of Hoffmann et al. refitted on the data extracted from their figure: "
              "L(N, D) = E + A/N^alpha + B/D^beta with a Huber loss on log-loss, L-BFGS from a "
              "grid of starts and bootstrap standard errors. This runs on CPU on every preset. "
              "It reads `../shared/data/chinchilla_svg_extracted_data.csv` beside the "
              "repository: on Colab, upload that file there first.",
        change_md="The fit on all 245 points (Besiroglu drop the 5 highest-loss ones).",
        change="""\
from experiments import scaling_fit
scaling_fit.main(['--all-points', '--bootstrap', '0', '--top-starts', '20',
                  '--out', f'{WORKDIR}/all_points_quick'])"""),
}


def _cell(kind: str, text: str) -> dict:
  cell = {"cell_type": kind, "id": "", "metadata": {}, "source": text.splitlines(keepends=True)}
  if kind == "code":
    cell.update(execution_count=None, outputs=[])
  return cell


def notebook(name: str) -> dict:
  p = PAPERS[name]
  cells = [
      _cell("markdown", f"# {p['title']}\n\n{p['intro']}\n\n"
                        f"This notebook calls `python -m experiments.reproduce {name}`'s own "
                        "function: it trains (or reuses finished runs), checks each headline "
                        "claim against the paper and renders the figures. On Colab choose a TPU "
                        "or GPU runtime and run the install cell; `PRESET = 'tiny'` runs in "
                        "seconds on a CPU, `'cpu'` is the README gallery's setup and `'paper'` "
                        "the paper's where this paper has one (the next cell lists the presets "
                        "with their expected times)."),
      _cell("code", INSTALL),
      _cell("code", SETUP.format(name=name)),
      _cell("markdown", "## Reproduce\nThe verdict table: the paper's number or direction, "
                        "ours, the tolerance, PASS / FAIL / NOT_SHOWN."),
      _cell("code", RUN.format(name=name)),
      _cell("markdown", f"## Change one thing\n{p['change_md']}"),
      _cell("code", p["change"]),
  ]
  for i, cell in enumerate(cells):  # stable ids: a rebuild changes only what changed
    cell["id"] = f"{name}-{i}"
  return {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3",
                                                      "language": "python", "name": "python3"},
                                       "language_info": {"name": "python"}},
          "nbformat": 4, "nbformat_minor": 5}


def _text(nb: dict) -> str:
  return json.dumps(nb, indent=1, sort_keys=True) + "\n"


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--check", action="store_true")
  args = ap.parse_args(argv)
  stale = []
  for name in PAPERS:
    path = HERE / f"{name}.ipynb"
    text = _text(notebook(name))
    if args.check:
      if not path.is_file() or path.read_text() != text:
        stale.append(path.name)
    else:
      path.write_text(text)
      print(f"wrote {path}")
  if stale:
    print(f"stale notebooks (run python colab/build_notebooks.py): {', '.join(stale)}")
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
