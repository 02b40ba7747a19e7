"""experiments/reproduce.py: --list, claim scoring on hand-built result files, M*, one NAME end to end."""
import json

import pytest

from experiments import gallery, raventos2023, reproduce
from experiments.claims import classification, language, regression, rows


def _write(path, obj):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(obj))
  return path


def _statuses(summary):
  return [r["status"] for r in summary["claims"]]


# ----------------------------------------------------------------------------- --list
def test_list_names_every_paper_with_times_per_preset(capsys):
  assert reproduce.main(["--list"]) == 0
  out = capsys.readouterr().out
  for name in ("garg2022", "raventos2023", "chan2022", "reddy2023", "olsson2022", "xie2021",
               "schaeffer2023", "nanda2023", "besiroglu2024"):
    assert name in out
  assert out.count("tiny :") == out.count("cpu  :") == out.count("paper:") == len(reproduce.NAMES)
  assert "unmeasured" in out                       # never an invented number
  assert "no such preset" in out                   # schaeffer2023 has no paper preset
  assert "6 min 45 s" in out                       # garg cpu time, from the README


def test_unavailable_preset_is_refused(tmp_path, capsys):
  assert reproduce.main(["schaeffer2023", "--preset=paper", f"--workdir={tmp_path}"]) == 2
  assert "no 'paper' preset" in capsys.readouterr().err


# ----------------------------------------------------------------------------- scoring machinery
def _garg_probe(model, d=5, n=16, baseline=3.0):
  ls = [max(d - k, 0) / d for k in range(n)]
  flat = lambda v: {"mean": v, "lo": v, "hi": v}
  return {"k": list(range(n)), "n_dims": d, "step": 100,
          "curves": {"model": flat(model), "least_squares": flat(ls),
                     "averaging": flat([baseline] * n),
                     "nearest_neighbours": flat([baseline] * n)}}


def test_garg_claims_pass_and_fail_from_probe_files(tmp_path):
  d, n = 5, 16
  ls = [max(d - k, 0) / d for k in range(n)]
  good = tmp_path / "good"
  _write(good / "garg2022" / "run" / "probes" / "icl_regression.json",
         _garg_probe([v + 0.02 for v in ls]))
  s = reproduce.summarize("garg2022", "cpu", good)
  # No distribution_shift.json yet: its two claims say how to get it.
  assert _statuses(s) == ["PASS", "PASS", "PASS", "PASS", "NOT_SHOWN", "NOT_SHOWN", "NOT_SHOWN"]
  assert s["counts"] == {"PASS": 4, "FAIL": 0, "NOT_SHOWN": 3}
  assert "rerun garg2022" in s["claims"][-1]["note"]
  assert s["claims"][2]["ours"] == pytest.approx(0.02)          # computed from the file
  assert "restated for d=5, 16 points" in s["claims"][0]["note"]
  saved = json.loads((good / "garg2022" / "summary.json").read_text())
  assert saved["claims"] == s["claims"] and saved["error"] is None
  assert "| claim | paper | ours | tolerance | status | note |" in (
      good / "garg2022" / "summary.md").read_text()

  bad = tmp_path / "bad"
  _write(bad / "garg2022" / "run" / "probes" / "icl_regression.json",
         _garg_probe([0.8] * n, baseline=1.0))
  s = reproduce.summarize("garg2022", "paper", bad)
  assert _statuses(s)[:4] == ["FAIL", "FAIL", "FAIL", "FAIL"]
  assert "restated" not in s["claims"][0]["note"]               # paper preset: the paper's claim


def _grokking(train_step, test_step, share=0.8, control_step=None):
  run = lambda tr, te, mx: {"train_acc_099_step": tr, "test_acc_095_step": te,
                            "max_test_accuracy": mx, "final_key_freqs": [3, 9, 17, 30, 41],
                            "final": {"train_accuracy": 1.0, "test_accuracy": mx,
                                      "key_freq_share": share}}
  return {"config": {"train": {"num_steps": 2500}, "task": {"modulus": 97},
                     "optim": {"weight_decay": 1.0, "learning_rate": 0.01}},
          "runs": {"wd=1": run(train_step, test_step, 1.0 if test_step else 0.4),
                   "wd=0": run(train_step, control_step, 1.0 if control_step else 0.3)}}


@pytest.mark.parametrize("result, expected", [
    (_grokking(100, 1200), ["PASS", "PASS", "PASS", "PASS", "NOT_SHOWN"]),
    # test catches up with train at once (no delay), weak frequencies, the control groks too
    (_grokking(100, 200, share=0.2, control_step=300), ["PASS", "FAIL", "FAIL", "FAIL", "NOT_SHOWN"]),
    # nothing groks: the weight-decay-0 control cannot show anything
    (_grokking(1000, None), ["FAIL", "FAIL", "NOT_SHOWN", "PASS", "NOT_SHOWN"]),
])
def test_nanda_claims(tmp_path, result, expected):
  _write(tmp_path / "nanda2023" / "run" / "grokking.json", result)
  s = reproduce.summarize("nanda2023", "cpu", tmp_path)
  assert _statuses(s) == expected
  assert all(set(r) == set(reproduce.COLUMNS) for r in s["claims"])


@pytest.mark.parametrize("restricted_first, expected", [(True, "PASS"), (False, "FAIL")])
def test_nanda_progress_measure_from_metrics(tmp_path, restricted_first, expected):
  steps = [100 * i for i in range(1, 11)]
  early = [4, 4, 3, 1, 0.5, 0.5, 0.4, 0.4, 0.4, 0.4]   # half its fall by step 400
  late = [12, 12, 12, 12, 12, 12, 12, 3, 0.2, 0.1]       # half its fall by step 800
  restricted, test = (early, late) if restricted_first else (late, early)
  work = tmp_path / "wd_1"
  work.mkdir()
  (work / "metrics.jsonl").write_text("\n".join(json.dumps(
      {"step": s, "eval_restricted_loss": r, "eval_test_loss": t})
      for s, r, t in zip(steps, restricted, test)))
  result = _grokking(100, 1200)
  result["runs"]["wd=1"]["workdir"] = str(work)
  _write(tmp_path / "nanda2023" / "run" / "grokking.json", result)
  row = reproduce.summarize("nanda2023", "cpu", tmp_path)["claims"][-1]
  assert row["status"] == expected
  assert row["ours"] == (f"restricted at step {400 if restricted_first else 800}, "
                         f"test at step {800 if restricted_first else 400}")


def test_missing_results_are_an_error_not_a_pass(tmp_path):
  s = reproduce.summarize("olsson2022", "cpu", tmp_path)
  assert s["claims"] == [] and "could not read" in s["error"]
  assert json.loads((tmp_path / "olsson2022" / "summary.json").read_text())["error"]


def test_claim_status_rules():
  assert rows.claim("c", 1, None, "-", True)["status"] == "NOT_SHOWN"   # nothing measured
  assert rows.claim("c", 1, 0.5, "-", None)["status"] == "NOT_SHOWN"
  assert rows.claim("c", 1, 0.5, "-", False)["status"] == "FAIL"
  assert rows.claim("c", 1, 0.5, "-", True)["status"] == "PASS"
  text = reproduce.table([rows.claim("a|b", 1.23456, [1, 2], "x", True)])
  assert "a\\|b" in text and "1.235" in text and "1, 2" in text


def test_index_links_tables_and_figures(tmp_path):
  _write(tmp_path / "garg2022" / "run" / "probes" / "icl_regression.json", _garg_probe([0.8] * 16))
  fig = tmp_path / "garg2022" / "run" / "figures" / "icl_regression.png"
  fig.parent.mkdir()
  fig.write_bytes(b"png")
  s = reproduce.summarize("garg2022", "cpu", tmp_path)
  index = reproduce.write_index(tmp_path, "cpu", {
      "garg2022": {"status": "done, 1 s", "summary": s},
      "schaeffer2023": {"status": "skipped (no paper preset)"}})
  text = index.read_text()
  assert "[summary.json](garg2022/summary.json)" in text
  assert "![icl_regression.png](garg2022/run/figures/icl_regression.png)" in text
  assert "| schaeffer2023 | - | - | - | - | skipped (no paper preset) |" in text
  assert text.count("| claim | paper |") == 1


def test_gallery_rewrites_only_its_readme_section(tmp_path):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  work = tmp_path / "work"
  _write(work / "garg2022" / "run" / "probes" / "icl_regression.json", _garg_probe([0.01] * 16))
  fig = work / "garg2022" / "run" / "figures" / "icl_regression.png"
  fig.parent.mkdir()
  plt.figure(figsize=(20, 5), dpi=100).savefig(fig)  # 2000 px wide: must be shrunk
  reproduce.summarize("garg2022", "cpu", work, wall_s=125.0)
  readme = tmp_path / "README.md"
  readme.write_text(f"# top\n{gallery.GALLERY_START}\nold\n{gallery.GALLERY_END}\n# bottom\n")
  gallery.write_gallery("cpu", work, readme=readme, assets=tmp_path / "docs" / "gallery")
  text = readme.read_text()
  assert text.startswith("# top\n") and text.endswith("# bottom\n") and "old" not in text
  assert "`python -m experiments.reproduce garg2022 --preset=cpu` | 2 min 05 s |" in text
  assert "| raventos2023 | - | not run for the cpu preset |" in text
  assert "CPU cores" in text  # where the run happened, recorded by summarize
  assert "![garg2022 icl_regression](docs/gallery/garg2022_icl_regression.png)" in text
  from PIL import Image
  assert Image.open(tmp_path / "docs" / "gallery" / "garg2022_icl_regression.png").width == \
      gallery.GALLERY_WIDTH
  # A summary of another preset is listed as not run, never mixed in.
  gallery.write_gallery("paper", work, readme=readme, assets=tmp_path / "g")
  assert "| garg2022 | - | not run for the paper preset |" in readme.read_text()
  for bad in ("no markers", f"{gallery.GALLERY_END}\n{gallery.GALLERY_START}\n",
              f"{gallery.GALLERY_START}\n{gallery.GALLERY_START}\n{gallery.GALLERY_END}"):
    readme.write_text(bad)
    with pytest.raises(ValueError, match="exactly one gallery section"):
      gallery.write_gallery("cpu", work, readme=readme, assets=tmp_path / "g")
    assert readme.read_text() == bad


# ----------------------------------------------------------------------------- M*
def _probe(model, ridge, dmmse):
  flat = lambda v: {"mean": v, "lo": v, "hi": v}
  return {"k": list(range(len(model))),
          "curves": {"model": flat(model), "ridge": flat(ridge), "dmmse": flat(dmmse)}}


def test_distances_and_m_star_on_hand_built_curves():
  ridge, dmmse = [1.0, 0.5, 0.3, 0.2], [1.2, 1.0, 0.9, 0.8]
  d = raventos2023.distances(_probe(ridge, ridge, dmmse))
  assert d == {"d_ridge": 0.0, "d_dmmse": pytest.approx(0.475), "closer_to": "ridge"}
  d = raventos2023.distances(_probe([1.1, 0.9, 0.8, 0.8], ridge, dmmse))
  assert d["closer_to"] == "dmmse"
  assert d["d_dmmse"] == pytest.approx((0.1 + 0.1 + 0.1 + 0.0) / 4)
  pts = [{"M": 2 ** 9, "d_ridge": 0.1, "d_dmmse": 0.3}, {"M": 2, "d_ridge": 0.5, "d_dmmse": 0.1},
         {"M": 2 ** 5, "d_ridge": 0.3, "d_dmmse": 0.2}, {"M": 2 ** 13, "d_ridge": 0.05, "d_dmmse": 0.4}]
  assert raventos2023.estimate_m_star(pts) == 2 ** 9       # smallest M closer to Ridge
  assert raventos2023.estimate_m_star(pts[1:3]) is None
  assert raventos2023.estimate_m_star([]) is None


def _raventos(grid, closer_from):
  pools = [{"M": m, "d_ridge": 0.1 if m >= closer_from else 0.5,
            "d_dmmse": 0.5 if m >= closer_from else 0.1} for m in grid]
  return {"n_dims": 8, "n_points": 16, "num_steps": 4000, "grid": grid, "pools": pools,
          "model": {"num_layers": 4, "width": 64, "num_heads": 2},
          "distance": raventos2023.DISTANCE, "ensemble": raventos2023.ENSEMBLE_NOTE,
          "m_star": raventos2023.estimate_m_star(pools)}


@pytest.mark.parametrize("grid, closer_from, expected", [
    ([2 ** i for i in range(1, 16, 2)], 2 ** 13, ["PASS", "PASS", "PASS"]),
    ([2 ** i for i in range(1, 16, 2)], 2 ** 3, ["PASS", "PASS", "FAIL"]),      # M* = 8: far too low
    ([2 ** i for i in range(1, 16, 2)], 2 ** 20, ["PASS", "FAIL", "NOT_SHOWN"]),  # grid too short
    ([2 ** i for i in range(1, 20, 2)], 2 ** 20, ["PASS", "FAIL", "FAIL"]),      # grid covers it
])
def test_raventos_claims(tmp_path, grid, closer_from, expected):
  _write(tmp_path / "raventos2023" / "run" / "raventos2023.json", _raventos(grid, closer_from))
  s = reproduce.summarize("raventos2023", "cpu", tmp_path)
  assert _statuses(s) == expected
  assert "one vmapped ensemble" in s["notes"][0]
  assert "cpu preset: D=8" in s["claims"][2]["note"]


# ----------------------------------------------------------------------------- end to end
def test_besiroglu_tiny_end_to_end(tmp_path, capsys):
  assert reproduce.main(["besiroglu2024", "--preset=tiny", f"--workdir={tmp_path}"]) == 0
  out = capsys.readouterr().out
  assert "| claim | paper | ours | tolerance | status | note |" in out
  s = json.loads((tmp_path / "besiroglu2024" / "summary.json").read_text())
  assert s["error"] is None and len(s["claims"]) == 7
  assert s["counts"] == {"PASS": 7, "FAIL": 0, "NOT_SHOWN": 0}
  fit = json.loads((tmp_path / "besiroglu2024" / "run" / "scaling_fit.json").read_text())
  e_row = next(r for r in s["claims"] if r["claim"].endswith(": E"))
  assert e_row["ours"] == round(fit["params"]["E"]["fit"], 4)  # from the result file
  assert s["figures"] and s["figures"][0].endswith("scaling_fit.png")
  # A rerun reuses both fits.
  assert reproduce.main(["besiroglu2024", "--preset=tiny", f"--workdir={tmp_path}"]) == 0
  assert capsys.readouterr().out.count("reusing") == 2


@pytest.mark.slow
def test_raventos_tiny_end_to_end(tmp_path):
  assert reproduce.main(["raventos2023", "--preset=tiny", f"--workdir={tmp_path}"]) == 0
  res = json.loads((tmp_path / "raventos2023" / "run" / "raventos2023.json").read_text())
  assert [p["M"] for p in res["pools"]] == [2, 16, 128] and not res["failed"]
  for p in res["pools"]:
    assert p["closer_to"] in ("ridge", "dmmse") and p["d_ridge"] >= 0 and p["d_dmmse"] >= 0
  assert res["m_star"] == raventos2023.estimate_m_star(res["pools"])
  s = json.loads((tmp_path / "raventos2023" / "summary.json").read_text())
  assert len(s["claims"]) == 3 and s["figures"]


def test_train_or_reuse_keeps_a_finished_run(tmp_path, tiny_config):
  from research import train
  tiny_config.train.peak_flops = 1e11
  first = train.train_or_reuse(tiny_config, str(tmp_path))
  stamp = (tmp_path / "summary.json").stat().st_mtime_ns
  again = train.train_or_reuse(tiny_config, str(tmp_path))
  assert again == first and "final_loss" in again                 # final metrics kept
  assert (tmp_path / "summary.json").stat().st_mtime_ns == stamp  # nothing rewritten
  # Garg's distribution-shift probe reads the finished run and feeds its two claims.
  shift = json.loads(reproduce.write_shift_probe(tmp_path).read_text())
  assert set(shift["shifts"]) == {"none", "scale_0.5", "scale_2", "scale_3", "orthant", "skewed"}
  assert all(len(c["model"]) == len(shift["k"]) for c in shift["shifts"].values())
  assert [r["status"] in ("PASS", "FAIL") for r in
          regression._garg_shifts(tmp_path / "distribution_shift.json", "")] == [True, True]


def test_a_shrunk_preset_fail_says_why_and_points_to_paper():
  row = lambda ok: rows.claim("c", 1, 2, "t", ok, "setup.")
  cpu = rows.explain_fail(row(False), "cpu", "too few steps.")
  assert cpu["note"] == ("setup. Why the cpu preset misses it: too few steps. The `paper` preset "
                         "is the paper's setting for this claim.")
  assert rows.explain_fail(row(False), "paper", "x")["note"] == "setup."
  assert rows.explain_fail(row(True), "cpu", "x")["note"] == "setup."


def _shift_file(path, errors):
  d, n = 5, 16
  shifts = {name: {"model": [1.0] * d + [e] * (n - d), "least_squares": [0.0] * n}
            for name, e in errors.items()}
  return _write(path, {"k": list(range(n)), "n_dims": d, "num_prompts": 64, "shifts": shifts})


@pytest.mark.parametrize("errors, expected", [
    ({"none": 0.05, "scale_0.5": 0.07, "scale_2": 0.1, "scale_3": 0.23, "orthant": 0.1,
      "skewed": 0.08}, ["PASS", "PASS"]),
    # a moderate shift breaks the model; scaling does not hurt it
    ({"none": 0.05, "scale_0.5": 0.07, "scale_2": 0.06, "scale_3": 0.07, "orthant": 0.4,
      "skewed": 0.08}, ["FAIL", "FAIL"]),
])
def test_garg_distribution_shift_claims(tmp_path, errors, expected):
  shift_rows = regression._garg_shifts(_shift_file(tmp_path / "distribution_shift.json", errors), "")
  assert [r["status"] for r in shift_rows] == expected
  assert "orthant" in shift_rows[0]["ours"] and "x3" in shift_rows[1]["ours"]


def _olsson_run(losses, window=(500, 750)):
  steps = [25 * (i + 1) for i in range(len(losses))]
  return {"window": {"start_step": window[0], "end_step": window[1]},
          "loss_curve": {"step": steps, "loss": losses}}


def test_olsson_loss_bump():
  flat = [4.0 - 0.001 * i for i in range(80)]  # a slow, steady decline
  bump = [v - (0.8 if i >= 29 else 0.8 * max(0, i - 19) / 10) for i, v in enumerate(flat)]
  row = language._olsson_loss_bump({"2": _olsson_run(bump)}, _olsson_run(flat), "")
  assert row["status"] == "PASS" and "2-layer falls 0.8" in row["ours"]
  row = language._olsson_loss_bump({"2": _olsson_run(flat)}, _olsson_run(flat), "")
  assert row["status"] == "FAIL"
  assert language._olsson_loss_bump({"2": {"window": {}}}, None, "")["status"] == "NOT_SHOWN"


def test_chan_many_classes_reads_reddy_sweep(tmp_path):
  run_dir = tmp_path / "chan2022" / "run"
  row = classification._chan_many_classes(run_dir, "cpu", "")
  assert row["status"] == "NOT_SHOWN" and "reddy2023" in row["note"]
  cells = [{"K": 32, "icl": 0.04}, {"K": 2048, "icl": 0.99}]
  _write(tmp_path / "reddy2023" / "run" / "results.json",
         {"preset": "cpu", "chance_full": 1 / 32, "sweep_K": cells})
  row = classification._chan_many_classes(run_dir, "cpu", "")
  assert row["status"] == "PASS" and row["ours"] == "K=32:0.04 K=2048:0.99"
  assert classification._chan_many_classes(run_dir, "paper", "")["status"] == "NOT_SHOWN"  # other preset
  cells[0]["icl"] = 0.5  # few classes already learn in context: not Chan's claim
  _write(tmp_path / "reddy2023" / "run" / "results.json",
         {"preset": "cpu", "chance_full": 1 / 32, "sweep_K": cells})
  assert classification._chan_many_classes(run_dir, "cpu", "")["status"] == "FAIL"


def test_garg_sparse_claim(tmp_path):
  n, d = 16, 5
  ls = [max(d - k, 0) / d * 0.4 for k in range(n)]
  lasso = [0.8 * v + 0.01 for v in ls]
  probe = lambda model: {"n_dims": d, "k": list(range(n)), "num_prompts": 64, "curves": {
      "model": {"mean": model}, "lasso": {"mean": lasso}, "least_squares": {"mean": ls}}}
  path = _write(tmp_path / "a.json", probe([v + 0.005 for v in lasso]))
  assert regression._garg_sparse(path, "")["status"] == "PASS"
  path = _write(tmp_path / "b.json", probe(list(ls)))  # least squares, not Lasso
  assert regression._garg_sparse(path, "")["status"] == "FAIL"
  assert regression._garg_sparse(tmp_path / "none.json", "")["status"] == "NOT_SHOWN"
