"""Writes one notebook per paper into colab/, from the texts in colab/notebook_texts.py.

  python colab/build_notebooks.py            # rewrite colab/<name>.ipynb whose text changed
  python colab/build_notebooks.py --execute  # ... and run each on `tiny`, storing small outputs
  python colab/build_notebooks.py --check    # exit 1 if a stored notebook differs from its text

Flags and errors follow the project's command-line contract (research/cli.py): a bad flag
or a damaged notebook is one `error:` line and exit 2.

Stored notebooks keep the outputs of the cells tagged KEEP (the verdict table and one
figure, from the `tiny` preset) so they read on the repository page; --check compares
sources only. The install cell's REPO_URL form field defaults to this checkout's GitHub
`origin` (empty without one: then it is read off the notebook's Colab address).

Every paper notebook has the same spine, written here once: install, devices and preset,
`experiments.reproduce.reproduce(NAME, PRESET, WORKDIR)` (the command's own function: it
trains, scores each headline claim, renders the figures), the verdict table and figures, then
one "change one thing" cell calling experiments/NAME.py or the library with one knob turned.
The quickstart notebook is hand-written except for its install cell (the shared one).
tests/test_notebooks.py executes every notebook on the tiny preset.
"""
from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path

from research import cli
from research.errors import InputError

HERE = Path(__file__).resolve().parent
# Cells whose outputs the stored notebooks keep (verdict table, one figure), so the
# notebooks read on the repository page; every other output is stripped.
KEEP = "keep-output"

INSTALL = """\
# Install (Colab): clones REPO_URL and installs it. Opened from GitHub, an empty REPO_URL is
# read off this notebook's own address; elsewhere set it to the project's git URL. Locally,
# `pip install -e .` from the repository root first and this cell does nothing.
REPO_URL = "{repo_url}"  # @param {{type:"string"}}
import importlib.util, os, re, socket, subprocess, sys, urllib.parse, urllib.request
if importlib.util.find_spec('research') is None:
    if not REPO_URL:  # Colab's Jupyter server names the notebook's origin, github.com/OWNER/REPO/...
        try:
            host = socket.gethostbyname(socket.gethostname())
            sessions = urllib.request.urlopen(f'http://{{host}}:9000/api/sessions', timeout=5).read()
            found = re.search(r'github\\.com/([\\w.-]+)/([\\w.-]+)', urllib.parse.unquote(sessions.decode()))
            REPO_URL = f'https://github.com/{{found[1]}}/{{found[2]}}' if found else ''
        except OSError:
            pass
    if not REPO_URL:
        raise RuntimeError('research is not installed: set REPO_URL in this cell to the git URL of this project')
    subprocess.run(['git', 'clone', '-q', REPO_URL, 'research_repo'], check=True)
    # The jax build for this runtime: TPU chips show as /dev/accel* or numbered /dev/vfio
    # entries, an NVIDIA GPU brings nvidia-smi; otherwise the CPU build.
    import shutil
    tpu = os.path.exists('/dev/accel0') or (
        os.path.isdir('/dev/vfio') and any(n.isdigit() for n in os.listdir('/dev/vfio')))
    extra = '[tpu]' if tpu else '[cuda12]' if shutil.which('nvidia-smi') else ''
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-e', 'research_repo' + extra], check=True)
    sys.path.insert(0, os.path.abspath('research_repo'))  # importable without a kernel restart"""


def _default_repo_url() -> str:
  """The install cell's default: this checkout's `origin` when it is a public GitHub URL (a
  local clone's path would be wrong on Colab and would make --check depend on the clone)."""
  try:
    url = subprocess.run(["git", "-C", str(HERE), "remote", "get-url", "origin"],
                         capture_output=True, text=True, timeout=10).stdout.strip()
  except OSError:
    return ""
  url = re.sub(r"^git@github\.com:", "https://github.com/", url)
  return re.sub(r"\.git$", "", url) if url.startswith("https://github.com/") else ""


# `import research` comes before jax, as in the command-line tools: on a host with neither a
# TPU nor a GPU it sets JAX_PLATFORMS=cpu (research/__init__.py), so libtpu (the dev extra)
# prints no "E0000 ... unexpected worker hostname" block; a TPU or GPU runtime is left alone.
# WORKDIR holds one folder per preset: a run directory refuses another preset's config, so
# switching PRESET in the same session trains beside the first preset's runs.
SETUP = """\
import research  # before jax: with no TPU or GPU here it sets JAX_PLATFORMS=cpu, as the CLI does
PRESET = os.environ.get('RESEARCH_NOTEBOOK_PRESET', 'tiny')  # {choices}
# One folder per preset: another PRESET trains into its own folder and keeps this one's runs.
WORKDIR = os.path.join(os.environ.get('RESEARCH_NOTEBOOK_WORKDIR', '/tmp/{name}'), PRESET)
import jax
from pathlib import Path
from IPython.display import Image, Markdown, display
from experiments import reproduce, summaries
# The configs' mesh.data = -1 spreads the batch over every device of this runtime
# (TPU cores, GPUs or the CPU), so the same cells run on all of them.
print(jax.device_count(), 'device(s):', jax.devices())
print(reproduce.PAPERS['{name}'].PAPER)
for preset, what in reproduce.PAPERS['{name}'].PRESETS.items():
    print(f'  {{preset:5s}}: {{what}}; measured: {{summaries.wall_time_text("{name}", preset)}}')"""

RUN = """\
summary = reproduce.reproduce('{name}', PRESET, Path(WORKDIR))
assert not summary['error'], summary['error']
display(Markdown(summaries.table(summary['claims'])))
for figure in summary['figures']:
    display(Image(figure))"""

def _load_texts() -> dict:
  """PAPERS from colab/notebook_texts.py, loaded by path (this file runs as a script and is
  loaded by path in the tests, so colab/ is not necessarily importable)."""
  spec = importlib.util.spec_from_file_location("notebook_texts", HERE / "notebook_texts.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.PAPERS


PAPERS = _load_texts()


def _cell(kind: str, text: str, tags=()) -> dict:
  cell = {"cell_type": kind, "id": "", "metadata": {"tags": list(tags)} if tags else {},
          "source": text.splitlines(keepends=True)}
  if kind == "code":
    cell.update(execution_count=None, outputs=[])
  return cell


def _tiny_time(name: str) -> str:
  """The tiny preset's reproduce time from experiments/wall_times.json, rounded coarsely so
  that a re-measured time rarely changes the notebook's text ('tiny' read "runs in seconds",
  and chan2022 took 101 s)."""
  from experiments import summaries
  t = summaries.read_wall_times().get(name, {}).get("tiny")
  if not t:
    return "its time is not measured yet"
  s = t["seconds"]
  took = "under half a minute" if s < 30 else "under a minute" if s < 60 else \
      f"about {round(s / 60)} min"
  return (f"the reproduce cell took {took} on 2 shared CPU cores; the change-one-thing cell "
          "adds a run of its own")


def _seeds_md(name: str) -> str:
  """Which seeds the reproduce cell runs and how to run others (no notebook said)."""
  from experiments import reproduce
  if reproduce.seedless(name):
    return ""
  each = "; ".join(f"`{p}`: {', '.join(map(str, reproduce.default_seeds(name, p)))}"
                   for p in reproduce.presets_of(name))
  return (f" Seeds ({each}): for others write `reproduce.reproduce('{name}', PRESET, "
          f"Path(WORKDIR), seeds=(3, 4, 5))`; every `seed_<n>` folder in `WORKDIR/{name}/run` "
          "is scored.")


def notebook(name: str) -> dict:
  from experiments import reproduce  # its presets: a notebook offered 'paper' where none is
  p, presets = PAPERS[name], reproduce.presets_of(name)
  paper = "paper" in presets
  tested = ("`cpu` and `paper`" if paper else "`cpu`") + (
      " (one run: the experiment has no seed)" if reproduce.seedless(name) else " (three seeds)"
  ) + (" test" if paper else " tests")
  cells = [
      _cell("markdown", f"# {p['title']}\n\n{p['intro']}\n\n"
                        f"This notebook calls `python -m experiments.reproduce {name}`'s own "
                        f"function: it runs `experiments/{name}.py` (or reuses finished runs), "
                        "checks each headline claim against the paper and renders the figures. "
                        "On Colab choose a TPU or GPU runtime and run the install cell. `PRESET "
                        f"= 'tiny'` checks the machinery only ({_tiny_time(name)}); `'cpu'` is "
                        "the README gallery's setup" + (" and `'paper'` the paper's" if paper else
                                   " (this experiment has no `'paper'` preset)")
                        + " (the next cell lists the presets with what each runs and its "
                        "measured time). Each preset trains into its own folder (`WORKDIR` ends in "
                        "the preset's name), so switching `PRESET` and running all again keeps "
                        "the other preset's runs." + p.get("prerequisite", "")),
      _cell("code", INSTALL.format(repo_url=_default_repo_url())),
      _cell("code", SETUP.format(name=name, choices=" | ".join(map(repr, presets)))),
      _cell("markdown", "## Reproduce\nThe verdict table: the paper's number or direction, "
                        "ours, the tolerance, PASS / FAIL / NOT_SHOWN. The stored outputs come "
                        "from the `tiny` preset, which checks the machinery only (its FAILs say "
                        f"nothing about the paper); {tested} the claims." + _seeds_md(name)),
      _cell("code", RUN.format(name=name), tags=[KEEP]),
      _cell("markdown", f"## Change one thing\n{p['change_md']}"),
      _cell("code", p["change"]),
  ]
  for i, cell in enumerate(cells):  # stable ids: a rebuild changes only what changed
    cell["id"] = f"{name}-{i}"
  kernel = {"display_name": "Python 3", "language": "python", "name": "python3"}
  return {"cells": cells, "metadata": {"kernelspec": kernel, "language_info": {"name": "python"}},
          "nbformat": 4, "nbformat_minor": 5}


README = HERE.parent / "README.md"
TABLE_START = "<!-- notebooks:start (written by python colab/build_notebooks.py) -->"
TABLE_END = "<!-- notebooks:end -->"
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def readme_table() -> str:
  """README's NAME table: each paper's files and its notebook's Colab badge. The badge opens
  Colab when `origin` is the GitHub repository; without one it links the notebook file."""
  repo = _default_repo_url().removeprefix("https://github.com/")

  def badge(name: str) -> str:
    target = (f"https://colab.research.google.com/github/{repo}/blob/main/colab/{name}.ipynb"
              if repo else f"colab/{name}.ipynb")
    return f"[![Open In Colab]({BADGE})]({target})"

  lines = [TABLE_START, "",
           "| NAME | notebook | experiment | claims (`experiments/claims/`) | config (`configs/`) |",
           "|---|---|---|---|---|"]
  for name, p in PAPERS.items():
    claims, config = p["files"]
    lines.append(f"| `{name}` | {badge(name)} | `experiments/{name}.py` | `{claims}` | {config} |")
  lines += ["", f"Quickstart (train the regression probe, plot, change one knob): "
            f"{badge('quickstart')}"]
  if not repo:
    lines += ["", "This checkout has no GitHub `origin`, so the badges link the notebook files; "
              "after pushing to GitHub, `python colab/build_notebooks.py` points them at Colab "
              "(or open a notebook in Colab with File → Open notebook → GitHub)."]
  return "\n".join(lines + ["", TABLE_END])


def _readme_with_table(text: str) -> str:
  start, end = text.find(TABLE_START), text.find(TABLE_END)
  if start < 0 or end < start:
    raise InputError(f"README.md has no {TABLE_START} ... {TABLE_END} block; add the markers")
  return text[:start] + readme_table() + text[end + len(TABLE_END):]


def _text(nb: dict) -> str:
  return json.dumps(nb, indent=1, sort_keys=True) + "\n"


def _stripped(nb: dict) -> dict:
  """The notebook without outputs: what --check compares, so stored outputs never go stale."""
  nb = json.loads(json.dumps(nb))
  for cell in nb["cells"]:
    if cell["cell_type"] == "code":
      cell.update(outputs=[], execution_count=None)
  return nb


def _small_outputs(nb: dict) -> dict:
  """Keeps what a reader of the repository page wants and nothing heavy: in cells tagged
  KEEP, the markdown (the verdict table; else the printed text) and the first figure;
  elsewhere none."""
  nb, figure_kept = _stripped(nb), False
  executed = {c["id"]: c for c in nb.pop("_executed")["cells"]}
  for cell in nb["cells"]:
    if cell["cell_type"] != "code" or KEEP not in cell["metadata"].get("tags", []):
      continue
    outputs = executed.get(cell["id"], {}).get("outputs", [])
    # reproduce also prints its table: the markdown copy reads better on the repository page.
    printed = not any("text/markdown" in out.get("data", {}) for out in outputs)
    for out in outputs:
      data = out.get("data", {})
      if out["output_type"] == "stream" and out["name"] == "stdout" and printed:
        cell["outputs"].append(out)
      elif "text/markdown" in data:
        cell["outputs"].append({"output_type": "display_data", "metadata": {},
                                "data": {"text/markdown": data["text/markdown"]}})
      elif "image/png" in data and not figure_kept:
        figure_kept = True
        cell["outputs"].append({"output_type": "display_data", "metadata": {},
                                "data": {"image/png": data["image/png"]}})
  return nb


def _execute(nb: dict, name: str) -> dict:
  """Runs the notebook on the tiny preset, as tests/test_notebooks.py does."""
  import os
  import tempfile
  from unittest import mock

  import nbclient
  import nbformat

  node = nbformat.reads(_text(_stripped(nb)), as_version=4)
  with tempfile.TemporaryDirectory() as workdir, mock.patch.dict(os.environ, {
      "RESEARCH_NOTEBOOK_PRESET": "tiny", "RESEARCH_NOTEBOOK_WORKDIR": workdir,
      "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
      "PYTHONPATH": str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}):
    nbclient.NotebookClient(node, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(HERE.parent)}}).execute()
  print(f"executed {name} on the tiny preset")
  return _small_outputs(dict(nb, _executed=json.loads(json.dumps(node))))


def _quickstart(stored: dict) -> dict:
  """The hand-written quickstart with the one install cell every notebook shares."""
  nb = json.loads(json.dumps(stored))
  for cell in nb["cells"]:
    if cell["cell_type"] == "code" and "".join(cell["source"]).startswith("# Install"):
      cell["source"] = INSTALL.format(repo_url=_default_repo_url()).splitlines(keepends=True)
  return nb


def _stored(path: Path, name: str, check: bool) -> dict | None:
  """The stored notebook; None when there is none. A damaged one (truncated, broken JSON) was
  a traceback: --check names it with the fix, a build rebuilds a paper's from its text, and
  the hand-written quickstart can only come back from git."""
  shown = path.relative_to(HERE.parent)
  if not path.is_file():
    if name == "quickstart":
      raise InputError(f"{shown} is missing; it is hand-written, so restore it with git "
                       f"checkout -- {shown}")
    return None
  try:
    nb = json.loads(path.read_text(encoding="utf-8"))
  except ValueError as e:  # UnicodeDecodeError included
    problem = cli.one_line(e)
  else:
    if isinstance(nb, dict) and isinstance(nb.get("cells"), list):
      return nb
    problem = "a JSON value without a cells list"
  if name == "quickstart":
    raise InputError(f"{shown} is not a notebook ({problem}); it is hand-written, so restore "
                     f"it with git checkout -- {shown}")
  if check:
    raise InputError(f"{shown} is not a notebook ({problem}); rebuild it with python "
                     "colab/build_notebooks.py")
  print(f"{shown} was not a notebook ({problem}): rebuilt from its text; --execute stores its "
        "outputs again")
  return None


def _define_flags(fv) -> None:
  from absl import flags
  flags.DEFINE_bool("check", False, "Exit 1 if a stored notebook differs from its text.",
                    flag_values=fv)
  flags.DEFINE_bool("execute", False, "Run each notebook on the tiny preset and store its "
                    "small outputs.", flag_values=fv)


def main(argv=None) -> int:
  args = cli.parse_flags(_define_flags, argv, __doc__)
  stale = []
  for name in [*PAPERS, "quickstart"]:
    path = HERE / f"{name}.ipynb"
    stored = _stored(path, name, args.check)
    built = _quickstart(stored) if name == "quickstart" else notebook(name)
    same_source = stored is not None and _text(_stripped(stored)) == _text(_stripped(built))
    if args.check:
      if not same_source:
        stale.append(path.name)
      continue
    if args.execute:
      built = _execute(built, name)
    elif same_source:  # unchanged: keep the stored outputs
      continue
    elif stored is not None:  # a code cell whose source did not change keeps its outputs
      built = _small_outputs(dict(built, _executed={"cells": [
          c for c in stored["cells"] if c["source"] == next(
              (b["source"] for b in built["cells"] if b["id"] == c["id"]), None)]}))
    path.write_text(_text(built))
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
  readme = README.read_text()
  if _readme_with_table(readme) != readme:
    if args.check:
      stale.append("README.md (its notebooks table)")
    else:
      README.write_text(_readme_with_table(readme))
      print(f"wrote the notebooks table in {README}")
  if stale:
    print(f"stale notebooks (run python colab/build_notebooks.py): {', '.join(stale)}")
    return 1
  return 0


if __name__ == "__main__":
  cli.run_script(main)
