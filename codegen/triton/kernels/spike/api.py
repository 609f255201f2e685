"""Spike encoding for callers: same contract as the IR op `spike_encode`
(spikec.ir.ops_spike.spike_encode_reference)."""
from __future__ import annotations

import torch
import triton

from ..linear_attention.layout import KernelArgumentError
from .encode import spike_encode_kernel

VTH_MIN, VTH_MAX = 1e-5, 1e4    # the threshold clamp of the IR op (W8ASpike's range)


def spike_encode(x: torch.Tensor, k: float = 3.0, axis: int = -1):
    """(counts int32 like x, v_th fp32 with `axis` kept as size 1)."""
    if k <= 0:
        raise KernelArgumentError(f"spike_encode: k must be positive, got {k}")
    if x.dim() == 0:
        raise KernelArgumentError("spike_encode needs at least one dimension")
    axis = axis % x.dim()
    xm = x.movedim(axis, -1).contiguous()
    F = xm.shape[-1]
    rows = xm.numel() // max(F, 1)
    counts = torch.empty(xm.shape, dtype=torch.int32, device=x.device)
    v_th = torch.empty(*xm.shape[:-1], 1, dtype=torch.float32, device=x.device)
    if rows and F:
        spike_encode_kernel[(rows,)](xm, counts, v_th, float(k), F, VTH_MIN, VTH_MAX,
                                     BF=min(1024, triton.next_power_of_2(F)))
    return counts.movedim(-1, axis), v_th.movedim(-1, axis)
