"""The torch target's linear-attention kernels: naive (quadratic parallel), chunk
(handwritten backward) and fused_recurrent (step form) against each other and
against the IR reference `linear_attention_reference` (a loop over time).

Bounds: float64 forward within 1e-10 of the reference; float64 gradients by
torch.autograd.gradcheck (eps 1e-6, atol 1e-5); float32 outputs and gradients
within a relative error (max |a - b| / max |b|) of 2e-5 of float64 ground truth.
Lengths are not multiples of the chunk, including T = 1.
"""
import pytest
import torch
import torch.nn.functional as F

from spikec.codegen.torch.kernels.linear_attention import (RECURRENT_MAX_T, chunk_linear_attention,
                                                           fused_recurrent_linear_attention, linear_attention)
from spikec.ir.ops_fused import GATE_KINDS, linear_attention_reference

F64_TOL = 1e-10
F32_REL = 2e-5


def rel_err(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30)).item()


def make(gate_kind, B=1, H=2, Hkv=1, T=5, K=4, V=3, dtype=torch.float64, seed=0, strong_decay=False):
    """IR-op inputs: q [B,H,T,K], k/v/gate with Hkv heads (GQA), an initial state."""
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=gen, dtype=dtype)  # noqa: E731
    q, k, v = r(B, H, T, K), r(B, Hkv, T, K), r(B, Hkv, T, V)
    gate = None
    if gate_kind == "scalar":
        gate = F.logsigmoid(r(B, Hkv, T))
    elif gate_kind == "channel":
        gate = F.logsigmoid(r(B, Hkv, T, K) - (6.0 if strong_decay else 0.0))
    elif gate_kind == "key_tied":
        k = torch.sigmoid(k)                 # 1 - k in (0, 1): a log decay exists
    return q, k, v, gate, r(B, H, K, V)


def canonical(q, k, v, gate, gate_kind):
    """The kernels' form: same heads, log decay g."""
    H = q.shape[1]
    rep = lambda x: x if x is None else x.repeat_interleave(H // x.shape[1], dim=1)  # noqa: E731
    k, v, gate = rep(k), rep(v), rep(gate)
    g = {"none": None, "scalar": gate[..., None] if gate is not None else None, "channel": gate,
         "key_tied": torch.log1p(-k)}[gate_kind]
    return q, k, v, g


# -- forward: every mode equals the reference ---------------------------------------------------
@pytest.mark.parametrize("gate_kind", GATE_KINDS)
@pytest.mark.parametrize("T", [1, 7, 23, 70])
@pytest.mark.parametrize("mode", ["chunk", "recurrent", "naive"])
def test_forward_matches_reference_f64(gate_kind, T, mode):
    q, k, v, gate, s0 = make(gate_kind, B=2, H=4, Hkv=2, T=T, seed=T)
    want_o, want_s = linear_attention_reference(q, k, v, gate, s0, gate_kind=gate_kind, scale=0.5,
                                                output_final_state=True)
    o, s = linear_attention(q, k, v, gate, s0, gate_kind=gate_kind, scale=0.5, output_final_state=True, mode=mode)
    assert (o - want_o).abs().max() <= F64_TOL and (s - want_s).abs().max() <= F64_TOL


@pytest.mark.parametrize("gate_kind", GATE_KINDS)
def test_forward_f32_within_bound_of_reference(gate_kind):
    q, k, v, gate, s0 = make(gate_kind, B=1, H=4, Hkv=2, T=150, K=16, V=8, seed=3)
    want = linear_attention_reference(q, k, v, gate, s0, gate_kind=gate_kind, scale=0.25, output_final_state=True)
    f32 = [x.float() if x is not None else None for x in (q, k, v, gate, s0)]
    got = linear_attention(*f32, gate_kind=gate_kind, scale=0.25, output_final_state=True, mode="chunk")
    assert got[0].dtype == torch.float32
    assert rel_err(got[0], want[0]) <= F32_REL and rel_err(got[1], want[1]) <= F32_REL


def test_auto_mode_picks_recurrent_for_decode_and_chunk_for_prefill(monkeypatch):
    import spikec.codegen.torch.kernels.linear_attention as la
    calls = []
    monkeypatch.setattr(la, "fused_recurrent_linear_attention",
                        lambda *a, **kw: calls.append("recurrent") or fused_recurrent_linear_attention(*a, **kw))
    monkeypatch.setattr(la, "chunk_linear_attention",
                        lambda *a, **kw: calls.append("chunk") or chunk_linear_attention(*a, **kw))
    for T in (1, RECURRENT_MAX_T, RECURRENT_MAX_T + 1):
        q, k, v, gate, s0 = make("channel", T=T)
        la.linear_attention(q, k, v, gate, s0, gate_kind="channel")
    assert calls == ["recurrent", "recurrent", "chunk"]


def test_key_tied_with_keys_at_or_above_one_uses_the_multiplicative_decay():
    # 1 - k <= 0 has no log: the dispatcher falls back to the recurrence with decay 1 - k
    q, k, v, _, s0 = make("none", T=20, seed=5)
    k = k * 2                                   # many keys >= 1
    assert bool((k >= 1).any())
    want = linear_attention_reference(q, k, v, None, s0, gate_kind="key_tied", output_final_state=True)
    got = linear_attention(q, k, v, None, s0, gate_kind="key_tied", output_final_state=True)
    assert all((a - b).abs().max() <= F64_TOL * 1e3 for a, b in zip(got, want))


def test_strong_decay_stays_finite_and_exact():
    # log decays of about -6 per step: exp(-6 * 64) underflows; a kernel that formed
    # exp(+b) · exp(-b) would overflow to inf/nan here.
    q, k, v, gate, s0 = make("channel", T=130, K=8, V=4, dtype=torch.float32, strong_decay=True)
    want = linear_attention_reference(q.double(), k.double(), v.double(), gate.double(), s0.double(),
                                      gate_kind="channel", output_final_state=True)
    o, s = linear_attention(q, k, v, gate, s0, gate_kind="channel", output_final_state=True, mode="chunk")
    assert torch.isfinite(o).all() and torch.isfinite(s).all()
    assert rel_err(o, want[0]) <= F32_REL and rel_err(s, want[1]) <= F32_REL


# -- gradients ----------------------------------------------------------------------------------
def _op_fn(gate_kind, mode, output_final_state=True):
    def f(q, k, v, gate, s0):
        return linear_attention(q, k, v, gate, s0, gate_kind=gate_kind, scale=0.5,
                                output_final_state=output_final_state, mode=mode)
    return f


@pytest.mark.parametrize("gate_kind", GATE_KINDS)
@pytest.mark.parametrize("T", [1, 19, 37])
def test_chunk_backward_gradcheck_f64(gate_kind, T):
    # T = 37 runs in two chunks of 32 (five halving levels each); 19 in one padded chunk
    q, k, v, gate, s0 = make(gate_kind, T=T, seed=T)
    inputs = [x.requires_grad_() if x is not None else None for x in (q, k, v, gate, s0)]
    assert torch.autograd.gradcheck(_op_fn(gate_kind, "chunk"), inputs, eps=1e-6, atol=1e-5, fast_mode=True)


def test_chunk_backward_full_gradcheck_small():
    # the exhaustive (not random-projection) check, on the smallest multi-chunk case
    q, k, v, gate, s0 = make("channel", T=18, K=2, V=2, seed=1)
    g = gate.requires_grad_()
    q, k, v, s0 = (x.requires_grad_() for x in (q, k, v, s0))
    fn = lambda *xs: chunk_linear_attention(*canonical(xs[0], xs[1], xs[2], xs[3], "channel"), xs[4],  # noqa: E731
                                            chunk_size=16)
    assert torch.autograd.gradcheck(fn, (q, k, v, g, s0), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("gate_kind", GATE_KINDS)
def test_gradients_agree_across_kernels_f32(gate_kind):
    """chunk (handwritten backward) vs recurrent and naive (autograd) vs the reference loop
    (autograd, float64), for o and the final state together."""
    q, k, v, gate, s0 = make(gate_kind, B=2, H=4, Hkv=2, T=45, K=8, V=5, seed=11)
    gen = torch.Generator().manual_seed(2)
    do, ds = torch.randn(2, 4, 45, 5, generator=gen, dtype=torch.float64), torch.randn(2, 4, 8, 5, generator=gen,
                                                                                   dtype=torch.float64)

    def grads(fn, dtype):
        xs = [x.detach().to(dtype).requires_grad_() if x is not None else None for x in (q, k, v, gate, s0)]
        o, s = fn(*xs)
        ((o * do.to(dtype)).sum() + (s * ds.to(dtype)).sum()).backward()
        return [x.grad for x in xs if x is not None]

    ref = grads(lambda *xs: linear_attention_reference(*xs, gate_kind=gate_kind, scale=0.5, output_final_state=True),
                torch.float64)
    for mode in ("chunk", "recurrent", "naive"):
        got = grads(_op_fn(gate_kind, mode), torch.float32)
        errs = [rel_err(a, b) for a, b in zip(got, ref)]
        assert max(errs) <= F32_REL, (mode, errs)


def test_only_the_output_or_only_the_state_needs_grad():
    q, k, v, gate, s0 = make("channel", T=20)
    q.requires_grad_()
    o, s = linear_attention(q, k, v, gate, s0, gate_kind="channel", output_final_state=True, mode="chunk")
    (gq,) = torch.autograd.grad(s.sum(), q, allow_unused=True)
    assert gq is not None and torch.isfinite(gq).all()
    (gq,) = torch.autograd.grad(linear_attention(q, k, v, gate, s0, gate_kind="channel", mode="chunk").sum(), q)
    assert torch.isfinite(gq).all()


def test_half_precision_inputs_compute_in_float32():
    q, k, v, gate, s0 = make("channel", T=40, dtype=torch.float32)
    want = linear_attention(q, k, v, gate, s0, gate_kind="channel", mode="chunk")
    got = linear_attention(*(x.bfloat16() for x in (q, k, v, gate, s0)), gate_kind="channel", mode="chunk")
    assert got.dtype == torch.bfloat16 and rel_err(got, want) <= 3e-2


def test_chunk_memory_is_linear_in_T():
    # no [T, T] intermediate, forward or backward: the largest are the chunk scores,
    # T · C per head, and the per-level decay factors, T · K
    from torch.utils._python_dispatch import TorchDispatchMode

    from spikec.codegen.torch.kernels.linear_attention import MAX_CHUNK

    class Largest(TorchDispatchMode):
        largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(t, torch.Tensor):
                    Largest.largest = max(Largest.largest, t.numel())
            return out

    B, H, T, K = 1, 2, 1024, 8
    q, k, v, gate, s0 = (x.float().requires_grad_() for x in make("channel", B=B, H=H, Hkv=H, T=T, K=K, V=K))
    with Largest():
        o, s = linear_attention(q, k, v, gate, s0, gate_kind="channel", output_final_state=True, mode="chunk")
        (o.sum() + s.sum()).backward()
    assert Largest.largest <= B * H * T * max(MAX_CHUNK, K), Largest.largest
    assert Largest.largest < B * H * T * T // 4
