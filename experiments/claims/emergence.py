"""Headline claims of Schaeffer et al. 2023 (emergence and metrics) and Besiroglu et al. 2024
(the Chinchilla refit); Nanda et al. 2023's (grokking) are in grokking.py."""
from __future__ import annotations

import json
import math
from pathlib import Path

from experiments.claims.rows import SELF_CHECK, claim, existing, load, not_shown, rounded

UNTRAINED, FLAT, SAME = "untrained model", "flat curve", "every metric on one curve"
ZIGZAG = "exact match going back and forth"
BELOW = "continuous metrics rising below chance"
NEVER = "exact match never leaves chance"
GLITCH = "token accuracy beyond chance at one size, then back at chance"
SHUFFLED = "exact match rising, then falling back at the largest size"
SATURATING = "exact match beyond chance at the smallest size, its largest step the first"
CONTINUOUS = ("token_accuracy", "edit_distance", "log_likelihood", "brier")
SMOOTH = "continuous metrics change smoothly and predictably with scale; exact match does not"
FIRST = "per-token accuracy leaves chance at a smaller size than exact match"


# ----------------------------------------------------------------------------- Schaeffer 2023
def smooth_fit(sizes: list[dict], metric: str) -> dict | None:
  """A quadratic in log10(parameters) fitted to the metric's means: the largest residual as
  a multiple of its allowance max(2 x the size's 95% half-width, 5% of the net change).
  <= 1: the smooth fit explains the metric within its intervals. None: no net change beyond
  the first and last sizes' intervals (nothing to explain)."""
  import numpy as np
  pts = [s["metrics"][metric] for s in sizes]
  mean = np.array([p["mean"] for p in pts])
  half = np.array([(p["hi"] - p["lo"]) / 2 for p in pts])
  net = abs(mean[-1] - mean[0])
  if len(pts) < 4 or not net > half[0] + half[-1]:
    return None
  x = np.log10([s["num_params"] for s in sizes])
  resid = np.abs(np.polyval(np.polyfit(x, mean, 2), x) - mean)
  allow = np.maximum(2 * half, 0.05 * net)
  worst = int(np.argmax(resid / allow))
  return {"ratio": float(resid[worst] / allow[worst]), "at": worst}


def _sharper(metric: str) -> str:
  return f"exact match looks sharper than {metric.replace('_', ' ')}"


def no_sharpness(res: dict, metric: str) -> str | None:
  """emergence_plots.no_sharpness, the one rule (imported here when called: matplotlib stays
  out of `reproduce --help`)."""
  from research.analysis import emergence_plots as ep
  return ep.no_sharpness(res, metric)


def _shown_fraction(res: dict, metric: str) -> str:
  f = res["sharpness"].get(metric, {}).get("fraction")
  if res["first_beyond_chance"].get(metric) is None:
    return "n/a (never above chance)"
  return "-" if f is None else f"{f:.2f}" + (" (goes back)" if no_sharpness(res, metric) else "")


def schaeffer2023(run_dir: Path, preset: str) -> dict:
  path = run_dir / "emergence_scale.json"
  return {"claims": schaeffer_rows(load(path), preset), "results": [str(path)],
          "figures": existing(run_dir / "figures" / "emergence_scale.png"), "notes": []}


def leaves_chance(res: dict) -> dict:
  """Per metric, the index of the size from which every larger size is beyond chance
  (emergence_plots.first_beyond_chance: the rule in force), recomputed from the sizes'
  intervals: an emergence_scale.json written before that rule stored the first size beyond
  chance, which a one-size glitch could set."""
  from research.analysis import emergence_plots as ep
  margin = {k: res["margin"][k] for k in ("sigmas", "fraction") if k in res.get("margin", {})}
  return {m: ep.first_beyond_chance([s["metrics"][m] for s in res["sizes"]], res["chance"][m],
                                    ep.PERFECT[m], res["higher_is_better"][m], **margin)
          for m in res["first_beyond_chance"]}


def first_any(res: dict, metric: str) -> int | None:
  """The index of the first size beyond chance at all (a glitch counts), by the same margin."""
  from research.analysis import emergence_plots as ep
  margin = {k: res["margin"][k] for k in ("sigmas", "fraction") if k in res.get("margin", {})}
  return next((i for i, s in enumerate(res["sizes"])
               if ep.beyond_chance(s["metrics"][metric], res["chance"][metric], ep.PERFECT[metric],
                                   res["higher_is_better"][metric], **margin)), None)


def schaeffer_rows(res: dict, preset: str) -> list[dict]:
  """The claims of one seed's emergence_scale.json content (experiments/schaeffer2023 prints
  them too)."""
  res = res | {"first_beyond_chance": leaves_chance(res)}
  sharp, sizes = res["sharpness"], res["sizes"]
  if res.get("failed"):  # a missing size would silently merge two steps of the scale
    why = (f"sizes {[f['run'] for f in res['failed']]} failed, and every claim compares "
           "adjacent sizes: rerun schaeffer2023")
    names = [_sharper(m) for m in CONTINUOUS] + [SMOOTH, FIRST]
    return [not_shown(n, "-", why, control=SAME) for n in names]
  setup = (f"{preset} preset: {res['task']['what']}, {len(sizes)} sizes "
           f"{sizes[0]['num_params']}-{sizes[-1]['num_params']} params. ")
  rows = []
  em = sharp.get("exact_match", {}).get("fraction")
  em_why = no_sharpness(res, "exact_match") if "exact_match" in sharp else "no exact match"
  if not em_why and first_any(res, "exact_match") == 0:
    # Emergence is the ability absent at the smaller sizes; a curve already above chance at
    # the smallest one and saturating put most of its change in its first step, and read
    # as 'sharper' than a continuous metric spread over the sizes.
    em_why = ("exact match already beyond chance at the smallest size: it does not emerge "
              "within these sizes, so its largest step is not a jump from absent to present")
  margin = 0.5 / max(len(sizes) - 1, 1)
  for m in (m for m in CONTINUOUS if m in sharp):
    f, why = sharp[m]["fraction"], [w for w in (em_why, no_sharpness(res, m)) if w]
    rows.append(claim(
        _sharper(m), "sharper",
        f"{_shown_fraction(res, 'exact_match')} vs {_shown_fraction(res, m)}",
        f"sharpness (largest adjacent-size step / net change) of exact match larger by > "
        f"{margin:.2f}; each curve above chance somewhere and not going back beyond its noise; "
        "exact match at chance at the smallest size",
        not why and em > f + margin,
        setup + ("; ".join(why) or f"exact match puts {em:.0%} of its change in one step, "
                                   f"{m} {f:.0%}"),
        why=f"half the step of an even spread over the sizes (1/{len(sizes) - 1}): an "
        "ordering beyond a tie; a sharpness is read only off a rise that shows the ability",
        control=(SAME, ZIGZAG, BELOW, SATURATING)))
  fits = {m: smooth_fit(sizes, m) for m in ("exact_match",) + CONTINUOUS
          if m in sizes[0]["metrics"]}
  cont = {m: f for m, f in fits.items() if m != "exact_match"}
  from research.analysis import emergence_plots as ep
  back = (ep.reversal([s["metrics"]["exact_match"] for s in sizes],
                      res["higher_is_better"]["exact_match"]) if "exact_match" in fits else None)
  below = [m for m in cont if res["first_beyond_chance"].get(m) is None]
  present = "exact_match" in fits and first_any(res, "exact_match") == 0
  ok = (bool(cont) and all(f is not None and f["ratio"] <= 1 for f in cont.values())
        and fits.get("exact_match") is not None and fits["exact_match"]["ratio"] > 1
        and back is None and not below and not present)
  # Under 4 sizes no quadratic is tested: said as such (a second trial: "no change beyond its
  # intervals" for changes 10-50 times them).
  few = len(sizes) < 4
  fmt = lambda f: (f"n/a ({len(sizes)} sizes; the fit needs 4)" if few else
                   "no change beyond its intervals" if f is None else f"{f['ratio']:.2f}")
  rows.append(claim(
      SMOOTH, "smooth vs sharp", ", ".join(f"{m} {fmt(f)}" for m, f in fits.items()),
      "quadratic fit in log-params: every continuous metric's worst residual <= its allowance "
      "(ratio <= 1) and above chance somewhere; exact match's > 1, exact match not going "
      "back beyond its noise and at chance at the smallest size",
      ok, setup + "ratio = worst |residual| / max(2 x the size's 95% half-width, 5% of the net "
      "change)" + ("" if back is None else f"; {no_sharpness(res, 'exact_match')}: its misfit "
                   "is a zig-zag, not a sharp rise")
      + ("; exact match already beyond chance at the smallest size: its misfit is not an "
         "emergence" if present else "")
      + "".join(f"; {no_sharpness(res, m)}" for m in below),
      why=f"'predictable' = a 3-parameter smooth curve explains the {len(sizes)} sizes within "
      "their noise (4 at least); "
      "'does not' = a sharp rise, not noise; a curve that never shows the ability says nothing "
      "of its progress", control=(FLAT, ZIGZAG, BELOW, SATURATING)))
  fb = res["first_beyond_chance"]
  e, t = fb.get("exact_match"), fb.get("token_accuracy")
  # Token accuracy must leave chance for good before exact match is beyond chance at ANY size
  # (a glitch included): leaving chance for good moves a metric later, which is stricter for
  # token accuracy but would be looser for exact match (its zig-zag 0, 0.3, 0, 0.3, 0, 0.06
  # would leave chance only at the last size).
  e_any = first_any(res, "exact_match")
  at = lambda i: "never" if i is None else f"{sizes[i]['num_params']} params"
  # Both curves must rise: a curve that goes back beyond its noise orders nothing (a second
  # trial: the sizes of a real result shuffled, exact match 0.01 ... 1.0, 0.99, 0.10, passed
  # in 192 of 720 orders, token accuracy being beyond chance at every size).
  falls = [no_sharpness(res, m) for m in ("token_accuracy", "exact_match")
           if m in sizes[0]["metrics"] and fb.get(m) is not None
           and ep.reversal([s["metrics"][m] for s in sizes], res["higher_is_better"][m])]
  rows.append(claim(
      FIRST, "continuous first",
      f"token accuracy at {'<= ' if t == 0 else ''}{at(t)}, exact match at {at(e)}",
      "token accuracy leaves chance (beyond it at that size and every larger one) at a "
      "smaller size than exact match, both within the sizes measured, neither curve going back "
      "beyond its noise",
      t is not None and e is not None and t < e_any and not falls,
      setup + res["margin"]["text"] + "; " + res.get("chance_definition", "chance: uniform guesser")
      + ("; exact match never leaves chance here, so no ordering is shown" if e is None else "")
      + (f"; exact match first beyond chance at {at(e_any)}, before it leaves chance"
         if e is not None and e_any < e else "")
      + ("; token accuracy already beyond chance at the smallest size: it left chance there "
         "or before" if t == 0 else "")
      + "".join(f"; {why}" for why in falls),
      why="an ordering of sizes; 'leaves chance' uses the experiment's interval margin and "
      "lasts (a size beyond chance with chance again above it is a glitch, not the ability "
      "emerging); 'never' is beyond the sizes measured, not an ordering; a curve that falls "
      "back is no emergence to order",
      control=(SAME, NEVER, GLITCH, SHUFFLED)))
  return rows


# ----------------------------------------------------------------------------- Besiroglu 2024
# Besiroglu et al. 2024 (REFERENCES.md): the approach-3 refit, value (standard error).
PUBLISHED = {"E": (1.8172, 0.03), "A": (482.01, 124.58), "B": (2085.43, 1293.23),
             "alpha": (0.3478, 0.02), "beta": (0.3658, 0.02)}
# Hoffmann et al. 2022 (REFERENCES.md): Chinchilla's own approach-3 fit, the control.
HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
# Same data and procedure: the refit must land far inside the sampling spread
# (REFERENCES.md's own refit is within 0.07 SE of every value).
POINT_SE_FRACTION = 0.25
# The bootstrap must reproduce the published interval's width within this factor. Set before
# any result was seen; a band widened afterwards for the published SE's rounding was reverted
# (a looser criterion chosen after a FAIL is not evidence).
SE_RATIO = 1.3
# A bootstrap SE from B resamples is itself noisy: its relative SE is about 1/sqrt(2(B - 1))
# (the SE of a sample standard deviation). On tiny's 10 resamples that is 24%, as wide as
# the band (-23%/+30%): beta's 0.0257 vs the bound 0.026 PASSed and alpha's 0.0151 vs 0.0154
# FAILed by chance. The SE half is scored only when that noise is at most a tenth of the
# band's narrower side (1 - 1/SE_RATIO): B >= 940; below it the SE half is NOT_SHOWN (the
# point half still FAILs a row on its own). cpu and paper run 4000 (2% noise).
SE_NOISE_SHARE = 0.1
MIN_BOOTSTRAP = math.ceil(1 + 1 / (2 * (SE_NOISE_SHARE * (1 - 1 / SE_RATIO)) ** 2))


def bootstrap_se_noise(resamples: int) -> float:
  """The relative standard error of a bootstrap SE estimated from `resamples` resamples."""
  return 1 / math.sqrt(2 * (resamples - 1)) if resamples > 1 else math.inf
# Besiroglu's compute-optimal ratio, "~20 tokens per parameter" ('~': +/- 25%).
TOKENS_PER_PARAM = (15, 25)
# Besiroglu's all-245-point fit as REFERENCES.md recomputed it for this project.
ALL_POINTS_BETA = 0.453


def besiroglu2024(run_dir: Path, preset: str) -> dict:
  path = run_dir / "scaling_fit.json"
  res = load(path)
  setup = ("" if preset != "tiny" else
           f"tiny preset: {res['n_starts']} L-BFGS starts (the best of the grid screen), "
           f"{res['bootstrap']} bootstrap resamples (Besiroglu: all 4500 starts, 4000). ")
  rows = []
  # A value outside its own bootstrap 5-95% interval is not converged: not scored as a refit.
  outside = set(res.get("outside_bootstrap_5_95") or ())
  boot = int(res.get("bootstrap") or 0)
  resolves = boot >= MIN_BOOTSTRAP
  too_few = ("" if resolves else
             f"; SE not scored: {boot} bootstrap resamples give an SE with "
             f"{bootstrap_se_noise(boot):.0%} noise (1/sqrt(2(B-1))), as wide as the x{SE_RATIO} "
             f"band; it needs >= {MIN_BOOTSTRAP} (noise <= {SE_NOISE_SHARE:g} of the band's "
             f"narrower side): the cpu and paper presets run 4000 (`python -m experiments."
             f"reproduce besiroglu2024 --preset=cpu`)")
  for k, (pv, pse) in PUBLISHED.items():
    v, se = res["params"][k]["fit"], res["params"][k]["se"]
    lo, hi = pse / SE_RATIO, pse * SE_RATIO
    point_ok = abs(v - pv) <= POINT_SE_FRACTION * pse
    se_ok = se is not None and lo <= se <= hi and k not in outside
    # Too few resamples: the SE half is not shown, so the row is NOT_SHOWN unless its point
    # half already FAILs it (a conjunction with one part false is false).
    ok = (point_ok and se_ok) if resolves else (None if point_ok else False)
    rows.append(claim(
        f"Chinchilla approach-3 refit: {k} (value and standard error)", f"{pv:g} (SE {pse:g})",
        f"{v:.4g} (SE {'-' if se is None else f'{se:.3g}'})",
        f"|ours - published| <= {POINT_SE_FRACTION} published SE, and our bootstrap SE in "
        f"[{lo:.3g}, {hi:.3g}] (within x{SE_RATIO} of the published SE), from >= "
        f"{MIN_BOOTSTRAP} resamples",
        ok,
        setup + f"{res['n_points']} points; off by {abs(v - pv) / pse:.2f} published SE; SE ratio "
        + ("- (no bootstrap)" if se is None else f"{se / pse:.2f}")
        + ("; the fit lies outside its own bootstrap 5-95% interval" if k in outside else "")
        + too_few,
        why="same data and procedure: the refit lands deep inside the published interval, and "
        "the bootstrap reproduces its width; a bootstrap SE is judged only on enough resamples "
        "that its own noise is a tenth of the band", control="Hoffmann et al.'s fit"))
  tpp = [r["tokens_per_param"] for r in res["compute_optimal"]]
  cs = [r["C"] for r in res["compute_optimal"]]
  lo, hi = TOKENS_PER_PARAM
  known = [t for t in tpp if t is not None]  # None: the fitted law has no optimum there
  rows.append(claim("~20 tokens per parameter at the compute-optimal point", "~20",
                    f"{min(known):.1f}-{max(known):.1f}" if known else "no optimum",
                    f"every C in [{lo}, {hi}]",
                    len(known) == len(tpp) and all(lo <= t <= hi for t in tpp),
                    setup + f"C = {cs[0]:.0e}..{cs[-1]:.0e}"
                    + ("" if len(known) == len(tpp) else
                       f"; no optimum at {len(tpp) - len(known)} of {len(tpp)} C"),
                    why="'~': +/- 25%", control="Hoffmann et al.'s fit"))
  all_path = run_dir / "all_points" / "scaling_fit.json"
  results = [str(path)]
  text = "dropping the 5 highest-loss points matters: all 245 give beta ~0.453"
  if all_path.is_file():
    allp = load(all_path)
    b = allp["params"]["beta"]["fit"]
    rows.append(claim(text, ALL_POINTS_BETA, rounded(b, 4), "within 0.02",
                      abs(b - ALL_POINTS_BETA) <= 0.02,
                      f"target computed for this project (REFERENCES.md's own refit), not a "
                      f"published number; ours {b - ALL_POINTS_BETA:+.4f} from it, B "
                      f"{allp['params']['B']['fit']:.0f}",
                      why="one published beta SE", control="Hoffmann et al.'s fit",
                      kind=SELF_CHECK))
    results.append(str(all_path))
  else:
    rows.append(not_shown(text, ALL_POINTS_BETA, "all-points fit not run",
                          control="Hoffmann et al.'s fit", kind=SELF_CHECK))
  return {"claims": rows, "results": results, "seedless": True,
          "figures": existing(run_dir / "scaling_fit.png"), "notes": []}

