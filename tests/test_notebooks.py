"""Every notebook in colab/ executes top to bottom on the tiny preset (all ten in
about 2.5 minutes on 2 cores, so they stay in the default suite)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient", reason="install the dev extra")
import nbformat  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "colab").glob("*.ipynb"))


def test_notebooks_exist_for_every_paper():
  from experiments import reproduce
  names = {p.stem for p in NOTEBOOKS}
  assert "quickstart" in names
  assert set(reproduce.NAMES) <= names, f"no notebook for {set(reproduce.NAMES) - names}"


def test_stored_notebooks_match_their_builder():
  proc = subprocess.run([sys.executable, str(ROOT / "colab" / "build_notebooks.py"), "--check"],
                        capture_output=True, text=True)
  assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_notebook_offers_only_the_presets_its_experiment_has():
  """The schaeffer2023 and ladder notebooks offered `'paper'`, which reproduce refuses for
  them ("has no 'paper' preset"). Control: garg2022's, which has one, offers it."""
  from experiments import reproduce
  for name in reproduce.NAMES:
    text = (ROOT / "colab" / f"{name}.ipynb").read_text()
    offers_paper = "`'paper'` the paper's" in text or "| 'paper'" in text
    assert offers_paper == ("paper" in reproduce.presets_of(name)), name
  assert "paper" in reproduce.presets_of("garg2022")


def _builder():
  import importlib.util
  spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "colab" / "build_notebooks.py")
  builder = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(builder)
  return builder


def test_an_unknown_flag_is_one_error_line():
  """argparse printed its usage line too (audit 34, D14)."""
  proc = subprocess.run([sys.executable, str(ROOT / "colab" / "build_notebooks.py"), "--bogus"],
                        capture_output=True, text=True, timeout=120)
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2 and len(lines) == 1, proc.stderr
  assert lines[0].startswith("error: ") and "--bogus" in lines[0], lines


def test_a_truncated_notebook_is_named_by_check_and_rebuilt_by_a_build(tmp_path, monkeypatch,
                                                                       capfd):
  """--check ended in a JSONDecodeError traceback, exit 1 (audit 34, D14); the build the
  message names rebuilds the notebook from its text."""
  from research import cli
  builder = _builder()
  colab = tmp_path / "colab"
  colab.mkdir()
  for path in NOTEBOOKS:
    (colab / path.name).write_bytes(path.read_bytes())
  (tmp_path / "README.md").write_bytes((ROOT / "README.md").read_bytes())
  monkeypatch.setattr(builder, "HERE", colab)
  monkeypatch.setattr(builder, "README", tmp_path / "README.md")
  damaged = colab / "garg2022.ipynb"
  damaged.write_text(damaged.read_text()[:2000])
  truncated = damaged.read_bytes()

  def run(*argv):
    monkeypatch.setattr(sys, "argv", ["build_notebooks.py", *argv])
    with pytest.raises(SystemExit) as e:
      cli.run_script(builder.main)
    return e.value.code, capfd.readouterr()

  code, out = run("--check")
  lines = out.err.strip().splitlines()
  assert code == 2 and len(lines) == 1, out.err
  assert lines[0].startswith("error: colab/garg2022.ipynb is not a notebook (") and \
      lines[0].endswith("); rebuild it with python colab/build_notebooks.py"), lines
  assert damaged.read_bytes() == truncated  # --check writes nothing
  code, out = run()
  assert code == 0 and "colab/garg2022.ipynb was not a notebook" in out.out, out
  assert run("--check")[0] == 0


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
  nb = nbformat.read(path, as_version=4)
  # Stored outputs: only in the cells tagged keep-output (verdict table, one figure), small.
  assert path.stat().st_size < 300_000, f"{path.name}: store only small outputs"
  assert all(not c.get("outputs") or "keep-output" in c.metadata.get("tags", [])
             for c in nb.cells if c.cell_type == "code"), \
      "outputs outside the keep-output cells: rebuild with colab/build_notebooks.py --execute"
  monkeypatch.setenv("RESEARCH_NOTEBOOK_PRESET", "tiny")
  monkeypatch.setenv("RESEARCH_NOTEBOOK_WORKDIR", str(tmp_path))
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
  monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
  client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                   resources={"metadata": {"path": str(ROOT)}})
  client.execute()


def test_install_cell_takes_the_repository_url_as_a_form_field():
  for path in NOTEBOOKS:
    nb = nbformat.read(path, as_version=4)
    install = next(c.source for c in nb.cells if c.source.startswith("# Install"))
    field = next(l for l in install.splitlines() if l.startswith("REPO_URL = "))
    assert field.endswith('# @param {type:"string"}'), f"{path.name}: {field}"
    assert "OWNER" not in field and "REPO_URL = os.environ" not in install


@pytest.mark.parametrize("origin, default", [
    ("git@github.com:someone/research.git", "https://github.com/someone/research"),
    ("https://github.com/someone/research", "https://github.com/someone/research"),
    ("/work/main", ""), (None, "")])
def test_the_form_default_is_a_github_origin_or_empty(tmp_path, monkeypatch, origin, default):
  import importlib.util
  spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "colab" / "build_notebooks.py")
  builder = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(builder)
  subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
  if origin:
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", origin], check=True)
  monkeypatch.setattr(builder, "HERE", tmp_path)
  assert builder._default_repo_url() == default
  table = builder.readme_table()
  assert ("colab.research.google.com/github/someone/research/blob/main/colab/garg2022.ipynb"
          in table) == bool(default)
