"""The `stdlib` LM source (issue 18 §2): this Python's own .py files as a corpus that every
machine has, split into training and held-out files by a hash of each path."""
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from research import cli, config_check
from research.data import text as text_lib
from research.errors import InputError
from research.tasks import lm

ROOT = Path(__file__).resolve().parents[1]


def _tree(root: Path) -> Path:
  """A small fake standard library: code, a test suite and site-packages (both skipped)."""
  for rel, body in {"a.py": "import os\n", "pkg/b.py": "def f(x):\n  return x\n",
                    "pkg/c.py": "class C:\n  pass\n", "test/test_a.py": "TESTS\n",
                    "pkg/tests/t.py": "TESTS\n", "site-packages/x/y.py": "THIRD PARTY\n",
                    "notes.txt": "NOT PYTHON\n"}.items():
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(body)
  return root


def test_files_are_sorted_and_skip_tests_and_site_packages(tmp_path):
  root, files = text_lib.stdlib_files(str(_tree(tmp_path)))
  assert root == tmp_path and files == ["a.py", "pkg/b.py", "pkg/c.py"]
  # This interpreter's own: hundreds of files, none from a test suite or site-packages.
  root, files = text_lib.stdlib_files("")
  assert root == Path(sysconfig.get_paths()["stdlib"]) and len(files) > 300
  assert files == sorted(files) and "os.py" in files
  assert not [f for f in files if set(f.split("/")[:-1]) & set(text_lib.STDLIB_SKIP)]


def test_the_real_stdlib_is_deterministic_non_empty_and_split_by_file():
  train, valid, info = text_lib.stdlib_texts("", 0.05)
  again = text_lib.stdlib_texts("", 0.05)
  assert (train, valid, info) == again
  assert info["bytes"][0] > 5_000_000 and info["bytes"][1] > 100_000, info
  assert info["bytes"] == [sum(len(d.encode()) for d in docs) for docs in (train, valid)]
  assert len(train) == info["files"][0] and len(valid) == info["files"][1]
  _, files = text_lib.stdlib_files("")
  held = {f for f in files if text_lib.held_out(f, 0.05)}
  assert len(held) == info["files"][1] and 0.02 < len(held) / len(files) < 0.1
  # A file's side depends on its path alone: adding files moves nothing.
  assert all(text_lib.held_out(f, 0.05) == (f in held) for f in files)
  # The first N files of each split, same order.
  t3, v3, info3 = text_lib.stdlib_texts("", 0.05, limit=3)
  assert t3 == train[:3] and v3 == valid[:3] and info3["files"] == [3, 3]


def test_splits_are_disjoint_and_cover_every_file(tmp_path):
  root = tmp_path / "lib"
  for i in range(40):
    (root / f"m{i:02d}.py").parent.mkdir(parents=True, exist_ok=True)
    (root / f"m{i:02d}.py").write_text(f"# module {i}\nX = {i}\n")
  train, valid, info = text_lib.stdlib_texts(str(root), 0.25)
  assert info["files"][0] + info["files"][1] == 40 and min(info["files"]) > 0
  assert not set(train) & set(valid)
  assert sorted(train + valid) == sorted(f"# module {i}\nX = {i}\n" for i in range(40))
  # Negative control: another fraction moves files, so the split is not fixed by accident.
  assert text_lib.stdlib_texts(str(root), 0.6)[2]["files"] != info["files"]


def test_missing_or_empty_stdlib_is_a_one_line_input_error(tmp_path):
  with pytest.raises(InputError, match="no such directory") as e:
    text_lib.stdlib_files(str(tmp_path / "nope"))
  assert "\n" not in str(e.value) and "config.task.path" in str(e.value)
  (tmp_path / "empty" / "test").mkdir(parents=True)
  (tmp_path / "empty" / "test" / "t.py").write_text("only tests\n")
  with pytest.raises(InputError, match="holds no .py files") as e:
    text_lib.stdlib_files(str(tmp_path / "empty"))
  assert "\n" not in str(e.value)
  one = tmp_path / "one"
  one.mkdir()
  (one / "a.py").write_text("x = 1\n")
  with pytest.raises(InputError, match="valid_fraction"):  # nothing left to hold out
    text_lib.stdlib_texts(str(one), 0.05)


def test_the_command_line_refuses_a_missing_stdlib_dir_in_one_line(tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "research.main", "--config=configs/lm_ladder.py:cpu",
       f"--workdir={tmp_path / 'run'}", f"--config.task.path={tmp_path / 'nope'}"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and "no such directory" in lines[0], proc.stderr[-2000:]
  assert not (tmp_path / "run").exists()


def test_the_lm_task_trains_on_it_and_the_cpu_ladder_uses_it(tmp_path):
  c = cli.load_config("configs/lm.py:tiny")
  c.task.source, c.task.path, c.task.valid_fraction = "stdlib", str(tmp_path / "lib"), 0.3
  for i in range(12):
    (tmp_path / "lib" / f"m{i}.py").parent.mkdir(exist_ok=True)
    (tmp_path / "lib" / f"m{i}.py").write_text(f"def f{i}(x):\n  return x * {i}\n" * 4)
  config_check.validate(c, 1)
  task = lm.LMTask(c.task, seed=0)
  assert task.corpus["files"][0] + task.corpus["files"][1] == 12
  assert task.num_train_tokens == task.corpus["bytes"][0] + task.corpus["files"][0]  # + EOS each
  ladder = cli.load_config("configs/lm_ladder.py:cpu")
  assert ladder.task.source == "stdlib" and ladder.task.path == ""
  assert ladder.train.keep_log_spaced
