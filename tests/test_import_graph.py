"""The import graph of research/, read from the source (ast; nothing is imported, no jax).

Two rules (issue 16, done-when 4):
  1. no import circle inside research/;
  2. no import from a lower layer to a higher one (LAYERS below, lowest first); a module may
     import its own layer and any lower one.
Every import counts, module-level or inside a function: a lazy import that closes a circle is
still a circle (it only moves the failure from import time to call time, and the two modules
still cannot be understood or tested apart). `import a.b.c` also imports the packages a and
a.b, whose __init__ runs, so those edges count too (except a module's own enclosing packages,
which are already being imported when it runs).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "research"

# Lowest first. A module's layer is that of its top-level name under research/ (research.models.spec
# is "models"). cli, config_files, config_overrides and workdir are foundations: the config loader, the override
# setter and the error contract, and the workdir's file primitives (atomic writes, the JSONL
# reader; workdir_layout: what a directory holds; workdir_lock: the lock; workdir_vocabulary:
# the vocabulary and data record; config_defaults: the defaults of fields a saved config lacks;
# output_paths: the checks of the paths a command writes) that every layer uses.
LAYERS = (
    ("errors", "keys", "hardware", "preemption", "log_filters", "workdir", "workdir_layout",
     "workdir_lock",
     "workdir_resume", "workdir_vocabulary", "config_defaults", "output_paths",
     "config_overrides", "config_files", "flag_checks", "cli", "host_memory", "run_environment"),
    ("data", "models", "optim", "sharding", "probes", "analysis", "checkpoint", "checkpoint_noise",
     "init_from", "metrics"),
    ("tasks",),
    ("config_check",),
    ("experiment",),
    ("loop",),
    ("train",),
    ("ensemble_members",),
    ("ensemble",),
    ("aot_compile", "aot_eval", "aot_hlo", "aot_ladder", "aot_memory", "aot_targets", "aot_tune"),
    ("predict", "aot", "results", "results_records", "probe_checkpoints"),
    ("sweep_identity", "sweep_results", "sweep_rundirs"),
    ("sweep",),
    ("process_agreement",),
    ("main",),
)


def module_files(package_dir: Path) -> dict[str, Path]:
  mods = {}
  for path in sorted(package_dir.rglob("*.py")):
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
      parts = parts[:-1]
    mods[".".join(parts)] = path
  return mods


def imports_of(name: str, source: str, modules: set[str], is_package: bool) -> set[str]:
  """The modules of `modules` that `name` imports anywhere in `source`, with the packages
  those imports initialise."""
  package = name if is_package else name.rpartition(".")[0]
  found = set()
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      found.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:  # relative: from . import x / from ..a import b
        parts = package.split(".")[:len(package.split(".")) - node.level + 1]
        base = ".".join(parts + ([base] if base else []))
      for a in node.names:  # `from pkg import sub` imports the submodule pkg.sub
        found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
  edges = set()
  for target in found:
    while target and target not in modules:  # `import research.x.func` -> research.x
      target = target.rpartition(".")[0]
    parts = target.split(".") if target else []
    for i in range(1, len(parts) + 1):  # the packages on the way are initialised too
      mod = ".".join(parts[:i])
      if mod in modules and mod != name and not name.startswith(mod + "."):
        edges.add(mod)
  return edges


def import_graph(package_dir: Path) -> dict[str, set[str]]:
  files = module_files(package_dir)
  return {m: imports_of(m, p.read_text(), set(files), p.name == "__init__.py")
          for m, p in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """Strongly connected components with more than one module (Tarjan), each sorted."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in sorted(graph.get(v, ())):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1 or v in graph.get(v, ()):
        found.append(sorted(component))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return found


def layer_of(module: str, layers=LAYERS) -> int | None:
  """The layer of research.NAME[.sub]; None for the root package (it imports nothing)."""
  parts = module.split(".")
  if len(parts) == 1:
    return None
  for i, names in enumerate(layers):
    if parts[1] in names:
      return i
  raise KeyError(module)


def upward_imports(graph: dict[str, set[str]], layers=LAYERS) -> list[str]:
  bad = []
  for src, targets in sorted(graph.items()):
    for dst in sorted(targets):
      s, d = layer_of(src, layers), layer_of(dst, layers)
      if s is not None and d is not None and d > s:
        bad.append(f"{src} (layer {s}) imports {dst} (layer {d})")
  return bad


@pytest.fixture(scope="module")
def graph():
  return import_graph(ROOT / PACKAGE)


def test_every_module_has_a_layer(graph):
  unplaced = []
  for m in graph:
    try:
      layer_of(m)
    except KeyError:
      unplaced.append(m)
  assert not unplaced, f"add these modules to LAYERS: {unplaced}"
  # The graph is read at all: a few edges that must exist.
  assert "research.tasks" in graph["research.config_check"]
  assert "research.models.spec" in graph["research.models.resnet"]


def test_no_import_circle_inside_research(graph):
  assert cycles(graph) == []


def test_no_import_from_a_lower_layer_to_a_higher_one(graph):
  assert upward_imports(graph) == []


def test_the_checker_finds_a_synthetic_circle_and_an_upward_import(tmp_path):
  """Negative control: a small fake package with a circle through a lazy import and an
  import from a low layer to a high one."""
  pkg = tmp_path / PACKAGE
  (pkg / "sub").mkdir(parents=True)
  (pkg / "__init__.py").write_text("")
  (pkg / "sub" / "__init__.py").write_text("from research.sub import leaf\n")
  (pkg / "sub" / "leaf.py").write_text("import math\n")
  (pkg / "low.py").write_text("def f():\n  from research import high  # lazy, still an edge\n")
  (pkg / "high.py").write_text("from research import low\nfrom research.sub.leaf import x\n")
  fake = import_graph(pkg)
  assert fake["research.high"] == {"research.low", "research.sub", "research.sub.leaf"}
  assert cycles(fake) == [["research.high", "research.low"]]
  layers = (("low", "sub"), ("high",))
  assert upward_imports(fake, layers) == ["research.low (layer 0) imports research.high (layer 1)"]
  # Control of the control: without the lazy import there is neither.
  (pkg / "low.py").write_text("def f():\n  return 1\n")
  fake = import_graph(pkg)
  assert cycles(fake) == [] and upward_imports(fake, layers) == []


# ----------------------------------------------------------------------------- experiments/
# Issue 17: one module per paper, none a library of another. What two experiment scripts share
# lives in experiments/common.py (or research/); the reproduce machinery depends one way:
# reproduce -> gallery -> summaries, never back.
EXPERIMENT_LIBRARIES = {"experiments", "experiments.common", "experiments.summaries"}
# The reproduce machinery, claim scorers and benchmark tools: not experiment scripts.
NOT_SCRIPTS = ("experiments.reproduce", "experiments.gallery", "experiments.claims",
               "experiments.benchmark", "experiments.bench_features", "experiments.bench_peer",
               "experiments.bench_ensemble",
               "experiments.profile_step",
               "experiments.peer_torch")


def experiment_scripts(graph: dict[str, set[str]]) -> set[str]:
  return {m for m in graph if m not in EXPERIMENT_LIBRARIES
          and not any(m == n or m.startswith(n + ".") for n in NOT_SCRIPTS)}


def script_imports(graph: dict[str, set[str]]) -> list[str]:
  """Every import of one experiment script by another, and the reproduce <-> gallery
  direction broken."""
  scripts = experiment_scripts(graph)
  bad = [f"{src} imports {dst}" for src in sorted(scripts) for dst in sorted(graph[src])
         if dst in scripts]
  # reproduce -> gallery -> summaries: no edge back up that chain.
  for src, dst in (("experiments.gallery", "experiments.reproduce"),
                   ("experiments.summaries", "experiments.reproduce"),
                   ("experiments.summaries", "experiments.gallery")):
    if dst in graph.get(src, ()):
      bad.append(f"{src} imports {dst}")
  return bad


@pytest.fixture(scope="module")
def experiments_graph():
  return import_graph(ROOT / "experiments")


def test_no_experiment_script_imports_another(experiments_graph):
  scripts = experiment_scripts(experiments_graph)
  # The graph is read at all: every paper's module is a script, reproduce imports them.
  assert {"experiments.garg2022", "experiments.nanda2023", "experiments.chan2022",
          "experiments.scaling_laws"} <= scripts
  # (reproduce imports the paper modules by name, when first asked for: reproduce.PAPERS)
  assert "experiments.common" in experiments_graph["experiments.reproduce"]
  assert "experiments.common" in experiments_graph["experiments.chan2022"]
  assert script_imports(experiments_graph) == []


def test_reproduce_and_gallery_depend_one_way(experiments_graph):
  assert "experiments.gallery" in experiments_graph["experiments.reproduce"]
  assert "experiments.summaries" in experiments_graph["experiments.gallery"]
  machinery = {"experiments.reproduce", "experiments.gallery", "experiments.summaries"}
  assert [c for c in cycles(experiments_graph) if machinery & set(c)] == []


def test_the_checker_finds_a_script_importing_a_script(tmp_path):
  """Negative control: chan2022 importing reddy2023 (as it did), gallery importing reproduce
  lazily; then the same package with the imports through the shared module."""
  pkg = tmp_path / "experiments"
  pkg.mkdir()
  for name, source in {"__init__": "", "common": "", "summaries": "",
                       "reddy2023": "from experiments import common\n",
                       "chan2022": "from experiments.reddy2023 import run_one\n",
                       "reproduce": "from experiments import chan2022, gallery\n",
                       "gallery": "def f():\n  from experiments import reproduce\n"}.items():
    (pkg / f"{name}.py").write_text(source)
  fake = import_graph(pkg)
  assert script_imports(fake) == ["experiments.chan2022 imports experiments.reddy2023",
                                  "experiments.gallery imports experiments.reproduce"]
  assert cycles(fake) == [["experiments.gallery", "experiments.reproduce"]]
  (pkg / "chan2022.py").write_text("from experiments.common import classification_run\n")
  (pkg / "gallery.py").write_text("from experiments import summaries\n")
  fake = import_graph(pkg)
  assert script_imports(fake) == [] and cycles(fake) == []
