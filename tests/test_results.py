"""research.results: the runs' table printed, written as CSV and loaded as a DataFrame; the
outputs it refuses. How runs are read into rows: tests/test_results_records.py; the figure
(--plot): tests/test_results_plots.py."""
import csv
import json
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from research import results, results_records
from research.errors import InputError
from results_fixtures import write_sweep

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def sweep_dir(tmp_path):
  return write_sweep(tmp_path / "scale")


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "research.results", *map(str, args)],
                        capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_default_columns_are_what_varies_and_how_runs_ended(sweep_dir):
  cols = results.default_columns(results_records.records([sweep_dir]))
  assert cols[0] == "run" and {"model.width", "optim.learning_rate", "summary.num_params",
                               "last.loss", "last.step"} <= set(cols)
  assert "seed" not in cols and "model.num_layers" not in cols  # the same in every run


def test_chosen_columns_come_after_the_run(sweep_dir):
  """--columns model.width,last.loss printed two columns and no run: rows that could not be
  told apart. The run comes first, once (also when listed)."""
  for asked in ("model.width,last.loss", "model.width,run,last.loss"):
    proc = _cli(sweep_dir, "--columns", asked)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split() == ["run", "model.width", "last.loss"]


def test_cli_prints_the_table_and_writes_the_csv(sweep_dir, tmp_path):
  out = tmp_path / "all.csv"
  proc = _cli(sweep_dir, "--where", "model.width>=64", "--csv", out)
  assert proc.returncode == 0, proc.stderr
  lines = proc.stdout.splitlines()
  assert lines[0].split()[:4] == ["run", "state", "model.width", "optim.learning_rate"]
  assert [l.split()[1] for l in lines if l.startswith("runs/")] == ["finished", "finished"]
  with open(out) as f:
    rows = list(csv.DictReader(f))
  assert [r["model.width"] for r in rows] == ["64", "256"] and "dir" in rows[0]


def test_unreadable_runs_are_listed_and_the_rest_tabled(sweep_dir, tmp_path):
  """One damaged run (an edited summary.json, a metrics row that is not an object) used to
  stop the whole table; now the readable runs are printed and written, the damaged ones
  named on stderr, and the exit is 6 (some runs failed), never 0."""
  runs = sorted((sweep_dir / "runs").iterdir())
  (runs[0] / "summary.json").write_text("[1, 2]")
  (runs[2] / "metrics.jsonl").write_text('{"step": 10}\n"edited"\n{"step": 20}\n')
  out = tmp_path / "t.csv"
  proc = _cli(sweep_dir, "--csv", out)
  assert proc.returncode == 6, proc.stdout + proc.stderr
  assert [l.split()[0] for l in proc.stdout.splitlines()[1:] if l.startswith("runs/")] == \
      ["runs/001_width=64"]
  with open(out) as f:
    assert [r["model.width"] for r in csv.DictReader(f)] == ["64"]
  err = proc.stderr.strip().splitlines()
  assert [l.split(": ")[1].rsplit("/", 1)[-1] for l in err[:2]] == \
      ["000_width=16", "002_width=256"]
  assert "summary.json is not a JSON object" in err[0] and "line 2 of" in err[1]
  assert err[-1].startswith("error: 2 runs could not be read") and len(err) == 3
  unreadable = []  # from Python: the same split when asked; the default still raises
  rows = results_records.records([sweep_dir], unreadable=unreadable)
  assert len(rows) == 1 and len(unreadable) == 2
  with pytest.raises(InputError, match="summary.json is not a JSON object"):
    results_records.records([sweep_dir])
  (runs[1] / "summary.json").write_bytes(b'{"s": \xff}')  # not UTF-8: a traceback before
  proc = _cli(sweep_dir)
  assert proc.returncode == 6 and "3 runs could not be read" in proc.stderr, proc.stderr
  assert "Traceback" not in proc.stderr and "summary.json is not a JSON object" in proc.stderr
  (runs[1] / "summary.json").write_text("{}")
  (runs[0] / "summary.json").write_text("{}")  # control: repaired, all tabled, exit 0
  (runs[2] / "metrics.jsonl").write_text('{"step": 10}\n{"step": 20}\n')
  proc = _cli(sweep_dir)
  assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
  assert len([l for l in proc.stdout.splitlines() if l.startswith("runs/")]) == 3


@pytest.mark.parametrize("args, match", [
    (["{empty}"], "no run"), (["{missing}"], "not a directory"), ([], "no directory given"),
    (["{sweep}", "--plot", "loss", "--by", "model.widht"], "--by: no column 'model.widht'"),
    (["{sweep}", "--columns", "run,nope"], "--columns: no column 'nope'"),
    (["{sweep}", "--where", "model.width>1000"], "matches --where"),
    (["{sweep}", "--by", "model.width"], "add --plot"),
    (["{sweep}", "--plot", "accuracy"], "no run's metrics.jsonl has a 'accuracy'"),
    (["{sweep}", "--bogus"], "bogus"),
    (["{sweep}", "--x", "model.width"], "--x is a setting of the plot"),
    (["{sweep}", "--out", "{empty}/f.png"], "--out is a setting of the plot"),
    (["{sweep}", "--csv", "{empty}"], "is a directory; name a file in it"),
    (["{sweep}", "--csv", "{sweep}/results.jsonl/t.csv"], "is a file, so the file cannot"),
    (["{sweep}", "--plot", "loss", "--out", "{empty}"], "is a directory; name a file in it"),
    (["{sweep}", "--plot", "loss", "--out", "{empty}/f.xyz"], ".xyz is not a figure format"),
    # The table was printed and the CSV written first; --plot run blamed --x.
    (["{sweep}", "--plot", "loss", "--x", "optim.name", "--csv", "{empty}/t.csv"],
     "--x optim.name: no run has a number in optim.name"),
    (["{sweep}", "--plot", "run", "--x", "model.width"], "--plot run: no run has a number"),
    # Read as not given: no CSV, no plot, and --by escaped its "add --plot" check.
    (["{sweep}", "--csv="], "--csv= is empty; give it a value or drop the flag"),
    (["{sweep}", "--plot=", "--by", "model.width"], "--plot= is empty")])
def test_bad_input_exits_2_with_one_line(sweep_dir, tmp_path, args, match):
  (tmp_path / "empty").mkdir()
  names = {"empty": tmp_path / "empty", "missing": tmp_path / "missing", "sweep": sweep_dir}
  proc = _cli(*[a.format(**names) for a in args])
  assert proc.returncode == 2, proc.stdout + proc.stderr
  err = proc.stderr.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("error: ") and match in err[0], proc.stderr
  assert not proc.stdout.strip(), proc.stdout  # refused before the table (a bad --by printed it)
  assert not (sweep_dir / "results_accuracy.png").exists()
  assert not any((tmp_path / "empty").iterdir())  # nothing written where the output was refused


def test_the_default_figure_place_is_checked_before_the_table(sweep_dir, monkeypatch, capsys):
  """--plot without --out writes DIR/results_METRIC.png: a read-only DIR printed the table,
  then exit 5 (an I/O error); --out elsewhere and --csv were checked first (audit 39). Root
  ignores file modes, so the check is made to see DIR as unwritable."""
  from research import output_paths
  real = output_paths._writable
  monkeypatch.setattr(output_paths, "_writable", lambda d: Path(d).resolve() != sweep_dir.resolve()
                      and real(d))
  with pytest.raises(InputError, match=rf"the figure goes to {sweep_dir}/results_loss.png unless "
                     r"--out says otherwise, and .* not writable.*; or pass --out=FILE elsewhere$"):
    results.main([str(sweep_dir), "--plot", "loss"])
  assert not capsys.readouterr().out  # no table before the refusal


def test_an_output_over_a_runs_own_file_is_refused(sweep_dir, tmp_path):
  """`--csv RUN/config.json` replaced a run's config with the table (exit 0), which then broke
  results and the sweep's rerun; a sweep's results.jsonl and a run's checkpoints likewise."""
  run = next(p.parent for p in sweep_dir.rglob("config.json"))
  before = {f: (run / f).read_text() for f in ("config.json", "summary.json")}
  for flag, target, needle in (
      ("--csv", run / "config.json", "would overwrite config.json, part of the record"),
      ("--csv", run / "summary.json", "would overwrite summary.json"),
      ("--csv", run / "checkpoints" / "t.csv", "is inside the checkpoints/ of the run or sweep in"),
      # A probe's result and a run's figure (audit 40: replaced, exit 0; results then could not
      # read the run), a new probes/*.json (read as a probe's scalars), a sweep's ensemble/.
      ("--csv", run / "probes" / "icl_regression.json", "is inside the probes/ of the run"),
      ("--csv", run / "probes" / "new.json", "is inside the probes/ of the run"),
      ("--out", run / "figures" / "icl_regression.png", "is inside the figures/ of the run"),
      ("--csv", sweep_dir / "ensemble" / "k" / "t.csv", f"ensemble/ of the run or sweep in {sweep_dir}, which wrote it")):
    for d in (run / "checkpoints", run / "probes", run / "figures", sweep_dir / "ensemble" / "k"):
      d.mkdir(parents=True, exist_ok=True)
    (run / "figures" / "icl_regression.png").write_bytes(b"png")
    if "probes/icl_regression.json" not in before:
      (run / "probes" / "icl_regression.json").write_text('{"final_error": 0.5}')
      before["probes/icl_regression.json"] = '{"final_error": 0.5}'
    args = ["--plot", "loss"] if flag == "--out" else []
    with pytest.raises(InputError, match=needle):
      results.main([str(sweep_dir), *args, flag, str(target)])
  assert {f: (run / f).read_text() for f in before} == before
  assert (run / "figures" / "icl_regression.png").read_bytes() == b"png"
  assert not (run / "probes" / "new.json").exists()
  results.main([str(sweep_dir), "--csv", str(run / "table.csv")])  # control: a new name
  assert (run / "table.csv").is_file()
  results.main([str(sweep_dir), "--csv", str(run / "figures" / "table.csv")])  # a new file there
  assert (run / "figures" / "table.csv").is_file()


def test_an_output_over_an_experiments_own_file_is_refused(sweep_dir, tmp_path):
  """`--csv EXP/scaling_laws.json`, `--csv EXP/experiment.json` and reproduce's
  NAME/summary.json were replaced by the table, exit 0."""
  exp = tmp_path / "exp"
  (exp / "runs").mkdir(parents=True)
  (exp / "experiment.json").write_text('{"experiment": "scaling_laws"}')
  (exp / "scaling_laws.json").write_text("{}")
  (exp / "figures").mkdir()
  (exp / "figures" / "fit.png").write_bytes(b"png")
  rep = tmp_path / "rep"
  (rep / "garg2022" / "run" / "seed_0").mkdir(parents=True)
  (rep / "garg2022" / "run" / "seed_0" / "experiment.json").write_text('{"experiment": "garg2022"}')
  for f in ("summary.json", "summary.md"):
    (rep / "garg2022" / f).write_text("{}")
  (rep / "index.md").write_text("# index")
  targets = [exp / "scaling_laws.json", exp / "experiment.json",
             rep / "garg2022" / "summary.json", rep / "garg2022" / "summary.md", rep / "index.md",
             tmp_path / "elsewhere" / "experiment.json"]
  before = {t: t.read_bytes() for t in targets if t.exists()}
  for target in targets:
    with pytest.raises(InputError, match="would overwrite"):
      results.main([str(sweep_dir), "--csv", str(target)])
  assert {t: t.read_bytes() for t in before} == before
  for new in (exp / "table.csv", rep / "garg2022" / "table.csv", rep / "table.csv"):  # control
    results.main([str(sweep_dir), "--csv", str(new)])
    assert new.is_file()
  results.main([str(sweep_dir), "--csv", str(exp / "table.csv")])  # the same command again


def test_a_run_is_what_workdir_says_and_a_symlink_is_followed(sweep_dir, tmp_path):
  """Any folder with a config.json was taken for a run (`--csv PROJECT/results.csv` refused
  beside a project's own config.json), and a symlink to a run's config.json was not followed
  (`--csv link.csv` replaced the run's config with the table, exit 0)."""
  run = next(p.parent for p in sweep_dir.rglob("config.json"))
  before = (run / "config.json").read_text()
  link = tmp_path / "link.csv"
  link.symlink_to(run / "config.json")
  with pytest.raises(InputError, match=rf"--csv={link} would overwrite config.json, part of "
                     rf"the record of the run or sweep in {run}"):
    results.main([str(sweep_dir), "--csv", str(link)])
  assert (run / "config.json").read_text() == before
  project = tmp_path / "project"  # a user's folder: its config.json is no run's (no task.name)
  project.mkdir()
  (project / "config.json").write_text(json.dumps({"name": "my-project"}))
  results.main([str(sweep_dir), "--csv", str(project / "results.csv")])
  assert (project / "results.csv").is_file()


def test_load_gives_a_dataframe(sweep_dir):
  pd = pytest.importorskip("pandas")
  df = results.load(sweep_dir, where=["model.width>=64"])
  assert isinstance(df, pd.DataFrame) and list(df["model.width"]) == [64, 256]


def test_load_without_pandas_names_the_install(sweep_dir, monkeypatch):
  monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
  with pytest.raises(InputError, match=r"pip install pandas"):
    results.load([sweep_dir])
  assert len(results_records.records([sweep_dir])) == 3  # the table itself needs no pandas


def test_a_sweep_writes_the_flat_csv_beside_results_jsonl(tmp_path):
  from configs import icl_regression
  from research import sweep
  c = icl_regression.get_config("tiny")
  c.mesh.data, c.train.compile_cache_dir, c.train.num_steps = 1, "", 20
  overrides = [{"model.width": 16, "model.num_heads": 2}, {"optim.learning_rate": 1e15}]
  sweep.run_sweep(c, overrides, tmp_path, ensemble="off", devices=jax.devices()[:1])
  with open(tmp_path / "results.csv") as f:
    rows = {r["run"]: r for r in csv.DictReader(f)}
  assert sorted(r["status"] for r in rows.values()) == ["done", "failed"]
  done = next(r for r in rows.values() if r["status"] == "done")
  assert done["overrides.model.width"] == "16" and float(done["final.loss"]) > 0
  assert "traceback" not in next(iter(rows.values()))  # kept in results.jsonl only
  # The runs' own files give the same final loss through research.results.
  table = {r["run"]: r for r in results_records.records([tmp_path / "runs"])}
  assert table[done["run"]]["last.loss"] == pytest.approx(float(done["final.loss"]))
  assert table[done["run"]]["model.width"] == 16


def test_directories_and_outputs_read_tilde_and_refuse_empty_and_workdir(sweep_dir, tmp_path,
                                                                         monkeypatch, capsys):
  """A user's trial: `--csv=~/t.csv` wrote ./~/t.csv (a folder named '~' in the current
  directory), a quoted '~/scale' was "not a directory", an empty argument (an unset shell
  variable) tabled every run under the current folder, and --workdir=DIR, the other
  commands' flag, got "Unknown command line flag". Controls: the plain paths work."""
  monkeypatch.setenv("HOME", str(tmp_path))
  monkeypatch.chdir(tmp_path)
  assert results.main(["~/scale", "--csv=~/t.csv"]) == 0
  assert (tmp_path / "t.csv").is_file() and not (tmp_path / "~").exists()
  for argv, words in ((["", str(sweep_dir)], "an empty directory argument"),
                      ([f"--workdir={sweep_dir}"], "takes its directories as arguments")):
    with pytest.raises(InputError, match=words):
      results.main(argv)
  capsys.readouterr()
  assert results.main([str(sweep_dir)]) == 0 and "run" in capsys.readouterr().out


def test_default_columns_leave_out_summary_fields_but_the_parameter_count(sweep_dir):
  """summary.final_loss varies between runs but the table shows last.* for it; the parameter
  count appears once (a mutation audit: varying summary fields joined the config columns)."""
  rows = results_records.records([sweep_dir])
  assert len({r["summary.final_loss"] for r in rows}) > 1  # it varies
  cols = results.default_columns(rows)
  assert "summary.final_loss" not in cols and cols.count("summary.num_params") == 1


def test_varying_compares_every_row_and_cells_show_four_digits():
  rows = [{"run": "a", "x": 1, "y": 2.0}, {"run": "b", "x": 2, "y": 2.0},
          {"run": "c", "x": 2, "y": 2.0}]
  assert results.varying(rows) == ["x"]  # only the first row differs in x
  table = results.format_table([{"run": "a", "loss": 0.123456}, {"run": "bb", "loss": 12345.6}],
                               ["run", "loss"])
  assert table.splitlines() == ["run  loss", "a    0.1235", "bb   1.235e+04"]
  wide = results.format_table([{"run": "a", "learning_rate": 1}], ["run", "learning_rate"])
  assert wide.splitlines() == ["run  learning_rate", "a    1"]


def test_default_columns_show_every_probe_scalar():
  rows = [{"run": "a", "state": "finished", "probes.icl_regression.error_at_2d": 0.1,
           "probes.icl_regression.headline": "ok"},
          {"run": "b", "state": "finished", "probes.icl_regression.error_at_2d": 0.2}]
  cols = results.default_columns(rows)
  assert cols == ["run", "state", "probes.icl_regression.error_at_2d",
                  "probes.icl_regression.headline"]


def test_task_fields_the_runs_source_does_not_read_are_left_blank():
  """A CSV run's row showed task.dataset imdb_reviews (the unread default of the tfds source)
  beside task.path, as if it had trained on IMDB. Controls: a tfds run keeps its dataset and
  loses path; a task without a source (regression) keeps every field."""
  from research import results_records as rr
  csv = {"task": {"source": "csv", "path": "r.csv", "dataset": "imdb_reviews", "seq_len": 32}}
  assert rr._drop_unread_task_fields(csv)["task"] == {"source": "csv", "path": "r.csv",
                                                      "seq_len": 32}
  tfds = {"task": {"source": "tfds", "path": "", "dataset": "ag_news_subset", "data_dir": ""}}
  assert rr._drop_unread_task_fields(tfds)["task"] == {"source": "tfds",
                                                       "dataset": "ag_news_subset", "data_dir": ""}
  synthetic = {"task": {"source": "synthetic", "path": "", "dataset": "x", "vocab_size": 50304}}
  assert rr._drop_unread_task_fields(synthetic)["task"] == {"source": "synthetic",
                                                            "vocab_size": 50304}
  regression = {"task": {"name": "icl_regression", "n_dims": 5}, "model": {"width": 64}}
  assert rr._drop_unread_task_fields(regression) == regression


def test_a_table_of_many_columns_says_how_to_choose_some(sweep_dir, monkeypatch, capsys):
  """reproduce's WORKDIR (every paper's runs) printed 223 columns, 5,394 characters a line,
  without a word on --columns. Control: the sweep's own few columns, no note."""
  results.main([str(sweep_dir)])
  assert "note:" not in capsys.readouterr().err
  monkeypatch.setattr(results, "WIDE", 3)
  results.main([str(sweep_dir)])
  err = capsys.readouterr().err
  assert "columns (what differs between these" in err and "--columns=run,state" in err, err
  results.main([str(sweep_dir), "--columns", "last.loss"])
  assert "note:" not in capsys.readouterr().err  # chosen: nothing to say


def test_a_damaged_sweep_table_is_said_and_its_runs_still_tabled(tmp_path, caplog):
  """A line of garbage inside results.jsonl: research.sweep refuses it naming the line, while
  research.results skipped the table without a word (trial 65b). It says so now, and tables
  the runs from their folders; control: an intact table says nothing."""
  root = write_sweep(tmp_path / "scale")
  (root / "results.jsonl").write_text('{"run": "000_width=16", "status": "done"}\ngarbage{\n'
                                      '{"run": "001_width=64", "status": "done"}\n')
  with caplog.at_level("WARNING"):
    rows = results_records.records([root])
  assert len(rows) == 3
  assert f"line 2 of {root / 'results.jsonl'} is not a JSON object" in caplog.text
  assert "its runs are tabled from their own folders" in caplog.text
  caplog.clear()
  (root / "results.jsonl").write_text('{"run": "000_width=16", "status": "done"}\n')
  with caplog.at_level("WARNING"):
    assert len(results_records.records([root])) == 3
  assert "results.jsonl" not in caplog.text


def test_a_run_still_starting_is_said_to_be_starting(tmp_path):
  """research.results on a run whose state is still being built (no config.json yet) said
  "no run ...; pass the --workdir of research.main", blaming the directory (trial 65b). A live
  holder of its lock is named now; control: a released (empty) lock gives the old line."""
  from research import workdir_lock
  run = tmp_path / "run"
  with workdir_lock.Lock(run, "a run"):
    with pytest.raises(InputError, match=rf"no run under {tmp_path} has written its config.json "
                       rf"yet: a run of PID \d+ on host .* is starting in {run} .*rerun this "
                       "command in a moment"):
      results_records.find_runs([tmp_path])
  with pytest.raises(InputError, match=r"no run \(a directory with config.json\) under"):
    results_records.find_runs([tmp_path])
  # A lock another host wrote: its process cannot be seen from here, and the line says so (a
  # review: a run killed there during its start read as "starting" for ever).
  (run / ".lock").write_text(json.dumps({"host": "node-17", "pid": 4242, "what": "a run",
                                         "since": "2026-11-01T03:00:00"}))
  with pytest.raises(InputError, match=r"a run of PID 4242 on host node-17 .*, if it still runs "
                     r"\(another host's process"):
    results_records.find_runs([tmp_path])
