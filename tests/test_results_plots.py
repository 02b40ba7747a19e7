"""research.results --plot (research/analysis/results_plots.py): the figure of one metric across
runs, checked on the matplotlib figure itself; the table, CSV and outputs: tests/test_results.py."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from research import results_records
from research.analysis import plots, results_plots
from results_fixtures import write_run, write_sweep

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sweep_dir(tmp_path):
  return write_sweep(tmp_path / "scale")


@pytest.fixture
def figures(monkeypatch):
  """Every figure results_plots saves, in order (written as before)."""
  saved = []
  save = plots.save_figure
  monkeypatch.setattr(plots, "save_figure", lambda fig, out: saved.append(fig) or save(fig, out))
  return saved


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "research.results", *map(str, args)],
                        capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_plot_loss_by_width_over_steps(sweep_dir, tmp_path, figures):
  rows = results_records.records([sweep_dir])
  out = results_plots.plot(rows, "loss", by="model.width", out=tmp_path / "f.png")
  assert out.stat().st_size > 5000
  ax = figures[0].axes[0]
  assert len(ax.get_lines()) == 3 and list(ax.get_lines()[2].get_xdata()) == [10, 20, 30]
  # widths 16..256 span a decade: the colour bar is logarithmic; the colours differ.
  assert figures[0].axes[1].get_yscale() == "log"
  assert len({tuple(l.get_color()) for l in ax.get_lines()}) == 3
  # Negative controls: learning rates 1e-3..5e-3 (less than a decade) get a linear bar,
  # names (not numbers) a legend.
  results_plots.plot(rows, "loss", by="optim.learning_rate", out=tmp_path / "g.png")
  assert figures[1].axes[1].get_yscale() == "linear"
  results_plots.plot(rows, "loss", by="optim.name", out=tmp_path / "h.png")
  assert len(figures[2].axes) == 1 and figures[2].axes[0].get_legend() is not None
  # A run with one metrics row (a 20-step tiny sweep) drew nothing, and "wrote" the empty axes
  # (audit 40): one point gets a marker; a curve of several keeps none (above).
  one = [{**row, "dir": str(tmp_path / f"one{i}")} for i, row in enumerate(rows)]
  for row in one:
    Path(row["dir"]).mkdir()
    (Path(row["dir"]) / "metrics.jsonl").write_text('{"step": 20, "loss": 1.5}\n')
  results_plots.plot(one, "loss", by="model.width", out=tmp_path / "one.png")
  assert [l.get_marker() for l in figures[3].axes[0].get_lines()] == ["o"] * 3
  assert {l.get_marker() for l in ax.get_lines()} == {"None"}


def test_plot_against_a_column_draws_a_sorted_line_per_by_value(tmp_path, figures):
  """--x model.width --by model.num_layers: one line per num_layers value, its points in
  order of width (not of loss, not of the rows), each the run's last.loss; widths 16..160
  span a decade exactly: a log x axis, and a log colour bar when coloured by width; one
  value of --by alone is a legend, not a colour bar of zero range."""
  rows = [{"run": "a", "model.width": 64, "model.num_layers": 2, "last.loss": 2.0},
          {"run": "b", "model.width": 16, "model.num_layers": 2, "last.loss": 3.0},
          {"run": "c", "model.width": 160, "model.num_layers": 4, "last.loss": 1.0},
          {"run": "d", "model.width": 16, "model.num_layers": 4, "last.loss": 2.5}]
  results_plots.plot(rows, "loss", by="model.num_layers", x="model.width", out=tmp_path / "a.png")
  ax = figures[0].axes[0]
  assert [(list(l.get_xdata()), list(l.get_ydata())) for l in ax.get_lines()] == [
      ([16, 64], [3.0, 2.0]), ([16, 160], [2.5, 1.0])]
  assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"  # 1.0..3.0: under a decade
  assert ax.get_title() == "last.loss across 4 runs by model.num_layers"
  results_plots.plot(rows, "loss", by="model.width", x="model.width", out=tmp_path / "b.png")
  assert figures[1].axes[1].get_yscale() == "log"  # colour bar over 16..160
  same = [r | {"model.num_layers": 2} for r in rows]
  results_plots.plot(same, "loss", by="model.num_layers", x="model.width", out=tmp_path / "c.png")
  assert len(figures[2].axes) == 1 and figures[2].axes[0].get_legend() is not None
  assert len(figures[2].axes[0].get_lines()) == 1


def test_without_by_each_curve_is_named_and_points_against_a_column_share_one_colour(
    sweep_dir, tmp_path, figures):
  """A new user's trial: `--plot loss` without --by drew a line per run and no key (which run
  was which?); `--x` without --by coloured each point differently, with no key either; a
  learning-rate axis's labels (0.00100, 0.00125, ...) ran into each other."""
  rows = results_records.records([sweep_dir])
  results_plots.plot(rows, "loss", out=tmp_path / "a.png")
  legend = figures[0].axes[0].get_legend()
  assert [t.get_text() for t in legend.get_texts()] == [r["run"] for r in rows]
  many = [dict(rows[0], run=f"r{i}") for i in range(results_plots.LEGEND_RUNS + 1)]
  results_plots.plot(many, "loss", out=tmp_path / "b.png")  # control: too many to name
  assert figures[1].axes[0].get_legend() is None
  points = [{"run": c, "optim.learning_rate": lr, "last.loss": loss}
            for c, lr, loss in (("a", 1e-3, 2.0), ("b", 2e-3, 1.5), ("c", 3e-3, 1.2))]
  results_plots.plot(points, "loss", x="optim.learning_rate", out=tmp_path / "c.png")
  ax = figures[2].axes[0]
  assert len({tuple(map(tuple, c.get_facecolors())) for c in ax.collections}) == 1
  assert len({tuple(f) for c in ax.collections for f in c.get_facecolors()}) == 1
  figures[2].canvas.draw()
  labels = [re.sub(r"[$]|\\mathdefault\{|\}", "", t.get_text())
            for t in ax.get_xticklabels() if t.get_text()]
  assert len(labels) <= 7 and all(len(t) <= 4 for t in labels), labels  # 1.0, 1.5, ...
  assert "10^{\u22123}" in ax.xaxis.get_offset_text().get_text()  # x 10^-3 (a minus sign)


def test_plot_against_a_config_field(sweep_dir, tmp_path):
  proc = _cli(sweep_dir, "--plot", "loss", "--x", "model.width", "--out", tmp_path / "w.png")
  assert proc.returncode == 0, proc.stderr
  assert (tmp_path / "w.png").stat().st_size > 5000


def test_runs_a_plot_leaves_out_are_counted(sweep_dir, tmp_path):
  """The title said "across 4 runs" over the 3 that have the column, without a word."""
  other = write_run(tmp_path / "other", 8, 1e-3, [2.0])
  (other / "config.json").write_text(json.dumps({"model": {"num_layers": 2}}))
  proc = _cli(sweep_dir, other, "--plot", "loss", "--x", "model.width", "--out", tmp_path / "w.png")
  assert proc.returncode == 0, proc.stderr
  assert "1 of the 4 runs have no last.loss or model.width and are not drawn" in proc.stderr
  proc = _cli(sweep_dir, "--plot", "loss", "--x", "model.width", "--out", tmp_path / "x.png")
  assert "not drawn" not in proc.stderr  # control: every run drawn


def test_runs_joined_in_one_line_that_differ_in_other_settings_are_named(tmp_path, figures,
                                                                          monkeypatch):
  """A new user's trial: a 400-step and a 1,500-step sweep compared with --x model.width --by
  task.burstiness were one zig-zag line per burstiness, with no word of train.num_steps; a
  2-D grid without --by one line through every run."""
  said = []
  monkeypatch.setattr(results_plots.logging, "warning", lambda fmt, *a: said.append(fmt % a))
  rows = [{"run": f"{s}/{w}", "model.width": w, "task.burstiness": 1, "train.num_steps": s,
           "summary.wall_s": w * s, "last.loss": 1.0 / (w * s)}
          for s in (400, 1500) for w in (16, 32)]
  results_plots.plot(rows, "loss", by="task.burstiness", x="model.width", out=tmp_path / "a.png")
  assert said == ["--plot loss --x model.width: the runs joined in one line also differ in "
                  "train.num_steps; pass --by train.num_steps (or --where) to draw them apart"]
  said.clear()  # control: drawn apart by it, nothing to say (summary.* columns never count)
  results_plots.plot(rows, "loss", by="train.num_steps", x="model.width", out=tmp_path / "b.png")
  assert said == [] and len(figures[1].axes[0].get_lines()) == 2
  results_plots.plot(rows, "loss", x="model.width", out=tmp_path / "c.png")  # no --by
  assert said and "also differ in train.num_steps" in said[0]
  # Control (a second trial): a scale sweep against its parameter count, each size its own x;
  # the fields that set the size differ along the line by design, and are not named.
  said.clear()
  scale = [{"run": str(w), "model.width": w, "model.num_layers": w // 8,
            "summary.num_params": 100 * w * w, "last.loss": 1.0 / w} for w in (16, 32, 64)]
  results_plots.plot(scale, "loss", x="summary.num_params", out=tmp_path / "d.png")
  assert said == []


def test_plot_takes_the_tables_column_names(sweep_dir, tmp_path, figures):
  """A new user's trial: --plot last.loss (the name --columns takes) was refused, and --plot
  summary.wall_s --x ... said "no column 'last.summary.wall_s'", a prefix never typed."""
  rows = results_records.records([sweep_dir])
  results_plots.plot(rows, "last.loss", out=tmp_path / "a.png")
  results_plots.plot(rows, "loss", out=tmp_path / "b.png")  # control: the same curves
  assert ([list(l.get_ydata()) for l in figures[0].axes[0].get_lines()]
          == [list(l.get_ydata()) for l in figures[1].axes[0].get_lines()])
  assert figures[0].axes[0].get_ylabel() == "loss"
  assert ("summary.wall_s", "--plot") in results_plots.columns_read(
      rows, "summary.wall_s", x="model.width")
  assert ("last.loss", "--plot") in results_plots.columns_read(rows, "loss", x="model.width")


def test_a_pool_size_of_0_is_drawn_as_infinity_right_of_the_largest(tmp_path, figures):
  """A new user's trial: --x task.pool_size drew M = infinity (pool_size 0, a fresh task per
  prompt) at x = 0, left of M = 4, on a linear axis."""
  rows = [{"run": str(m), "task.pool_size": m, "last.loss": loss}
          for m, loss in ((0, 0.5), (4, 2.0), (64, 1.0))]
  results_plots.plot(rows, "loss", x="task.pool_size", out=tmp_path / "a.png")
  ax = figures[0].axes[0]
  assert list(ax.get_lines()[0].get_xdata()) == [4, 64, 256]  # 0 -> 4 x 64, last
  assert list(ax.get_lines()[0].get_ydata()) == [2.0, 1.0, 0.5]
  assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "64", "\u221e"]
  assert ax.get_xscale() == "log"
  # Control: another field's 0 is a value like any other.
  other = [{"run": r["run"], "model.width": r["task.pool_size"], "last.loss": r["last.loss"]}
           for r in rows]
  results_plots.plot(other, "loss", x="model.width", out=tmp_path / "b.png")
  assert list(figures[1].axes[0].get_lines()[0].get_xdata()) == [0, 4, 64]
