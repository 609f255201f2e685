"""The Triton linear-attention kernels (chunked forward + backward, recurrent
decode) against the IR's reference recurrence, run in Triton's interpreter on
CPU tensors when no GPU is present.

Oracle: spikec.ir.ops_fused.linear_attention_reference, a plain loop over
time, and torch autograd through it for the gradients. fp32 throughout;
tolerance atol = rtol = 2e-4 (the chunked form sums in another order).
Chunks of 32 rows in sub-blocks of 16 keep the interpreter fast while still
exercising several chunks, several sub-blocks and ragged tails.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spikec.codegen.triton import mode
from spikec.codegen.triton.kernels.linear_attention.api import linear_attention, recurrent_step
from spikec.codegen.triton.kernels.linear_attention.layout import Chunking, KernelArgumentError
from spikec.ir.ops_fused import linear_attention_reference

TOL = dict(atol=2e-4, rtol=2e-4)
SMALL = Chunking(BT=32, BC=16)
DEV = mode.device()


def _inputs(B, H, HKV, T, K, V, gate_kind, seed=0, gate_scale=1.0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, T, K, generator=g)
    k = torch.randn(B, HKV, T, K, generator=g) * 0.5
    v = torch.randn(B, HKV, T, V, generator=g)
    logits = torch.randn(B, HKV, T, K, generator=g) * 2
    gate = {"none": None, "scalar": F.logsigmoid(logits[..., 0]) * gate_scale,
            "channel": F.logsigmoid(logits) * gate_scale}[gate_kind]
    h0 = torch.randn(B, H, K, V, generator=g)
    return [t if t is None else t.to(DEV) for t in (q, k, v, gate, h0)]


@pytest.mark.parametrize("gate_kind", ["none", "scalar", "channel"])
@pytest.mark.parametrize("T", [1, 45])
def test_forward_matches_reference(gate_kind, T):
    q, k, v, gate, h0 = _inputs(2, 2, 1, T, 16, 24, gate_kind)
    o, ht = linear_attention(q, k, v, gate, h0, gate_kind=gate_kind, scale=0.3, output_final_state=True,
                             chunking=SMALL)
    o_ref, ht_ref = linear_attention_reference(q, k, v, gate, h0, gate_kind=gate_kind, scale=0.3,
                                               output_final_state=True)
    torch.testing.assert_close(o, o_ref, **TOL)
    torch.testing.assert_close(ht, ht_ref, **TOL)


def test_forward_grouped_query_heads_no_initial_state():
    q, k, v, gate, _ = _inputs(1, 4, 2, 37, 16, 16, "channel", seed=1)
    o = linear_attention(q, k, v, gate, gate_kind="channel", scale=0.25, chunking=SMALL)
    torch.testing.assert_close(o, linear_attention_reference(q, k, v, gate, gate_kind="channel", scale=0.25), **TOL)


def _grads(fn, inputs, do, dht):
    leaves = [t.detach().clone().requires_grad_() if t is not None else None for t in inputs]
    o, ht = fn(*leaves)
    loss = (o * do).sum() + (ht * dht).sum()
    live = [t for t in leaves if t is not None]
    return torch.autograd.grad(loss, live)


@pytest.mark.parametrize("gate_kind,H,HKV", [("none", 2, 1), ("scalar", 2, 1), ("channel", 4, 2)])
def test_backward_matches_autograd_of_reference(gate_kind, H, HKV):
    q, k, v, gate, h0 = _inputs(1, H, HKV, 40, 16, 16, gate_kind, seed=2)
    do = torch.randn(1, H, 40, 16).to(DEV)
    dht = torch.randn(1, H, 16, 16).to(DEV)

    def strided(x):             # same values, non-contiguous memory: the launchers must not assume a layout
        return x.transpose(-1, -2).contiguous().transpose(-1, -2)

    def ours(q, k, v, gate, h0):
        return linear_attention(strided(q), strided(k), strided(v), gate, h0, gate_kind=gate_kind, scale=0.3,
                                output_final_state=True, chunking=SMALL)

    def ref(q, k, v, gate, h0):
        return linear_attention_reference(q, k, v, gate, h0, gate_kind=gate_kind, scale=0.3,
                                          output_final_state=True)

    for got, want in zip(_grads(ours, (q, k, v, gate, h0), do, dht), _grads(ref, (q, k, v, gate, h0), do, dht)):
        torch.testing.assert_close(got, want, **TOL)


def test_wide_heads_take_the_row_by_row_diagonal():
    """Key blocks wider than 32 compute the diagonal sub-block one row at a time
    (narrower ones all pairs at once, as in the tests above)."""
    q, k, v, gate, h0 = _inputs(1, 1, 1, 20, 64, 64, "channel", seed=6)
    do, dht = torch.randn(1, 1, 20, 64).to(DEV), torch.randn(1, 1, 64, 64).to(DEV)

    def ours(q, k, v, gate, h0):
        return linear_attention(q, k, v, gate, h0, gate_kind="channel", scale=0.125, output_final_state=True,
                                chunking=SMALL)

    def ref(q, k, v, gate, h0):
        return linear_attention_reference(q, k, v, gate, h0, gate_kind="channel", scale=0.125,
                                          output_final_state=True)

    for got, want in zip(ours(q, k, v, gate, h0), ref(q, k, v, gate, h0)):
        torch.testing.assert_close(got, want, **TOL)
    for got, want in zip(_grads(ours, (q, k, v, gate, h0), do, dht), _grads(ref, (q, k, v, gate, h0), do, dht)):
        torch.testing.assert_close(got, want, **TOL)


def test_packed_sequences_match_each_sequence_alone():
    lengths = [5, 35, 1]                   # ragged: shorter than a sub-block, over a chunk, a single row
    T = sum(lengths)
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    q, k, v, gate, _ = _inputs(1, 1, 1, T, 16, 16, "channel", seed=3)
    h0 = torch.randn(len(lengths), 1, 16, 16).to(DEV)
    do = torch.randn(1, 1, T, 16).to(DEV)
    dht = torch.randn(len(lengths), 1, 16, 16).to(DEV)

    def ours(q, k, v, gate, h0):
        return linear_attention(q, k, v, gate, h0, gate_kind="channel", scale=0.5, output_final_state=True,
                                cu_seqlens=cu.to(DEV), chunking=SMALL)

    def ref(q, k, v, gate, h0):     # each sequence separately, concatenated
        outs, finals = [], []
        for n in range(len(lengths)):
            s = slice(int(cu[n]), int(cu[n + 1]))
            o, ht = linear_attention_reference(q[:, :, s], k[:, :, s], v[:, :, s], gate[:, :, s], h0[n:n + 1],
                                               gate_kind="channel", scale=0.5, output_final_state=True)
            outs.append(o)
            finals.append(ht)
        return torch.cat(outs, 2), torch.cat(finals, 0)

    o, ht = ours(q, k, v, gate, h0)
    o_ref, ht_ref = ref(q, k, v, gate, h0)
    torch.testing.assert_close(o, o_ref, **TOL)
    torch.testing.assert_close(ht, ht_ref, **TOL)
    for got, want in zip(_grads(ours, (q, k, v, gate, h0), do, dht), _grads(ref, (q, k, v, gate, h0), do, dht)):
        torch.testing.assert_close(got, want, **TOL)


def test_strong_decay_stays_finite_and_exact():
    """Per-step log-gates down to about -60: products of decays over a chunk
    underflow fp32 (exp(-1900)), so a kernel that factors exp(b_t) exp(-b_s)
    overflows. Oracle: the reference recurrence in float64."""
    q, k, v, gate, h0 = _inputs(1, 1, 1, 40, 16, 16, "channel", seed=4, gate_scale=12.0)
    assert float(gate.min()) < -30
    o, ht = linear_attention(q, k, v, gate, h0, gate_kind="channel", output_final_state=True, chunking=SMALL)
    o_ref, ht_ref = linear_attention_reference(*(t.double() for t in (q, k, v)), gate.double(), h0.double(),
                                               gate_kind="channel", output_final_state=True)
    assert torch.isfinite(o).all() and torch.isfinite(ht).all()
    torch.testing.assert_close(o, o_ref.float(), **TOL)
    torch.testing.assert_close(ht, ht_ref.float(), **TOL)
    do = torch.randn_like(o)
    q_, k_, v_, g_ = (t.clone().requires_grad_() for t in (q, k, v, gate))
    grads = torch.autograd.grad((linear_attention(q_, k_, v_, g_, gate_kind="channel", chunking=SMALL) * do).sum(),
                                [q_, k_, v_, g_])
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("gate_kind", ["none", "scalar", "channel"])
def test_recurrent_step_updates_state_in_place(gate_kind):
    q, k, v, gate, h0 = _inputs(2, 4, 2, 3, 16, 24, gate_kind, seed=5)
    state = h0.clone()
    before = state.data_ptr()
    outs = [recurrent_step(q[:, :, t:t + 1], k[:, :, t:t + 1], v[:, :, t:t + 1],
                           None if gate is None else gate[:, :, t:t + 1], state, gate_kind=gate_kind, scale=0.5)
            for t in range(3)]
    o_ref, ht_ref = linear_attention_reference(q, k, v, gate, h0, gate_kind=gate_kind, scale=0.5,
                                               output_final_state=True)
    assert state.data_ptr() == before
    torch.testing.assert_close(torch.cat(outs, 2), o_ref, **TOL)
    torch.testing.assert_close(state, ht_ref, **TOL)


def test_bad_arguments_are_named():
    q, k, v, gate, h0 = _inputs(1, 2, 1, 8, 16, 16, "channel")
    with pytest.raises(KernelArgumentError, match="key_tied"):
        linear_attention(q, k, v, gate, gate_kind="key_tied")
    with pytest.raises(KernelArgumentError, match="gate of shape"):
        linear_attention(q, k, v, gate[..., 0], gate_kind="channel")
    with pytest.raises(KernelArgumentError, match="cu_seqlens must rise"):
        linear_attention(q, k, v, cu_seqlens=torch.tensor([0, 3, 5], dtype=torch.int32))
