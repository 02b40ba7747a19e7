"""The papers' figures read at the tiny preset's data shape and the cpu preset's: no two texts
printed over each other nor a label on another panel, legends inside the figure, every n of
Xie's x axis named, every panel of the grokking figure with a y label. Each check has a
negative control: the layout it replaced (rebuilt here in a few lines) fails it.

The figures are checked as save_figure laid them out and wrote them: plt.close is caught, so
the Figure outlives its save."""
from __future__ import annotations

import json

import matplotlib
import matplotlib.axes

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from research.analysis import classification_plots as cplots  # noqa: E402
from research.analysis import emergence_plots  # noqa: E402
from research.analysis import plots  # noqa: E402


@pytest.fixture
def saved(monkeypatch):
  """The figures save_figure wrote, kept open (closed after the test)."""
  figures = []
  monkeypatch.setattr(plots.plt, "close", figures.append)
  yield figures
  monkeypatch.undo()
  for fig in figures:
    plt.close(fig)


def _shown_ticklabels(ax, axis: str):
  """The visible, non-empty tick labels inside the axis' view."""
  ax_ = ax.xaxis if axis == "x" else ax.yaxis
  lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
  at = 0 if axis == "x" else 1
  return [t for t in ax_.get_ticklabels() if t.get_visible() and t.get_text()
          and lo - 1e-9 <= t.get_position()[at] <= hi + 1e-9]


def _texts(fig) -> list:
  """Every visible text of the figure that a reader should see: tick labels, axis labels,
  titles, cell texts, legends, the suptitle."""
  out = []
  for ax in fig.axes:
    out += _shown_ticklabels(ax, "x") + _shown_ticklabels(ax, "y")
    out += [ax.xaxis.label, ax.yaxis.label, ax.title, *ax.texts]
    if ax.get_legend():
      out += ax.get_legend().get_texts()
  for leg in fig.legends:
    out += leg.get_texts()
  out += fig.texts
  return [t for t in out if t.get_visible() and t.get_text().strip()]


def overlapping(fig) -> list[tuple[str, str]]:
  """Pairs of texts whose boxes on the canvas overlap (a pixel of touching allowed)."""
  r = fig.canvas.get_renderer()
  boxes = [(t.get_text(), t.get_window_extent(r).expanded(1, 1).padded(-1)) for t in _texts(fig)]
  return [(a, b) for i, (a, ba) in enumerate(boxes) for b, bb in boxes[i + 1:]
          if ba.overlaps(bb)]


def on_other_panels(fig) -> list[tuple[str, int]]:
  """(text, panel index) for each tick or axis label of one panel printed on another's area."""
  r = fig.canvas.get_renderer()
  out = []
  for i, ax in enumerate(fig.axes):
    own = _shown_ticklabels(ax, "x") + _shown_ticklabels(ax, "y") + [ax.xaxis.label,
                                                                     ax.yaxis.label, ax.title]
    for t in (t for t in own if t.get_visible() and t.get_text().strip()):
      box = t.get_window_extent(r).padded(-1)
      out += [(t.get_text(), j) for j, other in enumerate(fig.axes)
              if other is not ax and box.overlaps(other.bbox)]
  return out


def outside_figure(fig) -> list[str]:
  """Texts and legends not wholly inside the figure (cut off in the PNG)."""
  r = fig.canvas.get_renderer()
  inside = lambda box: (box.x0 >= fig.bbox.x0 - 1 and box.x1 <= fig.bbox.x1 + 1
                        and box.y0 >= fig.bbox.y0 - 1 and box.y1 <= fig.bbox.y1 + 1)
  legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
  return ([t.get_text() for t in _texts(fig) if not inside(t.get_window_extent(r))]
          + [f"legend {leg.get_texts()[-1].get_text()!r}" for leg in legends
             if not inside(leg.get_window_extent(r))])


# ----------------------------------------------------------------------------- chan2022
def _chan_cells():
  return [{"model": m, "data": f"p_bursty={b}, alpha={a}", "icl": 0.3, "iwl": 0.7}
          for m in ("lstm", "transformer") for b in ("0.0", "0.9") for a in ("0.0", "1.0")]


def test_chan_grid_labels_overprint_nothing(tmp_path, saved):
  """The tiny and cpu presets' 2 x 4 grid: the four "p_bursty=0.0, alpha=0.0" column labels
  overprinted each other, and the right panel's y label "model" sat on the left panel's
  "transformer". Now: no two texts overlap, none is cut off, the rows named once."""
  cplots.grid(_chan_cells(), tmp_path / "g.png", row_key="model", col_key="data",
              title="Chan 2022 grid (tiny preset)")
  [fig] = saved
  assert overlapping(fig) == [] and outside_figure(fig) == [] and on_other_panels(fig) == []
  left, right = fig.axes[:2]
  assert left.get_ylabel() == "model" and right.get_ylabel() == ""
  assert [t.get_text() for t in _shown_ticklabels(left, "y")] == ["lstm", "transformer"]
  assert [t.get_text() for t in _shown_ticklabels(left, "x")][0] == "p_bursty=0.0\nalpha=0.0"


def test_chan_grid_control_the_old_layout_overprints(tmp_path, saved):
  """Negative control: the old grid (one-line column labels, a 7.5-inch figure, "model" on
  both panels) fails the check."""
  cells = _chan_cells()
  cols = sorted({c["data"] for c in cells})
  fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.4), dpi=110)
  for ax in axes:
    ax.imshow([[0.5] * 4] * 2, vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(4), cols, fontsize=7)
    ax.set_yticks(range(2), ["lstm", "transformer"], fontsize=7)
    ax.set_xlabel("data")
    ax.set_ylabel("model")
  fig.colorbar(axes[0].images[0], ax=axes, fraction=0.03)
  plots.save_figure(fig, tmp_path / "old.png", tight=False)
  assert ("p_bursty=0.0, alpha=0.0", "p_bursty=0.0, alpha=1.0") in overlapping(fig)
  # the right panel's "transformer" and "model" on the left panel's cells
  assert {("transformer", 0), ("model", 0)} <= set(on_other_panels(fig)), on_other_panels(fig)


# ----------------------------------------------------------------------------- xie2021
def _xie_results(ns: dict, params=(5_474, 17_714, 29_746, 29_970)) -> dict:
  names = ("transformer_s", "transformer_m", "transformer_l", "lstm")
  acc = lambda ideal: {k: {"n": n, "accuracy": [0.1] * len(n)}
                       | ({"ideal": [0.9] * len(n)} if ideal else {}) for k, n in ns.items()}
  return {name: {"num_params": p, "probe": {"accuracy": {"id": acc(True), "ood": acc(False)}}}
          for name, p in zip(names, params)}


TINY_NS = {"3": [0, 1, 2]}  # configs/ginc.py tiny: n = 0, 1, 2 at k = 3
CPU_NS = {"3": [0, 1, 2, 4, 8, 16, 32], "5": [0, 1, 2, 4, 8, 16], "8": [0, 1, 2, 4, 8, 16],
          "10": [0, 1, 2, 4, 8, 16]}  # the n that fit 256 tokens at each k


@pytest.mark.parametrize("ns", [TINY_NS, CPU_NS], ids=["tiny", "cpu"])
def test_xie_figure_names_every_n_and_keeps_its_legend_inside(ns, tmp_path, saved):
  """The tiny preset's one-column figure cut the legend's "ideal learner (Bayes, knows the
  format)" off at the right edge, and its symlog axis named only 0 and 10^0 of n = 0, 1, 2.
  Now the legend sits below the panels inside the figure, every n is a tick labelled as
  written, and no texts overlap (at the cpu preset's 2 x 4 panels too)."""
  from experiments import xie2021
  xie2021.render(_xie_results(ns), tmp_path / "x.png")
  [fig] = saved
  assert outside_figure(fig) == [] and overlapping(fig) == [] and on_other_panels(fig) == []
  [legend] = fig.legends
  assert [t.get_text() for t in legend.get_texts()] == [
      "transformer_s (5k)", "transformer_m (18k)", "transformer_l (30k)", "lstm (30k)",
      "ideal learner (Bayes, knows the format)"]
  for ax, n in zip(fig.axes, [n for _ in ("id", "ood") for n in ns.values()]):
    assert [t.get_text() for t in _shown_ticklabels(ax, "x")] == [str(v) for v in n]


def test_xie_figure_control_the_old_layout_fails(tmp_path, saved):
  """Negative control: the old tiny layout (legend in the lower panel, symlog base 10) cuts
  the legend off and names n = 0, 1, 2 as 0 and 10^0 only."""
  fig, axes = plt.subplots(2, 1, figsize=(3.0, 5.4), dpi=110, squeeze=False, sharey=True)
  for ax in axes[:, 0]:
    for name in ("transformer_s (30k)", "transformer_m (30k)", "transformer_l (30k)", "lstm"):
      ax.plot([0, 1, 2], [0.1, 0.1, 0.2], marker="o", label=name)
    ax.set_xscale("symlog", linthresh=1)
  axes[-1, 0].plot([], [], ls=":", label="ideal learner (Bayes, knows the format)")
  axes[-1, 0].legend(fontsize=7, frameon=False, loc="upper left")
  plots.save_figure(fig, tmp_path / "old.png")
  assert any(s.startswith("legend") or "ideal" in s for s in outside_figure(fig))
  assert [t.get_text() for t in _shown_ticklabels(axes[0, 0], "x")] != ["0", "1", "2"]


def test_xie_figure_shows_a_long_n_list_by_its_powers_of_two(tmp_path, saved):
  """A probe.num_examples of every n to 64 would print 65 tick labels over each other: 0 and
  the powers of 2 are named then."""
  from experiments import xie2021
  xie2021.render(_xie_results({"3": list(range(65))}), tmp_path / "x.png")
  [fig] = saved
  assert [t.get_text() for t in _shown_ticklabels(fig.axes[0], "x")] == [
      "0", "1", "2", "4", "8", "16", "32", "64"]
  assert overlapping(fig) == []


# ----------------------------------------------------------------------------- nanda2023
def _metrics(path, steps, freqs):
  rows = [{"step": s, "eval_train_accuracy": 0.5, "eval_test_accuracy": 0.1,
           "eval_train_loss": 1.0, "eval_test_loss": 3.0, "eval_weight_norm": 20.0,
           "eval_restricted_loss": 2.0, "eval_excluded_loss": 1.5,
           **{f"eval_key_freq_{i}": f for i, f in enumerate(freqs)}} for s in steps]
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  return path


@pytest.mark.parametrize("steps,freqs,half", [((20, 40), (4, 5, 13, 14, 15), 15),
                                              (range(0, 2501, 100), (3, 7, 21, 33, 40), 56)],
                         ids=["tiny", "cpu"])
def test_grokking_figure_labels_every_y_axis(steps, freqs, half, tmp_path, saved):
  """Six panels with titles only: the key-frequency panel plotted frequency indices against
  step without saying so. Every panel has a y label now (the key frequencies' says
  'frequency', on integer ticks), and no texts overlap."""
  runs = {f"wd={w}": _metrics(tmp_path / f"{w}.jsonl", steps, freqs) for w in (1, 0)}
  emergence_plots.render_grokking(runs, tmp_path / "g.png",
                                  spectra={label: [1.0] * half for label in runs})
  [fig] = saved
  assert [ax.get_ylabel() for ax in fig.axes if not ax.get_ylabel()] == []
  keys = fig.axes[4]
  assert "frequenc" in keys.get_ylabel() and "frequenc" in keys.get_title()
  assert all(float(t).is_integer() for t in keys.get_yticks())
  assert overlapping(fig) == [] and outside_figure(fig) == [] and on_other_panels(fig) == []


def test_grokking_figure_control_the_old_panels_fail(tmp_path, saved, monkeypatch):
  """Negative control: the old figure, which set no y label (set_ylabel a no-op here), fails
  the check on all six panels."""
  runs = {"wd=1": _metrics(tmp_path / "1.jsonl", (20, 40), (4, 5))}
  monkeypatch.setattr(matplotlib.axes.Axes, "set_ylabel", lambda *a, **k: None)
  emergence_plots.render_grokking(runs, tmp_path / "g.png", spectra={"wd=1": [1.0] * 15})
  [fig] = saved
  assert len([ax for ax in fig.axes if not ax.get_ylabel()]) == 6
