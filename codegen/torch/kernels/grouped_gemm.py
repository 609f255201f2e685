"""Grouped GEMM over rows sorted by expert, each expert's segment padded to a block.

The layout is vLLM's `moe_align_block_size`: rows are grouped by expert (stable, so a
group keeps its row order), every group's segment is padded up to a multiple of `block`
with a sentinel row, and each block belongs to one expert. A GPU kernel runs one program
per block; here each expert's padded segment is contiguous, so the expert computes with
one dense GEMM on it (no per-expert masks or gathers). Dropless: every row lands in the
layout; padding rows are zeros and are never read back.

    plan = align_block(group_of_row, num_groups, block)
    y = grouped_mm(x, plan, w)                          # y[r] = x[r] @ w[group_of_row[r]]ᵀ
    y = grouped_swiglu(x, plan, w_gate, w_up, w_down)   # the expert FFN, one gather + one scatter
    y = moe_forward(x, router_weight, w_gate, ..., top_k=2)   # the whole `moe` op

Everything is differentiable with plain autograd (gathers, GEMMs and a concatenation),
which the torch target's training path relies on.

Block size: a GPU block kernel wants 16-128 rows per program; here every padding row is
a wasted GEMM row, so on CPU the default is 1 (bench/moe.py measures both: with 64
experts of ~2 tokens each, block 16 runs 8x the rows and is ~1.4x slower than block 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

CPU_BLOCK, GPU_BLOCK = 1, 16


def default_block(device: torch.device | str) -> int:
    return GPU_BLOCK if torch.device(device).type == "cuda" else CPU_BLOCK


@dataclass
class BlockPlan:
    sorted_rows: torch.Tensor     # [M_pad] source row of each padded position; `rows` marks padding
    position: torch.Tensor        # [rows] padded position of each source row
    offsets: list[int]            # [G + 1] start of each group's padded segment
    block_group: torch.Tensor     # [M_pad / block] group of each block
    rows: int
    block: int

    @property
    def padded_rows(self) -> int:
        return self.offsets[-1]


def align_block(group_of_row: torch.Tensor, num_groups: int, block: int = CPU_BLOCK) -> BlockPlan:
    """Sort rows by group and pad each group to a multiple of `block` (vLLM moe_align_block_size)."""
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    g = group_of_row.reshape(-1).long()
    R = g.numel()
    counts = torch.bincount(g, minlength=num_groups)
    if counts.numel() != num_groups:
        raise ValueError(f"group ids must lie in [0, {num_groups}), found {int(g.max())}")
    padded = (counts + block - 1) // block * block
    offsets = torch.zeros(num_groups + 1, dtype=torch.long, device=g.device)
    offsets[1:] = padded.cumsum(0)
    starts = counts.cumsum(0) - counts                     # unpadded start of each group
    order = torch.sort(g, stable=True).indices
    gs = g[order]
    position = torch.empty_like(g)
    position[order] = offsets[gs] + (torch.arange(R, device=g.device) - starts[gs])
    m_pad = int(offsets[-1])
    sorted_rows = torch.full((m_pad,), R, dtype=torch.long, device=g.device)
    sorted_rows[position] = torch.arange(R, device=g.device)
    block_group = torch.repeat_interleave(torch.arange(num_groups, device=g.device), padded // block)
    return BlockPlan(sorted_rows, position, offsets.tolist(), block_group, R, block)


def _gather_padded(x: torch.Tensor, plan: BlockPlan) -> torch.Tensor:
    """x's rows in the padded layout; sentinel rows read a zero row."""
    return torch.cat([x, x.new_zeros(1, *x.shape[1:])])[plan.sorted_rows]


def _segments(plan: BlockPlan):
    for g in range(len(plan.offsets) - 1):
        lo, hi = plan.offsets[g], plan.offsets[g + 1]
        if hi > lo:
            yield g, lo, hi


def grouped_mm(x: torch.Tensor, plan: BlockPlan, weight: torch.Tensor) -> torch.Tensor:
    """y[r] = x[r] @ weight[g(r)]ᵀ for weight [G, O, K] (nn.Linear layout)."""
    xp = _gather_padded(x, plan)
    parts = [xp[lo:hi] @ weight[g].t() for g, lo, hi in _segments(plan)]
    yp = torch.cat(parts) if parts else x.new_zeros(0, weight.shape[1])
    return yp[plan.position]


def _swiglu_padded(xp, plan: BlockPlan, w_gate, w_up, w_down) -> torch.Tensor:
    """The expert FFN on each group's padded segment, back in source-row order."""
    parts = []
    for g, lo, hi in _segments(plan):
        seg = xp[lo:hi]
        parts.append((F.silu(seg @ w_gate[g].t()) * (seg @ w_up[g].t())) @ w_down[g].t())
    yp = torch.cat(parts) if parts else xp.new_zeros(0, w_down.shape[1])
    return yp[plan.position]


def grouped_swiglu(x, plan: BlockPlan, w_gate, w_up, w_down) -> torch.Tensor:
    """y[r] = down_g(silu(gate_g x[r]) * up_g x[r]) with g = the row's group."""
    return _swiglu_padded(_gather_padded(x, plan), plan, w_gate, w_up, w_down)


def groups_of_segments(group_sizes: torch.Tensor) -> torch.Tensor:
    """Row -> group for rows in consecutive segments; entry [..., g] of group_sizes is group g."""
    G = group_sizes.shape[-1]
    sizes = group_sizes.reshape(-1).long()
    ids = torch.arange(sizes.numel(), device=sizes.device) % G
    return torch.repeat_interleave(ids, sizes)


def grouped_matmul(x, group_sizes, weight, block: int | None = None) -> torch.Tensor:
    """The `grouped_matmul` op: segments of rows (group_sizes [..., G]) times weight[g]ᵀ."""
    groups = groups_of_segments(group_sizes)
    if groups.numel() != x.shape[0]:
        raise ValueError(f"grouped_matmul: group sizes sum to {groups.numel()}, x has {x.shape[0]} rows")
    return grouped_mm(x, align_block(groups, weight.shape[0], block or default_block(x.device)), weight)


def route(h, router_weight, top_k: int, activation: str, renormalize: bool):
    """The router of the `moe` op (fp32 softmax|sigmoid, top-k, optional renormalisation)."""
    logits = F.linear(h, router_weight).float()
    probs = logits.softmax(-1) if activation == "softmax" else logits.sigmoid()
    weights, experts = probs.topk(top_k, dim=-1)
    if renormalize:
        weights = weights / weights.sum(-1, keepdim=True)
    return weights.to(h.dtype), experts


def moe_forward(x, router_weight, w_gate, w_up, w_down, shared_gate=None, shared_up=None, shared_down=None,
                *, top_k: int, activation: str = "softmax", renormalize: bool = False, block: int | None = None):
    """The `moe` op: route, sort the N*k token slots by expert, grouped SwiGLU, weighted sum over k."""
    D = x.shape[-1]
    h = x.reshape(-1, D)
    weights, experts = route(h, router_weight, top_k, activation, renormalize)
    N, k = experts.shape
    plan = align_block(experts, w_gate.shape[0], block or default_block(x.device))
    slot_rows = grouped_swiglu_slots(h, plan, k, w_gate, w_up, w_down)         # [N*k, D]
    y = (slot_rows.reshape(N, k, D) * weights.unsqueeze(-1)).sum(1)
    if shared_gate is not None:
        y = y + F.linear(F.silu(F.linear(h, shared_gate)) * F.linear(h, shared_up), shared_down)
    return y.reshape(x.shape)


def grouped_swiglu_slots(h, plan: BlockPlan, k: int, w_gate, w_up, w_down) -> torch.Tensor:
    """Expert outputs of the N*k token slots (slot s reads token s // k), gathered straight from h."""
    tokens = torch.where(plan.sorted_rows < plan.rows, plan.sorted_rows // k, h.shape[0])
    hp = torch.cat([h, h.new_zeros(1, h.shape[1])])[tokens]
    return _swiglu_padded(hp, plan, w_gate, w_up, w_down)
