"""One module per paper, the reproduce command, the benchmark.

Importing `research` first sets up the JAX backend probe (research/__init__.py) before
any experiment imports jax.
"""
import research  # noqa: F401
