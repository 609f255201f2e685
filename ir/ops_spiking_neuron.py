"""Spiking-neuron ops: `lif`, a multi-step leaky integrate-and-fire neuron over the time axis.

`lif(x [B, T, *C], v0 [B, *C]?, tau, v_threshold, v_reset, alpha) -> (spikes [B, T, *C], v_T [B, *C])`
with decay_input and hard reset (spikingjelly's LIFNode defaults, SpikeGPT's neuron):

    h_t = v_{t-1} + (x_t - (v_{t-1} - v_reset)) / tau
    s_t = H(h_t - v_threshold)          (H(0) = 1)
    v_t = h_t (1 - s_t) + v_reset s_t

v_0 = v0, or v_reset everywhere when v0 is absent. `alpha` is the ATan surrogate's
sharpness: it changes only gradients (targets that train use it), never the values.
"""
from __future__ import annotations

import torch

from .registry import OpDef, Param, register_op
from .types import TensorType


def lif_reference(x: torch.Tensor, v0: torch.Tensor | None = None, tau: float = 2.0, v_threshold: float = 1.0,
                  v_reset: float = 0.0, alpha: float = 2.0):
    """The plain loop over t = 0..T-1 (forward values only)."""
    v = torch.full_like(x.select(1, 0) if x.shape[1] else x.sum(1), v_reset) if v0 is None else v0.to(x.dtype)
    out = torch.empty_like(x)
    for t in range(x.shape[1]):
        h = v + (x[:, t] - (v - v_reset)) / tau
        s = (h - v_threshold >= 0).to(x.dtype)
        out[:, t] = s
        v = h * (1 - s) + v_reset * s
    return out, v


def _lif_infer(opdef, args, ctx):
    x = args["x"]
    return [TensorType(x.shape, x.dtype), TensorType((x.shape[0], *x.shape[2:]), x.dtype)]


register_op(OpDef(
    "lif",
    [Param("x", "tensor"), Param("v0", "tensor?", None), Param("tau", "float", 2.0),
     Param("v_threshold", "float", 1.0), Param("v_reset", "float", 0.0), Param("alpha", "float", 2.0)],
    lif_reference, 2, infer=_lif_infer, category="fused",
    doc="Multi-step LIF over dim 1 of x [B, T, *C] (decay_input, hard reset): h = v + (x_t - (v - v_reset))/tau, "
        "s = H(h - v_threshold), v = h(1-s) + v_reset s; returns (spikes, final membrane [B, *C]); v0 defaults "
        "to v_reset; alpha: ATan surrogate sharpness (gradients only)."))
