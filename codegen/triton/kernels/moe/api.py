"""Grouped GEMM for callers, and the block-aligned row orders it runs on.

    ids, blocks = align_by_expert(experts, num_experts)        # MoE: slots sorted by expert
    y = grouped_gemm(x, w, ids, blocks, out_rows=N * k, row_div=k, row_weight=weights.flatten())

    ids, blocks = align_segments([3, 0, 5], groups=3)           # consecutive row segments
    y = grouped_gemm(x, w, ids, blocks, out_rows=8)             # == ir grouped_matmul
"""
from __future__ import annotations

import torch
import triton

from ..linear_attention.layout import KernelArgumentError, dot_precision
from .grouped_gemm import grouped_gemm_kernel

BLOCK_M = 16


def _pad_groups(order: torch.Tensor, group_of_sorted: torch.Tensor, sizes: torch.Tensor, block: int):
    """Place the rows `order` (sorted by group, `sizes` rows per group) into
    block-aligned slots: (row_ids [M_pad] with -1 for padding, group of each block)."""
    padded = (sizes + block - 1) // block * block
    starts = torch.cumsum(sizes, 0) - sizes
    starts_pad = torch.cumsum(padded, 0) - padded
    total = int(padded.sum())
    rank = torch.arange(order.numel(), device=order.device) - starts[group_of_sorted]
    row_ids = torch.full((total,), -1, dtype=torch.int32, device=order.device)
    row_ids[starts_pad[group_of_sorted] + rank] = order.to(torch.int32)
    block_group = torch.repeat_interleave(torch.arange(sizes.numel(), device=order.device, dtype=torch.int32),
                                          padded // block)
    return row_ids, block_group


def align_by_expert(experts: torch.Tensor, num_experts: int, block: int = BLOCK_M):
    """Flat slots n*k+j sorted by expert (stable), each expert padded to `block`."""
    flat = experts.reshape(-1).long()
    order = torch.argsort(flat, stable=True)
    sizes = torch.bincount(flat, minlength=num_experts)
    return _pad_groups(order, flat[order], sizes, block)


def align_segments(sizes, groups: int, block: int = BLOCK_M):
    """Consecutive row segments of `sizes` rows; segment i uses group i % groups."""
    sizes = torch.as_tensor(sizes, dtype=torch.long).reshape(-1)
    total = int(sizes.sum())
    order = torch.arange(total, device=sizes.device)
    seg = torch.repeat_interleave(torch.arange(sizes.numel(), device=sizes.device), sizes)
    row_ids, block_seg = _pad_groups(order, seg, sizes, block)
    return row_ids, (block_seg % groups).to(torch.int32)


def grouped_gemm(x: torch.Tensor, w: torch.Tensor, row_ids: torch.Tensor, block_group: torch.Tensor, *,
                 out_rows: int, row_div: int = 1, row_weight: torch.Tensor | None = None,
                 block: int = BLOCK_M) -> torch.Tensor:
    """out [out_rows, N]: out[id] = x[id // row_div] @ w[g]^T (* row_weight[id]) for every aligned id."""
    if x.dim() != 2 or w.dim() != 3 or w.shape[2] != x.shape[1]:
        raise KernelArgumentError(f"grouped_gemm takes x [M, K] and w [G, N, K], got {list(x.shape)}, "
                                  f"{list(w.shape)}")
    if row_ids.numel() != block_group.numel() * block:
        raise KernelArgumentError(f"{row_ids.numel()} aligned rows do not fill {block_group.numel()} blocks "
                                  f"of {block}")
    x = x.contiguous()
    N, K = w.shape[1], w.shape[2]
    out = torch.zeros(out_rows, N, dtype=x.dtype, device=x.device)
    if block_group.numel() == 0 or out_rows == 0:
        return out
    BN = min(64, max(16, triton.next_power_of_2(N)))
    BK = min(64, max(16, triton.next_power_of_2(K)))
    grouped_gemm_kernel[(block_group.numel(), triton.cdiv(N, BN))](
        x, w, out, row_ids.to(torch.int32), block_group.to(torch.int32),
        row_weight.contiguous() if row_weight is not None else x, N, K,
        x.stride(0), w.stride(0), w.stride(1), w.stride(2), out.stride(0),
        ROW_DIV=int(row_div), HAS_WEIGHT=row_weight is not None, BM=block, BN=BN, BK=BK,
        PRECISION=dot_precision(x.dtype))
    return out
