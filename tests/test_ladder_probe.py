"""research.probe_checkpoints (issue 18 §3): Olsson's ICL score and loss by position on every
kept checkpoint of a run it did not train, resumable, as JSONL in the run directory.

Negative control: an untrained model's ICL score sits within its noise (zero within a few
standard errors), while a model trained on a corpus of repeated random strings, where late
tokens can be copied from earlier ones, goes clearly negative."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from research import checkpoint as ckpt_lib
from research import cli, config_check, experiment, output_paths, predict, probe_checkpoints, train
from research import results_records
from research.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
STEPS = 600


def _repeated_corpus(path: Path) -> Path:
  """Lines of a random 8-letter string said 8 times: token t is predictable from token t - 8
  of the same line, never from bigram statistics."""
  rng = np.random.default_rng(0)
  letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
  path.write_text("".join("".join(rng.choice(letters, 8)) * 8 + "\n" for _ in range(3000)))
  return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  d = tmp_path_factory.mktemp("probe")
  c = cli.load_config("configs/lm.py:tiny")
  c.task.source, c.task.path = "file", str(_repeated_corpus(d / "corpus.txt"))
  c.train.compile_cache_dir, c.mesh.data = "", 1
  c.train.num_steps, c.train.steps_per_call, c.train.log_every = STEPS, 10, 50
  c.train.batch_size = 32
  c.train.eval_every, c.train.checkpoint_every, c.train.keep_checkpoints = 0, 0, 1
  c.train.keep_log_spaced = True
  c.optim.learning_rate, c.optim.warmup_steps = 3e-3, 20
  c.probe.eval_sequences, c.probe.generate_tokens = 64, 0
  config_check.validate(c, 1)
  train.train_and_evaluate(c, str(d / "run"), devices=jax.devices()[:1])
  return d / "run"


def _rows(path):
  return [json.loads(l) for l in Path(path).read_text().splitlines()]


def test_every_kept_checkpoint_gets_a_row_and_training_on_repeats_turns_the_score_negative(run):
  probed = probe_checkpoints.probe_run(run)
  assert probed == [10, 20, 40, 70, 130, 260, 520, 600]  # 1..8 -> 10, 16 -> 20, ...
  rows = _rows(run / probe_checkpoints.OUT)
  assert [r["step"] for r in rows] == probed
  first, last = rows[0], rows[-1]
  for r in rows:
    assert (r["early"], r["late"], r["half_window"], r["seq_len"]) == (3, 31, 0, 32)
    assert r["num_windows"] == 64 and len(r["loss_by_position"]) == 32
    assert r["tokens"] == r["step"] * 32 * 32
    lpp = r["loss_by_position"]  # the score is late minus early, token-aligned
    assert r["icl_score"] == pytest.approx(lpp[r["late"] - 1] - lpp[r["early"] - 1], abs=1e-5)
  # After 10 steps (unigram statistics only): no context use yet, zero within its noise.
  assert abs(first["icl_score"]) < 3 * first["icl_score_se"] + 0.02, first["icl_score"]
  # Trained on repeated strings: late tokens are copied, the score is far below zero.
  assert last["icl_score"] < -1.0 and last["icl_score"] < -5 * last["icl_score_se"], last
  assert last["loss"] < first["loss"] - 0.5
  # Every head scored. (This 600-step model lowers late loss with near-uniform attention,
  # i.e. by the line's letter set, not with induction heads: no prefix-score claim here.)
  for r in rows:
    assert sorted(r["heads"]) == ["L0H0", "L0H1", "L1H0", "L1H1"]
    assert all(set(h) == {"prefix", "previous", "copying"} for h in r["heads"].values())
    assert all(-1 <= h["copying"] <= 1 and 0 <= h["prefix"] <= 1 for h in r["heads"].values())
  # research.results tables the newest probed checkpoint (its rows were out of its reach).
  table = results_records.records([run])
  assert table[0]["probes.checkpoints.step"] == STEPS
  assert table[0]["probes.checkpoints.icl_score"] == last["icl_score"]
  assert table[0]["probes.checkpoints.num_windows"] == 64


def test_an_untrained_model_scores_zero_within_its_noise(run):
  """Negative control on freshly initialised parameters (no step taken at all)."""
  exp = predict.open_run(run)
  params = exp.init_state().params
  row = probe_checkpoints.probe_checkpoint(exp, params, 64)
  assert abs(row["icl_score"]) < 3 * row["icl_score_se"] + 0.01, row["icl_score"]
  assert row["loss"] == pytest.approx(np.log(exp.task.io.vocab_size), abs=0.2)
  # No head of an untrained model prefers the induction target over uniform attention.
  assert max(h["prefix"] for h in row["heads"].values()) < 2 * row["prefix_baseline"]


def test_few_shot_cells_fit_the_context_and_an_untrained_model_is_at_chance(run):
  """The few-shot probe runs the shots whose prompts fit L = 32 (copy: k <= 2) and, on an
  untrained model, no cell is above chance by its interval (the negative control)."""
  from research.probes import few_shot
  exp = predict.open_run(run)
  scores = probe_checkpoints.few_shot_scores(exp, exp.init_state().params, 20)
  assert sorted(scores) == sorted(few_shot.TASKS)
  assert sorted(scores["copy"], key=int) == ["0", "1", "2"]
  for task, cells in scores.items():
    for k, cell in cells.items():
      for metric in ("exact_match", "token_accuracy", "log_likelihood"):
        mean, lo, hi = cell[metric]
        assert lo <= mean <= hi
        better = lo > cell["chance"][metric] if metric != "brier" else hi < cell["chance"][metric]
        assert not better, (task, k, metric, cell)


def test_a_rerun_skips_probed_checkpoints_and_fills_in_a_missing_one(run):
  out = run / probe_checkpoints.OUT
  probe_checkpoints.probe_run(run)  # make sure the file is complete (test order)
  before = out.read_text()
  assert probe_checkpoints.probe_run(run) == []
  assert out.read_text() == before
  rows = _rows(out)
  out.write_text("".join(json.dumps(r) + "\n" for r in rows if r["step"] != 40))
  assert probe_checkpoints.probe_run(run) == [40]
  assert _rows(out) == rows  # recomputed bit for bit, in step order
  other = run.parent / "other.jsonl"
  out.write_text("".join(json.dumps(r) + "\n" for r in rows if r["step"] != STEPS))
  with pytest.raises(InputError, match="--windows=64"):  # new rows of another window count
    probe_checkpoints.probe_run(run, windows=16)
  assert probe_checkpoints.probe_run(run, out=other, windows=16)[-1] == STEPS
  assert {r["num_windows"] for r in _rows(other)} == {16}
  assert not (run.parent / ".lock").exists()  # a folder outside the run keeps no lock file


def test_the_command_refuses_a_workdir_without_checkpoints_in_one_line(tmp_path):
  (tmp_path / "config.json").write_text(json.dumps({"task": {"name": "lm"}}))
  proc = subprocess.run([sys.executable, "-m", "research.probe_checkpoints",
                         f"--workdir={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                        timeout=300)
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
  assert "no complete checkpoint" in lines[0]


def test_a_workdir_that_is_a_file_is_refused_in_one_line(tmp_path):
  """It was exit 5, 'reading .../config.json failed: Not a directory' (an I/O error)."""
  (tmp_path / "afile").write_text("x")
  with pytest.raises(InputError, match=r"--workdir=.*afile is a file; pass the directory"):
    probe_checkpoints.probe_run(tmp_path / "afile")


@pytest.mark.parametrize("where,needle", [
    ("run", "is a directory; name a file in it, e.g. --out="),
    ("/proc/x.jsonl", "--out=/proc/x.jsonl: /proc is not writable; pass a path you can write to"),
    ("run/config.json/x.jsonl", "config.json is a file, so the file cannot be created")])
def test_an_out_that_cannot_be_written_is_refused_first_and_leaves_nothing(run, where, needle):
  """A directory or a read-only place (/proc: root ignores file modes) was exit 5 after the
  run was read, with the raw OSError, and a stray .lock beside it (audit 34, D11)."""
  out = where.replace("run", str(run), 1)
  before = sorted(run.parent.rglob("*"))
  proc = subprocess.run([sys.executable, "-m", "research.probe_checkpoints", f"--workdir={run}",
                         f"--out={out}", "--few_shot_prompts=0"], cwd=ROOT, capture_output=True,
                        text=True, timeout=300)
  lines = [l for l in proc.stderr.splitlines() if l.strip() and not re.match(r"[IWEF]\d{4} ", l)]
  assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
  assert lines[0].startswith("error: --out=") and needle in lines[0], lines
  assert sorted(run.parent.rglob("*")) == before  # no .lock, no probes file


def test_a_read_only_workdir_without_out_is_refused_first_and_leaves_nothing(run, monkeypatch):
  """Without --out the rows go into the workdir: a read-only one was exit 5 with the raw
  OSError of the lock file (audit 35). Root ignores file modes, so the check is made to
  see the workdir as unwritable."""
  real = output_paths._writable
  monkeypatch.setattr(output_paths, "_writable", lambda d: not Path(d).is_relative_to(run) and real(d))
  before = sorted(run.parent.rglob("*"))
  with pytest.raises(InputError, match=rf"--workdir={re.escape(str(run))}: the probe's rows go to "
                     r"probes/checkpoints.jsonl in it unless --out says otherwise, and .*probes is "
                     r"not writable; pass a path you can write to; or pass --out=FILE elsewhere$"):
    probe_checkpoints.probe_run(run)
  assert sorted(run.parent.rglob("*")) == before  # no .lock, no probes file
  reached = []  # the control: writable, the probe gets past the check to its default file
  monkeypatch.setattr(output_paths, "_writable", real)
  monkeypatch.setattr(probe_checkpoints, "_probe_steps", lambda *a: reached.append(a[3]) or [])
  assert probe_checkpoints.probe_run(run) == [] and reached == [run / probe_checkpoints.OUT]


def test_an_edited_config_that_no_longer_fits_the_checkpoints_is_named(run, tmp_path):
  """An edited config.json (another MLP width) was exit 4, each checkpoint 'does not match
  this config', naming no file."""
  edited = tmp_path / "run"
  shutil.copytree(run, edited)
  (edited / probe_checkpoints.OUT).unlink(missing_ok=True)
  config = json.loads((edited / "config.json").read_text())
  config["model"]["mlp_ratio"] /= 2
  (edited / "config.json").write_text(json.dumps(config))
  with pytest.raises(InputError, match=r"checkpoint \d+ in .* does not fit the model its "
                     r"config.json and vocabulary.json describe \(params/.*mlp.*\): edited since "
                     r"training; restore them from a backup of the run$"):
    probe_checkpoints.probe_run(edited)
  assert not (edited / probe_checkpoints.OUT).exists()


def test_a_broken_config_json_is_named_as_broken(tmp_path):
  (tmp_path / "config.json").write_text("{not json")
  with pytest.raises(InputError, match="config.json does not hold a config"):
    probe_checkpoints.probe_run(tmp_path)


def test_no_restorable_checkpoint_is_a_checkpoint_error_with_the_fix(run, tmp_path):
  broken = tmp_path / "run"
  shutil.copytree(run, broken)
  (broken / probe_checkpoints.OUT).unlink(missing_ok=True)
  for f in (broken / "checkpoints").rglob("*"):  # every file of every step, directories kept
    if f.is_file():
      f.write_bytes(b"garbage")
  with pytest.raises(ckpt_lib.CheckpointError, match="no checkpoint of .* could be restored: "
                     r"10 \(.*; restore its checkpoints directory from a backup or retrain"):
    probe_checkpoints.probe_run(broken)


@pytest.mark.parametrize("text", ["important notes, one line\n", '{"a": 1}\n',
                                  '{"step": "10", "num_windows": 64}\n', "[1, 2]\n"])
def test_an_out_holding_something_else_is_refused_and_left_as_it_is(run, tmp_path, text):
  """A one-line text file was read as a torn JSONL line, dropped with a warning and
  overwritten with probe rows (exit 0); other rows were a KeyError or TypeError traceback."""
  out = tmp_path / "mine.txt"
  out.write_text(text)
  with pytest.raises(InputError, match=r"mine.txt is not a file of research.probe_checkpoints "
                     r"rows \(line 1 is not one: no integer step and num_windows\); it is left"):
    probe_checkpoints.probe_run(run, out=out)
  assert out.read_text() == text


def test_an_out_in_another_runs_directory_is_refused(run, tmp_path):
  """--out=OTHER/probes/checkpoints.jsonl skipped this run's steps that OTHER had probed
  (rows are matched by step) and appended the rest to OTHER's record, exit 0."""
  import shutil
  other = tmp_path / "other"
  shutil.copytree(run, other, ignore=shutil.ignore_patterns("checkpoints", ".lock"))
  (other / "probes").mkdir(exist_ok=True)
  rows = other / "probes" / "checkpoints.jsonl"  # OTHER's probe record (whatever ran first)
  if not rows.exists():
    rows.write_text(json.dumps({"step": 10, "num_windows": 16}) + "\n")
  before = rows.read_text()
  with pytest.raises(InputError, match=rf"--out=.* is inside another run \({other}\)"):
    probe_checkpoints.probe_run(run, out=other / "probes" / "checkpoints.jsonl")
  with pytest.raises(InputError, match="inside another run"):
    probe_checkpoints.probe_run(run, out=other / "mine.jsonl")
  assert (other / "probes" / "checkpoints.jsonl").read_text() == before
  assert probe_checkpoints.probe_run(run, out=tmp_path / "mine.jsonl")  # control: outside both


def test_mismatched_flags_are_refused_whether_or_not_a_checkpoint_is_new(run):
  """With every checkpoint already probed, other --windows or --few_shot_prompts than the
  rows' exited 0 having probed nothing; after a new checkpoint the same flags were exit 2."""
  probe_checkpoints.probe_run(run)  # the file is complete (test order)
  assert probe_checkpoints.probe_run(run) == []  # control: the rows' own settings
  assert probe_checkpoints.probe_run(run, windows=64) == []
  with pytest.raises(InputError, match="held-out windows, this probe 16; pass --windows=64"):
    probe_checkpoints.probe_run(run, windows=16)
  with pytest.raises(InputError, match=r"\[0\] few-shot prompts per cell, this probe 5"):
    probe_checkpoints.probe_run(run, few_shot_prompts=5)


@pytest.mark.parametrize("edit,needle", [
    (lambda c: {"task": "lm"}, re.escape("config.json is not a run's config (no task.name)")),
    (lambda c: {}, re.escape("config.json is not a run's config (no task.name)")),
    (lambda c: {"task": c["task"]}, r"is not a valid run config \(no field 'mesh'\)"),
    (lambda c: c | {"model": {k: v for k, v in c["model"].items() if k != "width"}},
     r"is not a valid run config \(the config has no field 'width' that the code reads\)"),
    (lambda c: c | {"model": c["model"] | {"width": "wide"}},
     r"is not a valid run config \(config.model.width='wide' must be a number")])
def test_an_edited_config_json_is_refused_in_one_line(run, tmp_path, edit, needle):
  """Valid JSON that is not the run's config was an AttributeError or TypeError traceback in
  probe_checkpoints and predict (open_run); {} said the workdir held no config.json."""
  edited = tmp_path / "run"
  shutil.copytree(run, edited, ignore=shutil.ignore_patterns("probes"))
  config = json.loads((edited / "config.json").read_text())
  (edited / "config.json").write_text(json.dumps(edit(config)))
  with pytest.raises(InputError, match=needle) as e:
    probe_checkpoints.probe_run(edited)
  assert "\n" not in str(e.value)
  with pytest.raises(InputError, match=needle):
    predict.open_run(edited)
  assert not (edited / "probes").exists()


def test_a_model_without_attention_has_no_head_scores(run):
  """An LSTM language model (model.name='lstm') was a KeyError traceback: the probe read
  attention maps from intermediates it does not sow."""
  c = cli.load_config("configs/lm.py:tiny")
  c.task.source, c.task.path = "file", str(run.parent / "corpus.txt")
  c.model.name, c.mesh.data = "lstm", 1
  config_check.validate(c, 1)
  exp = experiment.Experiment(c, jax.devices()[:1])
  params = exp.init_state().params
  assert probe_checkpoints.head_scores(exp, params) == {}
  row = probe_checkpoints.probe_checkpoint(exp, params, 4)
  assert "heads" not in row and np.isfinite(row["loss"]) and row["num_windows"] == 4


def test_a_corpus_changed_since_training_is_refused(run, tmp_path):
  """The byte vocabulary does not change with the text: a corpus edited after training was
  probed silently, held-out windows and all."""
  edited = tmp_path / "run"
  shutil.copytree(run, edited, ignore=shutil.ignore_patterns("checkpoints.jsonl"))
  config = json.loads((edited / "config.json").read_text())
  text = Path(config["task"]["path"]).read_text()
  moved = tmp_path / "moved.txt"
  moved.write_text(text)  # control: the same text elsewhere is the same corpus
  config["task"]["path"] = str(moved)
  (edited / "config.json").write_text(json.dumps(config))
  predict.open_run(edited)
  moved.write_text(text[: len(text) // 2])
  with pytest.raises(InputError, match=r"is not the data this run trained on \(bytes .*; sha256 "
                     r".*vocabulary.json\): .*Restore the data the run trained on"):
    probe_checkpoints.probe_run(edited)
  assert not (edited / probe_checkpoints.OUT).exists()
  # A run of an older version recorded no data in vocabulary.json: its final probe's corpus
  # (byte counts) is what it is checked against.
  vocabulary = json.loads((edited / "vocabulary.json").read_text())
  del vocabulary["data"]
  (edited / "vocabulary.json").write_text(json.dumps(vocabulary))
  lm_json = json.loads((edited / "probes" / "lm.json").read_text())
  del lm_json["corpus"]["sha256"]
  (edited / "probes" / "lm.json").write_text(json.dumps(lm_json))
  with pytest.raises(InputError, match=r"is not the data this run trained on \(bytes .*lm.json"):
    probe_checkpoints.probe_run(edited)
  moved.write_text(text)
  predict.open_run(edited)


def test_a_config_json_of_an_older_version_still_opens(run, tmp_path):
  """A run trained before the Transformer features and gradient accumulation existed has
  none of their fields: the config check refused it as edited ("config.train.grad_accum_steps
  is missing"), where the model builder reads them with their defaults."""
  old = tmp_path / "run"
  shutil.copytree(run, old, ignore=shutil.ignore_patterns("checkpoints.jsonl"))
  config = json.loads((old / "config.json").read_text())
  for field in ("dtype", "remat", "scan_layers", "attention", "fused_qkv"):
    del config["model"][field]
  del config["train"]["grad_accum_steps"]
  (old / "config.json").write_text(json.dumps(config))
  c = predict.saved_run_config(old)
  assert c.train.grad_accum_steps == 1 and c.model.remat == "none" and not c.model.scan_layers
  assert predict.open_run(old).num_params == predict.open_run(run).num_params
  config["train"]["grad_accum_steps"] = "two"  # control: a value of the wrong kind still fails
  (old / "config.json").write_text(json.dumps(config))
  with pytest.raises(InputError, match="is not a valid run config"):
    predict.saved_run_config(old)


def test_nothing_new_is_answered_without_rebuilding_the_run(run, tmp_path, monkeypatch):
  """Rows over fewer windows than asked (the run has fewer held-out windows, or
  probe.eval_sequences=0: all of them) rebuilt the run on every rerun to compare."""
  probe_checkpoints.probe_run(run)  # the file is complete (test order)
  rows = _rows(run / probe_checkpoints.OUT)
  out = tmp_path / "asked_more.jsonl"
  out.write_text("".join(json.dumps(r | {"windows_asked": 100_000}) + "\n" for r in rows))
  monkeypatch.setattr(predict, "open_run", lambda *a: pytest.fail("the run was rebuilt"))
  assert probe_checkpoints.probe_run(run, out=out, windows=100_000) == []
  with pytest.raises(pytest.fail.Exception):  # control: other windows need the run to compare
    probe_checkpoints.probe_run(run, out=out, windows=16)


def test_more_windows_than_held_out_probes_them_all_and_a_rerun_accepts_its_rows(
    run, tmp_path, monkeypatch):
  """--windows above the run's held-out windows probes all of them (num_windows is that
  count); a rerun with the same flags fills in a missing row instead of refusing the rows as
  'over another window count'. Two checkpoints of a copy, and each row's scores stubbed
  (their window count as eval_losses gives it), keep it quick."""
  def probe_checkpoint(exp, params, num_windows, few_shot_prompts=0):
    return {"loss": 0.0, "icl_score": 0.0, "icl_score_se": 0.0, "early": 3, "late": 31,
            "num_windows": min(num_windows, len(exp.task.eval_windows)),
            "few_shot_prompts": few_shot_prompts}

  monkeypatch.setattr(probe_checkpoints, "probe_checkpoint", probe_checkpoint)
  wd = tmp_path / "run"
  shutil.copytree(run, wd, ignore=shutil.ignore_patterns("probes", ".lock"))
  for p in (wd / "checkpoints").iterdir():
    if p.name.isdigit() and int(p.name) > 20:
      shutil.rmtree(p)
  out, asked = tmp_path / "rows.jsonl", 10 ** 6
  assert probe_checkpoints.probe_run(wd, out=out, windows=asked) == [10, 20]
  rows = _rows(out)
  (held_out,) = {r["num_windows"] for r in rows}
  assert 64 < held_out < asked and {r["windows_asked"] for r in rows} == {asked}
  out.write_text(json.dumps(rows[0]) + "\n")  # step 20's row lost
  assert probe_checkpoints.probe_run(wd, out=out, windows=asked) == [20]
  assert _rows(out) == rows
