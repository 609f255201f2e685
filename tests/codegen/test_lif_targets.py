"""The `lif` op on the torch, cpu (TVM) and onnx targets against the reference interpreter,
the torch kernel's surrogate gradient against eager PyTorch (models/spiking.py), and a fused
SpikeGPT (symbolic T) on every target.

Bounds: spikes equal (0/1) except where the membrane is within 1e-5 of the threshold (none in
these draws: checked exactly); membranes and logits rtol = atol = 1e-4 (f32); gradients
rtol = atol = 1e-5."""
from __future__ import annotations

import pytest
import torch

import spikec
import spikec.models as zoo
from spikec import ir
from spikec.codegen import get_target
from spikec.codegen.torch.kernels.lif import lif as torch_lif
from spikec.ir import Graph, TensorType, sym
from spikec.models.spiking import lif_multistep
from spikec.passes.symbolic_length import trace_symbolic

TARGETS = ["torch", "cpu", "onnx"]
RTOL = ATOL = 1e-4


def lif_graph(shape, with_v0: bool, **params) -> Graph:
    g = Graph("lif")
    if not isinstance(shape[1], int):
        g.symbols["T"] = (1, None)
    x = g.add_input(TensorType(tuple(shape), "f32"), "x")
    args = {"x": x, **params}
    if with_v0:
        args["v0"] = g.add_input(TensorType((shape[0], *shape[2:]), "f32"), "v0")
    n = g.add_node("lif", args, ir.infer_types(ir.get_op("lif"), args, ir.InferContext(g.symbols)))
    g.set_outputs(list(n.outputs))
    return g


def compiled(graph, target):
    why = get_target(target).unavailable_reason()
    if why is not None:
        pytest.skip(f"target {target!r} unavailable: {why}")
    return spikec.compile(graph, target=target, pipeline="")


CASES = {
    "default": ((2, sym("T"), 8), False, {}),
    "params-v0": ((2, sym("T"), 3, 4), True, {"tau": 1.5, "v_threshold": 0.7, "v_reset": -0.2}),
    "reset-no-v0": ((1, sym("T"), 5), False, {"tau": 3.0, "v_threshold": 0.5, "v_reset": 0.25}),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("target", TARGETS)
def test_lif_matches_interpreter(target, case):
    shape, with_v0, params = CASES[case]
    g = lif_graph(shape, with_v0, **params)
    art = compiled(g, target)
    for T in (2, 17, 64):
        gen = torch.Generator().manual_seed(T)
        x = 2 * torch.randn(shape[0], T, *shape[2:], generator=gen)
        ins = (x, torch.randn(shape[0], *shape[2:], generator=gen)) if with_v0 else (x,)
        want = ir.interpret(g, *ins)
        got = art(*ins)
        assert torch.equal(torch.as_tensor(got[0]), want[0]), f"{target} {case} T={T}: spikes differ"
        torch.testing.assert_close(torch.as_tensor(got[1]), want[1], rtol=RTOL, atol=ATOL)


def test_torch_kernel_surrogate_gradient():
    gen = torch.Generator().manual_seed(0)
    x0, v00, w = 2 * torch.randn(2, 9, 6, generator=gen), torch.randn(2, 6, generator=gen), torch.randn(2, 9, 6, generator=gen)
    grads = []
    for fn in (torch_lif, lif_multistep):
        x, v0 = x0.clone().requires_grad_(), v00.clone().requires_grad_()
        s, v = fn(x, v0, tau=1.5, v_threshold=0.7, v_reset=-0.2, alpha=3.0)
        ((s * w).sum() + v.square().sum()).backward()
        grads.append((s.detach(), x.grad, v0.grad))
    (s1, gx1, gv1), (s2, gx2, gv2) = grads
    assert torch.equal(s1, s2) and gx1.abs().sum() > 0
    torch.testing.assert_close(gx1, gx2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gv1, gv2, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def spikegpt_graph():
    torch.manual_seed(0)
    m = zoo.create("spikegpt", "tiny", num_hidden_layers=1, hidden_size=32).eval()
    g = trace_symbolic(m, lambda T: (torch.randint(0, 250, (1, T)),), lengths=(4, 5))
    assert g.op_counts().get("lif") == 2
    return g


@pytest.mark.parametrize("target", TARGETS)
def test_fused_spikegpt_on_target(target, spikegpt_graph):
    art = compiled(spikegpt_graph, target)
    for T in (3, 17):
        ids = torch.randint(0, 250, (1, T), generator=torch.Generator().manual_seed(T))
        want = ir.interpret(spikegpt_graph, ids)
        got = art(ids)
        got, want = (list(r) if isinstance(r, (tuple, list)) else [r] for r in (got, want))
        assert len(got) == len(want)
        for a, b in zip(got, want):
            torch.testing.assert_close(torch.as_tensor(a), b, rtol=RTOL, atol=ATOL)
