"""How much of a scaling-law result is the training seed: experiments/scaling_laws.py's fits
of several seeds side by side.

One seed's bootstrap (scaling.bootstrap_chinchilla, scaling_isoflop) resamples that seed's grid
points: it says how well those losses pin the law down, not how the law would move had the
grid been trained again. Here each seed is a whole grid trained from its own seed (its own
initialisations, batches and, for the Markov source, tables), and fitted on its own; the
spread of a quantity over the seeds is set beside each seed's bootstrap band
(seed_over_bootstrap: above 1, the seed moves the quantity by more than one seed's bands
allow; with few seeds a ratio somewhat above 1 is still chance: `consistent_up_to`). Per
grid point, the loss's standard deviation over seeds is set beside the fits' residuals, twice:
raw, and with each seed's mean loss over the grid taken out first (a seed that shifts every
loss by one offset moves the fitted E, not the exponents; what is left varies the shape).
"""
from __future__ import annotations

import math
import statistics

from scipy import stats

# What is compared over seeds; _quantity reads each from one seed's scaling_laws.json.
QUANTITIES = ("alpha", "beta", "E - entropy", "N_opt ~ C^a (approach 3)",
              "N_opt ~ C^a (approach 2)")


def _finite(band) -> list | None:
  """A 5-95% band as [lo, hi] with both ends finite numbers and lo <= hi; None otherwise (a
  strict JSON file writes an infinite or failed end as null)."""
  ok = (isinstance(band, (list, tuple)) and len(band) == 2
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in band)
        and band[0] <= band[1])
  return list(band) if ok else None


def _quantity(res: dict, name: str) -> tuple[float | None, list | None]:
  fit = res["fit"]
  if name in ("alpha", "beta"):
    return ((fit[name]["value"], _finite(fit[name].get("p5_p95"))) if fit.get("reported")
            else (None, None))
  if name == "E - entropy":
    if not fit.get("reported") or res.get("source_entropy") is None:
      return None, None
    band, shift = _finite(fit["E"].get("p5_p95")), res["source_entropy"]
    return fit["E"]["value"] - shift, band and [band[0] - shift, band[1] - shift]
  if name == "N_opt ~ C^a (approach 3)":
    return ((res["exponents"] or {}).get("N_opt ~ C^a"), None)
  iso = res["isoflop"]
  if "a" not in iso:
    return None, None
  return iso["a"], _finite(iso.get("a_5_95"))


def _rms(values) -> float | None:
  """Root mean square of the values that are not None (None if there are none)."""
  got = [v for v in values if v is not None]
  return math.sqrt(statistics.fmean(v * v for v in got)) if got else None


def summarize(per_seed: dict[int, dict]) -> dict:
  """{seed: that seed's scaling_laws.json} -> per quantity the seeds' values, their mean,
  standard deviation and range, and the mean width of the seeds' bootstrap 5-95% bands
  (None where no seed has one); per grid point (by run name) the losses over seeds, less
  each seed's source entropy where all are known."""
  seeds = sorted(per_seed)
  out = {"seeds": seeds, "quantities": {}, "points": []}
  for name in QUANTITIES:
    got = {s: _quantity(per_seed[s], name) for s in seeds}
    vals = [v for v, _ in got.values() if v is not None]
    bands = [b for v, b in got.values() if v is not None and b]
    out["quantities"][name] = {
        "values": {str(s): got[s][0] for s in seeds},
        "bands": {str(s): got[s][1] for s in seeds},
        "n": len(vals),
        "mean": statistics.fmean(vals) if vals else None,
        "std": statistics.stdev(vals) if len(vals) > 1 else None,
        "range": [min(vals), max(vals)] if vals else None,
        # Every seed with a value must have its band: a seed left out of the width but kept in
        # the std would bias the ratio (an unbounded band is the widest, not a missing one).
        "mean_band_width": (statistics.fmean(b[1] - b[0] for b in bands)
                            if bands and len(bands) == len(vals) else None),
        "consistent_up_to": consistent_up_to(len(vals))}
  # Each seed draws its own source, whose entropy floors its losses: where every seed knows
  # its entropy, points are compared by their loss above it.
  entropy = {s: per_seed[s].get("source_entropy") for s in seeds}
  excess = all(v is not None for v in entropy.values())
  out["source_entropy"] = {str(s): entropy[s] for s in seeds}
  out["point_loss"] = "loss - source entropy" if excess else "loss"
  runs = {}
  for s in seeds:
    for p in per_seed[s]["runs"]:
      runs.setdefault(p["run"], {"run": p["run"], "N": p["N"], "D": p["D"], "losses": {}})
      runs[p["run"]]["losses"][str(s)] = p["loss"] - (entropy[s] if excess else 0.0)
  # Each seed's mean over the points every seed has: its offset, which E absorbs.
  common = [r for r in runs.values() if len(r["losses"]) == len(seeds)]
  offset = {str(s): statistics.fmean(r["losses"][str(s)] for r in common) if common else 0.0
            for s in seeds}
  for r in runs.values():
    losses = list(r["losses"].values())
    r["std"] = statistics.stdev(losses) if len(losses) > 1 else None
    centred = [v - offset[s] for s, v in r["losses"].items()]
    r["std_centred"] = statistics.stdev(centred) if len(centred) > 1 and common else None
    out["points"].append(r)
  out["seed_offsets"] = offset
  out["loss_std_rms"] = _rms(r["std"] for r in out["points"])
  out["loss_std_centred_rms"] = _rms(r["std_centred"] for r in out["points"])
  out["fit_residual_rms"] = {str(s): per_seed[s]["fit"].get("residual_rms") for s in seeds}
  return out


Z_5_95 = 3.29  # width of a normal's 5-95% interval in standard deviations (2 x 1.645)


def consistent_up_to(n: int) -> float | None:
  """The largest seed / bootstrap ratio that n seeds' sample std still leaves consistent with
  1 (the 95th percentile of s / sigma for n normal draws, sqrt(chi2_0.95(n-1) / (n-1))):
  1.73 for 3 seeds, 1.54 for 5, 1.37 for 10. None below 2 seeds."""
  if n < 2:
    return None
  return math.sqrt(stats.chi2.ppf(0.95, n - 1) / (n - 1))


def seed_over_bootstrap(q: dict) -> float | None:
  """The seeds' standard deviation of a quantity over the standard deviation its seeds'
  bootstrap bands imply (mean 5-95% width / 3.29): above q["consistent_up_to"], the seed moves
  the quantity by more than one seed's bands allow. None with fewer than 2 seeds, or where a
  seed with a value has no finite band."""
  if q["std"] is None or not q["mean_band_width"]:
    return None
  return q["std"] / (q["mean_band_width"] / Z_5_95)


def report(summary: dict) -> None:
  """summarize()'s table, printed: the quantities per seed, and the points' loss spread."""
  seeds = summary["seeds"]
  print(f"\n=== scaling laws over {len(seeds)} training seeds ({', '.join(map(str, seeds))}) ===")
  print(f"{'quantity':<26} " + " ".join(f"{'seed ' + str(s):>9}" for s in seeds)
        + f" {'seed std':>9} {'mean 5-95% width':>17} {'seed / bootstrap':>17}"
        + f" {'chance up to':>13}")
  for name, q in summary["quantities"].items():
    ratio = seed_over_bootstrap(q)
    cell = lambda v, w=9: f"{'-':>{w}}" if v is None else f"{v:>{w}.4f}"
    print(f"{name:<26} " + " ".join(cell(q["values"][str(s)]) for s in seeds)
          + f" {cell(q['std'])} {cell(q['mean_band_width'], 17)} "
          + (f"{'-':>17}" if ratio is None else f"{ratio:>16.2f}x")
          + (f" {'-':>13}" if q["consistent_up_to"] is None else
             f" {q['consistent_up_to']:>12.2f}x"))
  rms, resid = summary["loss_std_rms"], summary["fit_residual_rms"]
  if rms is not None:
    fits = [v for v in resid.values() if v is not None]
    centred = summary.get("loss_std_centred_rms")
    print(f"{summary['point_loss']} per grid point: std over seeds {rms:.4f} (rms over points)"
          + ("" if centred is None else f", {centred:.4f} with each seed's mean offset out")
          + (f"; the fits' residuals rms {min(fits):.4f}-{max(fits):.4f}" if fits else ""))
  print("seed / bootstrap: the seeds' std over the std one seed's bootstrap implies (5-95% "
        "width / 3.29); a single seed's bands understate the uncertainty where it is above "
        "'chance up to' (the 95% level of the std of that many seeds' values, when the bands "
        "are right)")
