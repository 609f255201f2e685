"""`sliding_window_attention` with the IR op's semantics: causal softmax attention
over the last `window` keys (i - window < j <= i), grouped-query heads, queries
aligned to the end of the keys when there are fewer of them (decode)."""
from __future__ import annotations

from ..attention import attention
from ..attention.tail import tail_attention
from .banded import banded_attention


def _heads(x, H):
    return x if x.shape[1] == H else x.repeat_interleave(H // x.shape[1], dim=1)


def sliding_window_attention(q, k, v, window: int, scale: float = 1.0):
    H, Tq, Tk = q.shape[1], q.shape[2], k.shape[2]
    if window >= Tk:
        return attention(q, k, v, scale=scale, causal=True)        # the band covers everything
    k, v = _heads(k, H), _heads(v, H)
    if Tq != Tk:
        return tail_attention(q, k, v, window, scale)
    return banded_attention(q, k, v, window, scale)


__all__ = ["sliding_window_attention", "banded_attention"]
