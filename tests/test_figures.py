"""Figures have one writer, research/analysis/plots.save_figure: atomic, and the only savefig."""
from __future__ import annotations

import ast
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from research.analysis import plots  # noqa: E402
from research.errors import RunIOError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _figure():
  fig, ax = plt.subplots(figsize=(2, 2), dpi=50)
  ax.plot([0, 1], [1, 0])
  return fig


def test_save_figure_writes_a_png_and_leaves_no_temporary_file(tmp_path):
  out = plots.save_figure(_figure(), tmp_path / "new" / "f.png")
  assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert [p.name for p in out.parent.iterdir()] == ["f.png"]


def test_a_failed_write_keeps_the_previous_figure(tmp_path, monkeypatch):
  out = plots.save_figure(_figure(), tmp_path / "f.png")
  before = out.read_bytes()
  fig = _figure()

  def torn(path, **kwargs):  # half a file, then the disk is full
    Path(path).write_bytes(b"\x89PNG half")
    raise OSError(28, "No space left on device")
  monkeypatch.setattr(fig, "savefig", torn)
  with pytest.raises(RunIOError, match="f.png"):
    plots.save_figure(fig, out)
  assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["f.png"]
  assert not plt.fignum_exists(fig.number)  # closed even on failure


def _savefig_calls(path: Path) -> list[int]:
  tree = ast.parse(path.read_text())
  return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call)
          and isinstance(n.func, ast.Attribute) and n.func.attr == "savefig"]


def test_every_figure_goes_through_save_figure():
  home = ROOT / "research" / "analysis" / "plots.py"
  assert _savefig_calls(home)  # control: the checker sees save_figure's own call
  others = {str(p.relative_to(ROOT)): _savefig_calls(p)
            for folder in ("research", "experiments") for p in (ROOT / folder).rglob("*.py")
            if p != home}
  assert {p: lines for p, lines in others.items() if lines} == {}


def test_probe_figure_draws_each_curves_mean_and_its_lo_hi_band(tmp_path, monkeypatch):
  """render_probe's numbers as handed to matplotlib: each estimator's mean at every k, its band
  from lo to hi (not to the mean), and the line at k = d."""
  import json
  figures = []
  monkeypatch.setattr(plots, "save_figure", lambda fig, out, **kw: figures.append(fig) or out)
  res = {"k": [1, 2, 4], "n_dims": 2, "step": 10,
         "curves": {"model": {"mean": [0.9, 0.5, 0.2], "lo": [0.8, 0.4, 0.1], "hi": [1.0, 0.6, 0.3]},
                    "ridge": {"mean": [0.7, 0.3, 0.1], "lo": [0.6, 0.25, 0.05],
                              "hi": [0.75, 0.35, 0.15]}}}
  (tmp_path / "p.json").write_text(json.dumps(res))
  plots.render_probe(tmp_path / "p.json", tmp_path / "p.png")
  ax = figures[0].axes[0]
  lines = ax.get_lines()
  assert [list(l.get_ydata()) for l in lines[:2]] == [[0.9, 0.5, 0.2], [0.7, 0.3, 0.1]]
  assert list(lines[2].get_xdata()) == [2, 2]  # k = d
  for band, c in zip(ax.collections, res["curves"].values()):
    verts = {(round(x, 9), round(y, 9)) for x, y in band.get_paths()[0].vertices}
    for k, lo, hi in zip(res["k"], c["lo"], c["hi"]):
      assert (k, lo) in verts and (k, hi) in verts
    assert max(y for _, y in verts) == max(c["hi"]) and min(y for _, y in verts) == min(c["lo"])


def _sparse_probe() -> dict:
  """A sparse-linear probe's curves as research/tasks/regression.py names them: 11 with the
  Lasso alpha grid, the tuned Lasso and the model on its held-out prompts."""
  from research.tasks import regression
  names = ["model", "least_squares", "averaging", "nearest_neighbours", "lasso",
           *(f"lasso_alpha_{a:g}" for a in regression.LASSO_ALPHAS), "lasso_tuned",
           "model_held_out"]
  k = list(range(11))
  curve = {"mean": [0.5] * 11, "lo": [0.4] * 11, "hi": [0.6] * 11}
  return {"k": k, "n_dims": 5, "step": 10, "function": "sparse_linear",
          "curves": {n: dict(curve) for n in names}}


def _line_styles(ax) -> list[tuple]:
  """(colour, linestyle, marker) of every curve in the legend (the k = d line has none)."""
  from matplotlib.colors import to_hex
  return [(to_hex(l.get_color()), l.get_linestyle(), l.get_marker())
          for l in ax.get_lines() if not l.get_label().startswith("_")]


def test_probe_figure_gives_every_curve_its_own_style(tmp_path, monkeypatch):
  """The quickstart's sparse figure had 11 curves in the default cycle's 10 colours: the tuned
  Lasso drawn as Averaging, the model's held-out curve as 3-nearest neighbours (a trial)."""
  import json
  figures = []
  monkeypatch.setattr(plots, "save_figure", lambda fig, out, **kw: figures.append(fig) or out)
  res = _sparse_probe()
  (tmp_path / "p.json").write_text(json.dumps(res))
  plots.render_probe(tmp_path / "p.json", tmp_path / "p.png")
  ax = figures[0].axes[0]
  styles = _line_styles(ax)
  assert len(styles) == len(res["curves"]) == 11
  assert len(set(styles)) == len(styles), styles
  labels = [t.get_text() for t in ax.get_legend().get_texts()]
  assert not set(labels) & set(res["curves"]), labels  # no raw keys (lasso_tuned)
  plt.close(figures[0])


def test_probe_figure_style_control_the_default_cycle_repeats():
  """Control: the styling it replaced (fixed colours for 7 estimators, the default colour
  cycle for the rest, one dashed style) draws two of the 11 curves alike."""
  res = _sparse_probe()
  old = {"model": "#1f77b4", "least_squares": "#ff7f0e", "averaging": "#9467bd",
         "nearest_neighbours": "#8c564b", "lasso": "#e377c2"}
  fig, ax = plt.subplots()
  for name, c in res["curves"].items():
    ax.plot(res["k"], c["mean"], label=name, color=old.get(name),
            lw=2.2 if name == "model" else 1.4, ls="-" if name == "model" else "--")
  styles = _line_styles(ax)
  plt.close(fig)
  assert len(set(styles)) < len(styles)
