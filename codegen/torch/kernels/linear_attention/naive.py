"""Gated linear attention in its quadratic parallel form: O(T²·K) memory, exact.

All three kernels here take the canonical form: q (already scaled), k [B, H, T, K],
v [B, H, T, V] with the same heads, g the per-step log decay ([B, H, T, K] per
channel, [B, H, T, 1] per head, or None), initial_state [B, H, K, V] or None.
They return (o [B, H, T, V], final state [B, H, K, V]).

With b_t = Σ_{s≤t} g_s (in log space, never exponentiated on its own):
    o_t = Σ_{s≤t} Σ_K q_tK k_sK exp(b_tK - b_sK) v_s  +  (q_t ⊙ exp(b_t)) S_0
    S_T = exp(b_T) ⊙ S_0 + Σ_s (k_s ⊙ exp(b_T - b_s))ᵀ v_s
Every exponent is masked to -inf before exp where s > t, so it never overflows.
Differentiable by autograd; the oracle for the chunked and recurrent kernels.
"""
from __future__ import annotations

import torch


def naive_linear_attention(q, k, v, g=None, initial_state=None):
    B, H, T, K = q.shape
    V = v.shape[-1]
    if g is None:
        g = q.new_zeros(B, H, T, 1)
    b = g.cumsum(2)                                              # [B, H, T, K']
    causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()[:, :, None]
    decay = (b[:, :, :, None] - b[:, :, None, :]).masked_fill(~causal, float("-inf")).exp()   # [B,H,T,T,K']
    scores = (q[:, :, :, None, :] * k[:, :, None, :, :] * decay).sum(-1)                        # [B,H,T,T]
    o = scores @ v
    s0 = q.new_zeros(B, H, K, V) if initial_state is None else initial_state
    o = o + (q * b.exp()) @ s0
    if T == 0:
        return o, s0
    b_last = b[:, :, -1:]                                        # [B, H, 1, K']
    state = (k * (b_last - b).exp()).transpose(-1, -2) @ v + b_last.exp().transpose(-1, -2) * s0
    return o, state
