"""Fused-op kernels of the torch target, written in torch (flash-linear-attention style):

- linear_attention/: `naive` (quadratic parallel form, the oracle), `chunk` (chunked
  forward + handwritten backward), `fused_recurrent` (step form for decode), and the
  dispatcher that gives the IR op's semantics (GQA, gate kinds, scale).
- sliding_window_attention/: banded blocked softmax attention, O(T·window) memory, with
  a handwritten (flash-style) backward.
- attention/: full causal / non-causal softmax attention (torch's SDPA, blocked).
"""
