"""Headline claims of Olsson et al. 2022 (induction heads) and Xie et al. 2021 (GINC)."""
from __future__ import annotations

from pathlib import Path

from research.analysis.correlation import spearman
from experiments.claims.rows import (claim, existing, explain_fail, load, mean, not_shown,
                                     rounded, shrunk)


# ----------------------------------------------------------------------------- Olsson 2022
def _loss_at(curve: dict, step: float) -> float:
  import numpy as np
  return float(np.interp(step, curve["step"], curve["loss"]))


def _olsson_loss_bump(multi: dict, one: dict | None, setup: str) -> dict:
  """Olsson's loss bump: during the phase change the loss falls much faster than just
  before it, and faster than a 1-layer model's (no induction heads) over the same steps."""
  name = "a bump in the training loss during the phase change"
  runs = {n: r for n, r in multi.items() if "loss_curve" in r}
  if not runs or one is None or "loss_curve" not in one:
    return not_shown(name, "bump", "no loss curve in the results (rerun olsson2022) or no "
                     "1-layer run to compare with")
  n = min(runs, key=int)
  r, w = runs[n], runs[n]["window"]
  a, b = w["start_step"], w["end_step"]
  inside = _loss_at(r["loss_curve"], a) - _loss_at(r["loss_curve"], b)
  before = _loss_at(r["loss_curve"], max(a - (b - a), r["loss_curve"]["step"][0])) - _loss_at(
      r["loss_curve"], a)
  one_inside = _loss_at(one["loss_curve"], a) - _loss_at(one["loss_curve"], b)
  ok = inside >= 3 * max(before, 1e-3) and inside >= 3 * max(one_inside, 1e-3)
  return claim(name, "bump", f"{n}-layer falls {inside:.2f} nats in the window (steps {a}-{b}) vs "
               f"{before:.2f} in the span before; 1-layer {one_inside:.2f} over the same steps",
               "window fall >= 3x the span before and >= 3x the 1-layer model's", ok,
               setup + "loss on held-out training-distribution sequences at every dense eval "
               "(the training loss's expectation)")


def olsson2022(run_dir: Path, preset: str) -> dict:
  path = run_dir / "olsson2022.json"
  res = load(path)
  t, runs = res["targets"], res["runs"]
  setup = shrunk(preset) + "synthetic repeated-token data, attention-only models. "
  multi = {n: r for n, r in runs.items() if int(n) >= 2}
  one = runs.get("1")
  rows = []
  for n, r in sorted(multi.items()):
    w = r["window"]
    rows.append(claim(f"{n}-layer: induction heads form (prefix matching)", "high",
                      rounded(r["final"]["prefix_matching_max"]),
                      f">= {t['prefix_matching_2l']}", r["final"]["prefix_matching_max"]
                      >= t["prefix_matching_2l"], setup + "tolerance: the experiment's target"))
    rows.append(claim(f"{n}-layer: in a short window with a sharp ICL-score drop", "phase change",
                      f"drop {w['drop']:.3f} nats in {w['fraction_of_training']:.2f} of training",
                      f"drop >= {t['icl_drop_2l']} within < {t['window_max_fraction']} of training",
                      w["drop"] >= t["icl_drop_2l"]
                      and w["fraction_of_training"] < t["window_max_fraction"],
                      setup + "paper: ICL score falls to about -0.4 nats on text"))
    rec = r["ablation"].get("recovery_fraction")
    rows.append(claim(f"{n}-layer: the heads rising in the window carry the ICL score (ablation)",
                      "causal", rounded(rec), f"ablation undoes >= {t['ablation_recovery']} of the drop",
                      None if rec is None else rec >= t["ablation_recovery"],
                      setup + (f"rising heads: {r['ablation']['heads']}" if r["ablation"]["heads"]
                               else "no head's prefix matching rose in the window")))
    if one:
      rows.append(claim(f"{n}-layer ICL score ends below the 1-layer model's", "lower",
                        f"{r['final']['icl_score']:.3f} vs {one['final']['icl_score']:.3f}",
                        "lower", r["final"]["icl_score"] < one["final"]["icl_score"],
                        setup + "paper level -0.4 nats is on text, not comparable here"))
  if one:
    ok = (one["best_prefix_matching_ever"] <= t["prefix_matching_1l_max"]
          and one["window"]["drop"] < t["icl_drop_2l"])
    rows.append(claim("1-layer models show neither induction heads nor the drop", "neither",
                      f"best prefix matching {one['best_prefix_matching_ever']:.3f}, drop "
                      f"{one['window']['drop']:.3f}",
                      f"prefix <= {t['prefix_matching_1l_max']}, drop < {t['icl_drop_2l']}", ok,
                      setup))
  else:
    rows.append(not_shown("1-layer models show neither", "neither", "no 1-layer run"))
  rows.append(_olsson_loss_bump(multi, one, setup))
  return {"claims": rows, "results": [str(path)],
          "figures": existing(run_dir / "olsson2022_curves.png", run_dir / "olsson2022_heads.png"),
          "notes": []}


# ----------------------------------------------------------------------------- Xie 2021
def xie2021(run_dir: Path, preset: str) -> dict:
  path = run_dir / "xie2021.json"
  res = load(path)
  runs = res["runs"]
  setup = shrunk(preset) + ("small models on a reduced GINC (Xie: GPT-2 4/12/16 layers, width "
                             "768). " if preset != "paper" else "")
  tfs = sorted((n for n in runs if n.startswith("transformer")),
               key=lambda n: runs[n]["num_params"])
  from experiments.xie2021 import mean_over_k, rises_with_n
  budget = ("its models (37k-223k parameters) see 16M tokens from 400 documents of 2048 "
            "tokens; Xie pretrain GPT-2s of 4-16 layers and width 768 on 1000 documents "
            "of 10,240 tokens. The prompts (independent examples joined by delimiters) are out "
            "of the pretraining distribution; small, briefly trained models gain less from "
            "each extra example.")
  num = lambda n: runs[n]["probe"]["num_prompts"]
  lstm_budget = ("its LSTM (2 layers, about 120k parameters, matched to a 2-layer width-64 "
                 "Transformer) ends pretraining at a higher loss than every Transformer and its "
                 "accuracy is flat in n within noise at every k; Xie's LSTM has 6 layers and "
                 "is pretrained on 1000 documents of 10,240 tokens (ours: 400 of 2048).")
  trend = {n: rises_with_n(mean_over_k(runs[n]["probe"]["accuracy"]["id"], num(n)), num(n))
           for n in runs}
  per_k = {n: [k for k, c in runs[n]["probe"]["accuracy"]["id"].items()
               if not rises_with_n(c, num(n))["rises"]] for n in runs}
  rises = {n: trend[n]["rises"] for n in tfs}
  flat = "; ".join(f"{n}: k={','.join(ks)}" for n, ks in per_k.items() if ks and n in tfs)
  ideal = runs[tfs[-1]]["probe"]["accuracy"]["id"] if tfs else {}
  ideal_txt = "; ".join(f"k={k}: " + " ".join(f"{a:.2f}" for a in c["ideal"])
                        for k, c in ideal.items() if "ideal" in c)
  rows = [explain_fail(claim(
      "label accuracy rises with the number of examples n (ID concepts)", "rises",
      ", ".join(f"{n} {trend[n]['gain']:+.3f} +- {trend[n]['gain_se']:.3f} (rho "
                f"{trend[n]['spearman']:.2f})" for n in tfs),
      "every Transformer: accuracy averaged over k rises from n = 1 to the largest n by more "
      "than 2 standard errors, and Spearman(n, accuracy) > 0",
      all(rises.values()) if rises else None,
      setup + ("not rising at every k: " + flat + ". " if flat else "rising at every k. ")
      + (f"The ideal learner (Bayes over concepts, knows the prompt format) on the same "
         f"prompts, n = {ideal[next(iter(ideal))]['n']}: {ideal_txt}" if ideal_txt else "")),
      preset, budget)]

  def acc_at_max_n(name):
    acc = runs[name]["probe"]["accuracy"]["id"]
    ks = sorted(acc, key=int)
    return [int(k) for k in ks], [acc[k]["accuracy"][-1] for k in ks]

  rho = {n: spearman(*acc_at_max_n(n)) for n in tfs}
  ks = acc_at_max_n(tfs[0])[0] if tfs else []
  rows.append(claim("accuracy rises with example length k", "rises",
                    ", ".join(f"{n} rho {v:.2f}" for n, v in rho.items()) or None,
                    "Spearman(k, accuracy at the largest n) > 0 for every Transformer",
                    (all(v > 0 for v in rho.values()) if len(ks) > 1 else None) if rho else None,
                    setup + (f"k in {ks}" if len(ks) > 1 else "one example length only")))

  def mean_acc(name):
    acc = runs[name]["probe"]["accuracy"]["id"]
    return mean(a for c in acc.values() for n, a in zip(c["n"], c["accuracy"]) if n >= 1)

  if len(tfs) >= 2 and runs[tfs[0]]["num_params"] < runs[tfs[-1]]["num_params"]:
    s, l = tfs[0], tfs[-1]
    rows.append(claim("larger models are better in-context learners", "larger better",
                      f"{l} {mean_acc(l):.3f} vs {s} {mean_acc(s):.3f}",
                      "largest > smallest (mean ID accuracy over k and n >= 1)",
                      mean_acc(l) > mean_acc(s),
                      setup + "not at equal pretraining loss (Xie's comparison); final losses "
                      + ", ".join(f"{n} {runs[n].get('final_loss') or float('nan'):.3f}"
                                  for n in (s, l))))
  else:
    rows.append(not_shown("larger models are better in-context learners", "larger better",
                          "fewer than two distinct Transformer sizes"))
  if "lstm" in runs:
    t = trend["lstm"]
    rows.append(explain_fail(claim(
        "LSTMs also learn in context", "yes",
        f"gain {t['gain']:+.3f} +- {t['gain_se']:.3f} (rho {t['spearman']:.2f}); per k: "
        + ", ".join(f"k={k} {rises_with_n(c, num('lstm'))['gain']:+.3f}"
                    for k, c in runs["lstm"]["probe"]["accuracy"]["id"].items()),
        "as for the Transformers: gain > 2 standard errors and Spearman > 0", t["rises"],
        setup), preset, lstm_budget))
  else:
    rows.append(not_shown("LSTMs also learn in context", "yes", "no LSTM run"))
  beats = [(n, k) for n in runs for k, c in runs[n]["probe"]["accuracy"]["id"].items()
           if 0 in c["n"] and 1 in c["n"] and c["accuracy"][c["n"].index(0)]
           > c["accuracy"][c["n"].index(1)]]
  rows.append(claim("zero-shot can beat one-shot", "sometimes",
                    ", ".join(f"{n} k={k}" for n, k in beats) if beats else None,
                    "observed for some model and k", True if beats else None,
                    setup + ("" if beats else "not observed in this run")))
  return {"claims": rows, "results": [str(path)],
          "figures": existing(run_dir / "xie2021.png"), "notes": []}
