"""RWKV-4 WKV operator (the time-mixing recurrence of SpikeGPT), in max-shifted form.

Per channel, with w = -exp(time_decay) < 0 and u = time_first:
  wkv_t = (sum_{i<t} e^{(t-1-i) w + k_i} v_i + e^{u + k_t} v_t) / (same without v)
State (a, b, p): numerator and denominator scaled by e^{-p}, p the running max exponent, so
nothing overflows. ``wkv_naive`` loops over time; ``wkv_step`` is one step of it.
"""
from __future__ import annotations

import torch

NEG_INF = -1e38   # initial running max (finite, so exp(p - max) never sees inf - inf)


def wkv_init_state(batch: int, channels: int, device=None, dtype=torch.float32):
    a = torch.zeros(batch, channels, device=device, dtype=dtype)
    return a, a.clone(), torch.full((batch, channels), NEG_INF, device=device, dtype=dtype)


def wkv_step(k_t, v_t, w, u, state):
    """k_t, v_t: [B, C]; w, u: [C]; state: (a, b, p) each [B, C] -> (wkv_t [B, C], new state)."""
    a, b, p = state
    uk = u + k_t
    m = torch.maximum(p, uk)
    e1, e2 = torch.exp(p - m), torch.exp(uk - m)
    out = (e1 * a + e2 * v_t) / (e1 * b + e2)
    pw = p + w
    m = torch.maximum(pw, k_t)
    e1, e2 = torch.exp(pw - m), torch.exp(k_t - m)
    return out, (e1 * a + e2 * v_t, e1 * b + e2, m)


def wkv_naive(k, v, w, u, state=None):
    """k, v: [B, T, C] -> (wkv [B, T, C], final state)."""
    B, T, C = k.shape
    if state is None:
        state = wkv_init_state(B, C, k.device, k.dtype)
    outs = []
    for t in range(T):
        o, state = wkv_step(k[:, t], v[:, t], w, u, state)
        outs.append(o)
    return torch.stack(outs, dim=1), state
