"""Views that merge dynamic dims, on the mlir target.

torch-mlir's legacy aten.view lowering compiled [B, T, 8] -> [B*T, 8] as if T were 1
(tensor<?x1x8xf32>): the code wrote B*T*8 floats into a B*8 buffer and corrupted the heap
(the SIGSEGV / "corrupted size vs. prev_size" of every zoo prefill with a symbolic batch).
The target now uses the strict lowering (tensor.reshape with run-time sizes) and spells out
-1 sizes, including the flatten that torch-mlir's own nonzero decomposition makes.
Oracle: spikec.ir.interpret. Tolerance: views and nonzero exactly; linear and sin 1e-5 + 1e-5·|want|."""
from __future__ import annotations

import pytest
import torch

from spikec import ir
from spikec.codegen import get_target
from spikec.ir import Graph, InferContext, TensorType, sym

B, T = sym("B"), sym("T")


def _add(g, op, args):
    return g.add_node(op, args, ir.infer_types(ir.get_op(op), args, InferContext(g.symbols))).outputs[0]


def _views_graph():
    g = Graph("merge_views")
    g.symbols.update({"B": (1, 64), "T": (2, 4096)})
    x = g.add_input(TensorType((B, T, 8), "f32"), "x")
    y = _add(g, "mul", {"self": x, "other": 2.0})
    merged = _add(g, "view", {"self": y, "size": [B * T, 8]})                # B and T into one dim
    inferred = _add(g, "view", {"self": y, "size": [-1, 8]})                 # the same with a -1
    flat = _add(g, "reshape", {"self": y, "shape": [-1]})
    w = g.add_constant("w", torch.randn(3, 8, generator=torch.Generator().manual_seed(0)))
    proj = _add(g, "linear", {"input": merged, "weight": w})
    split = _add(g, "view", {"self": _add(g, "sin", {"self": inferred}), "size": [B, T, 2, 4]})
    g.set_outputs([merged, inferred, flat, proj, split])
    return g


@pytest.fixture(scope="module")
def views():
    g = _views_graph()
    return g, get_target("mlir").lower(g)


def test_no_dim_assumed_to_be_one(views):
    # checked on the text first: the old lowering would crash the process when run
    _, mod = views
    assert "?x1x8x" not in mod.linalg_text and "tensor<?x1x8xf32>" not in mod.linalg_text
    assert "tensor.reshape" in mod.linalg_text


@pytest.mark.parametrize("batch,length", [(2, 3), (1, 7), (3, 5)])
def test_merged_views_match_interpreter(views, batch, length):
    g, mod = views
    x = torch.randn(batch, length, 8, generator=torch.Generator().manual_seed(batch * 100 + length))
    got, want = mod.run(x), ir.interpret(g, x)
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape, (i, a.shape, b.shape)
        tol = 1e-5 if i >= 3 else 0.0                 # linear and sin (libm's sinf) are not bit-exact
        torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=lambda m: f"output {i}: {m}")


def test_nonzero_of_symbolic_rows():
    # torch-mlir decomposes nonzero with view(mask, [-1]) on a [?, 2] mask: the strict view
    # lowering rejected it ("failed to legalize torch.aten.view") until -1 is spelled out
    g = Graph("nonzero_rows")
    g.symbols.update({"T": (2, 4096), "u0": (0, None)})
    x = g.add_input(TensorType((T, 2), "f32"), "x")
    nz = g.add_node("nonzero", {"self": _add(g, "gt", {"self": x, "other": 0.0})},
                    [TensorType((sym("u0"), 2), "i64")]).output
    g.set_outputs([nz])
    mod = get_target("mlir").lower(g)
    gen = torch.Generator().manual_seed(1)
    for xv in (torch.randn(3, 2, generator=gen), torch.randn(9, 2, generator=gen), -torch.ones(4, 2)):
        got, want = mod.run(xv)[0], ir.interpret(g, xv)
        assert torch.equal(got, want), (xv, got, want)
