"""Schaeffer 2023 and Besiroglu 2024 scorers (Nanda 2023's: test_claims_grokking.py): PASS,
FAIL, seeds, negative control, missing files."""
import json

import pytest

from claims_fixtures import seeds, statuses, write
from experiments import summaries
from experiments.claims import controls, emergence


# ----------------------------------------------------------------------------- Schaeffer
def smooth(m, i):
  """Continuous metrics: an even rise over the sizes; exact match: p^L of per-token accuracy
  p (L = 8 tokens), nearly all of it at the last two sizes."""
  p = 0.1 + 0.18 * i
  return (p ** 8 - 0.1 ** 8) / (0.999 - 0.1 ** 8) if m == "exact_match" else i / 5


def schaeffer_run(run_dir, seed=0, curve=smooth):
  controls.schaeffer_files(run_dir, curve)


def test_schaeffer_passes_on_three_seeds(tmp_path):
  seeds(tmp_path / "schaeffer2023" / "run", 3, schaeffer_run)
  s = summaries.summarize("schaeffer2023", "cpu", tmp_path)
  assert statuses(s) == ["PASS"] * 6, [r["note"] for r in s["claims"] if r["status"] != "PASS"]


def test_schaeffer_fails_when_continuous_metrics_jump_too(tmp_path):
  jump = lambda m, i: float(i >= 4)  # every metric jumps between the same two sizes
  schaeffer_run(tmp_path, curve=jump)
  rows = emergence.schaeffer2023(tmp_path, "cpu")["claims"]
  assert statuses({"claims": rows}) == ["FAIL"] * 6  # leaving chance together is no ordering
  assert "exact match puts 100% of its change in one step, token_accuracy 100%" in rows[0]["note"]


def test_schaeffer_failed_size_scores_nothing(tmp_path):
  schaeffer_run(tmp_path)
  res = json.loads((tmp_path / "emergence_scale.json").read_text())
  write(tmp_path / "emergence_scale.json", res | {"failed": [{"run": "size_2", "error": "x"}]})
  rows = emergence.schaeffer2023(tmp_path, "cpu")["claims"]
  assert {r["status"] for r in rows} == {"NOT_SHOWN"} and "['size_2'] failed" in rows[0]["note"]


# Null results a probe found scored PASS: each must FAIL the claims it would fake, over 3 seeds.
SHARPER = [emergence._sharper(m) for m in emergence.CONTINUOUS]


def test_schaeffer_exact_match_going_back_and_forth_is_not_sharp(tmp_path):
  seeds(tmp_path / "schaeffer2023" / "run", 3, lambda d, i: controls.schaeffer_zigzag(d))
  s = summaries.summarize("schaeffer2023", "cpu", tmp_path)
  rows = {r["claim"]: r for r in s["claims"]}
  for text in SHARPER + [emergence.SMOOTH]:  # were PASS 3/3 ("5.00 vs 0.20")
    assert (rows[text]["status"], rows[text]["seeds"]) == ("FAIL", "0/3"), rows[text]
  assert "seed 0: 5.00 (goes back) vs 0.20" in rows[SHARPER[0]]["ours"]
  assert "exact match goes back 0.3000 from 16000 to 64000 params" in rows[SHARPER[0]]["note"]
  assert "its misfit is a zig-zag" in rows[emergence.SMOOTH]["note"]


@pytest.mark.parametrize("last, expected", [(0.98, "PASS"), (0.90, "FAIL")])
def test_schaeffer_going_back_counts_beyond_noise_and_five_percent(tmp_path, last, expected):
  # A sharp rise that slips at the top: 0.02 is beyond the intervals (+/- 0.005 each) but under
  # 5% of the net change (the positive control); 0.10 is beyond both.
  em = [0.0, 0.0, 0.01, 0.6, 1.0, last]
  schaeffer_run(tmp_path, curve=lambda m, i: em[i] if m == "exact_match" else i / 5)
  rows = emergence.schaeffer2023(tmp_path, "cpu")["claims"]
  assert [r["status"] for r in rows[:4]] == [expected] * 4, rows[0]["note"]


def test_schaeffer_exact_match_never_leaving_chance_orders_nothing(tmp_path):
  seeds(tmp_path / "schaeffer2023" / "run", 3, lambda d, i: controls.schaeffer_never(d))
  row = summaries.summarize("schaeffer2023", "cpu", tmp_path)["claims"][-1]
  assert row["claim"] == emergence.FIRST
  assert (row["status"], row["seeds"]) == ("FAIL", "0/3")  # was PASS 3/3
  assert "token accuracy at <= 4000 params, exact match at never" in row["ours"]
  assert "exact match never leaves chance here, so no ordering is shown" in row["note"]


def test_schaeffer_a_one_size_glitch_does_not_leave_chance(tmp_path):
  """Token accuracy beyond chance at one size, back at chance at the next two, then leaving
  chance for good at the same size as exact match: no ordering (was PASS 'token accuracy at
  16000 params'). A results file written under the old rule (first size beyond chance stored)
  is re-scored under the new one. Positive control: a lasting lead still PASSes."""
  controls.schaeffer_glitch(tmp_path)
  row = emergence.schaeffer2023(tmp_path, "cpu")["claims"][-1]
  assert row["claim"] == emergence.FIRST
  assert row["status"] == "FAIL", row
  assert "token accuracy at 1024000 params, exact match at 1024000 params" in row["ours"]
  path = tmp_path / "emergence_scale.json"
  res = json.loads(path.read_text())
  res["first_beyond_chance"]["token_accuracy"] = 1  # what the old rule stored
  write(path, res)
  assert emergence.schaeffer2023(tmp_path, "cpu")["claims"][-1]["status"] == "FAIL"
  # the same lead with no glitch: token accuracy beyond chance from the second size on
  tok, em = [0.0, 0.3, 0.3, 0.4, 0.5, 0.9], [0.0, 0.0, 0.0, 0.0, 0.3, 0.8]
  controls.schaeffer_files(tmp_path, lambda m, i: em[i] if m == "exact_match" else tok[i])
  row = emergence.schaeffer2023(tmp_path, "cpu")["claims"][-1]
  assert row["status"] == "PASS", row
  assert "token accuracy at 16000 params, exact match at 1024000 params" in row["ours"]


def test_schaeffer_metric_never_above_chance_has_no_sharpness(tmp_path):
  # Log-likelihood rising evenly but below chance at every size (the tiny run's shape).
  below = lambda m, i: -0.1 + 0.08 * i / 5 if m == "log_likelihood" else smooth(m, i)
  seeds(tmp_path / "schaeffer2023" / "run", 3, lambda d, i: schaeffer_run(d, curve=below))
  rows = summaries.summarize("schaeffer2023", "cpu", tmp_path)["claims"]
  assert statuses({"claims": rows}) == ["PASS", "PASS", "FAIL", "PASS", "FAIL", "PASS"]
  assert rows[2]["ours"].startswith("seed 0: 0.80 vs n/a (never above chance)"), rows[2]["ours"]
  assert "log likelihood never above chance at any size" in rows[2]["note"]
  assert "log likelihood never above chance at any size" in rows[4]["note"]


def test_schaeffer_report_prints_every_claim_of_its_seed(tmp_path, capsys):
  from experiments import schaeffer2023
  controls.schaeffer_zigzag(tmp_path)
  res = json.loads((tmp_path / "emergence_scale.json").read_text()) | {"preset": "cpu", "seed": 2}
  schaeffer2023.report(res)
  out = capsys.readouterr().out
  assert "claims on this seed alone (seed 2; the verdict needs 3 seeds" in out
  for text in SHARPER + [emergence.SMOOTH, emergence.FIRST]:
    assert f"FAIL      1 seed  {text}: " in out, out
  assert "exact_match     n/a (step 4000 -> 16000 params: 5.00 of net change" in out
  assert "not compared: exact match goes back 0.3000" in out


def test_schaeffer_missing_file(tmp_path):
  assert summaries.summarize("schaeffer2023", "cpu", tmp_path)["error"]


# ----------------------------------------------------------------------------- Besiroglu
def fit_file(run_dir, params=None, se_scale=1.0, tpp=20.0, beta_all=0.453, outside=()):
  params = params or {k: v for k, (v, _) in emergence.PUBLISHED.items()}
  res = lambda ps, b: {"params": {k: {"fit": v, "se": emergence.PUBLISHED[k][1] * se_scale}
                                  for k, v in ps.items()} | ({"beta": {"fit": b, "se": None}}
                                                            if b is not None else {}),
                       "n_points": 240, "n_starts": 4500, "bootstrap": 4000,
                       "outside_bootstrap_5_95": list(outside),
                       "compute_optimal": [{"C": c, "tokens_per_param": tpp} for c in (1e21, 1e25)]}
  write(run_dir / "scaling_fit.json", res(params, None))
  write(run_dir / "all_points" / "scaling_fit.json", res(params, beta_all))


@pytest.mark.parametrize("kw, expected", [
    ({}, ["PASS"] * 7),
    ({"se_scale": 2.0}, ["FAIL"] * 5 + ["PASS"] * 2),          # the bootstrap's interval is off
    ({"params": {**{k: v for k, (v, _) in emergence.PUBLISHED.items()}, "A": 482.01 + 40}},
     ["PASS", "FAIL", "PASS", "PASS", "PASS", "PASS", "PASS"]),  # A off by a third of its SE
    ({"tpp": 40.0, "beta_all": 0.40}, ["PASS"] * 5 + ["FAIL", "FAIL"]),
    # ~20 tokens per parameter is 15-25 (a mutation audit widened it to 10-30 unseen)
    ({"tpp": 28.0}, ["PASS"] * 5 + ["FAIL", "PASS"]),
    ({"tpp": 25.0}, ["PASS"] * 7),
    ({"tpp": 15.0}, ["PASS"] * 7),   # the lower end is in the band too ('<' FAILed it)
    ({"tpp": 14.9}, ["PASS"] * 5 + ["FAIL", "PASS"]),
    # the all-points beta within 0.02 of 0.453 (a mutation audit widened it to 0.03 unseen)
    ({"beta_all": 0.47}, ["PASS"] * 7),
    ({"beta_all": 0.478}, ["PASS"] * 6 + ["FAIL"]),
    # a value outside its own bootstrap interval is not a converged refit (review; it PASSed)
    ({"outside": ["alpha"]}, ["PASS", "PASS", "PASS", "FAIL", "PASS", "PASS", "PASS"]),
])
def test_besiroglu_claims(tmp_path, kw, expected):
  fit_file(tmp_path, **kw)
  s = emergence.besiroglu2024(tmp_path, "cpu")
  assert statuses(s) == expected
  assert s["claims"][-1]["kind"] == "self-check" and s["seedless"]


def test_besiroglu_no_optimum_is_a_fail_not_a_crash(tmp_path):
  """Strict JSON stores a missing optimum's tokens per parameter as null; min() raised."""
  fit_file(tmp_path)
  res = json.loads((tmp_path / "scaling_fit.json").read_text())
  res["compute_optimal"][-1]["tokens_per_param"] = None
  write(tmp_path / "scaling_fit.json", res)
  row = emergence.besiroglu2024(tmp_path, "cpu")["claims"][5]
  assert row["status"] == "FAIL" and "no optimum at 1 of 2 C" in row["note"], row


def test_besiroglu_one_fit_is_a_pass_and_its_self_check_counts_apart(tmp_path):
  fit_file(tmp_path / "besiroglu2024" / "run")
  s = summaries.summarize("besiroglu2024", "cpu", tmp_path)
  assert s["counts"] == {"PASS": 6, "UNREPLICATED": 0, "FAIL": 0, "NOT_SHOWN": 0,
                         "self-check": 1}
  assert summaries.summarize("besiroglu2024", "cpu", tmp_path / "none")["error"]


@pytest.mark.parametrize("paper", ["schaeffer2023", "nanda2023", "besiroglu2024"])
def test_emergence_controls_fail_every_claim(tmp_path, paper):
  rows = controls.run_controls(tmp_path, names=(paper,))
  assert rows and {r["status"] for r in rows} == {"FAIL"}, rows
  if paper == "schaeffer2023":  # each null result the probe found is a control of its claims
    checked = lambda c: {r["claim"] for r in rows if r["control"] == c}
    assert checked(emergence.ZIGZAG) == set(SHARPER) | {emergence.SMOOTH}
    assert checked(emergence.BELOW) == set(SHARPER) | {emergence.SMOOTH}
    # exact match present at the smallest size and saturating: its first step, its largest,
    # read as 'sharper' (0.60 vs 0.20) and its misfit as 'not smooth'
    assert checked(emergence.SATURATING) == set(SHARPER) | {emergence.SMOOTH}
    assert checked(emergence.NEVER) == {emergence.FIRST}
    assert checked(emergence.GLITCH) == {emergence.FIRST}
    assert checked(emergence.SHUFFLED) == {emergence.FIRST}  # sizes shuffled (a trial's)


def test_smooth_fit_reads_its_allowance_as_5_percent_of_the_net_change():
  """The residual's allowance max(2 x half-width, 5% of the net change), pinned on intervals
  of zero width, so the 5% alone sets it (a mutation audit doubled it unseen)."""
  sizes = [{"num_params": 10 ** (i + 3), "metrics": {"m": {"mean": v, "lo": v, "hi": v}}}
           for i, v in enumerate([0, 0.2, 0.3, 0.8, 1.0])]
  fit = emergence.smooth_fit(sizes, "m")
  assert fit["at"] == 3 and fit["ratio"] == pytest.approx(2.1714, abs=1e-4)


# ----------------------------------------------------------------------------- at the edges
def _sizes(means, half=0.0):
  return [{"num_params": 10 ** (i + 3), "metrics": {"m": {"mean": v, "lo": v - half,
                                                          "hi": v + half}}}
          for i, v in enumerate(means)]


def test_smooth_fit_needs_four_sizes_and_a_net_change_beyond_both_end_intervals():
  """A quadratic through 3 sizes fits them exactly: no test of smoothness (None; a mutation audit:
  '< 3' fitted them). A net change 0.03 within the two end sizes' half-widths 0.02 + 0.02 is
  nothing to explain (None; a mutation audit: the last size's alone, 0.02, passed it); 0.05 is."""
  assert emergence.smooth_fit(_sizes([0.0, 0.5, 1.0]), "m") is None
  assert emergence.smooth_fit(_sizes([0.0, 0.2, 0.5, 1.0]), "m") is not None
  assert emergence.smooth_fit(_sizes([0.0, 0.01, 0.02, 0.03], 0.02), "m") is None
  assert emergence.smooth_fit(_sizes([0.0, 0.01, 0.03, 0.05], 0.02), "m") is not None


def test_schaeffer_exact_match_beyond_chance_at_the_smallest_size_even_before_it_leaves(tmp_path):
  """Exact match 0.06 at the smallest size (beyond chance: > 3 x 0.005 and > 5% of the range),
  0.045 at the next two (not beyond, and back by 0.015, under 5% of the net change: no
  going-back), leaving chance for good at the fourth: already present at the smallest size,
  so its 0.53 sharpness is no emergence (FAIL; a mutation audit: reading 'present' off where it
  leaves chance for good, the fourth size, PASSed the four 'sharper' rows)."""
  em = [0.06, 0.045, 0.045, 0.1, 0.5, 1.0]
  schaeffer_run(tmp_path, curve=lambda m, i: em[i] if m == "exact_match" else i / 5)
  rows = emergence.schaeffer2023(tmp_path, "cpu")["claims"]
  assert [r["status"] for r in rows[:5]] == ["FAIL"] * 5, rows
  assert "exact match already beyond chance at the smallest size" in rows[0]["note"]


def test_schaeffer_sharper_is_by_half_an_even_step_over_the_sizes(tmp_path):
  """Six sizes: an even spread puts 1/5 of the change in each step, and 'sharper' needs exact
  match's fraction larger by half of that, 0.10. Exact match 0.29 against token accuracy's
  0.20 is within it (FAIL; a mutation audit: 0.5 / 6 = 0.083 passed it); 0.40 is beyond (PASS)."""
  for em, status in (([0, 0.1, 0.29, 0.48, 0.71, 1.0], "FAIL"),
                     ([0, 0.1, 0.2, 0.4, 0.6, 1.0], "PASS")):
    schaeffer_run(tmp_path / status, curve=lambda m, i: em[i] if m == "exact_match" else i / 5)
    row = emergence.schaeffer2023(tmp_path / status, "cpu")["claims"][0]
    assert row["status"] == status and "larger by > 0.10" in row["tolerance"], row


def test_schaeffer_leaves_chance_by_the_margin_the_experiment_recorded(tmp_path):
  """leaves_chance re-reads the sizes with the file's own margin, its fraction of the range
  included: at 0.3 of |perfect - chance| token accuracy (1/5 of the range a size) is beyond
  chance from the second index on, at the default 0.05 from the first (a mutation audit: leaving the
  fraction out read the default)."""
  schaeffer_run(tmp_path)
  res = json.loads((tmp_path / "emergence_scale.json").read_text())
  assert emergence.leaves_chance(res)["token_accuracy"] == 1
  res["margin"]["fraction"] = 0.3
  assert emergence.leaves_chance(res)["token_accuracy"] == 2
  assert emergence.first_any(res, "token_accuracy") == 2


def test_besiroglu_point_is_read_in_published_standard_errors(tmp_path):
  """A off by 0.3 published SE (37.37) with our bootstrap SE 1.25x the published one (inside
  x1.3): FAIL on the value, read against 0.25 of the published SE (a mutation audit: against 0.25 of
  ours, 38.9, it passed); 0.2 published SE off: PASS."""
  pv, pse = emergence.PUBLISHED["A"]
  for off, status in ((0.3, "FAIL"), (0.2, "PASS")):
    params = {k: v for k, (v, _) in emergence.PUBLISHED.items()} | {"A": pv + off * pse}
    fit_file(tmp_path / status, params=params, se_scale=1.25)
    row = emergence.besiroglu2024(tmp_path / status, "cpu")["claims"][1]
    assert row["status"] == status and f"off by {off:.2f} published SE; SE ratio 1.25" in \
        row["note"], row


def test_besiroglu_bootstrap_se_within_a_factor_1_3_either_way(tmp_path):
  """Our SE 0.75 x the published one is below 1 / 1.3 = 0.769 of it: FAIL on every value
  (a mutation audit: the band 2 - 1.3 = 0.7 passed it); 0.8 x is inside: PASS."""
  for scale, status in ((0.75, "FAIL"), (0.8, "PASS")):
    fit_file(tmp_path / status, se_scale=scale)
    rows = emergence.besiroglu2024(tmp_path / status, "cpu")["claims"][:5]
    assert [r["status"] for r in rows] == [status] * 5, rows


def test_schaeffer_a_continuous_metric_with_no_change_is_not_smooth(tmp_path):
  """Brier halfway from chance at every size: beyond chance, but no net change beyond its
  intervals, so no smooth fit explains a change (FAIL; a mutation audit: counting a metric with no
  fit as smooth PASSed the row)."""
  schaeffer_run(tmp_path, curve=lambda m, i: 0.5 if m == "brier" else smooth(m, i))
  row = emergence.schaeffer2023(tmp_path, "cpu")["claims"][4]
  assert row["claim"] == emergence.SMOOTH
  assert row["status"] == "FAIL" and "brier no change beyond its intervals" in row["ours"], row


def test_the_figure_and_the_file_say_n_a_where_the_claims_compare_no_sharpness(tmp_path,
                                                                               monkeypatch):
  """A second trial: on an untrained model the text said n/a for every metric, while the
  figure's titles read "biggest step = 295% of the change" and emergence_scale.json held the
  fractions unmarked. One rule (emergence_plots.no_sharpness) now writes all three."""
  import json
  from research.analysis import emergence_plots as ep, plots
  figures = []
  monkeypatch.setattr(plots, "save_figure", lambda fig, out: figures.append(fig) or out)
  controls.schaeffer_below(tmp_path / "below")  # continuous metrics rising below chance
  res = json.loads((tmp_path / "below" / "emergence_scale.json").read_text())
  assert res["sharpness"]["token_accuracy"]["fraction"] is not None
  assert "never above chance" in res["sharpness"]["token_accuracy"]["not_compared"]
  assert res["sharpness"]["exact_match"]["not_compared"] is None  # control: it rises
  ep.render_emergence_scale(tmp_path / "below" / "emergence_scale.json", tmp_path / "f.png")
  titles = [ax.get_title() for ax in figures[0].axes if ax.get_title()]
  assert any("token accuracy" in t and "= n/a of" in t for t in titles), titles
  assert any("exact match" in t and "n/a" not in t for t in titles), titles
  # Sizes 4e3-6e4 (under two decades): the parameter axis labelled minor ticks too, and
  # "4x10^3 6x10^3 10^4 2x10^4 ..." ran together (a second trial). Now 1 and 3 per decade.
  for i, size in enumerate(res["sizes"]):
    size["num_params"] = int(4000 * 1.7 ** i)
  (tmp_path / "narrow.json").write_text(json.dumps(res))
  ep.render_emergence_scale(tmp_path / "narrow.json", tmp_path / "g.png")
  ax = figures[1].axes[0]
  figures[1].canvas.draw()
  lo, hi = ax.get_xlim()
  shown = [t.get_text() for t, v in zip(ax.get_xticklabels(), ax.get_xticks())
           if lo <= v <= hi and t.get_text()]
  assert 1 <= len(shown) <= 3 and not [t for t in ax.get_xticklabels(minor=True) if t.get_text()]


def test_under_four_sizes_the_smooth_claim_says_its_fit_was_not_made(tmp_path):
  """A second trial: with 3 sizes every metric read "no change beyond its intervals" beside
  changes 10-50 times them (smooth_fit fits nothing under 4 sizes). The FAIL stands."""
  import json
  controls.schaeffer_same(tmp_path / "same")
  res = json.loads((tmp_path / "same" / "emergence_scale.json").read_text())
  res["sizes"] = res["sizes"][:3]
  row = next(r for r in emergence.schaeffer_rows(res, "tiny") if r["claim"] == emergence.SMOOTH)
  assert row["status"] == "FAIL" and "exact_match n/a (3 sizes; the fit needs 4)" in row["ours"]
  assert "no change beyond" not in row["ours"]
  full = json.loads((tmp_path / "same" / "emergence_scale.json").read_text())  # control
  row = next(r for r in emergence.schaeffer_rows(full, "tiny") if r["claim"] == emergence.SMOOTH)
  assert "n/a" not in row["ours"]
