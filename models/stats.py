"""Parameter statistics for ``spikec inspect --stats``."""
from __future__ import annotations

from torch import nn

from .moe import SparseMoE


def param_counts(model: nn.Module) -> dict[str, int]:
    """{"total": every parameter once (tied weights once), "active": parameters used per token}.

    Active counts, in each MoE layer, only the top-k routed experts and the shared expert
    (router included); everything else is used by every token. Works on the meta device.
    """
    total = sum(p.numel() for p in model.parameters())   # parameters() already de-duplicates ties
    inactive = 0
    for m in model.modules():
        if isinstance(m, SparseMoE):
            per_expert = sum(p.numel() for p in m.experts[0].parameters())
            inactive += (m.num_experts - m.top_k) * per_expert
    return {"total": total, "active": total - inactive}
