"""GLA recurrence: naive loop vs chunked form vs step-by-step decode, and all three against an
independent float64 quadratic-form oracle. Tolerance: relative error <= 1e-4 in fp32."""
import pytest
import torch
import torch.nn.functional as F

from spikec.models.linear_attention import gla_chunk, gla_naive, gla_step, segsum

TOL = 1e-4


def rel_err(a, b):
    return float(((a - b).norm() / b.norm().clamp_min(1e-30)).detach())


def inputs(T, B=2, H=3, K=8, V=6, decay_scale=16.0, seed=0):
    g = torch.Generator().manual_seed(seed + T)
    q, k = F.relu(torch.randn(B, H, T, K, generator=g)), F.relu(torch.randn(B, H, T, K, generator=g))
    v = torch.randn(B, H, T, V, generator=g)
    gate = F.logsigmoid(torch.randn(B, H, T, K, generator=g) * 3) * (16.0 / decay_scale)
    s0 = torch.randn(B, H, K, V, generator=g)
    return q, k, v, gate, s0


def quadratic_oracle(q, k, v, g, scale, s0):
    """o_t = sum_{s<=t} (q_t * exp(G_t - G_s)) . k_s  v_s + (q_t * exp(G_t)) S0, in float64."""
    q, k, v, g, s0 = (t.double() for t in (q, k, v, g, s0))
    G = g.cumsum(2)
    T = q.shape[2]
    diff = G[:, :, :, None, :] - G[:, :, None, :, :]                     # [B,H,t,s,K]
    causal = torch.ones(T, T, dtype=torch.bool).tril()[None, None, :, :, None]
    w = torch.where(causal, diff, torch.tensor(float("-inf"), dtype=torch.float64)).exp()
    A = (q[:, :, :, None, :] * scale * k[:, :, None, :, :] * w).sum(-1)
    o = A @ v + (q * scale * G.exp()) @ s0
    final = (k * (G[:, :, -1:] - G).exp()).transpose(-1, -2) @ v + G[:, :, -1].exp()[..., None] * s0
    return o, final


def step_loop(q, k, v, g, scale, s0):
    state, outs = s0, []
    for t in range(q.shape[2]):
        o, state = gla_step(q[:, :, t], k[:, :, t], v[:, :, t], g[:, :, t], state, scale)
        outs.append(o)
    return torch.stack(outs, 2), state


FORMS = {
    "naive": lambda *a: gla_naive(*a),
    "chunk16": lambda q, k, v, g, s, s0: gla_chunk(q, k, v, g, s, s0, chunk_size=16),
    "chunk5": lambda q, k, v, g, s, s0: gla_chunk(q, k, v, g, s, s0, chunk_size=5),
    "step": step_loop,
}


@pytest.mark.parametrize("T", [1, 7, 63, 65, 200])
def test_forms_agree_forward_state_and_grads(T):
    scale = 8 ** -0.5
    base = inputs(T)
    o_ref, s_ref = quadratic_oracle(*base[:4], scale, base[4])
    results = {}
    for name, fn in FORMS.items():
        leaves = [t.clone().requires_grad_(True) for t in base]
        q, k, v, g, s0 = leaves
        o, s = fn(q, k, v, g, scale, s0)
        assert rel_err(o.double(), o_ref) <= TOL, name
        assert rel_err(s.double(), s_ref) <= TOL, name
        # a loss touching both outputs so gradients flow through the state path too
        wo = torch.randn(o.shape, generator=torch.Generator().manual_seed(1))
        ws = torch.randn(s.shape, generator=torch.Generator().manual_seed(2))
        ((o * wo).sum() + (s * ws).sum()).backward()
        results[name] = [t.grad for t in leaves]
    for name in ("chunk16", "chunk5", "step"):
        for label, a, b in zip("qkvgS", results[name], results["naive"]):
            assert rel_err(a, b) <= TOL, f"{name} grad d{label}"


def test_no_initial_state_and_strong_decay_stay_finite():
    # gates near -20 per step: the chunk form must not overflow (no exp of a large positive number)
    q, k, v, _, _ = inputs(70)
    g = -20 * torch.rand(q.shape)
    o1, s1 = gla_naive(q, k, v, g, 0.3)
    o2, s2 = gla_chunk(q, k, v, g, 0.3, chunk_size=16)
    assert torch.isfinite(o2).all() and torch.isfinite(s2).all()
    assert rel_err(o2, o1) <= TOL and rel_err(s2, s1) <= TOL


def test_long_sequence_mild_decay():
    q, k, v, g, s0 = inputs(1000, B=1, H=1, K=4, V=3, decay_scale=256.0)
    o1, s1 = gla_naive(q, k, v, g, 0.5, s0)
    o2, s2 = gla_chunk(q, k, v, g, 0.5, s0, chunk_size=32)
    assert rel_err(o2, o1) <= TOL and rel_err(s2, s1) <= TOL


def test_segsum_matches_brute_force():
    x = torch.randn(2, 6, 3)
    inc, exc = segsum(x, dim=1), segsum(x, dim=1, exclusive=True)
    for i in range(6):
        for j in range(6):
            if j <= i:
                torch.testing.assert_close(inc[:, i, j], x[:, j + 1:i + 1].sum(1), rtol=1e-6, atol=1e-6)
            else:
                assert torch.isinf(inc[:, i, j]).all()
            if j < i:
                torch.testing.assert_close(exc[:, i, j], x[:, j + 1:i].sum(1), rtol=1e-6, atol=1e-6)
            else:
                assert torch.isinf(exc[:, i, j]).all()
