"""The Triton banded flash-attention kernels (sliding window and causal,
forward and backward) against the IR's masked-softmax reference, in Triton's
interpreter on CPU tensors when no GPU is present.

Oracle: spikec.ir.ops_fused._softmax_attention (dense scores, explicit band
mask) and torch autograd through it. fp32; atol = rtol = 1e-4.
"""
from __future__ import annotations

import pytest
import torch

from spikec.codegen.triton import mode
from spikec.codegen.triton.kernels.attention.api import attention, sliding_window_attention
from spikec.ir.ops_fused import _softmax_attention

TOL = dict(atol=1e-4, rtol=1e-4)
DEV = mode.device()


def _qkv(B, H, HKV, Tq, Tk, D, DV, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, Tq, D, generator=g).to(DEV), torch.randn(B, HKV, Tk, D, generator=g).to(DEV),
            torch.randn(B, HKV, Tk, DV, generator=g).to(DEV))


def _check(fn, ref, q, k, v):
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    o = fn(*leaves)
    o_ref = ref(q, k, v)
    torch.testing.assert_close(o, o_ref, **TOL)
    do = torch.randn_like(o)
    got = torch.autograd.grad((o * do).sum(), leaves)
    refs = [t.clone().requires_grad_() for t in (q, k, v)]
    want = torch.autograd.grad((ref(*refs) * do).sum(), refs)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("B,H,HKV,Tq,Tk,window", [
    (1, 2, 1, 45, 45, 7),       # grouped-query heads, T not a multiple of the block, window < block
    (2, 1, 1, 70, 70, 40),      # window over more than one key block
    (1, 2, 2, 3, 40, 9),        # decode-style: the queries are the last 3 positions
    (1, 1, 1, 1, 1, 4),         # T = 1
])
def test_sliding_window_matches_reference(B, H, HKV, Tq, Tk, window):
    q, k, v = _qkv(B, H, HKV, Tq, Tk, 16, 24)
    _check(lambda q, k, v: sliding_window_attention(q, k, v, window, 0.3),
           lambda q, k, v: _softmax_attention(q, k, v, 0.3, True, window), q, k, v)


@pytest.mark.parametrize("causal", [True, False])
def test_attention_matches_reference(causal):
    q, k, v = _qkv(1, 2, 1, 37, 37, 16, 16, seed=1)
    _check(lambda q, k, v: attention(q, k, v, 0.25, causal),
           lambda q, k, v: _softmax_attention(q, k, v, 0.25, causal, None), q, k, v)


def test_only_key_blocks_inside_the_window_are_visited():
    """Poison v in the first key block (32 rows). A query block whose band starts
    past it must not read it (NaN would propagate through p @ v even with p = 0);
    rows whose window covers it legitimately turn NaN."""
    q, k, v = _qkv(1, 1, 1, 128, 128, 16, 16, seed=2)
    v[:, :, :32] = float("nan")
    o = sliding_window_attention(q, k, v, window=8, scale=0.25)
    assert torch.isnan(o[0, 0, :32]).all()                  # these rows see the poisoned keys
    assert torch.isfinite(o[0, 0, 64:]).all()               # blocks from 64 start their band at key block 32
    ref = _softmax_attention(q[:, :, 64:], k, torch.nan_to_num(v), 0.25, True, 8)
    torch.testing.assert_close(o[:, :, 64:], ref, **TOL)
