"""The error contract (research/cli.py) for the scripts that parse their own flags:
reproduce, the paper scripts, the benchmark and the profiler, run in-process through
`cli.run_script`. Each malformed input exits with its documented code and exactly one line
`error: ...` on stderr, and writes nothing; a preemption exits 0 with its line. The negative
control: a valid input through the same wrapper exits 0.
"""
import sys

import pytest
from absl import flags

from research import cli
from research.errors import InputError


@pytest.mark.parametrize("module", ["experiments.garg2022", "experiments.raventos2023",
                                    "experiments.reddy2023", "experiments.chan2022",
                                    "experiments.olsson2022", "experiments.xie2021",
                                    "experiments.schaeffer2023", "experiments.nanda2023",
                                    "experiments.besiroglu2024", "experiments.scaling_laws",
                                    "experiments.ladder"])
def test_every_experiment_script_has_the_same_command_line(module, tmp_path):
  """One layout (issue 17): each paper's module takes --preset, --workdir and --seed and
  exposes run(preset, workdir, seed); --workdir is required."""
  import importlib
  import inspect
  mod = importlib.import_module(module)
  assert list(inspect.signature(mod.run).parameters)[:3] == ["preset", "workdir", "seed"]
  assert inspect.signature(mod.run).parameters["seed"].default == 0
  with pytest.raises(InputError, match="--workdir=DIR is required"):
    mod.main(["--preset=tiny"])
  with pytest.raises(InputError, match="--seed=-1"):
    mod.main(["--preset=tiny", "--seed=-1", f"--workdir={tmp_path / 'w'}"])
  assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("value", ["a", "-1", "1.5", "", " 3", "\u00b2", "5000000000"])
@pytest.mark.parametrize("module", ["experiments.garg2022", "experiments.besiroglu2024"])
def test_a_bad_seed_is_one_plain_line(module, value, tmp_path, monkeypatch, capfd):
  """--seed=a said "invalid literal for int() with base 10: 'a'" (Python's words), ' 3' ran
  seed 3, and 5000000000 was refused by the config check naming --config.seed, a flag the
  scripts lack. Every script's --seed (common.define_run_flags) now reads as reproduce's
  --seeds does: exit 2, one line, nothing written."""
  import importlib
  monkeypatch.setattr(sys, "argv", [module, "--preset=tiny", f"--seed={value}",
                                    f"--workdir={tmp_path / 'w'}"])
  with pytest.raises(SystemExit) as e:
    cli.run_script(importlib.import_module(module).main)
  lines = capfd.readouterr().err.strip().splitlines()
  assert e.value.code == 2 and lines == [
      f"error: flag --seed={value}: give the seed as a non-negative integer below 2**32, e.g. "
      "--seed=1; see --help for the flags"], lines
  assert not (tmp_path / "w").exists()


def test_a_good_seed_parses_as_an_int():
  """Control: --seed=7, --seed 7 and the default give ints."""
  from experiments import common
  define = lambda fv: common.define_run_flags(fv, ["tiny"], default="tiny")
  assert [cli.parse_flags(define, argv).seed for argv in (["--seed=7"], ["--seed", "7"], [])] == [
      7, 7, 0]
  assert common.SeedParser().parse("4294967295") == 2 ** 32 - 1


@pytest.mark.parametrize("module,argv,code,needle", [
    ("experiments.reproduce", ["nope"], 2, "NAME is 'nope'"),
    ("experiments.reproduce", ["schaeffer2023", "--preset=paper"], 2, "no 'paper' preset"),
    ("experiments.reproduce", ["garg2022", "--preset=huge"], 2, "--preset=huge"),
    ("experiments.reproduce", [], 2, "no NAME given; give one of: garg2022"),  # not 'nothing'
    # Flags the mode does not read: exit 0 before, as if they were not given.
    ("experiments.reproduce", ["garg2022", "--gallery"], 2,
     "--gallery has no effect with `reproduce garg2022`: it applies to all"),
    ("experiments.reproduce", ["--list", "--seeds=0"], 2, "--seeds has no effect with --list"),
    ("experiments.reproduce", ["--list", "--preset=tiny"], 2, "--preset has no effect with --list"),
    ("experiments.reproduce", ["--controls", "--seeds=5"], 2,
     "--seeds has no effect with --controls"),
    ("experiments.reproduce", ["besiroglu2024", "--seeds=1"], 2,
     "--seeds has no effect with `reproduce besiroglu2024`"),
    ("experiments.reproduce", ["gallery", "--seeds=1"], 2,
     "--seeds has no effect with `reproduce gallery`"),
    ("experiments.reproduce", ["--controls", "--seeds=x"], 2, "--seeds=x: give seeds"),
    ("experiments.reproduce", ["garg2022", "--real_untrained"], 2, "add --controls"),
    ("experiments.reproduce", ["garg2022", "--seeds=0,0"], 2,
     "--seeds=0,0 gives '0' more than once; give each value once"),
    # Before: exit 6, "the experiment failed" per seed, with a summary and a run directory.
    ("experiments.reproduce", ["garg2022", "--seeds=0,5000000000"], 2,
     "5000000000 is out of range; seeds are integers in [0, 2**32)"),
    ("experiments.reproduce", ["--list", "extra"], 2, "unexpected arguments ['extra']"),
    ("experiments.schaeffer2023", ["--set", "model.widht=3"], 2, "did you mean 'model.width'"),
    # more devices than the host has: trained on the fewer there were, exit 0 (or named a
    # batch-size fix that was not the fault)
    ("experiments.schaeffer2023", ["--preset=tiny", "--devices=99"], 2, "--devices=99 but this host has"),
    ("experiments.scaling_laws", ["--preset=tiny", "--devices=99"], 2, "--devices=99 but this host has"),
    ("experiments.schaeffer2023", ["--set", "model.width"], 2, "is not FIELD=VALUE"),
    ("experiments.schaeffer2023", ["--sizes=0,99"], 2, "indices must be distinct integers in"),
    ("experiments.schaeffer2023", ["--sizes=-1"], 2, "--sizes=-1: indices must be distinct"),
    ("experiments.schaeffer2023", ["--sizes=0,00"], 2, "--sizes=0,00 gives '00' more than once"),
    # A --set that the sweep's points or --seed replace in every run was silently dropped.
    ("experiments.schaeffer2023", ["--set", "seed=5"], 2, "seed is the --seed flag; use --seed=5"),
    ("experiments.schaeffer2023", ["--set", "model.width=48"], 2,
     "--set model.width: --sweep=scale sets model.width in every run"),
    ("experiments.scaling_laws", ["--set", "train.num_steps=9"], 2,
     "--set train.num_steps: --sweep=scaling_grid sets train.num_steps"),
    ("experiments.schaeffer2023", ["--sizes="], 2, "--sizes= is empty"),  # not "all sizes"
    ("experiments.raventos2023", ["--pools=a"], 2, "pool sizes are integers"),
    ("experiments.reddy2023", ["--runs=foo"], 2, "unknown ['foo']"),
    ("experiments.chan2022", ["--preset=nope"], 2, "--preset=nope: value should be one of"),
    ("experiments.olsson2022", ["--preset=nope"], 2, "--preset=nope: value should be one of"),
    ("experiments.olsson2022", ["--layers=a"], 2, "--layers=a"),
    ("experiments.xie2021", ["--models=nope"], 2, "unknown ['nope']"),
    ("experiments.xie2021", ["extra"], 2, "unexpected arguments ['extra']"),
    ("experiments.nanda2023", ["--set", "task.nope=1"], 2, "unknown config field 'nope'"),
    ("experiments.nanda2023", ["--set", "task.modulus=1.5"], 2, "holds an int"),
    ("experiments.scaling_laws", ["--sweep=nope"], 2, "unknown sweep 'nope'"),
    ("experiments.besiroglu2024", ["--csv=/nonexistent/data.csv"], 2, "no such file"),
    # An empty value of a flag that is unset by default read as not given (the bundled CSV).
    ("experiments.besiroglu2024", ["--csv="], 2, "--csv= is empty; give it a value or drop"),
    ("experiments.benchmark", ["--cases=nope"], 2, "unknown ['nope']"),
    ("experiments.profile_step", ["--case=nope"], 2, "--case=nope"),
    ("experiments.profile_step", ["extra"], 2, "unexpected arguments ['extra']"),
    ("experiments.profile_step", ["--steps=5"], 2, "--steps=5 is not a multiple of"),
    ("experiments.profile_step", ["--ensemble=4", "--case=garg_standard"], 2, "drop --case"),
    ("experiments.profile_step", ["--ensemble=4", "--peer"], 2, "drop --peer"),
    ("experiments.benchmark", ["extra"], 2, "unexpected arguments ['extra']"),
    ("experiments.benchmark", ["--dtype=float13"], 2, "--dtype=float13"),
    ("experiments.benchmark", ["--cases=garg_small", "--dtype=float32", "--set",
                               "model.dtype=bfloat16"], 2, "--dtype and --set model.dtype both"),
    ("experiments.benchmark", ["--cases=garg_small", "--set", "model.widht=64"], 2,
     "model.widht"),
    # Invalid configs were measured (0 ex/s, a NaN loss in the JSON) with exit 0, and a --set
    # of the steps per call was recorded but not used.
    ("experiments.benchmark", ["--cases=garg_small", "--set", "model.width=7"], 2,
     "config.model.width=7 is not divisible by config.model.num_heads=4"),
    ("experiments.benchmark", ["--cases=garg_small", "--set", "train.batch_size=0"], 2,
     "config.train.batch_size=0 must be positive"),
    ("experiments.benchmark", ["--cases=garg_small", "--set", "train.steps_per_call=1"], 2,
     "pass --steps_per_call=1"),
    ("experiments.reproduce", ["al", "--gallery"], 2, "NAME is 'al'"),  # not "drop --gallery"
    ("experiments.benchmark", ["--out=README.md/b.json"], 2,
     "--out=README.md/b.json: README.md is a file, so the file cannot be created"),
    ("experiments.benchmark", ["--out=configs"], 2, "--out=configs is a directory"),
    ("experiments.benchmark", ["--child=sweep", "--mode=nope"], 2, "--mode=nope"),  # ran 16
    ("experiments.benchmark", ["--child=sweep", "--members=0"], 2, "--members=0"),  # exit 0
    # a misspelt field: refused before any child starts (it was refused in the child, after
    # "== garg_small" on stdout)
    ("experiments.benchmark", ["--cases=garg_small", "--steps=1", "--set", "model.nope=1"], 2,
     "unknown config field 'nope'"),
    # A flag given twice kept its last value (exit 0): a tiny preset run as cpu, a benchmark
    # of one case of two, a --set of 32 recorded where 64 was asked first.
    ("experiments.schaeffer2023", ["--preset=tiny", "--preset=cpu"], 2,
     "--preset is given 2 times, and only the last would count"),
    ("experiments.reproduce", ["schaeffer2023", "--preset=tiny", "--preset=cpu"], 2,
     "--preset is given 2 times"),
    ("experiments.benchmark", ["--cases=garg_small", "--cases=lstm"], 2,
     "--cases is given 2 times, and only the last would count; give it once (a list takes "
     "every value at once: --cases=A,B)"),
    ("experiments.benchmark", ["--cases=garg_small", "--set", "model.width=64", "--set",
                               "model.width=32"], 2, "--set model.width is given 2 times ('64', then '32'), and only the last would count"),
    ("experiments.benchmark", ["--cases=garg_small", "--set", "model.width=64", "--set",
                               "model.depth=2"], 2, "unknown config field 'depth'"),  # control
])
def test_scripts_malformed_inputs(module, argv, code, needle, tmp_path, monkeypatch, capfd):
  import importlib
  main = importlib.import_module(module).main
  out = tmp_path / "out"
  if module in ("experiments.benchmark", "experiments.profile_step"):
    full = argv
  else:
    full = argv + [f"--workdir={out}"]
  monkeypatch.setattr(sys, "argv", [module, *full])
  with pytest.raises(SystemExit) as e:
    cli.run_script(main)
  captured = capfd.readouterr()
  lines = captured.err.strip().splitlines()
  assert e.value.code == code
  assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
  assert not out.exists()
  assert not captured.out.strip(), captured.out  # refused before anything is reported


@pytest.mark.parametrize("module,argv", [
    ("experiments.profile_step", ["--case=tiny", "--peer"]),
    ("experiments.benchmark", ["--cases=garg_small", "--vs-peer"])])
def test_the_peer_without_the_bench_extra_is_refused_first(module, argv, monkeypatch, capfd):
  """It was a traceback and exit 1 after profiling our step in full (profile_step)."""
  import importlib
  import importlib.util
  from experiments import benchmark
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == "torch" else real(name, *a))
  measured = []
  monkeypatch.setattr(benchmark, "_spawn", lambda *a, **k: measured.append(a))
  mod = importlib.import_module(module)
  if hasattr(mod, "profile_ours"):
    monkeypatch.setattr(mod, "profile_ours", lambda *a: measured.append(a))
  monkeypatch.setattr(sys, "argv", [module, *argv])
  with pytest.raises(SystemExit) as e:
    cli.run_script(mod.main)
  lines = capfd.readouterr().err.strip().splitlines()
  assert e.value.code == 2 and lines == ["error: the PyTorch peer needs torch and transformers: "
                                         "pip install -e '.[bench]'"], lines
  assert measured == []  # refused before anything is measured


@pytest.mark.parametrize("cases,field", [("garg_small,remat", "model.remat"),
                                         ("scan_compile", "model.scan_layers"),
                                         ("attention_qkv", "model.fused_qkv")])
def test_a_set_of_the_field_a_case_compares_is_refused_first(cases, field, monkeypatch, capfd):
  """--set model.remat=full on the remat case would make its three sides one program."""
  from experiments import benchmark
  measured = []
  monkeypatch.setattr(benchmark, "_spawn", lambda *a, **k: measured.append(a))
  monkeypatch.setattr(sys, "argv", ["benchmark", f"--cases={cases}", "--set", f"{field}=True"])
  with pytest.raises(SystemExit) as e:
    cli.run_script(benchmark.main)
  lines = capfd.readouterr().err.strip().splitlines()
  assert e.value.code == 2 and len(lines) == 1 and f"--set {field}:" in lines[0], lines
  assert measured == []  # refused before the garg_small case ran


@pytest.mark.parametrize("argv,needle", [
    # lm_10m runs a fixed config: the --set was dropped without a word (audit 34, D9).
    (["--cases=lm_10m", "--set", "model.width=64"], "--set applies only to the cases "
     "garg_small, garg_standard, scan_compile, scan_compile_tpu, scan_compile_ladder, "
     "scan_compile_ladder_tpu, compile_parts, remat, attention_qkv; lm_10m runs a fixed config: "
     "pass --cases with only those cases"),
    (["--cases=garg_small,ensemble", "--set", "model.width=64"], "; ensemble runs a fixed config"),
    # profile_step's flag name: the child-only --case ran the whole default list (D9).
    (["--case=lm_10m"], "--case is internal to the benchmark's child processes; choose what "
     "to measure with --cases=NAME[,NAME]"),
    # A KeyError traceback and exit 1 (D10).
    (["--child=config", "--case=nope"], "--child=config --case=nope: unknown case; choose "
     "from: lm_10m, lstm, resnet_embedder, tiny_preset"),
    (["--child=ours", "--case=lm_10m"], "--child=ours --case=lm_10m: unknown case; choose from: "
     "deep24, garg_small"),
    # Tuning flags that no chosen case reads were dropped without a word (audit 35).
    (["--cases=lm_10m", "--pairs=5"], "--pairs applies to remat, attention_qkv, "
     "scan_compile_tpu, scan_compile_ladder, scan_compile_ladder_tpu, and the Garg cases with "
     "--vs-peer; --cases lm_10m reads it nowhere: drop it, or add such a case"),
    (["--cases=garg_small", "--vs-peer", "--dtype=bfloat16"], "--dtype applies to garg_small and "
     "garg_standard without --vs-peer (the peer runs fp32"),
    (["--cases=scan_compile,ensemble", "--vs-peer"], "--vs-peer applies to garg_small and "
     "garg_standard; --cases scan_compile,ensemble read it nowhere"),
    (["--cases=compile_cache", "--steps=3"], "--steps applies to garg_small"),
    (["--cases=steps_per_call", "--steps_per_call=5"], "--steps_per_call applies to garg_small"),
    # The ladder cases compile the whole step; --part would be dropped without a word.
    (["--child=parts", "--case=ladder410m", "--part=forward"], "--case=ladder410m compiles the "
     "whole step only; drop --part=forward"),
])
def test_benchmark_flags_it_would_ignore_are_refused_first(argv, needle, tmp_path, monkeypatch,
                                                          capfd):
  from experiments import benchmark
  measured = []
  monkeypatch.setattr(benchmark, "_spawn", lambda *a, **k: measured.append(a) or {})
  monkeypatch.setattr(sys, "argv", ["benchmark", *argv, f"--out={tmp_path / 'b.json'}"])
  with pytest.raises(SystemExit) as e:
    cli.run_script(benchmark.main)
  lines = capfd.readouterr().err.strip().splitlines()
  assert e.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
  assert needle in lines[0], lines
  assert measured == [] and not (tmp_path / "b.json").exists()  # refused before measuring


def test_a_set_on_the_cases_that_take_it_reaches_the_child(tmp_path, monkeypatch):
  """The control of the test above: garg_small takes --set, and its child gets it."""
  from experiments import benchmark
  measured = []

  def spawn(*args, **kwargs):
    measured.append(args)
    raise InputError("measured")  # stop here: the check let the command through

  monkeypatch.setattr(benchmark, "_spawn", spawn)
  with pytest.raises(InputError, match="measured"):
    benchmark.main(["--cases=garg_small", "--set", "model.width=64",
                    f"--out={tmp_path / 'b.json'}"])
  assert len(measured) == 1 and "--set=model.width=64" in measured[0]


@pytest.mark.parametrize("argv", [["--cases=remat", "--pairs=2", "--steps=5"],
                                  ["--cases=garg_small", "--dtype=bfloat16", "--steps_per_call=2"],
                                  ["--cases=lm_10m,remat", "--pairs=2"]])
def test_tuning_flags_a_chosen_case_reads_get_through(argv, tmp_path, monkeypatch):
  """The control of the refusals above: a flag some chosen case reads is not refused."""
  from experiments import benchmark

  def spawn(*args, **kwargs):
    raise InputError("measured")  # stop here: the check let the command through

  monkeypatch.setattr(benchmark, "_spawn", spawn)
  with pytest.raises(InputError, match="measured"):
    benchmark.main([*argv, f"--out={tmp_path / 'b.json'}"])


def test_a_set_reaches_both_programs_of_the_scan_pair(monkeypatch):
  """The control: a field the case does not vary is applied to every program it compares."""
  from experiments import bench_features, benchmark
  spawned = []
  monkeypatch.setattr(benchmark, "_spawn", lambda *a, **k: spawned.append(a) or
                      {"lower_s": 1.0, "compile_s": 1.0})
  a = type("A", (), {"set": ["model.remat=full"]})()
  bench_features.scan_compile_case(a)
  assert len(spawned) == 4 and all("--set=model.remat=full" in args for args in spawned)
  assert sorted(a for args in spawned for a in args if "scan_layers" in a) == \
      ["--set=model.scan_layers=False"] * 2 + ["--set=model.scan_layers=True"] * 2


def test_preemption_in_any_script_exits_0_with_its_line(monkeypatch, capfd):
  from research import preemption

  def preempted(argv):
    raise preemption.Preempted("preempted (SIGTERM) at step 20; checkpoint saved; rerun to continue")

  monkeypatch.setattr(sys, "argv", ["experiments.schaeffer2023"])
  with pytest.raises(SystemExit) as e:
    cli.run_script(preempted)
  lines = capfd.readouterr().err.strip().splitlines()
  assert e.value.code == 0 and lines == ["preempted (SIGTERM) at step 20; checkpoint saved; "
                                         "rerun to continue"], lines


def test_reproduce_stops_at_a_preemption_and_exits_0(tmp_path, monkeypatch, capfd):
  from experiments import garg2022, reproduce, summaries
  from research import preemption
  seeds = []

  def preempted(preset, run_dir, seed=0):
    seeds.append(seed)
    raise preemption.Preempted("preempted (SIGTERM) at step 7; checkpoint saved; rerun to continue")

  monkeypatch.setattr(garg2022, "run", preempted)
  monkeypatch.setattr(summaries, "WALL_TIMES", tmp_path / "wall_times.json")
  monkeypatch.setattr(sys, "argv", ["experiments.reproduce", "garg2022", "--preset=tiny",
                                    "--seeds=0,1", f"--workdir={tmp_path}"])
  with pytest.raises(SystemExit) as e:
    cli.run_script(reproduce.main)
  lines = capfd.readouterr().err.strip().splitlines()
  assert e.value.code == 0 and seeds == [0], (seeds, lines)  # seed 1 not started unguarded
  assert lines[-1].startswith("preempted (SIGTERM) at step 7"), lines


def test_reddy_sweeps_empty_still_means_no_sweeps(tmp_path, monkeypatch):
  from experiments import reddy2023
  got = {}
  monkeypatch.setattr(reddy2023, "run", lambda *a: got.setdefault("sweeps", a[3]))
  reddy2023.main(["--preset=cpu", f"--workdir={tmp_path}", "--sweeps="])
  assert got["sweeps"] == []


def test_reproduce_of_a_failing_experiment_exits_6(tmp_path, monkeypatch, capfd):
  from experiments import garg2022, reproduce, summaries

  def boom(preset, run_dir, seed=0):
    raise RuntimeError("the experiment crashed")

  monkeypatch.setattr(garg2022, "run", boom)
  monkeypatch.setattr(summaries, "WALL_TIMES", tmp_path / "wall_times.json")
  monkeypatch.setattr(sys, "argv", ["experiments.reproduce", "garg2022", "--preset=tiny",
                                    f"--workdir={tmp_path}"])
  with pytest.raises(SystemExit) as e:
    cli.run_script(reproduce.main)
  lines = capfd.readouterr().err.strip().splitlines()
  assert e.value.code == 6 and len(lines) == 1, lines
  assert lines[0].startswith("error: garg2022: the experiment failed (seed 0: RuntimeError: "
                             "the experiment crashed)"), lines
  assert not (tmp_path / "wall_times.json").exists()  # a failed run measures nothing


def test_script_valid_input_exits_0(monkeypatch, capfd):
  """Negative control of the script table: the same wrapper, a valid input."""
  from experiments import reproduce
  monkeypatch.setattr(sys, "argv", ["experiments.reproduce", "--list"])
  with pytest.raises(SystemExit) as e:
    cli.run_script(reproduce.main)
  assert e.value.code == 0 and "garg2022" in capfd.readouterr().out


@pytest.mark.parametrize("steps_per_call", [1, 7, 20, 100])
def test_every_benchmark_case_config_passes_the_checks_at_any_steps_per_call(steps_per_call):
  """The checks the benchmark now runs refused --steps_per_call=20 (the cpu preset's
  log_every=250 is not a multiple of it), in the child, after other cases were measured."""
  from experiments import benchmark
  for case in benchmark.CASES:
    for dtype in ("float32", "bfloat16"):
      benchmark._regression_config(case, steps_per_call, dtype)


@pytest.mark.parametrize("flag", ["--help", "-h", "--helpshort", "--helpfull"])
def test_every_help_flag_of_research_main_works_in_a_script(flag, capsys):
  """--helpshort worked for research.main, sweep and aot (absl) but was "Unknown command
  line flag 'helpshort'" (exit 2) for results, reproduce and the paper scripts."""
  with pytest.raises(SystemExit) as e:
    cli.parse_flags(lambda fv: flags.DEFINE_integer("seed", 0, "The seed.", flag_values=fv), [flag],
                    doc="A script.")
  assert e.value.code == 0 and "A script." in capsys.readouterr().out
