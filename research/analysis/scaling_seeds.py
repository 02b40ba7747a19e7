"""How much of a scaling-law result is the training seed: experiments/scaling_laws.py's fits
of several seeds side by side.

One seed's bootstrap (scaling.bootstrap_chinchilla, scaling_isoflop) resamples that seed's grid
points: it says how well those losses pin the law down, not how the law would move had the
grid been trained again. Here each seed is a whole grid trained from its own seed (its own
initialisations, batches and, for the Markov source, tables), and fitted on its own; the
spread of a quantity over the seeds is set beside each seed's bootstrap band
(seed_over_bootstrap: above 1, the seed moves the quantity by more than one seed's bands
allow). Per grid point, the loss's standard deviation over seeds is set beside the fits'
residuals: noise that the 5-parameter law cannot absorb.
"""
from __future__ import annotations

import math
import statistics

# What is compared over seeds; _quantity reads each from one seed's scaling_laws.json.
QUANTITIES = ("alpha", "beta", "E - entropy", "N_opt ~ C^a (approach 3)",
              "N_opt ~ C^a (approach 2)")


def _quantity(res: dict, name: str) -> tuple[float | None, list | None]:
  fit = res["fit"]
  if name in ("alpha", "beta"):
    return (fit[name]["value"], fit[name]["p5_p95"]) if fit.get("reported") else (None, None)
  if name == "E - entropy":
    if not fit.get("reported") or res.get("source_entropy") is None:
      return None, None
    band = fit["E"]["p5_p95"]
    shift = res["source_entropy"]
    return fit["E"]["value"] - shift, band and [band[0] - shift, band[1] - shift]
  if name == "N_opt ~ C^a (approach 3)":
    return ((res["exponents"] or {}).get("N_opt ~ C^a"), None)
  iso = res["isoflop"]
  if "a" not in iso:
    return None, None
  band = iso.get("a_5_95")
  finite = band and all(v is not None and math.isfinite(v) for v in band)
  return iso["a"], band if finite else None


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
    bands = [b for _, b in got.values() if b]
    out["quantities"][name] = {
        "values": {str(s): got[s][0] for s in seeds},
        "bands": {str(s): got[s][1] for s in seeds},
        "n": len(vals),
        "mean": statistics.fmean(vals) if vals else None,
        "std": statistics.stdev(vals) if len(vals) > 1 else None,
        "range": [min(vals), max(vals)] if vals else None,
        "mean_band_width": statistics.fmean(b[1] - b[0] for b in bands) if bands else None}
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
  for r in runs.values():
    losses = list(r["losses"].values())
    r["std"] = statistics.stdev(losses) if len(losses) > 1 else None
    out["points"].append(r)
  stds = [r["std"] for r in out["points"] if r["std"] is not None]
  out["loss_std_rms"] = math.sqrt(statistics.fmean(v * v for v in stds)) if stds else None
  out["fit_residual_rms"] = {str(s): per_seed[s]["fit"].get("residual_rms") for s in seeds}
  return out


Z_5_95 = 3.29  # width of a normal's 5-95% interval in standard deviations (2 x 1.645)


def seed_over_bootstrap(q: dict) -> float | None:
  """The seeds' standard deviation of a quantity over the standard deviation its seeds'
  bootstrap bands imply (mean 5-95% width / 3.29): above 1, the seed moves the quantity by more
  than one seed's bands allow. None with fewer than 2 seeds or no band."""
  if q["std"] is None or not q["mean_band_width"]:
    return None
  return q["std"] / (q["mean_band_width"] / Z_5_95)
