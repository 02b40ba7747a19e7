"""Headline claims of Reddy 2023 (bursty few-shot classification: the abrupt jump, ICL rising
with K and B, the induction head forming at the jump), judged with classification.py's binomial
resolution (se, noise, line_margin)."""
from __future__ import annotations

from pathlib import Path

from experiments.claims.classification import (FEW_SEQUENCES, HALFWAY_WHY, ICL_AT_CHANCE,
                                               IWL_UNRESOLVED, RAMP, UNTRAINED,
                                               halfway, line_margin, noise, plugin_noise,
                                               reddy_sweep_fix, _in_workdir)
from experiments.claims.rows import claim, load, not_shown, shrunk, vs_bar

GLITCH = "one evaluation at perfect, chance otherwise"
LAST_GLITCH = "chance but for the last evaluation, at perfect"
AT_TOP = "at perfect from the first evaluation (no rise seen)"
RAMP_DIP = "a steady rise over 60% of training, then one evaluation back at chance"
ABRUPT_CONTROLS = (RAMP, GLITCH, LAST_GLITCH, AT_TOP, RAMP_DIP)
FLAT_SWEEPS = "sweeps flat within noise, zero-width intervals"
# An induction head forms: a tenth of the attention moves to the matching label (the rise
# research/probes/attention.rising_heads counts), to twice the head's start (uniform attention).
HEAD_RISE, HEAD_OVER_START = 0.1, 2.0
HEAD_TINY = "head attention rising 0.01 at the jump"
HEAD_GLITCH = "head attention at 0.9 for one evaluation at the jump, forming later"
HEAD_RAMP = "head attention rising at one steady rate, halfway at the jump"
HEAD_FALLS_BACK = "head attention rising at the jump, then falling back"


def _half_crossing(steps, values):
  """First step where `values` reach halfway from their first to their last value."""
  if len(values) < 2 or values[-1] == values[0]:
    return None
  level = 0.5 * (values[0] + values[-1])
  up = values[-1] > values[0]
  for s, v in zip(steps, values):
    if (v >= level) if up else (v <= level):
      return s
  return None


def _rises(cells, var, n):
  """Monotone within the noise: no step down larger than the two cells' noise, and a net
  rise from the first to the last cell larger than theirs."""
  def band(a, b):
    if "icl_lo" in a and "icl_lo" in b:  # bootstrap 5-95% half-widths, added
      return (a["icl_hi"] - a["icl_lo"] + b["icl_hi"] - b["icl_lo"]) / 2
    return plugin_noise(a["icl"], b["icl"], n)

  def rise_band(a, b):
    # A bootstrap interval of a mean at 0 or 1 (or over too few resamples) has zero width,
    # and a flat sweep of such cells 'rose' by +0.003 against noise 0.000: the net rise must
    # also beat the binomial noise of n sequences, the probe's own resolution, honest at 0 and
    # 1 (noise(): 5/8 -> 8/8 'rose' against the plug-in 0.342). (The step-down gate keeps
    # band() and the plug-in noise: widening it would excuse larger drops, a looser rule.)
    return max(band(a, b), noise(a["icl"], b["icl"], n))
  drops = [(a[var], b[var], a["icl"] - b["icl"], band(a, b)) for a, b in zip(cells, cells[1:])]
  worst = max(drops, key=lambda t: t[2] - t[3])
  net = cells[-1]["icl"] - cells[0]["icl"]
  net_noise = rise_band(cells[0], cells[-1])
  ok = net > net_noise and all(drop <= nz for *_, drop, nz in drops)
  return ok, (f"net rise {net:+.3f} (noise {net_noise:.3f}); largest step down "
              f"{max(worst[2], 0):.3f} ({worst[0]}->{worst[1]}, noise {worst[3]:.3f})")


def _context_transition(run: Path, tr: dict) -> dict:
  """The context-label transition recomputed from the run's metrics.jsonl by today's
  reddy2023.transition (the rise that lasts), the floor 1/ways from its config.json: a
  results.json written before that rule kept a glitch's first-crossings window, and
  re-scoring it (the gallery does) passed the glitch. The stored one without those files."""
  from experiments.reddy2023 import transition
  from research.analysis.classification_plots import read_eval_rows
  if not (run / "metrics.jsonl").is_file() or not (run / "config.json").is_file():
    return tr["transition_context"]
  ways = load(run / "config.json")["probe"]["ways"]
  rows = [r for r in read_eval_rows(run / "metrics.jsonl") if "eval_icl_accuracy_context" in r]
  return transition({"rows": rows}, "eval_icl_accuracy_context", floor=1 / ways) if rows else \
      tr["transition_context"]


def _reddy_abrupt(tr_ctx: dict, steps: int, setup: str) -> dict:
  """'The jump is abrupt' off the context-label transition (reddy2023.transition)."""
  text = "the jump is abrupt"
  if "in_band" not in tr_ctx:
    return not_shown(text, "abrupt", "results.json written before the time-between-levels "
                     "rule, and no transformer/metrics.jsonl to recompute it from: rerun "
                     "reddy2023", control=ABRUPT_CONTROLS)
  win = tr_ctx["in_band"]
  return claim(text, "abrupt",
               f"{win:.0f} of {steps} steps" if win is not None else "no lasting 10%->90% rise",
               "steps between the 10% and 90% levels <= 20% of training (context labels, above "
               "copying), on a rise seen from below 10% that stays >= 90% over the last tenth "
               "of training or more",
               win is not None and win <= 0.2 * steps,
               setup + (f"{win / steps:.0%} of training between the levels" if win is not None
                        else "context-label accuracy did not rise from below 10% to stay >= 90% "
                        f"over a tenth of {steps} steps"),
               why="a fifth of training: a gradual (linear) rise spans about 80% of it; time "
               "between the levels, not two crossings, so a dip back to chance does not restart "
               "the count", control=ABRUPT_CONTROLS)


def reddy2023(run_dir: Path, preset: str) -> dict:
  path = run_dir / "results.json"
  res = load(path)
  runs, chance = res["runs"], res["chance_full"]
  setup = shrunk(preset)
  tr = runs.get("transformer")
  at_chance = chance + ICL_AT_CHANCE
  chance_why = f"1/L + {ICL_AT_CHANCE}: Reddy's B = 0 check; 0.9 is the experiment's '~1'"
  rows = []
  n = int(next(iter(runs.values()))["probe"]["icl"]["num_sequences"]) if runs else 1
  if tr:
    icl, first = tr["probe"]["icl"]["acc_full"], tr["transition"]["first_eval"]
    rows.append(claim("ICL accuracy jumps from ~1/L to ~1", f"1/L={chance:.3f} -> ~1",
                      f"{vs_bar(first, at_chance, 3)} (first eval) -> {vs_bar(icl, 0.9, 3)} "
                      "(final probe)",
                      f"first eval <= {at_chance:.3f} and final ICL >= 0.9",
                      first <= at_chance and icl >= 0.9,
                      setup + f"start {first - chance:+.3f} from 1/L, end {icl - 0.9:+.3f} from 0.9",
                      why=chance_why, control=UNTRAINED))
    tr = tr | {"transition_context": _context_transition(run_dir / "transformer", tr)}
    steps = tr["summary"]["final_step"]
    rows.append(_reddy_abrupt(tr["transition_context"], steps, setup))
    rows.append(_reddy_coincidence(run_dir / "transformer" / "metrics.jsonl", tr, steps, setup))
  else:
    rows += [not_shown(t, "-", "no transformer run", control=c) for t, c in (
        ("ICL accuracy jumps from ~1/L to ~1", UNTRAINED), ("the jump is abrupt", ABRUPT_CONTROLS),
        ("the jump coincides with an induction head forming",
         (UNTRAINED, HEAD_TINY, HEAD_GLITCH, HEAD_RAMP, HEAD_FALLS_BACK)))]
  b0 = runs.get("control_b0")
  text = "no burstiness (B=0): no ICL, the model learns in weights instead"
  if b0:
    icl0, iwl0 = b0["probe"]["icl"]["acc_full"], b0["probe"]["iwl"]["acc_full"]
    rows.append(claim(text, "ICL ~ 1/L, in-weights ~1",
                      f"ICL {vs_bar(icl0, at_chance, 3)}, in-weights {vs_bar(iwl0, 0.9, 3)}",
                      f"ICL <= {at_chance:.3f} and in-weights >= 0.9",
                      icl0 <= at_chance and iwl0 >= 0.9,
                      setup + f"ICL {icl0 - chance:+.3f} from 1/L; in-weights {iwl0 - 0.9:+.3f} "
                      "from 0.9", why=chance_why, control=UNTRAINED))
  else:
    rows.append(not_shown(text, "-", "no control_b0 run", control=UNTRAINED))
  for key, what in (("sweep_K", "classes K"), ("sweep_B", "burstiness B")):
    cells = res.get(key)
    text = f"ICL rises with {what}"
    if not cells or len(cells) < 2:
      seed = res.get("seed", run_dir.name[5:] if run_dir.name.startswith("seed_") else 0)
      rows.append(not_shown(text, "rises", "sweep not run: "
                            + reddy_sweep_fix(key[-1], preset, seed, _in_workdir(run_dir),
                                              "reddy2023"),
                            control=(UNTRAINED, FLAT_SWEEPS, FEW_SEQUENCES)))
      continue
    var = key[-1]
    cells = sorted(cells, key=lambda c: c[var])
    ok, how = _rises(cells, var, n)
    rows.append(claim(text, "rises", " ".join(f"{c[var]}:{c['icl']:.2f}" for c in cells),
                      "net rise beyond noise, and no step down beyond noise", ok, setup + how,
                      why="'rises' = monotone within the probe's bootstrap intervals, the "
                      "net rise beyond the binomial noise too (honest at 0 and 1)",
                      control=(UNTRAINED, FLAT_SWEEPS, FEW_SEQUENCES)))
  lstm = runs.get("lstm")
  text = "a matched LSTM learns in weights but not in context (Chan's claim, Reddy's data)"
  if lstm:
    icl_l, iwl_l = lstm["probe"]["icl"]["acc_full"], lstm["probe"]["iwl"]["acc_full"]
    mid = halfway(chance)
    # In weights as Chan's rows read it: beyond the line by 2 SE (0.53 over 512 passed).
    m = line_margin(iwl_l, mid, int(lstm["probe"]["iwl"].get("num_sequences", n)))
    rows.append(claim(text, "no ICL", f"ICL {icl_l:.3f}, in-weights {iwl_l:.3f}",
                      f"ICL <= {at_chance:.3f} and in-weights > {mid:.3f} by more than 2 SE",
                      icl_l <= at_chance and iwl_l - mid > m,
                      setup + f"ICL {icl_l - chance:+.3f} from 1/L; in-weights {iwl_l - mid:+.3f} "
                      f"from halfway (2 SE {m:.3f}; an LSTM that learned nothing would also show "
                      "no ICL)", why=f"chance as for B = 0; in weights: {HALFWAY_WHY}",
                      control=(UNTRAINED, IWL_UNRESOLVED)))
  else:
    rows.append(not_shown(text, "no ICL", "no lstm run", control=(UNTRAINED, IWL_UNRESOLVED)))
  figs = sorted(str(p) for p in (run_dir / "figures").glob("*.png"))
  return {"claims": rows, "results": [str(path)], "figures": figs, "notes": []}


def _reddy_coincidence(metrics: Path, tr: dict, steps: int, setup: str) -> dict:
  """The head's halfway step (first crossing, first to final value) within a tenth of training
  of the ICL jump's, and the head FORMS there: it rises >= HEAD_RISE and ends >= HEAD_OVER_START
  x its first value, and over half of its whole-run rise falls within a tenth of training of
  the ICL jump's halfway step. Why: Reddy: an induction head forms at the jump (its attention
  to the matching label jumps with the ICL accuracy). The halfway gap alone PASSed heads that
  form nowhere there: attention rising 0.10 -> 0.11 at the jump, 0.10 glitching to 0.90 for
  one evaluation at the jump (forming at step 800), rising at one steady rate through 60% of
  training (halfway at the jump: 28% of its rise near it), and rising there but falling back
  to 0.12."""
  import numpy as np
  text = "the jump coincides with an induction head forming"
  kw = dict(why="a tenth of training: the two halfway points fall in one window, and most of "
            "the head's rise in it; a tenth of the attention moving to the label, twice its "
            "start: a head that formed", control=(UNTRAINED, HEAD_TINY, HEAD_GLITCH, HEAD_RAMP,
                                                   HEAD_FALLS_BACK))
  if not metrics.is_file():
    return not_shown(text, "coincide", f"no {metrics}", **kw)
  from research.analysis.classification_plots import read_eval_rows
  rows = read_eval_rows(metrics)
  keys = sorted({k for r in rows for k in r if k.endswith("_query_to_label")})
  if not keys:
    return not_shown(text, "coincide", "no attention measures in metrics.jsonl", **kw)
  t_icl = tr["transition_context"]["step_50"]
  head = max(keys, key=lambda k: rows[-1][k])
  at, att = [r["step"] for r in rows if head in r], [r[head] for r in rows if head in r]
  t_head = _half_crossing(at, att)
  gap = None if t_head is None or t_icl is None else abs(t_head - t_icl)
  rise = att[-1] - att[0]
  near = (None if t_icl is None else float(
      np.interp(t_icl + 0.1 * steps, at, att) - np.interp(t_icl - 0.1 * steps, at, att)))
  forms = (rise >= HEAD_RISE and att[-1] >= HEAD_OVER_START * att[0] and near is not None
           and near > 0.5 * rise)
  ours = (f"head {t_head:.0f} vs ICL {t_icl:.0f} (gap {gap:.0f})" if gap is not None else
          f"head {'-' if t_head is None else f'{t_head:.0f}'}, ICL "
          f"{'never got halfway up' if t_icl is None else f'{t_icl:.0f}'}")
  return claim(text, "coincide", ours, f"gap <= 10% of training; the head rises >= {HEAD_RISE}, "
               f"to >= {HEAD_OVER_START:g}x its start, over half of it within 10% of training "
               "of the ICL jump's halfway step", gap is not None and gap <= 0.1 * steps and forms,
               setup + f"head = {head.removeprefix('eval_attn_')} (query attends to the matching "
               "item's label), its halfway step from first to final value; ICL = 50% of the "
               "context-label jump" + ("" if gap is None else f"; gap {gap / steps:.0%} of "
                                       "training") + f"; the head {att[0]:.2f} -> {att[-1]:.2f}"
               + ("" if near is None else f", {near:+.2f} of it within 10% of training of the "
                  "ICL jump"), **kw)
