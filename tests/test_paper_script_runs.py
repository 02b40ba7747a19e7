"""What the Olsson, Chan and Xie scripts build for their runs and read back, checked with
recorded fake runs (no training): Olsson's layer counts, seeds, run folders, window rounding
and head maps; Chan's cells, presets and recorded chances; Xie's model presets, tiny caps and
end-of-training loss."""
import json
import types
from pathlib import Path

import pytest

from experiments import chan2022, common, olsson2022, xie2021
from research.analysis import classification_plots as cplots
from test_experiment_numbers import _classification_run, _fake_final_model, _verdicts_asked


def test_olsson_window_rounds_its_intervals_and_reads_the_final_row_and_the_min_rise(
    monkeypatch):
  """num_steps 100, evals every 8 (0..96), window_fraction 0.125: 1.5625 intervals round to 2
  (not floor to 1), so the steepest 2-interval fall of the (3-point median) ICL score is 32 -> 48,
  16 / 100 = 0.16 of training (of num_steps, not of the last eval step 96). 'after' is the
  heads' scores at the window's end (L0H0 peaks there at 0.6 and decays to 0.3 by the end);
  with min_rise 0.3 only L0H0 (+0.5) rises, not L0H1 (+0.2, which the default 0.1 would take).
  'final' is the last row (its own ICL score, loss and previous-token max); icl_min is the raw
  dip 0.8 at step 64, not the last score."""
  cfg = types.SimpleNamespace(
      model=types.SimpleNamespace(num_layers=1, num_heads=2),
      train=types.SimpleNamespace(num_steps=100, eval_every=8, batch_size=4),
      task=types.SimpleNamespace(seq_len=8))
  icl = {40: 2.0, 64: 0.8, 96: 1.2}
  h0 = {40: 0.3, 48: 0.6, 56: 0.5, 64: 0.5, 72: 0.4, 80: 0.4, 88: 0.3, 96: 0.3}
  rows = []
  for s in range(0, 97, 8):
    pm0, pm1 = h0.get(s, 0.1), (0.2 if s < 48 else 0.4)
    rows.append({"step": s, "icl_score": icl.get(s, 3.0 if s < 40 else 1.0),
                 "loss": 0.7 if s == 96 else 1.0, "pm_L0H0": pm0, "pm_L0H1": pm1,
                 "prev_L0H0": 0.25 if s == 96 else 0.0, "prev_L0H1": 0.0,
                 "pm_max": max(pm0, pm1), "prev_max": 0.25 if s == 96 else 0.0})
  _fake_final_model(monkeypatch, ablated_icl_score=3.0)
  res = olsson2022.analyse(cfg, None, rows, window_fraction=0.125, min_rise=0.3)
  w = res["window"]
  assert (w["start_step"], w["end_step"]) == (32, 48)
  assert w["fraction_of_training"] == pytest.approx(0.16)
  assert [h["head"] for h in res["rising_heads"]] == ["L0H0"]
  assert res["prefix_matching_before"] == [[0.1, 0.2]]
  assert res["prefix_matching_after"] == [[0.6, 0.4]]
  assert res["icl_min"] == 0.8 and res["steps"] == 96
  f = res["final"]
  assert (f["icl_score"], f["loss"], f["prefix_matching_max"], f["previous_token_max"]) == (
      1.2, 0.7, 0.4, 0.25)
  assert f["prefix_matching"] == {"L0H0": 0.3, "L0H1": 0.4}


def test_olsson_presets_train_their_layer_counts_and_refuse_zero_layers(tmp_path, monkeypatch):
  """tiny trains 1 and 2 layers, cpu and paper 1, 2 and 3; --layers=0 is refused before any
  training (a 0-layer 'model' has no heads to score)."""
  from research import train
  from research.errors import InputError
  assert olsson2022.layers_for("tiny") == ("1", "2")
  assert olsson2022.layers_for("cpu") == olsson2022.layers_for("paper") == ("1", "2", "3")
  trained = []
  monkeypatch.setattr(train, "train_or_reuse", lambda config, workdir: trained.append(workdir))
  with pytest.raises(InputError, match="positive layer counts"):
    olsson2022.run("tiny", tmp_path, layers=["1", "0"])
  assert trained == []


def test_olsson_trains_each_layer_count_at_the_seed_and_steps_given(tmp_path, monkeypatch):
  """Every run gets the seed and num_steps asked for and its own layer count, in WORKDIR/L<n>."""
  from research import train
  from research.analysis import emergence_plots
  from research.probes import plots
  seen = []
  def fake_train(config, workdir):
    seen.append((config.seed, config.model.num_layers, config.train.num_steps, workdir))
    return {"train_wall_s": 1.0}
  monkeypatch.setattr(train, "train_or_reuse", fake_train)
  monkeypatch.setattr(emergence_plots, "read_eval_rows", lambda path: [])
  window = {"drop": 0.0, "start_step": 0, "end_step": 0, "fraction_of_training": 0.0}
  monkeypatch.setattr(olsson2022, "analyse", lambda *a: {
      "window": window, "ablation": {}, "tokens_per_step": 1, "prefix_matching_before": [],
      "prefix_matching_after": [], "final": {"prefix_matching_max": 0.0, "icl_score": 0.0},
      "best_prefix_matching_ever": 0.0, "rising_heads": []})
  monkeypatch.setattr(plots, "render_curves", lambda *a: "c.png")
  monkeypatch.setattr(plots, "render_head_maps", lambda *a: "h.png")
  _verdicts_asked(monkeypatch)
  olsson2022.run("tiny", tmp_path, seed=3, num_steps=7)
  assert seen == [(3, 1, 7, str(tmp_path / "L1")), (3, 2, 7, str(tmp_path / "L2"))]
  res = json.loads((tmp_path / "olsson2022.json").read_text())
  assert res["seed"] == 3 and list(res["runs"]) == ["1", "2"]


# ----------------------------------------------------------------------------- Chan
def _chan_recorder(monkeypatch, chance=None):
  """Fakes every cell's run; returns {cell name: its config}."""
  seen = {}
  def fake(out, name, config):
    seen[name] = config
    lstm = config.model.name == "lstm"
    return _classification_run(icl=0.1 if lstm else 0.9, icl_ctx=0.6 if lstm else 0.95,
                               chance=chance or {"full": 1 / 32, "context": 0.25, "iwl": 0.1})
  monkeypatch.setattr(common, "classification_run", fake)
  monkeypatch.setattr(cplots, "grid", lambda *a, **k: None)
  _verdicts_asked(monkeypatch)
  return seen


def test_chan_cpu_preset_cells_have_2048_classes_and_the_sweep_value_wins(tmp_path, monkeypatch):
  """cpu: K = 2048 classes and 2000 steps in every cell of the grid; --steps overrides the
  steps; a sweep over the class count (Reddy's 'classes') keeps each cell's own K, not the
  preset's 2048; --seed reaches every cell."""
  seen = _chan_recorder(monkeypatch)
  chan2022.run("cpu", tmp_path / "grid")
  assert len(seen) == 8
  assert {(c.task.num_classes, c.train.num_steps) for c in seen.values()} == {(2048, 2000)}
  seen.clear()
  chan2022.run("cpu", tmp_path / "classes", seed=4, steps=500, sweep="classes")
  assert {c.seed for c in seen.values()} == {4}
  assert {n: (c.task.num_classes, c.train.num_steps) for n, c in seen.items()} == {
      "num_classes32": (32, 500), "num_classes128": (128, 500), "num_classes512": (512, 500),
      "num_classes2048": (2048, 500)}
  cells = json.loads((tmp_path / "classes" / "results.json").read_text())
  assert [c["model"] for c in cells] == ["transformer"] * 4  # no model.name in the sweep


def test_chan_paper_preset_trains_the_configs_chan_preset(tmp_path, monkeypatch):
  """This experiment's paper preset is Chan's Omniglot setup (configs' `chan`: 12 layers, 8
  heads, 5e5 steps), not the configs' own `paper` preset (Reddy's); its LSTM is Chan's 12
  layers of width 64, where the cpu presets match the Transformer's parameter count."""
  seen = _chan_recorder(monkeypatch)
  chan2022.run("paper", tmp_path)
  assert {(c.task.source, c.model.num_layers, c.model.num_heads, c.train.num_steps)
          for c in seen.values()} == {("omniglot", 12, 8, 500_000)}
  lstms = [c for c in seen.values() if c.model.name == "lstm"]
  assert lstms and {(c.model.lstm_layers or c.model.num_layers, c.model.lstm_width)
                    for c in lstms} == {(12, 64)}
  from configs import bursty_classification
  assert bursty_classification.get_config("chan_cpu").model.lstm_width == 0  # control


def test_chan_an_unknown_preset_fails_before_anything_is_written(tmp_path, monkeypatch):
  seen = _chan_recorder(monkeypatch)
  with pytest.raises(Exception, match="unknown preset"):
    chan2022.run("nonexistent", tmp_path / "out")
  assert not (tmp_path / "out").exists() and seen == {}


def test_chan_records_context_accuracy_and_each_cells_own_in_weights_chance(
    tmp_path, monkeypatch):
  """icl_context is the probe's accuracy among the labels in context (0.6 for the LSTM here,
  its full-vocabulary 0.1 beside it); a run probed before the probe recorded its in-weights
  chance gets it from ITS cell's task (here: zipf_alpha + 0.5), not the base config's."""
  seen = _chan_recorder(monkeypatch, chance={"full": 1 / 32, "context": 0.25})
  monkeypatch.setattr(chan2022, "_iwl_chance", lambda config: config.task.zipf_alpha + 0.5)
  chan2022.run("tiny", tmp_path)
  cells = json.loads((tmp_path / "results.json").read_text())
  assert {(c["model"], c["icl"], c["icl_context"]) for c in cells} == {
      ("transformer", 0.9, 0.95), ("lstm", 0.1, 0.6)}
  assert sorted(c["iwl_chance"] for c in cells) == [0.5] * 4 + [1.5] * 4
  assert all(c["iwl_chance"] == c["overrides"]["task.zipf_alpha"] + 0.5 for c in cells)


# ----------------------------------------------------------------------------- Xie
def test_xie_end_loss_is_the_fitted_lines_value_at_the_last_step(tmp_path):
  """Losses 4, 3, 2, 1 at steps 70..100 (tail 0.3) lie on a line: its value at the last step is
  1.0 with SE 0, not their mean 2.5; with fewer than 4 points in the tail (steps 80..100 of
  tail 0.25) it is the last logged loss, one point, no SE."""
  rows = [{"step": s, "loss": l} for s, l in ((60, 9.0), (70, 4.0), (80, 3.0), (90, 2.0),
                                               (100, 1.0))]
  (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  e = xie2021.end_loss(tmp_path, tail=0.3)
  assert e["value"] == pytest.approx(1.0) and e["se"] == pytest.approx(0.0, abs=1e-9)
  assert (e["steps"], e["points"]) == ([70, 100], 4)
  assert xie2021.end_loss(tmp_path, tail=0.25) == {"value": 1.0, "se": None,
                                                   "steps": [100, 100], "points": 1}


def test_xie_model_presets():
  """cpu: Transformers of 2/3/4 layers at width 32/48/64 and a 2-layer LSTM of the largest
  Transformer's width (its parameter-count match); paper: Xie's 4/12/16-layer GPT-2s at width
  768 and a 6-layer LSTM."""
  cpu, paper = xie2021.models_for("cpu"), xie2021.models_for("paper")
  assert xie2021.models_for("tiny") is cpu
  assert [(m["num_layers"], m["width"]) for m in cpu.values()] == [(2, 32), (3, 48), (4, 64),
                                                                   (2, 64)]
  assert cpu["lstm"]["name"] == "lstm"
  assert [(m["num_layers"], m["width"]) for n, m in paper.items() if n != "lstm"] == [
      (4, 768), (12, 768), (16, 768)]
  assert (paper["lstm"]["lstm_layers"], paper["lstm"]["width"]) == (6, 768)


def _xie_recorder(tmp_path, monkeypatch):
  from research import train
  seen = {}
  probe = {"num_prompts": 100, "accuracy": {"id": {"3": {"n": [0, 1], "accuracy": [0.5, 0.5]}}}}
  def fake_train(config, workdir):
    seen[workdir] = config
    (Path(workdir) / "probes").mkdir(parents=True)
    (Path(workdir) / "probes" / "ginc.json").write_text(json.dumps(probe))
    (Path(workdir) / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    return {"num_params": 10, "final_loss": 1.0, "train_wall_s": 1.0}
  monkeypatch.setattr(train, "train_or_reuse", fake_train)
  monkeypatch.setattr(xie2021, "render", lambda *a, **k: tmp_path / "x.png")
  _verdicts_asked(monkeypatch)
  return seen


def test_xie_tiny_keeps_every_model_tiny_at_the_seed_and_steps_given(tmp_path, monkeypatch):
  """tiny trains the 4-layer width-64 transformer_l at 2 layers of width 32 with 2 heads; seed
  and --num_steps reach the run."""
  seen = _xie_recorder(tmp_path, monkeypatch)
  xie2021.run("tiny", tmp_path / "x", seed=2, models=["transformer_l"], num_steps=7)
  [(wd, c)] = seen.items()
  assert wd == str(tmp_path / "x" / "transformer_l")
  assert (c.model.num_layers, c.model.width, c.model.num_heads) == (2, 32, 2)
  assert (c.seed, c.train.num_steps) == (2, 7)


def test_xie_tiny_trains_three_distinct_sizes_with_an_end_loss_to_compare(tmp_path, monkeypatch):
  """tiny's one cap (2 layers, width 32) made transformer_s, _m and _l one 30k-parameter model,
  and 2 logged losses gave no end loss with a standard error: the larger-model claim compared
  one size with itself, or nothing. Now three sizes, each no larger than before, and a loss
  logged every step (end_loss: 4 or more in the last quarter of 20 steps)."""
  seen = _xie_recorder(tmp_path, monkeypatch)
  xie2021.run("tiny", tmp_path / "x")
  sizes = {Path(wd).name: (c.model.num_layers, c.model.width) for wd, c in seen.items()}
  assert sizes == {"transformer_s": (1, 16), "transformer_m": (2, 24), "transformer_l": (2, 32),
                   "lstm": (2, 32)}
  assert len({sizes[n] for n in ("transformer_s", "transformer_m", "transformer_l")}) == 3
  c = seen[str(tmp_path / "x" / "transformer_s")]
  steps = range(c.train.log_every, c.train.num_steps + 1, c.train.log_every)
  assert len([s for s in steps if s >= 0.75 * c.train.num_steps]) >= 4
  # control: the cpu preset keeps its own sizes and log cadence
  seen.clear()
  xie2021.run("cpu", tmp_path / "c", models=["transformer_s"])
  [c] = seen.values()
  assert (c.model.num_layers, c.model.width, c.train.log_every) == (2, 32, 100)


def test_xie_refuses_a_model_of_another_preset_before_training(tmp_path, monkeypatch):
  from research import config_check
  seen = _xie_recorder(tmp_path, monkeypatch)
  with pytest.raises(config_check.ConfigError, match="unknown model names"):
    xie2021.run("paper", tmp_path / "x", models=["transformer_s"])
  assert seen == {}


def test_olsson_head_maps_are_layer_by_head(monkeypatch):
  """2 layers x 2 heads: the before / after maps are [[L0H0, L0H1], [L1H0, L1H1]] (row = layer),
  the scores a head's name is keyed by are its own."""
  cfg = types.SimpleNamespace(
      model=types.SimpleNamespace(num_layers=2, num_heads=2),
      train=types.SimpleNamespace(num_steps=40, eval_every=10, batch_size=1),
      task=types.SimpleNamespace(seq_len=1))
  base = {"L0H0": 0.1, "L0H1": 0.2, "L1H0": 0.3, "L1H1": 0.4}
  rows = [{"step": s, "icl_score": 2.0 if s < 20 else 1.0, "loss": 1.0, "pm_max": 0.0,
           "prev_max": 0.0}
          | {f"pm_{n}": v + (0.5 if n == "L1H0" and s >= 20 else 0.0) for n, v in base.items()}
          | {f"prev_{n}": 0.0 for n in base} for s in range(0, 41, 10)]
  _fake_final_model(monkeypatch, ablated_icl_score=1.0)
  res = olsson2022.analyse(cfg, None, rows, window_fraction=0.25, min_rise=0.1)
  assert (res["window"]["start_step"], res["window"]["end_step"]) == (10, 20)
  assert res["prefix_matching_before"] == [[0.1, 0.2], [0.3, 0.4]]
  assert res["prefix_matching_after"] == [[0.1, 0.2], [0.8, 0.4]]
  assert [h["head"] for h in res["rising_heads"]] == ["L1H0"]
  assert res["prefix_curve"]["L0H1"] == [0.2] * 5


def test_olsson_command_line_defaults_are_runs_defaults(tmp_path, monkeypatch):
  """The command's window (1/8 of training) and min_rise (0.1) are run()'s own defaults, the
  ones its docstring and the scorer's thresholds assume; --seed reaches run()."""
  import inspect
  defaults = {k: p.default for k, p in inspect.signature(olsson2022.run).parameters.items()}
  assert (defaults["window_fraction"], defaults["min_rise"]) == (0.125, 0.1)
  asked = []
  monkeypatch.setattr(olsson2022, "run", lambda *a: asked.append(a))
  assert olsson2022.main(["--preset=tiny", f"--workdir={tmp_path / 'o'}", "--seed=2"]) == 0
  assert asked == [("tiny", str(tmp_path / "o"), 2, None, 0.125, 0.1, 0)]


def test_xie_end_loss_reads_the_last_quarter_by_default(tmp_path):
  """Logged every 5 steps to 100, flat at 5.0 before step 75 and on the line 2 - step / 100
  from it: the default tail (the last quarter, steps 75..100, 6 points) reads 1.0 at step 100
  with no residual; a longer tail would take in the flat part."""
  rows = [{"step": s, "loss": 5.0 if s < 75 else 2 - s / 100} for s in range(0, 101, 5)]
  (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  e = xie2021.end_loss(tmp_path)
  assert (e["steps"], e["points"]) == ([75, 100], 6)
  assert e["value"] == pytest.approx(1.0) and e["se"] == pytest.approx(0.0, abs=1e-9)
