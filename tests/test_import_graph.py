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
# is "models"). cli and workdir are foundations: the config loader / error contract and the
# workdir's file primitives (atomic writes, the JSONL reader, the lock) that every layer uses.
LAYERS = (
    ("errors", "keys", "hardware", "preemption", "workdir", "cli"),
    ("data", "models", "optim", "sharding", "probes", "analysis", "checkpoint", "metrics"),
    ("tasks",),
    ("config_check",),
    ("loop",),
    ("train",),
    ("ensemble",),
    ("predict", "aot", "results", "probe_checkpoints"),
    ("sweep",),
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
