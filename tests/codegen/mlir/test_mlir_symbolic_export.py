"""Symbolic dims through torch.export on the mlir target.

A decode step reshapes its grown KV cache ([B, 2, P+1, D] expanded to 4 query heads, then
viewed as [B, 4, P+1, D]); the reshape guards on min(D(P+1), 2D(P+1)) == D(P+1), true for every
P >= 0, which a named torch.export.Dim rejected ("Constraints violated (P)"). The target exports
with Dim.DYNAMIC and then checks that no symbolic input dim was narrowed or fixed.
Oracle: spikec.ir.interpret. Tolerance: 1e-5 + 1e-5·|want| (f32 softmax-free arithmetic)."""
from __future__ import annotations

import pytest
import torch

from spikec import ir
from spikec.codegen import LoweringError, get_target
from spikec.codegen.mlir.export import check_still_symbolic
from spikec.codegen.mlir.program import dynamic_shapes
from spikec.ir import Graph, InferContext, TensorType, sym

B, P, T = sym("B"), sym("P"), sym("T")


def _add(g, op, args):
    return g.add_node(op, args, ir.infer_types(ir.get_op(op), args, InferContext(g.symbols))).outputs[0]


def _kv_cache_graph():
    g = Graph("kv_repeat")
    g.symbols.update({"B": (1, 64), "P": (2, None)})
    cache = g.add_input(TensorType((B, 2, P, 4), "f32"), "cache")
    new = g.add_input(TensorType((B, 2, 1, 4), "f32"), "new")
    grown = _add(g, "cat", {"tensors": [cache, new], "dim": 2})                      # [B, 2, P+1, 4]
    rep = _add(g, "expand", {"self": _add(g, "unsqueeze", {"self": grown, "dim": 2}),
                             "size": [B, 2, 2, P + 1, 4]})
    heads = _add(g, "view", {"self": rep, "size": [B, 4, P + 1, 4]})
    g.set_outputs([_add(g, "mul", {"self": heads, "other": 3.0}), grown])
    return g


def test_kv_cache_reshape_stays_symbolic_in_P():
    g = _kv_cache_graph()
    mod = get_target("mlir").lower(g)                     # raised "Constraints violated (P)" before
    assert "tensor<?x2x?x4xf32>" in mod.linalg_text       # B and P dynamic in the compiled function
    gen = torch.Generator().manual_seed(0)
    for batch, length in ((1, 2), (2, 9), (3, 5)):
        cache, new = torch.randn(batch, 2, length, 4, generator=gen), torch.randn(batch, 2, 1, 4, generator=gen)
        got, want = mod.run(cache, new), ir.interpret(g, cache, new)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


class _BranchOnLength(torch.nn.Module):
    def forward(self, *inputs):
        x = inputs[0]
        return x * 2 if x.shape[0] > 20 else x          # a guard T <= 20 at trace length 5


def test_narrowed_range_is_an_error():
    g = Graph("t_rows")
    g.symbols["T"] = (2, 4096)
    g.set_outputs([g.add_input(TensorType((T, 4), "f32"), "x")])
    ep = torch.export.export(_BranchOnLength(), (torch.randn(5, 4),),
                             dynamic_shapes=dynamic_shapes(g, {"T": 5}), strict=False)
    with pytest.raises(LoweringError, match=r"narrowed dim 0 \(T\) of input %x from \[2, 4096\] to \[2, 20\]"):
        check_still_symbolic(g, ep)
