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
