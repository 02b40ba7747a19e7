"""Config checks of the bursty few-shot classification task (classification.py): every
field a ClassificationTask reads, checked before anything is built, one line per problem."""
from research.tasks.fields import ConfigError, choice, positive

SOURCES = ("gaussian", "omniglot")
LOSS_ON = ("query", "all")


def check(cfg) -> None:
  """Raises ConfigError (one line) on the first invalid config.task / config.probe field."""
  t = cfg.task
  choice(cfg, "task", "source", SOURCES)
  choice(cfg, "task", "loss_on", LOSS_ON)
  positive(cfg, "task", "num_context")
  positive(cfg, "task", "num_labels", "burstiness", "ways", "zipf_alpha", "n_common",
           allow_zero=True)
  for f in ("p_bursty", "novel_fraction"):
    if not 0 <= t[f] <= 1:
      raise ConfigError(f"config.task.{f}={t[f]} must be in [0, 1]")
  n, b = t.num_context, t.burstiness
  if b > n:  # no way fits (N // B = 0): an IndexError inside the sampler, exit 1
    raise ConfigError(f"config.task.burstiness={b} exceeds num_context={n}: a bursty context "
                      "holds each of its classes B times; lower burstiness or raise num_context")
  ways = t.ways or (n // b if b else 0)
  if b and ways * b > n:
    raise ConfigError(f"config.task.ways={ways} x burstiness={b} exceeds num_context={n}")
  if t.novel_fraction > 0 and (not b or t.source != "gaussian"):
    raise ConfigError("config.task.novel_fraction > 0 needs source='gaussian' and burstiness > 0")
  if t.source == "gaussian":
    positive(cfg, "task", "num_classes", "dim")
    positive(cfg, "task", "epsilon", allow_zero=True)
    num_train = t.num_classes
    if t.n_common >= t.num_classes:
      raise ConfigError(f"config.task.n_common={t.n_common} must be below num_classes={t.num_classes}")
  else:
    positive(cfg, "task", "n_rare", "n_holdout")
    positive(cfg, "task", "pixel_noise", allow_zero=True)
    from research.tasks import omniglot  # tfds only when the source needs it
    choice(cfg, "task", "image_size", omniglot.IMAGE_SIZES)
    choice(cfg, "task", "exemplars", ("all", "single"))
    num_train = t.n_rare + t.n_common
  labels = t.num_labels or num_train
  p = cfg.probe
  pways = p.ways or ways or 2
  pshots = p.shots or n // pways
  if pways * pshots > n:
    raise ConfigError(f"config.probe.ways={pways} x shots={pshots} exceeds num_context={n}")
  distinct = max(pways + n - pways * pshots, ways + n - ways * b if b else 0)
  if labels < distinct:
    raise ConfigError(f"config.task.num_labels={labels} is below the {distinct} distinct classes "
                      "a context can hold (ways + fillers); raise it or lower probe.ways / num_context")
  if t.source == "omniglot" and t.n_holdout < pways + (n - pways * pshots > 0):
    raise ConfigError(f"config.task.n_holdout={t.n_holdout} is too few for {pways}-way ICL probes "
                      "(fillers need one more)")
  if b and num_train - t.n_common < max(ways, pways):
    raise ConfigError(f"config.task: {num_train - t.n_common} rare classes cannot fill "
                      f"{max(ways, pways)}-way bursty contexts; add classes or lower ways")
  positive(cfg, "probe", "eval_sequences")
