"""research.probe_checkpoints' rows and its reruns on a short run of its own (configs/lm.py's
tiny preset at an odd context, 31 tokens, batch 8, so tokens per step show which is which):
what a row's numbers are computed from, each head's scores its own, token-aligned ICL
positions, a checkpoint that cannot be read among good ones, and the command's defaults."""
import contextlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np
import pytest

from research import cli, config_check, experiment, probe_checkpoints, train
from research.errors import InputError, RunsFailedError
from research.models import transformer
from research.probes import attention as scores
from research.tasks import induction

STEPS = (5, 10, 15)


def _text(path: Path) -> Path:
  path.write_text("the quick brown fox jumps over the lazy dog, said the cat. " * 200)
  return path


def _lm_config(tmp: Path):
  c = cli.load_config("configs/lm.py:tiny")
  c.task.source, c.task.path = "file", str(_text(tmp / "corpus.txt"))
  c.task.seq_len = 31  # odd: the repeated sequences' halves differ
  c.train.compile_cache_dir, c.mesh.data = "", 1
  c.train.num_steps, c.train.steps_per_call, c.train.log_every = STEPS[-1], 5, 5
  c.train.eval_every, c.train.checkpoint_every, c.train.keep_checkpoints = 0, 5, 10
  c.probe.eval_sequences, c.probe.generate_tokens = 8, 0
  config_check.validate(c, 1)
  return c


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  d = tmp_path_factory.mktemp("rows")
  train.train_and_evaluate(_lm_config(d), str(d / "run"), devices=jax.devices()[:1])
  return d / "run"


def _rows(path):
  return [json.loads(l) for l in Path(path).read_text().splitlines()]


def _copy(run, dest):
  return Path(shutil.copytree(run, dest, ignore=shutil.ignore_patterns("probes", ".lock")))


def _damage(wd, step):
  for f in (wd / "checkpoints" / str(step)).rglob("*"):
    if f.is_file():
      f.write_bytes(b"garbage")


def test_tokens_are_steps_times_batch_times_context(run, tmp_path):
  """tokens = step x train.batch_size x task.seq_len (8 x 31 here: the ladder's own test run
  has batch 32 = seq_len 32, where either factor passes for the other)."""
  out = tmp_path / "rows.jsonl"
  assert probe_checkpoints.probe_run(run, out=out, few_shot_prompts=0) == list(STEPS)
  rows = _rows(out)
  assert [r["tokens"] for r in rows] == [s * 8 * 31 for s in STEPS]
  assert {r["num_windows"] for r in rows} == {8} and {r["windows_asked"] for r in rows} == {8}


def test_a_damaged_checkpoint_among_good_ones_fails_the_probe_and_keeps_the_others(run, tmp_path):
  """One unreadable checkpoint: the others' rows are written and the command exits 6 naming
  it, so a rerun retries only that one; it does not pass for a complete probe (exit 0)."""
  wd = _copy(run, tmp_path / "run")
  _damage(wd, 10)
  out = tmp_path / "rows.jsonl"
  with pytest.raises(RunsFailedError, match=r"^1 checkpoint\(s\) of .* not probed: 10 \(.*; the "
                     r"others are in .*rows.jsonl$") as e:
    probe_checkpoints.probe_run(wd, out=out, few_shot_prompts=0)
  assert e.value.exit_code == 6
  assert [r["step"] for r in _rows(out)] == [5, 15]


def test_new_checkpoints_that_all_fail_after_earlier_rows_are_a_partial_failure(run, tmp_path):
  """Rows from an earlier probe exist: the checkpoints are not all gone, so it is exit 6 (some
  not probed), not the 'no checkpoint could be restored' of a run whose checkpoints are lost."""
  wd = _copy(run, tmp_path / "run")
  out = tmp_path / "rows.jsonl"
  out.write_text(json.dumps({"step": 5, "num_windows": 8, "windows_asked": 8,
                             "few_shot_prompts": 0}) + "\n")
  _damage(wd, 10)
  _damage(wd, 15)
  with pytest.raises(RunsFailedError, match=r"^2 checkpoint\(s\) of .* not probed: 10 .*15 "):
    probe_checkpoints.probe_run(wd, out=out, few_shot_prompts=0)
  assert [r["step"] for r in _rows(out)] == [5]


def test_a_run_of_another_task_is_refused(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps({"task": {"name": "regression"}}))
  with pytest.raises(InputError, match=r"is a 'regression' run; research.probe_checkpoints "
                     r"probes language-model \(task.name='lm'\) runs"):
    probe_checkpoints.probe_run(tmp_path)


def test_heads_are_named_by_layer_then_head_and_scored_on_their_own_maps(tmp_path):
  """'LiHj' is head j of layer i: its prefix-matching and previous-token scores are those of
  layer i's attention map, row j, and its copying score that head's own OV circuit. The
  run's context is odd (31): the repeated half is ceil(L / 2) = 16 tokens, the period of the
  prefix score and of its uniform baseline. Untrained parameters: the names and maps matter."""
  exp = experiment.Experiment(_lm_config(tmp_path), jax.devices()[:1])
  params = exp.init_state().params
  got = probe_checkpoints.head_scores(exp, params)
  rep = probe_checkpoints.repeated_tokens(exp)
  np.testing.assert_array_equal(rep[:, 16:], rep[:, :15])
  _, state = exp.model.apply({"params": params}, jax.numpy.asarray(rep), mutable=["intermediates"])
  maps = list(transformer.attention_maps(state["intermediates"]).values())
  # The V x V circuits multiplied out in float64: in float32 their V - K zero eigenvalues come
  # out ~1e-7, which move sum |eig| by ~3e-6 relative.
  ov = {name: np.float64(left) @ np.float64(right)
        for name, (left, right) in induction.ov_factors(params).items()}
  assert len(maps) == 2 and sorted(got["heads"]) == ["L0H0", "L0H1", "L1H0", "L1H1"]
  for i, attn in enumerate(maps):
    prefix = np.asarray(scores.prefix_matching_score(attn, 16))
    previous = np.asarray(scores.previous_token_score(attn))
    for j in range(2):
      head = got["heads"][f"L{i}H{j}"]
      # 1e-5: float32 means over the maps, computed in another program, differed by 1.03e-6
      # relative in one suite run; the closest two heads differ by 6.8e-5 (prefix), so a
      # swapped head or layer still fails.
      assert head["prefix"] == pytest.approx(float(prefix[j]), rel=1e-5)
      assert head["previous"] == pytest.approx(float(previous[j]), rel=1e-5)
      assert head["copying"] == pytest.approx(scores.copying_score(ov[f"L{i}H{j}"]), rel=1e-6)
  assert got["prefix_baseline"] == pytest.approx(scores.uniform_prefix_baseline(16))
  assert scores.uniform_prefix_baseline(16) != pytest.approx(scores.uniform_prefix_baseline(15))


def test_heads_of_a_pythia_vocabulary_model_are_scored_without_vocabulary_squared_matrices(
    tmp_path, monkeypatch):
  """The copying score took the eigenvalues of each head's V x V OV circuit: at the ladder's
  50,304-token vocabulary 20 GB a head and hours of LAPACK. It now takes those of the K x K
  product of the circuit's factors (a rank-K matrix has no other nonzero ones)."""
  c = cli.load_config("configs/lm.py:tiny")
  c.task.source, c.task.vocab_size = "synthetic", 50304
  c.train.compile_cache_dir, c.mesh.data = "", 1
  c.probe.eval_sequences = 4
  config_check.validate(c, 1)
  exp = experiment.Experiment(c, jax.devices()[:1])
  params = exp.init_state().params
  shapes, eigvals = [], np.linalg.eigvals
  monkeypatch.setattr(np.linalg, "eigvals", lambda a: shapes.append(np.shape(a)) or eigvals(a))
  heads = probe_checkpoints.head_scores(exp, params)["heads"]
  head_dim = int(c.model.width) // int(c.model.num_heads)
  assert len(shapes) == len(heads) > 0 and set(shapes) == {(head_dim, head_dim)}
  assert all(-1 <= h["copying"] <= 1 for h in heads.values())


# --- one row from stubbed losses -----------------------------------------------------------
class _Exp:
  """What probe_checkpoint reads of an Experiment, with eval losses given."""

  def __init__(self, ce):
    self.ce, self.asked = np.asarray(ce, np.float32), []
    self.config = SimpleNamespace(probe=SimpleNamespace(batch_size=4))
    self.task = SimpleNamespace(eval_losses=self._losses)

  def _losses(self, predict_fn, num_windows, batch_size):
    self.asked.append(num_windows)
    return self.ce

  def predict_fn(self, params):
    return None

  @contextlib.contextmanager
  def precision(self):
    yield


def test_a_rows_loss_and_loss_by_position_are_the_window_means(monkeypatch):
  """loss: the mean over every window and position; loss_by_position: over windows, one per
  position; num_windows: the windows scored (3, though 1000 were asked for)."""
  monkeypatch.setattr(probe_checkpoints, "head_scores", lambda exp, params: {})
  ce = np.tile(np.arange(32, dtype=np.float64) / 10, (3, 1))
  ce[2] += 3.0
  row = probe_checkpoints.probe_checkpoint(_Exp(ce), None, 1000)
  assert row["loss"] == pytest.approx(ce.mean(), rel=1e-6)
  np.testing.assert_allclose(row["loss_by_position"], ce.mean(0), rtol=1e-6)
  assert row["num_windows"] == 3 and row["seq_len"] == 32
  assert row["few_shot_prompts"] == 0 and "few_shot" not in row


def test_the_icl_score_reads_the_loss_of_predicting_each_token():
  """Column i predicts token i + 1: at L = 32 (no averaging window) the score is column 30
  (token 31) minus column 2 (token 3); columns 31 and 3 are one token off."""
  ce = np.tile(np.arange(32, dtype=np.float64) ** 2, (2, 1))
  s = probe_checkpoints.icl_summary(ce)
  assert (s["early"], s["late"], s["half_window"]) == (3, 31, 0)
  assert s["icl_score"] == pytest.approx(30 ** 2 - 2 ** 2)


def test_one_window_has_no_standard_error_and_no_warning():
  import warnings
  with warnings.catch_warnings():
    warnings.simplefilter("error", RuntimeWarning)
    s = probe_checkpoints.icl_summary(np.zeros((1, 64)))
  assert s["icl_score"] == 0.0 and np.isnan(s["icl_score_se"])


# --- the command's defaults and the rows it reads -------------------------------------------
def _saved(source):
  return SimpleNamespace(task={"name": "lm", "source": source})


def test_few_shot_prompts_default_to_100_on_text_and_0_asked_is_0_on_ids(tmp_path):
  assert probe_checkpoints._few_shot_for(tmp_path, _saved("file"), None) == 100
  assert probe_checkpoints._few_shot_for(tmp_path, _saved("file"), 7) == 7
  assert probe_checkpoints._few_shot_for(tmp_path, _saved("synthetic"), None) == 0
  assert probe_checkpoints._few_shot_for(tmp_path, _saved("synthetic"), 0) == 0  # as asked


def test_blank_lines_in_the_rows_file_are_skipped(tmp_path):
  out = tmp_path / "rows.jsonl"
  out.write_text('{"step": 1, "num_windows": 2}\n\n{"step": 3, "num_windows": 2}\n\n')
  assert [r["step"] for r in probe_checkpoints._read_rows(out)] == [1, 3]


def test_negative_few_shot_prompts_are_refused_before_anything_is_read(monkeypatch, tmp_path):
  for name, value in (("_WORKDIR", str(tmp_path)), ("_OUT", None), ("_WINDOWS", 0),
                      ("_FEW_SHOT", -1)):
    monkeypatch.setattr(probe_checkpoints, name, SimpleNamespace(value=value), raising=False)
  monkeypatch.setattr(probe_checkpoints, "probe_run", lambda *a: pytest.fail("probed"))
  with pytest.raises(InputError, match=r"--few_shot_prompts=-1 must be >= 0"):
    probe_checkpoints.main(["probe_checkpoints"])
