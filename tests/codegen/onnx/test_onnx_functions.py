"""Fused ops as model-local ONNX functions (domain "spikec", standard-ONNX bodies):
every linear_attention variant, causal / full / sliding-window attention, grouped-query
heads, a symbolic length, and the checker's full check.

Oracle: spikec.ir.interpret (the ops' reference definitions: a loop over time, a masked
softmax). Tolerance: |got - want| <= 1e-4 · max|want| (chunked vs sequential summation)."""
from __future__ import annotations

import onnx
import pytest
import torch

from spikec import ir
from spikec.codegen import get_target
from spikec.ir import Graph, TensorType, sym
from spikec.ir.ops_fused import GATE_KINDS

T = sym("T")


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def la_graph(kind, init, final, H=4, Hkv=2, K=8, V=6):
    g = Graph("la")
    g.symbols["T"] = (1, 4096)
    q = g.add_input(TensorType((2, H, T, K), "f32"), "q")
    k = g.add_input(TensorType((2, Hkv, T, K), "f32"), "k")
    v = g.add_input(TensorType((2, Hkv, T, V), "f32"), "v")
    args = {"q": q, "k": k, "v": v, "gate_kind": kind, "scale": 0.3, "output_final_state": final}
    if kind in ("scalar", "channel"):
        args["gate"] = g.add_input(TensorType((2, Hkv, T) + ((K,) if kind == "channel" else ()), "f32"), "gate")
    if init:
        args["initial_state"] = g.add_input(TensorType((2, H, K, V), "f32"), "s0")
    types = ir.infer_types(ir.get_op("linear_attention"), args, ir.InferContext(g.symbols))
    g.set_outputs(g.add_node("linear_attention", args, types).outputs)
    return g


def la_inputs(g, length, seed):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for v in g.inputs:
        shape = [length if not isinstance(d, int) else d for d in v.type.shape]
        x = torch.randn(shape, generator=gen)
        if v.name == "gate":
            x = torch.nn.functional.logsigmoid(x) / 4          # log-decays, as the GLA gate makes them
        out.append(x)
    return out


@pytest.mark.parametrize("kind", GATE_KINDS)
@pytest.mark.parametrize("init,final,gqa", [(False, False, True), (True, True, False)])
def test_linear_attention_function(kind, init, final, gqa):
    g = la_graph(kind, init, final, Hkv=2 if gqa else 4)
    mod = get_target("onnx").lower(g, chunk=4)          # small chunk: several chunks and a padded tail
    (fn,) = mod.model.functions
    assert fn.domain == "spikec" and fn.name.startswith("LinearAttention")
    assert {n.domain for n in fn.node} <= {""}            # a standard-ONNX body
    assert mod.model.graph.input[0].type.tensor_type.shape.dim[2].dim_param == "T"
    for length in (1, 4, 11):
        xs = la_inputs(g, length, seed=length)
        want = ir.interpret(g, *xs)
        want = want if isinstance(want, tuple) else (want,)
        got = mod.run(*xs)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert a.shape == b.shape and rel_err(a, b) <= 1e-4, (kind, length, rel_err(a, b))


def test_linear_attention_long_sequence_default_chunk():
    # chunk 64 at T=300: five chunks, the last one padded
    g = la_graph("channel", False, True)
    mod = get_target("onnx").lower(g)
    xs = la_inputs(g, 300, seed=0)
    for a, b in zip(mod.run(*xs), ir.interpret(g, *xs)):
        assert rel_err(a, b) <= 1e-4


def attn_graph(op, Tq, Tk, **attrs):
    g = Graph("attn")
    g.symbols.update({"T": (1, 4096), "S": (1, 4096)})
    tq, tk = (sym("T") if Tq else 5), (sym("S") if Tk else 5)
    q = g.add_input(TensorType((1, 4, tq, 8), "f32"), "q")
    k = g.add_input(TensorType((1, 2, tk, 8), "f32"), "k")
    v = g.add_input(TensorType((1, 2, tk, 3), "f32"), "v")
    g.set_outputs([g.add_node(op, {"q": q, "k": k, "v": v, "scale": 0.4, **attrs},
                              [TensorType((1, 4, tq, 3), "f32")]).output])
    return g


@pytest.mark.parametrize("op,attrs", [("attention", {"causal": True}), ("attention", {"causal": False}),
                                      ("sliding_window_attention", {"window": 3})])
def test_attention_functions(op, attrs):
    g = attn_graph(op, True, True, **attrs)
    mod = get_target("onnx").lower(g)
    (fn,) = mod.model.functions
    assert fn.domain == "spikec" and fn.name.endswith("Gqa")
    for tq, tk in [(1, 1), (6, 6), (3, 9)]:               # queries are the last tq of tk positions
        gen = torch.Generator().manual_seed(tq * 10 + tk)
        xs = [torch.randn(1, 4, tq, 8, generator=gen), torch.randn(1, 2, tk, 8, generator=gen),
              torch.randn(1, 2, tk, 3, generator=gen)]
        want = ir.interpret(g, *xs)
        assert rel_err(mod.run(*xs)[0], want) <= 1e-5


def test_half_precision_casts_around_the_function():
    g = Graph("la16")
    q, k, v = (g.add_input(TensorType((1, 2, 5, 4), "f16"), n) for n in "qkv")
    g.set_outputs([g.add_node("linear_attention", {"q": q, "k": k, "v": v},
                              [TensorType((1, 2, 5, 4), "f16")]).output])
    xs = [torch.randn(1, 2, 5, 4).half() for _ in range(3)]
    got = get_target("onnx").lower(g).run(*xs)[0]
    assert got.dtype == torch.float16
    torch.testing.assert_close(got, ir.interpret(g, *xs), rtol=1e-2, atol=1e-2)


def test_one_function_per_variant_and_full_check():
    g = la_graph("channel", False, False)
    # two linear_attention nodes of the same variant share one function
    (node,) = [n for n in g.nodes if n.op == "linear_attention"]
    extra = g.add_node("linear_attention", dict(node.args), [node.outputs[0].type]).output
    g.set_outputs([node.outputs[0], extra])
    model = get_target("onnx").lower(g).model
    assert len(model.functions) == 1
    assert [o.domain for o in model.opset_import] == ["", "spikec"]
    onnx.checker.check_model(model, full_check=True)


def test_bench_helper_runs_fused_gla():
    from spikec.codegen.onnx import linear_attention_model
    from spikec.codegen.onnx.kernels import linear_attention_graph
    mod = linear_attention_model(1, 2, None, 8, chunk=16, intra_op_threads=1)
    g = linear_attention_graph(1, 2, None, 8)
    xs = la_inputs(g, 37, seed=3)
    assert rel_err(mod.run(*xs)[0], ir.interpret(g, *xs)) <= 1e-4
