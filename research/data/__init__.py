"""Real-data sources for the tasks: text corpora and labelled text (`text.py`), TFDS splits
as arrays gathered inside jitted code (`tfds_arrays.py`)."""
