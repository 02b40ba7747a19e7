"""experiments/claims/classification.py, Chan's rows at their edges: the class-count sweep
read by K, the in-weights rows over the in-weights probe's sequences and each cell's own
chance, the bursty and trade-off rows, and the LSTM row's 'some cell' rule."""
import json

from claims_fixtures import IWL_CHANCE, chan_run, write
from experiments.claims import classification


def _lstm_row(run, at_zipf_0, at_zipf_1, drop_chance=False):
  """Chan's LSTM row (claims[4]) with every LSTM cell's in-weights accuracy set by its Zipf
  alpha; `drop_chance`: the cells without their recorded in-weights chance (older files)."""
  res = json.loads((run / "results.json").read_text())
  for c in res:
    if c["model"] == "lstm":
      if drop_chance:
        del c["iwl_chance"]
      c["iwl"] = at_zipf_1 if c["overrides"]["task.zipf_alpha"] else at_zipf_0
  write(run / "results.json", res)
  return classification.chan2022(run, "cpu")["claims"][4]


def test_chan_many_classes_reads_the_fewest_and_most_classes_by_k_not_by_accuracy(tmp_path):
  """The sweep's ends are its smallest and largest K, in whatever order the file lists them
  (a mutation audit: sorting the cells by accuracy passed a sweep whose fewest classes are
  at 0.5)."""
  run_dir = tmp_path / "chan2022" / "run"
  reddy_path = tmp_path / "reddy2023" / "run" / "results.json"
  status = lambda ks: (write(reddy_path, {"preset": "cpu", "chance_full": 1 / 32, "sweep_K": [
      {"K": k, "icl": a} for k, a in ks]}), classification._chan_many_classes(
          run_dir, "cpu", "")["status"])[1]
  assert status([(2048, 0.99), (32, 0.04)]) == "PASS"              # listed largest first
  assert status([(32, 0.5), (128, 0.04), (2048, 0.99)]) == "FAIL"  # fewest classes 0.5: not chance
  assert status([(32, 0.04), (512, 0.99), (2048, 0.85)]) == "FAIL"  # most classes 0.85 < 0.9


def _chan_iwl_sequences(run, n):
  """The in-weights probe of Chan's grid at RUN over n sequences (the ICL probe's stay 512)."""
  path = run / "cell" / "probes" / "classification.json"
  res = json.loads(path.read_text())
  res["probes"]["iwl"]["num_sequences"] = n
  write(path, res)


def test_chan_in_weights_rows_read_the_in_weights_probes_sequences(tmp_path):
  """The in-weights lines' SE is over the in-weights probe's sequences, not the ICL probe's
  (a mutation audit: n for both passed these). LSTM in weights 0.7 over 16 sequences: 0.184 above
  its line 0.516 against 2 SE 2 sqrt(0.516 x 0.484 / 16) = 0.250 (over 512: 0.044). The
  trade-off's in-weights rise above chance (0.425 - 0.156) - (0.1 - 1/32) = 0.2003 against 2
  SE of the difference at the pooled 0.2625, 2 sqrt(2 x 0.2625 x 0.7375 / 16) = 0.311."""
  run = tmp_path / "chan2022" / "run"
  chan_run(run, lstm_iwl=0.7, iwl={(0.0, 0.0): 0.1, (0.0, 1.0): 0.6, (0.9, 0.0): 0.1,
                                   (0.9, 1.0): 0.425})
  rows = classification.chan2022(run, "cpu")["claims"]
  assert [rows[i]["status"] for i in (2, 4)] == ["PASS", "PASS"], rows  # control: 512 each
  _chan_iwl_sequences(run, 16)
  rows = classification.chan2022(run, "cpu")["claims"]
  assert rows[4]["status"] == "FAIL" and "IWL +0.184 from its line 0.516 (2 SE 0.250)" in \
      rows[4]["note"], rows[4]
  assert rows[2]["status"] == "FAIL" and "IWL rise above chance +0.2003 vs noise 0.3111" in \
      rows[2]["note"], rows[2]


def test_chan_lstm_in_weights_at_zipf_cells_without_their_chance_is_not_learning(tmp_path):
  """An LSTM cell at Zipf 1 without its recorded in-weights chance has no known line (not
  1/L's): its 0.8 is no evidence, and the Zipf-0 cells at 0.3 are below theirs (a mutation audit:
  defaulting every cell to 1/L passed it)."""
  run = tmp_path / "chan2022" / "run"
  chan_run(run)
  row = _lstm_row(run, at_zipf_0=0.3, at_zipf_1=0.8, drop_chance=True)
  assert row["status"] == "FAIL" and "best IWL 0.300" in row["ours"], row
  assert "IWL -0.216 from its line 0.516" in row["note"], row


def test_chan_bursty_only_needs_one_bursty_cell_beyond_the_line(tmp_path):
  """'ICL emerges only with bursty data': the best bursty cell learns in context (0.95 at Zipf
  0) while the Zipf-1 bursty cell is at chance 0.5; every non-bursty cell is below the line:
  PASS (a mutation audit: 'every bursty cell' FAILed it). Control: no bursty cell beyond: FAIL."""
  run = tmp_path / "chan2022" / "run"
  chan_run(run, icl_ctx={(0.0, 0.0): 0.5, (0.0, 1.0): 0.52, (0.9, 0.0): 0.95, (0.9, 1.0): 0.5})
  assert classification.chan2022(run, "cpu")["claims"][0]["status"] == "PASS"
  chan_run(run, icl_ctx={(0.0, 0.0): 0.5, (0.0, 1.0): 0.52, (0.9, 0.0): 0.76, (0.9, 1.0): 0.5})
  assert classification.chan2022(run, "cpu")["claims"][0]["status"] == "FAIL"


def test_chan_trade_off_without_one_cells_chance_is_not_shown(tmp_path):
  """Only the Zipf-1 bursty cell lacks its in-weights chance: the trade-off and 'coexist'
  cannot be scored (NOT_SHOWN, rerun), not a crash (a mutation audit: 'and' -> 'or')."""
  run = tmp_path / "chan2022" / "run"
  chan_run(run)
  res = json.loads((run / "results.json").read_text())
  for c in res:
    if c["model"] == "transformer" and c["overrides"] == {"task.p_bursty": 0.9,
                                                           "task.zipf_alpha": 1.0}:
      del c["iwl_chance"]
  write(run / "results.json", res)
  rows = classification.chan2022(run, "cpu")["claims"]
  assert [r["status"] for r in rows[2:4]] == ["NOT_SHOWN"] * 2 and "rerun chan2022" in \
      rows[2]["note"], rows[2:4]


def test_chan_lstm_in_weights_is_the_cell_furthest_above_its_own_line(tmp_path):
  """LSTM in weights 0.58 at Zipf 0 (line 0.516: +0.064, 2 SE 0.044) and 0.60 at Zipf 1 (line
  halfway from 0.156, 0.578: +0.022): the LSTM learns in weights (PASS), read off the Zipf-0
  cell; the highest raw accuracy is not the cell furthest above its line."""
  run = tmp_path / "chan2022" / "run"
  chan_run(run)
  row = _lstm_row(run, at_zipf_0=0.58, at_zipf_1=0.6)
  assert row["status"] == "PASS" and "best IWL 0.580 (p_bursty=0.0, alpha=0.0)" in row["ours"], row
  assert "IWL +0.064 from its line 0.516 (2 SE 0.044)" in row["note"], row


def test_chan_lstm_in_weights_passes_on_any_cell_the_probe_resolves_above_its_line(tmp_path):
  """The rule is 'some LSTM cell IWL above halfway from its chance by more than 2 SE'. Over
  400 sequences: Zipf 0 at its line 0.516 + 0.0497 (2 SE 0.0500: not resolved), Zipf 1 at
  0.578 + 0.0495 (2 SE 0.0494: resolved). Only the cell furthest above its line (Zipf 0) was
  checked, a FAIL the rule does not make: PASS, shown with the Zipf-1 cell. Control: Zipf 1
  at + 0.0490 too, inside its 2 SE: FAIL."""
  run = tmp_path / "chan2022" / "run"
  chan_run(run)
  p = run / "cell/probes/classification.json"
  probe = json.loads(p.read_text())
  probe["probes"]["iwl"]["num_sequences"] = 400
  write(p, probe)
  line = lambda alpha: classification.halfway(IWL_CHANCE[alpha])
  row = _lstm_row(run, at_zipf_0=line(0.0) + 0.0497, at_zipf_1=line(1.0) + 0.0495)
  assert row["status"] == "PASS" and "alpha=1.0)" in row["ours"].split("best IWL")[1], row
  assert _lstm_row(run, at_zipf_0=line(0.0) + 0.0497,
                   at_zipf_1=line(1.0) + 0.0490)["status"] == "FAIL"


def test_sweep_presets_are_the_ones_whose_reddy_run_has_the_k_sweep():
  """The notes' preset split (classification.SWEEP_PRESETS) is reddy2023's own default."""
  from experiments import reddy2023
  assert set(classification.SWEEP_PRESETS) == {
      p for p in reddy2023.PRESETS if "K" in reddy2023.sweeps_for(p)}


def test_chan_many_classes_note_names_a_command_that_runs_the_sweep_on_its_preset(tmp_path):
  """tiny: reddy2023's preset runs no K sweep, so `reproduce reddy2023 --preset=tiny` (the old
  note) fixed nothing; the note names the script with --sweeps=K into the seed's folder,
  inside WORKDIR (no machine path), and rescoring chan2022 alone. Control: on cpu, whose
  reddy2023 runs the sweep, the note names `reproduce reddy2023`."""
  run_dir = tmp_path / "chan2022" / "run" / "seed_1"
  write(tmp_path / "reddy2023" / "run" / "seed_1" / "results.json",
        {"preset": "tiny", "seed": 1, "chance_full": 1 / 32, "runs": {}})
  row = classification._chan_many_classes(run_dir, "tiny", "")
  assert row["status"] == "NOT_SHOWN", row
  assert ("`python -m experiments.reddy2023 --preset=tiny --seed=1 --sweeps=K "
          "--workdir=WORKDIR/reddy2023/run/seed_1`") in row["note"], row["note"]
  assert "`python -m experiments.reproduce chan2022 --preset=tiny --workdir=WORKDIR`" in \
      row["note"] and "reproduce reddy2023 --preset=tiny" not in row["note"], row["note"]
  assert str(tmp_path) not in row["note"]
  cpu = classification._chan_many_classes(run_dir, "cpu", "")
  assert cpu["status"] == "NOT_SHOWN" and ("`python -m experiments.reproduce reddy2023 "
                                           "--preset=cpu --workdir=WORKDIR` runs it") in cpu["note"]
  assert "--sweeps" not in cpu["note"], cpu["note"]
