"""Softmax attention for callers (differentiable): sliding-window and causal.

    o = sliding_window_attention(q, k, v, window=4096, scale=0.125)
    o = attention(q, k, v, scale=0.125, causal=True)

Head-first q [B, H, Tq, D], k [B, Hkv, Tk, D], v [B, Hkv, Tk, Dv]; queries are
the last Tq positions (Tq < Tk during decode). Same semantics as the
`sliding_window_attention` / `attention` ops of spikec.ir.ops_fused.
"""
from __future__ import annotations

import torch
import triton

from ..linear_attention.layout import KernelArgumentError, MAX_HEAD_DIM, dot_precision, pow2
from .bwd import attention_delta_kernel, attention_dkdv_kernel, attention_dq_kernel
from .fwd import attention_fwd_kernel

BLOCK_M = 32
BLOCK_N = 32


def _check(q, k, v):
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise KernelArgumentError("q, k, v must be head-first [B, H, T, D] tensors")
    B, H, Tq, D = q.shape
    HKV, Tk = k.shape[1], k.shape[2]
    if k.shape != (B, HKV, Tk, D) or v.shape[:3] != (B, HKV, Tk) or H % HKV or Tq > Tk:
        raise KernelArgumentError(f"shapes q {list(q.shape)}, k {list(k.shape)}, v {list(v.shape)} do not fit "
                                  f"[B, H, Tq, D], [B, Hkv, Tk, D], [B, Hkv, Tk, Dv] with Tq <= Tk, H % Hkv == 0")
    if max(D, v.shape[-1]) > MAX_HEAD_DIM:
        raise KernelArgumentError(f"head dim {max(D, v.shape[-1])} > {MAX_HEAD_DIM}")


def _meta(q, k, v, window, causal):
    B, H, Tq, D = q.shape
    return dict(H=H, HKV=k.shape[1], D=D, DV=v.shape[-1], BM=BLOCK_M, BN=BLOCK_N, BD=pow2(D),
                BDV=pow2(v.shape[-1]), CAUSAL=bool(causal), PRECISION=dot_precision(q.dtype))


def attention_forward(q, k, v, scale, window, causal):
    B, H, Tq, _ = q.shape
    Tk = k.shape[2]
    o = torch.empty(B, H, Tq, v.shape[-1], dtype=q.dtype, device=q.device)
    lse = torch.empty(B, H, Tq, dtype=torch.float32, device=q.device)
    attention_fwd_kernel[(triton.cdiv(Tq, BLOCK_M), B * H)](
        q, k, v, o, lse, float(scale), Tq, Tk, int(window or 0), **_meta(q, k, v, window, causal))
    return o, lse


def attention_backward(do, q, k, v, o, lse, scale, window, causal):
    B, H, Tq, D = q.shape
    HKV, Tk, DV = k.shape[1], k.shape[2], v.shape[-1]
    do = do.contiguous()
    delta = torch.empty(B, H, Tq, dtype=torch.float32, device=q.device)
    attention_delta_kernel[(triton.cdiv(Tq, BLOCK_M), B * H)](o, do, delta, Tq, DV=DV, BM=BLOCK_M, BDV=pow2(DV))
    dq = torch.empty(B, H, Tq, D, dtype=torch.float32, device=q.device)
    dk = torch.empty(B, H, Tk, D, dtype=torch.float32, device=q.device)      # per query head
    dv = torch.empty(B, H, Tk, DV, dtype=torch.float32, device=q.device)     # per query head
    meta = _meta(q, k, v, window, causal)
    attention_dkdv_kernel[(triton.cdiv(Tk, BLOCK_N), B * H)](
        q, k, v, do, lse, delta, dk, dv, float(scale), Tq, Tk, int(window or 0), **meta)
    attention_dq_kernel[(triton.cdiv(Tq, BLOCK_M), B * H)](
        q, k, v, do, lse, delta, dq, float(scale), Tq, Tk, int(window or 0), **meta)
    if H != HKV:
        dk = dk.view(B, HKV, H // HKV, Tk, D).sum(2)
        dv = dv.view(B, HKV, H // HKV, Tk, DV).sum(2)
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype)


class AttentionFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, scale, window, causal):
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        o, lse = attention_forward(q, k, v, scale, window, causal)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.meta = (scale, window, causal)
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, o, lse = ctx.saved_tensors
        dq, dk, dv = attention_backward(do, q, k, v, o, lse, *ctx.meta)
        return dq, dk, dv, None, None, None


def sliding_window_attention(q, k, v, window: int, scale: float = 1.0):
    """Causal softmax attention over the last `window` keys (i - window < j <= i)."""
    _check(q, k, v)
    if int(window) < 1:
        raise KernelArgumentError(f"window must be >= 1, got {window}")
    return AttentionFunction.apply(q, k, v, float(scale), int(window), True)


def attention(q, k, v, scale: float = 1.0, causal: bool = True):
    """Softmax attention, causal or full."""
    _check(q, k, v)
    return AttentionFunction.apply(q, k, v, float(scale), 0, bool(causal))
