"""`attention` with the IR op's semantics: softmax(q kᵀ · scale [+ causal mask]) v,
grouped-query heads, queries aligned to the end of the keys (decode).

Same-length causal and non-causal calls go to torch's scaled_dot_product_attention,
whose CPU/GPU kernels are blocked (flash-style online softmax: O(T) memory, with
their own backward). Fewer queries than keys (decode) use the bottom-right
aligned mask on the dense scores, which are then O(Tq · Tk).
"""
from __future__ import annotations

import torch.nn.functional as F

from .tail import tail_attention


def _heads(x, H):
    return x if x.shape[1] == H else x.repeat_interleave(H // x.shape[1], dim=1)


def attention(q, k, v, scale: float = 1.0, causal: bool = True):
    H, Tq, Tk = q.shape[1], q.shape[2], k.shape[2]
    k, v = _heads(k, H), _heads(v, H)
    if not causal or Tq == Tk:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal and Tq > 0, scale=scale)
    return tail_attention(q, k, v, None, scale)


__all__ = ["attention"]
