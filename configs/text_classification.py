r"""Text classification (Transformer or LSTM) on a local CSV or a TFDS dataset; fine-tuning.

  python -m research.main --config=configs/text_classification.py:csv --workdir=runs/tc \
      --config.task.path=reviews.csv            # columns: text,label
  python -m research.main --config=configs/text_classification.py:imdb --workdir=runs/imdb
  python -m research.predict --workdir=runs/imdb --text="A wonderful, moving film."
  # pretrain-then-fine-tune: initialise from a language model (same tokenizer/sizes)
  python -m research.main --config=configs/lm.py:cpu --workdir=runs/lm --config.task.path=corpus.txt
  python -m research.main --config=configs/text_classification.py:csv --workdir=runs/ft \
      --config.task.path=reviews.csv --config.init_from=runs/lm

Test-split accuracy is logged every train.eval_every steps (eval_test_accuracy, beside
eval_test_majority_accuracy: always answering the training split's most frequent label);
probes/text_classification.json holds accuracy with its Wilson 95% interval, that majority
baseline (above_majority: the interval clears it), balanced accuracy against 1/K, loss,
the confusion matrix and (two classes) the ROC curve and AUC; figures/text_classification.png
plots them.
TFDS datasets must be prepared beforehand (array_record; the error says how).

Presets:
  tiny     seconds; tests (a small CSV or mock TFDS data)
  csv      byte-level Transformer, 4 layers / width 128 (the lm.py cpu model, so an LM
           checkpoint fine-tunes into it), 128 tokens, 2000 steps: minutes on 2 CPU cores
  imdb     imdb_reviews (TFDS, binary sentiment), word vocabulary 20k, 256 tokens, mean read-out
  ag_news  ag_news_subset (TFDS, 4 topics), title + description, word vocabulary 20k
"""
import ml_collections

from configs import common


def get_config(preset: str = "csv") -> ml_collections.ConfigDict:
  # seed also draws the CSV train/test split; init_from is e.g. a configs/lm.py run (every
  # parameter of equal path and shape is copied; the read-out head is new)
  c = common.base(preset)

  c.task = ml_collections.ConfigDict()
  c.task.name = "text_classification"  # task registry key (research/tasks/text_classification.py)
  c.task.source = "csv"         # csv | tfds
  c.task.path = ""              # csv source: file with a header row
  c.task.text_column = "text"   # csv source: text column
  c.task.label_column = "label"  # csv source: label column (any strings; encoded from the data)
  c.task.test_fraction = 0.2    # csv source: rows held out for test (split by seed)
  c.task.dataset = "imdb_reviews"  # tfds source: dataset name
  c.task.train_split = "train"  # tfds source
  c.task.test_split = "test"    # tfds source
  c.task.text_key = "text"      # tfds source: text feature(s), comma-separated to join
  c.task.label_key = "label"    # tfds source: integer label feature
  c.task.data_dir = ""          # TFDS data dir; "" = TFDS default (or TFDS_DATA_DIR)
  c.task.max_examples = 0       # tfds source: first N records per split; 0 = all
  c.task.tokenizer = "byte"     # byte | char | word (vocabulary from the training split)
  c.task.vocab_size = 20000     # word tokenizer: vocabulary size including 3 special ids
  c.task.seq_len = 128          # tokens per example: truncated (L-1 + EOS) or right-padded
  c.task.readout = "last"       # last (the EOS position) | mean (over real tokens)
  c.task.placement = "auto"     # where the rows live: auto (device if <= 16 MiB) | device | host

  c.model = ml_collections.ConfigDict()
  c.model.name = "transformer"  # transformer | lstm (research/models/__init__.py)
  c.model.num_layers = 4
  c.model.width = 128           # residual stream width
  c.model.num_heads = 4
  c.model.mlp_ratio = 4.0       # MLP hidden = mlp_ratio * width
  c.model.positions = "learned"  # learned | rotary | none
  c.model.max_len = 0           # position table size; 0 = seq_len (must equal the LM's to fine-tune)
  c.model.dropout = 0.1
  c.model.attention_only = False
  c.model.use_layernorm = True
  common.transformer_features(c.model)
  c.model.cell = "lstm"         # lstm model: lstm | rnn
  c.model.lstm_width = 0        # lstm hidden width; 0 = match the Transformer's parameter count
  c.model.lstm_layers = 0       # lstm layers; 0 = num_layers

  c.optim = common.optim(warmup_steps=100, end_lr_fraction=0.0, wd_exempt_embeddings=True)

  c.train = common.train(eval_every=500, checkpoint_every=500, keep_checkpoints=3)

  c.probe = ml_collections.ConfigDict()
  c.probe.batch_size = 128      # test examples per evaluation forward pass

  c.mesh = common.mesh()

  c.sharding = common.sharding()

  if preset == "tiny":
    c.task.seq_len = 32
    c.model.num_layers, c.model.width, c.model.num_heads = 2, 32, 2
    c.model.dropout = 0.0
    c.train.batch_size, c.train.num_steps, c.train.steps_per_call = 16, 40, 10
    c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 20, 20, 20
    c.optim.warmup_steps = 10
    c.probe.batch_size = 64
  elif preset == "imdb":
    c.task.source, c.task.dataset = "tfds", "imdb_reviews"
    c.task.tokenizer, c.task.seq_len, c.task.readout = "word", 256, "mean"
    c.train.num_steps = 5000
  elif preset == "ag_news":
    c.task.source, c.task.dataset, c.task.text_key = "tfds", "ag_news_subset", "title,description"
    c.task.tokenizer, c.task.seq_len = "word", 128
    c.train.num_steps = 5000
  elif preset != "csv":
    raise ValueError(f"unknown preset {preset!r}; choose one of: tiny, csv, imdb, ag_news")
  return c
