"""What the mlir target writes: linalg-on-tensors, tosa and stablehlo text that parses back
with torch-mlir's own parser; tosa's static-shape limitation and lowering failures reported
in mlir_report.txt; the rule table refusing ops it has no rule for, with the source line."""
from __future__ import annotations

import os
import tempfile

import pytest
import torch

from spikec import ir
from spikec.codegen import LoweringError, get_target
from spikec.codegen.mlir.toolchain import parse
from spikec.ir import Graph, TensorType, sym

T = sym("T")


def _mlp_graph():
    g = Graph("mlp")
    g.symbols["T"] = (1, 4096)
    x = g.add_input(TensorType((2, T, 8), "f32"), "x")
    w = g.add_constant("w", torch.randn(16, 8))
    h = g.add_node("linear", {"input": x, "weight": w}, [TensorType((2, T, 16), "f32")]).output
    y = g.add_node("softmax", {"self": g.add_node("silu", {"self": h}, [h.type]).output, "dim": -1},
                   [h.type]).output
    g.set_outputs([y])
    return g


@pytest.fixture(scope="module")
def mlp():
    g = _mlp_graph()
    mod = get_target("mlir").lower(g)
    return g, mod, mod.sources()


def test_runs_at_several_lengths(mlp):
    g, mod, _ = mlp
    for length in (1, 7, 33):
        x = torch.randn(2, length, 8)
        torch.testing.assert_close(mod.run(x)[0], ir.interpret(g, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,marker", [("model.linalg.mlir", "linalg."), ("model.tosa.mlir", "tosa."),
                                         ("model.stablehlo.mlir", "stablehlo.")])
def test_each_output_type_parses_back(mlp, name, marker):
    _, _, src = mlp
    text = src[name]
    assert marker in text
    module = parse(text)                                  # torch-mlir's parser, its dialects registered
    assert "func.func @main" in str(module)


def test_tosa_is_static_and_says_so(mlp):
    _, _, src = mlp
    assert "tensor<2x16x8xf32>" in src["model.tosa.mlir"]       # T fixed to static_length=16
    assert "?x" in src["model.stablehlo.mlir"]                   # stablehlo keeps T dynamic
    assert "TOSA takes static shapes only" in src["mlir_report.txt"]


def test_failures_are_reported_not_raised(monkeypatch, tmp_path):
    # nonzero makes a data-dependent size: linalg runs it, tosa and stablehlo cannot lower it
    g = Graph("nz")
    x = g.add_input(TensorType((6,), "f32"), "x")
    m = g.add_node("gt", {"self": x, "other": 0.0}, [TensorType((6,), "bool")]).output
    u = sym("u0")
    g.symbols["u0"] = (0, 6)
    nz = g.add_node("nonzero", {"self": m}, [TensorType((u, 1), "i64")]).output
    g.set_outputs([nz])
    # torch-mlir writes UnnammedModule.mlir to the temp dir when a pipeline fails: not into ours
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    mod = get_target("mlir").lower(g)
    xv = torch.tensor([1.0, -1.0, 2.0, 0.0, 3.0, -2.0])
    assert torch.equal(mod.run(xv)[0], ir.interpret(g, xv))
    src = mod.sources()
    failed = [k for k in ("tosa", "stablehlo") if f"{k}: FAILED" in src["mlir_report.txt"]]
    assert failed and all(f"model.{k}.mlir" not in src for k in failed)
    assert "failed to legalize" in src["mlir_report.txt"]
    assert os.listdir(tmp_path) == []


def test_unsupported_op_names_op_and_line():
    g = Graph("s")
    x = g.add_input(TensorType((4,), "f32"), "x")
    n = g.add_node("sort", {"self": x}, [x.type, TensorType((4,), "i64")], loc=ir.Loc("model.py", 3))
    g.set_outputs(n.outputs)
    with pytest.raises(LoweringError, match=r"(?s)'mlir'.*'sort'.*model.py:3"):
        get_target("mlir").lower(g)
