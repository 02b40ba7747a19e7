"""The numbers experiments/summaries.py prints and records, and experiments/common.py's seed and
device limits, at their edges: a claim's value to 4 significant figures, minutes rounded to the
second, wall times kept to 0.1 s, the index's counts under their own status columns, the last
valid seed, and --devices=N taking N devices."""
import json

import pytest

from experiments import claims, common, summaries
from research.errors import InputError


def test_claim_values_print_with_four_significant_figures():
  # 'ours' 0.12346 is printed 0.1235, not 0.123: a researcher reads the table, not the JSON.
  assert [summaries.cell(v) for v in (0.123456, 2.0, 12345.6, -0.0004321)] == [
      "0.1235", "2", "1.235e+04", "-0.0004321"]
  row = {"claim": "x", "ours": 0.123456, "status": "PASS"}
  assert "| x | - | 0.1235 | - |" in summaries.table([row])


def test_minutes_round_to_the_nearest_second():
  # 59.6 s is a minute (truncating printed '59 s'); 125.4 s is 2 min 05 s.
  assert [summaries.minutes(s) for s in (59.4, 59.6, 125.4, None)] == [
      "59 s", "1 min 00 s", "2 min 05 s", "-"]


def test_recorded_wall_times_keep_a_tenth_of_a_second(tmp_path):
  path = tmp_path / "wall_times.json"
  summaries.record_wall_time("garg2022", "tiny", 42.26, 1, "cpu", path=path)
  assert json.loads(path.read_text())["garg2022"]["tiny"]["seconds"] == 42.3


def test_index_counts_sit_under_their_status_columns(tmp_path):
  # Every count differs, so a column out of order shows: PASS 3, UNREPLICATED 4, FAIL 1,
  # NOT_SHOWN 2, self-check 0.
  counts = dict(zip(claims.STATUSES, (3, 4, 1, 2, 0)))
  s = {"name": "garg2022", "paper": "p", "preset": "cpu", "counts": counts, "claims": [],
       "notes": [], "figures": []}
  text = summaries.write_index(tmp_path, "cpu", {"garg2022": {"status": "done", "summary": s}}
                               ).read_text()
  header = "| NAME | " + " | ".join(claims.STATUSES) + " | summary | status |"
  assert header == ("| NAME | PASS | UNREPLICATED | FAIL | NOT_SHOWN | self-check | summary | "
                    "status |")
  assert header in text
  assert "| garg2022 | 3 | 4 | 1 | 2 | 0 | [summary.json](garg2022/summary.json) | done |" in text
  assert "preset `cpu`: 3 PASS, 4 UNREPLICATED, 1 FAIL, 2 NOT_SHOWN, 0 self-check" in text


def test_the_largest_seed_is_2_to_the_32_minus_1():
  assert common.parse_seeds(["0", str(2 ** 32 - 1)]) == (0, 2 ** 32 - 1)
  with pytest.raises(InputError, match="4294967296 is out of range"):
    common.parse_seeds([str(2 ** 32)])


def test_devices_flag_takes_exactly_n_devices():
  import jax
  count = jax.device_count()
  assert common.first_devices(0) is None  # 0 = all
  assert common.first_devices(1) == jax.devices()[:1]
  assert common.first_devices(count) == jax.devices()
  with pytest.raises(InputError, match=rf"--devices={count + 1} but this host has {count}"):
    common.first_devices(count + 1)


@pytest.mark.parametrize("given", [["-1"], ["0", "00"], ["3"], ["x"]])
def test_picked_indices_are_distinct_and_in_range(given):
  """--sizes=-1 trained the last size (Python's index), --sizes=0,00 one size twice."""
  with pytest.raises(InputError, match="indices must be distinct integers in 0..2"):
    common.pick([10, 20, 30], given, "--sizes")
  assert common.pick([10, 20, 30], ["2", "0"], "--sizes") == [30, 10]  # control
