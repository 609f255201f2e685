"""Sliding-window attention: full-sequence masked form vs ring-buffer decode, and both against
a per-query float64 loop over the keys the window convention allows (i - W < j <= i).
Tolerance: relative error <= 1e-4 in fp32."""
import math

import pytest
import torch

from spikec.models.softmax_attention import (SoftmaxAttention, causal_mask, full_attention_step,
                                             ring_attention_step, ring_from_sequence,
                                             sliding_window_attention)

TOL = 1e-4


def rel_err(a, b):
    return float(((a - b).norm() / b.norm().clamp_min(1e-30)).detach())


def loop_oracle(q, k, v, window, scale):
    """For each query, softmax over exactly the keys max(0, i-W+1) .. i (GQA by head index)."""
    q, k, v = q.double(), k.double(), v.double()
    B, H, T, D = q.shape
    rep = H // k.shape[1]
    out = torch.zeros(B, H, T, v.shape[-1], dtype=torch.float64)
    for h in range(H):
        kh, vh = k[:, h // rep], v[:, h // rep]
        for i in range(T):
            lo = 0 if window is None else max(0, i - window + 1)
            s = (q[:, h, i:i + 1] @ kh[:, lo:i + 1].transpose(-1, -2)) * scale
            out[:, h, i] = (s.softmax(-1) @ vh[:, lo:i + 1])[:, 0]
    return out


def qkv(T, B=2, H=4, Hkv=2, D=8, seed=0):
    g = torch.Generator().manual_seed(seed + T)
    return (torch.randn(B, H, T, D, generator=g), torch.randn(B, Hkv, T, D, generator=g),
            torch.randn(B, Hkv, T, D, generator=g))


def ring_decode(q, k, v, window, scale):
    B, Hkv, T, D = k.shape
    kr, vr = k.new_zeros(B, Hkv, window, D), v.new_zeros(B, Hkv, window, D)
    outs = []
    for t in range(T):
        o, kr, vr = ring_attention_step(q[:, :, t:t + 1], k[:, :, t:t + 1], v[:, :, t:t + 1], kr, vr,
                                        torch.tensor(t), scale)
        outs.append(o)
    return torch.cat(outs, 2), kr, vr


@pytest.mark.parametrize("T", [1, 7, 63, 65, 200])
@pytest.mark.parametrize("window", [1, 16, 64])
def test_window_full_sequence_vs_ring_decode(T, window):
    scale = 8 ** -0.5
    base = qkv(T)
    ref = loop_oracle(*base, window, scale)
    grads = {}
    for name in ("full", "ring"):
        q, k, v = (t.clone().requires_grad_(True) for t in base)
        if name == "full":
            o = sliding_window_attention(q, k, v, window, scale)
            kr, vr = ring_from_sequence(k, window), ring_from_sequence(v, window)
        else:
            o, kr, vr = ring_decode(q, k, v, window, scale)
        assert rel_err(o.double(), ref) <= TOL, name
        w = torch.randn(o.shape, generator=torch.Generator().manual_seed(3))
        ((o * w).sum() + kr.square().sum() + vr.sum()).backward()
        grads[name] = (q.grad, k.grad, v.grad, kr.detach(), vr.detach())
    for label, a, b in zip(["dq", "dk", "dv", "ring k", "ring v"], grads["ring"], grads["full"]):
        assert rel_err(a, b) <= TOL, label


def test_window_sees_exactly_w_keys():
    m = causal_mask(10, 4)
    assert m.sum(1).tolist() == [1, 2, 3, 4, 4, 4, 4, 4, 4, 4]
    assert m[9].nonzero().flatten().tolist() == [6, 7, 8, 9]


@pytest.mark.parametrize("T", [1, 7, 65])
def test_full_attention_cache_matches(T):
    scale = 0.3
    q, k, v = qkv(T)
    ref = loop_oracle(q, k, v, None, scale)
    kc, vc, outs = k[:, :, :0], v[:, :, :0], []
    for t in range(T):
        o, kc, vc = full_attention_step(q[:, :, t:t + 1], k[:, :, t:t + 1], v[:, :, t:t + 1], kc, vc, scale)
        outs.append(o)
    assert rel_err(sliding_window_attention(q, k, v, None, scale).double(), ref) <= TOL
    assert rel_err(torch.cat(outs, 2).double(), ref) <= TOL


@pytest.mark.parametrize("window", [None, 5])
def test_module_prefill_then_steps_equals_forward(window):
    torch.manual_seed(0)
    attn = SoftmaxAttention(32, 4, 2, 8, window=window, rope_theta=1e4)
    x = torch.randn(2, 23, 32)
    full = attn(x)
    y, cache = attn.prefill(x[:, :9])
    outs = [y]
    for t in range(9, 23):
        y, cache = attn.step(x[:, t:t + 1], cache, torch.tensor(t))
        outs.append(y)
    assert rel_err(torch.cat(outs, 1), full) <= TOL
    # from an empty cache, too
    cache, outs = attn.init_cache(2), []
    for t in range(23):
        y, cache = attn.step(x[:, t:t + 1], cache, torch.tensor(t))
        outs.append(y)
    assert rel_err(torch.cat(outs, 1), full) <= TOL


def test_rope_is_relative():
    # rotating q and k by the same offset leaves scores unchanged: a check of the NeoX rotation
    from spikec.models.rope import apply_rope, rope_angles
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    def score(pq, pk):
        cq, sq = rope_angles(torch.tensor([pq]), 8, 1e6)
        ck, sk = rope_angles(torch.tensor([pk]), 8, 1e6)
        return float((apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum())
    assert math.isclose(score(5, 2), score(105, 102), rel_tol=1e-4)


def test_sdpa_implementation_equals_the_masked_reference():
    """attn_implementation="sdpa" (torch's fused kernel, used by the benchmarks' baseline)
    computes the same attention as the masked reference, full and sliding-window."""
    import spikec.models as zoo
    torch.manual_seed(0)
    for kw in ({}, {"use_sliding_window": True, "sliding_window": 8, "max_window_layers": 0}):
        a = zoo.create("transformer", "tiny", **kw).eval()
        b = zoo.create("transformer", "tiny", attn_implementation="sdpa", **kw).eval()
        b.load_state_dict(a.state_dict())
        ids = torch.randint(0, 256, (2, 37))
        with torch.no_grad():
            torch.testing.assert_close(b(ids), a(ids), rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(b.prefill(ids)[0], a.prefill(ids)[0], rtol=1e-5, atol=1e-5)
    with pytest.raises(zoo.ConfigError, match="attn_implementation"):
        zoo.create("transformer", "tiny", attn_implementation="flash")
