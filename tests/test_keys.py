"""research/keys.py: the fold_in salts of a run's random streams. Their values are part of every
saved run (resume, seed ensembles, bit-for-bit comparisons), and two streams of one run must
never share one: an EVAL salt equal to DATA's evaluated each step on the batch it trained on."""
import itertools

from research import keys

# The streams that meet in one run: the run's own, and each task's (tasks never meet).
RUN = {"DATA": keys.DATA, "INIT": keys.INIT, "DROPOUT": keys.DROPOUT, "PROBE": keys.PROBE,
       "EVAL": keys.EVAL}
TASKS = {"regression": {"TASK_POOL": keys.TASK_POOL},
         "arithmetic": {"TASK_POOL": keys.TASK_POOL},
         "induction": {"TASK_POOL": keys.TASK_POOL, "INDUCTION_EVAL": keys.INDUCTION_EVAL},
         "classification": {"CLASS_MEANS": keys.CLASS_MEANS, "LABEL_MAP": keys.LABEL_MAP},
         "garg2022's shift probe": {"SHIFT_PROBE": keys.SHIFT_PROBE}}


def test_the_salts_keep_their_values():
  """A changed value gives every saved run other batches, inits and masks on resume."""
  assert RUN == {"DATA": 0, "INIT": 1, "DROPOUT": 2, "PROBE": 3, "EVAL": 5}
  assert (keys.TASK_POOL, keys.INDUCTION_EVAL, keys.CLASS_MEANS, keys.LABEL_MAP) == (4, 6, 6, 7)
  assert (keys.ARITHMETIC_CHANCE, keys.SHIFT_PROBE) == (5, 0x5F1F7)


def test_no_two_streams_of_one_run_share_a_salt():
  for task, salts in TASKS.items():
    streams = {**RUN, **salts}
    for (a, x), (b, y) in itertools.combinations(streams.items(), 2):
      assert x != y, f"{a} and {b} share salt {x} in a {task} run"
