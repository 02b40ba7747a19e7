"""Config validation: bad input gives one line naming the field, exit 2, no traceback."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from configs import icl_regression
from research import config_check

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("preset", ["tiny", "cpu", "paper", "raventos"])
def test_presets_validate(preset):
  config_check.validate(icl_regression.get_config(preset), num_devices=8)


@pytest.mark.parametrize("section,field,value,match", [
    ("model", "name", "rnn", "config.model.name='rnn' is not valid; choose one of: "),
    ("task", "function", "cubic", "config.task.function='cubic' is not valid; choose one of: linear"),
    ("optim", "name", "adamax", "config.optim.name='adamax' is not valid; choose one of: adam, adamw, sgd"),
    ("optim", "schedule", "step", "config.optim.schedule='step'"),
    ("model", "positions", "alibi", "choose one of: learned, rotary, none"),
    ("model", "width", 33, "not divisible by config.model.num_heads"),
    ("train", "log_every", 15, "config.train.log_every=15 must be a multiple"),
    ("train", "batch_size", 12, "config.train.batch_size=12 is not divisible"),
    ("mesh", "data", 3, "config.mesh"),
    ("task", "n_points", 1, "config.task.n_points=1"),
    # Before: "write True without quotes", which a string choice refuses in turn.
    ("model", "remat", "True", "config.model.remat='True' is not valid; choose one of: none, full, dots"),
])
def test_invalid_fields(section, field, value, match):
  c = icl_regression.get_config("tiny")
  c[section][field] = value
  with pytest.raises(config_check.ConfigError, match=match.replace("(", r"\(")):
    config_check.validate(c, num_devices=8)


@pytest.mark.parametrize("section,field,value", [
    ("train", "num_steps", 99999999999999999999), ("train", "num_steps", 2 ** 63),
    ("train", "num_steps", 2 ** 31), ("train", "batch_size", 99999999999999999999),
    ("train", "checkpoint_every", 2 ** 40), ("train", "grad_accum_steps", 2 ** 31),
    ("optim", "decay_steps", 99999999999999999999),
])
def test_step_counts_and_sizes_beyond_int32_are_refused(section, field, value):
  """They passed validation, then overflowed at the first call: an OverflowError traceback
  from the schedule or the sampler, exit 1 (batch_size: with the run's files left behind)."""
  c = icl_regression.get_config("tiny")
  c[section][field] = value
  with pytest.raises(config_check.ConfigError, match=re.escape(
      f"config.{section}.{field}={value} is too large; it must be at most 2147483647 (2**31 - 1")):
    config_check.validate(c, num_devices=8)
  c = icl_regression.get_config("tiny")
  c.train.num_steps = c.optim.decay_steps = 2 ** 31 - 1  # the bound itself is valid
  config_check.validate(c, num_devices=8)


@pytest.mark.parametrize("key,hint", [
    ("train.seed", "did you mean 'seed'?"),          # the name exists in another section
    ("model.widht", "did you mean 'model.width'?"),  # a close spelling
    ("optim.lr", "did you mean 'optim.learning_rate'?"),  # initials (it offered optim.b2)
    ("train.bs", "did you mean 'train.batch_size'?"),
])
def test_unknown_field_hint(key, hint):
  from research import cli
  with pytest.raises(cli.InputError, match=re.escape(hint)):
    cli.apply_overrides(icl_regression.get_config("tiny"), {key: "1"}, text=True)


def test_an_abbreviation_is_matched_by_initials_in_its_own_section_only():
  """Controls: another section's field of those initials, one letter, other initials."""
  from research import config_overrides
  paths = config_overrides.leaf_paths(icl_regression.get_config("tiny"))
  assert config_overrides.abbreviated("optim.lr", paths) == ["optim.learning_rate"]
  assert config_overrides.abbreviated("model.nl", paths) == ["model.num_layers"]
  assert config_overrides.abbreviated("train.lr", paths) == []
  assert config_overrides.abbreviated("optim.l", paths) == []
  assert config_overrides.abbreviated("optim.xq", paths) == []


@pytest.mark.parametrize("seed", [-1, 2 ** 32])
def test_seed_outside_uint32_is_refused(seed):
  c = icl_regression.get_config("tiny")
  c.seed = seed
  with pytest.raises(config_check.ConfigError, match=rf"config.seed={seed} must be an integer"):
    config_check.validate(c, num_devices=8)
  c.seed = 2 ** 32 - 1  # the largest valid one
  config_check.validate(c, num_devices=8)


@pytest.mark.parametrize("text,value", [
    ("8,16,32", (8, 16, 32)), ("[8, 16]", (8, 16)), ("8", (8,)), ("", ()),
    ("kv,None", ("kv", None)), ("heads,2", ("heads", 2)), ("data, fsdp", ("data", "fsdp"))])
def test_a_tuple_field_from_the_command_line_parses_each_value(text, value):
  """--config.a.b=x,y,z on a tuple field (brackets optional): each value parsed as Python
  (None, numbers), a bare word kept as a string; a list given is the field's tuple."""
  import ml_collections
  from research import cli
  base = ml_collections.ConfigDict({"sharding": {"rule": ("batch", "data")}})
  c = cli.apply_overrides(base, {"sharding.rule": text}, text=True, flag="--config.")
  assert c.sharding.rule == value and type(c.sharding.rule) is tuple
  assert base.sharding.rule == ("batch", "data")  # the base config untouched


def _main(*overrides, tmp_path):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  return subprocess.run(
      [sys.executable, "-m", "research.main", "--config=configs/icl_regression.py:tiny",
       f"--workdir={tmp_path / 'run'}", *overrides],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("override,needle", [
    ("--config.model.widht=3", "unknown config field 'widht'"),
    ("--config.model.width=abc", "--config.model.width=abc"),
    ("--config.model.name=lstmx", "config.model.name='lstmx' is not valid"),
    ("--config.mesh.data=3", "config.mesh"),
    # Before: trained, then a numpy traceback at the probe; and a curriculum to 0 dims, exit 0.
    ("--config.probe.bootstrap_seed=-1", "config.probe.bootstrap_seed=-1 must be an integer"),
    ("--config.task.curriculum.enabled=True --config.task.curriculum.dims_increment=-1",
     "config.task.curriculum.dims_increment=-1 must be >= 0"),
    # Before: the position table was silently made the task's length (22), exit 0.
    # Before: "config.model.remat='True' is a string, which reads as true; write True without
    # quotes", a fix the string choice field (none | full | dots) refuses.
    ("--config.model.remat=True", "config.model.remat='True' is not valid; choose one of: "
     "none, full, dots"),
    ("--config.model.max_len=8", "model.max_len=8 is shorter than the task's sequences (22 "
     "positions); set model.max_len=0 (the task's length) or >= 22"),
    # Before: an OverflowError traceback at the first call, exit 1.
    ("--config.train.num_steps=99999999999999999999", "config.train.num_steps="
     "99999999999999999999 is too large; it must be at most 2147483647"),
])
def test_command_line_errors_are_one_line(override, needle, tmp_path):
  proc = _main(*override.split(), tmp_path=tmp_path)
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1 and needle in lines[0], proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "run").exists(), "a failed config must not create the workdir"


def test_a_run_saved_with_a_short_max_len_still_resumes(tmp_path):
  """Runs trained before max_len was checked had their table silently raised to the task's
  length: the check is for new runs, and such a run resumes as it was trained (its saved
  config.json says max_len=8; the model it trained has the 22-position table)."""
  proc = _main("--config.train.num_steps=20", tmp_path=tmp_path)
  assert proc.returncode == 0, proc.stderr[-2000:]
  saved = tmp_path / "run" / "config.json"
  config = json.loads(saved.read_text())
  config["model"]["max_len"] = 8  # what the older code wrote for --config.model.max_len=8
  saved.write_text(json.dumps(config))
  # ...and its checkpoints, from before research/run_environment.py, held no config of their
  # own (with it, this edit would be refused as one: test_run_environment.py); older still,
  # no checksums, so they restore unverified once.
  for step in (tmp_path / "run" / "checkpoints").iterdir():
    meta = step / "meta" / "metadata"
    meta.write_text(json.dumps({k: v for k, v in json.loads(meta.read_text()).items()
                                if k != "environment"}))
    (step / "checksums.json").unlink()
  proc = _main("--config.train.num_steps=40", "--config.model.max_len=8", tmp_path=tmp_path)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert json.loads((tmp_path / "run" / "summary.json").read_text())["final_step"] == 40


@pytest.mark.parametrize("check,needle", [
    ("True", "GB of this host's memory"),  # research/host_memory.py, before the state exists
    ("False", "RESOURCE_EXHAUSTED"),        # without it: XLA's allocation fails
])
def test_out_of_memory_is_one_line_and_the_corrected_command_runs(tmp_path, check, needle):
  """A config too large for the host (a pod preset on a laptop) was an 'internal error'
  traceback, and its leftover config.json then refused the corrected command."""
  proc = _main("--config.train.batch_size=268435456", f"--config.train.host_memory_check={check}",
               tmp_path=tmp_path)
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1 and needle in lines[0] and "train.batch_size" in lines[0]
  assert "Traceback" not in proc.stderr
  proc = _main("--config.train.num_steps=20", tmp_path=tmp_path)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["batch_size"] != \
      268435456


# A researcher's own config file: a copy of configs/icl_regression.py with one mistake in it.
# Each used to run silently on the default (a misspelled field, a quoted False) or end in an
# "internal error" traceback (a wrong type at a field's first assignment, a missing section).
_TINY = "  if preset == \"tiny\":\n"
FILE_MISTAKES = [  # (replacements, what the one line says)
    ([(_TINY, _TINY + "    c.train.batchsize = 8\n")],
     "config.train.batchsize is not a field (nothing reads it, so its value would be ignored); "
     "did you mean 'train.batch_size'?"),
    ([(_TINY, _TINY + "    c.optim.learning_rat = 1.0\n")], "did you mean 'optim.learning_rate'?"),
    # A top-level field, the sharding section, a new section: each ran silently (seed 0).
    ([(_TINY, _TINY + "    c.sead = 3\n")],
     "config.sead is not a field (nothing reads it, so its value would be ignored); "
     "did you mean 'seed'?"),
    ([(_TINY, _TINY + "    c.init_frm = '/runs/a'\n")], "did you mean 'init_from'?"),
    ([(_TINY, _TINY + "    c.n_dims = 3\n")], "config.n_dims is not a field (nothing reads it, "
     "so its value would be ignored); did you mean 'task.n_dims'?"),
    ([(_TINY, _TINY + "    c.sharding.rulez = ()\n")],
     "config.sharding.rulez is not a field (nothing reads it, so its value would be ignored); "
     "did you mean 'sharding.rules'?"),
    ([(_TINY, _TINY + "    c.extra = ml_collections.ConfigDict({'a': 1})\n")],
     "config.extra is not a field"),
    ([(_TINY, _TINY + "    c.init_scale = 2.0\n")],  # grokking's own field: nothing reads it here
     "config.init_scale is not a field"),
    ([("c.task.curriculum.enabled = True", "c.task.curriculum.enabled = 'False'"),
      ("    c.task.curriculum.enabled = False\n    c.train.batch_size = 64", "    pass")],
     "config.task.curriculum.enabled='False' is a string, which reads as true; write False"),
    ([("batch_size=128, num_steps=8000", "batch_size='128', num_steps=8000"),
      ("    c.train.batch_size = 64\n    c.model.num_layers", "    c.model.num_layers")],
     "config.train.batch_size='128' must be an int"),
    ([("batch_size=128, num_steps=8000", "batch_size=128.0, num_steps=8000"),
      ("    c.train.batch_size = 64\n    c.model.num_layers", "    c.model.num_layers")],
     "config.train.batch_size=128.0 must be an int"),
    ([("c.model.num_layers = 4\n", "c.model.num_layers = '4'\n"),
      ("c.model.num_layers, c.model.width, c.model.num_heads = 2, 32, 2",
       "c.model.width, c.model.num_heads = 32, 2")],
     "config.model.num_layers='4' must be a number (it is a str)"),
    ([("c.model.width = 64 ", "c.model.width = 64.0 "),
      ("c.model.num_layers, c.model.width, c.model.num_heads = 2, 32, 2",
       "c.model.num_layers, c.model.num_heads = 2, 2")],
     "config.model.width=64.0 must be an integer"),
    ([("c.task.n_dims = 5 ", "c.task.n_dims = '5' ")], "config.task.n_dims='5' must be a number"),
    ([("c.mesh = common.mesh()\n", "")], "config.mesh is missing; add c.mesh = common.mesh()"),
    ([("c = common.base(preset)\n", "c = ml_collections.ConfigDict()\n")],
     "config.init_from is missing; start the config from configs/common.py's base(preset)"),
    ([("c.model.mlp_ratio = 4.0", "pass")], "the config has no field 'mlp_ratio' that the code reads"),
    ([(_TINY, _TINY + "    c.task.n_point = 7\n")],
     "config.task.n_point is not a field of any shipped config of this task (it would be "
     "ignored); did you mean n_points?"),
    ([(_TINY, _TINY + "    c.task.curriculum.enabeld = False\n")],
     "ignored); did you mean curriculum.enabled?"),
    ([("  c.probe.knn = 3 ", "  c.probe.nn = 3 ")], "config.probe.nn is not a field"),
    ([(_TINY, _TINY + "    c.model.num_layer = 1\n")],
     "config.model.num_layer is not a field of any shipped config of this model"),
    # The misspelling, not what it left unset (trial66a: `c.task.paht` said "needs task.path"):
    ([(_TINY, _TINY + "    c.task.function, c.task.noise_sdt = 'noisy_linear', 0.5\n")],
     "config.task.noise_sdt is not a field of any shipped config of this task (it would be "
     "ignored); did you mean noise_std?"),
]


@pytest.mark.parametrize("edits,needle", FILE_MISTAKES)
def test_a_mistake_in_a_config_file_is_refused_naming_it(edits, needle, tmp_path):
  from research import cli
  from research.errors import InputError
  source = (ROOT / "configs" / "icl_regression.py").read_text()
  for old, new in edits:
    assert old in source, old
    source = source.replace(old, new, 1)
  path = tmp_path / "my_icl.py"
  path.write_text(source)
  with pytest.raises(InputError) as e:  # exit 2 (ConfigError is one)
    config_check.validate(cli.load_config(f"{path}:tiny"), num_devices=1)
  assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_the_unchanged_copy_of_a_config_file_validates(tmp_path):
  """The control: the copy itself, and every field set to another value of its kind."""
  from research import cli
  path = tmp_path / "my_icl.py"
  path.write_text((ROOT / "configs" / "icl_regression.py").read_text())
  c = cli.load_config(f"{path}:tiny")
  config_check.validate(c, num_devices=1)
  c.optim.learning_rate, c.train.peak_flops, c.task.curriculum.enabled = 1, 2, True  # int for float
  config_check.validate(c, num_devices=1)


@pytest.mark.parametrize("preset", ["", ":tiny"])
def test_research_main_refuses_a_misspelt_field_in_the_file_as_on_the_command_line(preset,
                                                                                   tmp_path):
  """`c.init_frm = ...` in the file trained from scratch, exit 0 (config.json kept it);
  `--config.init_frm=...` was refused. Both now exit 2 naming init_from; nothing is written."""
  path = tmp_path / "my.py"
  path.write_text((ROOT / "configs" / "icl_regression.py").read_text().replace(
      "c = common.base(preset)\n", "c = common.base(preset)\n  c.init_frm = '/runs/a'\n", 1))
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  for config, flag in ((f"{path}{preset}", []), (f"configs/icl_regression.py{preset}",
                                                 ["--config.init_frm=/runs/a"])):
    proc = subprocess.run([sys.executable, "-m", "research.main", f"--config={config}",
                           f"--workdir={tmp_path / 'run'}", *flag],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "did you mean 'init_from'?" in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not (tmp_path / "run").exists()


def test_a_new_tasks_own_fields_are_left_to_its_check_config(tmp_path, monkeypatch):
  """The control of the shipped-config comparison: a task no shipped config has (here: the
  regression configs hidden) is not compared, so its new fields are not refused."""
  import configs
  from research import cli
  c = cli.load_config("configs/icl_regression.py:tiny")
  with c.unlocked():
    c.task.my_new_field = 3
  with pytest.raises(config_check.ConfigError, match="config.task.my_new_field is not a field"):
    config_check.validate(c, num_devices=1)
  others = tuple(x for x in configs.shipped() if x.task.name != "regression")
  monkeypatch.setattr(configs, "shipped", lambda: others)
  config_check.validate(c, num_devices=1)


@pytest.mark.parametrize("value,ok", [(0.0, True), (0.999, True), (1.0, False), (-0.1, False)])
def test_dropout_lies_in_zero_to_one_open(value, ok):
  """Dropout 1.0 zeroes every activation and its 1/(1 - p) rescale divides by zero (a
  mutation audit let it validate unseen)."""
  from configs import icl_regression
  from research import config_check
  c = icl_regression.get_config("tiny")
  c.model.dropout = value
  if ok:
    config_check.validate(c, num_devices=8)
  else:
    with pytest.raises(config_check.ConfigError, match=r"dropout=.* must be in \[0, 1\)"):
      config_check.validate(c, num_devices=8)


@pytest.mark.parametrize("field,valid,invalid,match", [
    ("optim.b2", 0.999, 1.0, r"config.optim.b2=1.0 must be in [0, 1)"),
    ("optim.end_lr_fraction", 1.0, 1.5, r"config.optim.end_lr_fraction=1.5 must be in [0, 1]"),
    # the tiny preset warms up for 10 steps: the decay must end after them
    ("optim.decay_steps", 11, 10, "config.optim.decay_steps=10 must exceed "
     "config.optim.warmup_steps=10 for schedule='warmup_cosine'"),
    # batch 64 over 8 data shards: 8 microbatches of 8 rows, not 16 (of 4: a shard each)
    ("train.grad_accum_steps", 8, 16, "config.train.batch_size=64 is not divisible by "
     "config.train.grad_accum_steps x mesh data x fsdp = 16 x 8"),
    ("train.eval_every", 20, 15, "config.train.eval_every=15 must be a multiple of "
     "config.train.steps_per_call=10"),
    ("probe.bootstrap_seed", 2 ** 32 - 1, 2 ** 32, "config.probe.bootstrap_seed=4294967296 must "
     "be an integer in [0, 2**32)"),
])
def test_each_bound_itself_is_on_its_documented_side(field, valid, invalid, match):
  """The boundary values of the checks (a mutation audit moved each unseen): the first value
  validates, the second is refused naming it."""
  *sections, name = field.split(".")
  for value, ok in ((valid, True), (invalid, False)):
    c = icl_regression.get_config("tiny")
    node = c
    for section in sections:
      node = node[section]
    node[name] = value
    if ok:
      config_check.validate(c, num_devices=8)
    else:
      with pytest.raises(config_check.ConfigError, match=re.escape(match)):
        config_check.validate(c, num_devices=8)



def test_the_warmup_rsqrt_schedule_needs_a_warmup_and_a_resnet_positive_stages():
  """warmup_rsqrt divides by the warmup (0 steps: a zero learning rate); a ResNet stage of 0
  blocks, channels or stride builds nothing. The smallest valid values validate."""
  c = icl_regression.get_config("tiny")
  c.optim.schedule, c.optim.warmup_steps = "warmup_rsqrt", 1
  config_check.validate(c, num_devices=8)
  c.optim.warmup_steps = 0
  with pytest.raises(config_check.ConfigError, match="warmup_steps=0 with schedule='warmup_rsqrt'"):
    config_check.validate(c, num_devices=8)
  from configs import resnet_images
  for field in ("blocks", "channels", "strides"):
    c = resnet_images.get_config("tiny")
    config_check.validate(c, num_devices=1)
    c.model.resnet[field] = (1, 0)
    with pytest.raises(config_check.ConfigError, match="blocks/channels/strides must be positive"):
      config_check.validate(c, num_devices=1)


def test_the_preset_is_a_record_of_any_kind():
  """config.preset only records where the config came from (a user's file may leave it None):
  it is the one run-level field whose kind is not checked."""
  c = icl_regression.get_config("tiny")
  c.preset = None
  config_check.validate(c, num_devices=8)


def test_a_quoted_bool_is_refused_spaces_and_all():
  """'False' in quotes (in a config file: ' False', 'false ') reads as true; a text field
  holding such a word (model.remat) is left to its choice check."""
  import ml_collections
  for text in (" False", "false ", "TRUE"):
    c = ml_collections.ConfigDict({"task": {"curriculum": {"enabled": text}}})
    with pytest.raises(config_check.ConfigError, match=re.escape(
        f"config.task.curriculum.enabled={text!r} is a string, which reads as true; write "
        f"{text.strip().capitalize()} without quotes")):
      config_check._no_quoted_bools(c)
  config_check._no_quoted_bools(ml_collections.ConfigDict({"model": {"remat": "True"}}))

def test_a_results_column_abbreviated_is_offered_first():
  """research.results --by optim.lr offered optim.b2, optim.b1, optim.eps."""
  from research import cli, results_records
  rows = [{"optim.learning_rate": 1e-3, "optim.b1": 0.9, "optim.b2": 0.99, "optim.eps": 1e-8}]
  with pytest.raises(cli.InputError, match=r"no column 'optim.lr' in the runs' table; did you mean "
                     r"optim.learning_rate, optim.b2"):
    results_records.check_column(rows, "optim.lr", "--by")
