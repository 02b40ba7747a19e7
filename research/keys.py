"""Every fold_in salt of a run's random streams, in one table.

A run's root key is `jax.random.key(config.seed)`; each stream is `fold_in(root, SALT)` (then,
where it changes per step, `fold_in(..., step)`). The values are part of every saved run:
resume, seed ensembles and the tests that compare runs bit for bit depend on them, so a value
never changes and a new stream takes a new number. Two salts may share a value only when their
streams can never meet in one run (different tasks).
"""

# research/experiment.py and research/train.py: the run's own streams.
DATA = 0      # batches: fold_in(fold_in(root, DATA), step)
INIT = 1      # parameter initialisation
DROPOUT = 2   # dropout: fold_in(fold_in(root, DROPOUT), step), then the microbatch
PROBE = 3     # probes after training (prompts, contexts)
EVAL = 5      # periodic evaluation: fold_in(fold_in(root, EVAL), step)

# Tasks: what a task builds from the seed alone (the same at every step and on resume).
TASK_POOL = 4        # regression's task pool, arithmetic's train/test split, induction's
                     # Markov tables (one per task, so one value)
INDUCTION_EVAL = 6   # induction's fixed evaluation sets
CLASS_MEANS = 6      # classification's Gaussian class means (another task than induction)
LABEL_MAP = 7        # classification's class -> label map (a numpy seed [seed, LABEL_MAP])

# Keys that are not folded from the run's seed.
ARITHMETIC_CHANCE = 5  # jax.random.key(ARITHMETIC_CHANCE): held-out problems for the chance
                       # estimate, the same for every seed and size

# experiments/reproduce.py: Garg's distribution-shift probe on a finished run, apart from the
# probe's own prompts (PROBE).
SHIFT_PROBE = 0x5F1F7
