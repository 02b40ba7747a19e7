"""research/output_paths.py's checks of a workdir and of a file a command writes (--out,
--csv): what is refused (a file, remote URLs, pseudo filesystems) and that checking writes
nothing; the entry points' own tables are in tests/test_entry_points.py."""
import os
from pathlib import Path

import pytest

from research import output_paths
from research.errors import InputError


def test_a_device_or_pipe_is_refused_not_replaced(tmp_path):
  """Every writer writes a temporary file beside the path and renames it over it: as root,
  python -m research.aot ... --out=/dev/null replaced /dev/null with a regular file holding
  the plan (exit 0), for every process on the host. Only checked here, never written."""
  fifo = tmp_path / "pipe"
  os.mkfifo(fifo)
  with pytest.raises(InputError, match=r"--out=.*pipe is not a regular file.*e\.g\. --out=plan\.json"):
    output_paths.check_output(str(fifo), "--out", example="plan.json")
  if Path("/dev/null").is_char_device():
    with pytest.raises(InputError, match="--csv=/dev/null is not a regular file"):
      output_paths.check_output("/dev/null", "--csv")
  assert fifo.exists() and not fifo.is_file()  # left as it was
  output_paths.check_output(str(tmp_path / "plan.json"), "--out")  # control: a new file
  (tmp_path / "old.json").write_text("{}")
  output_paths.check_output(str(tmp_path / "old.json"), "--out")  # and an existing one


def test_check_workdir(tmp_path, monkeypatch):
  assert output_paths.check_workdir(tmp_path / "new" / "deeper") == str(tmp_path / "new" / "deeper")
  assert not (tmp_path / "new").exists()  # checking creates nothing
  (tmp_path / "f").write_text("x")
  (tmp_path / "link").symlink_to(tmp_path / "gone")
  for path, needle in ((tmp_path / "f", "is a file"), (tmp_path / "f" / "x", "cannot be created"),
                       ("", "is empty"), (tmp_path / "link", "does not exist"),
                       (tmp_path / ("x" * 300), "over the 255")):
    with pytest.raises(InputError, match=needle):
      output_paths.check_workdir(path)
  monkeypatch.setenv("HOME", str(tmp_path))  # --workdir=~/x reaches the program unexpanded
  assert output_paths.check_workdir("~/run") == str(tmp_path / "run")
  assert sorted(tmp_path.iterdir()) == [tmp_path / "f", tmp_path / "link"]  # nothing written


def test_remote_paths_are_refused_naming_a_mount(tmp_path, monkeypatch):
  """gs://B/run became the local folder gs:/B/run (Path drops a slash): each pod host wrote its
  own copy on its own disk. Every writer and init_from refuse it, and nothing is written."""
  from research import init_from, probe_checkpoints, results_records, train
  monkeypatch.chdir(tmp_path)
  for check in (output_paths.check_workdir, lambda p: output_paths.check_output(p, "--out"),
                lambda p: train.train_and_evaluate(None, p), init_from.check_init_from,
                lambda p: results_records.find_runs([p]), probe_checkpoints.probe_run):
    with pytest.raises(InputError, match=r"gs:// URL is not supported.*gcsfuse.*/mnt/b/run"):
      check("gs://b/run")
  assert not any(tmp_path.iterdir())


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_pseudo_filesystems_are_refused_even_for_root():
  """os.access says /proc is writable to root; making an entry there fails (EPERM, ENOENT)."""
  for check, path in ((output_paths.check_workdir, "/proc/run"), (output_paths.check_workdir, "/proc/self"),
                      (lambda p: output_paths.check_output(p, "--out"), "/proc/self/out.json")):
    with pytest.raises(InputError, match="is not writable"):
      check(path)


def test_a_name_of_255_bytes_is_the_longest_a_workdir_may_have(tmp_path):
  """A file name may have 255 bytes (Linux's NAME_MAX): that one is accepted, 256 refused; a
  non-ASCII name counts its bytes (2 each for é), not its characters."""
  assert output_paths.check_workdir(tmp_path / ("x" * 255)) == str(tmp_path / ("x" * 255))
  with pytest.raises(InputError, match="is 256 bytes, over the 255"):
    output_paths.check_workdir(tmp_path / ("x" * 256))
  with pytest.raises(InputError, match="is 256 bytes, over the 255"):
    output_paths.check_workdir(tmp_path / ("é" * 128))
  assert not any(tmp_path.iterdir())


def test_a_figure_format_is_read_whatever_its_case(tmp_path):
  """--out=FIG.PNG is a PNG (the extension's case folded); another format, or none, is
  refused naming the formats."""
  for name in ("fig.PNG", "fig.Pdf", "fig.svg"):
    assert output_paths.check_output(str(tmp_path / name), "--out", ("png", "pdf", "svg")) == \
        tmp_path / name
  for name, said in (("fig.jpg", ".jpg is not a figure format"),
                     ("fig", "no extension is not a figure format")):
    with pytest.raises(InputError, match=said):
      output_paths.check_output(str(tmp_path / name), "--out", ("png", "pdf", "svg"))


def _a_run(path: Path) -> Path:
  """A folder research/workdir.py takes for a run: a config.json with a task.name."""
  path.mkdir(parents=True)
  (path / "config.json").write_text('{"task": {"name": "regression"}}')
  return path


def test_a_runs_own_folders_take_which_outputs(tmp_path):
  """In a run's checkpoints/ and checkpoints.unreadable/ (the damaged ones set aside) nothing
  is written; in its probes/ no JSON file (results reads each as a probe's scalars) but a new
  table may be; in figures/ a new file may be, an existing one is not, unless the command
  `rewrites` its own file there, and never a JSON file (a probe's rows are JSONL)."""
  run = _a_run(tmp_path / "run")
  for d in ("checkpoints", "checkpoints.unreadable", "probes", "figures"):
    (run / d).mkdir()
  (run / "figures" / "rows.jsonl").write_text("{}\n")
  (run / "figures" / "old.json").write_text("{}")
  check = output_paths.check_output
  for path, rewrites, folder in (
      (run / "checkpoints" / "t.csv", False, "checkpoints"),
      (run / "checkpoints.unreadable" / "t.csv", False, "checkpoints.unreadable"),
      (run / "probes" / "new.json", False, "probes"),
      (run / "figures" / "rows.jsonl", False, "figures"),
      (run / "figures" / "old.json", True, "figures")):
    with pytest.raises(InputError, match=rf"is inside the {folder}/ of the run or sweep in {run}"):
      check(str(path), "--csv", rewrites=rewrites)
  for path, rewrites in ((run / "probes" / "table.csv", False), (run / "figures" / "t.csv", False),
                         (run / "figures" / "rows.jsonl", True), (run / "t.csv", False)):
    assert check(str(path), "--csv", rewrites=rewrites) == path


def test_an_experiments_data_files_are_not_replaced(tmp_path):
  """In a folder an experiment owns (its experiment.json), an existing JSON or JSONL file is
  its data (a fit, a probe's rows), refused whatever its case; a figure or table may be
  replaced, and a command that `rewrites` its own rows may name them."""
  exp = tmp_path / "exp"
  (exp / "runs").mkdir(parents=True)
  (exp / "experiment.json").write_text('{"experiment": "scaling_laws"}')
  for name in ("fit.json", "rows.jsonl", "runs/ROWS.JSONL", "table.csv"):
    (exp / name).write_text("{}")
  for name in ("fit.json", "rows.jsonl", "runs/ROWS.JSONL", "experiment.json"):
    with pytest.raises(InputError, match=rf"would overwrite a file of the experiment in {exp}"):
      output_paths.check_output(str(exp / name), "--csv")
  for name, rewrites in (("table.csv", False), ("new.jsonl", False), ("rows.jsonl", True)):
    assert output_paths.check_output(str(exp / name), "--csv", rewrites=rewrites) == exp / name
