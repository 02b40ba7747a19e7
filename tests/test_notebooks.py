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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
  nb = nbformat.read(path, as_version=4)
  assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
      "store notebooks with outputs stripped"
  monkeypatch.setenv("RESEARCH_NOTEBOOK_PRESET", "tiny")
  monkeypatch.setenv("RESEARCH_NOTEBOOK_WORKDIR", str(tmp_path))
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
  monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
  client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                   resources={"metadata": {"path": str(ROOT)}})
  client.execute()
