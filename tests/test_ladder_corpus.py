"""The `stdlib` LM source (issue 18 §2): this Python's own .py files as a corpus that every
machine has, split into training and held-out files by a hash of each path."""
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
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


def _lib(root: Path) -> Path:
  for i in range(12):
    (root / f"m{i}.py").parent.mkdir(parents=True, exist_ok=True)
    (root / f"m{i}.py").write_text(f"def f{i}(x):\n  return x * {i}\n" * 40)
  return root


def test_few_shot_documents_mixed_in_at_the_stated_fraction(tmp_path):
  from research.probes import few_shot
  docs = few_shot.training_documents(5000)
  assert docs == few_shot.training_documents(5000)  # a fixed corpus
  assert sum(len(d) + 1 for d in docs) >= 5000 > sum(len(d) + 1 for d in docs[:-1])
  for task, doc in zip(few_shot.TASKS * 3, docs):  # the tasks in turn, each in the probe's format
    *shots, last = doc.split("\n")
    assert 1 <= len(shots) <= 8
    if task == "copy":
      assert all(a == b for a, b in (line.split(">") for line in shots + [last]))
    if task == "add":
      assert all(int(a) + int(b) == int(c) for a, b, c in
                 (line.replace("+", "=").split("=") for line in shots + [last]))
    if task == "lookup":
      key, value = last.split("=")
      assert f"{key}={value}" in shots
  # Never the probe's own prompts (drawn from their own stream).
  probe = {p + a for t in few_shot.TASKS for p, a in few_shot.prompts(t, 4, 100, seed=0)}
  assert not probe & set(docs)

  c = cli.load_config("configs/lm.py:tiny")
  c.task.source, c.task.path, c.task.valid_fraction = "stdlib", str(_lib(tmp_path / "lib")), 0.3
  plain = lm.LMTask(c.task, seed=0)
  c.task.synthetic_fraction = 0.25
  config_check.validate(c, 1)
  mixed = lm.LMTask(c.task, seed=0)
  info = mixed.corpus["synthetic"]
  assert info["bytes"] / mixed.num_train_tokens == pytest.approx(0.25, abs=0.01)
  assert mixed.num_train_tokens == plain.num_train_tokens + info["bytes"]
  # Held-out text is the corpus's own: the ICL score and loss are measured on the same windows.
  assert (mixed.eval_windows == plain.eval_windows).all()
  stream = np.asarray(mixed.rows.gather(np.arange(len(mixed.rows)))).ravel()
  text = mixed.tokenizer.decode(stream)
  assert few_shot.training_documents(1)[0] in text and "def f3(x)" in text
  assert "synthetic" not in plain.corpus
  # Negative control: fraction 0 is the plain corpus; a fraction of 1 or one on the synthetic
  # source (uniform ids, no text) is refused in one line.
  for bad in ({"synthetic_fraction": 1.0}, {"synthetic_fraction": 0.2, "source": "synthetic",
                                            "vocab_size": 64}):
    c2 = cli.load_config("configs/lm.py:tiny")
    c2.task.source = "stdlib"
    c2.task.update(bad)
    with pytest.raises(InputError, match="synthetic_fraction"):
      config_check.validate(c2, 1)
