"""Linear attention for callers: autograd-aware chunked form and in-place decode step.

    o = linear_attention(q, k, v, gate, initial_state, gate_kind="channel", scale=0.125)
    o, final = linear_attention(..., output_final_state=True, cu_seqlens=offsets)
    o = recurrent_step(q, k, v, gate, state, gate_kind="channel", scale=0.125)   # updates `state`

Same semantics as spikec.ir.ops_fused.linear_attention_reference; gate is a
log-decay (scalar [B, Hkv, T] or per key channel [B, Hkv, T, K]).
"""
from __future__ import annotations

import torch
import triton

from .backward import chunk_backward
from .forward import chunk_forward
from .layout import Chunking, KernelArgumentError, check_inputs, pow2
from .recurrent_step import recurrent_step_kernel


class LinearAttentionFunction(torch.autograd.Function):
    """Chunked forward kernels; backward by the chunked backward kernels."""

    @staticmethod
    def forward(ctx, q, k, v, gate, initial_state, gate_kind, scale, output_final_state, cu_seqlens, chunking):
        o, ht, (seqs, b, _h) = chunk_forward(q, k, v, gate, initial_state, gate_kind=gate_kind, scale=scale,
                                             output_final_state=output_final_state, cu_seqlens=cu_seqlens,
                                             chunking=chunking)
        ctx.save_for_backward(q, k, v, gate, initial_state, b, ht)
        ctx.meta = (gate_kind, scale, seqs, chunking)
        if output_final_state:
            return o, ht
        return o

    @staticmethod
    def backward(ctx, do, *rest):
        q, k, v, gate, h0, b, ht = ctx.saved_tensors
        gate_kind, scale, seqs, chunking = ctx.meta
        dht = rest[0] if rest else None
        if do is None:
            do = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)
        dq, dk, dv, dg, dh0 = chunk_backward(do, q, k, v, gate, h0, dht, gate_kind=gate_kind, scale=scale,
                                             seqs=seqs, b=b, final_state=ht, chunking=chunking)
        if dh0 is not None:
            dh0 = dh0.to(h0.dtype)
        return dq, dk, dv, dg, dh0, None, None, None, None, None


def linear_attention(q, k, v, gate=None, initial_state=None, *, gate_kind="none", scale=1.0,
                     output_final_state=False, cu_seqlens=None, chunking: Chunking | None = None):
    """Gated linear attention by the chunked Triton kernels (differentiable)."""
    chunking = chunking or Chunking.for_length(q.shape[2])
    if gate_kind == "none":
        gate = None
    return LinearAttentionFunction.apply(q, k, v, gate, initial_state, gate_kind, float(scale),
                                         bool(output_final_state), cu_seqlens, chunking)


def recurrent_step(q, k, v, gate, state, *, gate_kind="none", scale=1.0):
    """Run T (usually 1) new tokens through the recurrence, updating `state`
    [B, H, K, V] in place; returns o [B, H, T, V]."""
    check_inputs(q, k, v, gate, gate_kind, None, None)
    B, H, T, K = q.shape
    HKV, V = k.shape[1], v.shape[-1]
    if tuple(state.shape) != (B, H, K, V) or not state.is_contiguous():
        raise KernelArgumentError(f"state must be a contiguous [{B}, {H}, {K}, {V}] tensor, "
                                  f"got {list(state.shape)}")
    o = torch.empty(B, H, T, V, dtype=q.dtype, device=q.device)
    gated = gate_kind != "none"
    BV = min(pow2(V), 64)
    recurrent_step_kernel[(triton.cdiv(V, BV), B * H)](
        q.contiguous(), k.contiguous(), v.contiguous(),
        gate.contiguous() if gated else torch.empty(1, device=q.device), state, o, float(scale), T,
        H=H, HKV=HKV, K=K, V=V, BK=pow2(K), BV=BV, GATE=gated, SCALAR=gate_kind == "scalar")
    return o
