"""The fused ops as torch.library custom ops in the "spikec" namespace (prefixed mlir_ so they
cannot clash with another backend's ops). They stay single nodes through torch.export (their
fake impls give the shapes) and become loop-free aten code through the decomposition table
that torch-mlir's `export_and_import` applies."""
from __future__ import annotations

from typing import Optional

import torch

from .chunked import linear_attention_chunked, masked_attention


@torch.library.custom_op("spikec::mlir_linear_attention", mutates_args=())
def mlir_linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gate: Optional[torch.Tensor],
                          initial_state: Optional[torch.Tensor], gate_kind: str, scale: float,
                          chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    return linear_attention_chunked(q, k, v, gate, initial_state, gate_kind, scale, chunk)


@mlir_linear_attention.register_fake
def _(q, k, v, gate, initial_state, gate_kind, scale, chunk):
    B, H, T, K = q.shape
    return q.new_empty((B, H, T, v.shape[-1])), q.new_empty((B, H, K, v.shape[-1]))


@torch.library.custom_op("spikec::mlir_attention", mutates_args=())
def mlir_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, causal: bool) -> torch.Tensor:
    return masked_attention(q, k, v, scale, causal, 0)


@mlir_attention.register_fake
def _(q, k, v, scale, causal):
    return q.new_empty((*q.shape[:-1], v.shape[-1]))


@torch.library.custom_op("spikec::mlir_sliding_window_attention", mutates_args=())
def mlir_sliding_window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int,
                                  scale: float) -> torch.Tensor:
    return masked_attention(q, k, v, scale, True, window)


@mlir_sliding_window_attention.register_fake
def _(q, k, v, window, scale):
    return q.new_empty((*q.shape[:-1], v.shape[-1]))


DECOMPOSITIONS = {
    torch.ops.spikec.mlir_linear_attention.default:
        lambda q, k, v, gate, s0, gate_kind, scale, chunk: linear_attention_chunked(q, k, v, gate, s0, gate_kind,
                                                                                     scale, chunk),
    torch.ops.spikec.mlir_attention.default:
        lambda q, k, v, scale, causal: masked_attention(q, k, v, scale, causal, 0),
    torch.ops.spikec.mlir_sliding_window_attention.default:
        lambda q, k, v, window, scale: masked_attention(q, k, v, scale, True, window),
}


def decomposition_table() -> dict:
    """torch-mlir's default decompositions plus the fused ops' loop-free forms."""
    from torch_mlir.extras.fx_decomp_util import get_decomposition_table
    table = dict(get_decomposition_table())
    table.update(DECOMPOSITIONS)
    return table
