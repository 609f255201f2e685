"""Core-op lowering rules of the cpu target where TVM's defaults differ from
torch's semantics, the dense GEMM kernel, and the target's errors. Oracle:
spikec.ir.interpret (torch). Tolerance: exact for integer/bool results,
max |diff| <= 1e-5 · max(1, max |want|) for float32.
"""
import pytest
import torch

import spikec
from spikec import ir
from spikec.codegen import LoweringError, get_target
from spikec.ir import TensorType, sym

T = sym("T")


def _check(g, *inputs, **options):
    mod = get_target("cpu").lower(g, **options)
    got = mod.run(*inputs)
    want = ir.interpret(g, *inputs)
    want = list(want) if isinstance(want, tuple) else [want]
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
        if b.is_floating_point():
            assert (a - b).abs().max() <= 1e-5 * max(1.0, b.abs().max().item())
        else:
            assert torch.equal(a, b)
    return mod


def _unary_graph(op, **args):
    g = ir.Graph("u")
    g.symbols["T"] = (1, None)
    x = g.add_input(TensorType((T,), "f32"), "x")
    types = ir.infer_types(ir.get_op(op), {"self": x, **args}, ir.InferContext(g.symbols))
    g.set_outputs(g.add_node(op, {"self": x, **args}, types).outputs)
    return g


@pytest.mark.parametrize("op", ["log1p", "expm1"])
def test_log1p_expm1_keep_small_arguments(op):
    x = torch.tensor([1e-9, -3e-8, 1e-6, 1e-3, 0.5, 2.0])        # exp(x)-1 / log(1+x) lose these
    _check(_unary_graph(op), x)


def test_round_is_half_to_even_and_casts_to_bool_are_nonzero():
    _check(_unary_graph("round"), torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, 0.49]))
    _check(_unary_graph("_to_copy", dtype=torch.bool), torch.tensor([0.0, 0.5, -0.25, 3.0]))


def test_negative_indices_and_accumulating_index_put():
    # x[i] and x[i] += vals with i = [-1, 2, 2, -5]: negative rows count from the end
    g = ir.Graph("idx")
    x = g.add_input(TensorType((5, 3), "f32"), "x")
    i = g.add_input(TensorType((4,), "i64"), "i")
    vals = g.add_input(TensorType((4, 3), "f32"), "vals")
    sel = g.add_node("index", {"self": x, "indices": [i]}, [TensorType((4, 3), "f32")]).output
    put = g.add_node("index_put", {"self": x, "indices": [i], "values": vals, "accumulate": True},
                     [TensorType((5, 3), "f32")]).output
    g.set_outputs([sel, put])
    _check(g, torch.randn(5, 3), torch.tensor([-1, 2, 2, -5]), torch.randn(4, 3))   # duplicate rows add up


def test_nonzero_has_a_data_dependent_length():
    g = ir.Graph("nz")
    g.symbols["u0"] = (0, None)
    x = g.add_input(TensorType((6,), "f32"), "x")
    gt = g.add_node("gt", {"self": x, "other": 0.0}, [TensorType((6,), "bool")]).output
    nz = g.add_node("nonzero", {"self": gt}, [TensorType((sym("u0"), 1), "i64")]).output
    g.set_outputs([nz])
    mod = get_target("cpu").lower(g)
    for x in (torch.tensor([1.0, -1, 2, 0, 3, -2]), torch.tensor([-1.0] * 6)):
        assert torch.equal(mod.run(x)[0], torch.nonzero(x > 0))


@pytest.mark.parametrize("gemm", ["tir", "blas", "relax"])
def test_linear_with_ragged_rows_and_columns(gemm):
    # rows B·T not a multiple of the 4-row tile, 70 columns not a multiple of the 32-wide panel
    g = ir.Graph("lin")
    g.symbols["T"] = (1, None)
    x = g.add_input(TensorType((2, T, 24), "f32"), "x")
    w = g.add_constant("w", torch.randn(70, 24))
    b = g.add_constant("b", torch.randn(70))
    y = g.add_node("linear", {"input": x, "weight": w, "bias": b}, [TensorType((2, T, 70), "f32")]).output
    z = g.add_node("linear", {"input": y, "weight": g.add_constant("w2", torch.randn(64, 70))},
                   [TensorType((2, T, 64), "f32")]).output
    g.set_outputs([z])
    mod = get_target("cpu").lower(g, gemm=gemm)
    src = mod.sources()["relax_module.py"]
    assert ("dense_k24_n70_bias" in src) == (gemm == "tir")
    assert ("spikec.cpu.linear" in src) == (gemm == "blas")
    for L in (1, 3, 67):
        x = torch.randn(2, L, 24)
        want = ir.interpret(g, x)
        assert (mod.run(x)[0] - want).abs().max() <= 1e-5 * want.abs().max()


def test_unsupported_op_names_op_target_and_line():
    g = ir.Graph("bad")
    x = g.add_input(TensorType((3, 3), "f32"), "x")
    y = g.add_node("masked_scatter", {"self": x, "mask": x, "source": x}, [x.type], loc=ir.Loc("net.py", 3))
    g.set_outputs(y.outputs)
    with pytest.raises(LoweringError) as err:
        spikec.compile(g, target="cpu", pipeline="")
    msg = str(err.value)
    assert "'masked_scatter'" in msg and "'cpu'" in msg and "net.py:3" in msg, msg


def test_rule_failure_is_a_lowering_error_at_the_node():
    g = ir.Graph("bad2")
    x = g.add_input(TensorType((3, 4), "f32"), "x")
    n = g.add_node("diagonal", {"self": x}, [TensorType((3,), "f32")], loc=ir.Loc("net.py", 9))
    g.set_outputs(n.outputs)
    with pytest.raises(LoweringError) as err:
        get_target("cpu").lower(g)
    assert "diagonal" in str(err.value) and "net.py:9" in str(err.value)

