"""Text form: Before/Expected printing, parsing back, and parse errors that say where."""
import pytest
import torch

from spikec import ir
from spikec.ir import ParseError, TensorType, sym
from graphs import small_graph

T = sym("T")


EXPECTED = '''graph @main(%x: f32[2, T, 16]) -> (f32[2, (2*T), 2], f16[2, (2*T), 2]) {
  symbols {T: [2, 4096]}
  %proj.weight: f32[16, 16] = constant(name="proj.weight")
  %0: f32[2, T, 16] = linear(%x, %proj.weight)  loc("model.py":12)
  %1: f32[2, T, 16] = mul(%0, 0.5)
  %2: f32[2, (2*T), 16] = cat([%1, %0], dim=1)
  %3: f32[2, (2*T), 2], %4: i64[2, (2*T), 2] = topk(%2, k=2)
  %5: f16[2, (2*T), 2] = _to_copy(%4, dtype=f16)
  return %3, %5
}
'''


def test_print_is_stable_and_readable():
    assert str(small_graph()) == EXPECTED


def test_parse_reads_back_the_same_graph():
    g = small_graph()
    back = ir.parse(EXPECTED, constants=g.constants)
    assert ir.structural_diff(g, back, names=True) is None
    assert str(back) == EXPECTED
    ir.verify(back)


def test_defaults_are_not_printed_and_literals_round_trip():
    g = ir.Graph("lits")
    x = g.add_input(TensorType((4,), "f32"), "x")
    a = g.add_node("add", {"self": x, "other": float("-inf"), "alpha": 1}, [TensorType((4,), "f32")]).output
    b = g.add_node("clamp", {"self": a, "min": -1e-06, "max": float("nan")}, [TensorType((4,), "f32")]).output
    c = g.add_node("div", {"self": b, "other": 3, "rounding_mode": "floor"}, [TensorType((4,), "f32")]).output
    g.set_outputs([c])
    text = str(g)
    assert "alpha" not in text               # equal to its default
    assert "-inf" in text and "nan" in text and '"floor"' in text and "-1e-06" in text


def test_symbolic_expressions_round_trip():
    g = ir.Graph("syms")
    g.symbols.update({"T": (1, None), "u0": (0, 64)})
    x = g.add_input(TensorType((T, 8), "f32"), "x")
    from torch.utils._sympy.functions import FloorDiv
    y = g.add_node("view", {"self": x, "size": [FloorDiv(T, 2), 16]},
                   [TensorType((FloorDiv(T, 2), 16), "f32")]).output
    g.set_outputs([y])
    text = str(g)
    assert "FloorDiv(T, 2)" in text and "T: [1, ?]" in text
    assert ir.structural_diff(g, ir.parse(text)) is None


@pytest.mark.parametrize("text, message, line", [
    ("graph @g(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = bogus_op(%x)\n  return %0\n}\n", "unknown op 'bogus_op'", 2),
    ("graph @g(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = neg(%y)\n  return %0\n}\n", "undefined value %y", 2),
    ("graph @g(%x: f32[T]) -> (f32[T]) {\n  return %x\n}\n", "undeclared symbol 'T'", 1),
    ("graph @g(%x: f33[2]) -> (f33[2]) {\n  return %x\n}\n", "unknown dtype 'f33'", 1),
    ("graph @g(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = neg(%x, flavour=1)\n  return %0\n}\n", "no parameter 'flavour'", 2),
    ("graph @g(%x: f32[2]) -> (f32[3]) {\n  return %x\n}\n", "returns (f32[2])", 3),
    ("graph @g(%x: f32[2]) -> (f32[2]) {\n  %x: f32[2] = neg(%x)\n  return %x\n}\n", "defined twice", 2),
    ("graph @g(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = neg(%x\n  return %0\n}\n", "expected ')'", 3),
])
def test_parse_errors_name_the_problem_and_the_line(text, message, line):
    with pytest.raises(ParseError) as e:
        ir.parse(text)
    assert message in str(e.value)
    assert f"line {line}," in str(e.value)


def test_constants_are_held_by_reference():
    w = torch.randn(16, 16)
    g = ir.Graph("refs")
    v = g.add_constant("w", w)
    g.set_outputs([v])
    assert g.constants["w"] is w
    assert ir.interpret(g) is w
