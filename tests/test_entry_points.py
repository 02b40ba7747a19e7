"""One error contract for every entry point (research/cli.py): a table of malformed inputs.

Each case must exit with its documented code, print exactly one line `error: ...` on stderr
(no traceback) and leave the workdir as it was. Entry points on the process-wide absl flags
(research.main, sweep, predict) run their cases in one subprocess each,
through `cli.run` exactly as `python -m` does, with stderr captured at the file descriptor;
scripts that parse their own flags (reproduce, the experiment scripts, the benchmark) have
their table in tests/test_script_inputs.py. The negative control: the untouched-workdir check
sees the files a valid run writes.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from research import cli

ROOT = Path(__file__).resolve().parents[1]

# Runs the cases of one entry point: [{"argv", "watch"}] -> [{"code", "stderr", "changed"}].
DRIVER = r"""
import importlib, io, json, os, sys, tempfile
from pathlib import Path
from absl import flags
from research import cli

def snapshot(path):
  p = Path(path)
  if not p.exists():
    return None
  if p.is_file():
    return [("", p.stat().st_size, p.stat().st_mtime_ns)]
  return sorted((str(f.relative_to(p)), f.stat().st_size if f.is_file() else -1,
                 f.stat().st_mtime_ns) for f in p.rglob("*"))

module_name, cases = sys.argv[1], json.loads(sys.argv[2])
module = importlib.import_module(module_name)
getattr(module, "_define_flags", lambda: None)()
os._exit = lambda code: (_ for _ in ()).throw(SystemExit(code))  # keep the driver alive
results = []
for case in cases:
  flags.FLAGS.unparse_flags()
  before = snapshot(case["watch"])
  sys.argv = [module_name, *case["argv"]]
  with tempfile.TemporaryFile() as err:
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(err.fileno(), 2)
    code = None
    try:
      cli.run(module.main)
    except SystemExit as e:
      code = e.code
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
    err.seek(0)
    text = err.read().decode("utf-8", "replace")
  results.append({"code": code, "stderr": text, "changed": snapshot(case["watch"]) != before})
print("RESULTS " + json.dumps(results))
"""


def _drive(module: str, cases: list[tuple]) -> list[dict]:
  """cases: (argv, watched path) -> one result per case, from one subprocess."""
  payload = json.dumps([{"argv": a, "watch": str(w)} for a, w in cases])
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  proc = subprocess.run([sys.executable, "-c", DRIVER, module, payload], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600)
  line = [l for l in proc.stdout.splitlines() if l.startswith("RESULTS ")]
  assert line, proc.stderr[-3000:]
  return json.loads(line[-1][len("RESULTS "):])


def _check(name: str, result: dict, code: int, needle: str) -> None:
  lines = result["stderr"].strip().splitlines()
  assert result["code"] == code, (name, result)
  assert len(lines) == 1 and lines[0].startswith("error: "), (name, result["stderr"][-2000:])
  assert needle in lines[0], (name, lines[0])
  assert not result["changed"], (name, "the workdir was touched")


# ----------------------------------------------------------------------------- input files
@pytest.fixture(scope="module")
def files(tmp_path_factory):
  d = tmp_path_factory.mktemp("inputs")
  f = {}

  def write(name, text):
    (d / name).write_text(text)
    f[name] = str(d / name)

  write("syntax.py", "def get_config(:\n  pass\n")
  write("raises.py", "raise RuntimeError('boom at import')\n")
  write("no_get_config.py", "X = 1\n")
  write("get_config_raises.py", "def get_config(preset='a'):\n  raise KeyError('no_such_key')\n")
  write("no_get_sweep.py", "from configs.icl_regression import get_config\n")
  write("sweep_heads.py", "from configs.icl_regression import get_config\n"
        "def get_sweep(name):\n  return [{'model.num_heads': 2}, {'model.num_heads': 5}]\n")
  write("bad_sweep.py", "from configs.icl_regression import get_config\n"
        "def get_sweep(name):\n  return [{'model.widht': 64}]\n")
  write("failing_sweep.py", "from configs import icl_regression\n"
        "def get_config(preset='tiny'):\n"
        "  c = icl_regression.get_config(preset)\n"
        "  c.train.num_steps, c.train.compile_cache_dir = 20, ''\n"
        "  return c\n"
        "def get_sweep(name):\n  return [{'optim.learning_rate': 1e15}]\n")
  write("no_preset_arg.py", "from configs import icl_regression\n"
        "def get_config():\n  return icl_regression.get_config('tiny')\n")
  write("value_error.py", "def get_config(preset='a'):\n  return int('abc')\n")
  write("sys_exit.py", "import sys\ndef get_config(preset='a'):\n  sys.exit('bye')\n")
  write("sys_exit_at_import.py", "import sys\nsys.exit(3)\n")
  write("sibling_import.py", "from my_helpers import WIDTH\n")
  write("frozen.py", "import ml_collections\nfrom configs import icl_regression\n"
        "def get_config(preset='tiny'):\n"
        "  c = icl_regression.get_config(preset)\n"
        "  c.train.num_steps, c.train.compile_cache_dir = 20, ''\n"
        "  return ml_collections.FrozenConfigDict(c)\n")
  for name, body in (("dict", "{'model.width': 64}"), ("empty", "[]"),
                     ("raises", "{}['x']"),
                     ("twice", "[{'model.width': 64, 'seed': 1}, {'seed': 1, 'model.width': 64}]")):
    write(f"sweep_{name}.py", "from configs.icl_regression import get_config\n"
          f"def get_sweep(name):\n  return {body}\n")
  (d / "a_directory").mkdir()
  f["a_directory"] = str(d / "a_directory")
  f["missing"] = str(d / "nope.py")
  write("missing_column.csv", "text,sentiment\nnice film,pos\nbad film,neg\n")
  write("empty.csv", "")
  write("header_only.csv", "text,label\n")
  write("one_class.csv", "text,label\n" + "".join(f"film {i},pos\n" for i in range(20)))
  write("unbalanced_quote.csv", 'text,label\n"a great film,pos\nbad film,neg\n')
  write("huge_field.csv", "text,label\n" + "x" * (50 << 20) + ",pos\nbad,neg\n")
  write("empty.txt", "")
  # Latin-1, as a spreadsheet exports it: it trained on U+FFFD in place of each accent.
  (d / "latin1.csv").write_bytes(b"text,label\n" + b"un caf\xe9 tr\xe8s bon,pos\nbad,neg\n" * 10)
  f["latin1.csv"] = str(d / "latin1.csv")
  write("tab_separated.csv", "text\tlabel\nhello\tpos\nbye\tneg\n")
  write("rare_class.csv", "text,label\n" + "".join(f"good film {i},pos\n" for i in range(50))
        + "bad film,neg\n")  # at seed 4 the one neg row is drawn into the test split
  (d / "random.bin").write_bytes(bytes(range(128, 256)) * 4)
  f["random.bin"] = str(d / "random.bin")
  write("texts.txt", "a\n")
  write("a_file", "not a directory\n")
  return f


TINY = "--config=configs/icl_regression.py:tiny"
TC = ["--config=configs/text_classification.py:tiny"]
LM = ["--config=configs/lm.py:tiny", "--config.task.source=file"]


def test_research_main_malformed_inputs(files, tmp_path):
  wd = tmp_path / "run"  # never created by a failing command
  table = [
      ("config missing", [f"--config={files['missing']}"], 2, "no such file"),
      ("config is a directory", [f"--config={files['a_directory']}"], 2, "is a directory"),
      ("config syntax error", [f"--config={files['syntax.py']}"], 2, "syntax error"),
      ("config raises at import", [f"--config={files['raises.py']}"], 2, "boom at import"),
      ("config without get_config", [f"--config={files['no_get_config.py']}"], 2,
       "defines no get_config"),
      ("get_config raises", [f"--config={files['get_config_raises.py']}:a"], 2, "no_such_key"),
      ("a preset for a get_config that takes none", [f"--config={files['no_preset_arg.py']}:tiny"],
       2, "this file's get_config takes no preset; drop ':tiny'"),
      ("get_config raises a ValueError of its own", [f"--config={files['value_error.py']}:a"], 2,
       "invalid literal for int() with base 10: 'abc' (get_config('a') raised it; fix the config"),
      ("get_config calls sys.exit", [f"--config={files['sys_exit.py']}:a"], 2,
       "get_config('a') called sys.exit('bye'); a config file returns its ConfigDict"),
      ("sys.exit at import (was: no line, exit 3)", [f"--config={files['sys_exit_at_import.py']}"],
       2, "called sys.exit(3) when imported"),
      ("config imports a module beside it", [f"--config={files['sibling_import.py']}"], 2,
       "the config file's own directory is not on the import path"),
      ("unknown preset", ["--config=configs/icl_regression.py:nope"], 2,
       "unknown preset 'nope'; choose one of: tiny, cpu"),
      ("empty preset after ':'", ["--config=configs/icl_regression.py:"], 2,
       "no preset after ':'"),
      ("unknown field", [TINY, "--config.model.widht=3"], 2, "did you mean 'model.width'"),
      ("unknown section", [TINY, "--config.modle.width=3"], 2, "unknown config field 'modle'"),
      ("wrong type", [TINY, "--config.model.width=abc"], 2, "holds an int"),
      ("section as a field", [TINY, "--config.model=3"], 2, "is a section"),
      ("invalid choice", [TINY, "--config.model.name=rnn"], 2, "config.model.name='rnn'"),
      ("decay before warmup", [TINY, "--config.optim.decay_steps=5"], 2,
       "must exceed config.optim.warmup_steps=10"),
      ("bad mesh", [TINY, "--config.mesh.data=3"], 2, "config.mesh"),
      ("task switched to one whose fields the config lacks", [TINY, "--config.task.name=lm"], 2,
       "config.task.name='lm': the task's check_config reads a field"),
      ("negative num_steps", [TINY, "--config.train.num_steps=-1"], 2,
       "config.train.num_steps=-1 must be positive"),
      ("sharding rules not pairs", [TINY, "--config.sharding.rules=[1,2]"], 2,
       "config.sharding.rules entry 1"),
      ("sharding rule to an unknown mesh axis",
       [TINY, "--config.sharding.rules=(('mlp','tnsor'),)"], 2, "('mlp', 'tnsor')"),
      ("csv missing column", [*TC, f"--config.task.path={files['missing_column.csv']}"], 2,
       "has no column 'label'"),
      ("csv empty", [*TC, f"--config.task.path={files['empty.csv']}"], 2, "is empty"),
      ("csv header only", [*TC, f"--config.task.path={files['header_only.csv']}"], 2,
       "no data rows"),
      ("csv one class", [*TC, f"--config.task.path={files['one_class.csv']}"], 2,
       "at least 2 classes"),
      ("csv unbalanced quote", [*TC, f"--config.task.path={files['unbalanced_quote.csv']}"], 2,
       "line 2: unexpected end of data: an unbalanced or stray quote"),  # was "line 1"
      ("csv 50 MB field", [*TC, f"--config.task.path={files['huge_field.csv']}"], 2,
       "field limit"),
      ("csv missing file", [*TC, f"--config.task.path={files['missing']}"], 2, "no such file"),
      ("lm empty text file", [*LM, f"--config.task.path={files['empty.txt']}"], 2, "is empty"),
      ("csv not UTF-8 (exit 0, trained on U+FFFD)", [*TC, f"--config.task.path={files['latin1.csv']}"],
       2, "latin1.csv' is not UTF-8 text (invalid continuation byte at byte 17); save it as UTF-8"),
      ("csv tab-separated (its fix said: set text_column)",
       [*TC, f"--config.task.path={files['tab_separated.csv']}"], 2,
       "its header is one column, 'text\\tlabel': the file is not comma-separated; save it as "
       "a CSV, with commas between the fields"),
      ("csv text and label the same column (test accuracy 1)",
       [*TC, f"--config.task.path={files['one_class.csv']}", "--config.task.text_column=label"], 2,
       "config.task.text_column and config.task.label_column are both 'label': the model would "
       "read its labels"),
      ("csv a class with no training row (trained without it, exit 0)",
       [*TC, f"--config.task.path={files['rare_class.csv']}", "--config.seed=4"], 2,
       "rare_class.csv': no row of class 'neg' (1 row) is in the training split (config.seed=4, "
       "config.task.test_fraction=0.2), so the model could never predict it; add rows of that "
       "class, or choose another seed or test_fraction"),
      ("lm text file not UTF-8", [*LM, f"--config.task.path={files['random.bin']}"], 2,
       "random.bin' is not UTF-8 text (invalid start byte at byte 0); save it as UTF-8"),
      ("unknown flag", [TINY, "--wrokdir=x"], 2, "unknown flag --wrokdir (did you mean --workdir?)"),
      ("positional argument", [TINY, "extra"], 2, "unexpected arguments"),
      ("override without value", [TINY, "--config.model.width"], 2, "needs a value"),
      # Before: jax.distributed's ValueError traceback, exit 1.
      ("processes without a coordinator", [TINY, "--num_processes=2"], 2,
       "needs --coordinator_address=HOST:PORT"),
      ("process id out of range", [TINY, "--num_processes=2", "--process_id=3",
                                   "--coordinator_address=localhost:12345"], 2,
       "--process_id=3 must be in [0, 2)"),
      ("process id without processes", [TINY, "--process_id=1"], 2, "need --num_processes=N > 1"),
      # Before: exit 0 with JAX's two-line warning, and nothing cached.
      ("compile cache is a file", [TINY, f"--config.train.compile_cache_dir={files['a_file']}"],
       2, "compile_cache_dir=" + str(files["a_file"]) + " is a file, not a directory"),
      # Before: the model's and the data's log lines, then the error.
      ("init_from where no run is", [TINY, f"--config.init_from={tmp_path / 'nowhere'}"], 2,
       "has no checkpoints/ directory"),
  ]
  cases = [(argv + [f"--workdir={wd}"], wd) for _, argv, _, _ in table]
  cases += [([TINY, "--config.train.num_steps=20"], wd)]  # ... a workdir holding no run
  workdir_cases = [
      ("workdir is a file", files["a_file"], "is a file, not a directory"),
      ("workdir inside a file", f"{files['a_file']}/run", "cannot be created"),
  ]
  cases += [([TINY, f"--workdir={w}"], w) for _, w, _ in workdir_cases]
  valid = ([TINY, "--config.train.num_steps=20", "--config.train.compile_cache_dir=",
            f"--workdir={tmp_path / 'valid'}"], tmp_path / "valid")
  frozen = ([f"--config={files['frozen.py']}:tiny", "--config.train.log_every=10",
             f"--workdir={tmp_path / 'frozen'}"], tmp_path / "frozen")
  results = _drive("research.main", cases + [frozen, valid])
  assert results.pop(-2)["code"] in (0, None)  # a FrozenConfigDict runs (and takes overrides)
  for (name, _, code, needle), r in zip(table, results):
    _check(name, r, code, needle)
  missing_workdir = results[len(table)]
  _check("missing --workdir", missing_workdir, 2,
         "--workdir=DIR is missing; the command needs --config=FILE[:PRESET] and --workdir=DIR")
  for (name, _, needle), r in zip(workdir_cases, results[len(table) + 1:]):
    _check(name, r, 2, needle)
  # Negative controls: a valid input exits 0, and its files are seen by the workdir check.
  assert results[-1]["code"] in (0, None), results[-1]["stderr"][-2000:]
  assert results[-1]["changed"] and (tmp_path / "valid" / "summary.json").is_file()


def test_sweep_and_predict_malformed_inputs(files, tmp_path):
  wd = tmp_path / "sweep"
  table = [
      ("sweep unknown field", [TINY, "--sweep=scale", "--config.model.widht=3"],
       "unknown config field 'widht'"),
      ("sweep unknown name", [TINY, "--sweep=nope"], "unknown sweep 'nope'"),
      ("sweep ensemble of other shapes", [TINY, "--sweep=scale", "--ensemble=on"],
       "pass --ensemble=auto to run these points one by one"),  # named no fix
      # Before: exit 0, every run at the sweep's own widths.
      ("sweep point replaces an override", [TINY, "--sweep=scale", "--config.model.width=7"],
       "--config.model.width: --sweep=scale sets model.width in every run"),
      ("sweep without get_sweep", [f"--config={files['no_get_sweep.py']}:tiny", "--sweep=scale"],
       "defines no get_sweep"),
      ("sweep point with an unknown field", [f"--config={files['bad_sweep.py']}:tiny",
                                             "--sweep=x"], "did you mean 'model.width'"),
      ("sweep point the config check refuses (said the fields alone)",
       [f"--config={files['sweep_heads.py']}:tiny", "--sweep=x"],
       "sweep point 1 of 2 (model.num_heads=5): config.model.width=32 is not divisible by "
       "config.model.num_heads=5"),
      ("sweep config missing", [f"--config={files['missing']}", "--sweep=scale"], "no such file"),
      ("get_sweep returns a dict", [f"--config={files['sweep_dict.py']}:tiny", "--sweep=x"],
       "it must return a non-empty list of {'field.path': value} dicts"),
      ("get_sweep returns no runs", [f"--config={files['sweep_empty.py']}:tiny", "--sweep=x"],
       "returned []; it must return a non-empty list"),
      ("get_sweep raises", [f"--config={files['sweep_raises.py']}:tiny", "--sweep=x"],
       "get_sweep('x') in"),
      # Before: both trained (twice the time) and the table had the same row twice.
      ("get_sweep gives a point twice", [f"--config={files['sweep_twice.py']}:tiny", "--sweep=x"],
       "gives point 0 and point 1 the same overrides"),
      # Before: the pod sizes (to 6.9B parameters) trained on the cpu preset's byte corpus.
      ("pod ladder on the cpu preset", ["--config=configs/lm_ladder.py:cpu",
                                        "--sweep=ladder@v5e:4x4"], "on preset 'cpu'; use a pod"),
      ("pod ladder on the default preset", ["--config=configs/lm_ladder.py",
                                            "--sweep=ladder@v5e:4x4"], "on preset 'cpu'; use a pod"),
      ("cpu ladder on a pod preset", ["--config=configs/lm_ladder.py:1b", "--sweep=ladder"],
       "is the CPU ladder"),
  ]
  cases = [(argv + [f"--workdir={wd}"], wd) for _, argv, _ in table]
  failing = ([f"--config={files['failing_sweep.py']}:tiny", "--sweep=x", "--ensemble=off",
              f"--workdir={tmp_path / 'failing'}"], tmp_path / "failing")
  results = _drive("research.sweep", cases + [failing])
  for (name, _, needle), r in zip(table, results):
    _check(name, r, 2, needle)
  # A sweep in which a run failed (a non-finite loss) exits 6 naming it.
  last = results[-1]["stderr"].strip().splitlines()[-1]
  assert results[-1]["code"] == 6, results[-1]["stderr"][-2000:]
  assert last.startswith("error: 1 of 1 runs failed: 000_learning_rate=1000000000000000.0"), last
  assert "Traceback" not in results[-1]["stderr"]

  run = tmp_path / "not_a_run"
  run.mkdir()
  regression, broken = tmp_path / "regression_run", tmp_path / "broken_run"
  no_task = tmp_path / "no_task_run"
  for d, text in ((regression, '{"task": {"name": "regression"}}'), (broken, "{oops"),
                  (no_task, '{"model": {}}')):
    d.mkdir()
    (d / "config.json").write_text(text)
  table = [
      ("predict --file missing", [f"--workdir={run}", f"--file={files['missing']}"],
       "no such file"),
      ("predict --file is a directory", [f"--workdir={run}", f"--file={files['a_directory']}"],
       "is a directory"),
      ("predict workdir without a run", [f"--workdir={run}", "--text=great"], "no config.json"),
      ("predict workdir missing (said: holds no config.json)",
       [f"--workdir={tmp_path / 'nowhere'}", "--text=great"],
       "nowhere does not exist; pass the --workdir of a finished text_classification run"),
      ("predict workdir a file", [f"--workdir={files['texts.txt']}", "--text=great"],
       "texts.txt is a file; pass the directory of a finished text_classification run"),
      ("predict without text", [f"--workdir={run}"], "are required"),
      ("predict on a regression run", [f"--workdir={regression}", "--text=hi"],
       "is a 'regression' run, which does not predict labels"),
      ("predict on a broken config.json", [f"--workdir={broken}", "--text=hi"],
       "config.json does not hold a config (not a JSON object), broken JSON at line 1 column 2; "
       "put the run's config.json back"),
      ("predict on a config.json without a task", [f"--workdir={no_task}", "--text=hi"],
       "config.json is not a run's config (no task.name)"),
      ("predict an empty --text", [f"--workdir={run}", "--text= "], "--text is empty"),
      # Read as not given: --file= ignored (an unset shell variable, most often).
      ("predict an empty --file", [f"--workdir={run}", "--text=hi", "--file="],
       "--file= is empty; give it a value or drop the flag"),
      ("predict --file not a regular file", [f"--workdir={run}", "--file=/dev/null"],
       "is not a regular file"),
  ]
  results = _drive("research.predict", [(argv, run) for _, argv, _ in table])
  for (name, _, needle), r in zip(table, results):
    _check(name, r, 2, needle)


def test_run_script_logs_without_absl_preinit_warning():
  """A script's log lines reach stderr without absl's 'Logging before flag parsing' line (its
  flags live in a private FlagValues, so the global ones were never parsed)."""
  code = ("from absl import logging; from research import cli; "
          "cli.run_script(lambda argv: logging.info('progress line'))")
  proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert "progress line" in proc.stderr and "before flag parsing" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("module", ["research.main", "research.sweep"])
def test_help_exits_0_and_lists_the_config_flag(module):
  """absl's own --help exits 1 (here: an internal error) and lists only the main module's
  flags, which left out --config (defined in research/cli.py)."""
  proc = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert "--config:" in proc.stdout and "--workdir:" in proc.stdout, proc.stdout


def test_usage_lines_keep_their_continuations_in_help():
  """A module docstring is a command's --help: in a plain string a backslash ending a line joins
  the two usage lines (research.aot printed `--topology=v5p:4x4x4       [--config.a.b=v ...]`
  on one line), so a docstring with a continuation must be raw. The control: the joined text
  a plain string makes of one."""
  import ast
  joined = []
  for path in sorted([*ROOT.glob("research/**/*.py"), *ROOT.glob("experiments/**/*.py"),
                      *ROOT.glob("configs/*.py")]):
    source = path.read_text(encoding="utf-8")
    body = ast.parse(source).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
      literal = ast.get_source_segment(source, body[0].value)
      if "\\\n" in literal and not literal.startswith("r"):
        joined.append(str(path.relative_to(ROOT)))
  assert joined == []
  assert "\\" not in ast.literal_eval('"""a \\\n  b"""')  # the control
