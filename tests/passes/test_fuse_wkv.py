"""fuse-linear-attention on RWKV-4's WKV (SpikeGPT's time mixing): the unrolled loop becomes
one `linear_attention` (numerator and denominator, a head per channel) plus the bonus term
and the division; near misses stay; the documented numeric range of the fused form.

Equality bound: interpret(fused) vs eager, max |diff| / max |eager| <= 1e-4."""
import pytest
import torch
from torch import nn

import spikec.models as models
import spikec.passes as passes
from spikec.frontend import from_torch
from spikec.ir import interpret, verify
from spikec.models.wkv import wkv_naive
from spikec.passes.la_wkv import wkv_reference

from la_wkv_modules import WKVMix

PIPE = "default,fuse-linear-attention"
TOL = 1e-4


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def la_nodes(g):
    return [n for n in g.nodes if n.op == "linear_attention"]


def per_step(g, T):
    """Selects of one time step (what an unrolled loop is made of)."""
    return [n for n in g.nodes if n.op == "select" and n.args["self"].type.shape[n.arg("dim")] == T]


def fuse(m, x):
    g = passes.run(from_torch(m, (x,)), PIPE)
    verify(g)
    return g


def test_reference_matches_the_zoo_kernel():
    # the pass's float64 oracle against the zoo's running-max loop (an independent writing)
    torch.manual_seed(0)
    k, v = 3 * torch.randn(2, 9, 5), torch.randn(2, 9, 5)
    w, u = -torch.rand(5) * 3, torch.randn(5)
    assert rel_err(wkv_reference(k, v, w, u).float(), wkv_naive(k, v, w, u)[0]) <= 1e-5


class TimeMix(nn.Module):
    """The zoo's RWKVTimeMix without its returned state (the state of a sequence start)."""

    def __init__(self, att):
        super().__init__()
        self.att = att

    def forward(self, x):
        return self.att(x)[0]


@pytest.fixture(scope="module")
def spikegpt():
    torch.manual_seed(0)
    return models.create("spikegpt", "tiny").eval()


def test_spikegpt_one_node_per_layer(spikegpt):
    m = spikegpt
    x = torch.randint(0, 256, (1, 8))
    before = passes.run(from_torch(m, (x,)), "default")
    g = passes.run(before, "fuse-linear-attention")
    layers = m.config.num_hidden_layers
    assert len(la_nodes(g)) == layers
    for n in la_nodes(g):
        assert n.arg("gate_kind") == "scalar" and n.args["v"].type.shape[-1] == 2    # numerator, denominator
    ops = g.op_counts()
    # no step of the WKV is left: its running max is gone, two exps per layer remain
    assert "maximum" not in ops and ops["exp"] == 2 * layers
    assert len(g.nodes) < len(before.nodes)
    assert rel_err(interpret(g, x), m(x)) <= TOL


@pytest.mark.parametrize("T", [3, 6, 19])
def test_spikegpt_time_mix_equals_eager(spikegpt, T):
    # the time mix alone: no spiking after it hides small differences
    m = TimeMix(spikegpt.blocks[1].att).eval()
    x = torch.randn(2, T, spikegpt.config.hidden_size, generator=torch.Generator().manual_seed(T))
    g = fuse(m, x)
    assert len(la_nodes(g)) == 1 and "maximum" not in g.op_counts() and not per_step(g, T)
    assert rel_err(interpret(g, x), m(x)) <= TOL


@pytest.mark.parametrize("form", ["stable", "plain"])
def test_wkv_forms_fused(form):
    torch.manual_seed(0)
    m = WKVMix(form=form).eval()
    x = torch.randn(2, 9, 16)
    g = fuse(m, x)
    assert len(la_nodes(g)) == 1 and not per_step(g, 9)
    assert rel_err(interpret(g, x), m(x)) <= TOL


@pytest.mark.parametrize("flaw", ["no_denominator", "bonus_without_v", "key_sign", "reversed"])
def test_wkv_near_miss_not_fused(flaw):
    torch.manual_seed(0)
    m = WKVMix(flaw=flaw).eval()
    x = torch.randn(2, 9, 16)
    before = passes.run(from_torch(m, (x,)), "default")
    g = passes.run(before, "fuse-linear-attention")
    assert not la_nodes(g) and len(g.nodes) == len(before.nodes)
    assert rel_err(interpret(g, x), m(x)) <= TOL


def test_wkv_numeric_range():
    """docs/passes-attention.md: the fused form shifts by one maximum per sequence and channel.
    Keys spread over 80 within a channel still agree with SpikeGPT's running-max form; spread
    over 200, terms underflow and the fused form gives NaN where SpikeGPT's stays finite."""
    torch.manual_seed(0)
    m = WKVMix().eval()
    x = torch.rand(1, 24, 16) * 2 - 1
    g = fuse(m, x)
    for c, ok in ((40.0, True), (100.0, False)):        # key = c * x: spread up to 2c
        with torch.no_grad():
            m.key.weight.copy_(torch.eye(16) * c)        # the graph holds the weight by reference
        got, want = interpret(g, x), m(x)
        assert bool(torch.isfinite(want).all())
        if ok:
            assert rel_err(got, want) <= TOL
        else:
            assert not bool(torch.isfinite(got).all())
