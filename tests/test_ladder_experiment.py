"""experiments/ladder.py (issue 18 §4-5): its analysis on hand-built probe rows, its scorer
(PASS, FAIL, seeds, negative controls, missing file) and, marked slow, the tiny preset end to
end (train two sizes, probe every kept checkpoint, ladder.json, figures, claims)."""
import json
import math

import pytest

from claims_fixtures import seeds, statuses
from experiments import ladder, summaries
from experiments.claims import controls
from experiments.claims import ladder as ladder_claims
from experiments.claims.rows import controls_of

CLAIMS = 9  # phase change, prefix heads, 3 x rises with k, 3 x continuous first, frontier


# ----------------------------------------------------------------------------- analysis
def test_analysis_of_hand_built_rows(tmp_path):
  """Loss an exact power law of compute: the frontier fit recovers it; the ICL score falls
  around step 130 of 1000: the window is found there; continuous metrics ~ skill, exact
  match ~ skill^4: exact match leaves chance at more compute."""
  res = controls.ladder_files(
      tmp_path, icl=lambda i, s, c: -1 / (1 + math.exp(-6 * math.log(s / 130))),
      prefix=lambda i, s, c: 0.05, loss=lambda i, s, c: 1.5 + 30 * c ** -0.15,
      few_shot=lambda i, s, c, t, k, m: min(1.0, c / 3e13) ** (4 if m == "exact_match" else 1))
  assert json.loads((tmp_path / "ladder.json").read_text())["frontier"] == res["frontier"]
  sizes = res["sizes"]
  assert [s["num_params"] for s in sizes] == [100_000, 400_000, 1_600_000, 6_400_000]
  for s in sizes:
    assert [r["step"] for r in s["rows"]] == [10, 20, 40, 70, 130, 260, 520, 1000]
    assert all(r["compute"] == 6 * s["num_params"] * r["tokens"] for r in s["rows"])
    w = s["phase_change"]
    assert (w["start_step"], w["end_step"]) == (70, 260)
    assert w["share"] > 0.9 and w["step_share"] == pytest.approx(190 / 990)
    assert w["prefix_rise"] == pytest.approx(0.0)
  fit = res["frontier"]["fit"]
  assert fit["alpha"] == pytest.approx(0.15, rel=0.02) and fit["E"] == pytest.approx(1.5, rel=0.02)
  # Every loss is a function of compute alone: each larger compute is a new frontier point.
  assert len(res["frontier"]["points"]) == len({r["compute"] for s in sizes for r in s["rows"]})
  for task, a in res["abilities"].items():
    assert a["k"] == 8
    first = a["first_above_chance"]
    assert first["exact_match"]["compute"] > first["token_accuracy"]["compute"]
    # Above chance: the whole interval (half-width 2% of the span) beyond chance.
    tok = first["token_accuracy"]["compute"]
    assert tok / 3e13 > 0.02 and all(
        r["compute"] / 3e13 <= 0.02 for s in sizes for r in s["rows"] if r["compute"] < tok)


def test_phase_change_uses_only_log_spaced_checkpoints():
  row = lambda step, icl: {"step": step, "icl_score": icl, "icl_score_se": 0.01,
                           "top_prefix": 0.1, "prefix_baseline": 0.04}
  rows = [row(10, 0.0), row(20, 0.0), row(40, -0.1), row(50, -5.0), row(70, -0.9),
          row(100, -1.0)]  # step 50 is a regular checkpoint, not on the 1, 2, 4 ... grid
  w = ladder.phase_change(rows, 100, 10)
  assert w["checkpoints"] == 5 and (w["start_step"], w["end_step"]) == (20, 70)
  assert w["total_drop"] == pytest.approx(1.0) and w["drop"] == pytest.approx(0.9)
  assert ladder.phase_change(rows[:2], 20, 10) is None  # one interval: no 2-interval window


# ----------------------------------------------------------------------------- scorer
def test_a_ladder_that_shows_every_claim_passes_on_three_seeds(tmp_path):
  seeds(tmp_path / "ladder" / "run", 3, lambda d, seed: controls.ladder_trained(d))
  s = summaries.summarize("ladder", "cpu", tmp_path)
  assert statuses(s) == ["PASS"] * CLAIMS, [r["note"] for r in s["claims"]]
  assert all(r["seeds"] == "3/3" for r in s["claims"])
  assert s["counts"]["PASS"] == CLAIMS - 1 and s["counts"]["self-check"] == 1
  assert s["claims"][-1]["kind"] == "self-check"
  assert all(r["kind"] == "paper" for r in s["claims"][:-1])
  assert all("; why: " in r["tolerance"] for r in s["claims"])
  assert "+0.961 of +1.000 nats (96%) in steps 70-260" in s["claims"][0]["ours"]


def test_one_seed_is_unreplicated(tmp_path):
  controls.ladder_trained(tmp_path / "ladder" / "run")
  s = summaries.summarize("ladder", "cpu", tmp_path)
  assert {r["status"] for r in s["claims"]} == {"UNREPLICATED"}


def test_a_late_phase_change_and_a_small_prefix_rise_fail(tmp_path):
  """The ICL score falling over the last half of training is no more abrupt than a steady
  fall over those steps; a top prefix head rising by 0.05 is below the line."""
  sig = lambda s: 1 / (1 + math.exp(-3 * math.log(s / 700)))
  controls.ladder_trained(tmp_path, icl=lambda i, s, c: -sig(s),
                          prefix=lambda i, s, c: 0.05 + 0.05 * sig(s))
  rows = ladder_claims.ladder_claims(tmp_path, "cpu")["claims"]
  assert [r["status"] for r in rows[:2]] == ["FAIL", "FAIL"]
  assert "of the steps" in rows[0]["ours"] and "-> 0." in rows[1]["ours"]


@pytest.mark.parametrize("build", ["ladder_prefix_ramp", "ladder_ramp"])
def test_a_prefix_head_rising_at_one_rate_forms_in_no_window(tmp_path, build):
  """The top prefix score rising at one steady rate through training (0.05 + 0.6 s / 1000):
  over the ICL score's window it rises 0.11 (phase change at step 130, window 70-260) or
  0.44 (the ICL score ramping too, window 260-1000) and ends above 2x uniform, which PASSed;
  the window holds only its share of the steps of the head's rise, no steeper than before.
  The positive control (ladder_trained: the head jumps with the ICL score) still PASSes, on
  a ladder.json written before the prefix fields existed too (rescored from its rows)."""
  getattr(controls, build)(tmp_path)
  row = ladder_claims.ladder_claims(tmp_path, "cpu")["claims"][1]
  assert row["status"] == "FAIL", row["ours"]
  assert "0.60 vs 0.60 per 1000 steps before" in row["ours"]
  controls.ladder_trained(tmp_path)
  path = tmp_path / "ladder.json"
  old = json.loads(path.read_text())
  for s in old["sizes"]:
    for k in ("prefix_share", "prefix_total_rise", "prefix_rate", "prefix_rate_before"):
      s["phase_change"].pop(k)
  path.write_text(json.dumps(old))
  row = ladder_claims.ladder_claims(tmp_path, "cpu")["claims"][1]
  assert row["status"] == "PASS", row["ours"]
  assert ("96% of its +0.60 rise in 19% of the steps from the first to the last checkpoint; "
          "3.03 vs 0.24") in row["ours"]


@pytest.mark.parametrize("tau", [30, 40, 50])
def test_an_exponential_decay_of_the_icl_score_is_no_phase_change(tmp_path, tau):
  """-(1 - exp(-s / tau)), tau 3-5% of training: on log-spaced checkpoints an early window
  holds 52-63% of the drop in 3-5% of the steps (was PASS); the curve never steepens into
  it. The sigmoid phase change of ladder_trained (the positive control) still PASSes, and a
  ladder.json written before `rate_before` existed is re-scored under the rule."""
  controls.ladder_trained(tmp_path, icl=lambda i, s, c: -(1 - math.exp(-s / tau)))
  row = ladder_claims.ladder_claims(tmp_path, "cpu")["claims"][0]
  assert row["status"] == "FAIL", row["ours"]
  assert ("starts at the first checkpoint" if tau == 30 else "mnats/step before") in row["ours"]
  controls.ladder_trained(tmp_path)
  path = tmp_path / "ladder.json"
  old = json.loads(path.read_text())
  for s in old["sizes"]:
    for k in ("rate", "rate_before"):
      s["phase_change"].pop(k)
  path.write_text(json.dumps(old))
  row = ladder_claims.ladder_claims(tmp_path, "cpu")["claims"][0]
  assert row["status"] == "PASS", row["ours"]
  assert "5.06 vs 0.40 mnats/step before" in row["ours"]


def test_exact_match_never_leaving_chance_orders_nothing(tmp_path):
  """Continuous metrics above chance at every checkpoint, exact match never: no ordering
  (was PASS with exact match 'never'), as schaeffer2023's FIRST row."""
  controls.ladder_never(tmp_path)
  rows = ladder_claims.ladder_claims(tmp_path, "cpu")["claims"][5:8]
  assert [r["status"] for r in rows] == ["FAIL"] * 3, rows
  assert all(r["ours"].startswith("exact match never;") for r in rows)
  assert "so no ordering is shown" in rows[0]["note"]


def test_a_one_checkpoint_glitch_does_not_leave_chance(tmp_path):
  """Continuous metrics above chance at one early checkpoint of the smallest size, then at
  chance until exact match leaves it too: no ordering (was PASS: the glitch's compute came
  first). Positive control: a lasting lead (ladder_trained) PASSes."""
  def few_shot(i, s, c, t, k, m):
    if m != "exact_match" and i == 0 and s == 20:
      return 0.3  # the glitch
    return 0.5 if c >= 1e13 else 0.0
  controls.ladder_trained(tmp_path, few_shot=few_shot)
  res = json.loads((tmp_path / "ladder.json").read_text())
  first = res["abilities"]["copy"]["first_above_chance"]
  assert first["token_accuracy"]["compute"] == first["exact_match"]["compute"] >= 1e13
  rows = ladder_claims.ladder_claims(tmp_path, "cpu")["claims"][5:8]
  assert [r["status"] for r in rows] == ["FAIL"] * 3, rows
  controls.ladder_trained(tmp_path)
  rows = ladder_claims.ladder_claims(tmp_path, "cpu")["claims"][5:8]
  assert [r["status"] for r in rows] == ["PASS"] * 3, rows


def test_few_shot_falling_at_the_largest_k_fails(tmp_path):
  skill = lambda c, k: min(1.0, (c / 3e13) ** 0.5) * (1.0 if k == 4 else 0.3)
  controls.ladder_trained(tmp_path, few_shot=lambda i, s, c, t, k, m: skill(c, k) ** (
      4 if m == "exact_match" else 1))
  rows = ladder_claims.ladder_claims(tmp_path, "cpu")["claims"]
  assert [r["status"] for r in rows[2:5]] == ["FAIL"] * 3
  assert "k=4 1.00, k=8 0.01" in rows[2]["ours"]


def test_few_shot_rising_only_at_the_largest_k_fails(tmp_path):
  """Exact match at chance at k = 0, 1, 2, 4 and 1.00 at k = 8 (controls.ladder_last_k): the
  largest k alone above k = 0 PASSed; Brown's rise is a climb across k, so it must hold
  without the last k. Positive controls: ladder_trained (0.01, 0.02, 0.05, 0.18, 1.00) and a
  curve at chance up to k = 2 that rises at k = 4 and 8 both PASS."""
  controls.ladder_last_k(tmp_path)
  rows = ladder_claims.ladder_claims(tmp_path, "cpu")["claims"][2:5]
  assert [r["status"] for r in rows] == ["FAIL"] * 3, rows
  assert "k=0 0.00, k=1 0.00, k=2 0.00, k=4 0.00, k=8 1.00" in rows[0]["ours"]
  for few_shot in (None, lambda i, s, c, t, k, m: 0.0 if k < 4 else 0.5 + k / 16):
    controls.ladder_trained(tmp_path, **({"few_shot": few_shot} if few_shot else {}))
    rows = ladder_claims.ladder_claims(tmp_path, "cpu")["claims"][2:5]
    assert [r["status"] for r in rows] == ["PASS"] * 3, rows


def test_rises_with_k_needs_a_k_between_0_and_the_largest():
  cell = lambda v: {"exact_match": [v, v - 0.02, v + 0.02]}
  assert ladder_claims._rises_with_k({"0": cell(0.0), "4": cell(0.5), "8": cell(0.9)})[0]
  ok, text = ladder_claims._rises_with_k({"0": cell(0.0), "8": cell(0.9)})
  assert not ok and "fewer than 3 k" in text


@pytest.mark.parametrize("build", sorted(controls.CONTROLS["ladder"]))
def test_each_control_fails_the_claims_it_controls(tmp_path, build):
  controls.CONTROLS["ladder"][build](tmp_path)
  rows = ladder_claims.ladder_claims(tmp_path, "tiny")["claims"]
  mine = [r for r in rows if build in controls_of(r)]
  assert mine and {r["status"] for r in mine} == {"FAIL"}, mine


def test_the_untrained_ladder_fails_every_claim(tmp_path):
  controls.ladder_untrained(tmp_path)
  assert statuses(ladder_claims.ladder_claims(tmp_path, "tiny")) == ["FAIL"] * CLAIMS


def test_controls_mode_scores_the_ladder(tmp_path):
  rows = controls.run_controls(tmp_path, names=("ladder",))
  # One row per (claim, control): the frontier has two, the phase change two (a steady fall,
  # an exponential decay), the prefix head three (untrained, a steady fall, a head rising
  # steadily), each rises-with-k row two (flat in k, a rise at the last k only), each
  # continuous-first row two (one checkpoint, exact match never).
  assert len(rows) == CLAIMS + 1 + 1 + 2 + 3 + 3 and {r["status"] for r in rows} == {"FAIL"}, rows


def test_missing_file_is_an_error(tmp_path):
  assert summaries.summarize("ladder", "cpu", tmp_path)["error"]


# ----------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_tiny_ladder_end_to_end(tmp_path):
  """Two sizes trained as one sweep on the same batches, every kept checkpoint probed, the
  result file, the figures and the claims; a rerun trains and probes nothing."""
  ladder.run("tiny", tmp_path)
  res = json.loads((tmp_path / ladder.OUT).read_text())
  assert len(res["sizes"]) == 2 and res["failed"] == []
  for s in res["sizes"]:
    assert [r["step"] for r in s["rows"]] == [10, 20, 40]
    assert all(r["tokens"] == r["step"] * 8 * 32 for r in s["rows"])
    assert all(set(r["few_shot"]) == {"copy", "add", "lookup"} for r in s["rows"])
    assert s["phase_change"]["checkpoints"] == 3
  assert res["sizes"][0]["num_params"] < res["sizes"][1]["num_params"]
  assert set(res["abilities"]) == {"copy", "add", "lookup"}
  for name in ("copy", "add", "lookup", "frontier"):
    assert (tmp_path / "figures" / f"ladder_{name}.png").stat().st_size > 10_000
  rows = ladder_claims.ladder_claims(tmp_path, "tiny")["claims"]
  assert len(rows) == CLAIMS and all(r["status"] in ("PASS", "FAIL") for r in rows)
  before = (tmp_path / ladder.OUT).read_text()
  ladder.run("tiny", tmp_path)  # reused runs, probes already complete: the same rows
  again = json.loads((tmp_path / ladder.OUT).read_text())
  assert again["sizes"] == json.loads(before)["sizes"]
  # and the same training seconds: wall_s was the call's own, 42.2 s then 1.7 s of reuse.
  first = json.loads(before)
  assert again["wall_s"] == first["wall_s"] > 0 and 0 < again["call_wall_s"] < first["call_wall_s"]


@pytest.mark.parametrize("losses, status, ours", [
    ([3.0, 2.0, 1.999], "FAIL", "not identified (3 distinct (x) points for 3 parameters)"),
    ([2.5, 2.5, 2.5, 2.5], "FAIL", "no fit"),  # one frontier point: no fit either
    ([1.5 + 30 * c ** -0.15 for c in (1e9, 1e10, 1e11, 1e12)], "PASS", "over 4 points"),
    # Before: a falling line in ln C passed (alpha 0.03, E 0, worst residual under 1%).
    ([3.0 - 0.05 * math.log(10.0 ** e) for e in range(9, 15)], "FAIL",
     "indistinguishable from a line")])
def test_frontier_power_law_needs_more_points_than_parameters(losses, status, ours):
  # Before: 3 points (3 parameters fit any 3 falling points exactly) passed a step as a law.
  compute = [10.0 ** e for e in range(9, 9 + len(losses))]
  sizes = [{"run": "r", "rows": [{"compute": c, "loss": l, "step": i}
                                 for i, (c, l) in enumerate(zip(compute, losses))]}]
  fr = ladder.frontier(sizes)
  row = ladder_claims._frontier_row(fr, "")
  assert row["status"] == status and ours in row["ours"], row["ours"]
  if fr["fit"] is not None:  # a ladder.json written before the line comparison: the same verdict
    old = {k: v for k, v in fr.items() if k != "line"}
    assert ladder_claims._frontier_row(old, "") == row


def test_the_printed_table_names_each_size_and_no_share_of_a_rise_as_a_drop(tmp_path, capsys):
  """A user's trial: the size column cut every run name to '000_num_la', and a window that
  held all of the ICL score's net rise printed '(0%, ...)' of a drop. Control: a real net drop
  prints its share."""
  import json
  controls.ladder_trained(tmp_path)
  res = json.loads((tmp_path / "ladder.json").read_text())
  long = "000_num_layers2_width16_num_heads2"
  res["sizes"][0]["run"] = long
  w = res["sizes"][0]["phase_change"]
  w["total_drop"], w["drop"] = -0.03, -0.03
  ladder.report(res)
  out = capsys.readouterr().out
  assert f"\n{long} " in out and "nats (no net drop," in out
  assert "% of its drop," in out  # the other sizes' windows


def test_the_frontiers_fall_is_taken_from_its_first_point():
  """'Falls >= 10%' is relative to the smallest compute's loss (a mutation audit divided by
  the last loss unseen: 2.0 -> 1.0 read as 100%)."""
  row = ladder_claims._frontier_row({"fit": None, "points": [{"loss": 2.0}, {"loss": 1.0}],
                                     "form": "x"}, "")
  assert row["ours"].endswith("frontier falls 50%")


def test_any_above_chance_counts_a_one_checkpoint_glitch(tmp_path):
  """any_above_chance is the first checkpoint above chance at all (here a glitch), while
  first_above_chance waits until every later one is above it (a mutation audit made them the
  same unseen, moving the bound the later metric is held to)."""
  def few_shot(i, s, c, t, k, m):
    if m != "exact_match" and i == 0 and s == 20:
      return 0.3  # the glitch
    return 0.5 if c >= 1e13 else 0.0
  controls.ladder_trained(tmp_path, few_shot=few_shot)
  ability = json.loads((tmp_path / "ladder.json").read_text())["abilities"]["copy"]
  assert ability["first_above_chance"]["token_accuracy"]["compute"] >= 1e13
  assert ability["any_above_chance"]["token_accuracy"]["compute"] < 1e13
  assert ability["any_above_chance"]["exact_match"]["compute"] >= 1e13


# ----------------------------------------------------------------------------- figures
def test_ladder_figures_draw_each_checkpoints_score_edge_and_the_frontier_fit(tmp_path, monkeypatch):
  """research/analysis/ladder_plots.py, the numbers handed to matplotlib: a trained checkpoint
  (tokens > 0; the untrained one has no place on a log axis) is a square at (tokens, params)
  coloured by its score, black-edged when its interval clears chance: lo above it where higher
  is better, hi below it where lower is (edit distance); the frontier's fitted line is
  E + A C^-alpha over the frontier's compute."""
  import numpy as np
  from research.analysis import ladder_plots
  figures = []
  monkeypatch.setattr(ladder_plots, "save_figure", lambda fig, out, **kw: figures.append(fig) or out)
  cell = lambda em, ed: {"exact_match": em, "edit_distance": ed,
                         "chance": {"exact_match": 0.1, "edit_distance": 1.2}}
  rows = [{"tokens": 0, "compute": 0, "loss": 9.0,
           "few_shot": {"copy": {"4": cell((0.0, 0.0, 0.05), (3.0, 2.9, 3.1))}}},
          {"tokens": 1e6, "compute": 6e12, "loss": 3.0,
           "few_shot": {"copy": {"4": cell((0.5, 0.4, 0.6), (1.0, 0.8, 1.5))}}},
          {"tokens": 2e6, "compute": 1.2e13, "loss": 2.5,
           "few_shot": {"copy": {"4": cell((0.12, 0.05, 0.2), (0.5, 0.4, 0.6))}}}]
  res = {"metrics": ["exact_match", "edit_distance"],
         "higher_is_better": {"exact_match": True, "edit_distance": False},
         "sizes": [{"num_params": 1e6, "rows": rows}],
         "abilities": {"copy": {"k": 4, "chance": {"exact_match": 0.1, "edit_distance": 1.2},
                                "first_above_chance": {"exact_match": None,
                                                       "edit_distance": {"compute": 1.2e13}}}},
         "frontier": {"points": [{"compute": 6e12, "loss": 3.0}, {"compute": 1.2e13, "loss": 2.5}],
                      "fit": {"E": 2.0, "A": 10.0, "alpha": 0.05}}}
  ladder_plots.render_ability(res, "copy", tmp_path / "a.png")
  em, ed = (ax.collections[0] for ax in figures[0].axes[:2])
  for squares, scores, edged in ((em, [0.5, 0.12], [1, 0]), (ed, [1.0, 0.5], [0, 1])):
    np.testing.assert_array_equal(squares.get_offsets(), [[1e6, 1e6], [2e6, 1e6]])
    np.testing.assert_array_equal(squares.get_array(), scores)
    assert list(squares.get_edgecolors()[:, 3]) == edged  # alpha 1: black edge; 0: none
  ladder_plots.render_frontier(res, tmp_path / "f.png")
  ax = figures[1].axes[0]
  size_line, fit_line = ax.get_lines()[0], ax.get_lines()[-1]
  assert list(size_line.get_xdata()) == [6e12, 1.2e13]  # the compute-0 row left out
  c = np.asarray(fit_line.get_xdata())
  assert c[0] == pytest.approx(6e12) and c[-1] == pytest.approx(1.2e13)
  np.testing.assert_allclose(fit_line.get_ydata(), 2.0 + 10.0 * c ** -0.05, rtol=1e-12)
  assert "indistinguishable" not in fit_line.get_label()  # no line test recorded: no caveat
  # The law's label says when the F-test kept the line (a second trial: drawn bare).
  res["frontier"]["line"] = {"line_rejected": False, "p": 0.015}
  ladder_plots.render_frontier(res, tmp_path / "g.png")
  assert "(indistinguishable from a line in ln C, p = 0.015)" in (
      figures[2].axes[0].get_lines()[-1].get_label())
