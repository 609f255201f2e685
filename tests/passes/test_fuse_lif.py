"""fuse-lif: an unrolled multi-step LIF neuron (models/spiking.py's loop) becomes one `lif`
node, also inside fuse-linear-attention (so the standard pipeline fuses SpikeGPT's neurons);
near misses (soft reset, no reset, per-step thresholds, steps out of order) stay unrolled;
T is made symbolic again with trace_symbolic.

Equality bound: interpret(fused) vs eager, max |diff| / max |eager| <= 1e-4 (spikes are
0/1 and the fused op computes the same f32 expression, so the diff is 0 in practice)."""
import math

import pytest
import torch
from torch import nn

import spikec.models as zoo
import spikec.passes as passes
from spikec.frontend import from_torch
from spikec.ir import interpret, verify
from spikec.ir.ops_spiking_neuron import lif_reference
from spikec.models.spiking import atan_spike, lif_multistep
from spikec.passes.lif_step import lif_step_reference
from spikec.passes.symbolic_length import trace_symbolic

TOL = 1e-4
STD = "default,fuse-linear-attention,fuse-attention"


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def ops(g, name):
    return [n for n in g.nodes if n.op == name]


def per_step(g):
    """What an unrolled loop over time is made of: single-step selects and the spike's atan."""
    return [n for n in g.nodes if n.op == "atan" or (n.op == "select" and n.args["self"].type.rank >= 3
                                                       and n.arg("dim") % n.args["self"].type.rank == 1)]


class LIF(nn.Module):
    def __init__(self, tau=2.0, v_th=1.0, v_reset=0.0, alpha=2.0, final=False):
        super().__init__()
        self.p, self.final = (tau, v_th, v_reset, alpha), final

    def forward(self, x, v0=None):
        s, v = lif_multistep(x, v0, *self.p)
        return (s, v) if self.final else s * 1.0


class Variant(nn.Module):
    """A hand-written loop: reset kind, per-step threshold and step order can be changed."""

    def __init__(self, reset="hard", thresholds=None, order="forward"):
        super().__init__()
        self.reset, self.thresholds, self.order = reset, thresholds, order

    def forward(self, x):
        T = x.shape[1]
        v = torch.zeros_like(x[:, 0])
        out = []
        steps = range(T) if self.order == "forward" else [T - 1 - t for t in range(T)]
        for i, t in enumerate(steps):
            vth = self.thresholds[i] if self.thresholds else 1.0
            h = v + (x[:, t] - v) / 2.0
            s = atan_spike(h - vth)
            if self.reset == "hard":
                v = h * (1 - s)
            elif self.reset == "soft":
                v = h - s * vth
            else:
                v = h
            out.append(s)
        return torch.stack(out, 1)


def fuse(m, *xs, pipe="default,fuse-lif"):
    g = passes.run(from_torch(m, xs), pipe)
    verify(g)
    return g


def check(m, g, *xs):
    want = m(*xs)
    got = interpret(g, *xs)
    for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        assert rel_err(a, b) <= TOL


def test_reference_matches_the_models_loop():
    x, v0 = 2 * torch.randn(2, 9, 5), torch.randn(2, 5)
    s, v = lif_reference(x, v0, 1.5, 0.7, -0.2)
    s2, v2 = lif_multistep(x, v0, 1.5, 0.7, -0.2)
    assert torch.equal(s, s2) and torch.allclose(v, v2, rtol=0, atol=1e-6)


@pytest.mark.parametrize("T", [3, 17, 64])   # T = 2 traced: see test_symbolic_length
def test_fuses_to_one_lif(T):
    m, x = LIF(), 2 * torch.randn(2, T, 8)
    g = fuse(m, x)
    assert len(ops(g, "lif")) == 1 and not per_step(g), g
    check(m, g, x)


def test_parameters_initial_and_final_membrane():
    m = LIF(tau=1.5, v_th=0.7, v_reset=-0.2, alpha=3.0, final=True)
    x, v0 = torch.randn(2, 6, 4), torch.randn(2, 4)
    g = fuse(m, x, v0)
    (n,) = ops(g, "lif")
    assert (n.arg("tau"), n.arg("v_threshold"), n.arg("v_reset")) == (1.5, 0.7, -0.2)
    assert math.isclose(n.arg("alpha"), 3.0, rel_tol=1e-9) and n.args.get("v0") is not None
    assert not per_step(g)
    check(m, g, x, v0)


def test_initial_membrane_final_unused():
    # first step (v0 - v_reset outside the loop) and last step (reset dead) both absorbed
    m = LIF(tau=1.5, v_th=0.7, v_reset=-0.2)
    x, v0 = 2 * torch.randn(2, 7, 4), torch.randn(2, 4)
    g = fuse(m, x, v0)
    assert len(ops(g, "lif")) == 1 and not per_step(g), g
    check(m, g, x, v0)


def test_standard_pipeline_fuses_lif():
    m, x = LIF(), torch.randn(1, 5, 4)
    g = fuse(m, x, pipe=STD)
    assert len(ops(g, "lif")) == 1 and not per_step(g)


@pytest.mark.parametrize("variant", [
    Variant(reset="soft"), Variant(reset="none"), Variant(thresholds=[1.0, 0.9, 1.1, 1.0, 0.8]),
    Variant(order="reversed")], ids=["soft-reset", "no-reset", "threshold-per-step", "reversed-steps"])
def test_near_misses_stay_unrolled(variant):
    x = 2 * torch.randn(2, 5, 6)
    g = fuse(variant, x)
    assert not ops(g, "lif") and per_step(g)
    check(variant, g, x)


def test_control_variant_fuses():
    # the near-miss module itself, with a hard reset in order: it must fuse (else the tests above prove nothing)
    m, x = Variant(), 2 * torch.randn(2, 5, 6)
    g = fuse(m, x)
    assert len(ops(g, "lif")) == 1 and not per_step(g)
    check(m, g, x)


def test_step_reference_is_independent():
    x, v = torch.tensor([0.0, 2.0, 3.0]), torch.tensor([0.0, 0.0, 1.0])
    v1, s, _ = lif_step_reference(x, v, 2.0, 1.0, 0.0)
    assert s.tolist() == [0.0, 1.0, 1.0] and v1.tolist() == [0.0, 0.0, 0.0]


def test_symbolic_length():
    m = LIF(final=True)
    g = trace_symbolic(m, lambda T: (torch.randn(2, T, 8),), lengths=(4, 5), pipeline="canonicalize,cse,dce,fuse-lif")
    assert "T" in g.symbols and len(ops(g, "lif")) == 1
    for T in (2, 17, 64):
        check(m, g, 2 * torch.randn(2, T, 8))


def test_spikegpt_symbolic_no_per_step_nodes():
    torch.manual_seed(0)
    m = zoo.create("spikegpt", "tiny", num_hidden_layers=1, hidden_size=32).eval()
    g = trace_symbolic(m, lambda T: (torch.randint(0, 250, (1, T)),), lengths=(4, 5))
    assert "T" in g.symbols and len(ops(g, "lif")) == 2 and len(ops(g, "linear_attention")) == 1
    assert len(ops(g, "atan")) == 1          # the binary embedding's spike, not a step
    assert not [n for n in g.nodes if n.op == "select" and n.arg("dim") % n.args["self"].type.rank == 1]
    for T in (2, 17, 64):
        ids = torch.randint(0, 250, (1, T), generator=torch.Generator().manual_seed(T))
        want = m(ids)
        want = getattr(want, "logits", want[0] if isinstance(want, tuple) else want)
        got = interpret(g, ids)
        assert rel_err(got[0] if isinstance(got, tuple) else got, want) <= TOL
