"""Causal / sliding-window softmax attention, flash-style and banded (see api.py)."""
