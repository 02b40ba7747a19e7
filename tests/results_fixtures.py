"""Run and sweep directories as research.main and research.sweep leave them (the files
research.results reads, no training), for tests/test_results.py and
tests/test_results_records.py."""
import json
from pathlib import Path


def write_run(path: Path, width: int, lr: float, losses: list[float], name: str = "adam") -> Path:
  """A run directory as research.main leaves it (the files results reads, no training)."""
  path.mkdir(parents=True)
  config = {"seed": 0, "task": {"name": "regression"},
            "model": {"width": width, "num_layers": 2, "fused_qkv": False},
            "optim": {"name": name, "learning_rate": lr}, "sharding": {"rules": [["a", None]]},
            "train": {"num_steps": 10 * len(losses)}}
  (path / "config.json").write_text(json.dumps(config))
  (path / "summary.json").write_text(json.dumps({"num_params": width * 100, "final_loss": losses[-1],
                                                 "final_step": 10 * len(losses)}))
  (path / "metrics.jsonl").write_text("".join(
      json.dumps({"step": 10 * (i + 1), "loss": v}) + "\n" for i, v in enumerate(losses)))
  return path


def write_sweep(root: Path) -> Path:
  """Three runs of widths 16, 64 and 256 under ROOT/runs, as a sweep writes them."""
  for i, (w, lr) in enumerate([(16, 1e-3), (64, 1e-3), (256, 5e-3)]):
    write_run(root / "runs" / f"{i:03d}_width={w}", w, lr, [5.0, 4.0 - i, 3.0 - i])
  (root / "results.jsonl").write_text("")  # sweep bookkeeping beside the runs is ignored
  return root
