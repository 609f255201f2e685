"""Reductions, scans, softmax and top-k. Axes are normalised against the input rank."""
from __future__ import annotations

from spikec.codegen.errors import LoweringError
from ..dtypes import is_float
from . import RULES


def _axes(dim, rank: int) -> list[int]:
    """aten's dim argument (None, int, list) -> sorted non-negative axes; [] means all."""
    if dim is None:
        return []
    dims = [dim] if isinstance(dim, int) else list(dim)
    return sorted(d % rank if rank else 0 for d in dims)


def _reduce(ctx, op, x, axes, keepdim):
    s = ctx.sink
    inputs = [x, s.i64(axes)] if axes else [x]
    return s.op(op, inputs, keepdims=int(bool(keepdim)))


def _src(ctx, node, dt=None):
    src = node.args["self"]
    return ctx.operand(src, dt or node.outputs[0].type.dtype), src.type.rank


_SIMPLE = {"sum": "ReduceSum", "mean": "ReduceMean", "amax": "ReduceMax", "amin": "ReduceMin", "prod": "ReduceProd",
           "logsumexp": "ReduceLogSumExp"}


@RULES.rule(*_SIMPLE)
def _simple_reduce(ctx, node):
    x, rank = _src(ctx, node)
    if rank == 0:
        return ctx.sink.op("Identity", [x])
    return _reduce(ctx, _SIMPLE[node.op], x, _axes(node.arg("dim"), rank), node.arg("keepdim"))


@RULES.rule("max", "min")
def _max_min(ctx, node):
    src = node.args["self"]
    x, rank = ctx.get(src), src.type.rank
    red = "ReduceMax" if node.op == "max" else "ReduceMin"
    if len(node.outputs) == 1:            # max(x): every element
        return _reduce(ctx, red, x, [], False)
    axis = _axes(node.args["dim"], rank)[0]
    keep = node.arg("keepdim")
    vals = _reduce(ctx, red, x, [axis], keep)
    idx = ctx.sink.op("ArgMax" if node.op == "max" else "ArgMin", [x], axis=axis, keepdims=int(bool(keep)))
    return [vals, idx]


@RULES.rule("argmax", "argmin")
def _argmax(ctx, node):
    s, src = ctx.sink, node.args["self"]
    x, dim, keep = ctx.get(src), node.arg("dim"), node.arg("keepdim")
    op = "ArgMax" if node.op == "argmax" else "ArgMin"
    if dim is None:
        flat = s.op("Reshape", [x, s.i64([-1])])
        out = s.op(op, [flat], axis=0, keepdims=0)
        return s.op("Reshape", [out, s.i64([1] * src.type.rank)]) if keep else out
    return s.op(op, [x], axis=dim % max(src.type.rank, 1), keepdims=int(bool(keep)))


@RULES.rule("any", "all")
def _any_all(ctx, node):
    s, src = ctx.sink, node.args["self"]
    x = s.cast(ctx.operand(src, "bool"), "i32")
    dim = node.arg("dims") if "dims" in node.args else node.arg("dim")
    red = _reduce(ctx, "ReduceMax" if node.op == "any" else "ReduceMin", x, _axes(dim, src.type.rank),
                  node.arg("keepdim"))
    return s.cast(red, node.outputs[0].type.dtype)


def _count(ctx, shape, axes):
    """Number of reduced elements (a run-time dim product where shapes are symbolic)."""
    n = 1
    for a in (axes or range(len(shape))):
        n = n * shape[a]
    return n


@RULES.rule("var", "std")
def _var_std(ctx, node):
    s, src = ctx.sink, node.args["self"]
    dt = node.outputs[0].type.dtype
    x, rank = ctx.operand(src, dt), src.type.rank
    axes = _axes(node.arg("dim"), rank)
    corr = node.arg("correction")
    if "unbiased" in node.args:                       # var.dim(unbiased=...)
        corr = 1 if node.args["unbiased"] else 0
    corr = 1 if corr is None else corr
    diff = s.op("Sub", [x, _reduce(ctx, "ReduceMean", x, axes, True)])
    ssq = _reduce(ctx, "ReduceSum", s.op("Mul", [diff, diff]), axes, node.arg("keepdim"))
    n = _count(ctx, src.type.shape, axes) - corr
    out = s.op("Div", [ssq, ctx.operand(n, dt)])
    return s.op("Sqrt", [out]) if node.op == "std" else out


@RULES.rule("linalg_vector_norm")
def _vector_norm(ctx, node):
    s, src = ctx.sink, node.args["self"]
    dt = node.outputs[0].type.dtype
    x, rank = ctx.operand(src, dt), src.type.rank
    axes, keep, p = _axes(node.arg("dim"), rank), node.arg("keepdim"), float(node.arg("ord"))
    if p == 2.0:
        return _reduce(ctx, "ReduceL2", x, axes, keep)
    if p == 1.0:
        return _reduce(ctx, "ReduceL1", x, axes, keep)
    if p == float("inf"):
        return _reduce(ctx, "ReduceMax", s.op("Abs", [x]), axes, keep)
    if p == float("-inf"):
        return _reduce(ctx, "ReduceMin", s.op("Abs", [x]), axes, keep)
    if p == 0.0:
        nz = s.cast(s.op("Not", [s.op("Equal", [x, s.scalar(0, dt)])]), dt)
        return _reduce(ctx, "ReduceSum", nz, axes, keep)
    powed = s.op("Pow", [s.op("Abs", [x]), s.scalar(p, dt)])
    return s.op("Pow", [_reduce(ctx, "ReduceSum", powed, axes, keep), s.scalar(1.0 / p, dt)])


@RULES.rule("cumsum")
def _cumsum(ctx, node):
    x, rank = _src(ctx, node)
    return ctx.sink.op("CumSum", [x, ctx.sink.scalar(node.args["dim"] % max(rank, 1), "i64")])


@RULES.rule("softmax", "_softmax", "log_softmax", "_log_softmax")
def _softmax(ctx, node):
    x, rank = _src(ctx, node)
    op = "LogSoftmax" if "log" in node.op else "Softmax"
    return ctx.sink.op(op, [x], axis=node.args["dim"] % max(rank, 1))


@RULES.rule("_safe_softmax")
def _safe_softmax(ctx, node):
    # softmax, but a row whose inputs are all -inf gives zeros instead of NaN
    s = ctx.sink
    x, rank = _src(ctx, node)
    dt, axis = node.outputs[0].type.dtype, node.args["dim"] % max(rank, 1)
    sm = s.op("Softmax", [x], axis=axis)
    masked = s.cast(s.op("Equal", [x, s.scalar(float("-inf"), dt)]), "i32")
    all_masked = s.cast(_reduce(ctx, "ReduceMin", masked, [axis], True), "bool")
    return s.op("Where", [all_masked, s.scalar(0.0, dt), sm])


@RULES.rule("topk")
def _topk(ctx, node):
    s, src = ctx.sink, node.args["self"]
    k = node.args["k"]
    k = s.i64([k]) if isinstance(k, int) else ctx.dims.vec(k)
    axis = node.arg("dim") % max(src.type.rank, 1)
    vals, idx = s.op("TopK", [ctx.get(src), k], n_out=2, axis=axis, largest=int(bool(node.arg("largest"))),
                     sorted=int(bool(node.arg("sorted"))))
    return [vals, idx]


@RULES.rule("sort")
def _sort(ctx, node):
    # a full TopK along the axis; ties may come out in another order than torch's
    s, src = ctx.sink, node.args["self"]
    axis = node.arg("dim") % max(src.type.rank, 1)
    if not is_float(src.type.dtype) and src.type.dtype != "i64":
        raise LoweringError(f"onnx: sort of {src.type.dtype} is not supported (TopK takes numbers)")
    n = ctx.dims.vec(src.type.shape[axis])
    vals, idx = s.op("TopK", [ctx.get(src), n], n_out=2, axis=axis, largest=int(bool(node.arg("descending"))),
                     sorted=1)
    return [vals, idx]
