"""The processes of one run compare their commands once assembled, before anything is
written: another --config value, --workdir or --num_processes on one of them is refused by
all (research/process_agreement.py); a host's own paths may differ."""
import subprocess

import numpy as np
import pytest

from test_multiprocess import ROOT, _cmd, _env, _free_port


@pytest.mark.parametrize("other, said", [
    (["--config.seed=7"], ["config seed=0", "config seed=7"]),
    (["--workdir=OTHER"], ["--workdir=RUN", "--workdir=OTHER"])])
def test_processes_given_different_commands_refuse_before_writing(other, said, tmp_path):
  """Process 1 given another --config.seed trained with it while config.json recorded process
  0's seed (both exit 0, other losses); another --workdir hung both in the final save, SIGTERM
  too (trial 65b). Both refuse now, each naming its own value, and nothing is written. The
  control, the same command on both, is the first test of this file."""
  run, elsewhere = tmp_path / "run", tmp_path / "other"
  port = _free_port()
  workdir = [run, elsewhere if other == ["--workdir=OTHER"] else run]
  extra = [[], [a for a in other if not a.startswith("--workdir")]]
  procs = [subprocess.Popen(
      _cmd(workdir[i], f"--coordinator_address=localhost:{port}", "--num_processes=2",
           f"--process_id={i}", "--coordinator_timeout=60", *extra[i]),
      cwd=ROOT, env=_env(4), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
      for i in range(2)]
  for i, p in enumerate(procs):
    _, err = p.communicate(timeout=120)
    line = [l for l in err.splitlines() if l.startswith("error:")]
    assert p.returncode == 2 and len(line) == 1, err[-2000:]
    mine = said[i].replace("RUN", str(run)).replace("OTHER", str(elsewhere))
    assert line[0].startswith("error: the processes of this run were given different ") and \
        f"(this one, process {i}: {mine})" in line[0], line
  assert not run.exists() and not elsewhere.exists()


def test_host_local_paths_may_differ_between_processes(tmp_path, monkeypatch):
  """The comparison of the processes' commands, in-process: each process's allgather input is
  recorded and the other's played back. A host's own compile cache, or init_from named
  relative on one host and absolute on another, is no difference (a review found them
  refused); control: another seed is, named."""
  from jax.experimental import multihost_utils
  from research import cli, process_agreement
  from research.errors import InputError
  monkeypatch.chdir(tmp_path)

  def config(**fields):
    c = cli.load_config(str(ROOT / "configs/icl_regression.py:tiny"))
    with c.unlocked():
      for k, v in fields.items():
        section, _, leaf = k.rpartition(".")
        (c[section] if section else c)[leaf] = v
    return c

  def gathered(other):
    """Process 1's allgather inputs, in order, when given `other` (its config digest made to
    differ here, so that it sends its per-field digests too)."""
    sent = []

    def record(x):
      sent.append(np.asarray(x))
      if len(sent) > 1:
        return np.stack([x, x])
      differs = np.array(x)
      differs[2] += 1  # the --config column
      return np.stack([x, differs])
    monkeypatch.setattr(multihost_utils, "process_allgather", record)
    with pytest.raises(InputError):
      process_agreement.check(other, tmp_path / "run", 2)
    return sent

  def check(mine, other):
    theirs = iter(gathered(other))
    monkeypatch.setattr(multihost_utils, "process_allgather",
                        lambda x: np.stack([x, next(theirs)]))
    process_agreement.check(mine, tmp_path / "run", 2)

  (tmp_path / "old").mkdir()
  check(config(**{"train.compile_cache_dir": "/ssd0/cache", "init_from": "old"}),
        config(**{"train.compile_cache_dir": "/ssd1/cache", "init_from": str(tmp_path / "old")}))
  with pytest.raises(InputError, match=r"given different --config \(this one, process 0: config "
                     r"seed=0\)"):
    check(config(), config(seed=7))
