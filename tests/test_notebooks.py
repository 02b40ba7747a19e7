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


def _setup_cell(path: Path) -> str:
  """The notebook's cell that sets PRESET and WORKDIR."""
  nb = nbformat.read(path, as_version=4)
  return next(c.source for c in nb.cells if c.cell_type == "code" and "WORKDIR = " in c.source)


def _workdir(setup: str, preset: str, monkeypatch) -> str:
  """WORKDIR as the setup cell's PRESET and WORKDIR lines compute it for `preset`."""
  monkeypatch.setenv("RESEARCH_NOTEBOOK_PRESET", preset)
  monkeypatch.setenv("RESEARCH_NOTEBOOK_WORKDIR", "/nb")
  scope = {"os": os}
  exec("\n".join(l for l in setup.splitlines() if l.startswith(("PRESET =", "WORKDIR ="))), scope)
  return scope["WORKDIR"]


# Calls that write a run's files: each takes its folder from WORKDIR.
_WRITERS = ("train_and_evaluate(", "train_or_reuse(", "reproduce.reproduce(", ".run(", "refit(",
            "probe_run(", "classification_run(")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_each_preset_trains_into_its_own_folder(path, monkeypatch):
  """WORKDIR did not depend on the preset: after tiny, PRESET = 'cpu' in the same session
  stopped at "holds a run of another config" (quickstart) or "holds garg2022's results of the
  tiny preset" (reproduce), naming CLI flags a notebook has not got (a trial)."""
  setup = _setup_cell(path)
  tiny, cpu = (_workdir(setup, p, monkeypatch) for p in ("tiny", "cpu"))
  assert tiny != cpu and tiny.endswith("tiny") and cpu.endswith("cpu"), (tiny, cpu)
  nb = nbformat.read(path, as_version=4)
  for cell in nb.cells:
    install = cell.source.startswith("# Install")  # its subprocess.run writes no run
    if cell.cell_type == "code" and cell.source != setup and not install and any(
        w in cell.source for w in _WRITERS):
      assert "WORKDIR" in cell.source and "'/tmp" not in cell.source, cell.source


def test_each_preset_control_the_old_workdir_was_shared(monkeypatch):
  old = "PRESET = os.environ.get('RESEARCH_NOTEBOOK_PRESET', 'tiny')\n" \
        "WORKDIR = os.environ.get('RESEARCH_NOTEBOOK_WORKDIR', '/tmp/garg2022')"
  assert _workdir(old, "tiny", monkeypatch) == _workdir(old, "cpu", monkeypatch)


def _devices_stderr(setup: str) -> str:
  """stderr of the setup cell's lines up to `import jax`, then jax.devices(), run as a fresh
  kernel would: without the JAX_PLATFORMS=cpu that tests/conftest.py sets."""
  head = setup[:setup.index("import jax\n")] + "import jax\nprint(jax.devices())\n"
  env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
  env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
  proc = subprocess.run([sys.executable, "-c", "import os\n" + head], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr
  return proc.stderr


def _libtpu_probe_would_print() -> bool:
  """libtpu installed (the dev extra) on a host research/__init__.py takes for CPU-only."""
  import importlib.util
  import research
  return importlib.util.find_spec("libtpu") is not None and not (
      research._glob.glob("/dev/accel*") or research._glob.glob("/dev/vfio/[0-9]*")
      or research._glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/proc/driver/nvidia"))


def test_the_devices_cell_prints_no_libtpu_block_on_a_cpu_host():
  """Every notebook's setup cell imports research before jax, as the CLI entry points do, so on
  a CPU host with libtpu (the dev extra) jax.devices() printed "E0000 ... INVALID_ARGUMENT:
  unexpected worker hostname" (a trial). Control: the same lines without `import research`
  print it."""
  for path in NOTEBOOKS:
    setup = _setup_cell(path)
    assert setup.index("import research") < setup.index("import jax"), path.name
  if not _libtpu_probe_would_print():
    pytest.skip("needs libtpu on a host without a TPU or GPU")
  setup = _setup_cell(ROOT / "colab" / "quickstart.ipynb")
  assert "TPU" not in _devices_stderr(setup)
  control = _devices_stderr(setup.replace("import research", "pass", 1))
  assert "unexpected worker hostname" in control, control
