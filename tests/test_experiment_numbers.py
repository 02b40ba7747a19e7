"""The numbers and PASS/FAIL verdicts the paper scripts compute from their runs, checked on
hand-built inputs (no training): what Reddy and Chan record (their verdicts are the
scorer's, experiments/claims, tested in tests/test_claims_*.py), Olsson's phase-change window,
Xie's end-of-training loss and per-k trends, and what Garg, Schaeffer and Besiroglu record
(Raventós, Nanda and the benchmarks: tests/test_raventos_numbers.py, test_nanda_numbers.py,
test_benchmark_numbers.py). Each input sits on a bound or a mix-up a mutation of the script's
line would miss."""
import contextlib
import json
import types
from pathlib import Path

import pytest

from experiments import chan2022, common, garg2022, olsson2022, reddy2023, xie2021
from research.analysis import classification_plots as cplots


# ----------------------------------------------------------------------------- Reddy, Chan
def _classification_run(icl=0.95, icl_ctx=0.95, iwl=0.95, chance=None, iwl_uniform=None):
  probes = {"icl": {"acc_full": icl, "acc_context": icl_ctx, "acc_full_lo": icl,
                    "acc_full_hi": icl},
            "iwl": {"acc_full": iwl}, "flip": {"acc_context": 0.5, "acc_full_original_label": 0.5}}
  if iwl_uniform is not None:
    probes["iwl_uniform"] = {"acc_full": iwl_uniform}
  rows = [{"step": s, "eval_icl_accuracy": 0.5, "eval_icl_accuracy_context": 0.5}
          for s in (0, 20, 40)]
  return {"name": "x", "workdir": "/nonexistent", "rows": rows,
          "summary": {"num_params": 100, "train_wall_s": 1.0},
          "probe": {"probes": probes, "chance": chance or {}, "ways": 4}}


def _verdicts_asked(monkeypatch) -> list:
  """The (NAME, run_dir, preset) a script asks experiments/claims to score and print."""
  asked = []
  monkeypatch.setattr(common, "print_verdicts", lambda *a: asked.append(a))
  return asked


def test_reddy_records_chance_over_the_labels_and_prints_the_scorers_verdicts(
    tmp_path, monkeypatch):
  """Chance is 1/L over the label vocabulary (tiny: L = 8), not 1/ways; the verdicts printed
  are the scorer's (its own quicker checks, with no 2-SE margin, could disagree with
  reproduce near a line)."""
  monkeypatch.setattr(common, "classification_run",
                      lambda out, name, c: _classification_run())
  monkeypatch.setattr(cplots, "training_curves", lambda *a, **k: None)
  asked = _verdicts_asked(monkeypatch)
  reddy2023.run("tiny", tmp_path, sweeps=(), runs=("transformer",))
  res = json.loads((tmp_path / "results.json").read_text())
  assert res["chance_full"] == 1 / 8
  assert "checks" not in res and asked == [("reddy2023", tmp_path, "tiny")]


def test_a_reddy_rerun_without_sweeps_keeps_the_sweeps_run_before(tmp_path, monkeypatch):
  """`reproduce reddy2023 --preset=tiny` (no sweeps) after `experiments.reddy2023 --sweeps=K`
  rewrote results.json without the K sweep that chan2022's claim reads (its runs still there).
  Control: a sweep run now replaces its earlier record."""
  monkeypatch.setattr(common, "classification_run",
                      lambda out, name, c: _classification_run())
  monkeypatch.setattr(cplots, "training_curves", lambda *a, **k: None)
  monkeypatch.setattr(cplots, "grid", lambda *a, **k: None)
  _verdicts_asked(monkeypatch)
  reddy2023.run("tiny", tmp_path, sweeps=("K",), runs=("transformer",))
  swept = json.loads((tmp_path / "results.json").read_text())["sweep_K"]
  assert swept
  reddy2023.run("tiny", tmp_path, sweeps=(), runs=("transformer",))
  assert json.loads((tmp_path / "results.json").read_text())["sweep_K"] == swept
  monkeypatch.setattr(common, "classification_run", lambda out, name, c: _classification_run(
      icl=0.123))
  reddy2023.run("tiny", tmp_path, sweeps=("K",), runs=("transformer",))
  assert {c["icl"] for c in json.loads((tmp_path / "results.json").read_text())["sweep_K"]} \
      == {0.123}


def test_chan_records_each_cells_in_weights_accuracies_and_prints_the_scorers_verdicts(
    tmp_path, monkeypatch):
  """Recorded per cell: in-weights accuracy on UNIFORM queries (every class), which the claims
  read beside the Zipf-drawn one (a Transformer probed without it falls back to 'iwl'), and
  each cell's own in-weights chance; the verdicts printed are the scorer's."""
  def fake(out, name, config):
    if config.model.name != "lstm":
      return _classification_run(chance={"full": 1 / 32, "context": 0.25, "iwl": 1 / 32})
    return _classification_run(icl=0.1, icl_ctx=0.6, iwl=0.3, iwl_uniform=0.0625,
                               chance={"full": 1 / 32, "context": 0.25, "iwl": 0.125})
  monkeypatch.setattr(common, "classification_run", fake)
  monkeypatch.setattr(cplots, "grid", lambda *a, **k: None)
  asked = _verdicts_asked(monkeypatch)
  chan2022.run("tiny", tmp_path)
  cells = json.loads((tmp_path / "results.json").read_text())
  assert {(c["model"], c["iwl"], c["iwl_uniform"], c["iwl_chance"]) for c in cells} == {
      ("transformer", 0.95, 0.95, 1 / 32), ("lstm", 0.3, 0.0625, 0.125)}
  assert asked == [("chan2022", tmp_path, "tiny")]


def test_garg_trains_both_runs_and_prints_the_scorers_verdicts(tmp_path, monkeypatch):
  """The linear run in WORKDIR (its shift probe beside it), the sparse one in
  WORKDIR/sparse_linear, then the scorer's verdicts on WORKDIR (the run reproduce scores)."""
  trained, probed = [], []
  monkeypatch.setattr(common, "train_or_reuse",
                      lambda config, w: trained.append((config.task.function, w)))
  monkeypatch.setattr(garg2022, "write_shift_probe", probed.append)
  asked = _verdicts_asked(monkeypatch)
  garg2022.run("tiny", tmp_path, seed=1)
  assert trained == [("linear", tmp_path), ("sparse_linear", tmp_path / "sparse_linear")]
  assert probed == [tmp_path] and asked == [("garg2022", tmp_path, "tiny")]


def test_garg_trains_both_runs_at_the_seed_given_and_sparsity_of_the_preset(monkeypatch):
  """--seed=3 is config.seed of BOTH runs (the linear one too: each seed is one replicate), and
  the sparse run keeps s = 2 non-zero coordinates of d = 5 (tiny), Garg's s = 3 in the paper."""
  trained = []
  monkeypatch.setattr(common, "train_or_reuse", lambda config, w: trained.append(
      (config.task.function, config.seed, config.task.get("sparsity"))))
  monkeypatch.setattr(garg2022, "write_shift_probe", lambda w: None)
  _verdicts_asked(monkeypatch)
  garg2022.run("tiny", "/nonexistent", seed=3)
  assert [t[:2] for t in trained] == [("linear", 3), ("sparse_linear", 3)]
  assert trained[1][2] == 2 and garg2022.GARG_SPARSITY["paper"] == 3


def test_classification_figures_draw_each_probes_bar_interval_and_grid_cell(tmp_path, monkeypatch):
  """Reddy / Chan figures, the numbers handed to matplotlib: the full-vocabulary bar left of
  each probe's tick and the context-labels bar right of it, each with its own [lo, hi]
  interval; a sweep grid's cell is the accuracy of ITS (row, column) run, NaN where none ran."""
  import numpy as np
  figures = []
  monkeypatch.setattr(cplots, "save_figure", lambda fig, out, **kw: figures.append(fig) or out)
  probe = {"probes": {
      "icl": {"acc_full": 0.8, "acc_full_lo": 0.7, "acc_full_hi": 0.85,
              "acc_context": 0.9, "acc_context_lo": 0.8, "acc_context_hi": 0.95},
      "iwl": {"acc_full": 0.3, "acc_full_lo": 0.25, "acc_full_hi": 0.4}},
      "chance": {"full": 0.1, "context": 0.5}, "source": "gaussian", "burstiness": 3,
      "zipf_alpha": 0.0, "ways": 2, "shots": 4, "step": 100}
  (tmp_path / "probe.json").write_text(json.dumps(probe))
  cplots.render_probe(tmp_path / "probe.json", tmp_path / "p.png")
  ax = figures[0].axes[0]
  drawn = []
  for bars in (c for c in ax.containers if hasattr(c, "errorbar")):  # the BarContainers
    segments = bars.errorbar.lines[2][0].get_segments()
    for rect, seg in zip(bars.patches, segments):
      drawn.append((round(rect.get_x() + rect.get_width() / 2, 6), round(rect.get_height(), 6),
                    round(seg[0][1], 6), round(seg[1][1], 6)))
  assert drawn == [(-0.19, 0.8, 0.7, 0.85), (0.81, 0.3, 0.25, 0.4), (0.19, 0.9, 0.8, 0.95)]
  cells = [{"B": 1, "a": 0, "icl": 0.1, "iwl": 0.2}, {"B": 1, "a": 1, "icl": 0.3, "iwl": 0.4},
           {"B": 2, "a": 0, "icl": 0.5, "iwl": 0.6}]
  cplots.grid(cells, tmp_path / "g.png", row_key="B", col_key="a")
  icl, iwl = (np.asarray(a.images[0].get_array()) for a in figures[1].axes[:2])
  np.testing.assert_array_equal(icl, [[0.1, 0.3], [0.5, np.nan]])
  np.testing.assert_array_equal(iwl, [[0.2, 0.4], [0.6, np.nan]])


# ----------------------------------------------------------------------------- Schaeffer
def test_schaeffer_sizes_are_sorted_and_sharpness_is_resolved_on_half_widths():
  """Sizes come in by run order, are tabled by parameters; the net change must beat the
  smallest's and largest's 95% HALF-widths added (0.125 + 0.125 here, a middle size's wide
  interval not counted): 0.5 > 0.25, so the sharpness is 0.375 / 0.5 at the 200 -> 300 step."""
  from experiments import schaeffer2023
  row = lambda n: {"run": f"r{n}", "overrides": {}, "num_params": n, "num_non_embedding_params": n,
                   "train_flops": 6.0 * n, "tokens": 10, "wall_s": 1.0}
  band = lambda mean, half: {"mean": mean, "lo": mean - half, "hi": mean + half}
  probe = lambda mean, half, edit: {  # edit distance: chance 2, lower is better, half 0.125
      "metrics": {"exact_match": band(mean, half), "edit_distance": band(edit, 0.125)},
      "higher_is_better": {"exact_match": True, "edit_distance": False},
      "chance": {"exact_match": 0.0, "edit_distance": 2.0},
      "operation": "add", "num_digits": 2, "answer_len": 3, "num_shots": 0,
      "num_problems": 64, "split": "held_out", "step": 10, "metric_definitions": {},
      "chance_definition": "", "chance_definitions": {}, "chance_computed": True}
  res = schaeffer2023.sizes_table([row(300), row(100), row(200)],
                                  [probe(0.75, 0.125, 0.5), probe(0.25, 0.125, 1.75),
                                   probe(0.375, 0.5, 1.875)])
  assert [s["num_params"] for s in res["sizes"]] == [100, 200, 300]
  # Better than chance by > 3 half-widths (0.375), each metric in its own direction: only the
  # largest, exact match 0.75 above 0 and edit distance 1.5 BELOW 2.
  assert [s["above_chance"] for s in res["sizes"]] == [
      {"exact_match": False, "edit_distance": False}, {"exact_match": False,
       "edit_distance": False}, {"exact_match": True, "edit_distance": True}]
  s = res["sharpness"]["exact_match"]
  assert (s["fraction"], s["step"], s["net_change"]) == (0.75, [1, 2], 0.5)
  # The first size above chance, each metric in its own direction: edit distance 0.5 is
  # below chance 2 (better), not above it: the largest size (index 2) for both.
  assert res["first_beyond_chance"] == {"exact_match": 2, "edit_distance": 2}


def test_schaeffer_wall_time_counts_every_trained_size_not_only_the_tabled_ones(
    tmp_path, monkeypatch):
  """A size that trained (12 s) but has no probe file is left out of the table and reported
  failed, yet its training seconds still count: wall_s = 30 + 12, not the tabled 30."""
  from experiments import schaeffer2023
  from research import sweep as sweep_lib
  from research.analysis import emergence_plots as ep
  row = lambda name, n, wall: {"run": name, "status": "done", "overrides": {}, "num_params": n,
                               "num_non_embedding_params": n, "train_flops": 6.0 * n,
                               "tokens": 10, "wall_s": wall}
  rows = [row("a", 100, 30.0), row("b", 200, 12.0)]
  band = {"mean": 0.5, "lo": 0.25, "hi": 0.75}
  probe = {"metrics": {"exact_match": band}, "higher_is_better": {"exact_match": True},
           "chance": {"exact_match": 0.0}, "operation": "add", "num_digits": 2,
           "answer_len": 3, "num_shots": 0, "num_problems": 64, "split": "held_out", "step": 10,
           "metric_definitions": {}, "chance_definition": "", "chance_definitions": {},
           "chance_computed": True}
  (tmp_path / "runs" / "a" / "probes").mkdir(parents=True)
  (tmp_path / "runs" / "a" / "probes" / "arithmetic.json").write_text(json.dumps(probe))
  results = types.SimpleNamespace(point_rows=lambda points: rows,
                                  run_dir=lambda name: tmp_path / "runs" / name)
  monkeypatch.setattr(sweep_lib, "run_sweep", lambda *a, **k: results)
  monkeypatch.setattr(ep, "render_emergence_scale", lambda *a, **k: tmp_path / "f.png")
  monkeypatch.setattr(schaeffer2023, "report", lambda res: None)
  with pytest.raises(schaeffer2023.RunsFailedError):
    schaeffer2023.run("tiny", tmp_path, sizes=["0", "1"])
  res = json.loads((tmp_path / "emergence_scale.json").read_text())
  assert [s["run"] for s in res["sizes"]] == ["a"] and [f["run"] for f in res["failed"]] == ["b"]
  assert res["wall_s"] == 42.0


def test_schaeffer_tiny_trains_the_first_three_sizes_and_skips_pre_chance_probes(
    tmp_path, monkeypatch):
  """tiny with no --sizes: the scale sweep's first 3 sizes; a probe file written before
  held-out probes and input-independent chance (no chance_definition) is not tabled."""
  from configs import arithmetic
  from experiments import schaeffer2023
  from research import cli
  from research import sweep as sweep_lib
  asked = []

  class Stop(Exception):
    pass

  def fake_sweep(config, points, out, **kw):
    asked.append(points)
    raise Stop
  monkeypatch.setattr(sweep_lib, "run_sweep", fake_sweep)
  with pytest.raises(Stop):
    schaeffer2023.run("tiny", tmp_path)
  assert asked == [cli.load_sweep(arithmetic.__file__, "scale")[:3]]
  rows = [{"run": "a", "status": "done", "overrides": {}, "num_params": 1, "wall_s": 1.0}]
  (tmp_path / "runs" / "a" / "probes").mkdir(parents=True)
  (tmp_path / "runs" / "a" / "probes" / "arithmetic.json").write_text(json.dumps(
      {"metrics": {}, "chance": {}}))  # an old probe: no chance_definition
  monkeypatch.setattr(sweep_lib, "run_sweep", lambda *a, **k: types.SimpleNamespace(
      point_rows=lambda points: rows, run_dir=lambda name: tmp_path / "runs" / name))
  with pytest.raises(schaeffer2023.RunsFailedError, match="predates held-out probes"):
    schaeffer2023.run("tiny", tmp_path, sizes=["0"])


def test_schaeffer_sweeps_digit_addition_and_multiplication_only(tmp_path, monkeypatch):
  """--set task.operation=mul reaches the sweep (digit multiplication has the same probes);
  mod_add, whose probes are not digit arithmetic, is refused before anything trains."""
  from experiments import schaeffer2023
  from research import sweep as sweep_lib
  from research.errors import InputError

  class Stop(Exception):
    pass
  monkeypatch.setattr(sweep_lib, "run_sweep", lambda *a, **k: (_ for _ in ()).throw(Stop()))
  with pytest.raises(Stop):
    schaeffer2023.run("tiny", tmp_path, overrides={"task.operation": "mul"})
  with pytest.raises(InputError, match="task.operation must be add or mul"):
    schaeffer2023.run("tiny", tmp_path, overrides={"task.operation": "mod_add"})


# ----------------------------------------------------------------------------- Olsson
def _fake_final_model(monkeypatch, ablated_icl_score):
  """olsson2022.final_params gives a model whose ICL score is 1.0, and `ablated_icl_score`
  with the rising heads masked: analyse's ablation runs no network."""
  class Task:
    def eval_raw(self, exp, params, mask=None):
      return {"icl_score": 1.0 if mask is None else ablated_icl_score}
  exp = types.SimpleNamespace(task=Task(), precision=contextlib.nullcontext)
  monkeypatch.setattr(olsson2022, "final_params", lambda config, workdir: (exp, None))


def test_olsson_window_spans_window_fraction_of_training_and_reads_its_heads(monkeypatch):
  """num_steps 100, evals every 10, window_fraction 0.2: the window is 2 eval intervals (the
  ICL score's fall from step 40 to 60), 0.2 of training; 'before' is the heads' scores at its
  start (not at step 0), and the best score ever is the peak at step 80, not the final one."""
  cfg = types.SimpleNamespace(
      model=types.SimpleNamespace(num_layers=1, num_heads=2),
      train=types.SimpleNamespace(num_steps=100, eval_every=10, batch_size=4),
      task=types.SimpleNamespace(seq_len=8))
  icl = {40: 2.0, 50: 1.5}
  h0 = {0: 0.05, 50: 0.5, 60: 0.8, 70: 0.8, 80: 0.9, 90: 0.8, 100: 0.8}
  rows = [{"step": s, "icl_score": icl.get(s, 2.0 if s < 40 else 1.0), "loss": 1.0,
           "pm_L0H0": h0.get(s, 0.1), "pm_L0H1": 0.2, "prev_L0H0": 0.0, "prev_L0H1": 0.0,
           "pm_max": 0.8, "prev_max": 0.0} for s in range(0, 101, 10)]
  _fake_final_model(monkeypatch, ablated_icl_score=3.0)
  res = olsson2022.analyse(cfg, None, rows, window_fraction=0.2, min_rise=0.1)
  w = res["window"]
  assert (w["start_step"], w["end_step"], w["fraction_of_training"]) == (40, 60, 0.2)
  assert res["prefix_matching_before"] == [[0.1, 0.2]]
  assert res["prefix_matching_after"] == [[0.8, 0.2]]
  assert res["best_prefix_matching_ever"] == 0.9
  assert res["tokens_per_step"] == 4 * 8  # batch x sequence length: the curves' token axis
  assert res["ablation"] == {"heads": ["L0H0"], "icl_score": 1.0, "icl_score_ablated": 3.0,
                             "icl_change": 2.0}


# ----------------------------------------------------------------------------- Xie
def test_xie_end_loss_fits_a_line_to_the_last_quarter(tmp_path):
  """Four logged losses in the tail (steps 70..100 with tail 0.3; step 60 and the eval row are
  left out): 2, 1, 1, 2 fit a flat line at 1.5 with residuals +-0.5, so the standard deviation
  is sqrt(1 / (n - 2)) = sqrt(0.5) and the fitted value's SE at x = 100 (x mean 85, Sxx 500)
  is sqrt(0.5) * sqrt(1/4 + 225/500) = sqrt(0.35)."""
  rows = [{"step": 60, "loss": 9.0}, {"step": 70, "loss": 2.0}, {"step": 80, "loss": 1.0},
          {"step": 90, "loss": 1.0}, {"step": 100, "loss": 2.0}, {"step": 100, "eval_loss": 5.0}]
  (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  e = xie2021.end_loss(tmp_path, tail=0.3)
  assert e["value"] == pytest.approx(1.5) and e["se"] == pytest.approx(0.35 ** 0.5)
  assert (e["steps"], e["points"]) == ([70, 100], 4)


# ----------------------------------------------------------------------------- Besiroglu
def test_besiroglu_refit_extrapolation_and_approach_3_exponent(tmp_path, monkeypatch, capsys):
  """With the fit fixed (alpha 0.25, beta 0.75): a compute is 'extrapolated' past the 240
  points' LARGEST C = 6 N D; the printed approach-3 exponent is beta / (alpha + beta) = 0.75;
  no verdict of the script's own is recorded."""
  import numpy as np
  from experiments import besiroglu2024
  from research.analysis import scaling, scaling_isoflop
  fit = types.SimpleNamespace(E=1.82, A=400.0, B=2000.0, alpha=0.25, beta=0.75, n_points=240,
                              n_starts=1, seconds=0.0, loss=0.0)
  monkeypatch.setattr(scaling, "fit_chinchilla", lambda *a, **k: fit)
  iso = types.SimpleNamespace(a=0.5, a_5_95=(0.4, 0.6), resamples=10, resamples_used=10, b=0.5,
                              C=np.array([1e20]), N_opt=np.array([1e9]),
                              n_points=np.array([5]), rejected=())
  monkeypatch.setattr(scaling_isoflop, "isoflop_fit", lambda *a, **k: iso)
  monkeypatch.setattr(besiroglu2024, "make_figure", lambda *a, **k: None)
  data = scaling.load_chinchilla_csv(None)
  res = besiroglu2024.refit(tmp_path, data, bootstrap=0, top_starts=20)
  assert "pass" not in res  # the verdicts are the scorer's (experiments/claims/emergence.py)
  N, D, _ = scaling.besiroglu_subset(data.N, data.D, data.L)
  c_max = float((6.0 * N * D).max())
  flags = [o["extrapolated"] for o in res["compute_optimal"]]
  assert flags == [c > c_max for c in besiroglu2024.COMPUTES] and True in flags and False in flags
  assert "approach 3 implies N_opt ~ C^0.750" in capsys.readouterr().out


# ----------------------------------------------------------------------------- Xie, Olsson
def test_xie_records_each_ks_trend_beside_the_mean_over_k(tmp_path, monkeypatch):
  """k = 3 flat at 0.5, k = 5 rising 0.2 -> 0.9 (1000 prompts: far beyond 2 SE): the mean over
  k rises, k = 3 does not; the verdicts printed are the scorer's."""
  from research import train
  probe = {"num_prompts": 1000, "accuracy": {"id": {
      "3": {"n": [0, 1, 2, 4, 8], "accuracy": [0.5] * 5},
      "5": {"n": [0, 1, 2, 4, 8], "accuracy": [0.1, 0.2, 0.4, 0.7, 0.9]}}}}
  def fake_train(config, workdir):
    (tmp_path / "x" / "transformer_s" / "probes").mkdir(parents=True)
    (tmp_path / "x" / "transformer_s" / "probes" / "ginc.json").write_text(json.dumps(probe))
    (tmp_path / "x" / "transformer_s" / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    return {"num_params": 10, "final_loss": 1.0, "train_wall_s": 1.0}
  monkeypatch.setattr(train, "train_or_reuse", fake_train)
  monkeypatch.setattr(xie2021, "render", lambda *a, **k: tmp_path / "x.png")
  asked = _verdicts_asked(monkeypatch)
  xie2021.run("tiny", tmp_path / "x", models=["transformer_s"])
  run = json.loads((tmp_path / "x" / "xie2021.json").read_text())["runs"]["transformer_s"]
  assert run["id_trend_mean_over_k"]["rises"] is True
  assert {k: t["rises"] for k, t in run["id_trend"].items()} == {"3": False, "5": True}
  assert asked == [("xie2021", tmp_path / "x", "tiny")]


def test_print_verdicts_prints_the_scorers_rows(tmp_path, monkeypatch, capsys):
  """The scripts' verdict lines are the scorer's rows, one each, with what was measured, and a
  self-check marked as reproduce marks it (besiroglu2024's printed a bare PASS). Control: a
  paper claim's PASS has no mark."""
  from experiments import claims
  rows = [{"status": "PASS", "claim": "a rises", "ours": 0.5},
          {"status": "NOT_SHOWN", "claim": "b falls", "ours": None},
          {"status": "PASS", "claim": "c matches our fit", "ours": 0.4, "kind": "self-check"}]
  monkeypatch.setitem(claims.CLAIMS, "fake", lambda d, p: {"claims": rows} if (d, p) == (
      tmp_path, "tiny") else None)
  common.print_verdicts("fake", tmp_path, "tiny")
  out = capsys.readouterr().out.splitlines()
  assert out[-3:] == ["  PASS      a rises: 0.5", "  NOT_SHOWN b falls: -",
                      "  PASS (self-check) c matches our fit: 0.4"], out


def test_olsson_ablation_line_says_when_no_head_was_ablated():
  assert olsson2022.ablation_text({"icl_score": 0.163}) == "no rising head to ablate"
  assert olsson2022.ablation_text({"icl_score": 0.2, "icl_score_ablated": 0.5,
                                   "icl_change": 0.3}) == (
      "ablated ICL score 0.500 vs 0.200 (change +0.300)")
