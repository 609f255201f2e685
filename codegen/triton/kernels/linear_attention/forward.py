"""Launch the chunked linear-attention forward: gate cumsum, state pass, output pass."""
from __future__ import annotations

import torch
import triton

from .gate_cumsum import gate_cumsum_kernel
from .layout import Chunking, Sequences, check_inputs, dot_precision, pow2, sequences, state_tiles
from .output_fwd import output_fwd_kernel
from .state_fwd import state_fwd_kernel


def _dummy(like: torch.Tensor) -> torch.Tensor:
    return torch.empty(1, dtype=torch.float32, device=like.device)


def gate_cumsum(gate: torch.Tensor, gate_kind: str, K: int, seqs: Sequences, chunking: Chunking) -> torch.Tensor:
    """fp32 [B, Hkv, T, K]: chunk-local inclusive cumulative sums of the log-gates."""
    B, HKV, T = gate.shape[:3]
    b = torch.empty(B, HKV, T, K, dtype=torch.float32, device=gate.device)
    gate_cumsum_kernel[(seqs.num_chunks, HKV)](
        gate.contiguous(), b, seqs.cu_seqlens, seqs.chunk_indices, seqs.T,
        HKV=HKV, K=K, BT=chunking.BT, BK=pow2(K), SCALAR=gate_kind == "scalar", IS_VARLEN=seqs.varlen)
    return b


def chunk_states(k, v, b, initial_state, seqs: Sequences, H: int, chunking: Chunking, store_final: bool):
    """States at the start of every chunk, fp32 [num_chunks, H, K, V], and the final state [N, H, K, V]."""
    _, HKV, T, K = k.shape
    V = v.shape[-1]
    BK, BV = state_tiles(K, V, seqs.N * H)
    h = torch.empty(seqs.num_chunks, H, K, V, dtype=torch.float32, device=k.device)
    ht = torch.empty(seqs.N, H, K, V, dtype=torch.float32, device=k.device) if store_final else None
    grid = (triton.cdiv(K, BK), triton.cdiv(V, BV), seqs.N * H)
    state_fwd_kernel[grid](
        k, v, b if b is not None else _dummy(k), h,
        initial_state.contiguous() if initial_state is not None else _dummy(k), ht if ht is not None else _dummy(k),
        seqs.cu_seqlens, seqs.chunk_offsets, T,
        H=H, HKV=HKV, K=K, V=V, BT=chunking.BT, BK=BK, BV=BV, GATE=b is not None,
        USE_H0=initial_state is not None, STORE_HT=store_final, IS_VARLEN=seqs.varlen,
        PRECISION=dot_precision(k.dtype))
    return h, ht


def chunk_outputs(q, k, v, b, h, scale: float, seqs: Sequences, chunking: Chunking) -> torch.Tensor:
    B, H, T, K = q.shape
    HKV, V = k.shape[1], v.shape[-1]
    BV = min(pow2(V), 64)
    o = torch.empty(B, H, T, V, dtype=q.dtype, device=q.device)
    grid = (triton.cdiv(V, BV), seqs.num_chunks * (chunking.BT // chunking.BC), H)
    output_fwd_kernel[grid](
        q, k, v, b if b is not None else _dummy(q), h, o, seqs.cu_seqlens, seqs.chunk_indices, float(scale), T,
        H=H, HKV=HKV, K=K, V=V, BT=chunking.BT, BC=chunking.BC, BK=pow2(K), BV=BV, GATE=b is not None,
        IS_VARLEN=seqs.varlen, PRECISION=dot_precision(q.dtype))
    return o



def chunk_forward(q, k, v, gate=None, initial_state=None, *, gate_kind="none", scale=1.0,
                  output_final_state=False, cu_seqlens=None, chunking: Chunking = Chunking()):
    """o [B, H, T, V] (and the final state fp32 [N, H, K, V] when asked) of gated linear attention.

    Returns (o, final_state, saved) where `saved` holds what the backward reuses."""
    check_inputs(q, k, v, gate, gate_kind, initial_state, cu_seqlens)
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    seqs = sequences(q, cu_seqlens, chunking.BT)
    b = gate_cumsum(gate, gate_kind, q.shape[-1], seqs, chunking) if gate_kind != "none" else None
    h, ht = chunk_states(k, v, b, initial_state, seqs, q.shape[1], chunking, output_final_state)
    o = chunk_outputs(q, k, v, b, h, scale, seqs, chunking)
    return o, ht, (seqs, b, h)
