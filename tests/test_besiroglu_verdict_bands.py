"""The Besiroglu 2024 scorer's bands at and just past their edges (experiments/claims/
emergence.py): the point within 0.25 published SE, the bootstrap SE within x1.3 either way,
both ends closed; the rows a fit without a bootstrap, or without an all-points fit, gets.
(tests/test_claims_emergence.py has the scorer's main cases.)"""
import pytest

from claims_fixtures import statuses, write
from experiments.claims import emergence

# Binary-exact values: 0.25 SE and the band's ends are reached exactly, not up to rounding.
TABLE = {"E": (2.0, 0.03125), "A": (512.0, 128.0), "B": (2048.0, 1024.0),
         "alpha": (0.375, 0.015625), "beta": (0.375, 0.015625)}


def scored(run_dir, fit=None, se=None, monkeypatch=None, all_points=True, beta_all=0.453,
           bootstrap=4000):
  """Scores a fit file with the given values and SEs (default: the published ones)."""
  if monkeypatch is not None:
    monkeypatch.setattr(emergence, "PUBLISHED", TABLE)
  table = emergence.PUBLISHED
  fit = {k: v for k, (v, _) in table.items()} | (fit or {})
  se = {k: s for k, (_, s) in table.items()} | (se or {})
  res = {"params": {k: {"fit": fit[k], "se": se[k]} for k in table}, "n_points": 240,
         "n_starts": 4500, "bootstrap": bootstrap, "outside_bootstrap_5_95": [],
         "compute_optimal": [{"C": c, "tokens_per_param": 20.0} for c in (1e21, 1e25)]}
  write(run_dir / "scaling_fit.json", res)
  if all_points:
    write(run_dir / "all_points" / "scaling_fit.json",
          res | {"params": res["params"] | {"beta": {"fit": beta_all, "se": None}}})
  return emergence.besiroglu2024(run_dir, "cpu")


def test_point_exactly_a_quarter_published_se_off_passes(tmp_path, monkeypatch):
  s = scored(tmp_path, fit={"A": 512.0 + 32.0}, monkeypatch=monkeypatch)
  assert statuses(s)[1] == "PASS", s["claims"][1]


def test_point_just_past_a_quarter_published_se_fails(tmp_path):
  """0.27 SE off fails: the band is 0.25 SE, not a rounder 0.3 (0.3 itself sits on the
  rounding edge of a 0.3 band, so it alone cannot tell them apart)."""
  pv, pse = emergence.PUBLISHED["alpha"]
  s = scored(tmp_path, fit={"alpha": pv + 0.27 * pse})
  assert statuses(s)[3] == "FAIL", s["claims"][3]


@pytest.mark.parametrize("ratio, status", [(1 / 1.3, "PASS"), (1.3, "PASS"), (1.35, "FAIL"),
                                           (1.5, "FAIL")])
def test_bootstrap_se_band_is_closed_at_both_ends_of_x13(tmp_path, monkeypatch, ratio, status):
  """SE = pse / 1.3 and pse * 1.3 are in [lo, hi]; 1.35x and 1.5x published are too wide."""
  se = {k: (s / emergence.SE_RATIO if ratio < 1 else s * ratio) for k, (_, s) in TABLE.items()}
  if ratio == 1.3:
    se = {k: s * emergence.SE_RATIO for k, (_, s) in TABLE.items()}
  s = scored(tmp_path, se=se, monkeypatch=monkeypatch)
  assert statuses(s)[:5] == [status] * 5, s["claims"][:5]


def test_a_fit_without_bootstrap_standard_errors_fails_every_value_row(tmp_path):
  """No bootstrap (se None): the SE half of each row is not shown, so no row passes."""
  s = scored(tmp_path, se={k: None for k in emergence.PUBLISHED})
  assert statuses(s)[:5] == ["FAIL"] * 5
  assert all("SE -" in r["ours"] and "no bootstrap" in r["note"] for r in s["claims"][:5])


def test_the_all_points_row_reads_the_all_points_fit_and_lists_its_file(tmp_path):
  """The 240-point fit's beta is the published 0.366; the all-points file's 0.453 is what the
  self-check reads (0.366 would FAIL it), and both files are the claims' results."""
  s = scored(tmp_path, beta_all=0.46)
  assert statuses(s)[-1] == "PASS" and s["claims"][-1]["ours"] == 0.46
  assert s["results"] == [str(tmp_path / "scaling_fit.json"),
                          str(tmp_path / "all_points" / "scaling_fit.json")]
  assert s["seedless"] is True


def test_the_all_points_target_is_0453_within_0020(tmp_path):
  for beta, status in ((0.434, "PASS"), (0.472, "PASS"), (0.4735, "FAIL"), (0.4325, "FAIL")):
    s = scored(tmp_path / str(beta), beta_all=beta)
    assert statuses(s)[-1] == status, (beta, s["claims"][-1])


def test_without_the_all_points_fit_its_row_is_not_shown(tmp_path):
  s = scored(tmp_path, all_points=False)
  assert statuses(s) == ["PASS"] * 6 + ["NOT_SHOWN"]
  assert s["results"] == [str(tmp_path / "scaling_fit.json")]


def test_minimum_resamples_put_the_bootstrap_se_noise_at_a_tenth_of_the_band():
  """The relative SE of a bootstrap SE is about 1/sqrt(2(B-1)); MIN_BOOTSTRAP is the fewest
  resamples that keep it within a tenth of the x1.3 band's narrower side (1 - 1/1.3 = 23%):
  940. Tiny's 10 give 24%, the whole band; the cpu preset's 4000 give 1.1%."""
  side = 1 - 1 / emergence.SE_RATIO
  assert emergence.MIN_BOOTSTRAP == 940
  assert emergence.bootstrap_se_noise(emergence.MIN_BOOTSTRAP) <= 0.1 * side
  assert emergence.bootstrap_se_noise(emergence.MIN_BOOTSTRAP - 1) > 0.1 * side
  assert emergence.bootstrap_se_noise(10) > side > emergence.bootstrap_se_noise(4000) * 20


@pytest.mark.parametrize("ratio", [1.0, 1.28, 1 / 1.3, 1.35])
def test_too_few_resamples_leave_the_se_half_not_shown(tmp_path, monkeypatch, ratio):
  """tiny's file (B = 10): the SE half is NOT_SHOWN whatever the SE (beta 1.28x PASSed and
  alpha 0.75x FAILed on tiny: coin flips at 24% noise), with a note naming the resamples it
  needs and the preset that has them. Negative control: the same file with the cpu preset's
  B = 4000 (or exactly MIN_BOOTSTRAP) is scored: PASS inside the band, FAIL outside."""
  se = {k: s * ratio for k, (_, s) in TABLE.items()}
  tiny = scored(tmp_path / "tiny", se=se, monkeypatch=monkeypatch, bootstrap=10)
  assert statuses(tiny)[:5] == ["NOT_SHOWN"] * 5, tiny["claims"][:5]
  for r in tiny["claims"][:5]:
    assert "SE not scored: 10 bootstrap resamples" in r["note"], r["note"]
    assert "needs >= 940" in r["note"] and "--preset=cpu" in r["note"], r["note"]
  inside = 1 / emergence.SE_RATIO <= ratio <= emergence.SE_RATIO
  for boot in (4000, emergence.MIN_BOOTSTRAP):
    cpu = scored(tmp_path / str(boot), se=se, monkeypatch=monkeypatch, bootstrap=boot)
    assert statuses(cpu)[:5] == ["PASS" if inside else "FAIL"] * 5, (boot, cpu["claims"][:5])
    assert all("SE not scored" not in r["note"] for r in cpu["claims"][:5])


def test_too_few_resamples_still_fail_a_point_off_the_published_value(tmp_path):
  """The point half is kept: with B = 10, a value 0.27 published SE off FAILs its row (one
  part of the claim is already false); its neighbours, on the value, are NOT_SHOWN."""
  pv, pse = emergence.PUBLISHED["alpha"]
  s = scored(tmp_path, fit={"alpha": pv + 0.27 * pse}, bootstrap=10)
  assert statuses(s)[:5] == ["NOT_SHOWN"] * 3 + ["FAIL", "NOT_SHOWN"], s["claims"][:5]

