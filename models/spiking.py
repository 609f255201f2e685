"""Spiking neurons with surrogate gradients (spikingjelly semantics, reference §7-8).

The spike is written as ``heaviside(x) + (sg(x) - sg(x).detach())``: the forward value is the
exact step function and the backward pass sees d sg/dx. With sg(x) = atan(pi/2 * a * x)/pi + 1/2
that derivative is spikingjelly's ATan surrogate a/2 / (1 + (pi/2 * a * x)^2). Plain tensor
ops (no autograd.Function) keep the model traceable by torch.export.
"""
from __future__ import annotations

import math

import torch


def atan_spike(x: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """Heaviside step (x >= 0 -> 1) with the ATan surrogate gradient."""
    sg = torch.atan((math.pi / 2 * alpha) * x) / math.pi + 0.5
    return (x >= 0).to(x.dtype) + (sg - sg.detach())


def atan_surrogate_grad(x: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """The derivative the surrogate uses (for tests and documentation)."""
    return (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2)


def lif_step(x_t: torch.Tensor, v: torch.Tensor, tau: float, v_threshold: float, v_reset: float,
             alpha: float):
    """One LIF step with decay_input and hard reset (spikingjelly LIFNode defaults).

    charge: h = v + (x - (v - v_reset)) / tau;  fire: s = H(h - v_th);  reset: v = h (1-s) + v_reset s
    """
    h = v + (x_t - (v - v_reset)) / tau
    s = atan_spike(h - v_threshold, alpha)
    return s, h * (1 - s) + v_reset * s


def lif_multistep(x: torch.Tensor, v0: torch.Tensor | None = None, tau: float = 2.0,
                  v_threshold: float = 1.0, v_reset: float = 0.0, alpha: float = 2.0):
    """Multi-step LIF over the token axis. x: [B, T, C] -> (spikes [B, T, C], final membrane [B, C]).

    As in SpikeGPT, the sequence is the SNN time axis; the loop over T is the naive form.
    """
    v = torch.full_like(x[:, 0], v_reset) if v0 is None else v0
    spikes = []
    for t in range(x.shape[1]):
        s, v = lif_step(x[:, t], v, tau, v_threshold, v_reset, alpha)
        spikes.append(s)
    return torch.stack(spikes, dim=1), v
