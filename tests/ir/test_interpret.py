"""The reference interpreter: symbols bound from inputs, checked results, structured ops."""
import pytest
import torch

from spikec import ir
from spikec.ir import InterpretError, TensorType, sym

T = sym("T")


def gla_scan_graph():
    """carry S [d, d]; per step S = a*S + k v^T; y = q S. Built by hand: an
    oracle for the interpreter's scan independent of torch's scan."""
    d = 4
    g = ir.Graph("scan")
    g.symbols["T"] = (1, None)
    s0 = g.add_input(TensorType((d, d), "f32"), "s0")
    q = g.add_input(TensorType((T, d), "f32"), "q")
    k = g.add_input(TensorType((T, d), "f32"), "k")
    body = ir.Graph("combine")
    S = body.add_input(TensorType((d, d), "f32"), "S")
    qt = body.add_input(TensorType((d,), "f32"), "qt")
    kt = body.add_input(TensorType((d,), "f32"), "kt")
    decay = body.add_node("mul", {"self": S, "other": 0.5}, [TensorType((d, d), "f32")]).output
    outer = body.add_node("einsum", {"equation": "i,j->ij", "tensors": [kt, kt]}, [TensorType((d, d), "f32")]).output
    S2 = body.add_node("add", {"self": decay, "other": outer}, [TensorType((d, d), "f32")]).output
    y = body.add_node("matmul", {"self": qt, "other": S2}, [TensorType((d,), "f32")]).output
    body.set_outputs([S2, y])
    n = g.add_node("scan", {"init": [s0], "xs": [q, k]}, [TensorType((d, d), "f32"), TensorType((T, d), "f32")],
                   regions=[body])
    g.set_outputs(n.outputs)
    return g


def test_scan_matches_a_python_loop():
    g = gla_scan_graph()
    ir.verify(g)
    for length in (1, 5):
        s0, q, k = torch.randn(4, 4), torch.randn(length, 4), torch.randn(length, 4)
        S, ys = s0, []
        for t in range(length):
            S = 0.5 * S + torch.outer(k[t], k[t])
            ys.append(q[t] @ S)
        got_S, got_y = ir.interpret(g, s0, q, k)
        torch.testing.assert_close(got_S, S, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(got_y, torch.stack(ys), rtol=1e-6, atol=1e-6)


def test_inputs_that_contradict_the_symbols_are_refused():
    g = ir.Graph("two")
    g.symbols["T"] = (1, None)
    a = g.add_input(TensorType((T, 3), "f32"), "a")
    b = g.add_input(TensorType((T, 3), "f32"), "b")
    c = g.add_node("add", {"self": a, "other": b}, [TensorType((T, 3), "f32")]).output
    g.set_outputs([c])
    assert ir.interpret(g, torch.ones(5, 3), torch.ones(5, 3)).shape == (5, 3)
    with pytest.raises(InterpretError, match="declared f32\\[T, 3\\]"):
        ir.interpret(g, torch.ones(5, 3), torch.ones(6, 3))
    with pytest.raises(InterpretError, match="takes 2 inputs"):
        ir.interpret(g, torch.ones(5, 3))


def test_failing_op_reports_the_node():
    g = ir.Graph("bad")
    a = g.add_input(TensorType((3, 4), "f32"), "a")
    b = g.add_input(TensorType((5, 6), "f32"), "b")
    c = g.add_node("mm", {"self": a, "mat2": b}, [TensorType((3, 6), "f32")], loc=ir.Loc("m.py", 3)).output
    g.set_outputs([c])
    with pytest.raises(InterpretError) as e:
        ir.interpret(g, torch.ones(3, 4), torch.ones(5, 6))
    assert "mm failed" in str(e.value) and "m.py:3" in str(e.value)


def test_while_loop_and_cond():
    g = ir.Graph("loops")
    x = g.add_input(TensorType((), "f32"), "x")
    cond = ir.Graph("cond")
    c_in = cond.add_input(TensorType((), "f32"), "c")
    cond.set_outputs([cond.add_node("lt", {"self": c_in, "other": 100.0}, [TensorType((), "bool")]).output])
    body = ir.Graph("body")
    b_in = body.add_input(TensorType((), "f32"), "b")
    body.set_outputs([body.add_node("mul", {"self": b_in, "other": 3.0}, [TensorType((), "f32")]).output])
    w = g.add_node("while_loop", {"carried_inputs": [x]}, [TensorType((), "f32")], regions=[cond, body]).output
    tb, fb = ir.Graph("true_branch"), ir.Graph("false_branch")
    ti, fi = tb.add_input(TensorType((), "f32"), "t"), fb.add_input(TensorType((), "f32"), "f")
    tb.set_outputs([tb.add_node("neg", {"self": ti}, [TensorType((), "f32")]).output])
    fb.set_outputs([fi])
    p = g.add_node("gt", {"self": w, "other": 200.0}, [TensorType((), "bool")]).output
    r = g.add_node("cond", {"pred": p, "operands": [w]}, [TensorType((), "f32")], regions=[tb, fb]).output
    g.set_outputs([r])
    ir.verify(g)
    assert ir.interpret(g, torch.tensor(1.0)).item() == -243.0      # 1 -> 243 > 200 -> negated
    assert ir.interpret(g, torch.tensor(50.0)).item() == 150.0      # 50 -> 150, kept
