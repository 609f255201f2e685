"""Shape and layout ops. Target shapes come from the node's output type, so `view(x, [-1, 4])`
and `expand(x, [-1, T])` need no argument decoding; symbolic dims are computed at run time."""
from __future__ import annotations

from spikec.codegen.errors import LoweringError
from . import RULES

INT64_MAX = 2 ** 63 - 1
INT64_MIN = -(2 ** 63)


def reshape_to(ctx, x: str, dims) -> str:
    s = ctx.sink
    dynamic = [i for i, d in enumerate(dims) if not isinstance(d, int)]
    if len(dynamic) <= 1 and 0 not in dims:
        # at most one run-time dim: let Reshape infer it (-1) from a constant shape
        return s.op("Reshape", [x, s.i64([-1 if i in dynamic else d for i, d in enumerate(dims)])])
    return s.op("Reshape", [x, ctx.dims.shape(dims)], allowzero=1)


def _out_shape(node, i=0):
    return node.outputs[i].type.shape


@RULES.rule("view", "reshape", "_unsafe_view", "flatten", "unflatten")
def _reshape(ctx, node):
    return reshape_to(ctx, ctx.get(node.args["self"]), _out_shape(node))


@RULES.rule("permute")
def _permute(ctx, node):
    rank = node.args["self"].type.rank
    return ctx.sink.op("Transpose", [ctx.get(node.args["self"])], perm=[d % rank for d in node.args["dims"]])


@RULES.rule("transpose", "t")
def _transpose(ctx, node):
    rank = node.args["self"].type.rank
    perm = list(range(rank))
    if rank >= 2:
        a, b = (node.args["dim0"] % rank, node.args["dim1"] % rank) if node.op == "transpose" else (0, 1)
        perm[a], perm[b] = perm[b], perm[a]
    return ctx.sink.op("Transpose", [ctx.get(node.args["self"])], perm=perm)


@RULES.rule("unsqueeze")
def _unsqueeze(ctx, node):
    rank = node.args["self"].type.rank + 1
    return ctx.sink.op("Unsqueeze", [ctx.get(node.args["self"]), ctx.sink.i64([node.args["dim"] % rank])])


@RULES.rule("squeeze")
def _squeeze(ctx, node):
    src = node.args["self"]
    dim = node.arg("dim")
    rank = src.type.rank
    cand = range(rank) if dim is None else ([dim] if isinstance(dim, int) else dim)
    axes = sorted({d % rank for d in cand if src.type.shape[d % rank] == 1}) if rank else []
    if not axes:
        return ctx.sink.op("Identity", [ctx.get(src)])
    return ctx.sink.op("Squeeze", [ctx.get(src), ctx.sink.i64(axes)])


@RULES.rule("expand")
def _expand(ctx, node):
    return ctx.sink.op("Expand", [ctx.get(node.args["self"]), ctx.dims.shape(_out_shape(node))])


@RULES.rule("repeat")
def _repeat(ctx, node):
    src, reps = node.args["self"], node.args["repeats"]
    x = ctx.get(src)
    extra = len(reps) - src.type.rank
    if extra:
        x = reshape_to(ctx, x, [1] * extra + list(src.type.shape))
    return ctx.sink.op("Tile", [x, ctx.dims.shape(reps)])


@RULES.rule("cat")
def _cat(ctx, node):
    dt, rank = node.outputs[0].type.dtype, node.outputs[0].type.rank
    parts = [ctx.operand(t, dt) for t in node.args["tensors"] if not (t.type.rank == 1 and t.type.shape[0] == 0 and rank > 1)]
    return ctx.sink.op("Concat", parts, axis=node.arg("dim") % rank)


@RULES.rule("stack")
def _stack(ctx, node):
    dt, rank = node.outputs[0].type.dtype, node.outputs[0].type.rank
    axis = node.arg("dim") % rank
    parts = [ctx.sink.op("Unsqueeze", [ctx.operand(t, dt), ctx.sink.i64([axis])]) for t in node.args["tensors"]]
    return ctx.sink.op("Concat", parts, axis=axis)


@RULES.rule("split", "split_with_sizes", "chunk", "unbind")
def _split(ctx, node):
    src = node.args["self"]
    axis = node.arg("dim") % src.type.rank
    if node.op == "unbind":
        parts = ctx.sink.op("Split", [ctx.get(src), ctx.sink.i64([1] * len(node.outputs))], n_out=len(node.outputs),
                            axis=axis) if len(node.outputs) > 1 else [ctx.get(src)]
        parts = [parts] if isinstance(parts, str) else parts
        return [ctx.sink.op("Squeeze", [p, ctx.sink.i64([axis])]) for p in parts]
    sizes = [v.type.shape[axis] for v in node.outputs]
    if len(sizes) == 1:
        return [ctx.sink.op("Identity", [ctx.get(src)])]
    out = ctx.sink.op("Split", [ctx.get(src), ctx.dims.shape(sizes)], n_out=len(sizes), axis=axis)
    return out


def _bound(ctx, v, default):
    if v is None:
        return ctx.sink.i64([default])
    if isinstance(v, int):
        return ctx.sink.i64([max(min(v, INT64_MAX), INT64_MIN)])
    return ctx.dims.vec(v)


@RULES.rule("slice")
def _slice(ctx, node):
    s, src = ctx.sink, node.args["self"]
    axis = node.arg("dim") % src.type.rank
    step = node.arg("step") or 1
    return s.op("Slice", [ctx.get(src), _bound(ctx, node.arg("start"), 0), _bound(ctx, node.arg("end"), INT64_MAX),
                          s.i64([axis]), _bound(ctx, step, 1)])


@RULES.rule("narrow")
def _narrow(ctx, node):
    s, src = ctx.sink, node.args["self"]
    axis = node.args["dim"] % src.type.rank
    start, length = node.args["start"], node.args["length"]
    if isinstance(start, int) and start < 0:
        start = start + src.type.shape[axis]
    return s.op("Slice", [ctx.get(src), _bound(ctx, start, 0), _bound(ctx, start + length, 0), s.i64([axis])])


@RULES.rule("select")
def _select(ctx, node):
    src = node.args["self"]
    axis = node.args["dim"] % src.type.rank
    idx = node.args["index"]
    idx = ctx.sink.scalar(idx, "i64") if isinstance(idx, int) else ctx.dims.scalar(idx)
    return ctx.sink.op("Gather", [ctx.get(src), idx], axis=axis)


@RULES.rule("flip")
def _flip(ctx, node):
    s, src = ctx.sink, node.args["self"]
    axes = sorted({d % src.type.rank for d in node.args["dims"]})
    if not axes:
        return s.op("Identity", [ctx.get(src)])
    n = len(axes)
    return s.op("Slice", [ctx.get(src), s.i64([-1] * n), s.i64([INT64_MIN] * n), s.i64(axes), s.i64([-1] * n)])


@RULES.rule("roll")
def _roll(ctx, node):
    s, src = ctx.sink, node.args["self"]
    shifts, dims = list(node.args["shifts"]), list(node.arg("dims") or [])
    x = ctx.get(src)
    if not dims:                                    # roll the flattened tensor, then restore the shape
        x = s.op("Reshape", [x, s.i64([-1])])
        shape = [src.type.numel()]
        dims = [0]
    else:
        shape = src.type.shape
    for shift, dim in zip(shifts, dims):
        axis = dim % len(shape)
        n = ctx.dims.vec(shape[axis])
        k = s.op("Mod", [s.op("Sub", [n, s.op("Mod", [s.i64([shift]), n])]), n])   # first element of the result
        ax = s.i64([axis])
        x = s.op("Concat", [s.op("Slice", [x, k, n, ax]), s.op("Slice", [x, s.i64([0]), k, ax])], axis=axis)
    if not node.arg("dims"):
        x = reshape_to(ctx, x, src.type.shape)
    return x


@RULES.rule("tril", "triu")
def _trilu(ctx, node):
    s = ctx.sink
    k = node.arg("diagonal") or 0
    return s.op("Trilu", [ctx.get(node.args["self"]), s.scalar(k, "i64")], upper=int(node.op == "triu"))


@RULES.rule("constant_pad_nd")
def _pad(ctx, node):
    s, src = ctx.sink, node.args["self"]
    rank, pad = src.type.rank, list(node.args["pad"])
    if len(pad) % 2 or len(pad) // 2 > rank:
        raise LoweringError(f"onnx: constant_pad_nd pad list {pad} does not fit a rank-{rank} tensor")
    begins, ends = [0] * rank, [0] * rank
    for i in range(len(pad) // 2):          # torch lists (begin, end) pairs from the last dim backwards
        begins[rank - 1 - i], ends[rank - 1 - i] = pad[2 * i], pad[2 * i + 1]
    dt = node.outputs[0].type.dtype
    value = node.arg("value") or 0
    return s.op("Pad", [ctx.get(src), ctx.dims.shape(begins + ends), s.scalar(value, dt)], mode="constant")


@RULES.rule("repeat_interleave")
def _repeat_interleave(ctx, node):
    # each element repeated `repeats` times along dim: unsqueeze after dim, expand, merge
    src, reps = node.args.get("self"), node.args.get("repeats")
    if src is None or not isinstance(reps, int) and not hasattr(reps, "free_symbols"):
        raise LoweringError("onnx: repeat_interleave with a tensor of repeats has a data-dependent size",
                            hint="repeat by an integer")
    dim = node.arg("dim")
    x = ctx.get(src)
    if dim is None:                                   # flattened first, as torch does
        x, shape, dim = ctx.sink.op("Reshape", [x, ctx.sink.i64([-1])]), [src.type.numel()], 0
    else:
        shape = list(src.type.shape)
    dim %= len(shape)
    x = ctx.sink.op("Unsqueeze", [x, ctx.sink.i64([dim + 1])])
    x = ctx.sink.op("Expand", [x, ctx.dims.shape(shape[:dim + 1] + [reps] + shape[dim + 1:])])
    return reshape_to(ctx, x, node.outputs[0].type.shape)
