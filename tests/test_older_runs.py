"""A run written by an older version: its config.json lacks the fields added since. The README
promises such a run resumes; research/config_defaults.py gives each absent field the value that
version behaved as (its default), one answer for a rerun's config check and research.predict.
(The real case, a run of the version before task.synthetic_fraction, reran as "holds a run of
another config (task.synthetic_fraction: None -> 0.0)", exit 2.)"""
import json

import pytest

from research import config_defaults, predict, results_records, workdir
from test_faults import _copy, _snapshot, _tiny, _train, finished  # noqa: F401 (a fixture)

# Fields of the finished icl_regression run, each removed as if added after it was trained:
# a task field (its default: what every shipped regression config holds), a shared block's
# (configs/common.py) and a Transformer feature's.
ADDED = (("task", "noise_std", 0.0), ("train", "grad_accum_steps", 1), ("model", "fused_qkv", False))


def _older(finished, path):
  wd = _copy(finished, path)
  config = json.loads((wd / "config.json").read_text())
  for section, field, _ in ADDED:
    del config[section][field]
  (wd / "config.json").write_text(json.dumps(config, indent=2))
  return wd


def test_an_older_runs_config_reruns_and_resumes_at_its_defaults(finished, tmp_path):
  wd = _older(finished, tmp_path / "run")
  c = _tiny(**{"train.checkpoint_every": 20})
  assert workdir.config_differences(wd, c) == []
  assert workdir.finished_summary(wd, c) is not None  # reused as finished, not retrained
  c.train.num_steps = 60  # extended: only its own change is recorded
  assert _train(c, wd)["final_step"] == 60
  assert workdir.read_jsonl(wd / workdir.CHANGES) == [
      {"step": 40, "changes": ["train.num_steps: 40 -> 60"]}]


def test_predict_reads_an_older_runs_config_with_the_same_defaults(finished, tmp_path):
  wd = _older(finished, tmp_path / "run")
  saved = json.loads((wd / "config.json").read_text())
  filled, added = config_defaults.filled(saved)
  assert sorted(added) == sorted(f"{s}.{f}" for s, f, _ in ADDED)
  c = predict.saved_run_config(wd)  # the task field too: predict filled configs/common.py's alone
  for section, field, default in ADDED:
    assert filled[section][field] == c[section][field] == default


def test_an_absent_field_at_another_value_is_a_change(finished, tmp_path):
  wd = _older(finished, tmp_path / "run")
  before = _snapshot(wd)
  c = _tiny(**{"train.checkpoint_every": 20, "task.noise_std": 0.5})
  with pytest.raises(workdir.ConfigChangedError, match=r"another config \(task.noise_std: absent "
                     r"\(default 0.0\) -> 0.5\);") as e:
    _train(c, wd)
  assert e.value.exit_code == 2
  assert _snapshot(wd) == before
  # A field the shipped configs of the task hold at different values has no default: its
  # absence is a change, whatever the value.
  config = json.loads((wd / "config.json").read_text())
  del config["task"]["n_points"]
  (wd / "config.json").write_text(json.dumps(config))
  c.task.noise_std = 0.0
  assert workdir.config_differences(wd, c) == [f"task.n_points: absent -> {c.task.n_points}"]


def test_results_shows_an_older_runs_fields_at_their_defaults(finished, tmp_path):
  """research.results beside a newer run: the older run's row had no cell for each field added
  since (blank in the table, and `--where model.fused_qkv=False` could not match it); it ran with
  the default, which its row now shows. The newer run's own values are kept (control)."""
  old = _older(finished, tmp_path / "runs" / "old")
  new = _copy(finished, tmp_path / "runs" / "new")
  config = json.loads((new / "config.json").read_text())
  config["task"]["noise_std"] = 0.25
  (new / "config.json").write_text(json.dumps(config, indent=2))
  rows = {r["run"]: r for r in results_records.records([tmp_path / "runs"])}
  for section, field, default in ADDED:
    assert rows["old"][f"{section}.{field}"] == default
  assert rows["new"]["task.noise_std"] == 0.25
  assert json.loads((old / "config.json").read_text()).get("task", {}).get("noise_std") is None
