"""Each paper notebook's own texts: title, introduction and the "change one thing" cell.

colab/build_notebooks.py writes the notebooks from these (and the spine it shares between
them); edit a text here, then run `python colab/build_notebooks.py`. Plain data, loaded by
path, so the builder runs as a script from any directory.
"""

PAPERS = {
    "garg2022": dict(
        # README's NAME table beside experiments/NAME.py: claims module (experiments/claims/)
        # and config (configs/).
        files=("regression.py", "`icl_regression.py`"),
        title="Garg et al. 2022: what can Transformers learn in context? (linear regression)",
        intro="A Transformer trained on prompts (x_1, f(x_1), ..., x_k) of random linear functions "
              "predicts f(x_k+1) as well as least squares once k >= d, and far better than "
              "averaging or nearest neighbours.",
        change_md="Garg's other function classes: a ReLU network instead of a linear map "
                  "(the probe's baselines follow the class). It trains the config's seed, 0: "
                  "`config.seed = 1` trains another.",
        change="""\
from configs import icl_regression
from research import train
config = icl_regression.get_config(PRESET)
config.task.function = 'relu_net'
result = train.train_or_reuse(config, f'{WORKDIR}/relu_net')
display(Image(f'{WORKDIR}/relu_net/figures/icl_regression.png'))"""),
    "raventos2023": dict(
        files=("regression.py", "`icl_regression.py:raventos`"),
        title="Raventós et al. 2023: task diversity and the emergence of non-Bayesian ICL",
        intro="Pretrained on a finite pool of M regression tasks, a Transformer behaves like the "
              "Bayes posterior over that pool (dMMSE) when M is small and like ridge regression "
              "(the prior's optimum on fresh tasks) once M passes a threshold M*. Every M trains "
              "as one member of a single vmapped ensemble.",
        change_md="A different grid of pool sizes: the ensemble holds the largest pool, every "
                  "member samples from its own first M tasks. Seed 0; `seed=1` in the `run` call "
                  "trains another.",
        change="""\
import json
from experiments import raventos2023
raventos2023.run(PRESET, Path(WORKDIR) / 'pools', pools=(4, 64, 1024))
print('M* =', json.loads((Path(WORKDIR) / 'pools' / 'raventos2023.json').read_text())['m_star'])
display(Image(f'{WORKDIR}/pools/figures/raventos2023.png'))"""),
    "chan2022": dict(
        files=("classification.py", "`bursty_classification.py:chan`"),
        title="Chan et al. 2022: data distributional properties drive emergent in-context learning",
        intro="In-context learning of few-shot classification appears when training sequences are "
              "bursty and classes follow a Zipfian long tail, and needs a Transformer: an LSTM "
              "of the same size learns in weights only.",
        # The paper preset reads Omniglot, which TFDS must have prepared (README, Data).
        prerequisite="\n\n`PRESET = 'paper'` trains on Omniglot from TensorFlow Datasets, "
                     "prepared once on a machine with internet access: `pip install tensorflow "
                     "tensorflow-datasets` and `tfds build omniglot --file_format=array_record "
                     "--data_dir=/data/tfds`, then `os.environ['TFDS_DATA_DIR'] = '/data/tfds'` "
                     "before the reproduce cell (README, *Data*); `'tiny'` and `'cpu'` use "
                     "Gaussian classes and need nothing.",
        change_md="One bursty-classification run with half the sequences bursty, on the config's "
                  "seed, 0 (`config.seed = 1` trains another).",
        change="""\
from configs import bursty_classification
from research import train
config = bursty_classification.get_config('chan' if PRESET == 'paper' else PRESET)  # as reproduce
config.task.p_bursty = 0.5
result = train.train_or_reuse(config, f'{WORKDIR}/p_bursty_0.5')
print({k: v for k, v in result.items() if k.startswith('final_')})"""),
    "reddy2023": dict(
        files=("reddy.py", "`bursty_classification.py`"),
        title="Reddy 2023: the mechanistic basis of abrupt in-context learning",
        intro="With bursty sequences a Transformer's in-context accuracy jumps abruptly from "
              "chance to near 1; without burstiness (B = 0) it learns the classes in weights.",
        change_md="The Transformer run with four times as many classes K (more classes favour "
                  "in-context over in-weights learning), on the config's seed, 0 (`config.seed "
                  "= 1` trains another).",
        change="""\
from configs import bursty_classification
from experiments import common
config = bursty_classification.get_config(PRESET)
config.task.num_classes *= 4
res = common.classification_run(Path(WORKDIR) / 'more_classes', 'transformer', config)"""),
    "olsson2022": dict(
        files=("olsson.py", "`induction.py`"),
        title="Olsson et al. 2022: in-context learning and induction heads",
        intro="Attention-only Transformers with two or more layers form induction heads in a "
              "short phase change in which the in-context-learning score drops; one-layer "
              "models cannot. Ablating the detected heads undoes most of the drop.",
        change_md="A full two-layer Transformer (with MLPs) instead of attention-only, on the "
                  "config's seed, 0 (`config.seed = 1` trains another).",
        change="""\
from configs import induction
from research import train
config = induction.get_config(PRESET)
config.model.num_layers, config.model.attention_only = 2, False
result = train.train_or_reuse(config, f'{WORKDIR}/full_2l')
print({k: v for k, v in result.items() if k.startswith('final_')})"""),
    "xie2021": dict(
        files=("language.py", "`ginc.py`"),
        title="Xie et al. 2021: in-context learning as implicit Bayesian inference (GINC)",
        intro="Language models pretrained on a mixture of HMMs (GINC) infer the latent concept "
              "from in-context examples: accuracy rises with the number of examples n and their "
              "length k; Transformers are compared with an LSTM.",
        change_md="Only the LSTM and the smallest Transformer, side by side; seed 0 (`seed=1` in "
                  "the `run` call trains another).",
        change="""\
from experiments import xie2021
res = xie2021.run(PRESET, f'{WORKDIR}/two_models', models=('transformer_s', 'lstm'))"""),
    "schaeffer2023": dict(
        files=("emergence.py", "`arithmetic.py`"),
        title="Schaeffer et al. 2023: are emergent abilities a mirage? (exact match vs continuous metrics)",
        intro="Across model sizes, exact match on multi-digit arithmetic looks sharp while "
              "per-token accuracy, edit distance and log-likelihood of the same outputs change "
              "smoothly: the sharpness comes from the metric.",
        change_md="The same sweep on multiplication instead of addition; seed 0 (`seed=1` in the "
                  "`run` call trains another).",
        change="""\
from experiments import schaeffer2023
schaeffer2023.run(PRESET, f'{WORKDIR}/mul', sizes=(0, 1), overrides={'task.operation': 'mul'})"""),
    "nanda2023": dict(
        files=("grokking.py", "`grokking.py`"),
        title="Nanda et al. 2023 / Power et al. 2022: grokking and its progress measures",
        intro="On modular addition with 30% of pairs for training, a one-layer Transformer "
              "memorises first and generalises much later, with weight decay; Fourier "
              "progress measures show the circuit forming before test accuracy jumps.",
        change_md="Half of the pairs for training, without the weight-decay-0 control run; seed 0 "
                  "(`seed=1` in the `run` call trains another).",
        change="""\
from experiments import nanda2023
# The full batch follows task.train_fraction (a FieldReference in configs/grokking.py).
nanda2023.run(PRESET, f'{WORKDIR}/half', overrides={'task.train_fraction': 0.5}, control=False)"""),
    "besiroglu2024": dict(
        files=("emergence.py", "none: it fits `data/chinchilla_svg_extracted_data.csv`"),
        title="Besiroglu et al. 2024: Chinchilla scaling, a replication attempt",
        intro="Approach 3 of Hoffmann et al. refitted on the data extracted from their figure: "
              "L(N, D) = E + A/N^alpha + B/D^beta with a Huber loss on log-loss, L-BFGS from a "
              "grid of starts and bootstrap standard errors. This runs on CPU on every preset. "
              "It reads the repository's `data/chinchilla_svg_extracted_data.csv` (the "
              "install cell brings it; `data/README.md` says where it comes from).",
        change_md="The fit on all 245 points (Besiroglu drop the 5 highest-loss ones).",
        change="""\
from experiments import besiroglu2024
from research.analysis import scaling
besiroglu2024.refit(Path(WORKDIR) / 'all_points_quick', scaling.load_chinchilla_csv(),
                    all_points=True, bootstrap=0, top_starts=20)"""),
    "ladder": dict(
        files=("ladder.py", "`lm_ladder.py:cpu` (`--sweep=ladder`: its sizes c1-c5)"),
        title="An LM ladder: in-context learning and few-shot abilities across scale and "
              "training time",
        intro="Byte-level language models of several sizes, trained on this Python's standard "
              "library with the same batches in the same order, probed at log-spaced "
              "checkpoints: Olsson's ICL score and prefix-matching heads, k-shot copy / add / "
              "lookup under exact match and continuous metrics, and the loss-vs-compute "
              "frontier. Scored on the criteria of Olsson et al. 2022, Brown et al. 2020 and "
              "Schaeffer et al. 2023.",
        change_md="The probe suite on a run it did not train: one size's checkpoints probed "
                  "again, with other window and prompt counts, into another file.",
        change="""\
import json
from research import probe_checkpoints
run = sorted((Path(WORKDIR) / 'ladder' / 'run' / 'seed_0' / 'runs').iterdir())[-1]
out = Path(WORKDIR) / 'probe_again.jsonl'
probe_checkpoints.probe_run(run, out=out, windows=8, few_shot_prompts=4)
for row in map(json.loads, out.read_text().splitlines()):
  print(row['step'], round(row['loss'], 3), round(row['icl_score'], 3))"""),
}
