"""Sliding-window softmax attention, blocked and banded: O(T·window) memory.

Query block n (rows nQ .. nQ+Q-1) can only see keys in (nQ - window, nQ+Q-1].
With the keys padded at the front by window-1 rows, that span is the slice
[nQ, nQ + Q + window - 1) of the padded keys: `unfold` makes it one strided
view per block, so the scores are [N, Q, Q + window - 1] instead of [T, T].
Inside a block, query a may use padded key l iff a <= l <= a + window - 1, and
the key is not front padding.

Backward (a torch.autograd.Function, flash-attention style): only q, k, v, o and
the row log-sum-exp are saved; P is recomputed per block, then
    dS = P ⊙ (do vᵀ - rowsum(do ⊙ o)),  dq = scale · dS k,  dk = scale · dSᵀ q,  dv = Pᵀ do
and the per-block key/value gradients are folded back onto the (overlapping)
key positions with `fold` (a scatter-add over the windows).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

BLOCK = 64


def _band_mask(N: int, Q: int, window: int, device) -> torch.Tensor:
    """[N, Q, Q + window - 1]: which padded keys each query of each block may use."""
    L = Q + window - 1
    a = torch.arange(Q, device=device)[:, None]
    l = torch.arange(L, device=device)[None, :]
    band = (l >= a) & (l <= a + window - 1)
    key_pos = torch.arange(N, device=device)[:, None, None] * Q + l[None] - (window - 1)
    return band[None] & (key_pos >= 0)


class _Blocks:
    """The blocked layout of one call: queries in blocks of Q, each block's window of keys."""

    def __init__(self, T: int, window: int, block: int):
        self.T, self.W = T, window
        self.Q = min(block, T)
        self.N = -(-T // self.Q)
        self.pad_end = self.N * self.Q - T
        self.L = self.Q + window - 1

    def queries(self, x):                                    # [B, H, T, D] -> [B, H, N, Q, D]
        return F.pad(x, (0, 0, 0, self.pad_end)).unflatten(2, (self.N, self.Q))

    def windows(self, x):                                    # [B, H, T, D] -> [B, H, N, D, L] (a view)
        return F.pad(x, (0, 0, self.W - 1, self.pad_end)).unfold(2, self.L, self.Q)

    def fold(self, xw):
        """Inverse of `windows` for gradients: [B, H, N, D, L] summed back to [B, H, T, D]."""
        B, H, N, D, L = xw.shape
        cols = xw.permute(0, 1, 3, 4, 2).reshape(B * H, D * L, N)
        span = (N - 1) * self.Q + L
        out = F.fold(cols, output_size=(1, span), kernel_size=(1, L), stride=(1, self.Q))
        return out.view(B, H, D, span).transpose(-1, -2)[:, :, self.W - 1:self.W - 1 + self.T]

    def unblock(self, x):                                    # [B, H, N, Q, D] -> [B, H, T, D]
        return x.flatten(2, 3)[:, :, :self.T]


def _scores(lay: _Blocks, q, k, scale):
    s = (lay.queries(q) @ lay.windows(k)) * scale                              # [B, H, N, Q, L]
    return s.masked_fill(~_band_mask(lay.N, lay.Q, lay.W, q.device), float("-inf"))


class BandedAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, window: int, scale: float, block: int):
        lay = _Blocks(q.shape[2], window, block)
        s = _scores(lay, q, k, scale)
        lse = s.logsumexp(-1, keepdim=True)                                     # [B, H, N, Q, 1]
        o = (s - lse).exp() @ lay.windows(v).transpose(-1, -2)                 # [B, H, N, Q, D]
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.args = (window, scale, block)
        return lay.unblock(o)

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse = ctx.saved_tensors
        window, scale, block = ctx.args
        lay = _Blocks(q.shape[2], window, block)
        p = (_scores(lay, q, k, scale) - lse).exp()                             # recomputed, [B, H, N, Q, L]
        dob = lay.queries(do)
        vw = lay.windows(v)
        ds = p * (dob @ vw - (dob * o).sum(-1, keepdim=True))
        dq = lay.unblock(ds @ lay.windows(k).transpose(-1, -2)) * scale
        dk = lay.fold(lay.queries(q).transpose(-1, -2) @ ds) * scale
        dv = lay.fold(dob.transpose(-1, -2) @ p)
        return dq, dk, dv, None, None, None


def banded_attention(q, k, v, window: int, scale: float, block: int = BLOCK):
    """q, k, v [B, H, T, D] with the same heads and length; causal, last `window` keys."""
    return BandedAttention.apply(q, k, v, window, scale, block)
