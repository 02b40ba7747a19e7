"""What an ensemble leaves in each member's folder once it has trained (research/ensemble.py):
the member's own checkpoints (the kept steps under train.keep_log_spaced, and the final one),
its probes and summary.json, as its solo run leaves them, so that predict, init_from,
research.probe_checkpoints and research.results read a member as a solo run."""
from __future__ import annotations

import traceback
from pathlib import Path

import jax
import jax.numpy as jnp
from absl import logging

from research import checkpoint as ckpt_lib
from research import preemption
from research import workdir as workdir_lib
from research.train import run_probes


def save_histories(stacked_dir: Path, abstract, take, dirs: list[Path], finished,
                   fates: dict, kept, end: int) -> None:
  """train.keep_log_spaced: each member's own checkpoints at the kept steps before `end`, as
  its solo run keeps them (research.probe_checkpoints probes a run's kept checkpoints: a
  member had only its final one, the log-spaced steps were in the stacked state alone),
  sliced from the stacked checkpoints. A frozen member's stop at the step before it froze,
  as its solo run's; the final one is finish's."""
  ckpt = ckpt_lib.Checkpointer(stacked_dir, max_to_keep=1, read_only=True)  # the loop closed its
  steps = [s for s in ckpt.all_steps() if s in kept and s < end]
  wanted = {i: [s for s in steps if not (fates["frozen"][i] and s >= int(fates["frozen_step"][i]))]
            for i in range(len(dirs)) if not finished[i]}
  members = {i: ckpt_lib.Checkpointer(dirs[i] / workdir_lib.CHECKPOINTS, max_to_keep=1,
                                      async_save=False, keep_steps=kept)
             for i, its in wanted.items() if its}  # a member frozen before them: no folder
  try:
    for s in steps:
      need = [i for i, c in members.items() if s in wanted[i] and s not in c.all_steps()]
      if not need:
        continue
      stacked, meta, _ = ckpt.restore(abstract, s)
      for i in need:  # force: a rerun after a kill may hold the final step already
        members[i].save(s, take(stacked["state"], jnp.int32(i)), meta, force=True)
  finally:
    for c in [*members.values(), ckpt]:
      c.close()


def finish(ens, i: int, fates: dict, state_i, view, d: Path, last: dict, *, step: int,
           times: dict, tokens: int, guard: preemption.Guard, kept=()) -> dict:
  """Member i's summary.json, final checkpoint and probes, as its solo run writes them
  (`ens`: the research.ensemble.Ensemble; `state_i`, `view`: the member's state and
  Experiment).

  A frozen member reports its non-finite loss as an error (a solo run raises there) and
  gets no checkpoint or probes; a member whose probes raise reports that error; neither
  stops the other members. A SIGTERM stops the probes at once, as a solo run's (it went
  unnoticed: every member probed, exit 0); the checkpoint's save is never cut.
  """
  exp, member = ens.exp, ens.members[i]
  summary = {"final_step": step, **times, "ensemble_size": ens.size,
             "num_params": exp.num_params,
             "num_non_embedding_params": exp.num_params - exp.num_embedding_params,
             "train_flops_per_token": exp.built.train_flops_per_token,
             "tokens_seen": step * tokens, "frozen": bool(fates["frozen"][i])}
  summary |= {f"final_{k}": v for k, v in last.items()}
  if summary["frozen"]:
    at, loss = int(fates["frozen_step"][i]), float(fates["frozen_loss"][i])
    summary |= {"frozen_at_step": at, "frozen_loss": loss, "final_step": at - 1,
                "tokens_seen": (at - 1) * tokens,
                "error": f"NonFiniteLossError: non-finite loss {loss} at step {at}; the member "
                         "was frozen there while the others went on"}
    logging.warning("ensemble member %d (%s) froze: loss %s at step %d; the others go on",
                    i, member, loss, at)
  else:
    # The member's own checkpoint, so that predict / init_from / a longer solo resume work
    # on its directory as on a solo run's.
    member_ckpt = ckpt_lib.Checkpointer(d / workdir_lib.CHECKPOINTS, max_to_keep=1,
                                        async_save=False, keep_steps=kept)
    try:
      if member_ckpt.latest_step() != step:  # a rerun after a kill may have saved it
        # The ensemble's training seconds, which a longer solo resume of it continues.
        member_ckpt.save(step, state_i, {"step": step, **times})
    finally:
      member_ckpt.close()
    try:
      with guard.interruptible(f"preempted (SIGTERM) while probing ensemble member {i} at step "
                               f"{step}; the checkpoints are saved; rerun the same command to "
                               "probe"):
        summary["probes"] = run_probes(view, state_i, d)
    except preemption.Preempted:
      raise
    except Exception as e:  # noqa: BLE001 -- one member's probe must not sink the others
      logging.error("ensemble member %d (%s): probes failed: %s", i, member, e)
      summary["error"] = f"probes failed: {type(e).__name__}: {e}"
      summary["traceback"] = traceback.format_exc()[-4000:]
  if jax.process_index() == 0:  # strict: a frozen member's NaN loss is written as null
    workdir_lib.write_json(d / workdir_lib.SUMMARY, summary, strict=True)
  return summary
