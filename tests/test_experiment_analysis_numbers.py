"""Numbers the scaling-laws and ladder scripts compute from their runs, on hand-built inputs
(mutation audit 6D): the source's entropy (the floor a scaling fit is read against), which
eval row is a run's held-out loss, the phase-change window's noise and the k the abilities
are read at when sizes were probed at different k."""
import json
import math

import numpy as np
import pytest

from experiments import ladder, scaling_laws


# ----------------------------------------------------------------------------- scaling laws
def test_source_entropy_of_a_uniform_source_is_log_v(monkeypatch):
  """A source whose next token is uniform has entropy log V per predicted token. The eval
  loss averages positions 1..L-1 (L - 1 of them), so the Bayes loss must divide by L - 1:
  by L it read (L-1)/L log V, a floor below the true one (here 11/12 of it)."""
  import ml_collections

  from research import tasks
  vocab, length = 16, 12

  class Uniform:
    def __init__(self):
      self.vocab = vocab

    def eval_sets(self):
      return [np.random.default_rng(0).integers(0, vocab, (5, length))]

    def next_logits(self, prev2, prev1):
      return np.zeros(prev1.shape + (vocab,), np.float32)
  monkeypatch.setattr(tasks, "build", lambda *a, **k: Uniform())
  config = ml_collections.ConfigDict({"task": {"repeat_prob": 0.0}, "seed": 0})
  assert scaling_laws.source_entropy(config) == pytest.approx(math.log(vocab), rel=1e-6)


def test_held_out_loss_is_the_eval_at_the_last_step_only(tmp_path):
  """A run whose eval did not land on its last step (eval_every not dividing num_steps) has
  no held-out loss at the end: its last training loss is used and says so, never an eval
  logged hundreds of steps earlier (a higher loss, read as the end of training)."""
  rows = [{"step": 50, "loss": 3.0}, {"step": 50, "eval_loss": 3.2},
          {"step": 100, "loss": 2.0}]
  (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  assert scaling_laws.held_out_loss(tmp_path, 100) == (2.0, "train_loss", 2.0)
  with (tmp_path / "metrics.jsonl").open("a") as f:
    f.write(json.dumps({"step": 100, "eval_loss": 2.25}) + "\n")
  assert scaling_laws.held_out_loss(tmp_path, 100) == (2.25, "eval_loss", 2.0)


# ----------------------------------------------------------------------------- ladder
def test_phase_change_noise_adds_the_two_ends_in_quadrature():
  """The window's drop is a difference of two independent ICL estimates: its SE is
  hypot(se_start, se_end) (0.03, 0.04 -> 0.05), not their sum (0.07), which the claims'
  2-SE test would read as a noisier window."""
  row = lambda step, icl, se: {"step": step, "icl_score": icl, "icl_score_se": se,
                               "top_prefix": 0.1, "prefix_baseline": 0.04}
  rows = [row(10, 0.0, 0.01), row(20, 0.0, 0.03), row(40, -0.1, 0.02), row(70, -0.9, 0.04),
          row(100, -1.0, 0.01)]
  w = ladder.phase_change(rows, 100, 10)
  assert (w["start_step"], w["end_step"]) == (20, 70)
  assert w["noise"] == pytest.approx(0.05, rel=1e-12)


def test_abilities_are_read_at_the_largest_k_every_size_has():
  """Sizes probed at different shots (a small context fits fewer): the k read is the
  largest one every checkpoint has (4 here), not the largest any has (8)."""
  from research.analysis.answer_metrics import METRICS
  chance = {m: 0.0 for m in METRICS}
  cell = {m: [0.5, 0.4, 0.6] for m in METRICS} | {"chance": chance}
  row = lambda step, shots: {"step": step, "tokens": step, "compute": float(step),
                             "few_shot": {"copy": {str(k): cell for k in shots}}}
  sizes = [{"run": "a", "num_params": 10, "rows": [row(1, (0, 4, 8)), row(2, (0, 4, 8))]},
           {"run": "b", "num_params": 20, "rows": [row(3, (0, 4)), row(4, (0, 4))]}]
  out = ladder.abilities(sizes)
  assert out["copy"]["k"] == 4


def test_key_frequencies_leave_out_their_share():
  """nanda2023 records the key Fourier frequencies from the last eval row; the row's
  key_freq_share (0.93) read as one more frequency would add a frequency 0 (mutation 6D M32)."""
  from research.analysis import emergence_plots
  row = {"step": 5, "key_freq_1": 14, "key_freq_0": 3, "key_freq_share": 0.93, "loss": 1.0}
  assert emergence_plots.key_freqs(row) == [3, 14]
