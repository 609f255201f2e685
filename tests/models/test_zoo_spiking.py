"""Spiking pieces against hand-written oracles: ATan surrogate spike, LIF dynamics, RWKV WKV."""
import math

import torch

from spikec.models.spiking import atan_spike, atan_surrogate_grad, lif_multistep
from spikec.models.wkv import wkv_naive


def test_atan_spike_forward_and_surrogate_gradient():
    x = torch.linspace(-2, 2, 41, requires_grad=True)
    s = atan_spike(x, alpha=2.0)
    assert torch.equal(s.detach(), (x.detach() >= 0).float())
    s.sum().backward()
    expected = [1.0 / (1 + (math.pi * float(v)) ** 2) for v in x.detach()]   # alpha/2 / (1 + (pi/2 alpha x)^2)
    torch.testing.assert_close(x.grad, torch.tensor(expected), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(atan_surrogate_grad(x.detach()), torch.tensor(expected), rtol=1e-5, atol=1e-6)


def test_lif_matches_scalar_simulation():
    x = torch.tensor([[[0.9], [1.5], [0.4], [2.5], [0.0], [3.0]]])   # [B=1, T=6, C=1]
    spikes, v_final = lif_multistep(x, tau=2.0, v_threshold=1.0, v_reset=0.0)
    v, expected = 0.0, []
    for xt in x.flatten().tolist():
        h = v + (xt - v) / 2.0
        s = 1.0 if h >= 1.0 else 0.0
        v = 0.0 if s else h
        expected.append(s)
    assert spikes.flatten().tolist() == expected
    assert abs(float(v_final) - v) < 1e-6
    assert expected == [0.0, 0.0, 0.0, 1.0, 0.0, 1.0]   # worked by hand: h = 0.45, 0.975, 0.6875, 1.59, 0, 1.5


def test_wkv_matches_direct_formula():
    torch.manual_seed(0)
    B, T, C = 2, 9, 5
    k, v = torch.randn(B, T, C) * 3, torch.randn(B, T, C)
    w, u = -torch.rand(C) - 0.1, torch.randn(C)
    out, _ = wkv_naive(k, v, w, u)
    kd, vd, wd, ud = k.double(), v.double(), w.double(), u.double()
    ref = torch.zeros(B, T, C, dtype=torch.float64)
    for t in range(T):
        num = torch.exp(ud + kd[:, t]) * vd[:, t]
        den = torch.exp(ud + kd[:, t])
        for i in range(t):
            e = torch.exp((t - 1 - i) * wd + kd[:, i])
            num, den = num + e * vd[:, i], den + e
        ref[:, t] = num / den
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-6)


def test_spikegpt_residual_increments_are_spikes():
    import spikec.models as zoo
    m = zoo.create("spikegpt", "tiny", num_hidden_layers=1).eval()
    ids = torch.randint(0, 256, (1, 10))
    x = m.embed(ids)
    assert set(x.unique().tolist()) <= {0.0, 1.0}             # binarised embeddings
    block = m.blocks[0]
    x0 = block.ln0(x)
    y, _ = block.run(x, None)
    inc = y - x0                                              # sum of two spike trains
    assert set(inc.round().unique().tolist()) <= {0.0, 1.0, 2.0}
    torch.testing.assert_close(inc, inc.round())
