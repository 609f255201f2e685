"""The verifier: SSA, attributes and inferred types; errors name the node and source line."""
import pytest
import torch

from spikec import ir
from spikec.ir import TensorType, VerifyError, sym

pytestmark = pytest.mark.no_roundtrip   # these graphs are malformed on purpose
T = sym("T")


def base():
    g = ir.Graph("v")
    g.symbols["T"] = (2, 64)
    x = g.add_input(TensorType((2, T, 8), "f32"), "x")
    return g, x


def test_type_error_names_node_and_location():
    g, x = base()
    y = g.add_node("sum", {"self": x, "dim": [1]}, [TensorType((2, T), "f32")], loc=ir.Loc("m.py", 7)).output
    g.set_outputs([y])
    with pytest.raises(VerifyError) as e:
        ir.verify(g)
    assert "declared f32[2, T], inferred f32[2, 8]" in str(e.value)
    assert "m.py:7" in str(e.value) and "sum" in str(e.value)


def test_wrong_dtype_and_wrong_output_count():
    g, x = base()
    y = g.add_node("neg", {"self": x}, [TensorType((2, T, 8), "f16")]).output
    g.set_outputs([y])
    with pytest.raises(VerifyError, match="declared f16"):
        ir.verify(g)
    g, x = base()
    n = g.add_node("topk", {"self": x, "k": 2}, [TensorType((2, T, 2), "f32")])
    g.set_outputs(n.outputs)
    with pytest.raises(VerifyError, match="1 results"):
        ir.verify(g)


def test_use_before_definition_breaks_ssa():
    g, x = base()
    a = g.make_node("neg", {"self": x}, [TensorType((2, T, 8), "f32")])
    b = g.add_node("neg", {"self": a.output}, [TensorType((2, T, 8), "f32")])
    g.nodes.append(a)
    g.set_outputs([b.output])
    with pytest.raises(VerifyError, match="before it is defined"):
        ir.verify(g)


def test_attribute_kind_and_missing_argument():
    g, x = base()
    y = g.add_node("sum", {"self": x, "dim": ["one"]}, [TensorType((2, T), "f32")]).output
    g.set_outputs([y])
    with pytest.raises(VerifyError, match="does not fit kind int"):
        ir.verify(g)
    g, x = base()
    y = g.add_node("softmax", {"self": x}, [TensorType((2, T, 8), "f32")]).output
    g.set_outputs([y])
    with pytest.raises(VerifyError, match="missing required argument 'dim'"):
        ir.verify(g)


def test_undeclared_symbol_and_bad_input_shape():
    g = ir.Graph("v")
    x = g.add_input(TensorType((sym("S"), 4), "f32"), "x")
    g.set_outputs([x])
    with pytest.raises(VerifyError, match="undeclared symbol"):
        ir.verify(g)
    g, x = base()
    w = g.add_constant("w", torch.randn(5, 5))
    y = g.add_node("matmul", {"self": x, "other": w}, [TensorType((2, T, 5), "f32")]).output
    g.set_outputs([y])
    with pytest.raises(VerifyError, match="rejected by shape inference"):
        ir.verify(g)


def test_symbolic_inference_accepts_correct_expressions():
    g, x = base()
    c = g.add_node("cat", {"tensors": [x, x], "dim": 1}, [TensorType((2, 2 * T, 8), "f32")]).output
    r = g.add_node("reshape", {"self": c, "shape": [4, T, 8]}, [TensorType((4, T, 8), "f32")]).output
    g.set_outputs([r])
    ir.verify(g)
    g2, x2 = base()
    bad = g2.add_node("cat", {"tensors": [x2, x2], "dim": 1}, [TensorType((2, T + 1, 8), "f32")]).output
    g2.set_outputs([bad])
    with pytest.raises(VerifyError, match="inferred f32"):
        ir.verify(g2)


def test_ir_text_with_a_type_error_is_refused_at_the_node():
    text = ("graph @g(%x: f32[2, 3]) -> (f32[3, 2]) {\n"
            "  %0: f32[3, 2] = neg(%x)  loc(\"model.py\":5)\n"
            "  return %0\n}\n")
    g = ir.parse(text)
    with pytest.raises(VerifyError) as e:
        ir.verify(g)
    assert "declared f32[3, 2], inferred f32[2, 3]" in str(e.value) and "model.py:5" in str(e.value)
