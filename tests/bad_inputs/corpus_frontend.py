"""Corpus cases for the frontends: malformed and unsupported ONNX, IR text with syntax
and type errors, PyTorch models whose export fails."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

import bad_makers as mk
from corpus_case import case, static
from spikec import ir
from spikec.ir import FrontendError, ParseError, UnsupportedOpError, VerifyError


# == ONNX: malformed or truncated files =====================================================
def onnx_case(id, build, match, error=FrontendError, category="onnx-malformed"):
    def make(c):
        return {"input": mk.write_onnx(c.tmp / f"{id}.onnx", build())}

    def api(m, c):
        from spikec.frontend import from_onnx
        return from_onnx(m["input"])
    case(id, category, match, make=make, api=api, cli=("inspect", "{input}"), error=error)


vi, node, R = mk.vi, helper.make_node, mk.relu_model
onnx_case("onnx_truncated", lambda: R().SerializeToString()[:60],
          r"onnx_truncated\.onnx is not a valid ONNX model")
onnx_case("onnx_empty_file", lambda: b"",
          r"onnx_empty_file\.onnx is not a valid ONNX model: it has no ir_version or no graph outputs")
onnx_case("onnx_random_bytes", lambda: np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8).tobytes(),
          r"onnx_random_bytes\.onnx is not a valid ONNX model")
onnx_case("onnx_is_ir_text", lambda: Path(static("ir", "ok_linear.ir")).read_bytes(),
          r"onnx_is_ir_text\.onnx is not a valid ONNX model")
onnx_case("onnx_no_outputs", lambda: mk.onnx_model([node("Relu", ["x"], ["y"])], [vi("x", [2])], []),
          r"no_outputs\.onnx is not a valid ONNX model: it has no ir_version or no graph outputs")
onnx_case("onnx_undefined_input", lambda: mk.onnx_model([node("Relu", ["nowhere"], ["y"], name="r0")],
                                                        [vi("x", [2])], [vi("y", [2])]),
          r"Relu reads 'nowhere', which no earlier node or input defines \(at onnx_undefined_input\.onnx:0 "
          r"\(ONNX node 'r0', Relu\)\)")
onnx_case("onnx_output_not_produced", lambda: mk.onnx_model([node("Relu", ["x"], ["r"])],
                                                            [vi("x", [2])], [vi("y", [2])]),
          r"graph output 'y' is not produced by any node")
onnx_case("onnx_name_defined_twice", lambda: mk.onnx_model(
    [node("Relu", ["x"], ["y"], name="a"), node("Neg", ["x"], ["y"], name="b")], [vi("x", [2])], [vi("y", [2])]),
    r"Neg node 'b' defines 'y', which an earlier node, input or initializer already defines \(at .*:1 ")
onnx_case("onnx_too_few_inputs", lambda: mk.onnx_model([node("Add", ["x"], ["y"], name="add1")],
                                                       [vi("x", [2])], [vi("y", [2])]),
          r"Add node 'add1' has 1 input\(s\); Add \(opset 18\) takes 2 \(at .*ONNX node 'add1', Add")
onnx_case("onnx_too_many_outputs", lambda: mk.onnx_model([node("Relu", ["x"], ["y", "z"], name="r2")],
                                                         [vi("x", [2])], [vi("y", [2])]),
          r"Relu node 'r2' has 2 output\(s\); Relu \(opset 18\) gives 1 to 1")
onnx_case("onnx_missing_required_attribute", lambda: mk.onnx_model([node("Cast", ["x"], ["y"], name="cast0")],
                                                                   [vi("x", [2])], [vi("y", [2])]),
          r"Cast node 'cast0' lacks the required attribute\(s\) to")
onnx_case("onnx_matmul_shapes", lambda: mk.onnx_model([node("MatMul", ["a", "b"], ["y"], name="mm")],
                                                      [vi("a", [2, 3]), vi("b", [4, 5])], [vi("y", [2, 5])]),
          r"matmul\(self=f32\[2, 3\], other=f32\[4, 5\]\) is rejected by shape inference: .*reduction dim.* "
          r"\(at .*ONNX node 'mm', MatMul")


def _bad_initializer():
    t = helper.make_tensor("w", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    del t.float_data[:]
    t.raw_data = b"\x00" * 6          # 6 bytes for four float32s
    return mk.onnx_model([node("Add", ["x", "w"], ["y"])], [vi("x", [4])], [vi("y", [4])], inits=[t])


onnx_case("onnx_initializer_size", _bad_initializer, r"cannot read initializer 'w': .*buffer size")


def _external_data_missing():
    t = helper.make_tensor("w", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    del t.float_data[:]
    t.data_location = TensorProto.EXTERNAL
    entry = t.external_data.add()
    entry.key, entry.value = "location", "weights-that-are-not-here.bin"
    return mk.onnx_model([node("Add", ["x", "w"], ["y"])], [vi("x", [4])], [vi("y", [4])], inits=[t])


onnx_case("onnx_external_data_missing", _external_data_missing,
          r"onnx_external_data_missing\.onnx is not a valid ONNX model: .*weights-that-are-not-here\.bin")
onnx_case("onnx_transpose_not_a_permutation",
          lambda: mk.onnx_model([node("Transpose", ["x"], ["y"], perm=[0, 0], name="tp")],
                                [vi("x", [2, 3])], [vi("y", [3, 2])]),
          r"Transpose: perm \[0, 0\] is not a permutation of the 2 axes \(at .*ONNX node 'tp'")
onnx_case("onnx_axis_out_of_range", lambda: mk.onnx_model([node("Softmax", ["x"], ["y"], axis=5, name="sm")],
                                                          [vi("x", [2, 3])], [vi("y", [2, 3])]),
          r"Softmax: axis 5 is out of range for rank 2 \(at .*ONNX node 'sm', Softmax")
onnx_case("onnx_negative_dim", lambda: mk.onnx_model([node("Relu", ["x"], ["y"])], [vi("x", [2, -3])],
                                                     [vi("y", [2, -3])]),
          r"graph input 'x' has the negative size -3 at axis 1")
onnx_case("onnx_untyped_input", lambda: mk.onnx_model([node("Relu", ["x"], ["y"])],
                                                      [helper.make_value_info("x", onnx.TypeProto())],
                                                      [vi("y", [2])]),
          r"graph input 'x' is a None; only tensor inputs are supported", error=UnsupportedOpError)
onnx_case("onnx_reshape_element_count",
          lambda: mk.onnx_model([node("Reshape", ["x", "s"], ["y"], name="rs")], [vi("x", [2, 3])], [vi("y", [5])],
                                inits=[helper.make_tensor("s", TensorProto.INT64, [1], [5])]),
          r"reshape\(self=f32\[2, 3\]\) is rejected by shape inference: .*shape '\[5\]' is invalid.*ONNX node 'rs'")
onnx_case("onnx_shape_from_data", lambda: mk.onnx_model(
    [node("Reshape", ["x", "shape"], ["y"], name="reshape_it")],
    [vi("x", [2, 6]), vi("shape", [2], TensorProto.INT64)], [vi("y", [3, 4])]),
    r"Reshape: shape \(input 1, 'shape'\) is computed from data at run time; spikec needs it known at import")


def _newer_ir_version():
    m = R()
    m.ir_version = 99
    return m


def _newer_opset():
    m = R()
    m.opset_import[0].version = 99
    return m


onnx_case("onnx_newer_ir_version", _newer_ir_version,
          r"onnx_newer_ir_version\.onnx has ONNX IR version 99; the installed onnx .* reads up to \d+")
onnx_case("onnx_newer_opset", _newer_opset,
          r"onnx_newer_opset\.onnx uses ONNX opset 99; the installed onnx .* knows opsets up to \d+")

# == ONNX: unsupported ops and types ========================================================
U = dict(error=UnsupportedOpError, category="onnx-unsupported")
onnx_case("onnx_unsupported_conv", lambda: mk.onnx_model(
    [node("Conv", ["x", "w"], ["y"], name="conv0")], [vi("x", [1, 1, 4, 4]), vi("w", [1, 1, 3, 3])],
    [vi("y", [1, 1, 2, 2])]),
    r"unsupported ONNX op Conv \(node 'conv0', #0\) .*hint: .*supported_ops\(\)", **U)
onnx_case("onnx_custom_domain_op", lambda: mk.onnx_model(
    [node("Spike", ["x"], ["y"], domain="brain", name="spike0")], [vi("x", [4])], [vi("y", [4])], domains=["brain"]),
    r"unsupported ONNX op brain::Spike \(node 'spike0'.*model-local function", **U)
onnx_case("onnx_string_tensor", lambda: mk.onnx_model(
    [node("Identity", ["x"], ["y"])], [vi("x", [2], TensorProto.STRING)], [vi("y", [2], TensorProto.STRING)]),
    r"graph input 'x' has ONNX element type STRING, which spikec does not support", **U)
onnx_case("onnx_unknown_attribute", lambda: mk.onnx_model(
    [node("Relu", ["x"], ["y"], name="r", mystery=1)], [vi("x", [2])], [vi("y", [2])]),
    r"Relu: attribute\(s\) mystery not supported \(node 'r', #0\)", **U)
onnx_case("onnx_sequence_input", lambda: mk.onnx_model(
    [node("Identity", ["x"], ["y"])], [helper.make_tensor_sequence_value_info("x", TensorProto.FLOAT, [2])],
    [vi("y", [2])]),
    r"graph input 'x' is a sequence_type; only tensor inputs are supported", **U)


def _sparse_initializer():
    m = R()
    vals = helper.make_tensor("sv", TensorProto.FLOAT, [1], [1.0])
    idx = helper.make_tensor("si", TensorProto.INT64, [1], [0])
    m.graph.sparse_initializer.append(helper.make_sparse_tensor(vals, idx, [4]))
    return m


onnx_case("onnx_sparse_initializer", _sparse_initializer, r"sparse initializers are not supported", **U)


# == IR text: syntax errors and type errors ==================================================
def ir_case(id, file, match, error, category):
    def api(m, c):
        ir.verify(ir.parse(Path(m["input"]).read_text()))
    case(id, category, match, make=lambda c: {"input": static("ir", file)}, api=api, cli=("opt", "{input}"),
         error=error)


for _id, _file, _match in [
    ("ir_unknown_op", "syntax_unknown_op.ir", r"unknown op 'frobnicate' .*\(at line 2, column 19: "),
    ("ir_undefined_value", "syntax_undefined_value.ir", r"use of undefined value %y \(at line 2, column 23"),
    ("ir_missing_brace", "syntax_missing_brace.ir", r"expected '\}', found end of text \(at line 4, column 1"),
    ("ir_missing_paren", "syntax_missing_paren.ir", r"expected '\)', found 'return' \(at line 3, column 3"),
    ("ir_unterminated_string", "syntax_unterminated_string.ir",
     r"unterminated string: no closing '\"' \(at line 2, column 44"),
    ("ir_bad_number", "syntax_bad_number.ir", r"unexpected character '\.' \(at line 2, column 30: .*1\.2\.3"),
    ("ir_undeclared_symbol", "syntax_undeclared_symbol.ir",
     r"undeclared symbol 'T' in a shape.*\(at line 1, column 24"),
    ("ir_unknown_dtype", "syntax_unknown_dtype.ir", r"unknown dtype 'f33'; known: f16, .*\(at line 1, column 17"),
    ("ir_defined_twice", "syntax_defined_twice.ir", r"value %0 is defined twice \(at line 3, column 3"),
    ("ir_bad_dim_expression", "syntax_bad_dim_expression.ir", r"bad symbolic expression 'T\*\*': .*\(at line 1,"),
    ("ir_code_in_dim_expression", "syntax_code_in_dim.ir",
     r"bad symbolic expression .*'__import__' is not a symbol or dim function \(at line 2, column 21"),
    ("ir_negative_dim", "syntax_negative_dim.ir", r"negative size -8 in a shape \(at line 1, column 24"),
    ("ir_empty_symbol_range", "syntax_empty_range.ir", r"symbol T has the empty range \[64, 8\] \(at line 2"),
    ("ir_trailing_text", "syntax_trailing_text.ir", r"unexpected text after the graph: 'this' \(at line 4, column 1"),
    ("ir_empty_file", "syntax_empty.ir", r"expected 'graph', found end of text \(at line 1, column 1"),
    ("ir_unknown_parameter", "syntax_unknown_parameter.ir", r"op 'neg' has no parameter 'flavour'.*\(at line 2"),
    ("ir_bad_loc", "syntax_bad_loc.ir", r"expected a line number, found 'twelve' \(at line 2, column 43"),
    ("ir_unknown_name", "syntax_unknown_name.ir", r"unknown name 'half' .*\(at line 2, column 27"),
    ("ir_return_type_mismatch", "syntax_return_mismatch.ir",
     r"graph @main declares outputs \(f32\[2, 9\]\) but returns \(f32\[2, 8\]\) \(at line 3"),
]:
    ir_case(_id, _file, _match, ParseError, "ir-syntax")

for _id, _file, _match in [
    ("ir_result_shape", "type_result_shape.ir", r"type mismatch for %0: declared f32\[2, 9\], inferred f32\[2, 8\] "
                                                r"\(at %0 = neg\(\.\.\.\)\)"),
    ("ir_result_dtype", "type_result_dtype.ir", r"type mismatch for %0: declared i64\[2, 8\], inferred f32\[2, 8\]"),
    ("ir_matmul_shapes", "type_matmul_shapes.ir", r"matmul: inputs rejected by shape inference: .*\(at %0 = matmul"),
    ("ir_missing_argument", "type_missing_argument.ir", r"add: missing required argument 'other' \(tensor\) \(at %0"),
    ("ir_attribute_kind", "type_attribute_kind.ir", r"softmax: argument 'dim' = 'last' does not fit kind int"),
    ("ir_result_count", "type_result_count.ir", r"neg has 2 results; the op defines 1 \(at %0, %1 = neg"),
    ("ir_reshape_element_count", "type_reshape_numel.ir", r"reshape: .*shape '\[15\]' is invalid for input of size 16"),
    ("ir_string_for_tensor", "type_string_for_tensor.ir", r"neg: argument 'self' = 'x' does not fit kind tensor"),
]:
    ir_case(_id, _file, _match, VerifyError, "ir-type")


def _deep(c):
    path = c.tmp / "deep.ir"
    path.write_text("graph @main(%x: f32[2]) -> (f32[2]) {\n  %0: f32[2] = mul(%x, " + "[" * 5000 + "]" * 5000
                    + ")\n  return %0\n}\n")
    return {"input": str(path)}


case("ir_deep_nesting", "ir-syntax", r"lists nested more than 200 deep \(at line 2, column \d+", make=_deep,
     api=lambda m, c: ir.parse(Path(m["input"]).read_text()), cli=("opt", "{input}"),
     error=ParseError)


def _binary(c):
    path = c.tmp / "binary.ir"
    path.write_bytes(b"\xff\xfe\x00graph")
    return {"input": str(path)}


case("ir_not_utf8", "ir-syntax", r"binary\.ir is not UTF-8 text \(byte 0\)", make=_binary, cli=("opt", "{input}"))
case("ir_file_is_directory", "ir-syntax", r"is a directory, not a file of IR text",
     make=lambda c: {"input": str(c.tmp)}, cli=("opt", "{input}"))


# == models whose export fails =================================================================
def _factory(file):
    import importlib.util
    path = static("export", file)
    spec = importlib.util.spec_from_file_location(Path(file).stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make()


def export_case(id, file, match, error=FrontendError, dynamic=None):
    def api(m, c):
        from spikec.frontend import from_torch
        model, inputs = _factory(file)
        return from_torch(model, inputs, dynamic=dynamic)
    flags = ()
    if dynamic:
        flags = tuple(a for name, (lo, hi) in dynamic.items() for a in ("--dynamic", f"{name}={lo}:{hi}"))
    case(id, "export", match, make=lambda c: {"input": static("export", file)}, api=api,
         cli=("inspect", "{input}:make", *flags), error=error)


export_case("export_data_dependent_branch", "data_dependent_branch.py",
            r"torch\.export could not trace Gate: GuardOnDataDependentSymNode: .* \(at .*data_dependent_branch\.py:7 "
            r"\(if x\.sum\(\) > 0:\)\)")
export_case("export_wrong_example_shape", "wrong_example_shape.py",
            r"could not trace Proj: RuntimeError: .*\[16, 12\] X \[16, 16\]|could not trace Proj: RuntimeError: "
            r".*\(at .*wrong_example_shape\.py:11")
export_case("export_raises_in_forward", "raises_in_forward.py",
            r"could not trace Broken: ValueError: this model is not finished \(at .*raises_in_forward\.py:7")
export_case("export_unsupported_aten_op", "unsupported_aten_op.py",
            r"unsupported op aten\._fft_r2c\.default \(at .*unsupported_aten_op\.py:7; hint: register it",
            error=UnsupportedOpError)
export_case("export_numpy_in_forward", "numpy_in_forward.py",
            r"could not trace ViaNumpy: RuntimeError: \.numpy\(\) is not supported .*numpy_in_forward\.py:7")
export_case("export_length_not_symbolic", "specialised_length.py",
            r"could not trace Fixed: .*Constraints violated \(T\).*hint: the model fixes this length",
            dynamic={"T": (2, 64)})
export_case("export_dynamic_range_excludes_example", "ok_proj.py",
            r"could not trace Proj: ConstraintViolationError: 8 not in range \[16, 32\]", dynamic={"T": (16, 32)})


def factory_case(id, file, fn, match):
    def api(m, c):
        from spikec.model_spec import load
        return load(f"{m['input']}:{fn}")
    make = file if callable(file) else (lambda c: {"input": static("export", file)})
    case(id, "export", match, make=make, api=api, cli=("inspect", f"{{input}}:{fn}"), error=FrontendError)


def _syntax_error_factory(c):
    path = c.tmp / "factory_syntax_error.py"
    path.write_text("import torch\n\ndef make(:\n    return None\n")
    return {"input": str(path)}


factory_case("factory_syntax_error", _syntax_error_factory, "make",
             r"importing .*factory_syntax_error\.py failed: SyntaxError")
factory_case("factory_raises", "factory_raises.py", "make",
             r"factory_raises\.py:make\(\) raised RuntimeError: weights not found: \./weights\.bin")
factory_case("factory_returns_module_only", "factory_module_only.py", "make",
             r"factory_module_only\.py:make returned only a module; return \(module, example_inputs\)")
factory_case("factory_missing_function", "ok_proj.py", "build", r"ok_proj\.py has no function 'build'")
