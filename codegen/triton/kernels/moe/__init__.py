"""Grouped GEMM over rows sorted by expert, padded to a block (see api.py, function.py)."""
