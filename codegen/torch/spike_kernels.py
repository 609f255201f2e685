"""Torch kernels of the spike-coding ops, with straight-through gradients for QAT.

The forward values are the IR reference implementations (spikec.ir.ops_spike); the
backward passes are the straight-through estimator SpikingBrain trains with:

- `straight_through(x, y)`: value y, d/dx = identity, nothing to y (y = counts · v_th is
  a rounding of x, whose true derivative is zero almost everywhere).
- `int8_fake_quant(x, axis, group_size)`: value the INT8 grid point, d/dx = identity.
- `spike_linear(counts, v_th, W, b)`: the dense equivalent F.linear(counts · v_th, W, b)
  so W, b (and v_th) get ordinary gradients; the event-driven reference is for checking
  and accounting, a GPU wants the matmul.
- `spike_fake_quant(x, k)`: encode + decode + STE in one call, for eager fine-tuning.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from spikec.ir.ops_spike import int8_fake_quant_reference, spike_encode_reference


class StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y):
        return y.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class Int8FakeQuantSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, axis: int, group_size: int):
        return int8_fake_quant_reference(x, axis, group_size)

    @staticmethod
    def backward(ctx, grad):
        return grad, None, None


def straight_through(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return StraightThrough.apply(x, y)


def int8_fake_quant(x: torch.Tensor, axis: int = -1, group_size: int = 0) -> torch.Tensor:
    return Int8FakeQuantSTE.apply(x, axis, group_size)


def spike_encode(x: torch.Tensor, k: float = 3.0, axis: int = -1):
    with torch.no_grad():          # counts are integers: no gradient flows through them
        return spike_encode_reference(x, k, axis)


def spike_linear_dense(counts, v_th, weight, bias=None):
    x = (counts.to(v_th.dtype) * v_th).to(weight.dtype)
    return F.linear(x, weight, bias)


def spike_fake_quant(x: torch.Tensor, k: float = 3.0) -> torch.Tensor:
    """x̂ = round(x / v_th) · v_th with v_th = mean|x|/k per token; gradient straight through."""
    counts, vth = spike_encode(x, k)
    return straight_through(x, (counts * vth).to(x.dtype))
