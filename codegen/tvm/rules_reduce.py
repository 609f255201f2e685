"""Reductions, scans, softmax, top-k and sort."""
from __future__ import annotations

from tvm import relax

from .lower import Lowering
from .table import RULES

op = relax.op


def _axes(x, dim) -> list[int] | None:
    """torch's `dim` (None, [] meaning all, an int or a list) as sorted non-negative axes."""
    r = x.type.rank
    if dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        return list(range(r))
    dims = [dim] if isinstance(dim, int) else list(dim)
    return sorted({d + r if d < 0 else d for d in dims})


def _input(cx: Lowering, node, dt=None):
    x = node.args["self"]
    return x, cx.operand(x, dt or node.outputs[0].type.dtype)


@RULES.rule("sum", "mean", "prod")
def _sum(cx: Lowering, node):
    x, e = _input(cx, node)
    if x.type.rank == 0:
        return e
    fn = {"sum": op.sum, "mean": op.mean, "prod": op.prod}[node.op]
    return fn(e, _axes(x, node.args.get("dim")), node.args.get("keepdim", False))


@RULES.rule("amax", "amin")
def _amax(cx: Lowering, node):
    x, e = _input(cx, node)
    if x.type.rank == 0:
        return e
    fn = op.max if node.op == "amax" else op.min
    return fn(e, _axes(x, node.args.get("dim")), node.args.get("keepdim", False))


@RULES.rule("max", "min")
def _max(cx: Lowering, node):
    x = node.args["self"]
    e = cx.expr(x)
    dim = node.args.get("dim")
    keep = node.args.get("keepdim", False)
    fn, arg = (op.max, op.argmax) if node.op == "max" else (op.min, op.argmin)
    if len(node.outputs) == 1:
        return fn(e, None if dim is None else _axes(x, dim), keep)
    axis = _axes(x, dim)[0]
    return [fn(e, [axis], keep), arg(e, axis, keep)]


@RULES.rule("argmax", "argmin")
def _argmax(cx: Lowering, node):
    x = node.args["self"]
    e = cx.expr(x)
    fn = op.argmax if node.op == "argmax" else op.argmin
    dim = node.args.get("dim")
    if dim is None:
        return fn(cx.emit(op.reshape(e, [-1])), 0, False) if not node.args.get("keepdim") else \
            op.reshape(fn(cx.emit(op.reshape(e, [-1])), 0, False), cx.shape(node.output))
    return fn(e, _axes(x, dim)[0], node.args.get("keepdim", False))


@RULES.rule("any", "all")
def _any(cx: Lowering, node):
    x = node.args["self"]
    e = cx.expr(x)
    b = e if x.type.dtype == "bool" else cx.emit(op.not_equal(e, cx.const(0, x.type.dtype)))
    i = cx.emit(op.astype(b, "int8"))
    fn = op.max if node.op == "any" else op.min
    red = cx.emit(fn(i, _axes(x, node.args.get("dim")), node.args.get("keepdim", False)))
    return op.astype(red, "bool")


def _count(cx: Lowering, x, e, axes, keep, dt):
    """Number of elements reduced over `axes`, as a tensor (shapes may be symbolic)."""
    ones = cx.emit(op.ones_like(e))
    return cx.emit(op.sum(ones, axes, keep))


@RULES.rule("var", "std")
def _var(cx: Lowering, node):
    x, e = _input(cx, node)
    dt = node.output.type.dtype
    axes = _axes(x, node.args.get("dim"))
    keep = node.args.get("keepdim", False)
    corr = node.args.get("correction")
    if corr is None:
        corr = 1 if node.args.get("unbiased", True) else 0
    mean = cx.emit(op.mean(e, axes, True))
    d = cx.emit(op.subtract(e, mean))
    ss = cx.emit(op.sum(op.multiply(d, d), axes, keep))
    n = _count(cx, x, e, axes, keep, dt)
    var = cx.emit(op.divide(ss, op.maximum(op.subtract(n, cx.const(corr, dt)), cx.const(0, dt))))
    return op.sqrt(var) if node.op == "std" else var


@RULES.rule("logsumexp")
def _logsumexp(cx: Lowering, node):
    x, e = _input(cx, node)
    dt = node.output.type.dtype
    axes = _axes(x, node.args.get("dim"))
    keep = node.args.get("keepdim", False)
    m = cx.emit(op.max(e, axes, True))
    m = cx.emit(op.where(op.isinf(m), cx.const(0, dt), m))      # all -inf rows stay -inf
    s = cx.emit(op.sum(op.exp(op.subtract(e, m)), axes, True))
    out = cx.emit(op.add(op.log(s), m))
    return out if keep else op.squeeze(out, axes)


@RULES.rule("linalg_vector_norm")
def _vector_norm(cx: Lowering, node):
    x, e = _input(cx, node)
    dt = node.output.type.dtype
    axes = _axes(x, node.args.get("dim"))
    keep = node.args.get("keepdim", False)
    ord_ = float(node.args.get("ord", 2))
    a = cx.emit(op.abs(e))
    if ord_ == float("inf"):
        return op.max(a, axes, keep)
    if ord_ == float("-inf"):
        return op.min(a, axes, keep)
    if ord_ == 2:
        return op.sqrt(op.sum(op.multiply(a, a), axes, keep))
    if ord_ == 1:
        return op.sum(a, axes, keep)
    s = cx.emit(op.sum(op.power(a, cx.const(ord_, dt)), axes, keep))
    return op.power(s, cx.const(1.0 / ord_, dt))


def _dim(x, d) -> int:
    return d + x.type.rank if d < 0 else d


@RULES.rule("softmax", "_softmax", "_safe_softmax")
def _softmax(cx: Lowering, node):
    x, e = _input(cx, node)
    if x.type.rank == 0:
        return op.ones_like(e)
    axis = _dim(x, node.args["dim"])
    y = cx.emit(op.nn.softmax(e, axis))
    if node.op == "_safe_softmax":      # rows that are all -inf give 0, not NaN
        dt = node.output.type.dtype
        allneg = cx.emit(op.min(op.astype(op.isinf(e), "int8"), [axis], True))
        return op.where(op.astype(allneg, "bool"), cx.const(0, dt), y)
    return y


@RULES.rule("log_softmax", "_log_softmax")
def _log_softmax(cx: Lowering, node):
    x, e = _input(cx, node)
    return op.nn.log_softmax(e, _dim(x, node.args["dim"]))


@RULES.rule("cumsum", "cumprod")
def _cumsum(cx: Lowering, node):
    x, e = _input(cx, node)
    if x.type.rank == 0:
        return e
    fn = op.cumsum if node.op == "cumsum" else op.cumprod
    return fn(e, _dim(x, node.args["dim"]))


@RULES.rule("topk")
def _topk(cx: Lowering, node):
    x = node.args["self"]
    e = cx.expr(x)
    axis = _dim(x, node.args.get("dim", -1))
    t = cx.emit(op.topk(e, int(node.args["k"]), axis, "both", bool(node.args.get("largest", True)), "int64"))
    return [relax.TupleGetItem(t, 0), relax.TupleGetItem(t, 1)]


@RULES.rule("sort")
def _sort(cx: Lowering, node):
    x = node.args["self"]
    e = cx.expr(x)
    axis = _dim(x, node.args.get("dim", -1))
    desc = bool(node.args.get("descending", False))
    idx = cx.emit(op.argsort(e, axis, desc, "int64"))
    return [op.gather_elements(e, idx, axis), idx]
