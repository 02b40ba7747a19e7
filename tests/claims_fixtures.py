"""Hand-built result files of a reproduction that shows each paper's claims, for the scorer
tests (tests/test_claims_*.py); the negative controls come from experiments/claims/controls.py."""
import json
import math


def write(path, obj):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(obj))
  return path


def statuses(scored):
  return [r["status"] for r in scored["claims"]]


def seeds(run_dir, n, build):
  """build(seed_dir, seed) for n seeds under run_dir/seed_<i>, each seed's result file marked
  as its own run (`fixture_replicate`: i, and its `seed` where it records one): the scorer
  takes identical files, or one naming another seed, for copies, not replicates
  (claims.not_replicates), and most builders write the same file for every seed."""
  from experiments.claims import RESULT_FILES
  for i in range(n):
    build(run_dir / f"seed_{i}", i)
    for name in set(RESULT_FILES.values()):
      path = run_dir / f"seed_{i}" / name
      if path.is_file():
        res = json.loads(path.read_text())
        (res if isinstance(res, dict) else res[0])["fixture_replicate"] = i
        if isinstance(res, dict) and "seed" in res:  # as the experiment records its --seed
          res["seed"] = i
        write(path, res)


# ----------------------------------------------------------------------------- Garg
D, N = 5, 16
LS = [max(D - k, 0) / D for k in range(N)]


def garg_probe(model, baseline=3.0):
  flat = lambda v: {"mean": v, "lo": v, "hi": v}
  return {"k": list(range(N)), "n_dims": D, "step": 100,
          "curves": {"model": flat(model), "least_squares": flat(LS),
                     "averaging": flat([baseline] * N), "nearest_neighbours": flat([baseline] * N)}}


def garg_sparse(model=None):
  ls = [v * 0.4 for v in LS]
  lasso = [0.5 * v for v in ls]
  model = model or [v + 0.005 for v in lasso]
  c = lambda v: {"mean": v}
  return {"n_dims": D, "k": list(range(N)), "num_prompts": 64, "lasso_tuned_alpha": [0.01] * N,
          "curves": {"model": c(model), "lasso_tuned": c(lasso), "least_squares": c(ls)}}


def garg_shift(errors, orthant_query="last"):
  shifts = {s: {"model": [1.0] * D + [e] * (N - D), "least_squares": [0.0] * N}
            for s, e in errors.items()}
  out = {"k": list(range(N)), "n_dims": D, "num_prompts": 64, "shifts": shifts}
  return out | ({"orthant_query": orthant_query} if orthant_query else {})


GOOD_SHIFTS = {"none": 0.05, "scale_0.5": 0.07, "scale_2": 0.15, "scale_3": 0.3,
               "orthant": 0.1, "skewed": 0.2}


def garg_run(run_dir, seed=0, model=None):
  write(run_dir / "probes" / "icl_regression.json",
        garg_probe(model or [v + 0.02 for v in LS]))
  write(run_dir / "sparse_linear" / "probes" / "icl_regression.json", garg_sparse())
  write(run_dir / "distribution_shift.json", garg_shift(GOOD_SHIFTS))


# ----------------------------------------------------------------------------- Raventós
def raventos(grid, ridge_from, ridge_to_dmmse=1.0):
  from experiments import raventos2023
  near, far = 0.1 * ridge_to_dmmse, 0.9 * ridge_to_dmmse
  pools = [{"M": m, "d_ridge": near if m >= ridge_from else far,
            "d_dmmse": far if m >= ridge_from else near, "ridge_to_dmmse": ridge_to_dmmse,
            "d_noise": 0.05 * ridge_to_dmmse, "ensemble_size": len(grid),
            "pool_tasks": {"model": [0.1], "dmmse": [0.05], "ridge": [0.3]}} for m in grid]
  return {"n_dims": 8, "n_points": 16, "num_steps": 4000, "grid": grid, "pools": pools,
          "model": {"num_layers": 4, "width": 64, "num_heads": 2},
          "distance": raventos2023.DISTANCE, "ensemble": "one ensemble (fixture)",
          "m_star": raventos2023.estimate_m_star(pools), "failed": []}


# ----------------------------------------------------------------------------- Reddy / Chan
L, WAYS, NSEQ = 32, 2, 512


def _probe(icl, iwl):
  return {"icl": {"acc_full": icl, "acc_context": icl, "num_sequences": NSEQ,
                  "acc_full_lo": icl - 0.02, "acc_full_hi": icl + 0.02},
          "iwl": {"acc_full": iwl, "num_sequences": NSEQ}}


def reddy_results(icl=0.99, lstm_icl=0.04, lstm_iwl=0.9, sweep_k=(0.04, 0.15, 1.0, 1.0),
                  first=0.05):
  run = lambda icl_, iwl_, win: {
      "probe": _probe(icl_, iwl_), "summary": {"final_step": 1000},
      "transition": {"first_eval": first}, "transition_context": {"window_10_90": win,
                                                                  "in_band": win, "step_50": 300}}
  return {"preset": "cpu", "chance_full": 1 / L,
          "runs": {"transformer": run(icl, 0.1, 145), "control_b0": run(0.034, 1.0, None),
                   "lstm": run(lstm_icl, lstm_iwl, None)},
          "sweep_K": [{"K": k, "icl": a, "icl_lo": a - 0.02, "icl_hi": a + 0.02}
                      for k, a in zip((32, 128, 512, 2048), sweep_k)],
          "sweep_B": [{"B": b, "icl": a, "icl_lo": a - 0.02, "icl_hi": a + 0.02}
                      for b, a in zip((0, 1, 2, 4), (0.03, 0.24, 1.0, 0.99))]}


def reddy_run(run_dir, seed=0, **kw):
  write(run_dir / "results.json", reddy_results(**kw))
  rows = [{"step": s, "eval_attn_l1h1_query_to_label": 0.1 if s < 300 else 0.9}
          for s in range(0, 1001, 50)]
  (run_dir / "transformer").mkdir(parents=True, exist_ok=True)
  (run_dir / "transformer" / "metrics.jsonl").write_text("\n".join(map(json.dumps, rows)))


# in-weights chance by Zipf alpha: 1/L, the most frequent label's share of the queries at 1
IWL_CHANCE = {0.0: 1 / L, 1.0: 0.156}


def chan_cells(icl_ctx=None, iwl=None, lstm_iwl=0.8):
  icl_ctx = icl_ctx or {(0.0, 0.0): 0.5, (0.0, 1.0): 0.52, (0.9, 0.0): 0.95, (0.9, 1.0): 0.8}
  iwl = iwl or {(0.0, 0.0): 0.1, (0.0, 1.0): 0.6, (0.9, 0.0): 0.1, (0.9, 1.0): 0.7}
  cells = []
  for (p, a), ctx in icl_ctx.items():
    cells.append({"model": "transformer", "data": f"p_bursty={p}, alpha={a}", "icl": ctx / 2,
                  "icl_context": ctx, "iwl": iwl[p, a], "iwl_uniform": iwl[p, a] / 2,
                  "iwl_chance": IWL_CHANCE[a],
                  "overrides": {"task.p_bursty": p, "task.zipf_alpha": a}})
    cells.append({"model": "lstm", "data": f"p_bursty={p}, alpha={a}", "icl": 0.03,
                  "icl_context": 0.5, "iwl": lstm_iwl, "iwl_uniform": lstm_iwl,
                  "iwl_chance": IWL_CHANCE[a], "overrides": {"model.name": "lstm", "task.p_bursty": p, "task.zipf_alpha": a}})
  return cells


def chan_run(run_dir, seed=0, **kw):
  write(run_dir / "results.json", chan_cells(**kw))
  write(run_dir / "cell" / "probes" / "classification.json",
        {"chance": {"full": 1 / L, "context": 1 / WAYS}, "probes": _probe(0.5, 0.5)})
  reddy_dir = run_dir.parent.parent.parent / "reddy2023" / "run" / run_dir.name \
      if run_dir.name.startswith("seed_") else run_dir.parent.parent / "reddy2023" / "run"
  reddy_run(reddy_dir)


# ----------------------------------------------------------------------------- Olsson
def olsson_run(run_dir, seed=0, icl=None, loss=None, one_loss=None, one_icl=None):
  steps = list(range(0, 1001, 25))
  sig = lambda s, at=500, w=30: 1 / (1 + math.exp(-(s - at) / w))
  icl = icl or (lambda s: -0.6 * sig(s) - 0.0001 * s)
  loss = loss or (lambda s: 4.0 - 0.0005 * s - 0.8 * sig(s))
  one_loss = one_loss or (lambda s: 4.0 - 0.0005 * s)
  run = lambda ic, lo, pm, drop: {
      "final": {"prefix_matching_max": pm, "icl_score": ic(1000)},
      "window": {"start_step": 425, "end_step": 550, "drop": drop},
      "ablation": {"heads": ["L1H0"], "icl_change": 0.8 * (ic(0) - ic(1000))},
      "best_prefix_matching_ever": pm,
      "loss_curve": {"step": steps, "loss": [lo(s) for s in steps]},
      "icl_curve": {"step": steps, "icl_score": [ic(s) for s in steps]},
      # head L1H0 forms with the phase change (to pm), the others stay unstructured
      "prefix_curve": {"L0H0": [0.03] * len(steps), "L0H1": [0.03] * len(steps),
                       "L1H0": [0.03 + (pm - 0.03) * sig(s) for s in steps],
                       "L1H1": [0.03] * len(steps)}}
  from experiments.olsson2022 import TARGETS
  write(run_dir / "olsson2022.json", {"targets": TARGETS, "runs": {
      "1": run(one_icl or (lambda s: -0.0001 * s), one_loss, 0.05, 0.02),
      "2": run(icl, loss, 0.9, 0.5)}})


# ----------------------------------------------------------------------------- Xie
def xie_curve(accs, ideal=True):
  ns = [0, 1, 2, 4, 8, 16]
  c = {"n": ns, "accuracy": list(accs)}
  if ideal:
    c |= {"ideal": [0.3, 0.9, 0.95, 1.0, 1.0, 1.0], "mixture": [0.3, 0.5, 0.6, 0.7, 0.8, None],
          "mixture_prompts": [256, 200, 150, 80, 25, 0],
          "model_on_mixture_prompts": [0.35, 0.6, 0.6, 0.7, 0.8, None]}
  return c


def xie_results(scale=1.0, lstm_gain=0.2, zero_shot=0.3):
  rise = lambda g, base: [zero_shot] + [base + g * i / 4 for i in range(5)]
  run = lambda p, g, base: {"num_params": p, "final_loss": 2.0, "end_loss": {
      "value": 2.0, "se": 0.01, "steps": [3000, 4000], "points": 11}, "probe": {
      "num_prompts": 1024, "ideal_num_prompts": 256, "accuracy": {"id": {
          str(k): xie_curve(rise(g * scale, base + 0.05 * j)) for j, k in enumerate((3, 5, 8))}}}}
  return {"runs": {"transformer_s": run(10_000, 0.3, 0.1), "transformer_l": run(50_000, 0.4, 0.2),
                   "lstm": run(30_000, lstm_gain, 0.1)}}


def xie_run(run_dir, seed=0, **kw):
  write(run_dir / "xie2021.json", xie_results(**kw))
