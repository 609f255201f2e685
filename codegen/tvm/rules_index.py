"""Indexing ops: embedding, take-style selects, advanced indexing, gathers and scatters."""
from __future__ import annotations

from tvm import relax, te, tirx

from .lower import Lowering
from .table import RULES

op = relax.op


def _idx(cx: Lowering, v) -> relax.Expr:
    e = cx.expr(v)
    return e if v.type.dtype == "i64" else cx.emit(op.astype(e, "int64"))


def _wrap(cx: Lowering, idx: relax.Expr, size) -> relax.Expr:
    """torch accepts negative indices: i < 0 means size + i."""
    n = cx.dims(size)

    def f(t, size):      # `size` passed through so a symbolic size becomes a kernel argument
        return te.compute(t.shape, lambda *i: tirx.Select(t(*i) < 0, t(*i) + tirx.Cast("int64", size), t(*i)),
                          name="wrap_index")
    return cx.bb.emit_te(f, idx, n)


@RULES.rule("embedding")
def _embedding(cx: Lowering, node):
    return op.take(cx.expr(node.args["weight"]), _idx(cx, node.args["indices"]), axis=0, mode="clip")


@RULES.rule("index_select")
def _index_select(cx: Lowering, node):
    x = node.args["self"]
    dim = node.args["dim"] % max(x.type.rank, 1)
    idx = _wrap(cx, _idx(cx, node.args["index"]), x.type.shape[dim])
    return op.take(cx.expr(x), idx, axis=dim, mode="clip")


@RULES.rule("index")
def _index(cx: Lowering, node):
    x = node.args["self"]
    idxs = list(node.args["indices"])
    present = [i for i, t in enumerate(idxs) if t is not None]
    for i in present:
        if idxs[i].type.dtype == "bool":
            cx.fail("indexing with a boolean mask has a data-dependent shape",
                    hint="write the mask as torch.where, or index with integer positions")
    if len(present) == 1:
        p = present[0]
        idx = _wrap(cx, _idx(cx, idxs[p]), x.type.shape[p])
        return op.take(cx.expr(x), idx, axis=p, mode="clip")
    if present != list(range(len(present))):
        cx.fail("advanced indexing with several index tensors after a skipped dim is not supported",
                hint="move the indexed dims first (permute) before indexing")
    wrapped = [_wrap(cx, _idx(cx, idxs[p]), x.type.shape[p]) for p in present]
    return op.index_tensor(cx.expr(x), wrapped)


@RULES.rule("index_put")
def _index_put(cx: Lowering, node):
    """x[i0, i1, ...] = values (or +=), written as one scatter along the flattened
    indexed dims: duplicates accumulate in order, like torch."""
    x = node.args["self"]
    idxs = list(node.args["indices"])
    if any(t is None for t in idxs):
        cx.fail("index_put with a skipped (None) dim is not supported", hint="index the leading dims")
    if any(t.type.dtype == "bool" for t in idxs):
        cx.fail("index_put with a boolean mask is not supported", hint="use torch.where")
    dt = node.output.type.dtype
    shape = cx.shape(x)
    nk = len(idxs)
    lead, rest = shape[:nk], shape[nk:]
    lin = None
    for i, t in enumerate(idxs):        # row-major linear index over the indexed dims
        e = _wrap(cx, _idx(cx, t), x.type.shape[i])
        lin = e if lin is None else cx.emit(op.add(op.multiply(lin, _dim_const(cx, lead[i])), e))
    rows = 1
    for d in lead:
        rows = rows * d
    data = cx.emit(op.reshape(cx.expr(x), [rows, *rest]))
    lin = cx.emit(op.reshape(lin, [-1]))
    n = lin.ty.shape.values[0]
    vals = cx.emit(op.broadcast_to(cx.operand(node.args["values"], dt), [n, *rest])) \
        if node.args["values"].type.rank != 1 + len(rest) else cx.operand(node.args["values"], dt)
    vals = cx.emit(op.broadcast_to(vals, [n, *rest]))
    index = cx.emit(op.broadcast_to(op.reshape(lin, [n] + [1] * len(rest)), [n, *rest]))
    red = "add" if node.args.get("accumulate", False) else "update"
    out = cx.emit(op.scatter_elements(data, index, vals, 0, red))
    return op.reshape(out, shape)


def _dim_const(cx: Lowering, d) -> relax.Expr:
    if isinstance(d, int):
        return relax.const(d, "int64")
    return cx.bb.emit_te(lambda size: te.compute((), lambda: tirx.Cast("int64", size), name="dim"), d)


@RULES.rule("gather")
def _gather(cx: Lowering, node):
    x = node.args["self"]
    dim = node.args["dim"] % x.type.rank
    return op.gather_elements(cx.expr(x), _idx(cx, node.args["index"]), dim)


def _scatter(cx: Lowering, node, reduction: str, src):
    x = node.args["self"]
    dim = node.args["dim"] % x.type.rank
    return op.scatter_elements(cx.expr(x), _idx(cx, node.args["index"]), src, dim, reduction)


@RULES.rule("scatter")
def _scatter_rule(cx: Lowering, node):
    dt = node.output.type.dtype
    src = node.args.get("src")
    if src is None:
        src = cx.emit(op.broadcast_to(cx.const(node.args["value"], dt), cx.shape(node.args["index"])))
    else:
        src = cx.operand(src, dt)
    return _scatter(cx, node, "update", src)


@RULES.rule("scatter_add")
def _scatter_add(cx: Lowering, node):
    return _scatter(cx, node, "add", cx.operand(node.args["src"], node.output.type.dtype))


@RULES.rule("scatter_reduce")
def _scatter_reduce(cx: Lowering, node):
    red = {"sum": "add", "prod": "mul", "amax": "max", "amin": "min"}.get(node.args["reduce"])
    if red is None or not node.args.get("include_self", True):
        cx.fail(f"scatter_reduce(reduce={node.args['reduce']!r}, include_self="
                f"{node.args.get('include_self', True)}) is not supported", hint="use sum/prod/amax/amin")
    return _scatter(cx, node, red, cx.operand(node.args["src"], node.output.type.dtype))


def _along(cx: Lowering, node, source: relax.Expr, reduction: str):
    """index_add / index_copy: scatter `source` along dim at positions `index`."""
    x = node.args["self"]
    dim = node.args["dim"] % x.type.rank
    idx = _idx(cx, node.args["index"])
    src_shape = cx.shape(node.args["source"]) if "source" in node.args else None
    shape1 = [1] * x.type.rank
    shape1[dim] = -1
    idx = cx.emit(op.broadcast_to(op.reshape(idx, shape1), src_shape))
    return op.scatter_elements(cx.expr(x), idx, source, dim, reduction)


@RULES.rule("index_add")
def _index_add(cx: Lowering, node):
    dt = node.output.type.dtype
    src = cx.operand(node.args["source"], dt)
    alpha = node.args.get("alpha", 1)
    if alpha != 1:
        src = cx.emit(op.multiply(src, cx.const(alpha, dt)))
    return _along(cx, node, src, "add")


@RULES.rule("index_copy")
def _index_copy(cx: Lowering, node):
    return _along(cx, node, cx.operand(node.args["source"], node.output.type.dtype), "update")


@RULES.rule("nonzero")
def _nonzero(cx: Lowering, node):
    x = node.args["self"]
    nz = cx.emit(op.nonzero(cx.expr(x)))         # [rank, n]; torch wants [n, rank]
    n = cx.dims(node.output.type.shape[0])       # a fresh symbol: the count is known only at run time
    nz = cx.bb.match_cast(nz, relax.TensorType([x.type.rank, n], "int64"))
    return op.permute_dims(nz, [1, 0])


@RULES.rule("one_hot")
def _one_hot(cx: Lowering, node):
    depth = node.output.type.shape[-1]
    if not isinstance(depth, int):
        cx.fail("one_hot needs a static num_classes")
    return op.one_hot(_idx(cx, node.args["self"]), 1, 0, depth, -1)
