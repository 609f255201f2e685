"""fuse-attention and fuse-linear-attention-quadratic: the zoo models, tests/modules.py,
hand-written retention / GLA-parallel modules, near misses, and the mask analysis itself.
Every fused graph is checked against eager PyTorch with the interpreter."""
import math

import modules as M
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import spikec.passes
from spikec import models as zoo
from spikec.frontend import from_torch
from spikec.ir import interpret
from spikec.passes.mask_analysis import classify_allowed, classify_decay, merge

DYN = {"T": (2, 4096)}
FUSED = ("attention", "sliding_window_attention", "linear_attention")
BOTH = "default,fuse-attention,fuse-linear-attention-quadratic"


def _rel_err(got, want):
    return ((got - want).abs().max() / want.abs().max()).item()


def _fused(model, inputs, pipeline, dynamic=None):
    g = from_torch(model, inputs, **({"dynamic": dynamic} if dynamic else {}))
    return spikec.passes.run(g, pipeline)


def _nodes(g, op):
    return [n for n in g.nodes if n.op == op]


def _check_eager(g, model, *inputs):
    with torch.no_grad():
        assert _rel_err(interpret(g, *inputs), model(*inputs)) < 1e-4


# -- zoo models -----------------------------------------------------------------------
@pytest.mark.parametrize("dynamic", [None, DYN], ids=["static", "symbolic"])
def test_transformer_one_causal_attention_per_layer(dynamic):
    torch.manual_seed(0)
    m = zoo.create("transformer", "tiny").eval()
    g = _fused(m, (torch.randint(0, 250, (1, 8)),), "default,fuse-attention", dynamic)
    att = _nodes(g, "attention")
    assert len(att) == m.config.num_hidden_layers and "softmax" not in g.op_counts()
    assert all(n.arg("causal") for n in att)
    # GQA folded: k and v keep their num_key_value_heads
    assert all(n.arg("k").type.shape[1] == m.config.num_key_value_heads for n in att)
    for T in ((8,) if dynamic is None else (5, 19)):
        _check_eager(g, m, torch.randint(0, 250, (1, T)))


def _gla_ops(g):
    return sorted(n.op for n in g.nodes if n.loc is not None and n.loc.file.endswith("gla_layer.py"))


def test_spikingbrain_sliding_window_layers():
    torch.manual_seed(0)
    m = zoo.create("spikingbrain", "tiny").eval()
    c = m.config
    T = c.sliding_window + 8                      # longer than the window, so the band shows
    ids = torch.randint(0, 250, (1, T))
    before = spikec.passes.run(from_torch(m, (ids,)), "default")
    g = spikec.passes.run(before, "fuse-attention")
    swa = _nodes(g, "sliding_window_attention")
    assert len(swa) == len(c.attn_layers) and all(n.arg("window") == c.sliding_window for n in swa)
    assert "attention" not in g.op_counts() and "softmax" not in g.op_counts()
    assert _gla_ops(g) == _gla_ops(before)        # the chunked GLA layers are left alone
    _check_eager(g, m, ids)


def test_spikingbrain_moe_one_attention_per_softmax_branch():
    torch.manual_seed(0)
    m = zoo.create("spikingbrain_moe", "tiny").eval()
    c = m.config
    ids = torch.randint(0, 250, (1, c.sliding_window + 8))
    g = _fused(m, (ids,), "default,fuse-attention")
    counts = g.op_counts()
    assert counts.get("attention", 0) == len(c.full_attn_layers)
    assert counts.get("sliding_window_attention", 0) == c.num_hidden_layers - len(c.full_attn_layers)
    assert all(n.arg("window") == c.sliding_window for n in _nodes(g, "sliding_window_attention"))
    # what softmax is left is the routers'
    assert all(n.output.type.rank == 2 for n in _nodes(g, "softmax"))
    _check_eager(g, m, ids)


# -- tests/modules.py ---------------------------------------------------------------
@pytest.mark.parametrize("dynamic", [None, DYN], ids=["static", "symbolic"])
def test_modules_swa(dynamic):
    torch.manual_seed(0)
    m = M.SlidingWindowAttention()
    g = _fused(m, (torch.randn(2, 8, 16),), "default,fuse-attention", dynamic)
    (n,) = _nodes(g, "sliding_window_attention")
    assert n.arg("window") == 4 and math.isclose(n.arg("scale"), 8 ** -0.5)
    assert "softmax" not in g.op_counts()
    for T in ((8,) if dynamic is None else (6, 11)):
        _check_eager(g, m, torch.randn(2, T, 16))


@pytest.mark.parametrize("dynamic", [None, DYN], ids=["static", "symbolic"])
def test_modules_causal_linear(dynamic):
    torch.manual_seed(0)
    m = M.CausalLinearAttention()
    g = _fused(m, (torch.randn(2, 8, 16),), "default,fuse-linear-attention-quadratic", dynamic)
    (n,) = _nodes(g, "linear_attention")
    assert n.arg("gate_kind") == "none"
    assert "matmul" not in g.op_counts()
    for T in ((8,) if dynamic is None else (6, 11)):
        _check_eager(g, m, torch.randn(2, T, 16))


# -- hand-written quadratic forms -------------------------------------------------------
def _heads(x, qkv, h):
    B, T, d = x.shape
    return qkv(x).view(B, T, 3, h, d // h).permute(2, 0, 3, 1, 4)


class Retention(nn.Module):
    """RetNet parallel retention: ((q kᵀ) ⊙ D) v with D = gamma_h ** (i - j) for j <= i."""

    def __init__(self, d=16, heads=2):
        super().__init__()
        self.h = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.register_buffer("gamma", 1 - 2.0 ** (-2 - torch.arange(heads, dtype=torch.float32)))

    def forward(self, x):
        B, T, d = x.shape
        q, k, v = _heads(x, self.qkv, self.h)
        n = torch.arange(T, dtype=torch.float32)
        dist = n[:, None] - n[None, :]
        decay = self.gamma[:, None, None] ** dist.clamp(min=0) * (dist >= 0)
        o = ((q @ k.transpose(-1, -2)) * (d // self.h) ** -0.5 * decay) @ v
        return o.transpose(1, 2).reshape(B, T, d)


class GLAParallel(nn.Module):
    """GLA parallel form with a per-head scalar gate: ((q kᵀ) ⊙ exp(G_i - G_j) ⊙ causal) v."""

    def __init__(self, d=16, heads=2):
        super().__init__()
        self.h = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.g = nn.Linear(d, heads)

    def forward(self, x):
        B, T, d = x.shape
        q, k, v = _heads(x, self.qkv, self.h)
        G = (F.logsigmoid(self.g(x)).transpose(1, 2) / 8).cumsum(-1)          # [B, H, T]
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
        D = torch.exp(G.unsqueeze(-1) - G.unsqueeze(-2)).masked_fill(~causal, 0.0)
        return ((torch.einsum("bhid,bhjd->bhij", q, k) * D) @ v).transpose(1, 2).reshape(B, T, d)


@pytest.mark.parametrize("cls", [Retention, GLAParallel])
def test_quadratic_decay_forms_become_scalar_gated(cls):
    torch.manual_seed(0)
    m = cls()
    g = _fused(m, (torch.randn(2, 8, 16),), "default,fuse-linear-attention-quadratic", DYN)
    (n,) = _nodes(g, "linear_attention")
    assert n.arg("gate_kind") == "scalar" and n.arg("gate").type.shape == n.arg("q").type.shape[:-1]
    assert "matmul" not in g.op_counts() and "einsum" not in g.op_counts()
    for T in (6, 13):
        _check_eager(g, m, torch.randn(2, T, 16))


class SDPA(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def test_sdpa_is_causal():
    q, k, v = (torch.randn(1, 2, 6, 8) for _ in range(3))
    g = _fused(SDPA(), (q, k, v), "default,fuse-attention")
    (n,) = _nodes(g, "attention")
    assert n.arg("causal") and math.isclose(n.arg("scale"), 8 ** -0.5)
    _check_eager(g, SDPA(), q, k, v)


# -- near misses: left alone ----------------------------------------------------------
class _Softmax(nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)

    def scores(self, x):
        q, k, v = _heads(x, self.qkv, 2)
        return q @ k.transpose(-1, -2) * 0.25, v


class AntiCausal(_Softmax):
    def forward(self, x):
        s, v = self.scores(x)
        T = x.shape[1]
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        return s.masked_fill(j < i, float("-inf")).softmax(-1) @ v


class WrongAxis(_Softmax):
    def forward(self, x):
        s, v = self.scores(x)
        T = x.shape[1]
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
        return s.masked_fill(~causal, float("-inf")).softmax(-2) @ v


class DataMask(_Softmax):
    def forward(self, x):
        s, v = self.scores(x)
        T = x.shape[1]
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
        allowed = causal | (s > 0)                       # depends on the data
        return s.masked_fill(~allowed, float("-inf")).softmax(-1) @ v


class MaskOnV(_Softmax):
    def forward(self, x):
        s, v = self.scores(x)
        T = x.shape[1]
        return s @ (torch.tril(torch.ones(T, T)) @ v)


@pytest.mark.parametrize("cls", [AntiCausal, WrongAxis, DataMask, MaskOnV])
def test_near_misses_are_not_fused(cls):
    torch.manual_seed(0)
    m, x = cls(), torch.randn(2, 8, 16)
    g = _fused(m, (x,), BOTH)
    assert not any(op in g.op_counts() for op in FUSED), g.op_counts()
    _check_eager(g, m, x)


# -- the mask analysis itself -------------------------------------------------------------
def test_classify_masks():
    i, j = torch.arange(9)[:, None], torch.arange(9)[None, :]
    assert classify_allowed(j <= i, 9).kind == "causal"
    band = classify_allowed((j <= i) & (j > i - 3), 9)
    assert (band.kind, band.window) == ("band", 3)
    assert classify_allowed(torch.ones((), dtype=torch.bool), 9).kind == "full"
    assert classify_allowed(j >= i, 9).kind == "unknown"
    assert classify_allowed(torch.stack([j <= i, j < i])[None], 9).kind == "unknown"   # varies per head
    gamma = torch.tensor([0.5, 0.9])
    decay = torch.where(j <= i, gamma[:, None, None] ** (i - j).clamp(min=0), 0.0)
    d = classify_decay(decay, 9)
    assert d.kind == "decay" and torch.allclose(d.gamma, gamma)
    assert classify_decay((j <= i).float(), 9).kind == "causal"
    # a window wider than a short sample looks causal there: still one band
    wide = classify_allowed((j <= i) & (j > i - 7), 9)
    assert merge([(5, classify_allowed(j[:, :5] <= i[:5], 5)), (9, wide)]).window == 7
    assert merge([(5, classify_allowed(j[:, :5] <= i[:5], 5)), (9, band)]).kind == "unknown"
