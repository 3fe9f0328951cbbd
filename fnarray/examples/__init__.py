"""Runnable examples: ``python -m fnarray.examples.<name>``."""
