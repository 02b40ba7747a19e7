"""research/cli.py's words for a mistyped flag: the command's closest flag, a boolean's --no
form kept, absl's own flags (--log_dir, --verbosity) never offered."""
import subprocess
import sys
from pathlib import Path

import pytest
from absl import flags

from research import cli
from research.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def _define(fv):
  flags.DEFINE_bool("gallery", False, "", flag_values=fv)
  flags.DEFINE_string("topology", None, "", flag_values=fv)


@pytest.mark.parametrize("arg,said", [
    ("--topolgy=v5e:4x4", "unknown flag --topolgy (did you mean --topology?)"),
    # absl's words were "Unknown command line flag 'nogalery'. Did you mean: gallery ?", and
    # --gallery turns on what the user meant to turn off
    ("--nogalery", "unknown flag --nogalery (did you mean --nogallery?)"),
    ("--zzz", "unknown flag --zzz; see --help"),  # control: nothing close, no guess
])
def test_a_mistyped_flag_gets_the_closest_of_the_commands_own(arg, said):
  with pytest.raises(InputError) as e:
    cli.parse_flags(_define, [arg])
  assert str(e.value).startswith(said), str(e.value)


def test_absls_own_flags_are_not_offered():
  """research.main --verbosty suggested absl's --verbosity (a logging flag, not the run's)."""
  proc = subprocess.run([sys.executable, "-m", "research.main", "--verbosty=1"], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2 and "unknown flag --verbosty" in proc.stderr
  assert "verbosity" not in proc.stderr, proc.stderr
