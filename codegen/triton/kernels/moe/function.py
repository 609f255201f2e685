"""Differentiable grouped GEMM on block-aligned rows: y[r] = x[r] @ w[g(r)]^T.

Forward and the input gradient run the Triton kernel (dx[r] = dy[r] @ w[g],
the same kernel on the transposed weight view); the weight gradient
dw[g] = dy_g^T x_g is one dense GEMM per group on the rows of that group.
"""
from __future__ import annotations

import torch

from .api import BLOCK_M, grouped_gemm


class GroupedGemmFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, row_ids, block_group):
        ctx.save_for_backward(x, w, row_ids, block_group)
        return grouped_gemm(x, w, row_ids, block_group, out_rows=x.shape[0])

    @staticmethod
    def backward(ctx, dy):
        x, w, row_ids, block_group = ctx.saved_tensors
        dy = dy.contiguous()
        dx = dw = None
        if ctx.needs_input_grad[0]:
            dx = grouped_gemm(dy, w.transpose(1, 2), row_ids, block_group, out_rows=x.shape[0])
        if ctx.needs_input_grad[1]:
            dw = torch.zeros_like(w)
            ids = row_ids.long().view(-1, BLOCK_M)
            for g in torch.unique(block_group).tolist():
                rows = ids[block_group == g].reshape(-1)
                rows = rows[rows >= 0]
                dw[g] = (dy[rows].t() @ x[rows]).to(w.dtype)
        return dx, dw, None, None


def grouped_linear(x: torch.Tensor, w: torch.Tensor, row_ids: torch.Tensor, block_group: torch.Tensor):
    """x [R, K], w [G, N, K] (nn.Linear layout) -> [R, N], rows grouped by the aligned plan."""
    return GroupedGemmFunction.apply(x, w, row_ids, block_group)
