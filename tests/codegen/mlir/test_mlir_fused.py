"""The mlir target on the fused ops: linear_attention (every gate kind, initial and final
state, grouped-query heads), causal / full / sliding-window attention, one JIT-compiled
function for every length; and their loop-free torch forms against the reference.

Oracle: spikec.ir.interpret. Tolerance: |got - want| <= 1e-4 · max|want| (chunked vs
sequential summation in f32). Compiled modules are built once per module (JIT is slow)."""
from __future__ import annotations

import pytest
import torch

from spikec import ir
from spikec.codegen import get_target
from spikec.codegen.mlir.chunked import linear_attention_chunked
from spikec.ir import Graph, InferContext, TensorType, sym
from spikec.ir.ops_fused import GATE_KINDS, linear_attention_reference

T = sym("T")


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


@pytest.mark.parametrize("kind", GATE_KINDS)
def test_loop_free_form_matches_reference(kind):
    # the torch code the custom ops decompose into, eagerly, over lengths that cross chunks
    gen = torch.Generator().manual_seed(0)
    for length in (1, 4, 9):
        q, k, v = (torch.randn(2, 4 if i == 0 else 2, length, 5, generator=gen) for i in range(3))
        gate = None
        if kind == "scalar":
            gate = -20 * torch.rand(2, 2, length, generator=gen)      # RWKV-size decays: e^-20 per step
        elif kind == "channel":
            gate = torch.nn.functional.logsigmoid(torch.randn(2, 2, length, 5, generator=gen))
        s0 = torch.randn(2, 4, 5, 5, generator=gen)
        o, s = linear_attention_chunked(q, k, v, gate, s0, kind, 0.3, 4)
        ro, rs = linear_attention_reference(q, k, v, gate, s0, gate_kind=kind, scale=0.3, output_final_state=True)
        assert rel_err(o, ro) <= 1e-4 and rel_err(s, rs) <= 1e-4, (kind, length)


def _fused_graph():
    """Every linear_attention variant and both attention ops in one graph (one compile)."""
    g = Graph("fused")
    g.symbols["T"] = (1, 4096)
    ctx = InferContext(g.symbols)
    q = g.add_input(TensorType((1, 4, T, 6), "f32"), "q")
    k = g.add_input(TensorType((1, 2, T, 6), "f32"), "k")
    v = g.add_input(TensorType((1, 2, T, 5), "f32"), "v")
    graw = g.add_input(TensorType((1, 2, T, 6), "f32"), "graw")
    s0 = g.add_input(TensorType((1, 4, 6, 5), "f32"), "s0")

    def add(op, args):
        return g.add_node(op, args, ir.infer_types(ir.get_op(op), args, ctx)).outputs

    gate = add("neg", {"self": add("softplus", {"self": graw})[0]})[0]               # log-decays <= 0
    scalar = add("mean", {"self": gate, "dim": [-1]})[0]
    outs = []
    outs += add("linear_attention", {"q": q, "k": k, "v": v, "gate": gate, "gate_kind": "channel", "scale": 0.4})
    outs += add("linear_attention", {"q": q, "k": k, "v": v, "gate": scalar, "gate_kind": "scalar", "scale": 0.4,
                                     "initial_state": s0, "output_final_state": True})
    outs += add("linear_attention", {"q": q, "k": k, "v": v, "scale": 0.4, "output_final_state": True})
    outs += add("linear_attention", {"q": q, "k": k, "v": v, "gate_kind": "key_tied", "initial_state": s0})
    outs += add("attention", {"q": q, "k": k, "v": v, "scale": 0.4})
    outs += add("attention", {"q": q, "k": k, "v": v, "scale": 0.4, "causal": False})
    outs += add("sliding_window_attention", {"q": q, "k": k, "v": v, "window": 3, "scale": 0.4})
    g.set_outputs(outs)
    return g


def test_fused_ops_one_function_every_length():
    # one compile (JIT is slow), run at lengths below, at and across the chunk (4) and the trace length (11)
    g = _fused_graph()
    mod = get_target("mlir").lower(g, chunk=4)
    for length in (1, 4, 11, 40):
        gen = torch.Generator().manual_seed(length)
        xs = [torch.randn([length if not isinstance(d, int) else d for d in v.type.shape], generator=gen)
              for v in g.inputs]
        want = ir.interpret(g, *xs)
        got = mod.run(*xs)
        assert len(got) == len(want)
        for i, (a, b) in enumerate(zip(got, want)):
            assert a.shape == b.shape and rel_err(a, b) <= 1e-4, (length, i, rel_err(a, b))
    text = mod.sources()["model.linalg.mlir"]
    assert "tensor<1x4x?x6xf32>" in text                  # q's T is a dynamic dim
    assert "scf.while" not in text                        # loop-free: no torch-mlir while_loop path


def test_bench_helper_runs_fused_gla():
    from spikec.codegen.mlir import linear_attention_module
    from spikec.codegen.onnx.kernels import linear_attention_graph
    mod = linear_attention_module(1, 1, None, 4, chunk=8, opt_level=0)
    g = linear_attention_graph(1, 1, None, 4)
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(1, 1, 21, 4, generator=gen) for _ in range(3)]
    xs.append(torch.nn.functional.logsigmoid(torch.randn(1, 1, 21, 4, generator=gen)))
    assert rel_err(mod.run(*xs)[0], ir.interpret(g, *xs)) <= 1e-4
