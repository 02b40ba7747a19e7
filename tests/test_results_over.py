"""research.results --over=seed (research/analysis/aggregate.py): the runs that differ only in
the seed as one row, each figure its mean ± sample sd over them; the CSV and the figure of
those rows. A new user's trial: a 10-seed ensemble gave 10 rows and no mean or spread."""
import csv
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from research import results_records
from research.analysis import aggregate, plots, results_plots
from results_fixtures import write_run

ROOT = Path(__file__).resolve().parents[1]
# Two learning rates x three seeds; loss curves of 3 logged steps (the last differs by seed).
LAST = {(1e-3, 0): 2.0, (1e-3, 1): 2.5, (1e-3, 2): 3.0, (5e-3, 0): 1.0, (5e-3, 1): 1.2,
        (5e-3, 2): 1.7}


@pytest.fixture
def seeds_dir(tmp_path):
  root = tmp_path / "seeds"
  for i, ((lr, seed), last) in enumerate(LAST.items()):
    run = write_run(root / "runs" / f"{i:03d}_lr={lr},seed={seed}", 64, lr, [5.0, 4.0, last])
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "seed": seed}))
    (run / "probes").mkdir()
    if i != 5:  # the last run has no probe file: its figure is left out of its row's mean
      (run / "probes" / "p.json").write_text(json.dumps({"summary": {"acc": 0.1 * i,
                                                                     "pass": i == 1}}))
  return root


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "research.results", *map(str, args)],
                        capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_over_seed_gives_one_row_per_setting_with_mean_and_sd(seeds_dir, tmp_path):
  out = tmp_path / "over.csv"
  proc = _cli(seeds_dir, "--over=seed", "--csv", out)
  assert proc.returncode == 0, proc.stderr
  header, *lines = proc.stdout.splitlines()[:3]
  cols = header.split()
  assert cols[:3] == ["optim.learning_rate", "runs", "seed"] and "run" not in cols
  for line, lr in zip(lines, (1e-3, 5e-3)):
    losses = [LAST[lr, s] for s in range(3)]
    assert line.startswith(f"{lr:<19}  3     0-2 ")
    assert f"{statistics.mean(losses):.4g} ± {statistics.stdev(losses):.2g}" in line
  assert "0.1 ± 0.1" in lines[0] and "1/3" in lines[0]  # acc of runs 0-2; pass in one of 3
  assert "0.35 ± 0.071 (n=2)" in lines[1]  # runs 3 and 4: run 5 has no probe
  assert "note: 6 runs in 2 rows, each over its seed values" in proc.stderr
  with open(out) as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 2 and rows[1]["runs"] == "3"
  losses = [LAST[5e-3, s] for s in range(3)]
  assert float(rows[1]["last.loss"]) == pytest.approx(statistics.mean(losses))
  assert float(rows[1]["last.loss.sd"]) == pytest.approx(statistics.stdev(losses))
  assert float(rows[1]["last.loss.sem"]) == pytest.approx(statistics.stdev(losses) / 3 ** 0.5)
  assert (rows[1]["last.loss.min"], rows[1]["last.loss.max"], rows[1]["last.loss.n"]) == (
      "1.0", "1.7", "3")
  assert rows[1]["probes.p.acc.n"] == "2"


def test_runs_of_other_settings_are_never_pooled(seeds_dir):
  """Control: the groups are every varying setting but --over's, shown or not: --columns
  without the learning rate still gives its two rows, and without --over the six runs."""
  rows = results_records.records([seeds_dir])
  assert aggregate.group_keys(rows, ["seed"]) == ["optim.learning_rate"]
  proc = _cli(seeds_dir, "--over=seed", "--columns=last.loss")
  assert proc.returncode == 0, proc.stderr
  assert [l.split()[:2] for l in proc.stdout.splitlines()] == [
      ["optim.learning_rate", "runs"], ["0.001", "3"], ["0.005", "3"]]
  assert len(_cli(seeds_dir).stdout.splitlines()) == 7
  # The pooled table's own columns may be chosen.
  chosen = _cli(seeds_dir, "--over=seed", "--columns=runs,last.loss.sd")
  assert chosen.returncode == 0 and chosen.stdout.splitlines()[0].split() == [
      "optim.learning_rate", "runs", "seed", "last.loss.sd"], chosen.stdout + chosen.stderr
  # Over both: one row of all six runs, the learning rates listed.
  both = aggregate.aggregate(rows, ["seed", "optim.learning_rate"], ["last.loss"])
  assert len(both) == 1 and both[0]["runs"] == 6
  assert both[0]["last.loss"] == pytest.approx(statistics.mean(LAST.values()))


def test_a_setting_shared_by_the_group_stays_its_value():
  rows = [{"seed": s, "model.width": 64, "model.fused_qkv": False, "summary.num_params": 900,
           "last.loss": 1.0 + s, "state": "finished" if s else "failed"} for s in range(3)]
  (row,) = aggregate.aggregate(rows, ["seed"], list(rows[0]))
  assert row["model.width"] == 64 and row["model.fused_qkv"] is False  # not "0/3"
  # A figure equal in every run: its statistics (sd 0) in the CSV, its value in the cell.
  assert row["summary.num_params.sd"] == 0 and aggregate.cell(row, "summary.num_params") == "900"
  assert row["last.loss.sd"] == 1.0 and row["state"] == "finished×2, failed×1"
  assert aggregate.cell(row, "last.loss") == "2 ± 1"
  assert aggregate.cell(row, "state") is None  # printed as it is
  assert aggregate.mixed_states(row) and not aggregate.mixed_states({"state": "finished"})


def test_an_int_every_run_shares_is_printed_whole():
  """A trial's 26401 parameters read 2.64e+04 under --over (a float mean at 4 digits), and an
  int past 2**53 lost its last digits; control: ints that differ still give a mean ± sd."""
  big = 2**53 + 1
  rows = [{"seed": s, "summary.num_params": 26401, "summary.tokens_seen": big,
           "last.step": 20 + 10 * s} for s in range(3)]
  (row,) = aggregate.aggregate(rows, ["seed"], list(rows[0]))
  assert aggregate.cell(row, "summary.num_params") == "26401"
  assert row["summary.tokens_seen"] == big and aggregate.cell(row, "summary.tokens_seen") == str(big)
  assert row["summary.tokens_seen.min"] == row["summary.tokens_seen.max"] == big  # the CSV's too
  assert aggregate.cell(row, "last.step") == "30 ± 10"


def test_diverged_missing_and_mixed_values_are_counted_not_hidden():
  """A review of --over: NaN and inf were dropped from the mean as missing (three diverged
  seeds of ten hidden), a text some runs lack read as the group's, a boolean mixed with
  numbers was averaged, a field a failed point lacks split it into a group of its own, and
  seeds were listed in text order (0, 1, 10, 11, 2)."""
  rows = [{"seed": s, "optim.name": "adam", "last.loss": float(s) if s < 9 else math.nan,
           "summary.error": "boom" if s == 0 else None, "probes.p.x": True if s < 2 else 0.5}
          for s in range(12)]
  rows[10]["last.loss"], rows[11]["last.loss"] = math.inf, None
  rows.append({"seed": 12, "state": "failed"})  # a point that failed before its run existed
  (row,) = aggregate.aggregate(rows, ["seed"], list(dict.fromkeys(c for r in rows for c in r)))
  assert row["runs"] == 13 and row["seed"] == "0-12"
  assert (row["last.loss.n"], row["last.loss.nonfinite"]) == (9, 2)
  assert row["last.loss"] == pytest.approx(4.0)  # seeds 0-8
  assert aggregate.cell(row, "last.loss") == "4 ± 2.7 (n=9, 2 non-finite)"
  assert row["summary.error"] == "(none)×12, boom×1"
  assert row["probes.p.x"] == "0.5×10, True×2, (none)×1"
  assert aggregate.aggregate([{"seed": s} for s in (2, 10, 1, 30)], ["seed"], [])[0]["seed"] \
      == "1, 2, 10, 30"


def test_the_figure_draws_each_settings_mean_and_band(seeds_dir, tmp_path, monkeypatch):
  saved = []
  save = plots.save_figure
  monkeypatch.setattr(plots, "save_figure", lambda fig, out: saved.append(fig) or save(fig, out))
  rows = results_records.records([seeds_dir])
  results_plots.plot(rows, "loss", by="optim.learning_rate", over=["seed"], out=tmp_path / "a.png")
  ax = saved[0].axes[0]
  lines = ax.get_lines()
  assert len(lines) == 2 and len(ax.collections) == 2  # a mean curve and a band per setting
  assert list(lines[1].get_ydata()) == pytest.approx(
      [5.0, 4.0, statistics.mean(LAST[5e-3, s] for s in range(3))])
  # The band at the last step spans mean ± sd of its three seeds (earlier steps: sd 0).
  band = ax.collections[1].get_paths()[0].vertices
  at_end = sorted({float(y) for x, y in band if x == 30})
  last = [LAST[5e-3, s] for s in range(3)]
  assert at_end == pytest.approx([statistics.mean(last) - statistics.stdev(last),
                                  statistics.mean(last) + statistics.stdev(last)])
  assert "mean ± sd over seed" in ax.get_title()
  # Control: without --over, a curve per run and no band.
  results_plots.plot(rows, "loss", by="optim.learning_rate", out=tmp_path / "b.png")
  assert len(saved[1].axes[0].get_lines()) == 6 and not saved[1].axes[0].collections
  # One point per setting against a column: its mean with an error bar of ±1 sd.
  results_plots.plot(rows, "loss", x="optim.learning_rate", over=["seed"], out=tmp_path / "c.png")
  xs = sorted(saved[2].axes[0].get_lines()[0].get_xdata())
  assert xs == [1e-3, 5e-3] and "across 6 runs" in saved[2].axes[0].get_title()


@pytest.mark.parametrize("args,match", [
    (["--over=nosuch"], "--over: no column 'nosuch'"),
    (["--over=last.loss"], "--over takes config fields the runs differ in"),
    (["--over=seed", "--plot=loss", "--by=seed"], "--by seed is averaged over (--over)"),
    (["--over=seed", "--plot=loss", "--x=seed"], "--x seed is averaged over (--over)")])
def test_bad_over_exits_2_with_one_line(seeds_dir, args, match):
  proc = _cli(seeds_dir, *args)
  assert proc.returncode == 2, proc.stdout + proc.stderr
  err = proc.stderr.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("error: ") and match in err[0], proc.stderr
  assert not proc.stdout.strip()


def test_a_run_stopped_early_does_not_cut_its_rows_curve(seeds_dir, tmp_path, caplog,
                                                         monkeypatch):
  """The mean curve was drawn at the steps every run logged: one seed of twelve stopped at
  step 20 cut the row's curve there, the title still counting it. Now each step's mean is of
  the runs that logged it, and a warning says where a row has fewer."""
  first = sorted((seeds_dir / "runs").iterdir())[0]  # lr 1e-3, seed 0
  rows_logged = (first / "metrics.jsonl").read_text().splitlines()
  (first / "metrics.jsonl").write_text("\n".join(rows_logged[:2]) + "\n")
  rows = results_records.records([seeds_dir])
  saved = []
  save = plots.save_figure
  monkeypatch.setattr(plots, "save_figure", lambda fig, out: saved.append(fig) or save(fig, out))
  with caplog.at_level("WARNING"):
    results_plots.plot(rows, "loss", by="optim.learning_rate", over=["seed"],
                       out=tmp_path / "a.png")
  ax = saved[0].axes[0]
  line = ax.get_lines()[0]
  assert list(line.get_xdata()) == [10, 20, 30]
  assert line.get_ydata()[-1] == pytest.approx((LAST[1e-3, 1] + LAST[1e-3, 2]) / 2)
  assert "at step 30 only 2 of a row's 3 runs logged it" in caplog.text
  assert "runs logged it" not in caplog.text.split("at step 30")[0]  # the other row: no warning


def test_runs_of_one_seed_twice_are_warned_as_one_setting_counted_twice(seeds_dir):
  """A trial's two runs of one command (seed 0 twice) and a seed 1 read as 3 replicates; so did
  a sweep beside its copy. Control: the fixture's 3 seeds a setting warn nothing."""
  import shutil
  proc = _cli(seeds_dir, "--over=seed")
  assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr
  shutil.copytree(seeds_dir / "runs" / "000_lr=0.001,seed=0", seeds_dir / "runs" / "copy")
  proc = _cli(seeds_dir, "--over=seed")
  assert proc.returncode == 0, proc.stderr
  (line,) = [l for l in proc.stderr.splitlines() if l.startswith("warning:")]
  assert line.startswith("warning: 2 runs share every setting and their seed (") and "copy" in line
  assert "000_lr=0.001,seed=0" in line and "counted as several" in line
  groups = aggregate.groups(results_records.records([seeds_dir]), ["seed"])
  assert sorted(map(len, groups)) == [3, 4]  # still pooled: the warning says, the user decides
