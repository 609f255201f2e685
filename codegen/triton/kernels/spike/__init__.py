"""Adaptive-threshold spike encoding (see api.py)."""
