"""Shape and layout ops: reshapes (from the IR's result type), permutes,
broadcasts, slicing, concatenation, splitting, padding, casts, creation."""
from __future__ import annotations

from tvm import relax, tirx

from .lower import Lowering, tvm_dtype
from .table import RULES

op = relax.op
INT_MAX = 2 ** 62


def _rank(v) -> int:
    return v.type.rank


def _norm_dim(d: int, rank: int) -> int:
    return d + rank if d < 0 else d


@RULES.rule("constant")
def _constant(cx: Lowering, node):
    return cx.weight(node.args["name"])      # a parameter of the Relax function


# -- value-preserving reshapes: the IR result type says the shape ------------
@RULES.rule("view", "reshape", "_unsafe_view", "unsqueeze", "squeeze", "flatten", "unflatten")
def _reshape(cx: Lowering, node):
    return op.reshape(cx.expr(node.args["self"]), cx.shape(node.output))


@RULES.rule("clone", "alias", "detach", "lift_fresh_copy")
def _identity(cx: Lowering, node):
    return cx.expr(node.args["self"])


@RULES.rule("copy")
def _copy(cx: Lowering, node):
    dt = node.output.type.dtype
    return op.broadcast_to(cx.operand(node.args["src"], dt), cx.shape(node.output))


@RULES.rule("_to_copy", "to")
def _cast(cx: Lowering, node):
    x = node.args["self"]
    dt = node.output.type.dtype
    if dt == "bool" and x.type.dtype != "bool":
        return op.not_equal(cx.expr(x), cx.const(0, x.type.dtype))   # nonzero is true, 0.5 too
    return op.astype(cx.expr(x), tvm_dtype(dt))


@RULES.rule("permute")
def _permute(cx: Lowering, node):
    r = _rank(node.args["self"])
    return op.permute_dims(cx.expr(node.args["self"]), [_norm_dim(d, r) for d in node.args["dims"]])


@RULES.rule("transpose")
def _transpose(cx: Lowering, node):
    x = node.args["self"]
    r = _rank(x)
    axes = list(range(r))
    a, b = _norm_dim(node.args["dim0"], r), _norm_dim(node.args["dim1"], r)
    axes[a], axes[b] = axes[b], axes[a]
    return op.permute_dims(cx.expr(x), axes)


@RULES.rule("t")
def _t(cx: Lowering, node):
    x = node.args["self"]
    return cx.expr(x) if _rank(x) < 2 else op.permute_dims(cx.expr(x), [1, 0])


@RULES.rule("expand")
def _expand(cx: Lowering, node):
    return op.broadcast_to(cx.expr(node.args["self"]), cx.shape(node.output))


@RULES.rule("repeat")
def _repeat(cx: Lowering, node):
    x = cx.expr(node.args["self"])
    reps = list(node.args["repeats"])
    extra = len(reps) - _rank(node.args["self"])
    if extra > 0:
        x = cx.emit(op.reshape(x, [1] * extra + cx.shape(node.args["self"])))
    return op.tile(x, reps)


@RULES.rule("repeat_interleave")
def _repeat_interleave(cx: Lowering, node):
    reps = node.args["repeats"]
    if hasattr(reps, "type"):
        cx.fail("repeat_interleave with a tensor of repeats has a data-dependent shape",
                hint="use an int repeat count")
    dim = node.args.get("dim")
    x = cx.expr(node.args["self"])
    if dim is None:
        x = cx.emit(op.reshape(x, [-1]))
        dim = 0
    return op.repeat(x, int(reps), _norm_dim(dim, _rank(node.args["self"]) if node.args.get("dim") is not None else 1))


@RULES.rule("flip")
def _flip(cx: Lowering, node):
    x = cx.expr(node.args["self"])
    r = _rank(node.args["self"])
    for d in node.args["dims"]:
        x = cx.emit(op.flip(x, _norm_dim(d, r)))
    return x


# -- slicing ------------------------------------------------------------------
def _clamp_index(cx: Lowering, i, size, default):
    """A torch slice bound (maybe None, negative or past the end) as a PrimExpr in [0, size]."""
    if i is None:
        return default
    if isinstance(i, int) and isinstance(size, int):
        if i < 0:
            i += size
        return max(0, min(i, size))
    i = cx.dims(i)
    if isinstance(i, int):
        if i >= INT_MAX // 2:
            return size
        if i < 0:
            return tirx.max(size + i, 0) if not isinstance(size, int) else max(size + i, 0)
        return tirx.min(tirx.IntImm("int64", i), size) if not isinstance(size, int) else min(i, size)
    return tirx.min(i, size)


def slice_axis(cx: Lowering, x: relax.Expr, axis: int, begin, end, step=1) -> relax.Expr:
    return cx.emit(op.strided_slice(x, [axis], [begin], [end], [step], assume_inbound=True))


@RULES.rule("slice")
def _slice(cx: Lowering, node):
    x = node.args["self"]
    dim = _norm_dim(node.args.get("dim", 0), _rank(x))
    size = cx.dims(x.type.shape[dim])
    begin = _clamp_index(cx, node.args.get("start"), size, 0)
    end = _clamp_index(cx, node.args.get("end"), size, size)
    return slice_axis(cx, cx.expr(x), dim, begin, end, node.args.get("step", 1))


@RULES.rule("narrow")
def _narrow(cx: Lowering, node):
    x = node.args["self"]
    dim = _norm_dim(node.args["dim"], _rank(x))
    size = cx.dims(x.type.shape[dim])
    start = _clamp_index(cx, node.args["start"], size, 0)
    length = cx.dims(node.args["length"])
    return slice_axis(cx, cx.expr(x), dim, start, start + length)


@RULES.rule("select")
def _select(cx: Lowering, node):
    x = node.args["self"]
    dim = _norm_dim(node.args["dim"], _rank(x))
    size = cx.dims(x.type.shape[dim])
    i = cx.dims(node.args["index"])
    if isinstance(i, int) and i < 0:
        i = size + i
    sl = slice_axis(cx, cx.expr(x), dim, i, i + 1)
    return op.reshape(sl, cx.shape(node.output))


def _split_at(cx: Lowering, node, sizes: list):
    x = node.args["self"]
    dim = _norm_dim(node.args.get("dim", 0), _rank(x))
    outs, start = [], 0
    for s in sizes:
        s = cx.dims(s)
        outs.append(slice_axis(cx, cx.expr(x), dim, start, start + s))
        start = start + s
    return outs


@RULES.rule("split_with_sizes")
def _split_with_sizes(cx: Lowering, node):
    return _split_at(cx, node, list(node.args["split_sizes"]))


@RULES.rule("split", "chunk")
def _split(cx: Lowering, node):
    x = node.args["self"]
    dim = _norm_dim(node.args.get("dim", 0), _rank(x))
    return _split_at(cx, node, [v.type.shape[dim] for v in node.outputs])


@RULES.rule("unbind")
def _unbind(cx: Lowering, node):
    x = node.args["self"]
    dim = _norm_dim(node.args.get("dim", 0), _rank(x))
    return [op.reshape(slice_axis(cx, cx.expr(x), dim, i, i + 1), cx.shape(v))
            for i, v in enumerate(node.outputs)]


@RULES.rule("cat")
def _cat(cx: Lowering, node):
    dt = node.output.type.dtype
    ts = [t for t in node.args["tensors"] if not (t.type.rank == 1 and t.type.shape[0] == 0)]
    if not ts:
        return op.zeros(cx.shape(node.output), tvm_dtype(dt))
    dim = _norm_dim(node.args.get("dim", 0), node.output.type.rank)
    return op.concat([cx.operand(t, dt) for t in ts], axis=dim)


@RULES.rule("stack")
def _stack(cx: Lowering, node):
    dt = node.output.type.dtype
    dim = _norm_dim(node.args.get("dim", 0), node.output.type.rank)
    parts = []
    for t in node.args["tensors"]:
        parts.append(cx.emit(op.expand_dims(cx.operand(t, dt), dim)))
    return op.concat(parts, axis=dim)


@RULES.rule("constant_pad_nd")
def _pad(cx: Lowering, node):
    x = node.args["self"]
    dt = node.output.type.dtype
    pad = list(node.args["pad"])
    value = node.args.get("value", 0)
    e = cx.expr(x)
    r = _rank(x)
    shape = cx.shape(x)
    for i in range(len(pad) // 2):
        axis = r - 1 - i
        before, after = cx.dims(pad[2 * i]), cx.dims(pad[2 * i + 1])
        size = shape[axis]
        # negative pads crop
        if not _nonneg(before):
            e = slice_axis(cx, e, axis, -before if isinstance(before, int) else 0 - before, size)
            size = size + before
            before = 0
        if not _nonneg(after):
            e = slice_axis(cx, e, axis, 0, size + after)
            size = size + after
            after = 0
        parts = []
        for amount in (before, None, after):
            if amount is None:
                parts.append(e)
                continue
            if isinstance(amount, int) and amount == 0:
                continue
            ps = list(shape)
            ps[axis] = amount
            parts.append(cx.emit(_filled(cx, ps, value, dt)))
        if len(parts) > 1:
            e = cx.emit(op.concat(parts, axis=axis))
        shape[axis] = size + before + after
    return e


def _nonneg(d) -> bool:
    return not isinstance(d, int) or d >= 0


@RULES.rule("roll")
def _roll(cx: Lowering, node):
    x = node.args["self"]
    shifts, dims = list(node.args["shifts"]), list(node.args.get("dims") or [])
    e = cx.expr(x)
    if not dims:
        e = cx.emit(op.reshape(e, [-1]))
        dims, shape = [0], [cx.dims(x.type.numel())]
    else:
        shape = cx.shape(x)
    for s, d in zip(shifts, dims):
        d = _norm_dim(d, len(shape))
        n = shape[d]
        k = tirx.floormod(tirx.IntImm("int64", s), n) if not isinstance(n, int) else s % n
        tail = slice_axis(cx, e, d, n - k, n)
        head = slice_axis(cx, e, d, 0, n - k)
        e = cx.emit(op.concat([tail, head], axis=d))
    return op.reshape(e, cx.shape(node.output))


@RULES.rule("tril", "triu")
def _tri(cx: Lowering, node):
    fn = op.tril if node.op == "tril" else op.triu
    return fn(cx.expr(node.args["self"]), node.args.get("diagonal", 0))


@RULES.rule("diagonal")
def _diagonal(cx: Lowering, node):
    cx.fail("diagonal has no cpu lowering yet", hint="use the torch target")


# -- creation -----------------------------------------------------------------
def _filled(cx: Lowering, shape, value, dt: str) -> relax.Expr:
    # a broadcast constant, not R.full: TVM 0.27's full legalizer rejects inf / nan fills
    return op.broadcast_to(cx.const(value, dt), shape)



@RULES.rule("full", "zeros", "ones", "empty")
def _full(cx: Lowering, node):
    dt = node.output.type.dtype
    value = {"zeros": 0, "ones": 1, "empty": 0}.get(node.op, node.args.get("fill_value"))
    return _filled(cx, cx.shape(node.output), value, dt)


@RULES.rule("full_like", "zeros_like", "ones_like", "empty_like")
def _full_like(cx: Lowering, node):
    dt = node.output.type.dtype
    value = {"zeros_like": 0, "ones_like": 1, "empty_like": 0}.get(node.op, node.args.get("fill_value"))
    return _filled(cx, cx.shape(node.output), value, dt)


@RULES.rule("fill")
def _fill(cx: Lowering, node):
    dt = node.output.type.dtype
    v = node.args["value"]
    val = cx.operand(v, dt) if hasattr(v, "type") else cx.const(v, dt)
    return op.broadcast_to(val, cx.shape(node.output))


@RULES.rule("scalar_tensor")
def _scalar_tensor(cx: Lowering, node):
    return cx.const(node.args["s"], node.output.type.dtype)


@RULES.rule("arange")
def _arange(cx: Lowering, node):
    dt = node.output.type.dtype
    start = node.args.get("start")
    start = 0 if start is None else start
    end, step = node.args["end"], node.args.get("step", 1)
    if all(isinstance(a, int) or hasattr(a, "free_symbols") for a in (start, end, step)):
        return op.arange(cx.dims(start), cx.dims(end), cx.dims(step), tvm_dtype(dt))
    n = node.output.type.shape[0]
    idx = cx.emit(op.astype(op.arange(0, cx.dims(n), 1, "int64"), "float64"))
    vals = op.add(op.multiply(idx, cx.const(float(step), "f64")), cx.const(float(start), "f64"))
    return op.astype(vals, tvm_dtype(dt))
