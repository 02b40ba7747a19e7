r"""A language-model scale ladder: Pythia's sizes for pods, small sizes for this CPU.

  python -m research.aot --config=configs/lm_ladder.py:1b@v5p:4x4x4 --topology=v5p:4x4x4
  python -m research.aot --ladder=configs/lm_ladder.py --markdown   # the README table
  python -m research.aot --ladder=configs/lm_ladder.py --tune       # LAYOUTS, found again
  python -m research.sweep --config=configs/lm_ladder.py:cpu --sweep=ladder --workdir=runs/ladder
  python -m research.sweep --config=configs/lm_ladder.py:1b@v5p:4x4x4 --sweep=ladder@v5p:4x4x4 \
      --workdir=/mnt/BUCKET/ladder          # every pod size, each with its v5p:4x4x4 layout (a
                                            # gcsfuse mount: gs:// URLs are refused)

Presets (configs/lm.py's LM task and fields; every field is commented there):
  SIZE@TOPOLOGY  a pod size (POD_SIZES) with the layout recommended for that slice
                 (LAYOUTS: mesh, remat, microbatches), Pythia's training setup: context
                 2048, batch 1024 sequences (2M tokens), 143k steps, bf16 compute with
                 fp32 parameters, optimiser state, softmax and loss, rotary positions,
                 scanned layers, fused attention and QKV, checkpoints kept at Pythia's
                 steps (log-spaced, then every 1000). Data: `synthetic` uniform ids
                 over Pythia's 50,304-token vocabulary, which fixes every shape, FLOP and
                 byte of the step; train on text with --config.task.source=file|tfds
                 (the byte/char vocabulary then replaces it).
  SIZE           the same with the layout for v5p:4x4x4 (DEFAULT_TOPOLOGY).
  cpu            configs/lm.py's cpu setup (byte-level, fp32, context 128) on this Python's
                 standard library (task.source=stdlib, ~11 MB of .py files; any other source
                 with --config.task.source=file|tfds), keeping checkpoints at log-spaced steps
                 (train.keep_log_spaced); `--sweep=ladder` runs CPU_SIZES (~0.1M-10M parameters).
  tiny           seconds; tests and AOT tests (synthetic data, 2 layers of width 32).
Sizes follow Pythia (Biderman et al. 2023, Table 1: layers / width / heads); our blocks are
GPT-2 style (sequential attention then MLP, biases, untied read-out), which Pythia's
parameter counts match within a few percent.
"""
from absl import flags, logging
import ml_collections

from configs import lm
from research import hardware

# name: (num_layers, width, num_heads, peak learning rate) -- Pythia's Table 1.
POD_SIZES = {
    "14m": (6, 128, 4, 1e-3), "70m": (6, 512, 8, 1e-3), "160m": (12, 768, 12, 6e-4),
    "410m": (24, 1024, 16, 3e-4), "1b": (16, 2048, 8, 3e-4), "2p8b": (32, 2560, 32, 1.6e-4),
    "6p9b": (32, 4096, 32, 1.2e-4)}
# The CPU ladder (byte vocabulary, context 128): (num_layers, width, num_heads).
CPU_SIZES = {"c1": (2, 48, 2), "c2": (2, 64, 2), "c3": (4, 96, 4), "c4": (4, 128, 4),
             "c5": (6, 192, 6), "c6": (8, 320, 8)}
DEFAULT_TOPOLOGY = "v5p:4x4x4"
PYTHIA_VOCAB = 50_304  # GPT-NeoX tokenizer, padded to a multiple of 128
GLOBAL_BATCH = 1024    # sequences of 2048 tokens per optimiser step (Pythia)

# (size, topology) -> (mesh (data, fsdp, tensor), remat, microbatches). Pure data parallel
# while a replica of parameters + Adam state (16 bytes/param) is small next to HBM; FSDP
# over every chip after that (MaxText's default at these scales); no tensor parallelism
# below 7B. Remat and microbatches are the lightest that research.aot's plan says fit with
# 5% of the usable HBM free (remat none < dots < full, then the fewest microbatches):
# `python -m research.aot --ladder=configs/lm_ladder.py --tune` (research/aot_tune.py) printed
# these lines on 2026-12-06 (02:06-02:32 UTC, after a TPU plan's total became the lower of
# XLA's peak and its summed parts, research/aot_memory.py: the sum had overstated the large
# cells by about a fifth, so 14m, 2p8b and 6p9b on v5e:4x4 now take lighter layouts). A
# microbatch's activations, above all its (tokens x 50,304) fp32 logits and, without remat,
# every layer's attention, set the peak (14m on v5e:4x4: 8.1 GB per chip in 8 microbatches,
# 16.0 GB in 4; in 2 the compiler refuses it).
_DP, _FSDP = (-1, 1, 1), (1, -1, 1)
LAYOUTS = {
    ("14m", "v5e:4x4"): (_DP, "none", 4), ("14m", "v5p:4x4x4"): (_DP, "none", 1),
    ("14m", "v5p:4x8x8"): (_DP, "none", 1), ("14m", "v5p:8x8x8"): (_DP, "none", 1),
    ("70m", "v5e:4x4"): (_DP, "none", 16), ("70m", "v5p:4x4x4"): (_DP, "none", 1),
    ("70m", "v5p:4x8x8"): (_DP, "none", 1), ("70m", "v5p:8x8x8"): (_DP, "none", 1),
    ("160m", "v5e:4x4"): (_DP, "none", 32), ("160m", "v5p:4x4x4"): (_DP, "none", 1),
    ("160m", "v5p:4x8x8"): (_DP, "none", 1), ("160m", "v5p:8x8x8"): (_DP, "none", 1),
    ("410m", "v5e:4x4"): (_FSDP, "none", 64), ("410m", "v5p:4x4x4"): (_FSDP, "none", 4),
    ("410m", "v5p:4x8x8"): (_FSDP, "none", 1), ("410m", "v5p:8x8x8"): (_FSDP, "none", 1),
    ("1b", "v5e:4x4"): (_FSDP, "none", 64), ("1b", "v5p:4x4x4"): (_FSDP, "none", 2),
    ("1b", "v5p:4x8x8"): (_FSDP, "none", 1), ("1b", "v5p:8x8x8"): (_FSDP, "none", 1),
    ("2p8b", "v5e:4x4"): (_FSDP, "dots", 32), ("2p8b", "v5p:4x4x4"): (_FSDP, "none", 8),
    ("2p8b", "v5p:4x8x8"): (_FSDP, "none", 2), ("2p8b", "v5p:8x8x8"): (_FSDP, "none", 1),
    ("6p9b", "v5e:4x4"): (_FSDP, "dots", 64), ("6p9b", "v5p:4x4x4"): (_FSDP, "none", 16),
    ("6p9b", "v5p:4x8x8"): (_FSDP, "none", 4), ("6p9b", "v5p:8x8x8"): (_FSDP, "none", 2),
}


def _layout(size: str, topology: str) -> tuple:
  """The planned layout, else the size's mesh on its planned slices (the rule above: pure
  data parallel up to 160m, FSDP from 410m) with remat full in 1 microbatch, to be checked
  (research.aot --tune finds the remat and microbatches that fit)."""
  if (size, topology) in LAYOUTS:
    return LAYOUTS[(size, topology)]
  return next(mesh for (s, _), (mesh, _, _) in LAYOUTS.items() if s == size), "full", 1


def _pod(c, size: str, topology: str) -> None:
  layers, width, heads, lr = POD_SIZES[size]
  c.topology = topology
  c.task.source, c.task.vocab_size, c.task.seq_len = "synthetic", PYTHIA_VOCAB, 2048
  m = c.model
  m.num_layers, m.width, m.num_heads = layers, width, heads
  m.positions, m.dtype, m.attention, m.fused_qkv, m.scan_layers = (
      "rotary", "bfloat16", "fused", True, True)
  if (size, topology) not in LAYOUTS and _tuning():  # the search the warning below names
    logging.warning("lm_ladder: no layout is recommended for %s on %s (planned: %s); --tune "
                    "searches remat and microbatches on its mesh there", size, topology,
                    ", ".join(t for s_, t in LAYOUTS if s_ == size))
  elif (size, topology) not in LAYOUTS:  # e.g. 1b@v5e:8x8: a guess that research.aot must check
    logging.warning("lm_ladder: no layout is recommended for %s on %s (planned: %s); using its "
                    "mesh there, remat full, 1 microbatch: find ones that fit with python "
                    "-m research.aot --config=configs/lm_ladder.py:%s@%s --topology=%s --tune",
                    size, topology, ", ".join(t for s_, t in LAYOUTS if s_ == size), size,
                    topology, topology)
  mesh, m.remat, accum = _layout(size, topology)
  c.mesh.data, c.mesh.fsdp, c.mesh.tensor = mesh
  tr = c.train
  tr.batch_size, tr.grad_accum_steps, tr.num_steps = GLOBAL_BATCH, accum, 143_000
  tr.steps_per_call, tr.log_every, tr.eval_every, tr.checkpoint_every = 10, 100, 1000, 1000
  # Pythia's checkpoint suite (steps 1, 2, 4, ..., 512, then every 1000: here from step 10,
  # the first the 10-step calls reach), kept for good: the ladder experiment probes its sizes'
  # kept checkpoints, and keeping only the latest 3 left a pod run nothing to probe. Each
  # holds parameters and Adam state, 12 bytes per parameter (6p9b: 83 GB, ~150 of them);
  # --config.train.keep_log_spaced=False keeps only the latest train.keep_checkpoints.
  tr.keep_log_spaced = True
  o = c.optim
  o.learning_rate, o.warmup_steps, o.b1, o.b2, o.weight_decay = lr, 1430, 0.9, 0.95, 0.01
  c.probe.eval_sequences, c.probe.batch_size, c.probe.generate_tokens = 64, 8, 32


def _tuning() -> bool:
  """Whether research.aot --tune (a preset or --ladder) is loading this preset: a config
  file sees no arguments, so the process's absl flag is read (absent in every other command).
  There the advice to run --tune was printed to a user running it."""
  return "tune" in flags.FLAGS and bool(flags.FLAGS["tune"].value)


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
  size, _, topology = preset.partition("@")
  c = lm.get_config("tiny" if size == "tiny" else "cpu")
  c.preset = preset
  c.topology = ""               # the slice the mesh / remat / microbatches were planned for
  if size == "tiny":            # synthetic data: an AOT plan or a run without a corpus
    c.task.source, c.task.vocab_size = "synthetic", 512
  elif size in POD_SIZES:
    if "@" in preset and not topology:  # '14m@' planned v5p:4x4x4 under the label '14m@'
      raise ValueError(f"preset {preset!r} names no topology after '@'; write SIZE@CHIP:SHAPE, "
                       f"e.g. {size}@v5e:4x4, or {size} alone for {DEFAULT_TOPOLOGY}")
    if topology and not hardware.is_topology_name(topology):  # before _pod warns about it
      raise ValueError(f"preset {preset!r}: {topology!r} is not a TPU topology name; write "
                       f"SIZE@CHIP:SHAPE, e.g. {size}@v5e:4x4 or {size}@v5p:4x4x4")
    if topology and (problem := hardware.topology_dims_problem(topology)):  # 1b@v5e:4x4x4
      raise ValueError(f"preset {preset!r}: {problem}")
    _pod(c, size, topology or DEFAULT_TOPOLOGY)
  elif size in CPU_SIZES:
    c.model.num_layers, c.model.width, c.model.num_heads = CPU_SIZES[size]
  elif size != "cpu":
    raise ValueError(f"unknown preset {preset!r}; choose one of: tiny, cpu, "
                     + ", ".join(CPU_SIZES) + ", " + ", ".join(POD_SIZES)
                     + " (pod sizes take @TOPOLOGY, e.g. 1b@v5e:4x4)")
  if topology and size not in POD_SIZES:
    raise ValueError(f"preset {preset!r}: only pod sizes ({', '.join(POD_SIZES)}) take @TOPOLOGY")
  if size == "cpu" or size in CPU_SIZES:  # issue 18: a real corpus on every machine, and
    c.task.source = "stdlib"              # checkpoints at log-spaced steps for the probes
    c.train.keep_log_spaced = True
  return c


def get_sweep(name: str, *, preset: str | None = None) -> list[dict]:
  """`ladder`: the CPU sizes (preset cpu); `ladder@TOPOLOGY`: every pod size, each with
  its layout for that slice (any pod preset). research.sweep passes the run's PRESET ('' for
  the default, cpu) so that a ladder is refused on a preset it does not fit; None: no check."""
  if preset is not None:
    preset = preset or "cpu"
  size = None if preset is None else preset.partition("@")[0]
  if name == "ladder":
    if size in POD_SIZES or size == "tiny":
      raise ValueError(f"sweep 'ladder' is the CPU ladder (sizes {', '.join(CPU_SIZES)}) on "
                       f"the cpu preset, not {preset!r}; use --config=configs/lm_ladder.py:cpu, "
                       "or --sweep=ladder@TOPOLOGY for the pod sizes")
    return [{"model.num_layers": l, "model.width": w, "model.num_heads": h}
            for l, w, h in CPU_SIZES.values()]
  if name.startswith("ladder@"):
    topology = name.partition("@")[2]
    if not hardware.is_topology_name(topology):
      raise ValueError(f"sweep {name!r}: {topology!r} is not a TPU topology name; write "
                       "ladder@CHIP:SHAPE, e.g. ladder@v5p:4x4x4")
    if problem := hardware.topology_dims_problem(topology):  # ladder@v5e:4x4x4
      raise ValueError(f"sweep {name!r}: {problem}")
    if size is not None and size not in POD_SIZES:
      raise ValueError(f"sweep {name!r} runs the pod sizes ({', '.join(POD_SIZES)}) on the "
                       f"pod preset's data and training setup, not on preset {preset!r}; use "
                       f"a pod preset, e.g. --config=configs/lm_ladder.py:1b@{topology}, or "
                       "--sweep=ladder on the cpu preset")
    # As the SIZE@TOPOLOGY preset does: a slice with no planned layouts (ladder@v5e:8x8) ran
    # every size on the fallback layout with no word that it was a guess.
    unplanned = [s for s in POD_SIZES if (s, topology) not in LAYOUTS]
    if unplanned:
      logging.warning("lm_ladder: no layout is recommended for %s on %s (planned slices: %s); "
                      "using each size's mesh there, remat full, 1 microbatch: find layouts that "
                      "fit with python -m research.aot --ladder=configs/lm_ladder.py "
                      "--topologies=%s --tune", ", ".join(unplanned), topology,
                      ", ".join(dict.fromkeys(t for _, t in LAYOUTS)), topology)
    out = []
    for size, (layers, width, heads, lr) in POD_SIZES.items():
      (data, fsdp, tensor), remat, accum = _layout(size, topology)
      out.append({"model.num_layers": layers, "model.width": width, "model.num_heads": heads,
                  "optim.learning_rate": lr, "mesh.data": data, "mesh.fsdp": fsdp,
                  "mesh.tensor": tensor, "model.remat": remat, "train.grad_accum_steps": accum,
                  "topology": topology})
    return out
  raise ValueError(f"unknown sweep {name!r}; choose one of: ladder, ladder@TOPOLOGY "
                   "(e.g. ladder@v5p:4x4x4)")
