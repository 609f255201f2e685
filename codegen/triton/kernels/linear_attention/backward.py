"""Launch the chunked linear-attention backward.

Recomputes the chunk states (cheaper than keeping them), then: the backward
state pass (dH per chunk, dh0), dq/dk and dv in parallel over sub-blocks, and
the gate gradient as a reverse cumulative sum. Gradients of k and v are
computed per query head and summed over each group on the host.
"""
from __future__ import annotations

import torch
import triton

from .forward import _dummy, chunk_states, gate_cumsum
from .grad_gate import grad_gate_kernel
from .grad_qk import grad_qk_kernel
from .grad_v import grad_v_kernel
from .layout import Chunking, Sequences, dot_precision, pow2, state_tiles
from .state_bwd import state_bwd_kernel


def _group_sum(x: torch.Tensor, HKV: int) -> torch.Tensor:
    B, H, T, D = x.shape
    return x if H == HKV else x.view(B, HKV, H // HKV, T, D).sum(2)


def chunk_backward(do, q, k, v, gate, initial_state, final_state_grad, *, gate_kind="none", scale=1.0,
                   seqs: Sequences, b=None, h=None, final_state=None, chunking: Chunking = Chunking()):
    """(dq, dk, dv, dgate, dh0) for the forward `chunk_forward(q, k, v, gate, initial_state, ...)`.

    `b` and `h` (gate cumsums, chunk states) are recomputed when not given;
    `final_state` is needed only for the gate gradient with a final-state gradient."""
    B, H, T, K = q.shape
    HKV, V = k.shape[1], v.shape[-1]
    q, k, v, do = q.contiguous(), k.contiguous(), v.contiguous(), do.contiguous()
    gated = gate_kind != "none"
    if gated and b is None:
        b = gate_cumsum(gate, gate_kind, K, seqs, chunking)
    use_dht = final_state_grad is not None
    if h is None or (gated and use_dht and final_state is None):
        h, final_state = chunk_states(k, v, b, initial_state, seqs, H, chunking, store_final=gated and use_dht)
    dummy = _dummy(q)
    prec = dot_precision(q.dtype)
    BT, BC = chunking.BT, chunking.BC

    # gradient of the state at the end of every chunk, and of the initial state
    BK, BV = state_tiles(K, V, seqs.N * H)
    dh = torch.empty_like(h)
    dh0 = torch.empty(seqs.N, H, K, V, dtype=torch.float32, device=q.device) if initial_state is not None else None
    state_bwd_kernel[(triton.cdiv(K, BK), triton.cdiv(V, BV), seqs.N * H)](
        q, do, b if gated else dummy, dh, final_state_grad.contiguous() if use_dht else dummy,
        dh0 if dh0 is not None else dummy, seqs.cu_seqlens, seqs.chunk_offsets, float(scale), T,
        H=H, HKV=HKV, K=K, V=V, BT=BT, BK=BK, BV=BV, GATE=gated, USE_DHT=use_dht, STORE_DH0=dh0 is not None,
        IS_VARLEN=seqs.varlen, PRECISION=prec)

    subblocks = seqs.num_chunks * (BT // BC)
    dq = torch.empty(B, H, T, K, dtype=torch.float32, device=q.device)
    dk = torch.empty(B, H, T, K, dtype=torch.float32, device=q.device)     # per query head
    dv = torch.empty(B, H, T, V, dtype=torch.float32, device=q.device)     # per query head
    BKq = min(pow2(K), 64)
    grad_qk_kernel[(triton.cdiv(K, BKq), subblocks, H)](
        q, k, v, b if gated else dummy, h, do, dh, dq, dk, seqs.cu_seqlens, seqs.chunk_indices, float(scale), T,
        H=H, HKV=HKV, K=K, V=V, BT=BT, BC=BC, BK=BKq, BV=pow2(V), GATE=gated, IS_VARLEN=seqs.varlen,
        PRECISION=prec)
    BVv = min(pow2(V), 64)
    grad_v_kernel[(triton.cdiv(V, BVv), subblocks, H)](
        q, k, b if gated else dummy, do, dh, dv, seqs.cu_seqlens, seqs.chunk_indices, float(scale), T,
        H=H, HKV=HKV, K=K, V=V, BT=BT, BC=BC, BK=pow2(K), BV=BVv, GATE=gated, IS_VARLEN=seqs.varlen,
        PRECISION=prec)

    dgate = None
    if gated:
        dgate = torch.empty(gate.shape, dtype=torch.float32, device=q.device)
        dg_final = None
        if use_dht:   # d/dB_T of the final state: rowsum(h_T * dh_T), summed over each query-head group
            per_head = (final_state * final_state_grad.float()).sum(-1)            # [N, H, K]
            dg_final = per_head.view(seqs.N, HKV, H // HKV, K).sum(2).contiguous()
        grad_gate_kernel[(seqs.N * HKV,)](
            q, k, dq, dk, dgate, dg_final if use_dht else dummy, seqs.cu_seqlens, seqs.chunk_offsets, T,
            H=H, HKV=HKV, K=K, BT=BT, BK=pow2(K), SCALAR=gate_kind == "scalar", USE_FINAL=use_dht,
            IS_VARLEN=seqs.varlen)
        dgate = dgate.to(gate.dtype)

    dk, dv = _group_sum(dk, HKV), _group_sum(dv, HKV)
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), dgate, dh0
