"""experiments/summaries.py: the counts a paper's summary records are of every claim row."""
import json

from experiments import claims, summaries


def test_summary_counts_every_claim_row(tmp_path, monkeypatch):
  rows = [{"claim": "a", "status": "FAIL"}, {"claim": "b", "status": "PASS"},
          {"claim": "c", "status": "PASS"}, {"claim": "d", "status": "NOT_SHOWN"}]
  monkeypatch.setattr(claims, "score", lambda name, run_dir, preset: {
      "claims": rows, "results": [], "figures": [], "notes": [], "seeds": 1, "unfinished": []})
  s = summaries.summarize("garg2022", "tiny", tmp_path, machine="test")
  assert (s["counts"]["FAIL"], s["counts"]["PASS"], s["counts"]["NOT_SHOWN"]) == (1, 2, 1)
  saved = json.loads((tmp_path / "garg2022" / "summary.json").read_text())
  assert saved["counts"] == s["counts"]
  assert "1 PASS" not in summaries.counts_text(s["counts"])
  assert summaries.counts_text(s["counts"]).startswith("2 PASS")


def test_a_result_file_missing_a_key_is_a_recorded_error_not_a_crash(tmp_path, monkeypatch):
  """A results file from an older script (a key the scorer reads is missing: KeyError) gives a
  summary with that error and no claims, like a missing file."""
  def old_file(name, run_dir, preset):
    raise KeyError("sweep_K")
  monkeypatch.setattr(claims, "score", old_file)
  s = summaries.summarize("reddy2023", "tiny", tmp_path, machine="test")
  assert s["claims"] == [] and "KeyError: 'sweep_K'" in s["error"]
  assert json.loads((tmp_path / "reddy2023" / "summary.json").read_text())["error"] == s["error"]
