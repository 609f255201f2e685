"""Softmax attention for queries that are the last Tq of Tk positions (decode):
the dense masked form, bottom-right aligned like the IR reference."""
from __future__ import annotations

import torch


def tail_attention(q, k, v, window: int | None, scale: float):
    """Queries that are the last Tq of Tk positions (decode): only the last Tq + window - 1
    keys can be seen, so the dense masked form is O(Tq · (Tq + window))."""
    Tq, Tk = q.shape[2], k.shape[2]
    if window is not None and Tk > Tq + window - 1:
        k, v = k[:, :, Tk - (Tq + window - 1):], v[:, :, Tk - (Tq + window - 1):]
        Tk = k.shape[2]
    i = torch.arange(Tq, device=q.device)[:, None] + (Tk - Tq)
    j = torch.arange(Tk, device=q.device)[None, :]
    allowed = j <= i
    if window is not None:
        allowed = allowed & (j > i - window)
    scores = ((q @ k.transpose(-1, -2)) * scale).masked_fill(~allowed, float("-inf"))
    return scores.softmax(-1) @ v
