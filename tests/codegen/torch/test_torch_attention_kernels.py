"""The torch target's softmax-attention kernels against the IR reference (a dense
masked softmax): sliding_window_attention (banded, blocked, handwritten backward)
and attention (SDPA, decode tail). Bounds: float64 within 1e-10 of the reference,
forward and gradients (autograd through the reference); gradcheck of the banded
backward (eps 1e-6, atol 1e-7); memory: no intermediate of the banded kernel,
forward or backward, is larger than 2·T·(window + block) per head."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from spikec.codegen.torch.kernels.attention import attention
from spikec.codegen.torch.kernels.sliding_window_attention import sliding_window_attention
from spikec.codegen.torch.kernels.sliding_window_attention.banded import BLOCK
from spikec.ir import get_op

TOL = 1e-10


def qkv(B=1, H=4, Hkv=2, Tq=10, Tk=None, D=8, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    Tk = Tq if Tk is None else Tk
    return (torch.randn(B, H, Tq, D, generator=gen, dtype=dtype),
            torch.randn(B, Hkv, Tk, D, generator=gen, dtype=dtype),
            torch.randn(B, Hkv, Tk, D, generator=gen, dtype=dtype))


def reference(op, *args, **kw):
    return get_op(op).impl(*args, **kw)


def check_forward_and_grads(fn, ref_fn, q, k, v):
    xs = [x.clone().requires_grad_() for x in (q, k, v)]
    ys = [x.clone().requires_grad_() for x in (q, k, v)]
    got, want = fn(*xs), ref_fn(*ys)
    assert (got - want).abs().max() <= TOL
    do = torch.randn_like(want)
    (got * do).sum().backward()
    (want * do).sum().backward()
    for a, b in zip(xs, ys):
        assert (a.grad - b.grad).abs().max() <= TOL


@pytest.mark.parametrize("T,window", [(1, 1), (5, 1), (10, 3), (70, 5), (130, 64), (20, 19), (9, 32)])
def test_sliding_window_matches_reference(T, window):
    # T not a multiple of the block (64); window 1; window >= T (falls back to full causal)
    q, k, v = qkv(Tq=T, seed=T)
    check_forward_and_grads(lambda *a: sliding_window_attention(*a, window=window, scale=0.3),
                            lambda *a: reference("sliding_window_attention", *a, window=window, scale=0.3), q, k, v)


@pytest.mark.parametrize("Tq,Tk,window", [(1, 40, 6), (3, 40, 6), (2, 5, 8)])
def test_sliding_window_decode_tail(Tq, Tk, window):
    # fewer queries than keys: the queries are the last Tq positions
    q, k, v = qkv(Tq=Tq, Tk=Tk)
    check_forward_and_grads(lambda *a: sliding_window_attention(*a, window=window, scale=0.3),
                            lambda *a: reference("sliding_window_attention", *a, window=window, scale=0.3), q, k, v)


@pytest.mark.parametrize("Tq,Tk,causal", [(1, 1, True), (17, 17, True), (17, 17, False), (3, 12, True), (4, 9, False)])
def test_attention_matches_reference(Tq, Tk, causal):
    q, k, v = qkv(Tq=Tq, Tk=Tk)
    check_forward_and_grads(lambda *a: attention(*a, scale=0.4, causal=causal),
                            lambda *a: reference("attention", *a, scale=0.4, causal=causal), q, k, v)


class _LargestTensor(TorchDispatchMode):
    """Records the largest number of elements any op produces."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_banded_memory_is_linear_in_T_times_window():
    B, H, T, D, window = 1, 2, 1024, 8, 16
    q, k, v = (x.float().requires_grad_() for x in qkv(B=B, H=H, Hkv=H, Tq=T, D=D))
    with _LargestTensor() as mode:
        sliding_window_attention(q, k, v, window=window, scale=0.3).sum().backward()
    band = B * H * T * (BLOCK + window)
    assert mode.largest <= 2 * band, (mode.largest, band)
    assert mode.largest < B * H * T * T // 4             # far below the dense [T, T] scores


@pytest.mark.parametrize("T,window,block", [(1, 1, 4), (10, 3, 4), (13, 6, 4), (9, 2, 64)])
def test_banded_backward_gradcheck_f64(T, window, block):
    # the handwritten backward (recomputed P, fold of the window gradients), several blocks
    from spikec.codegen.torch.kernels.sliding_window_attention.banded import banded_attention
    q, k, v = (x.requires_grad_() for x in qkv(H=2, Hkv=2, Tq=T, D=3, seed=T))
    assert torch.autograd.gradcheck(lambda *a: banded_attention(*a, window, 0.7, block), (q, k, v),
                                    eps=1e-6, atol=1e-7)
