"""Mixture-of-experts FFN: router, top-k routed SwiGLU experts, one always-on shared expert.

Two dispatch paths that must agree:
- "sparse": each expert runs only on the tokens routed to it (``torch.where`` + ``index_add``);
  the only data-dependent shapes in the zoo's default forward.
- "dense": every expert runs on every token and the combine weights (zero off the top-k)
  mask the results. Wasteful, shape-static; the oracle for the sparse path.
Routed outputs are weighted by the router probability p_i (not renormalised unless
``norm_topk_prob``), matching the upcycling analysis in reference §2.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .ffn import SwiGLU


def load_balancing_loss(probs: torch.Tensor, topk_idx: torch.Tensor, num_experts: int) -> torch.Tensor:
    """Switch-style auxiliary loss E * sum_e f_e * P_e (= 1 when routing is uniform).

    f_e: fraction of the N*k routing slots sent to expert e; P_e: mean router probability of e
    (probabilities renormalised to sum to 1 per token, so a sigmoid router is treated alike).
    """
    f = F.one_hot(topk_idx, num_experts).to(probs.dtype).sum(dim=(0, 1)) / topk_idx.numel()
    p = (probs / probs.sum(-1, keepdim=True)).mean(0)
    return num_experts * (f * p).sum()


class SparseMoE(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int, num_experts: int, top_k: int,
                 shared_intermediate_size: int = 0, router_activation: str = "softmax",
                 norm_topk_prob: bool = False, impl: str = "sparse"):
        super().__init__()
        if router_activation not in ("softmax", "sigmoid"):
            raise ValueError(f"router_activation must be 'softmax' or 'sigmoid', got {router_activation!r}")
        if impl not in ("sparse", "dense"):
            raise ValueError(f"moe impl must be 'sparse' or 'dense', got {impl!r}")
        self.num_experts, self.top_k = num_experts, top_k
        self.router_activation, self.norm_topk_prob, self.impl = router_activation, norm_topk_prob, impl
        self.gate = nn.Linear(hidden_size, num_experts, bias=False)   # the router
        self.experts = nn.ModuleList(SwiGLU(hidden_size, intermediate_size) for _ in range(num_experts))
        self.shared_expert = SwiGLU(hidden_size, shared_intermediate_size) if shared_intermediate_size else None

    def route(self, h: torch.Tensor):
        """h: [N, D] -> (probs [N, E] fp32, weights [N, k], expert ids [N, k])."""
        logits = self.gate(h).float()
        probs = logits.softmax(-1) if self.router_activation == "softmax" else logits.sigmoid()
        weights, idx = probs.topk(self.top_k, dim=-1)
        if self.norm_topk_prob:
            weights = weights / weights.sum(-1, keepdim=True)
        return probs, weights.to(h.dtype), idx

    def dispatch_sparse(self, h, weights, idx):
        out = torch.zeros_like(h)
        for e, expert in enumerate(self.experts):
            rows, slot = torch.where(idx == e)          # tokens routed to e, and which of their k slots
            y = expert(h[rows]) * weights[rows, slot].unsqueeze(-1)
            out = out.index_add(0, rows, y)
        return out

    def dispatch_dense(self, h, weights, idx):
        combine = torch.zeros(h.shape[0], self.num_experts, dtype=h.dtype, device=h.device)
        combine = combine.scatter(1, idx, weights)      # [N, E], zero off the top-k
        out = torch.zeros_like(h)
        for e, expert in enumerate(self.experts):
            out = out + combine[:, e:e + 1] * expert(h)
        return out

    def forward_with_aux(self, x: torch.Tensor, impl: str | None = None):
        shape = x.shape
        h = x.reshape(-1, shape[-1])
        probs, weights, idx = self.route(h)
        impl = impl or self.impl
        y = self.dispatch_sparse(h, weights, idx) if impl == "sparse" else self.dispatch_dense(h, weights, idx)
        if self.shared_expert is not None:
            y = y + self.shared_expert(h)
        return y.reshape(shape), load_balancing_loss(probs, idx, self.num_experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_aux(x)[0]
