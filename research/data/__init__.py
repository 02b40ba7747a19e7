"""Real-data sources for the tasks: text corpora and labelled text (`text.py`)."""
