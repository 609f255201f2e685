"""ONNX frontend: the test modules exported with torch.onnx (dynamo) import,
verify, interpret to the eager output (fp32, max abs error <= 1e-5) and
round-trip through the text form; bad files and unsupported ops give clear
errors."""
import os
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

import modules as M
from spikec import ir
from spikec.frontend import from_onnx
from spikec.frontend.onnx_ops import supported_ops
from spikec.ir import FrontendError, UnsupportedOpError

TOL = 1e-5
NAMES = sorted(n for n in M.MODULES if n != "spiking")     # spiking is a custom op with no ONNX mapping


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> path of the module exported to ONNX. Each export takes 1-3 s, so
    it happens once per run: the folder is shared by the xdist workers and a
    file appears there only when complete (written aside, then renamed)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    root = root / "onnx_exports"
    root.mkdir(exist_ok=True)

    def get(name):
        path = root / f"{name}.onnx"
        if not path.exists():
            m, x = M.make(name), M.example_input()
            dyn = ({1: torch.export.Dim("T", min=2, max=4096)},) if name in M.DYNAMIC_OK else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                prog = torch.onnx.export(m, (x,), dynamo=True, dynamic_shapes=dyn, verbose=False)
            tmp = root / f"{name}.{os.getpid()}.tmp.onnx"
            prog.save(str(tmp))
            os.replace(tmp, path)
        return str(path)
    return get


@pytest.mark.parametrize("name", NAMES)
def test_exported_module_imports_and_runs(name, exported):
    m, x = M.make(name), M.example_input()
    g = from_onnx(exported(name))
    ir.verify(g)
    with torch.no_grad():
        assert (ir.interpret(g, x) - m(x)).abs().max().item() <= TOL
    assert ir.structural_diff(g, ir.parse(str(g), constants=g.constants)) is None
    assert all(n.loc is None or n.loc.file.startswith(f"{name}.onnx") for n in g.walk())
    if name in M.DYNAMIC_OK:
        text = str(g)
        assert "T: [1, ?]" in text and "%x: f32[2, T, 16]" in text
        for T in (5, 23):
            x = M.example_input(T=T)
            with torch.no_grad():
                assert (ir.interpret(g, x) - m(x)).abs().max().item() <= TOL
    else:
        assert g.symbols == {}


def test_shape_arithmetic_is_folded_into_literal_sizes(exported):
    g = from_onnx(exported("swa"), symbols={"T": (2, 4096)})
    ops = g.op_counts()
    assert g.symbols == {"T": (2, 4096)}
    assert "full" not in ops and "cat" in ops                   # no Shape/Gather/Concat size code left
    assert any(n.op == "reshape" and n.args["shape"] == [2, ir.sym("T"), 3, 2, 8] for n in g.nodes)
    assert any(n.op == "arange" and n.args["end"] == ir.sym("T") for n in g.nodes)


def test_moe_gets_fresh_data_dependent_symbols(exported):
    g = from_onnx(exported("moe_nonzero"))
    assert {"u0", "u1", "u2", "u3"} <= set(g.symbols) and g.symbols["u0"] == (0, None)
    ops = g.op_counts()
    assert ops["nonzero"] == 4 and ops["index_select"] == 8 and ops["linear"] == 13
    # NonZero's [rank, N] and the exporter's transpose back cancel out
    assert "permute" not in ops


def test_scan_if_loop_become_regions(exported):
    scan = next(n for n in from_onnx(exported("gla_scan")).nodes if n.op == "scan")
    assert [r.name for r in scan.regions] == ["combine"] and "einsum" in scan.regions[0].op_counts()
    cond = next(n for n in from_onnx(exported("cond")).nodes if n.op == "cond")
    assert [r.name for r in cond.regions] == ["true_branch", "false_branch"]
    loop = next(n for n in from_onnx(exported("while_loop")).nodes if n.op == "while_loop")
    assert [r.name for r in loop.regions] == ["cond", "body"]


def test_loads_bytes_and_model_proto(exported):
    path = exported("rmsnorm")
    a = from_onnx(path)
    b = from_onnx(onnx.load(path), source_name="rmsnorm.onnx")
    c = from_onnx(open(path, "rb").read(), source_name="rmsnorm.onnx")
    assert ir.structural_diff(a, b) is None and ir.structural_diff(a, c) is None


# -- errors -----------------------------------------------------------------------
@pytest.mark.no_roundtrip
def test_random_bytes_are_not_an_onnx_model(tmp_path):
    path = tmp_path / "noise.onnx"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(FrontendError) as e:
        from_onnx(path)
    assert "noise.onnx" in str(e.value) and "not a valid ONNX model" in str(e.value)


@pytest.mark.no_roundtrip
def test_text_file_is_not_an_onnx_model(tmp_path):
    path = tmp_path / "model.txt"
    path.write_text("graph @main(%x: f32[2]) -> (f32[2]) {\n  return %x\n}\n")
    with pytest.raises(FrontendError) as e:
        from_onnx(path)
    assert "model.txt" in str(e.value) and "not a valid ONNX model" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(FrontendError, match="does not exist"):
        from_onnx(tmp_path / "absent.onnx")


def _model(nodes, inputs, outputs, opsets=(("", 18),), functions=(), inits=()):
    return helper.make_model(
        helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits)),
        opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], functions=list(functions))


def _vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def test_unsupported_op_names_op_node_and_index():
    m = _model([helper.make_node("Relu", ["x"], ["r"], name="first"),
                helper.make_node("Det", ["r"], ["y"], name="the_det")],
               [_vi("x", [3, 3])], [_vi("y", [])])
    with pytest.raises(UnsupportedOpError) as e:
        from_onnx(m)
    text = str(e.value)
    assert "Det" in text and "the_det" in text and "#1" in text and "<onnx>:1" in text


def test_custom_domain_op_without_function_is_unsupported():
    m = _model([helper.make_node("Spike", ["x"], ["y"], domain="brain", name="spike0")],
               [_vi("x", [4])], [_vi("y", [4])], opsets=(("", 18), ("brain", 1)))
    with pytest.raises(UnsupportedOpError) as e:
        from_onnx(m)
    assert "brain::Spike" in str(e.value) and "spike0" in str(e.value)


def test_model_local_functions_are_inlined():
    body = [helper.make_node("Constant", [], ["zero"], value_float=0.0),
            helper.make_node("Greater", ["a", "zero"], ["gt"]),
            helper.make_node("Cast", ["gt"], ["b"], to=TensorProto.FLOAT)]
    fn = helper.make_function("brain", "Spike", ["a"], ["b"], body, [helper.make_opsetid("", 18)])
    m = _model([helper.make_node("Spike", ["x"], ["s"], domain="brain"),
                helper.make_node("Mul", ["s", "x"], ["y"])],
               [_vi("x", ["N"])], [_vi("y", ["N"])], opsets=(("", 18), ("brain", 1)), functions=[fn])
    g = from_onnx(m)
    ir.verify(g)
    x = torch.tensor([-1.0, 0.5, 2.0])
    assert torch.equal(ir.interpret(g, x), torch.tensor([0.0, 0.5, 2.0]))
    assert g.symbols == {"N": (1, None)}


def test_data_dependent_shape_is_an_error_unless_bound():
    m = _model([helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape_it")],
               [_vi("x", [2, 6]), _vi("shape", [2], TensorProto.INT64)], [_vi("y", [3, 4])])
    with pytest.raises(FrontendError) as e:
        from_onnx(m)
    assert "reshape_it" in str(e.value) and "known at import" in str(e.value)
    g = from_onnx(m, constant_inputs={"shape": np.array([3, -1])})
    assert [v.type.shape for v in g.outputs] == [(3, 4)] and len(g.inputs) == 1


def test_unhandled_attribute_is_unsupported():
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="r", mystery=1)], [_vi("x", [2])], [_vi("y", [2])])
    with pytest.raises(UnsupportedOpError, match="mystery"):
        from_onnx(m)


def test_symbol_names_are_sanitised():
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", ["batch size", "2*s0", None])],
               [_vi("y", ["batch size", "2*s0", None])])
    g = from_onnx(m)
    assert set(g.symbols) == {"batch_size", "s_2_s0", "x_2"}
    assert ir.structural_diff(g, ir.parse(str(g))) is None


def test_supported_ops_lists_the_table():
    ops = supported_ops()
    assert ops == sorted(ops) and len(ops) > 100
    for op in ("Gemm", "LayerNormalization", "Softmax", "Trilu", "Expand", "Range", "Where", "Gather",
               "ScatterElements", "NonZero", "TopK", "ReduceSum", "Cast", "Shape", "Einsum", "Scan", "If", "Loop"):
        assert op in ops


def test_docs_list_every_supported_op():
    import pathlib
    doc = (pathlib.Path(__file__).parents[2] / "docs" / "onnx.md").read_text()
    missing = [op for op in supported_ops() if op not in doc]
    assert not missing, f"docs/onnx.md does not mention {missing}"
