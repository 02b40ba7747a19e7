"""Mechanistic probes of sequence models (attention scores, phase changes, ablation).

`attention.py`: score definitions on attention patterns and OV circuits
(prefix matching, previous token, copying, ICL score) and the phase-change
detection run on a dense eval history (metrics.jsonl `eval_*` rows).
"""
