"""Negative controls: for every claim, the null result that must not PASS it.

`python -m experiments.reproduce --controls` builds each paper's control result files
(CONTROLS[paper][control name](run_dir)) and scores them with the paper's own scorer; every
claim is checked on the control its row names. Built through the real code path where that
is cheap: Garg's and Raventós's probes run with the model replaced by the zero predictor,
Chan's / Reddy's transitions and Schaeffer's sharpness go through the experiments' analysis
functions, Besiroglu's compute-optimal split through research.analysis.scaling. Where a
model would have to be trained (an untrained model's accuracy is chance by definition), the
files are hand-built at chance. With `real_untrained=True` (`reproduce --controls
--real_untrained`, minutes) those untrained controls are instead the experiment itself: its
tiny preset through its own run(), every config at a learning rate that moves no parameter
(experiments/common.forced_overrides), scored from the files it writes. A control passes the
check only if the claim FAILs on it. The builders that write each control's files are in
experiments/claims/control_files.py (the ladder's in ladder_controls.py; Olsson's, and Xie's
later ones, in language_controls.py; the classification probe's binomial-resolution ones and
Reddy's head nulls in classification_controls.py; Nanda's noisy progress measures in
grokking_controls.py; Garg's NaN in regression_controls.py).
"""
from __future__ import annotations

import importlib
from pathlib import Path

from experiments.claims import CLAIMS
from experiments.claims.classification import (  # Reddy's, Chan's
    FALL_FROM_ONE, FEW_SEQUENCES, IWL_MAJORITY, IWL_UNRESOLVED, UNRESOLVED)
from experiments.claims.reddy import (  # Reddy's
    AT_TOP, FLAT_SWEEPS, GLITCH, HEAD_FALLS_BACK, HEAD_GLITCH, HEAD_RAMP, HEAD_TINY,
    LAST_GLITCH, RAMP_DIP)
from experiments.claims.classification_controls import (  # noqa: F401  (tests build files here)
    chan_fall_from_one, chan_few_sequences, chan_iwl_majority, chan_iwl_unresolved,
    reddy_few_sequences,
    reddy_at_top, reddy_head, reddy_head_falls_back, reddy_head_glitch, reddy_head_ramp,
    reddy_head_tiny, reddy_iwl_unresolved, reddy_last_glitch, reddy_ramp_dip)
from experiments.claims.emergence import (BELOW, NEVER, SATURATING, SHUFFLED,  # Schaeffer's
                                          ZIGZAG)  # null results
from experiments.claims.emergence import GLITCH as SCHAEFFER_GLITCH
from experiments.claims.grokking import (  # Nanda's
    CONTROL_NEARLY_GROKS, NOISY_LOSSES, NOISY_MAXIMA, SLOW_AR_LOSSES, SPIKY_LOSSES, TEST_LAST_GLITCH,
    TEST_RAMP, TEST_RAMP_DIP, WANDERING_LOSSES, WAVY_LOSSES, WD_GLITCH, WD_LAST_GLITCH)
from experiments.claims.grokking_controls import (
    nanda_control_nearly_groks, nanda_noisy_maxima, nanda_slow_ar_losses, nanda_spiky_losses,
    nanda_test_last_glitch, nanda_test_ramp_dip, nanda_wandering_losses, nanda_wavy_losses,
    nanda_wd_last_glitch)
from experiments.claims.ladder import DECAY as LADDER_DECAY, NEVER as LADDER_NEVER
from experiments.claims.ladder import LAST_K, PREFIX_RAMP
from experiments.claims.language import (  # Olsson's, Xie's nulls
    DECAY, EVERY_HEAD, FALLING_HEAD, FALLS_BACK, INDEP_NOISE, K_FALLS_BACK, LAST_DIP, LOSS_DIP,
    LOSS_NOISE, NOISE, ONE_LAYER_GIVES_BACK, ONE_LAYER_HIDDEN, ONE_LAYER_ON_TREND, PREFIX_DIP,
    STEADY_HEAD, WIDE_LOSS)
from experiments.claims.language import NAN_K as XIE_NAN_K, NAN_N as XIE_NAN_N
from experiments.claims.language_controls import (  # noqa: F401  (tests build files here)
    olsson_decay, olsson_every_head, olsson_falling_head, olsson_indep_noise, olsson_last_dip,
    olsson_loss_dip, olsson_loss_noise, olsson_noise, olsson_one_layer_gives_back,
    olsson_one_layer_hidden, olsson_one_layer_on_trend, olsson_prefix_dip, olsson_ramp,
    olsson_steady_head, olsson_trained, olsson_untrained, xie_k_falls_back, xie_nan_k, xie_nan_n)
from experiments.claims.ladder_controls import (  # noqa: F401  (tests build ladders here)
    STEPS, ladder_decay, ladder_files, ladder_flat_k, ladder_last_k, ladder_line, ladder_never,
    ladder_prefix_ramp, ladder_ramp, ladder_same, ladder_trained, ladder_untrained)
from experiments.claims.regression import (  # Garg's, Raventós's
    LS_LIKE, MIDWAY, NAN_K, POOL_GLITCH)
from experiments.claims.regression_controls import garg_nan_k  # noqa: F401
from experiments.claims.control_files import (  # noqa: F401  (tests build files through here)
    L, N_SEQ, WAYS, besiroglu_hoffmann, chan_unresolved, chan_untrained, garg_sparse_ls,
    garg_zero, nanda_noisy_losses, nanda_test_ramp, nanda_untrained, nanda_wd_glitch,
    raventos_midway,
    raventos_pool_glitch, raventos_zero, reddy_flat_sweeps, reddy_glitch, reddy_ramp,
    reddy_untrained, schaeffer_below, schaeffer_falls_back, schaeffer_files, schaeffer_flat, schaeffer_glitch,
    schaeffer_saturating,
    schaeffer_never, schaeffer_same, schaeffer_zigzag, xie_falls_back, xie_untrained,
    xie_wide_loss)
from experiments.claims.rows import FAIL, PASS, controls_of


UNTRAINED, ZERO, RAMP = "untrained model", "zero predictor", "linear learning curve"
CONTROLS = {
    "garg2022": {ZERO: garg_zero, LS_LIKE: garg_sparse_ls, NAN_K: garg_nan_k},
    "raventos2023": {ZERO: raventos_zero, MIDWAY: raventos_midway,
                     POOL_GLITCH: raventos_pool_glitch},
    "reddy2023": {UNTRAINED: reddy_untrained, RAMP: reddy_ramp, GLITCH: reddy_glitch,
                  FLAT_SWEEPS: reddy_flat_sweeps, FEW_SEQUENCES: reddy_few_sequences,
                  IWL_UNRESOLVED: reddy_iwl_unresolved, HEAD_TINY: reddy_head_tiny,
                  HEAD_GLITCH: reddy_head_glitch, HEAD_RAMP: reddy_head_ramp,
                  HEAD_FALLS_BACK: reddy_head_falls_back, LAST_GLITCH: reddy_last_glitch,
                  AT_TOP: reddy_at_top, RAMP_DIP: reddy_ramp_dip},
    "chan2022": {UNTRAINED: chan_untrained, UNRESOLVED: chan_unresolved,
                 IWL_UNRESOLVED: chan_iwl_unresolved, FEW_SEQUENCES: chan_few_sequences,
                 FALL_FROM_ONE: chan_fall_from_one, IWL_MAJORITY: chan_iwl_majority},
    "olsson2022": {UNTRAINED: olsson_untrained, RAMP: olsson_ramp, DECAY: olsson_decay,
                   NOISE: olsson_noise, LAST_DIP: olsson_last_dip,
                   INDEP_NOISE: olsson_indep_noise, LOSS_NOISE: olsson_loss_noise,
                   LOSS_DIP: olsson_loss_dip, STEADY_HEAD: olsson_steady_head,
                   FALLING_HEAD: olsson_falling_head, EVERY_HEAD: olsson_every_head,
                   PREFIX_DIP: olsson_prefix_dip,
                   ONE_LAYER_GIVES_BACK: olsson_one_layer_gives_back,
                   ONE_LAYER_HIDDEN: olsson_one_layer_hidden,
                   ONE_LAYER_ON_TREND: olsson_one_layer_on_trend},
    "xie2021": {UNTRAINED: xie_untrained, FALLS_BACK: xie_falls_back, WIDE_LOSS: xie_wide_loss,
                K_FALLS_BACK: xie_k_falls_back, XIE_NAN_N: xie_nan_n, XIE_NAN_K: xie_nan_k},
    "schaeffer2023": {"flat curve": schaeffer_flat, "every metric on one curve": schaeffer_same,
                      ZIGZAG: schaeffer_zigzag, BELOW: schaeffer_below, SATURATING: schaeffer_saturating, NEVER: schaeffer_never,
                      SCHAEFFER_GLITCH: schaeffer_glitch, SHUFFLED: schaeffer_falls_back},
    "nanda2023": {UNTRAINED: nanda_untrained, "flat curve": nanda_untrained,
                  TEST_RAMP: nanda_test_ramp, NOISY_LOSSES: nanda_noisy_losses,
                  NOISY_MAXIMA: nanda_noisy_maxima, SPIKY_LOSSES: nanda_spiky_losses,
                  WANDERING_LOSSES: nanda_wandering_losses,
                  SLOW_AR_LOSSES: nanda_slow_ar_losses, WAVY_LOSSES: nanda_wavy_losses,
                  WD_GLITCH: nanda_wd_glitch, TEST_LAST_GLITCH: nanda_test_last_glitch,
                  TEST_RAMP_DIP: nanda_test_ramp_dip, WD_LAST_GLITCH: nanda_wd_last_glitch,
                  CONTROL_NEARLY_GROKS: nanda_control_nearly_groks},
    "besiroglu2024": {"Hoffmann et al.'s fit": besiroglu_hoffmann},
    "ladder": {"untrained ladder": ladder_untrained, "ICL score falling at a steady rate":
               ladder_ramp, "few-shot scores flat in k": ladder_flat_k,
               "every metric leaves chance at one checkpoint": ladder_same,
               "loss falling as a line in ln compute": ladder_line,
               LADDER_DECAY: ladder_decay, LADDER_NEVER: ladder_never,
               PREFIX_RAMP: ladder_prefix_ramp, LAST_K: ladder_last_k},
}


# Adam's step is about the learning rate: at 1e-30 no fp32 parameter (init scale ~1e-2) moves.
UNTRAINED_RUN = {"optim.learning_rate": 1e-30}
# The untrained controls that real_untrained replaces with the experiment's own untrained run.
REAL_UNTRAINED = {"reddy2023": UNTRAINED, "chan2022": UNTRAINED, "olsson2022": UNTRAINED,
                  "xie2021": UNTRAINED, "nanda2023": UNTRAINED, "ladder": "untrained ladder"}


HAND_BUILT = " (hand-built: the tiny run does not exercise this claim)"


def untrained_run(name: str):
  """The builder of NAME's untrained control through its real code path."""
  def build(run_dir: Path) -> None:
    from experiments import common
    module = importlib.import_module(f"experiments.{name}")
    with common.forced_overrides(UNTRAINED_RUN):
      module.run("tiny", run_dir, seed=0)
  return build


def run_controls(workdir: Path, names=None, real_untrained: bool = False) -> list[dict]:
  """Every claim of every paper in `names` (default: all) scored on each of its own controls:
  [{paper, claim, control, status, ours}], one per claim and control; a control the paper does
  not build is an error.
  real_untrained: REAL_UNTRAINED's controls are untrained runs of the experiment itself."""
  out = []
  for name in CLAIMS if names is None else names:
    built, controls = {}, dict(CONTROLS[name])
    real = REAL_UNTRAINED.get(name) if real_untrained else None
    if real:
      controls[real + HAND_BUILT] = controls[real]
      controls[real] = untrained_run(name)
    for control, build in controls.items():
      slug = control.replace(" ", "_")
      for c in "'.,:()":
        slug = slug.replace(c, "")
      run_dir = Path(workdir) / slug / name / "run"
      build(run_dir)
      built[control] = CLAIMS[name](run_dir, "tiny")["claims"]
    for i, row in enumerate(next(iter(built.values()))):
      for control in controls_of(row):
        if control not in built:
          raise KeyError(f"{name}: claim {row['claim']!r} names the control {control!r}, "
                         f"which experiments/claims/controls.py does not build")
        scored = built[control][i]
        if control == real and scored["status"] not in (PASS, FAIL):
          # The tiny run does not exercise this claim (e.g. a sweep only larger presets run).
          control, scored = control + HAND_BUILT, built[control + HAND_BUILT][i]
        out.append({"paper": name, "claim": row["claim"], "control": control,
                    "status": scored["status"], "ours": scored["ours"]})
  return out


def report(rows: list[dict]) -> tuple[str, bool]:
  """The table the --controls mode prints, and whether every control FAILs its claim."""
  lines = ["| paper | claim | control | status on the control | ours on the control |",
           "|---|---|---|---|---|"]
  for r in rows:
    ours = str(r["ours"]).replace("|", "\\|")
    lines.append(f"| {r['paper']} | {r['claim']} | {r['control']} | {r['status']} | {ours} |")
  passed = [r for r in rows if r["status"] == PASS]
  unexercised = [r for r in rows if r["status"] not in (PASS, FAIL)]
  lines.append(f"\n{len(rows)} claims: {len(rows) - len(passed) - len(unexercised)} FAIL on their "
               f"control, {len(passed)} PASS on it (a defect), {len(unexercised)} not exercised")
  return "\n".join(lines), not passed and not unexercised
