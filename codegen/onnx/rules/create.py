"""Tensor creation: full / zeros / ones / empty (and their _like forms), arange, one_hot.
Shapes come from the node's output type; `empty` is filled with zeros."""
from __future__ import annotations

import numpy as np

from ..builder import tensor_proto
from ..dtypes import NUMPY_TYPES, is_float
from . import RULES


def _filled(ctx, node, value):
    t = node.outputs[0].type
    dt = t.dtype
    if dt in NUMPY_TYPES:
        proto = tensor_proto("value", np.asarray([value], dtype=NUMPY_TYPES[dt]))
        return ctx.sink.op("ConstantOfShape", [ctx.dims.shape(t.shape)], value=proto)
    return ctx.sink.op("Expand", [ctx.sink.cast(ctx.sink.scalar(float(value), "f32"), dt), ctx.dims.shape(t.shape)])


@RULES.rule("full", "full_like")
def _full(ctx, node):
    v = node.args["fill_value"]
    if not isinstance(v, (int, float, bool)):             # a 0-d tensor value (full_like(x, t))
        return ctx.sink.op("Expand", [ctx.operand(v, node.outputs[0].type.dtype),
                                      ctx.dims.shape(node.outputs[0].type.shape)])
    return _filled(ctx, node, v)


@RULES.rule("zeros", "zeros_like", "empty", "empty_like")
def _zeros(ctx, node):
    return _filled(ctx, node, 0)


@RULES.rule("ones", "ones_like")
def _ones(ctx, node):
    return _filled(ctx, node, 1)


@RULES.rule("fill")
def _fill(ctx, node):
    t = node.outputs[0].type
    return ctx.sink.op("Expand", [ctx.operand(node.args["value"], t.dtype), ctx.dims.shape(t.shape)])


@RULES.rule("copy")
def _copy(ctx, node):
    t = node.outputs[0].type
    return ctx.sink.op("Expand", [ctx.operand(node.args["src"], t.dtype), ctx.dims.shape(t.shape)])


@RULES.rule("scalar_tensor")
def _scalar_tensor(ctx, node):
    return ctx.sink.op("Identity", [ctx.operand(node.args["s"], node.outputs[0].type.dtype)])


@RULES.rule("arange")
def _arange(ctx, node):
    s, dt = ctx.sink, node.outputs[0].type.dtype
    start, end, step = node.arg("start"), node.args["end"], node.arg("step")
    start = 0 if start is None else start
    step = 1 if step is None else step
    if not is_float(dt):
        return s.op("Range", [ctx.operand(start, dt), ctx.operand(end, dt), ctx.operand(step, dt)])
    # float ranges: count as torch does (ceil((end - start) / step)), then start + i * step
    n = ctx.dims.shape([node.outputs[0].type.shape[0]])
    i = s.cast(s.op("Range", [s.scalar(0, "i64"), s.op("Squeeze", [n, s.i64([0])]), s.scalar(1, "i64")]), dt)
    return s.op("Add", [ctx.operand(start, dt), s.op("Mul", [i, ctx.operand(step, dt)])])


@RULES.rule("one_hot")
def _one_hot(ctx, node):
    s = ctx.sink
    depth = node.outputs[0].type.shape[-1]
    depth = s.scalar(depth, "i64") if isinstance(depth, int) else ctx.dims.scalar(depth)
    return s.op("OneHot", [ctx.operand(node.args["self"], "i64"), depth, s.i64([0, 1])], axis=-1)
