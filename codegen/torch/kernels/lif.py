"""Multi-step LIF (the `lif` op) in torch: a loop over T with an ATan surrogate gradient.

Forward values are the op's (hard reset, decay_input, H(0) = 1). When a gradient is
needed the spike is written as heaviside + (sg - sg.detach()), sg(u) = atan(pi/2 alpha u)/pi
+ 1/2, as spikingjelly and models/spiking.py do: backpropagation through time sees the
ATan surrogate d sg/du = alpha/2 / (1 + (pi/2 alpha u)^2) and the reset's dependence on s.
"""
from __future__ import annotations

import math

import torch


def lif(x: torch.Tensor, v0: torch.Tensor | None = None, tau: float = 2.0, v_threshold: float = 1.0,
        v_reset: float = 0.0, alpha: float = 2.0):
    """x [B, T, *C], v0 [B, *C] or None (v_reset) -> (spikes [B, T, *C], final membrane [B, *C])."""
    v = torch.full_like(x.select(1, 0) if x.shape[1] else x.sum(1), v_reset) if v0 is None else v0.to(x.dtype)
    grad = torch.is_grad_enabled() and (x.requires_grad or v.requires_grad)
    if not grad:
        out = torch.empty_like(x)
        with torch.no_grad():
            for t in range(x.shape[1]):
                h = v + (x[:, t] - (v - v_reset)) / tau
                s = (h >= v_threshold).to(x.dtype)
                out[:, t] = s
                v = h * (1 - s) + v_reset * s
        return out, v
    k = math.pi / 2 * alpha
    spikes = []
    for t in range(x.shape[1]):
        h = v + (x[:, t] - (v - v_reset)) / tau
        u = h - v_threshold
        sg = torch.atan(k * u) / math.pi + 0.5
        s = (u >= 0).to(x.dtype) + (sg - sg.detach())
        spikes.append(s)
        v = h * (1 - s) + v_reset * s
    out = torch.stack(spikes, 1) if spikes else torch.empty_like(x)
    return out, v
