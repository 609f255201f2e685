"""A BLAS-grade GEMM for the cpu target: torch's (MKL / oneDNN) called from the
Relax VM as a destination-passing packed function.

`spikec.cpu.linear(x [M, K], w [N, K], b [N] | [0], y [M, N])` writes
y = x·wᵀ + b in place; the VM owns every buffer, torch only views them (DLPack).
"""
from __future__ import annotations

import torch
import tvm_ffi

LINEAR = "spikec.cpu.linear"
MATMUL = "spikec.cpu.matmul"


def _linear(x, w, b, y) -> None:
    xt, wt, yt = torch.from_dlpack(x), torch.from_dlpack(w), torch.from_dlpack(y)
    bt = torch.from_dlpack(b)
    if bt.numel():
        torch.addmm(bt, xt, wt.t(), out=yt)
    else:
        torch.mm(xt, wt.t(), out=yt)


def _matmul(a, b, y) -> None:
    torch.matmul(torch.from_dlpack(a), torch.from_dlpack(b), out=torch.from_dlpack(y))


tvm_ffi.register_global_func(LINEAR, _linear, override=True)
tvm_ffi.register_global_func(MATMUL, _matmul, override=True)
