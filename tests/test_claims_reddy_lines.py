"""Reddy's claims at their lines (experiments/claims/reddy.py): each threshold tested just
inside and just outside, which head is scored, a two-cell sweep, the in-weights sequence
count, and the copying floor of a rescored context transition."""
import json

from claims_fixtures import reddy_run, write
from experiments.claims import reddy


def test_reddy_lines_hold_at_the_line(tmp_path):
  """At each line the claim holds: final ICL exactly 0.9 (the '~1' line, >=); the B = 0 run's
  ICL exactly at 1/L + ICL_AT_CHANCE (<=); a head rising exactly HEAD_RISE (0.1 -> 0.2), to
  exactly HEAD_OVER_START x its start, at the jump."""
  from experiments.claims import classification_controls as cc
  reddy_run(tmp_path / "a", icl=0.9)
  assert reddy.reddy2023(tmp_path / "a", "cpu")["claims"][0]["status"] == "PASS"
  res = json.loads((tmp_path / "a" / "results.json").read_text())
  res["runs"]["control_b0"]["probe"]["icl"]["acc_full"] = res["chance_full"] + reddy.ICL_AT_CHANCE
  write(tmp_path / "a" / "results.json", res)
  b0 = reddy.reddy2023(tmp_path / "a", "cpu")["claims"][3]
  assert b0["claim"].startswith("no burstiness") and b0["status"] == "PASS", b0
  cc.reddy_head(tmp_path / "h", lambda s: 0.2 if s >= cc.JUMP else 0.1)
  row = next(r for r in reddy.reddy2023(tmp_path / "h", "tiny")["claims"] if "coincides" in r["claim"])
  assert row["status"] == "PASS", row


def test_reddy_the_head_is_the_one_attending_most_at_the_end(tmp_path):
  """Of two heads, the one scored is the one with the highest FINAL attention to the label
  (l1h1, 0.06 -> 0.9 at the jump), not one high at the start that fades (l0h0, 0.95 -> 0.05)."""
  from experiments.claims import classification_controls as cc
  cc.reddy_head(tmp_path, lambda s: 0.9 if s >= cc.JUMP else 0.06)
  path = tmp_path / "transformer" / "metrics.jsonl"
  rows = [json.loads(line) for line in path.read_text().splitlines()]
  for r in rows:
    r["eval_attn_l0h0_query_to_label"] = 0.95 if r["step"] == rows[0]["step"] else 0.05
  path.write_text("\n".join(json.dumps(r) for r in rows))
  row = next(r for r in reddy.reddy2023(tmp_path, "tiny")["claims"] if "coincides" in r["claim"])
  assert row["status"] == "PASS" and "head = l1h1_query_to_label" in row["note"], row


def test_reddy_lstm_in_weights_exactly_at_two_se_beyond_halfway_is_not_learning(
    tmp_path, monkeypatch):
  """The LSTM's in-weights accuracy must be beyond halfway by MORE than 2 SE: exactly at it
  (halfway 0.515625 + 0.25, the 2 SE fixed to 0.25 here) FAILs; just beyond PASSes."""
  reddy_run(tmp_path, lstm_iwl=0.765625)
  monkeypatch.setattr(reddy, "line_margin", lambda p, line, n: 0.25)
  assert reddy.reddy2023(tmp_path, "cpu")["claims"][6]["status"] == "FAIL"
  monkeypatch.setattr(reddy, "line_margin", lambda p, line, n: 0.2499)
  assert reddy.reddy2023(tmp_path, "cpu")["claims"][6]["status"] == "PASS"


def test_reddy_a_head_halfway_exactly_a_tenth_of_training_from_the_jump_coincides(tmp_path):
  """The gap line is inclusive: ICL halfway at step 287.5, the head's at 400, 1125 steps of
  training: a gap of exactly 112.5 = 10% of training PASSes."""
  from experiments.claims import classification_controls as cc
  cc.reddy_head(tmp_path, lambda s: 0.9 if s >= 400 else 0.06)
  res = json.loads((tmp_path / "results.json").read_text())
  res["runs"]["transformer"]["summary"]["final_step"] = 1125
  write(tmp_path / "results.json", res)
  assert 0.1 * 1125 == 112.5
  row = next(r for r in reddy.reddy2023(tmp_path, "tiny")["claims"] if "coincides" in r["claim"])
  assert row["status"] == "PASS" and "(gap 112)" in row["ours"], row


def test_reddy_a_two_cell_sweep_is_scored_and_in_weights_uses_its_own_sequence_count(tmp_path):
  """A sweep of two cells (K = 32 at 0.04, K = 2048 at 1.0) is scored, not 'not run'; the
  LSTM's in-weights margin is over the sequences ITS probe used (16: 2 SE = 0.25 at the line,
  so 0.7 is 0.184 beyond halfway, within it: FAIL), not the ICL probe's 512 (PASS there)."""
  reddy_run(tmp_path, lstm_iwl=0.7)
  res = json.loads((tmp_path / "results.json").read_text())
  res["sweep_K"] = [res["sweep_K"][0], res["sweep_K"][-1]]
  res["runs"]["lstm"]["probe"]["iwl"]["num_sequences"] = 16
  write(tmp_path / "results.json", res)
  rows = reddy.reddy2023(tmp_path, "cpu")["claims"]
  assert rows[4]["claim"] == "ICL rises with classes K" and rows[4]["status"] == "PASS", rows[4]
  assert rows[6]["status"] == "FAIL" and "2 SE 0.250" in rows[6]["note"], rows[6]
  res["runs"]["lstm"]["probe"]["iwl"]["num_sequences"] = 512  # control: 512 sequences resolve it
  write(tmp_path / "results.json", res)
  assert reddy.reddy2023(tmp_path, "cpu")["claims"][6]["status"] == "PASS"


def test_reddy_rescored_context_transition_starts_from_the_copying_floor(tmp_path):
  """Recomputed from metrics.jsonl (config.json present: 2 ways), the context-label levels run
  from the copying floor 1/2 (10% = 0.55, 50% = 0.75): accuracy 0.5 -> 1.0 at step 300 is a
  rise seen from below 10%, halfway at 287.5; from a floor of 0 (10% = 0.1) 0.5 was never below
  the first level and the jump 'never got halfway up'."""
  from experiments.claims import classification_controls as cc
  cc.reddy_head(tmp_path, lambda s: 0.9 if s >= cc.JUMP else 0.06)
  write(tmp_path / "transformer" / "config.json", {"probe": {"ways": 2}})
  row = next(r for r in reddy.reddy2023(tmp_path, "tiny")["claims"] if "coincides" in r["claim"])
  assert row["status"] == "PASS" and "ICL 288 (gap 12)" in row["ours"], row


def test_reddy_sweep_rows_name_a_command_that_runs_the_sweep_on_the_preset(tmp_path):
  """A tiny run has no K or B sweep: the NOT_SHOWN rows name `experiments.reddy2023
  --sweeps=K` (or B) into the seed's folder, which prints the verdicts (a later rerun keeps
  the sweep: test_experiment_numbers.py). Control: on cpu, whose default run has both sweeps,
  they name `reproduce reddy2023`."""
  run_dir = tmp_path / "reddy2023" / "run" / "seed_0"
  reddy_run(run_dir)
  res = json.loads((run_dir / "results.json").read_text())
  write(run_dir / "results.json", {k: v for k, v in res.items() if not k.startswith("sweep_")})
  rows = {r["claim"]: r for r in reddy.reddy2023(run_dir, "tiny")["claims"]}
  for var, what in (("K", "classes K"), ("B", "burstiness B")):
    row = rows[f"ICL rises with {what}"]
    assert row["status"] == "NOT_SHOWN", row
    assert f"reddy2023's tiny preset runs no {var} sweep: `python -m experiments.reddy2023 " \
        f"--preset=tiny --seed=0 --sweeps={var} --workdir=WORKDIR/reddy2023/run/seed_0` adds it " \
        "and prints these verdicts" in row["note"], row["note"]
    assert str(tmp_path) not in row["note"]
  cpu = {r["claim"]: r for r in reddy.reddy2023(run_dir, "cpu")["claims"]}
  note = cpu["ICL rises with classes K"]["note"]
  assert "`python -m experiments.reproduce reddy2023 --preset=cpu --workdir=WORKDIR`" in note
  assert "--sweeps" not in note, note


def test_reddy_a_fail_just_under_a_line_prints_under_it(tmp_path):
  """Final ICL 0.8996 against '>= 0.9' FAILs and prints 0.8996, not the passing-looking 0.900
  of three decimals; the control at exactly 0.9 PASSes and prints 0.900."""
  for icl, status, shown in ((0.8996, "FAIL", "0.8996"), (0.9, "PASS", "0.900")):
    reddy_run(tmp_path / status, icl=icl)
    row = reddy.reddy2023(tmp_path / status, "cpu")["claims"][0]
    assert row["status"] == status and row["ours"].endswith(f"-> {shown} (final probe)"), row
