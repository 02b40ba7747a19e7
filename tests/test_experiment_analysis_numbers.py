"""Numbers the scaling-laws and ladder scripts compute from their runs, on hand-built inputs:
the source's entropy (the floor a scaling fit is read against), which eval row is a run's
held-out loss, the phase-change window's noise and shares, the compute frontier, the k the
abilities are read at when sizes were probed at different k, and the ladder's own configs."""
import json
import math

import numpy as np
import pytest

from experiments import ladder, scaling_laws


# ----------------------------------------------------------------------------- scaling laws
def test_source_entropy_of_a_uniform_source_is_log_v(monkeypatch):
  """A source whose next token is uniform has entropy log V per predicted token. The eval
  loss averages positions 1..L-1 (L - 1 of them), so the Bayes loss must divide by L - 1:
  by L it read (L-1)/L log V, a floor below the true one (here 11/12 of it)."""
  import ml_collections

  from research import tasks
  vocab, length = 16, 12

  class Uniform:
    def __init__(self):
      self.vocab = vocab

    def eval_sets(self):
      return [np.random.default_rng(0).integers(0, vocab, (5, length))]

    def next_logits(self, prev2, prev1):
      return np.zeros(prev1.shape + (vocab,), np.float32)
  monkeypatch.setattr(tasks, "build", lambda *a, **k: Uniform())
  config = ml_collections.ConfigDict({"task": {"repeat_prob": 0.0}, "seed": 0})
  assert scaling_laws.source_entropy(config) == pytest.approx(math.log(vocab), rel=1e-6)


def test_held_out_loss_is_the_eval_at_the_last_step_only(tmp_path):
  """A run whose eval did not land on its last step (eval_every not dividing num_steps) has
  no held-out loss at the end: its last training loss is used and says so, never an eval
  logged hundreds of steps earlier (a higher loss, read as the end of training)."""
  rows = [{"step": 50, "loss": 3.0}, {"step": 50, "eval_loss": 3.2},
          {"step": 100, "loss": 2.0}]
  (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  assert scaling_laws.held_out_loss(tmp_path, 100) == (2.0, "train_loss", 2.0)
  with (tmp_path / "metrics.jsonl").open("a") as f:
    f.write(json.dumps({"step": 100, "eval_loss": 2.25}) + "\n")
  assert scaling_laws.held_out_loss(tmp_path, 100) == (2.25, "eval_loss", 2.0)


# ----------------------------------------------------------------------------- ladder
def test_phase_change_noise_adds_the_two_ends_in_quadrature():
  """The window's drop is a difference of two independent ICL estimates: its SE is
  hypot(se_start, se_end) (0.03, 0.04 -> 0.05), not their sum (0.07), which the claims'
  2-SE test would read as a noisier window."""
  row = lambda step, icl, se: {"step": step, "icl_score": icl, "icl_score_se": se,
                               "top_prefix": 0.1, "prefix_baseline": 0.04}
  rows = [row(10, 0.0, 0.01), row(20, 0.0, 0.03), row(40, -0.1, 0.02), row(70, -0.9, 0.04),
          row(100, -1.0, 0.01)]
  w = ladder.phase_change(rows, 100, 10)
  assert (w["start_step"], w["end_step"]) == (20, 70)
  assert w["noise"] == pytest.approx(0.05, rel=1e-12)


def test_abilities_are_read_at_the_largest_k_every_size_has():
  """Sizes probed at different shots (a small context fits fewer): the k read is the
  largest one every checkpoint has (4 here), not the largest any has (8)."""
  from research.analysis.answer_metrics import METRICS
  chance = {m: 0.0 for m in METRICS}
  cell = {m: [0.5, 0.4, 0.6] for m in METRICS} | {"chance": chance}
  row = lambda step, shots: {"step": step, "tokens": step, "compute": float(step),
                             "few_shot": {"copy": {str(k): cell for k in shots}}}
  sizes = [{"run": "a", "num_params": 10, "rows": [row(1, (0, 4, 8)), row(2, (0, 4, 8))]},
           {"run": "b", "num_params": 20, "rows": [row(3, (0, 4)), row(4, (0, 4))]}]
  out = ladder.abilities(sizes)
  assert out["copy"]["k"] == 4


def test_key_frequencies_leave_out_their_share():
  """nanda2023 records the key Fourier frequencies from the last eval row; the row's
  key_freq_share (0.93) read as one more frequency would add a frequency 0 (mutation 6D M32)."""
  from research.analysis import emergence_plots
  row = {"step": 5, "key_freq_1": 14, "key_freq_0": 3, "key_freq_share": 0.93, "loss": 1.0}
  assert emergence_plots.key_freqs(row) == [3, 14]


def test_phase_change_prefix_rise_is_taken_against_the_whole_runs_net_rise():
  """The top prefix-matching score 0.1, 0.1, 0.3, 0.8, 0.5 over the checkpoints 10..100: the
  window 20 -> 70 (ICL score 0, 0, -0.1, -0.9, -0.5) holds a rise of 0.7, the whole run's net
  rise is last - first = 0.4 (not the peak's 0.7), so the share is 1.75; the rise per step is
  0.7 / 50 in the window and 0 before it; the prefix baseline is the window end's (0.06)."""
  row = lambda step, icl, prefix, base: {"step": step, "icl_score": icl, "icl_score_se": 0.01,
                                         "top_prefix": prefix, "prefix_baseline": base}
  rows = [row(10, 0.0, 0.1, 0.04), row(20, 0.0, 0.1, 0.04), row(40, -0.1, 0.3, 0.05),
          row(70, -0.9, 0.8, 0.06), row(100, -0.5, 0.5, 0.07)]
  w = ladder.phase_change(rows, 100, 10)
  assert (w["start_step"], w["end_step"], w["checkpoints"]) == (20, 70, 5)
  assert w["prefix_rise"] == pytest.approx(0.7) and w["prefix_total_rise"] == pytest.approx(0.4)
  assert w["prefix_share"] == pytest.approx(1.75)
  assert w["prefix_rate"] == pytest.approx(0.7 / 50) and w["prefix_rate_before"] == 0.0
  assert w["step_share"] == pytest.approx(50 / 90) and w["prefix_baseline"] == 0.06
  assert w["rate"] == pytest.approx(0.9 / 50) and w["rate_before"] == 0.0
  # the ICL score ends at -0.5 after a low of -0.9: the run's net drop is first - last = 0.5
  assert w["drop"] == pytest.approx(0.9) and w["total_drop"] == pytest.approx(0.5)
  assert w["share"] == pytest.approx(1.8)


def test_cpu_ladder_steps_and_a_tenth_of_them_as_warmup():
  """cpu: c1..c5 train 1500, 1500, 1000, 600, 200 steps, each warming up for a tenth of its
  own run (the preset's 200 warmup steps would be all of c5's)."""
  preset, shared, points = ladder.make_points("cpu")
  assert preset == "cpu" and shared["train.keep_log_spaced"] is True
  # no evaluation or sampling while training: the probes measure every kept checkpoint
  assert (shared["train.eval_every"], shared["probe.generate_tokens"]) == (0, 0)
  assert [(p["train.num_steps"], p["optim.warmup_steps"]) for p in points] == [
      (1500, 150), (1500, 150), (1000, 100), (600, 60), (200, 20)]


def test_frontier_takes_the_lowest_loss_at_a_tied_compute_and_no_plateau():
  """Two sizes at the same compute 10 (losses 2.0, then 1.0): the frontier's point there is the
  1.0 alone (not 2.0 and then 1.0 at the same compute); a loss only equal to the best so far
  (0.5 at compute 40) is no new frontier point; a checkpoint of no compute (step 0) is none."""
  sizes = [{"run": "a", "rows": [{"compute": 0.0, "loss": 9.0, "step": 0},
                                 {"compute": 10.0, "loss": 2.0, "step": 1},
                                 {"compute": 40.0, "loss": 0.5, "step": 4}]},
           {"run": "b", "rows": [{"compute": 10.0, "loss": 1.0, "step": 2},
                                 {"compute": 20.0, "loss": 0.5, "step": 3}]}]
  assert ladder.frontier(sizes)["points"] == [
      {"compute": 10.0, "loss": 1.0, "run": "b", "step": 2},
      {"compute": 20.0, "loss": 0.5, "run": "b", "step": 3}]


def _fake_ladder_run(tmp_path, monkeypatch, done):
  """ladder.run with the sweep, probes and analysis faked: DONE(i) says which points trained;
  returns (the sizes handed to ladder_table, the probe_run calls)."""
  import types
  from research import probe_checkpoints, sweep as sweep_lib, workdir as workdir_lib
  from research.analysis import ladder_plots
  seen, probed = [], []
  rows = lambda points: [
      {"run": f"r{i}", "num_params": 10 * (i + 1), "wall_s": 1.0,
       **({"status": "done"} if done(i) else {"status": "failed", "error": "boom"})}
      for i in range(len(points))]
  monkeypatch.setattr(sweep_lib, "run_sweep", lambda *a, **k: types.SimpleNamespace(
      point_rows=rows, run_dir=lambda name: tmp_path / "runs" / name))
  monkeypatch.setattr(probe_checkpoints, "probe_run",
                      lambda run_dir, few_shot_prompts: probed.append((run_dir, few_shot_prompts)))
  monkeypatch.setattr(workdir_lib, "read_jsonl", lambda path: [])
  monkeypatch.setattr(ladder, "ladder_table", lambda sizes: seen.extend(sizes) or {
      "sizes": [], "frontier": {"points": [], "fit": None, "no_fit": "x"}, "abilities": {}})
  monkeypatch.setattr(ladder_plots, "render_all", lambda *a: [])
  return seen, probed


def test_ladder_records_each_sizes_own_config_and_refuses_a_failed_size(tmp_path, monkeypatch):
  """cpu, c1 and c5 trained, c2-c4 failed: each size is recorded with its own point's width,
  layers, heads and steps (c1: 2 x 48, 1500 steps; c5: 6 x 192, 200 steps; not the preset's
  width 128 and 2000 steps), probed with 100 few-shot prompts; the failed sizes are refused
  after ladder.json is written. tiny probes with 8 prompts."""
  from research.errors import RunsFailedError
  seen, probed = _fake_ladder_run(tmp_path, monkeypatch, lambda i: i in (0, 4))
  with pytest.raises(RunsFailedError, match="3 of 5 sizes failed"):
    ladder.run("cpu", tmp_path)
  assert [(s["run"], s["num_params"], s["num_layers"], s["width"], s["num_heads"],
           s["num_steps"], s["steps_per_call"]) for s in seen] == [
      ("r0", 10, 2, 48, 2, 1500, 10), ("r4", 50, 6, 192, 6, 200, 10)]
  assert probed == [(tmp_path / "runs" / "r0", 100), (tmp_path / "runs" / "r4", 100)]
  res = json.loads((tmp_path / "ladder.json").read_text())
  assert [f.split(":")[0] for f in res["failed"]] == ["r1", "r2", "r3"]
  seen, probed = _fake_ladder_run(tmp_path, monkeypatch, lambda i: True)
  (tmp_path / "tiny").mkdir()  # where the sweep would have trained
  ladder.run("tiny", tmp_path / "tiny")  # both sizes trained: no error
  assert [p[1] for p in probed] == [8, 8] and [s["width"] for s in seen] == [16, 32]


def test_frontier_residuals_are_the_worst_and_mean_share_of_each_points_loss():
  """A power law with +-1-2% noise: max_rel_residual is the largest |law - loss| / loss over the
  frontier points (not their mean, nor a share of the law's value), mean_rel_residual their
  mean, both from the fitted E, A, alpha."""
  noise = [0.01, -0.01, 0.02, -0.02, 0.01, 0.0]
  compute = [10.0 ** e for e in range(9, 15)]
  losses = [(1.5 + 30 * c ** -0.15) * (1 + n) for c, n in zip(compute, noise)]
  losses = [min(losses[:i + 1]) - 1e-6 * i for i in range(len(losses))]  # every point a frontier
  sizes = [{"run": "r", "rows": [{"compute": c, "loss": l, "step": i}
                                 for i, (c, l) in enumerate(zip(compute, losses))]}]
  fr = ladder.frontier(sizes)
  fit = fr["fit"]
  assert len(fr["points"]) == 6 and fit["n_points"] == 6
  rel = [abs(fit["E"] + fit["A"] * c ** -fit["alpha"] - l) / l for c, l in zip(compute, losses)]
  assert fit["max_rel_residual"] == pytest.approx(max(rel), rel=1e-6)
  assert fit["mean_rel_residual"] == pytest.approx(sum(rel) / 6, rel=1e-6)
  assert fit["max_rel_residual"] > 1.2 * fit["mean_rel_residual"]


def test_ladder_table_orders_sizes_by_parameters_and_rows_by_step():
  """Probe rows read in any order (a resumed probe appends late checkpoints out of order) and
  sizes handed over in any order: ladder.json lists the sizes smallest first and each size's
  rows by step, compute = 6 x parameters x tokens and top_prefix the best head's score."""
  def probe_row(step, prefix):
    return {"step": step, "tokens": 100 * step, "loss": 3.0 - step / 100, "icl_score": -0.1,
            "icl_score_se": 0.01, "heads": {"L0H0": {"prefix": prefix}, "L0H1": {"prefix": 0.1}},
            "prefix_baseline": 0.05}
  def size(run, n):
    return {"run": run, "num_params": n, "num_steps": 40, "steps_per_call": 10,
            "rows": [probe_row(40, 0.5), probe_row(10, 0.0), probe_row(20, 0.2)]}
  out = ladder.ladder_table([size("big", 2000), size("small", 1000)])
  assert [s["run"] for s in out["sizes"]] == ["small", "big"]
  small = out["sizes"][0]
  assert [r["step"] for r in small["rows"]] == [10, 20, 40]
  assert [r["compute"] for r in small["rows"]] == [6.0 * 1000 * 1000, 6.0 * 1000 * 2000,
                                                   6.0 * 1000 * 4000]
  assert [r["top_prefix"] for r in small["rows"]] == [0.1, 0.2, 0.5]


def test_tiny_ladder_points_log_within_its_40_steps():
  """tiny: the tiny preset's sizes (2 layers, width 16 / 32) over 40 steps, logging every 20
  (the ladder's common 50 would log no training loss in 40 steps), checkpoints only at
  log-spaced steps on a grid of 10."""
  preset, shared, points = ladder.make_points("tiny")
  assert preset == "tiny"
  assert (shared["train.num_steps"], shared["train.log_every"], shared["train.steps_per_call"],
          shared["train.checkpoint_every"], shared["train.keep_log_spaced"]) == (40, 20, 10, 0, True)
  assert [(p["model.num_layers"], p["model.width"]) for p in points] == [(2, 16), (2, 32)]


def test_phase_change_of_a_rising_icl_score_has_no_share():
  """An ICL score that rises over the run (0 -> 0.4: no net drop) and a top prefix score that
  falls (no net rise): the window's share of either is 0, not a whole (1.0) or a ratio of two
  negatives."""
  row = lambda step, icl, prefix: {"step": step, "icl_score": icl, "icl_score_se": 0.01,
                                   "top_prefix": prefix, "prefix_baseline": 0.04}
  rows = [row(10, 0.0, 0.5), row(20, 0.1, 0.4), row(40, 0.2, 0.3), row(70, 0.3, 0.2),
          row(100, 0.4, 0.1)]
  w = ladder.phase_change(rows, 100, 10)
  assert w["total_drop"] == pytest.approx(-0.4) and w["prefix_total_rise"] == pytest.approx(-0.4)
  assert w["share"] == 0.0 and w["prefix_share"] == 0.0


def test_phase_change_of_the_tiny_presets_three_checkpoints():
  """tiny (40 steps, grid 10) keeps checkpoints 10, 20, 40: PHASE_WINDOW (2) + 1 of them make
  one window, 10 -> 40, not None."""
  row = lambda step, icl: {"step": step, "icl_score": icl, "icl_score_se": 0.01,
                           "top_prefix": 0.1, "prefix_baseline": 0.04}
  w = ladder.phase_change([row(10, 0.0), row(20, -0.5), row(40, -1.0)], 40, 10)
  assert (w["start_step"], w["end_step"], w["checkpoints"]) == (10, 40, 3)
  assert w["drop"] == pytest.approx(1.0) and w["share"] == pytest.approx(1.0)
