"""Gated linear attention as the step recurrence: the decode path (T = 1 or a few
tokens), where a chunk would be mostly padding. Canonical form as in naive.py;
`decay` may replace `g` with a multiplicative per-channel decay (key-tied gates
whose 1 - k is not positive have no log). Differentiable by autograd.

    S_t = decay_t ⊙ S_{t-1} + k_tᵀ v_t ;  o_t = q_t S_t
"""
from __future__ import annotations

import torch


def fused_recurrent_linear_attention(q, k, v, g=None, initial_state=None, decay=None):
    B, H, T, K = q.shape
    V = v.shape[-1]
    S = q.new_zeros(B, H, K, V) if initial_state is None else initial_state
    outs = []
    for t in range(T):
        if g is not None:
            S = S * g[:, :, t, :, None].exp()
        elif decay is not None:
            S = S * decay[:, :, t, :, None]
        S = S + k[:, :, t, :, None] * v[:, :, t, None, :]
        outs.append((q[:, :, t, None, :] @ S)[:, :, 0])
    o = torch.stack(outs, dim=2) if outs else q.new_zeros(B, H, 0, V)
    return o, S
