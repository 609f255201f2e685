"""Indexing, gathers and scatters, including aten's advanced indexing (`x[i, :, j]`,
boolean masks) as Gather / GatherND / ScatterND with the indexed axes moved to the front."""
from __future__ import annotations

import numpy as np

from ..builder import tensor_proto
from ..dtypes import NUMPY_TYPES
from spikec.codegen.errors import LoweringError
from . import RULES
from .shape import reshape_to


def _index_vectors(ctx, indices, rank):
    """aten's index list -> one int64 ONNX tensor (or None) per axis; a bool mask of rank m
    fills m axes with its NonZero coordinates."""
    s = ctx.sink
    out = []
    for ix in indices:
        if ix is None:
            out.append(None)
        elif ix.type.dtype in ("bool", "u8"):
            nz = s.op("NonZero", [ctx.operand(ix, "bool")])
            for j in range(ix.type.rank):
                out.append(s.op("Gather", [nz, s.scalar(j, "i64")], axis=0))
        else:
            out.append(ctx.operand(ix, "i64"))
    if len(out) > rank:
        raise LoweringError(f"onnx: {len(out)} indices for a rank-{rank} tensor")
    return out + [None] * (rank - len(out))


def _layout(vecs):
    """Indexed axes, and whether they are adjacent (then the result keeps them in place)."""
    pos = [d for d, v in enumerate(vecs) if v is not None]
    return pos, pos == list(range(pos[0], pos[-1] + 1))


def _stacked(ctx, vecs, pos):
    """The indices broadcast together and stacked on a last axis: [*bshape, k]."""
    s = ctx.sink
    idx = [vecs[d] for d in pos]
    if len(idx) > 1:
        zero = s.op("Mul", [idx[0], s.scalar(0, "i64")])
        for v in idx[1:]:
            zero = s.op("Add", [zero, s.op("Mul", [v, s.scalar(0, "i64")])])
        shape = s.op("Shape", [zero])
        idx = [s.op("Expand", [v, shape]) for v in idx]
    last = s.i64([-1])
    return s.op("Concat", [s.op("Unsqueeze", [v, last]) for v in idx], axis=-1)


def _front_perm(pos, rank):
    return pos + [d for d in range(rank) if d not in pos]


@RULES.rule("index")
def _index(ctx, node):
    s, src = ctx.sink, node.args["self"]
    rank = src.type.rank
    vecs = _index_vectors(ctx, node.args["indices"], rank)
    pos, adjacent = _layout(vecs)
    x = ctx.get(src)
    if len(pos) == 1:                                  # Gather places the index dims where the axis was
        return s.op("Gather", [x, vecs[pos[0]]], axis=pos[0])
    perm = _front_perm(pos, rank)
    xt = x if perm == list(range(rank)) else s.op("Transpose", [x], perm=perm)
    out = s.op("GatherND", [xt, _stacked(ctx, vecs, pos)])
    before = pos[0] if adjacent else 0
    if before:
        nb = node.outputs[0].type.rank - (rank - len(pos))       # rank of the broadcast index shape
        rest = rank - len(pos)
        out = s.op("Transpose", [out], perm=[nb + i for i in range(before)] + list(range(nb))
                   + [nb + before + i for i in range(rest - before)])
    return out


@RULES.rule("index_put")
def _index_put(ctx, node):
    s, src = ctx.sink, node.args["self"]
    rank, dt = src.type.rank, src.type.dtype
    vecs = _index_vectors(ctx, node.args["indices"], rank)
    pos, adjacent = _layout(vecs)
    perm = _front_perm(pos, rank)
    x = ctx.get(src)
    xt = x if perm == list(range(rank)) else s.op("Transpose", [x], perm=perm)
    idx = _stacked(ctx, vecs, pos)
    # values broadcast to the shape x[indices] has in torch, then laid out as [*bshape, *rest]
    bshape = s.op("Shape", [idx], end=-1)
    rest_shape = s.op("Shape", [xt], start=len(pos))
    before = pos[0] if adjacent else 0
    rest = rank - len(pos)
    vals = ctx.operand(node.args["values"], dt)
    if before:
        torch_shape = s.op("Concat", [s.op("Slice", [rest_shape, s.i64([0]), s.i64([before])]), bshape,
                                      s.op("Slice", [rest_shape, s.i64([before]), s.i64([rest])])], axis=0)
        vals = s.op("Transpose", [s.op("Expand", [vals, torch_shape])], perm=_put_perm(node, before, rest))
    else:
        vals = s.op("Expand", [vals, s.op("Concat", [bshape, rest_shape], axis=0)])
    red = "add" if node.arg("accumulate") else "none"
    out = s.op("ScatterND", [xt, idx, vals], reduction=red)
    if perm == list(range(rank)):
        return out
    inv = [perm.index(d) for d in range(rank)]
    return s.op("Transpose", [out], perm=inv)


def _put_perm(node, before, rest):
    # [before..., b..., after...] -> [b..., before..., after...]; b's rank is the index rank
    nb = _index_rank(node)
    return list(range(before, before + nb)) + list(range(before)) + list(range(before + nb, before + nb + rest - before))


def _index_rank(node):
    ranks = []
    for ix in node.args["indices"]:
        if ix is not None:
            ranks.append(1 if ix.type.dtype in ("bool", "u8") else ix.type.rank)
    return max(ranks)


@RULES.rule("index_select", "embedding")
def _index_select(ctx, node):
    if node.op == "embedding":
        return ctx.sink.op("Gather", [ctx.get(node.args["weight"]), ctx.operand(node.args["indices"], "i64")], axis=0)
    src = node.args["self"]
    return ctx.sink.op("Gather", [ctx.get(src), ctx.operand(node.args["index"], "i64")],
                       axis=node.args["dim"] % max(src.type.rank, 1))


@RULES.rule("gather")
def _gather(ctx, node):
    src = node.args["self"]
    return ctx.sink.op("GatherElements", [ctx.get(src), ctx.operand(node.args["index"], "i64")],
                       axis=node.args["dim"] % max(src.type.rank, 1))


def _src_like_index(ctx, node, dt):
    """scatter's src, or its scalar `value` broadcast to the index's shape."""
    if node.args.get("src") is not None:
        return ctx.operand(node.args["src"], dt)
    return ctx.sink.op("Expand", [ctx.operand(node.args["value"], dt), ctx.sink.op("Shape", [ctx.get(node.args["index"])])])


_REDUCE = {"sum": "add", "prod": "mul", "amax": "max", "amin": "min"}


@RULES.rule("scatter", "scatter_add", "scatter_reduce")
def _scatter(ctx, node):
    s, src = ctx.sink, node.args["self"]
    dt = src.type.dtype
    red = "none"
    if node.op == "scatter_add":
        red = "add"
    elif node.op == "scatter_reduce":
        red = _REDUCE.get(node.args["reduce"])
        if red is None or not node.arg("include_self"):
            raise LoweringError(f"onnx: scatter_reduce(reduce={node.args['reduce']!r}, "
                                f"include_self={node.arg('include_self')}) has no ONNX form",
                                hint="use reduce sum/prod/amax/amin with include_self=True")
    elif node.args.get("reduce") is not None:       # scatter(..., reduce="add"|"multiply")
        red = {"add": "add", "multiply": "mul"}[node.args["reduce"]]
    return s.op("ScatterElements", [ctx.get(src), ctx.operand(node.args["index"], "i64"), _src_like_index(ctx, node, dt)],
                axis=node.args["dim"] % max(src.type.rank, 1), reduction=red)


def _along_axis_scatter(ctx, node, updates, reduction):
    """index_add / index_copy / index_fill: scatter whole slices along `dim` with ScatterND."""
    s, src = ctx.sink, node.args["self"]
    rank = src.type.rank
    axis = node.args["dim"] % max(rank, 1)
    perm = [axis] + [d for d in range(rank) if d != axis]
    moved = perm != list(range(rank))
    x = ctx.get(src)
    xt = s.op("Transpose", [x], perm=perm) if moved else x
    upd = s.op("Transpose", [updates], perm=perm) if moved else updates
    idx = s.op("Unsqueeze", [ctx.operand(node.args["index"], "i64"), s.i64([-1])])
    out = s.op("ScatterND", [xt, idx, upd], reduction=reduction)
    return s.op("Transpose", [out], perm=[perm.index(d) for d in range(rank)]) if moved else out


@RULES.rule("index_add")
def _index_add(ctx, node):
    s, dt = ctx.sink, node.args["self"].type.dtype
    src = ctx.operand(node.args["source"], dt)
    alpha = node.arg("alpha")
    if alpha not in (None, 1):
        src = s.op("Mul", [src, s.scalar(alpha, dt)])
    return _along_axis_scatter(ctx, node, src, "add")


@RULES.rule("index_copy")
def _index_copy(ctx, node):
    return _along_axis_scatter(ctx, node, ctx.operand(node.args["source"], node.args["self"].type.dtype), "none")


@RULES.rule("index_fill")
def _index_fill(ctx, node):
    s, src = ctx.sink, node.args["self"]
    dt, rank = src.type.dtype, src.type.rank
    axis = node.args["dim"] % max(rank, 1)
    # a mask along `axis` with ones at the indices, then Where
    n = ctx.dims.vec(src.type.shape[axis])
    zeros = s.op("ConstantOfShape", [n], value=_zero_tensor("bool"))
    idx = s.op("Unsqueeze", [ctx.operand(node.args["index"], "i64"), s.i64([-1])])
    ones = s.op("Expand", [s.const([True], "bool"), s.op("Shape", [ctx.operand(node.args["index"], "i64")])])
    mask = s.op("ScatterND", [zeros, idx, ones])
    mask = reshape_to(ctx, mask, [src.type.shape[axis] if d == axis else 1 for d in range(rank)])
    return s.op("Where", [mask, ctx.operand(node.args["value"], dt), ctx.get(src)])


def _zero_tensor(dtype):
    return tensor_proto("zero", np.zeros([1], dtype=NUMPY_TYPES[dtype]))


@RULES.rule("masked_fill")
def _masked_fill(ctx, node):
    dt = node.outputs[0].type.dtype
    return ctx.sink.op("Where", [ctx.operand(node.args["mask"], "bool"), ctx.operand(node.args["value"], dt),
                                 ctx.operand(node.args["self"], dt)])


@RULES.rule("nonzero")
def _nonzero(ctx, node):
    nz = ctx.sink.op("NonZero", [ctx.get(node.args["self"])])
    return ctx.sink.op("Transpose", [nz], perm=[1, 0])
