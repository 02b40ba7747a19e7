"""The emergence-with-scale experiment: the above-chance margin, sharpness, end to end."""
import json
import shutil

import numpy as np
import pytest

from research.analysis import answer_metrics as am
from research.analysis import emergence_plots as ep


def _m(mean, half):
  return {"mean": mean, "lo": mean - half, "hi": mean + half}


def test_beyond_chance_needs_both_the_interval_and_the_absolute_margin():
  # Accuracy-like, chance 0.1, perfect 1: the absolute margin is 0.05 * 0.9 = 0.045.
  assert ep.beyond_chance(_m(0.20, 0.01), 0.1, 1.0, True)
  assert not ep.beyond_chance(_m(0.20, 0.04), 0.1, 1.0, True)     # 0.1 < 3 x 0.04: noise
  assert not ep.beyond_chance(_m(0.14, 0.001), 0.1, 1.0, True)    # resolved but < 0.045
  assert not ep.beyond_chance(_m(0.0, 0.001), 0.1, 1.0, True)     # worse than chance
  # Lower is better (edit distance, chance 3.3, perfect 0): margin 0.165, downwards.
  assert ep.beyond_chance(_m(3.0, 0.02), 3.3, 0.0, False)
  assert not ep.beyond_chance(_m(3.6, 0.02), 3.3, 0.0, False)
  assert not ep.beyond_chance(_m(3.2, 0.02), 3.3, 0.0, False)     # 0.1 < 0.165
  # Exact match with a tiny chance: the absolute margin dominates (~0.05).
  assert not ep.beyond_chance(_m(0.04, 0.004), 1e-4, 1.0, True)
  assert ep.beyond_chance(_m(0.06, 0.005), 1e-4, 1.0, True)
  pts = [_m(0.0, 0.0002), _m(0.01, 0.002), _m(0.3, 0.01), _m(0.9, 0.01)]
  assert ep.first_beyond_chance(pts, 1e-4, 1.0, True) == 2
  assert ep.first_beyond_chance(pts[:2], 1e-4, 1.0, True) is None
  assert ep.first_beyond_chance(pts, 1e-4, 1.0, True, fraction=0.005) == 1
  # Leaving chance lasts: a size beyond chance with chance again above it is a glitch.
  glitch = [_m(0.0, 0.0002), _m(0.3, 0.01), _m(0.0, 0.0002), _m(0.3, 0.01), _m(0.9, 0.01)]
  assert ep.first_beyond_chance(glitch, 1e-4, 1.0, True) == 3          # was 1
  assert ep.first_beyond_chance(glitch[:3], 1e-4, 1.0, True) is None   # back at chance: never
  assert ep.first_for_good([True, False, True, True]) == 2
  assert ep.first_for_good([True, True]) == 0 and ep.first_for_good([]) is None


def test_sharpness_one_step_against_spread():
  step = ep.sharpness([0.0, 0.0, 0.01, 0.9, 0.95], True)           # exact-match-like
  assert step["fraction"] == pytest.approx(0.89 / 0.95) and step["step"] == [2, 3]
  even = ep.sharpness([0.2, 0.4, 0.6, 0.8, 1.0], True)             # smooth
  assert even["fraction"] == pytest.approx(0.25) and even["net_change"] == pytest.approx(0.8)
  down = ep.sharpness([3.3, 2.5, 1.0, 0.9], False)                 # lower is better
  assert down["fraction"] == pytest.approx(1.5 / 2.4) and down["step"] == [1, 2]
  assert ep.sharpness([0.5, 0.7, 0.4], True)["fraction"] is None   # no net improvement
  assert ep.sharpness([0.3], True)["fraction"] is None
  noisy = [0.0, 0.012, 0.008]                                      # within the intervals
  assert ep.sharpness(noisy, True)["fraction"] == pytest.approx(1.5)
  assert ep.sharpness(noisy, True, min_change=0.02)["fraction"] is None


def test_reversal_needs_the_intervals_and_five_percent_of_the_net_change():
  zigzag = [_m(v, 0.005) for v in (0.0, 0.3, 0.0, 0.3, 0.0, 0.06)]
  assert ep.reversal(zigzag, True) == {"drop": pytest.approx(0.3), "from": 1, "to": 2}
  rise = [_m(v, 0.005) for v in (0.0, 0.0, 0.01, 0.6, 1.0)]
  assert ep.reversal(rise, True) is None
  assert ep.reversal(rise + [_m(0.98, 0.005)], True) is None        # under 5% of the net change
  assert ep.reversal(rise + [_m(0.98, 0.02)], True) is None         # within the two intervals
  assert ep.reversal(rise + [_m(0.90, 0.005)], True)["to"] == 5
  # Lower is better; a slow slide back over several sizes counts, not only one step.
  slide = [_m(v, 0.01) for v in (3.0, 1.0, 1.03, 1.06, 1.09, 1.12, 0.9)]
  assert ep.reversal(slide, False) == {"drop": pytest.approx(0.12), "from": 1, "to": 5}


def _answers(first_digit: int, op) -> np.ndarray:
  """Every problem's answer digits, most significant first (the task's layout)."""
  a = np.arange(10 ** first_digit)
  s = op(a[:, None], a[None, :]).ravel()
  m = first_digit + 1 if op is np.add else 2 * first_digit
  return np.stack([(s // 10 ** (m - 1 - j)) % 10 for j in range(m)], axis=1)


def _statistics_only_model(answers_NxM, vocab: int):
  """Teacher-forced probabilities of the model that knows only the answers' distribution:
  at digit j it predicts p(d_j | true d_<j), counted from the answers (as the audit did)."""
  n, m = answers_NxM.shape
  probs = np.zeros((n, m, vocab))
  for j in range(m):
    for row in np.unique(answers_NxM[:, :j], axis=0):
      same = np.all(answers_NxM[:, :j] == row, axis=1)
      probs[same, j, :10] = np.bincount(answers_NxM[same, j], minlength=10) / same.sum()
  return probs


@pytest.mark.parametrize("digits,op", [(2, np.multiply), (1, np.add)])
def test_a_model_of_the_answer_statistics_alone_is_at_chance(digits, op):
  # Token accuracy, log-likelihood and Brier are teacher-forced: a model of the answers'
  # statistics sees the true prefix and conditions on it. Chance must equal what that
  # model scores through the metric code itself, so it is never above the margin (per-
  # position marginals put it 0.05 above chance in token accuracy on 2-digit products).
  ans = _answers(digits, op)
  probs = _statistics_only_model(ans, 14)  # the digit task's vocabulary
  teacher = probs.argmax(-1)
  values = am.per_problem(teacher, ans, teacher, probs)
  chance = am.chance_levels(ans, 10)
  for name in ("token_accuracy", "log_likelihood", "brier"):
    assert chance[name] == pytest.approx(values[name].mean(), abs=1e-12), name
    tight = {"mean": values[name].mean(), "lo": values[name].mean() - 1e-9,
             "hi": values[name].mean() + 1e-9}
    assert not ep.beyond_chance(tight, chance[name], ep.PERFECT[name], am.HIGHER_IS_BETTER[name])
  # Generated answers: no fixed answer beats the mode's exact match; the greedy decoding of
  # the answer statistics is one of the strings whose best edit distance is chance.
  string = []
  for j in range(ans.shape[1]):  # it follows its own prefix, not the true one
    follows = np.all(ans[:, :j] == string, axis=1)
    string.append(np.argmax(np.bincount(ans[follows, j], minlength=10)))
  greedy = np.tile(string, (len(ans), 1))
  assert chance["edit_distance"] <= am.edit_distance(greedy, ans).mean() + 1e-12
  assert chance["exact_match"] >= np.all(greedy == ans, 1).mean()
  # Control: a model better than the answer statistics (the true answers) is above chance.
  onehot = np.eye(14)[ans]
  perfect = am.per_problem(ans, ans, ans, onehot)
  assert perfect["token_accuracy"].mean() == 1 and perfect["log_likelihood"].max() == 0
  for name, v in perfect.items():
    m = {"mean": v.mean(), "lo": v.mean() - 1e-9, "hi": v.mean() + 1e-9}
    assert ep.beyond_chance(m, chance[name], ep.PERFECT[name], am.HIGHER_IS_BETTER[name]), name


def test_chance_from_a_sample_is_cross_fitted_not_read_off_the_sample():
  # 5 uniform digits (exact chance: 0.1 per token, 5 log 0.1, Brier 0.9): 20,000 draws leave
  # most 4-digit prefixes seen once, so read off the sample they would look predictable.
  rng = np.random.default_rng(0)
  est = am.chance_levels(rng.integers(0, 10, (20_000, 5)), 10, sample=True)
  assert est["token_accuracy"] == pytest.approx(0.1, abs=0.01)
  # Fitted on part of the sample, the estimate errs low, by less than the 5% margin (0.58).
  assert 5 * np.log(0.1) - 0.5 < est["log_likelihood"] <= 5 * np.log(0.1)
  assert 0.9 <= est["brier"] < 0.93
  # Where the sample covers the prefixes (2-digit products: 100,000 draws of 10,000
  # problems' answers), the estimate is the exact chance.
  ans = _answers(2, np.multiply)
  exact = am.chance_levels(ans, 10)
  est = am.chance_levels(ans[rng.integers(0, len(ans), 100_000)], 10, sample=True)
  for name, tol in (("token_accuracy", 0.005), ("log_likelihood", 0.1), ("brier", 0.005)):
    assert est[name] == pytest.approx(exact[name], abs=tol), name


def _argv(workdir):
  return ["--preset=tiny", f"--workdir={workdir}", "--sizes=0,1", "--devices=1",
          "--set", "train.compile_cache_dir=", "--set", "train.peak_flops=1e11",
          "--set", "train.checkpoint_every=0"]


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
  """Two sizes of the tiny sweep trained once, for the tests that read or rerun them."""
  from experiments import schaeffer2023
  out = tmp_path_factory.mktemp("emergence") / "em"
  assert schaeffer2023.main(_argv(out)) == 0
  return out


def test_tiny_sweep_end_to_end(tiny_sweep, tmp_path):
  from experiments import schaeffer2023

  out, argv = tiny_sweep, _argv(tiny_sweep)
  saved = json.loads((out / "emergence_scale.json").read_text())
  names = set(saved["metrics"])
  assert names == {"exact_match", "token_accuracy", "edit_distance", "log_likelihood", "brier"}
  assert len(saved["sizes"]) == 2 and not saved["failed"]
  params = [s["num_params"] for s in saved["sizes"]]
  assert params == sorted(params) and params[0] < params[1]
  for s in saved["sizes"]:
    assert set(s["metrics"]) == names and s["train_flops"] > 0
    assert all(v["lo"] <= v["mean"] <= v["hi"] for v in s["metrics"].values())
  assert set(saved["first_beyond_chance"]) == names == set(saved["sharpness"])
  assert (out / "figures" / "emergence_scale.png").stat().st_size > 10_000
  # The file says what chance and the summed log-likelihood are; the claims scorer reads it.
  assert "input-independent" in saved["chance_definition"] and set(saved["chance_definitions"]) == names
  assert "summed over the answer tokens" in saved["metric_definitions"]["log_likelihood"]
  assert "sum over answer tokens" in ep.TITLES["log_likelihood"]
  assert saved["task"]["held_out_fraction"] == 0.1
  from experiments.claims import emergence
  rows = emergence.schaeffer2023(out, "tiny")["claims"]
  # Five ordering/chance claims plus the smoothness of the continuous metrics (issue 14).
  assert len(rows) == 6 and any("input-independent" in r["note"] for r in rows)
  # A rerun reuses both finished sizes (same wall time recorded) and rewrites the files.
  assert schaeffer2023.main(argv) == 0
  again = json.loads((out / "emergence_scale.json").read_text())
  assert [s["wall_s"] for s in again["sizes"]] == [s["wall_s"] for s in saved["sizes"]]
  # The file's wall_s is the sizes' training seconds, kept too (it was the call's own time:
  # the rerun's seconds of reuse replaced it); this call's time is call_wall_s.
  assert again["wall_s"] == saved["wall_s"] > 0 and again["call_wall_s"] > 0
  # Seeds (issue 14): another seed is another replicate, so its result file differs; the same
  # seed again (the negative control) gives the same file, so the difference is the seed's.
  size0 = lambda d: json.loads((d / "emergence_scale.json").read_text())["sizes"][0]["metrics"]
  one = ["--preset=tiny", "--sizes=0"] + argv[3:]
  assert schaeffer2023.main([f"--workdir={tmp_path / 'seed1'}", "--seed=1"] + one) == 0
  assert schaeffer2023.main([f"--workdir={tmp_path / 'seed0'}", "--seed=0"] + one) == 0
  assert size0(tmp_path / "seed1") != size0(out)
  assert size0(tmp_path / "seed0") == size0(out)


def test_a_copied_or_moved_sweep_is_read_from_its_own_runs(tiny_sweep, tmp_path):
  """results.jsonl's probe paths are where the runs trained; the sizes are read from
  WORKDIR/runs/NAME/probes of the WORKDIR given. Before: a copy took the original's probes
  (edited there, exit 0), and a moved sweep found none (every size failed, exit 6)."""
  from experiments import schaeffer2023

  metrics = lambda d: [s["metrics"] for s in
                       json.loads((d / "emergence_scale.json").read_text())["sizes"]]
  saved = metrics(tiny_sweep)
  assert saved[0] != saved[1]
  backup, copy, moved = tmp_path / "backup", tmp_path / "copy", tmp_path / "moved"
  shutil.copytree(tiny_sweep, backup)  # the module's sweep is put back as it was
  shutil.copytree(tiny_sweep, copy)
  try:
    small, large = sorted((tiny_sweep / "runs").iterdir())
    shutil.copy(large / "probes" / "arithmetic.json", small / "probes" / "arithmetic.json")
    assert schaeffer2023.main(_argv(copy)) == 0
    assert metrics(copy) == saved
    tiny_sweep.rename(moved)  # where its rows say its probes are, nothing now
    assert schaeffer2023.main(_argv(moved)) == 0
    assert metrics(moved) == [saved[1], saved[1]]  # its own files, edited
  finally:
    shutil.rmtree(tiny_sweep, ignore_errors=True)
    shutil.rmtree(moved, ignore_errors=True)
    backup.rename(tiny_sweep)


def test_a_reversal_needs_a_drop_beyond_both_half_widths():
  """A drop of 0.15 between two points of half-width 0.1 each is within their noise (0.2);
  one of 0.25 is a resolved going-back (a mutation audit's max(half) flagged 0.15 unseen)."""
  pts = lambda means: [{"mean": m, "lo": m - 0.1, "hi": m + 0.1} for m in means]
  assert ep.reversal(pts([0.0, 0.5, 0.35, 0.9]), True) is None
  worst = ep.reversal(pts([0.0, 0.5, 0.25, 0.9]), True)
  assert worst is not None and (worst["from"], worst["to"]) == (1, 2)


def test_beyond_chance_is_strictly_beyond_three_half_widths():
  """A gain of exactly 3 half-widths is not beyond chance (dyadic numbers, so the equality is
  exact: chance 0.25, mean 0.625, interval [0.5, 0.75], gain 0.375 = 3 x 0.125); a slightly
  narrower interval is. A mutation audit's >= went unseen."""
  at = {"mean": 0.625, "lo": 0.5, "hi": 0.75}
  assert not ep.beyond_chance(at, 0.25, 1.0, True)
  assert ep.beyond_chance(at | {"lo": 0.5 + 2 ** -10}, 0.25, 1.0, True)
  # lower is better: chance 0.625, mean 0.25, the same interval width
  assert not ep.beyond_chance({"mean": 0.25, "lo": 0.125, "hi": 0.375}, 0.625, 0.0, False)


def test_reversal_floor_is_a_fraction_of_the_net_change_and_sharpness_needs_a_positive_one():
  """The floor is `fraction` of |last - first| (the net change), not of the curve's range:
  0, 1, 0.6 has net 0.6, so at fraction 0.5 a drop of 0.4 (over 0.3, under 0.5 of the range)
  is a reversal; at the default 5%, 0, 0.5, 1, 0.952 (drop 0.048 over 0.0476). A net change of
  exactly 0 (or exactly min_change) is none: sharpness says so rather than dividing by it."""
  pts = lambda means: [{"mean": m, "lo": m - 0.001, "hi": m + 0.001} for m in means]
  worst = ep.reversal(pts([0.0, 1.0, 0.6]), True, fraction=0.5)
  assert (worst["from"], worst["to"]) == (1, 2) and worst["drop"] == pytest.approx(0.4)
  assert ep.reversal(pts([0.0, 1.0, 0.8]), True, fraction=0.5) is None  # 0.2 under 0.5 x 0.8
  worst = ep.reversal(pts([0.0, 0.5, 1.0, 0.952]), True)
  assert (worst["from"], worst["to"]) == (2, 3)
  assert ep.sharpness([0.5, 0.75, 0.5], True) == {"fraction": None, "step": None, "net_change": 0.0}
  assert ep.sharpness([0.25, 0.5], True, min_change=0.25)["fraction"] is None
  assert ep.sharpness([0.25, 0.5], True, min_change=0.125)["fraction"] == 1.0


def test_sharpness_takes_the_biggest_improvement_not_the_biggest_move():
  """0, 0.4, -0.5, 0.2: steps +0.4, -0.9, +0.7. The biggest improvement is the last (0.7 of a
  0.2 net change: 3.5, the curve went back); the drop of 0.9 is bigger but no improvement."""
  out = ep.sharpness([0.0, 0.4, -0.5, 0.2], True)
  assert out["step"] == [2, 3] and out["fraction"] == pytest.approx(3.5)
  assert out["net_change"] == pytest.approx(0.2)
