"""Pieces every function body uses: attribute references, shape slices, head repetition."""
from __future__ import annotations

from onnx import AttributeProto, FunctionProto, TensorProto, helper

from ..builder import BodySink
from ..lower import OPSET

DOMAIN = "spikec"
INT64_MAX = 2 ** 63 - 1


def attr_const(s: BodySink, attr: str, kind: str) -> str:
    """A Constant node whose value is the calling node's attribute `attr` (a scalar)."""
    out = s.fresh(attr)
    node = helper.make_node("Constant", [], [out])
    a = AttributeProto()
    a.name, a.ref_attr_name = ("value_float", attr) if kind == "float" else ("value_int", attr)
    a.type = AttributeProto.FLOAT if kind == "float" else AttributeProto.INT
    node.attribute.append(a)
    s.nodes.append(node)
    return out


def dim(s: BodySink, shape: str, i: int) -> str:
    """Element i of a shape tensor, as int64 [1]."""
    return s.op("Slice", [shape, s.i64([i]), s.i64([i + 1])], hint="d")


def repeat_kv_heads(s: BodySink, x: str, heads: str) -> str:
    """[B, Hkv, T, D] -> [B, H, T, D], head h reading kv head h // (H / Hkv) (grouped-query attention)."""
    shape = s.op("Shape", [x])
    r = s.op("Div", [heads, dim(s, shape, 1)])
    one = s.i64([1])
    x5 = s.op("Unsqueeze", [x, s.i64([2])])
    x5 = s.op("Expand", [x5, s.op("Concat", [one, one, r, one, one], axis=0)])
    return s.op("Reshape", [x5, s.op("Concat", [s.i64([0]), heads, s.i64([-1]), dim(s, shape, 3)], axis=0)])


def make_function(name: str, inputs, outputs, s: BodySink, attrs: dict) -> FunctionProto:
    """A FunctionProto in the spikec domain; `attrs` maps attribute name -> default value."""
    defaults = [helper.make_attribute(k, v) for k, v in attrs.items()]
    return helper.make_function(DOMAIN, name, list(inputs), list(outputs), s.nodes,
                                [helper.make_opsetid("", OPSET)], attributes=[], attribute_protos=defaults,
                                doc_string=f"spikec fused op, standard ONNX body (opset {OPSET})")


def body_graph(s: BodySink, name: str, inputs: list[str], outputs: list[str]):
    """A control-flow sub-graph over f32 tensors of unspecified shape."""
    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, None)  # noqa: E731
    return helper.make_graph(s.nodes, name, [vi(n) for n in inputs], [vi(n) for n in outputs])
