"""Gated linear attention: chunked forward and backward, fused recurrent decode (see api.py)."""
