"""Xie 2021's scorer: PASS, FAIL, seeds, negative controls, missing files (Olsson 2022's are
in test_claims_olsson.py)."""
import math

import pytest

from claims_fixtures import seeds, statuses, xie_results, xie_run, write
from experiments import summaries
from experiments.claims import controls, language


def test_xie_passes_on_three_seeds_and_reports_the_mixture_predictor(tmp_path):
  seeds(tmp_path / "xie2021" / "run", 3, xie_run)
  s = summaries.summarize("xie2021", "cpu", tmp_path)
  assert statuses(s) == ["PASS"] * 5, [r["note"] for r in s["claims"] if r["status"] != "PASS"]
  # the mixture's accuracy up to the last n where its posterior exists, on how many prompts,
  # and the model's accuracy on those prompts
  assert ("mixture 0.30 (n=0, on 256 prompts; the model there 0.35)->0.80 (n=8, on 25 "
          "prompts; the model there 0.80)") in s["claims"][0]["note"]
  assert ("Bayes predictor on the first 256 of the same prompts, where its posterior is "
          "defined: 0.30 (n=0, on 256 prompts; the model there 0.35) vs 0.50 (n=1, on 200 "
          "prompts; the model there 0.60)") in s["claims"][4]["note"]


def test_xie_fails_within_noise(tmp_path):
  # gains of a few tenths of a percent over 1024 prompts: not resolved
  xie_run(tmp_path, scale=0.01, lstm_gain=0.001, zero_shot=0.105)
  rows = language.xie2021(tmp_path, "cpu")["claims"]
  assert [r["status"] for r in rows] == ["FAIL", "PASS", "PASS", "FAIL", "FAIL"]
  assert "margin beyond 2.64 SE -0.0" in rows[4]["note"]  # 6 cells: Bonferroni z = 2.64


def test_xie_zero_shot_must_clear_the_corrected_level(tmp_path):
  # every cell: n=0 beats n=1 by 2.3 SE, enough for one cell, not for the best of six
  res = xie_results()
  for run in res["runs"].values():
    for c in run["probe"]["accuracy"]["id"].values():
      a1 = c["accuracy"][1]
      c["accuracy"][0] = a1 + 2.3 * math.sqrt(2 * a1 * (1 - a1) / 1024)
  write(tmp_path / "xie2021.json", res)
  row = language.xie2021(tmp_path, "cpu")["claims"][4]
  assert row["status"] == "FAIL" and "z = 2.64" in row["tolerance"]


def test_xie_larger_model_at_a_lower_loss_is_not_xies_comparison(tmp_path):
  res = xie_results()
  res["runs"]["transformer_l"]["end_loss"]["value"] = 1.9  # 0.1 below the small model's
  write(tmp_path / "xie2021.json", res)
  row = language.xie2021(tmp_path, "cpu")["claims"][2]
  assert row["status"] == "FAIL" and "also ends at a lower loss" in row["note"]
  del res["runs"]["transformer_l"]["end_loss"]
  write(tmp_path / "xie2021.json", res)
  assert language.xie2021(tmp_path, "cpu")["claims"][2]["status"] == "NOT_SHOWN"


def test_xie_example_length_is_compared_at_one_n(tmp_path):
  res = xie_results()
  for run in res["runs"].values():  # k = 8 fits one example fewer; its accuracy there is lower
    c = run["probe"]["accuracy"]["id"]["8"]
    c["n"], c["accuracy"] = c["n"][:-1], c["accuracy"][:-1]
    for key in ("ideal", "mixture", "mixture_prompts", "model_on_mixture_prompts"):
      c[key] = c[key][:-1]
  write(tmp_path / "xie2021.json", res)
  row = language.xie2021(tmp_path, "cpu")["claims"][1]
  assert "n = 8 (the largest n every k has)" in row["tolerance"]


def test_xie_zero_shot_in_an_lstm_only_does_not_count(tmp_path):
  res = xie_results(zero_shot=0.05)
  for c in res["runs"]["lstm"]["probe"]["accuracy"]["id"].values():
    c["accuracy"][0] = 0.9
  write(tmp_path / "xie2021.json", res)
  assert language.xie2021(tmp_path, "cpu")["claims"][4]["status"] == "FAIL"


def test_xie_missing_file(tmp_path):
  s = summaries.summarize("xie2021", "cpu", tmp_path)
  assert s["claims"] == [] and "could not read" in s["error"]


@pytest.mark.parametrize("paper", ["olsson2022", "xie2021"])
def test_language_controls_fail_every_claim(tmp_path, paper):
  rows = controls.run_controls(tmp_path, names=(paper,))
  assert rows and {r["status"] for r in rows} == {"FAIL"}, rows


def test_xie_mixture_from_an_older_probe_says_what_it_counted(tmp_path):
  """Probes before the split counted undefined posteriors as wrong answers; a mixture
  defined at one n only, or at none, is quoted as such."""
  res = xie_results()
  curves = [c for run in res["runs"].values() for c in run["probe"]["accuracy"]["id"].values()]
  for c in curves:
    del c["mixture_prompts"], c["model_on_mixture_prompts"]
    c["mixture"][-1] = 0.1
  write(tmp_path / "xie2021.json", res)
  claims = language.xie2021(tmp_path, "cpu")["claims"]
  assert "an older probe that counts prompts of probability 0" in claims[0]["note"]
  assert "where its posterior is defined: not in the file or undefined" in claims[4]["note"]
  for c in curves:
    c["mixture_prompts"] = [256] + [0] * 5
    c["model_on_mixture_prompts"] = [0.35] + [None] * 5
    c["mixture"] = [0.3] + [None] * 5
  write(tmp_path / "xie2021.json", res)
  claims = language.xie2021(tmp_path, "cpu")["claims"]
  assert "mixture 0.30 (n=0, on 256 prompts; the model there 0.35); " in claims[0]["note"]
  assert "where its posterior is defined: not in the file or undefined" in claims[4]["note"]
  for c in curves:
    c["mixture"][0], c["mixture_prompts"][0], c["model_on_mixture_prompts"][0] = None, 0, None
  write(tmp_path / "xie2021.json", res)
  note = language.xie2021(tmp_path, "cpu")["claims"][0]["note"]
  assert "mixture undefined on every prompt" in note


def _xie_rows_with_accuracy(tmp_path, accuracy_over_n):
  """Xie's claim rows with every in-distribution accuracy curve over n set to one curve."""
  res = xie_results()
  for run in res["runs"].values():
    for c in run["probe"]["accuracy"]["id"].values():
      c["accuracy"] = accuracy_over_n[:len(c["n"])]
  write(tmp_path / "xie2021.json", res)
  return language.xie2021(tmp_path, "cpu")["claims"]


def test_xie_a_rise_that_falls_back_does_not_rise(tmp_path):
  """Accuracy 0.30 -> 0.60 -> 0.35 over n: first-to-last gain +0.05 beyond 2 SE and rho 0.32
  passed 'rises with n' and 'LSTMs also learn'; the resolved 0.25 fall now FAILs them."""
  rows = _xie_rows_with_accuracy(tmp_path, [0.30, 0.30, 0.60, 0.60, 0.60, 0.35])
  assert rows[0]["status"] == "FAIL" and "0.250" in rows[0]["note"], rows[0]
  assert rows[3]["status"] == "FAIL", rows[3]


def test_xie_a_rise_with_a_dip_inside_the_noise_still_rises(tmp_path):
  """Control: a real rise whose one dip is within the probe's noise still PASSes."""
  rows = _xie_rows_with_accuracy(tmp_path, [0.30, 0.30, 0.45, 0.44, 0.60, 0.70])
  assert rows[0]["status"] == "PASS" and rows[3]["status"] == "PASS", rows
  assert "transformer_s none" in rows[0]["note"]


@pytest.mark.parametrize("small, large, se", [
    (2.50, 2.00, 0.5),   # 0.5 nats apart, SE 0.5: 'not resolved from 0' called it equal
    (2.12, 2.00, 0.05),  # 0.12 nats apart, within 2 SE 0.14
    (2.00, 2.00, 0.05),  # the same value, measured too coarsely to show equality
])
def test_xie_equal_loss_is_an_equivalence_within_a_fixed_margin(tmp_path, small, large, se):
  res = xie_results()
  res["runs"]["transformer_s"]["end_loss"] |= {"value": small, "se": se}
  res["runs"]["transformer_l"]["end_loss"] |= {"value": large, "se": se}
  write(tmp_path / "xie2021.json", res)
  row = language.xie2021(tmp_path, "cpu")["claims"][2]
  assert row["status"] == "FAIL" and "<= 0.05 nats" in row["tolerance"], row


def test_xie_equal_loss_within_the_margin_still_passes(tmp_path):
  """Control: end losses 2.00 vs 2.01 with SE 0.01 each (|d| + 2 SE = 0.038 nats): PASS."""
  res = xie_results()
  res["runs"]["transformer_s"]["end_loss"] |= {"value": 2.01, "se": 0.01}
  write(tmp_path / "xie2021.json", res)
  assert language.xie2021(tmp_path, "cpu")["claims"][2]["status"] == "PASS"


def test_xie_a_rise_with_k_that_falls_back_does_not_rise(tmp_path):
  """Accuracy 0.30, 0.60, 0.35 over k = 3, 5, 8: +0.05 beyond 2 SE and rho 0.5 passed 'rises
  with k'; the resolved 0.25 fall from k = 5 to 8 now FAILs it. Control: the fixture's rise
  over k, and one with a dip inside the probe's noise, still PASS."""
  from experiments.claims import language_controls
  language_controls.xie_k_falls_back(tmp_path / "back")
  row = language.xie2021(tmp_path / "back", "tiny")["claims"][1]
  assert row["status"] == "FAIL" and "0.250 (k=5->8)" in row["note"], row
  res = xie_results()
  write(tmp_path / "ok" / "xie2021.json", res)
  assert language.xie2021(tmp_path / "ok", "cpu")["claims"][1]["status"] == "PASS"
  for run in res["runs"].values():
    for k, c in run["probe"]["accuracy"]["id"].items():
      c["accuracy"][-1] = {"3": 0.40, "5": 0.39, "8": 0.60}[k]  # 0.01 dip, SE 0.022
  write(tmp_path / "dip" / "xie2021.json", res)
  row = language.xie2021(tmp_path / "dip", "cpu")["claims"][1]
  assert row["status"] == "PASS" and "transformer_s none" in row["note"], row


def test_xie_a_nan_cell_is_no_rise(tmp_path):
  """A NaN accuracy (an unmeasured cell) between the first and last n, or at the middle k,
  compared False in the fall test and ranked top in Spearman: 'rises with n', 'LSTMs also
  learn' and 'rises with k' PASSed; now FAIL. Control: the same rises without the NaN."""
  from experiments.claims import language_controls as lc
  lc.xie_nan_n(tmp_path / "n")
  rows = language.xie2021(tmp_path / "n", "tiny")["claims"]
  assert (rows[0]["status"], rows[3]["status"]) == ("FAIL", "FAIL"), rows
  lc.xie_nan_k(tmp_path / "k")
  assert language.xie2021(tmp_path / "k", "tiny")["claims"][1]["status"] == "FAIL"
  rise = [0.1, 0.2, 0.3, 0.4, 0.5]
  lc._xie_curves(tmp_path / "ok", {"3": rise, "5": rise, "8": rise})
  rows = language.xie2021(tmp_path / "ok", "tiny")["claims"]
  assert (rows[0]["status"], rows[3]["status"]) == ("PASS", "PASS"), rows
  lc._xie_curves(tmp_path / "ok_k", {"3": [0.1, 0.2, 0.3, 0.35, 0.4], "5": [0.1] + [0.45] * 4,
                                     "8": [0.1, 0.25, 0.35, 0.45, 0.5]})
  assert language.xie2021(tmp_path / "ok_k", "tiny")["claims"][1]["status"] == "PASS"


# --------------------------------------------------------------- Xie's lines at their boundaries
def _xie_flat(tmp_path, small, large, **edit):
  """Xie's rows with every ID accuracy cell of transformer_s at `small` and of transformer_l at
  `large` (every k and n); edit: run name -> dict merged into that run."""
  res = xie_results()
  for name, acc in (("transformer_s", small), ("transformer_l", large)):
    for c in res["runs"][name]["probe"]["accuracy"]["id"].values():
      c["accuracy"] = [acc] * len(c["n"])
  for name, change in edit.items():
    res["runs"][name] |= change
  write(tmp_path / "xie2021.json", res)
  return language.xie2021(tmp_path, "cpu")["claims"]


def test_xie_every_transformer_must_rise_with_n(tmp_path):
  """transformer_l flat at 0.5 at every n and k, transformer_s rising as in the fixture: 'every
  Transformer' FAILs (one model that rises is not every model)."""
  res = xie_results()
  for c in res["runs"]["transformer_l"]["probe"]["accuracy"]["id"].values():
    c["accuracy"] = [0.5] * len(c["n"])
  write(tmp_path / "xie2021.json", res)
  rows = language.xie2021(tmp_path, "cpu")["claims"]
  assert rows[0]["status"] == "FAIL" and "transformer_l +0.000" in rows[0]["ours"], rows[0]
  assert rows[3]["status"] == "PASS"  # control: the LSTM still rises


@pytest.mark.parametrize("gap, status", [(0.011, "FAIL"), (0.012, "PASS")])
def test_xie_larger_better_at_two_standard_errors_of_the_mean_accuracy(tmp_path, gap, status):
  """Every cell at 0.5 (small) and 0.5 + gap (large): the mean over the 15 cells with n >= 1
  (k = 3, 5, 8 x n = 1, 2, 4, 8, 16; n = 0 is not in-context learning), each of 1024 prompts,
  has SE sqrt(15 x 0.25 / 1024) / 15 = 0.00403 (0.00403 at 0.511 / 0.512 too), the difference
  sqrt(2) x that = 0.00570, 2 SE = 0.0114: a gap of 0.011 is inside it, 0.012 beyond."""
  row = _xie_flat(tmp_path, 0.5, 0.5 + gap)[2]
  assert row["status"] == status, row
  assert f"accuracy difference {gap:+.3f} (2 SE 0.011)" in row["note"], row["note"]


@pytest.mark.parametrize("small, large, se_s, se_l, status", [
    (2.01, 2.00, 0.015, 0.015, "FAIL"),  # 0.01 + 2 x hypot(0.015, 0.015) = 0.052 > 0.05
    (2.01, 2.00, 0.013, 0.013, "PASS"),  # 0.01 + 2 x 0.0184 = 0.047
    (2.00, 2.00, 0.030, 0.001, "FAIL"),  # the small model's SE alone: 2 x 0.030 = 0.060
    (2.00, 2.00, 0.001, 0.030, "FAIL"),  # the large model's alone
    (2.00, 2.00, 0.024, 0.001, "PASS"),  # 2 x hypot(0.024, 0.001) = 0.048
])
def test_xie_equal_loss_margin_counts_both_standard_errors_twice(tmp_path, small, large, se_s,
                                                                se_l, status):
  res = xie_results()
  res["runs"]["transformer_s"]["end_loss"] |= {"value": small, "se": se_s}
  res["runs"]["transformer_l"]["end_loss"] |= {"value": large, "se": se_l}
  write(tmp_path / "xie2021.json", res)
  row = language.xie2021(tmp_path, "cpu")["claims"][2]
  assert row["status"] == status, row


def test_xie_two_transformers_of_one_size_are_no_size_comparison(tmp_path):
  """Both Transformers of 10,000 parameters: 'larger models' has no larger model (NOT_SHOWN),
  though the one sorted last is better at the same loss."""
  rows = _xie_flat(tmp_path, 0.5, 0.6, transformer_l={"num_params": 10_000})
  assert rows[2]["status"] == "NOT_SHOWN", rows[2]
  assert "fewer than two distinct Transformer sizes" in rows[2]["note"]
  rows = _xie_flat(tmp_path, 0.5, 0.6, transformer_l={"num_params": 10_001})  # control
  assert rows[2]["status"] == "PASS", rows[2]


def test_xie_binomial_standard_error():
  """sqrt(p (1 - p) / n) over n prompts (not n - 1): 0.25 at p = 0.5 over 4, 0 at p = 0 or 1."""
  assert language._binomial_se(0.5, 4) == 0.25
  assert language._binomial_se(0.0, 4) == language._binomial_se(1.0, 4) == 0.0
  assert language._binomial_se(0.5, 0) == 0.5  # no prompts: one, not a division by zero


def test_xie_nan_controls_fail_by_their_nan_alone(tmp_path):
  """xie_nan_n / xie_nan_k with the NaN replaced by its neighbours' mean (n = 2 at k = 5:
  0.3; k = 5 at the largest n: 0.45) PASS the claim the control names: the unmeasured cell is
  all that FAILs it (a control that FAILs for another reason too tests nothing)."""
  from experiments.claims import language_controls as lc
  import json
  for build, row, fill in ((lc.xie_nan_n, 0, 0.3), (lc.xie_nan_k, 1, 0.45)):
    run = tmp_path / build.__name__
    build(run)
    assert language.xie2021(run, "tiny")["claims"][row]["status"] == "FAIL"
    res = json.loads((run / "xie2021.json").read_text())
    cells = [c for r in res["runs"].values() for c in r["probe"]["accuracy"]["id"].values()]
    nans = [(c, i) for c in cells for i, a in enumerate(c["accuracy"]) if a != a]
    assert len(nans) == len(res["runs"]), nans  # one NaN cell per run
    for c, i in nans:
      c["accuracy"][i] = fill
    write(run / "xie2021.json", res)
    assert language.xie2021(run, "tiny")["claims"][row]["status"] == "PASS", build.__name__


def test_xie_zero_shot_compares_n_0_with_n_1(tmp_path):
  """n = 0 at 0.50, n = 1 at 0.30, n = 2 at 0.60 in every cell: zero-shot beats one-shot by
  0.20 (PASS, 'sometimes'); against n = 2 it would lose."""
  res = xie_results()
  for run in res["runs"].values():
    for c in run["probe"]["accuracy"]["id"].values():
      c["accuracy"][:3] = [0.5, 0.3, 0.6]
  write(tmp_path / "xie2021.json", res)
  row = language.xie2021(tmp_path, "cpu")["claims"][4]
  assert row["status"] == "PASS" and "n=0 0.500 vs n=1 0.300" in row["ours"], row


def test_xie_end_loss_without_its_se_names_the_points_not_a_rerun(tmp_path):
  """tiny's xie2021.json: end_loss {value 3.64, se null, points 1}: the loss is there, its SE
  is not, as one logged loss in the last quarter of training cannot carry a fitted line; a
  rerun of the preset logs as few, so the note says that, not 'rerun xie2021'. Control: a
  file without end_loss at all is what a rerun fixes, and says so."""
  res = xie_results()
  for name in [n for n in res["runs"] if n.startswith("transformer")]:
    res["runs"][name]["end_loss"] = {"value": 3.64, "se": None, "steps": [20, 20], "points": 1}
  write(tmp_path / "a" / "xie2021.json", res)
  row = language.xie2021(tmp_path / "a", "tiny")["claims"][2]
  assert row["status"] == "NOT_SHOWN" and "rerun" not in row["note"], row
  assert "no standard error for the end-of-training loss of transformer_s (1 logged loss)" \
      in row["note"] and "needs >= 4: the tiny preset logs too rarely" in row["note"], row
  del res["runs"]["transformer_l"]["end_loss"]
  write(tmp_path / "b" / "xie2021.json", res)
  row = language.xie2021(tmp_path / "b", "tiny")["claims"][2]
  assert row["status"] == "NOT_SHOWN" and "has no end-of-training loss: rerun xie2021" in \
      row["note"], row


@pytest.mark.parametrize("evals, points", [(8, 3), (12, 4)])
def test_xie_end_loss_points_is_the_experiments_own_minimum(tmp_path, evals, points):
  """END_LOSS_POINTS (the note's 'needs >= 4') is where experiments/xie2021.end_loss starts to
  give an SE: losses logged every 100 steps to 800 put 3 in the last quarter (600-800), its
  SE null; to 1200, 4 (900-1200), an SE."""
  import json
  from experiments import xie2021
  from research.workdir import METRICS
  rows = [{"step": 100 * i, "loss": 3.0 - i / 100 + 0.01 * (-1) ** i} for i in range(1, evals + 1)]
  (tmp_path / METRICS).write_text("\n".join(map(json.dumps, rows)))
  end = xie2021.end_loss(tmp_path)
  assert (end["se"] is not None) == (points >= language.END_LOSS_POINTS), end
  assert end["points"] == (points if end["se"] is not None else 1), end
