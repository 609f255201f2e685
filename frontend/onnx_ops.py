"""The ONNX op table: ONNX op type -> a small rule that emits IR (aten-named) ops.

A rule gets a `Cx` (see onnx_import.py): the node's inputs as IR values,
known arrays or python scalars, its attributes, and `cx.emit(op, **args)`.
A rule may also have a `fold`, which evaluates the op on known arrays at
import (the exporter's shape arithmetic); `static` names the inputs that
must be known at import (sizes, axes, counts); `attrs` the attributes the
rule understands (any other attribute is rejected by the importer).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import sympy
from torch.utils._sympy.functions import FloorDiv

from spikec.ir import FrontendError, Graph, TensorType, torch_dtype

from .onnx_values import (FLOAT_DTYPES, INT_DTYPES, NUMPY_DTYPES, ONNX_TO_IR, NoFold, Val, as_obj, obj_array,
                          simplify)

INT_BIG = 2 ** 62          # ONNX uses INT64_MAX/MIN in Slice to mean "to the end"


@dataclass(frozen=True)
class Rule:
    emit: Callable
    attrs: frozenset = frozenset()
    static: tuple = ()
    fold: Callable | None = None
    moves_only: bool = False      # the fold only moves or converts values, so it is exact for floats too


def R(emit, attrs=(), static=(), fold=None, moves_only=False) -> Rule:
    return Rule(emit, frozenset(attrs), tuple(static), fold, moves_only)


# -- small helpers -------------------------------------------------------------
def _prod(dims):
    out = 1
    for d in dims:
        out = out * d
    return simplify(sympy.sympify(out)) if not isinstance(out, int) else out


def _is_scalar(cx, i) -> bool:
    v = cx.val(i)
    return v.known is not None and v.known.ndim == 0


def _same_dims(a, b) -> bool:
    def same(x, y):
        return x == y if isinstance(x, int) and isinstance(y, int) else simplify(sympy.sympify(x - y)) == 0
    return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))


def _nonneg_source(v) -> bool:
    """Does an index tensor come from an op that only yields non-negative indices?"""
    seen = 0
    while v is not None and v.producer is not None and seen < 16:
        n = v.producer
        if n.op in ("nonzero", "argmax", "argmin") or (n.op in ("topk", "sort") and v.index == 1):
            return True
        if n.op == "constant":
            t = n.graph.constants.get(n.args["name"]) if n.graph is not None else None
            return t is not None and bool((t >= 0).all())
        if n.op not in ("reshape", "view", "squeeze", "unsqueeze", "permute", "_to_copy", "expand",
                        "slice", "select", "index_select", "clone", "alias", "flatten"):
            return False
        v = n.args.get("self")
        seen += 1
    return False


def _index(cx, i: int, n) -> Any:
    """Index input i with ONNX's negative indices made non-negative (aten gather/scatter need it)."""
    k = cx.known(i)
    if k is not None and k.dtype != object:
        return cx.const(np.where(k < 0, k + n, k) if isinstance(n, int) else k, cx.dtype(i), cx.node.input[i])
    v = cx.t(i)
    return v if _nonneg_source(v) else cx.emit("remainder", self=v, other=n)


def _axes(cx, i: int, attr: str = "axes"):
    """Axes given as input i (newer opsets) or as an attribute (older ones); None if absent."""
    if cx.has(i):
        return cx.static_list(i, "axes")
    a = cx.attr(attr)
    return None if a is None else list(a)


# -- elementwise -----------------------------------------------------------------
def _unary(op, **extra):
    return lambda cx: cx.emit(op, self=cx.t(0), **extra)


def _binary(op, commutative=False, scalar=True):
    def emit(cx):
        a, b = (1, 0) if commutative and _is_scalar(cx, 0) and not _is_scalar(cx, 1) else (0, 1)
        other = cx.operand(b) if scalar else cx.t(b)
        return cx.emit(op, self=cx.t(a), other=other)
    return emit


def _ew_fold(fn, dtype=None):
    f = np.frompyfunc(fn, 2, 1)

    def fold(cx, a, b):
        out = f(as_obj(a), as_obj(b))
        return [(np.asarray(out, dtype=object), dtype or cx.dtype(0))]
    return fold


def _unary_fold(fn):
    f = np.frompyfunc(fn, 1, 1)
    return lambda cx, a: [np.asarray(f(as_obj(a)), dtype=object)]


def _decide(expr) -> bool:
    """A comparison of dims, decided at import or NoFold."""
    if isinstance(expr, (bool, np.bool_)):
        return bool(expr)
    if expr is sympy.true or expr is sympy.false:
        return bool(expr)
    raise NoFold


def _cmp(kind):
    def f(a, b):
        if isinstance(a, sympy.Basic) or isinstance(b, sympy.Basic):
            d = sympy.sympify(a - b)
            res = {"eq": d.is_zero, "lt": d.is_negative, "le": d.is_nonpositive,
                   "gt": d.is_positive, "ge": d.is_nonnegative}[kind]
            if res is None:
                raise NoFold
            return bool(res)
        return {"eq": a == b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[kind]
    return _ew_fold(f, "bool")


def _trunc_div(a, b):
    if isinstance(a, sympy.Basic) or isinstance(b, sympy.Basic):
        if isinstance(b, int) and b > 0 and sympy.sympify(a).is_nonnegative:
            return FloorDiv(a, b)
        raise NoFold
    if isinstance(a, float) or isinstance(b, float):
        raise NoFold
    q = abs(a) // abs(b)
    return -q if (a < 0) != (b < 0) else q


def _div(cx):
    if cx.dtype(0) in INT_DTYPES:
        return cx.emit("div", self=cx.t(0), other=cx.operand(1), rounding_mode="trunc")
    return cx.emit("div", self=cx.t(0), other=cx.operand(1))


def _mod(cx):
    return cx.emit("fmod" if cx.attr("fmod", 0) else "remainder", self=cx.t(0), other=cx.operand(1))


def _mod_fold(cx, a, b):
    def f(x, y):
        if isinstance(x, sympy.Basic) or isinstance(y, sympy.Basic):
            raise NoFold
        return math.fmod(x, y) if cx.attr("fmod", 0) else x % y
    return _ew_fold(f)(cx, a, b)


def _pow(cx):
    return cx.emit("pow", self=cx.t(0), exponent=cx.operand(1))


def _bitshift(cx):
    op = "bitwise_left_shift" if cx.attr("direction") == "LEFT" else "bitwise_right_shift"
    return cx.emit(op, self=cx.t(0), other=cx.t(1))


def _variadic(op, mean=False):
    def emit(cx):
        acc = cx.t(0)
        for i in range(1, cx.n_inputs):
            acc = cx.emit(op, self=acc, other=cx.t(i))
        if mean and cx.n_inputs > 1:
            acc = cx.emit("div", self=acc, other=float(cx.n_inputs))
        return acc
    return emit


def _minmax_fold(pick):
    def f(x, y):
        if isinstance(x, sympy.Basic) or isinstance(y, sympy.Basic):
            return (sympy.Max if pick is max else sympy.Min)(x, y)
        return pick(x, y)
    fn = np.frompyfunc(f, 2, 1)

    def fold(cx, *arrs):
        acc = as_obj(arrs[0])
        for a in arrs[1:]:
            acc = np.asarray(fn(acc, as_obj(a)), dtype=object)
        return [acc]
    return fold


def _where(cx):
    return cx.emit("where", condition=cx.t(0), self=cx.operand(1), other=cx.operand(2))


def _where_fold(cx, c, a, b):
    return [(np.where(as_obj(c).astype(bool), as_obj(a), as_obj(b)), cx.dtype(1))]


def _clip(cx):
    if cx.has(1) or cx.has(2):
        lo = cx.operand(1) if cx.has(1) else None
        hi = cx.operand(2) if cx.has(2) else None
        if not all(x is None or isinstance(x, (int, float, sympy.Basic)) for x in (lo, hi)):
            lo = cx.t(1) if cx.has(1) else None          # aten clamp takes two tensors or two numbers
            hi = cx.t(2) if cx.has(2) else None
    else:
        lo, hi = cx.attr("min"), cx.attr("max")
    if lo is None and hi is None:
        return cx.val(0)
    return cx.emit("clamp", self=cx.t(0), min=lo, max=hi)


def _isinf(cx):
    x = cx.t(0)
    pos, neg = cx.attr("detect_positive", 1), cx.attr("detect_negative", 1)
    if pos and neg:
        return cx.emit("isinf", self=x)
    if pos:
        return cx.emit("eq", self=x, other=math.inf)
    if neg:
        return cx.emit("eq", self=x, other=-math.inf)
    return cx.emit("full", size=list(cx.shape(0)), fill_value=False, dtype=torch_dtype("bool"))


def _hard_sigmoid(cx, x=None, alpha=None, beta=None):
    x = cx.t(0) if x is None else x
    alpha = cx.attr("alpha", 0.2) if alpha is None else alpha
    beta = cx.attr("beta", 0.5) if beta is None else beta
    y = cx.emit("add", self=cx.emit("mul", self=x, other=float(alpha)), other=float(beta))
    return cx.emit("clamp", self=y, min=0.0, max=1.0)


def _hard_swish(cx):
    x = cx.t(0)
    return cx.emit("mul", self=x, other=_hard_sigmoid(cx, x, 1 / 6, 0.5))


def _softsign(cx):
    x = cx.t(0)
    return cx.emit("div", self=x, other=cx.emit("add", self=cx.emit("abs", self=x), other=1))


def _thresholded_relu(cx):
    x = cx.t(0)
    return cx.emit("where", condition=cx.emit("gt", self=x, other=float(cx.attr("alpha", 1.0))), self=x, other=0.0)


def _shrink(cx):
    x, lambd, bias = cx.t(0), float(cx.attr("lambd", 0.5)), float(cx.attr("bias", 0.0))
    hi = cx.emit("where", condition=cx.emit("gt", self=x, other=lambd),
                 self=cx.emit("sub", self=x, other=bias), other=0)
    return cx.emit("where", condition=cx.emit("lt", self=x, other=-lambd),
                   self=cx.emit("add", self=x, other=bias), other=hi)


def _prelu(cx):
    x = cx.t(0)
    neg = cx.emit("mul", self=x, other=cx.t(1))
    return cx.emit("where", condition=cx.emit("lt", self=x, other=0), self=neg, other=x)


def _celu(cx):
    alpha = float(cx.attr("alpha", 1.0))
    return cx.emit("elu", self=cx.t(0), alpha=alpha, input_scale=1.0 / alpha)


def _selu(cx):
    return cx.emit("elu", self=cx.t(0), alpha=float(cx.attr("alpha", 1.67326319217681884765625)),
                   scale=float(cx.attr("gamma", 1.05070102214813232421875)))


def _gelu(cx):
    return cx.emit("gelu", self=cx.t(0), approximate=cx.attr("approximate", "none"))


# -- casts and constants -----------------------------------------------------------
def _to_dtype(cx) -> str:
    return ONNX_TO_IR.get(cx.attr("to")) or cx.fail(f"Cast to ONNX type {cx.attr('to')} is not supported")


def _cast(cx):
    to = _to_dtype(cx)
    return cx.val(0) if cx.dtype(0) == to else cx.emit("_to_copy", self=cx.t(0), dtype=torch_dtype(to))


def _cast_fold(cx, a, to=None):
    to = to or _to_dtype(cx)

    def conv(x):
        if isinstance(x, sympy.Basic):
            if to == "bool":
                return _decide(sympy.Ne(x, 0))
            return x                                  # dims stay dims, whatever the number type
        if to == "bool":
            return bool(x)
        if to in INT_DTYPES:
            return int(x)
        if to in NUMPY_DTYPES and to in FLOAT_DTYPES:
            return float(np.asarray(x, dtype=NUMPY_DTYPES[to]))    # round as the target type does
        return float(x) if to in FLOAT_DTYPES else x
    return [(np.asarray(np.frompyfunc(conv, 1, 1)(as_obj(a)), dtype=object), to)]


def _cast_like(cx):
    to = cx.dtype(1)
    k = cx.known(0)
    if k is not None and k.size <= 16 and cx.dtype(0) in NUMPY_DTYPES and to in NUMPY_DTYPES:
        arr, dtype = _cast_fold(cx, k, to)[0]      # only the target's dtype matters, not its data
        return Val(known=arr, dtype=dtype)
    return cx.val(0) if cx.dtype(0) == to else cx.emit("_to_copy", self=cx.t(0), dtype=torch_dtype(to))


def _constant(cx):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if cx.has_attr(key):
            break
    else:
        cx.fail("Constant without a supported value attribute")
    if key == "value":
        dtype = cx.attr_dtype("value") or cx.fail("Constant of this ONNX element type is not supported")
        return Val(known=cx.attr("value"), dtype=dtype, name=cx.node.output[0])
    dtype = "f32" if key.startswith("value_float") else "i64"
    arr = np.asarray(cx.attr(key), dtype=np.float32 if dtype == "f32" else np.int64)
    return Val(known=arr, dtype=dtype, name=cx.node.output[0])


def _constant_of_shape(cx):
    size = cx.static_list(0, "shape")
    value = cx.attr("value")
    dtype = cx.attr_dtype("value") if value is not None else "f32"
    fill = simplify(value.reshape(-1)[0]) if value is not None else 0.0
    return cx.emit("full", size=size, fill_value=fill, dtype=torch_dtype(dtype))


def _constant_of_shape_fold(cx, shape):
    size = [simplify(x) for x in shape.reshape(-1)]
    if not all(isinstance(d, int) for d in size):
        raise NoFold
    value = cx.attr("value")
    dtype = cx.attr_dtype("value") if value is not None else "f32"
    if dtype not in INT_DTYPES | {"bool"}:
        raise NoFold
    fill = simplify(value.reshape(-1)[0])
    out = np.empty(size, dtype=object)
    out.fill(fill)
    return [(out, dtype)]


def _range(cx):
    vals = [cx.static_scalar(i, n) for i, n in enumerate(("start", "limit", "delta"))]
    if any(isinstance(v, sympy.Basic) for v in vals):
        # fake-tensor arange wants integer dims; a float zero or one from the exporter is fine as int
        vals = [int(v) if isinstance(v, float) and v.is_integer() else v for v in vals]
    start, end, step = vals
    return cx.emit("arange", start=start, end=end, step=step, dtype=torch_dtype(cx.dtype(0)))


def _range_fold(cx, s, e, d):
    s, e, d = (simplify(x.reshape(-1)[0]) for x in (s, e, d))
    if not all(isinstance(x, int) for x in (s, e, d)):
        raise NoFold
    return [obj_array(range(s, e, d))]


def _identity(cx):
    return cx.val(0)


def _dropout(cx):
    if cx.has(2) and cx.known(2) is not None and bool(cx.known(2).reshape(-1)[0]):
        cx.fail("Dropout in training mode is not supported (inference graphs only)")
    if cx.has(2) and cx.known(2) is None:
        cx.fail("Dropout with a run-time training_mode is not supported")
    mask = None
    if cx.n_outputs > 1 and cx.node.output[1]:
        mask = cx.emit("full", size=list(cx.shape(0)), fill_value=True, dtype=torch_dtype("bool"))
    return [cx.val(0), mask]


# -- shapes --------------------------------------------------------------------------
def _shape(cx):
    dims = list(cx.shape(0))
    start, end = cx.attr("start", 0), cx.attr("end")
    return Val(known=obj_array(dims[start:end]), dtype="i64")


def _size(cx):
    return Val(known=obj_array([_prod(cx.shape(0))], ()), dtype="i64")


def _reshape_target(cx, in_shape, target) -> list:
    allowzero = cx.attr("allowzero", 0)
    out = [in_shape[i] if (not allowzero and isinstance(d, int) and d == 0) else d for i, d in enumerate(target)]
    holes = [i for i, d in enumerate(out) if isinstance(d, int) and d == -1]
    if len(holes) == 1:
        rest = _prod(d for i, d in enumerate(out) if i != holes[0])
        if not (isinstance(rest, int) and rest == 0):
            num, den = sympy.fraction(sympy.cancel(sympy.sympify(_prod(in_shape)) / rest))
            if den == 1:
                out[holes[0]] = simplify(num)
    return out


def _reshape(cx):
    shape = _reshape_target(cx, cx.shape(0), cx.static_list(1, "shape"))
    if _same_dims(shape, cx.shape(0)):
        return cx.val(0)
    return cx.emit("reshape", self=cx.t(0), shape=shape)


def _reshape_fold(cx, a, shape):
    target = _reshape_target(cx, a.shape, [simplify(x) for x in shape.reshape(-1)])
    if not all(isinstance(d, int) for d in target):
        raise NoFold
    return [as_obj(a).reshape(target)]


def _broadcast(s1, s2) -> list:
    r = max(len(s1), len(s2))
    a = [1] * (r - len(s1)) + list(s1)
    b = [1] * (r - len(s2)) + list(s2)
    out = []
    for x, y in zip(a, b):
        if isinstance(x, int) and x == 1:
            out.append(y)
        elif isinstance(y, int) and y == 1:
            out.append(x)
        elif isinstance(x, int) and isinstance(y, int) and x != y:
            raise FrontendError(f"shapes {list(s1)} and {list(s2)} do not broadcast")
        else:
            out.append(y if isinstance(y, int) else x)   # a static size wins over a symbol
    return out


def _expand(cx):
    shape = _broadcast(cx.shape(0), cx.static_list(1, "shape"))
    v = cx.val(0)
    if v.known is not None and v.known.size == 1 and v.dtype not in ("bf16",) and not v.dtype.startswith(("c", "f8")):
        # Expand of one constant value is a fill: say so.
        return cx.emit("full", size=shape, fill_value=simplify(v.known.reshape(-1)[0]),
                       dtype=torch_dtype(v.dtype))
    if _same_dims(shape, cx.shape(0)):
        return v
    return cx.emit("expand", self=cx.t(0), size=shape)


def _expand_fold(cx, a, shape):
    target = _broadcast(a.shape, [simplify(x) for x in shape.reshape(-1)])
    if not all(isinstance(d, int) for d in target):
        raise NoFold
    return [np.broadcast_to(as_obj(a), target).copy()]


def _concat(cx):
    r = cx.rank(0)
    return cx.emit("cat", tensors=[cx.t(i) for i in range(cx.n_inputs) if cx.has(i)], dim=cx.axis(cx.attr("axis"), r))


def _concat_fold(cx, *arrs):
    arrs = [as_obj(a) for a in arrs if a is not None]
    return [np.concatenate(arrs, axis=cx.attr("axis") % arrs[0].ndim)]


def _split_sizes(cx) -> tuple[int, list]:
    r = cx.rank(0)
    axis = cx.axis(cx.attr("axis", 0), r)
    d = cx.shape(0)[axis]
    if cx.has(1):
        return axis, cx.static_list(1, "split")
    if cx.attr("split") is not None:
        return axis, list(cx.attr("split"))
    n = cx.attr("num_outputs") or cx.n_outputs
    if not isinstance(d, int):
        cx.fail(f"Split of the symbolic dim {d} into {n} parts is not supported", error=FrontendError,
                hint="give the split sizes explicitly")
    if cx.attr("num_outputs"):
        c = -(-d // n)
        return axis, [c] * (n - 1) + [d - c * (n - 1)]
    if d % n:
        cx.fail(f"Split of dim {d} into {n} equal parts", error=FrontendError)
    return axis, [d // n] * n


def _split(cx):
    axis, sizes = _split_sizes(cx)
    return cx.emit("split_with_sizes", n=len(sizes), self=cx.t(0), split_sizes=sizes, dim=axis)


def _split_fold(cx, a, *rest):
    axis, sizes = _split_sizes(cx)
    if not all(isinstance(s, int) for s in sizes):
        raise NoFold
    return np.split(as_obj(a), np.cumsum(sizes)[:-1], axis=axis)


def _slice_params(cx):
    if cx.has(1):
        starts, ends = cx.static_list(1, "starts"), cx.static_list(2, "ends")
        axes = cx.static_list(3, "axes") if cx.has(3) else list(range(len(starts)))
        steps = cx.static_list(4, "steps") if cx.has(4) else [1] * len(starts)
    else:
        starts, ends = list(cx.attr("starts")), list(cx.attr("ends"))
        axes = list(cx.attr("axes", range(len(starts))))
        steps = [1] * len(starts)
    return starts, ends, [cx.axis(a, cx.rank(0)) for a in axes], steps


def _clamp_bounds(s, e, step, n):
    """ONNX's clamping of Slice bounds on a static dim of size n."""
    s = s + n if s < 0 else s
    e = e + n if e < 0 else e
    if step > 0:
        return min(max(s, 0), n), min(max(e, 0), n)
    return min(max(s, 0), n - 1), min(max(e, -1), n - 1)


def _slice(cx):
    x, shape = cx.val(0), cx.shape(0)
    for s, e, a, st in zip(*_slice_params(cx)):
        if not isinstance(st, int) or st == 0:
            cx.fail(f"Slice step {st} is not supported", error=FrontendError)
        n = shape[a]
        if st > 0:
            s = None if isinstance(s, int) and s == 0 else s
            e = None if isinstance(e, int) and e >= INT_BIG else e
            if s is None and e is None and st == 1:
                continue
            x = Val(ir=cx.emit("slice", self=cx.tensor(x), dim=a, start=s, end=e, step=st))
            continue
        # negative step: flip the axis, then walk it forwards
        if not (isinstance(n, int) and isinstance(s, int) and isinstance(e, int)):
            cx.fail("Slice with a negative step over a symbolic dim is not supported", error=FrontendError)
        s, e = _clamp_bounds(s, e, st, n)
        flipped = cx.emit("flip", self=cx.tensor(x), dims=[a])
        x = Val(ir=cx.emit("slice", self=flipped, dim=a, start=n - 1 - s, end=n - 1 - e, step=-st))
    return x


def _slice_fold(cx, a, *rest):
    out = as_obj(a)
    for s, e, ax, st in zip(*_slice_params(cx)):
        if not all(isinstance(v, int) for v in (s, e, st)) or st == 0:
            raise NoFold
        s, e = _clamp_bounds(s, e, st, out.shape[ax])
        out = np.take(out, list(range(s, e, st)), axis=ax)
    return [out]


def _squeeze_axes(cx) -> list:
    axes = _axes(cx, 1)
    shape = cx.shape(0)
    if axes is None:
        return [i for i, d in enumerate(shape) if isinstance(d, int) and d == 1]
    return sorted(cx.axis(a, len(shape)) for a in axes)


def _squeeze(cx):
    axes = _squeeze_axes(cx)
    return cx.emit("squeeze", self=cx.t(0), dim=axes) if axes else cx.val(0)


def _squeeze_fold(cx, a, *rest):
    return [as_obj(a).reshape([d for i, d in enumerate(a.shape) if i not in _squeeze_axes(cx)])]


def _unsqueeze_axes(cx) -> list:
    axes = _axes(cx, 1)
    out_rank = cx.rank(0) + len(axes)
    return sorted(cx.axis(a, out_rank) for a in axes)


def _unsqueeze(cx):
    x = cx.t(0)
    for a in _unsqueeze_axes(cx):
        x = cx.emit("unsqueeze", self=x, dim=a)
    return x


def _unsqueeze_fold(cx, a, *rest):
    return [np.expand_dims(as_obj(a), tuple(_unsqueeze_axes(cx)))]


def _perm(cx) -> list:
    r = cx.rank(0)
    perm = cx.attr("perm")
    if perm is None:
        return list(range(r))[::-1]
    out = [cx.axis(p, r) for p in perm]
    if sorted(out) != list(range(r)):       # e.g. [0, 0]: not a permutation of the axes
        cx.fail(f"Transpose: perm {list(perm)} is not a permutation of the {r} axes", error=FrontendError)
    return out


def _transpose(cx):
    perm, x = _perm(cx), cx.t(0)
    p = x.producer
    if p is not None and p.op == "permute" and p.graph is cx.g:
        # a transpose of a transpose (NonZero's [N, r] -> [r, N] undone by the exporter): compose them
        perm, x = [p.args["dims"][i] for i in perm], p.args["self"]
    return x if perm == sorted(perm) else cx.emit("permute", self=x, dims=perm)


def _flatten(cx):
    shape = cx.shape(0)
    a = cx.attr("axis", 1)
    a = a + len(shape) if a < 0 else a          # Flatten's axis ranges over [-r, r]
    return cx.emit("reshape", self=cx.t(0), shape=[_prod(shape[:a]), _prod(shape[a:])])


def _tile(cx):
    return cx.emit("repeat", self=cx.t(0), repeats=cx.static_list(1, "repeats"))


def _pad(cx):
    mode = cx.attr("mode", "constant")
    if mode != "constant":
        cx.fail(f"Pad mode {mode!r} is not supported (only 'constant')")
    r = cx.rank(0)
    pads = cx.static_list(1, "pads") if cx.has(1) else list(cx.attr("pads"))
    value = cx.static_scalar(2, "constant_value") if cx.has(2) else cx.attr("value", 0.0)
    axes = [cx.axis(a, r) for a in cx.static_list(3, "axes")] if cx.has(3) else list(range(r))
    k = len(axes)
    begin, end = dict(zip(axes, pads[:k])), dict(zip(axes, pads[k:]))
    torch_pad = []
    for d in reversed(range(r)):
        torch_pad += [begin.get(d, 0), end.get(d, 0)]
    if cx.dtype(0) in INT_DTYPES:
        value = int(value)
    return cx.emit("constant_pad_nd", self=cx.t(0), pad=torch_pad, value=value)


# -- indexing -------------------------------------------------------------------------
def _gather(cx):
    r = cx.rank(0)
    axis = cx.axis(cx.attr("axis", 0), r)
    n = cx.shape(0)[axis]
    k = cx.known(1)
    if k is not None and k.ndim == 0:
        return cx.emit("select", self=cx.t(0), dim=axis, index=simplify(k[()]))
    if cx.rank(1) == 1 and (k is not None or _nonneg_source(cx.t(1))):
        return cx.emit("index_select", self=cx.t(0), dim=axis, index=_index(cx, 1, n))
    # aten.index takes negative indices and any index shape, as ONNX Gather does
    return cx.emit("index", self=cx.t(0), indices=[None] * axis + [cx.t(1)])


def _gather_fold(cx, a, idx):
    if idx.dtype == object and any(isinstance(x, sympy.Basic) for x in idx.flat):
        raise NoFold
    return [np.take(as_obj(a), idx.astype(np.int64), axis=cx.attr("axis", 0) % max(a.ndim, 1))]


def _gather_elements(cx):
    axis = cx.axis(cx.attr("axis", 0), cx.rank(0))
    return cx.emit("gather", self=cx.t(0), dim=axis, index=_index(cx, 1, cx.shape(0)[axis]))


def _nd_indices(cx, i: int) -> list:
    if cx.attr("batch_dims", 0):
        cx.fail(f"{cx.node.op_type} with batch_dims != 0 is not supported")
    k = cx.shape(i)[-1]
    if not isinstance(k, int):
        cx.fail("the last dim of the indices must be static", error=FrontendError)
    idx = cx.t(i)
    return [cx.emit("select", self=idx, dim=-1, index=j) for j in range(k)]


def _gather_nd(cx):
    return cx.emit("index", self=cx.t(0), indices=_nd_indices(cx, 1))


_SCATTER_REDUCE = {"add": "sum", "mul": "prod", "max": "amax", "min": "amin"}


def _scatter_elements(cx):
    axis = cx.axis(cx.attr("axis", 0), cx.rank(0))
    idx = _index(cx, 1, cx.shape(0)[axis])
    red = cx.attr("reduction", "none")
    if red == "none":
        return cx.emit("scatter", self=cx.t(0), dim=axis, index=idx, src=cx.t(2))
    if red not in _SCATTER_REDUCE:
        cx.fail(f"ScatterElements reduction {red!r} is not supported")
    return cx.emit("scatter_reduce", self=cx.t(0), dim=axis, index=idx, src=cx.t(2), reduce=_SCATTER_REDUCE[red])


def _scatter_nd(cx):
    red = cx.attr("reduction", "none")
    if red not in ("none", "add"):
        cx.fail(f"ScatterND reduction {red!r} is not supported")
    return cx.emit("index_put", self=cx.t(0), indices=_nd_indices(cx, 1), values=cx.t(2), accumulate=red == "add")


def _nonzero(cx):
    # aten gives [N, rank]; ONNX wants [rank, N]
    return cx.emit("permute", self=cx.emit("nonzero", self=cx.t(0)), dims=[1, 0])


def _topk(cx):
    k = cx.static_scalar(1, "K") if cx.has(1) else cx.attr("k")
    axis = cx.axis(cx.attr("axis", -1), cx.rank(0))
    return cx.emit("topk", n=2, self=cx.t(0), k=k, dim=axis, largest=bool(cx.attr("largest", 1)),
                   sorted=bool(cx.attr("sorted", 1)))


def _trilu(cx):
    k = cx.static_scalar(1, "k") if cx.has(1) else 0
    return cx.emit("triu" if cx.attr("upper", 1) else "tril", self=cx.t(0), diagonal=k)


def _one_hot(cx):
    depth = cx.static_scalar(1, "depth")
    depth = int(depth) if isinstance(depth, float) else depth
    idx = cx.cast(cx.t(0), "i64")
    # negative indices count from the end; out-of-range ones match no class (all "off")
    idx = cx.emit("where", condition=cx.emit("lt", self=idx, other=0),
                  self=cx.emit("add", self=idx, other=depth), other=idx)
    classes = cx.emit("arange", end=depth, dtype=torch_dtype("i64"))
    hot = cx.emit("eq", self=cx.emit("unsqueeze", self=idx, dim=-1), other=classes)
    r = cx.rank(0) + 1
    axis = cx.axis(cx.attr("axis", -1), r)
    if axis != r - 1:
        hot = cx.emit("permute", self=hot, dims=[*range(axis), r - 1, *range(axis, r - 1)])
    values = cx.t(2)
    off = cx.emit("select", self=values, dim=0, index=0)
    on = cx.emit("select", self=values, dim=0, index=1)
    return cx.emit("where", condition=hot, self=on, other=off)


# -- reductions, scans, normalisations ----------------------------------------------
def _reduce(kind):
    def emit(cx):
        r = cx.rank(0)
        axes = _axes(cx, 1)
        keep = bool(cx.attr("keepdims", 1))
        if not axes:
            if cx.attr("noop_with_empty_axes", 0):
                return cx.val(0)
            axes = list(range(r))
        axes = sorted(cx.axis(a, r) for a in axes)
        return _REDUCERS[kind](cx, cx.t(0), axes, keep)
    return emit


def _reduce_prod(cx, x, axes, keep):
    for a in sorted(axes, reverse=True):
        x = cx.emit("prod", self=x, dim=a, keepdim=keep)
    return x


def _square(cx, x):
    return cx.emit("mul", self=x, other=x)


_REDUCERS = {
    "sum": lambda cx, x, d, k: cx.emit("sum", self=x, dim=d, keepdim=k),
    "mean": lambda cx, x, d, k: cx.emit("mean", self=x, dim=d, keepdim=k),
    "max": lambda cx, x, d, k: cx.emit("any" if x.type.dtype == "bool" else "amax", self=x, dim=d, keepdim=k),
    "min": lambda cx, x, d, k: cx.emit("all" if x.type.dtype == "bool" else "amin", self=x, dim=d, keepdim=k),
    "prod": _reduce_prod,
    "l1": lambda cx, x, d, k: cx.emit("sum", self=cx.emit("abs", self=x), dim=d, keepdim=k),
    "l2": lambda cx, x, d, k: (cx.emit("linalg_vector_norm", self=x, ord=2, dim=d, keepdim=k)
                               if x.type.dtype in FLOAT_DTYPES else
                               cx.emit("sqrt", self=cx.emit("sum", self=_square(cx, x), dim=d, keepdim=k))),
    "log_sum": lambda cx, x, d, k: cx.emit("log", self=cx.emit("sum", self=x, dim=d, keepdim=k)),
    "log_sum_exp": lambda cx, x, d, k: cx.emit("logsumexp", self=x, dim=d, keepdim=k),
    "sum_square": lambda cx, x, d, k: cx.emit("sum", self=_square(cx, x), dim=d, keepdim=k),
}


def _reduce_fold(np_fn):
    def fold(cx, a, axes_in=None):
        axes = [simplify(x) for x in axes_in.reshape(-1)] if axes_in is not None else cx.attr("axes")
        if not axes:
            if cx.attr("noop_with_empty_axes", 0):
                return [a]
            axes = list(range(a.ndim))
        obj = as_obj(a)
        if np_fn in (np.max, np.min) and any(isinstance(x, sympy.Basic) for x in obj.flat):
            raise NoFold
        out = np_fn(obj, axis=tuple(x % a.ndim for x in axes), keepdims=bool(cx.attr("keepdims", 1)))
        return [np.asarray(out, dtype=object)]
    return fold


_REDUCE_ATTRS = ("axes", "keepdims", "noop_with_empty_axes")


def _arg(op):
    def emit(cx):
        r = cx.rank(0)
        axis = cx.axis(cx.attr("axis", 0), r)
        keep = bool(cx.attr("keepdims", 1))
        x = cx.t(0)
        if not cx.attr("select_last_index", 0):
            return cx.emit(op, self=x, dim=axis, keepdim=keep)
        # the last extreme: search the flipped axis and map the index back
        i = cx.emit(op, self=cx.emit("flip", self=x, dims=[axis]), dim=axis, keepdim=keep)
        return cx.emit("rsub", self=i, other=cx.shape(0)[axis] - 1)
    return emit


def _scan_op(op, undo):
    """CumSum / CumProd: reverse by flipping; exclusive by undoing the own element
    (exact for sums; for products it needs no zero, so it shifts instead)."""
    def emit(cx):
        axis = cx.axis(cx.static_scalar(1, "axis"), cx.rank(0))
        x = cx.t(0)
        if cx.attr("reverse", 0):
            x = cx.emit("flip", self=x, dims=[axis])
        if cx.attr("exclusive", 0) and undo is None:
            # shift by one along the axis, padding with the identity (1)
            n = cx.shape(0)[axis]
            pad = [0, 0] * (cx.rank(0) - 1 - axis) + [1, 0]
            x = cx.emit("slice", self=cx.emit("constant_pad_nd", self=x, pad=pad, value=1), dim=axis, end=n)
        y = cx.emit(op, self=x, dim=axis)
        if cx.attr("exclusive", 0) and undo is not None:
            y = cx.emit(undo, self=y, other=x)
        if cx.attr("reverse", 0):
            y = cx.emit("flip", self=y, dims=[axis])
        return y
    return emit


def _swish(cx):
    x = cx.t(0)
    alpha = float(cx.attr("alpha", 1.0))
    if alpha == 1.0:
        return cx.emit("silu", self=x)
    return cx.emit("mul", self=x, other=cx.emit("sigmoid", self=cx.emit("mul", self=x, other=alpha)))


def _lp_normalization(cx):
    x = cx.t(0)
    axis = cx.axis(cx.attr("axis", -1), cx.rank(0))
    norm = cx.emit("linalg_vector_norm", self=x, ord=float(cx.attr("p", 2)), dim=[axis], keepdim=True)
    # an all-zero slice stays zero (ONNX), not 0/0
    norm = cx.emit("where", condition=cx.emit("eq", self=norm, other=0), self=1.0, other=norm)
    return cx.emit("div", self=x, other=norm)


def _coerced_2d(cx, fn):
    """Before opset 13, Softmax-like ops work on the input flattened to 2-D at `axis`."""
    r = cx.rank(0)
    if cx.opset >= 13:
        return fn(cx.t(0), cx.axis(cx.attr("axis", -1), r))
    axis = cx.axis(cx.attr("axis", 1), r)
    if axis == r - 1:
        return fn(cx.t(0), axis)
    shape = list(cx.shape(0))
    flat = cx.emit("reshape", self=cx.t(0), shape=[_prod(shape[:axis]), _prod(shape[axis:])])
    return cx.emit("reshape", self=fn(flat, 1), shape=shape)


def _softmax(op):
    return lambda cx: _coerced_2d(cx, lambda x, d: cx.emit(op, self=x, dim=d))


def _hardmax(cx):
    def fn(x, d):
        idx = cx.emit("argmax", self=x, dim=d, keepdim=True)
        return cx.emit("scatter", self=cx.emit("zeros_like", self=x), dim=d, index=idx, value=1)
    return _coerced_2d(cx, fn)


def _gemm(cx):
    a, b = cx.t(0), cx.t(1)
    alpha, beta = float(cx.attr("alpha", 1.0)), float(cx.attr("beta", 1.0))
    ta, tb = cx.attr("transA", 0), cx.attr("transB", 0)
    if not ta and tb and alpha == 1 and beta == 1 and (not cx.has(2) or cx.rank(2) == 1):
        return cx.emit("linear", input=a, weight=b, bias=cx.t(2) if cx.has(2) else None)
    if ta:
        a = cx.emit("permute", self=a, dims=[1, 0])
    if tb:
        b = cx.emit("permute", self=b, dims=[1, 0])
    y = cx.emit("matmul", self=a, other=b)
    if alpha != 1:
        y = cx.emit("mul", self=y, other=alpha)
    if cx.has(2) and beta != 0:
        c = cx.operand(2)
        if beta != 1:
            c = c * beta if not hasattr(c, "type") else cx.emit("mul", self=c, other=beta)
        y = cx.emit("add", self=y, other=c)
    return y


def _einsum(cx):
    eq = cx.attr("equation").replace(" ", "")
    return cx.emit("einsum", equation=eq, tensors=[cx.t(i) for i in range(cx.n_inputs)])


def _layer_norm(cx):
    r = cx.rank(0)
    axis = cx.axis(cx.attr("axis", -1), r)
    ns = list(cx.shape(0)[axis:])
    eps = float(cx.attr("epsilon", 1e-5))
    w = cx.t(1) if cx.has(1) else None
    b = cx.t(2) if cx.has(2) else None
    stats = any(cx.node.output[i] for i in range(1, cx.n_outputs))
    if stats and (w is None or _same_dims(w.type.shape, ns)) and (b is None or _same_dims(b.type.shape, ns)):
        return cx.emit("native_layer_norm", n=3, input=cx.t(0), normalized_shape=ns, weight=w, bias=b, eps=eps)
    if stats:
        cx.fail("LayerNormalization with broadcast scale/bias and mean/inv-std outputs is not supported")
    if (w is None or _same_dims(w.type.shape, ns)) and (b is None or _same_dims(b.type.shape, ns)):
        return cx.emit("layer_norm", input=cx.t(0), normalized_shape=ns, weight=w, bias=b, eps=eps)
    y = cx.emit("layer_norm", input=cx.t(0), normalized_shape=ns, eps=eps)
    y = cx.emit("mul", self=y, other=w) if w is not None else y
    return cx.emit("add", self=y, other=b) if b is not None else y


def _rms_norm(cx):
    r = cx.rank(0)
    ns = list(cx.shape(0)[cx.axis(cx.attr("axis", -1), r):])
    eps = float(cx.attr("epsilon", 1e-5))
    w = cx.t(1)
    if _same_dims(w.type.shape, ns):
        return cx.emit("rms_norm", input=cx.t(0), normalized_shape=ns, weight=w, eps=eps)
    return cx.emit("mul", self=cx.emit("rms_norm", input=cx.t(0), normalized_shape=ns, eps=eps), other=w)


def _channel(cx, v, r):
    """A per-channel [C] vector shaped to broadcast against [N, C, ...]."""
    return cx.emit("reshape", self=v, shape=[-1] + [1] * (r - 2))


def _batch_norm(cx):
    if cx.attr("training_mode", 0):
        cx.fail("BatchNormalization in training mode is not supported (inference graphs only)")
    r = cx.rank(0)
    eps = float(cx.attr("epsilon", 1e-5))
    scale, bias, mean, var = (_channel(cx, cx.t(i), r) for i in (1, 2, 3, 4))
    inv = cx.emit("rsqrt", self=cx.emit("add", self=var, other=eps))
    y = cx.emit("mul", self=cx.emit("sub", self=cx.t(0), other=mean), other=cx.emit("mul", self=inv, other=scale))
    return cx.emit("add", self=y, other=bias)


def _instance_norm(cx):
    r = cx.rank(0)
    eps = float(cx.attr("epsilon", 1e-5))
    x, dims = cx.t(0), list(range(2, r))
    mean = cx.emit("mean", self=x, dim=dims, keepdim=True)
    var = cx.emit("var", self=x, dim=dims, correction=0, keepdim=True)
    y = cx.emit("mul", self=cx.emit("sub", self=x, other=mean),
                other=cx.emit("rsqrt", self=cx.emit("add", self=var, other=eps)))
    y = cx.emit("mul", self=y, other=_channel(cx, cx.t(1), r))
    return cx.emit("add", self=y, other=_channel(cx, cx.t(2), r))


# -- control flow -------------------------------------------------------------------
def _scan(cx):
    if cx.opset < 9:
        cx.fail("Scan before opset 9 (with sequence_lens) is not supported")
    body = cx.attr("body")
    m = cx.attr("num_scan_inputs")
    n_state = cx.n_inputs - m
    k = len(body.output) - n_state
    in_axes = list(cx.attr("scan_input_axes", [0] * m))
    in_dirs = list(cx.attr("scan_input_directions", [0] * m))
    out_axes = list(cx.attr("scan_output_axes", [0] * k))
    out_dirs = list(cx.attr("scan_output_directions", [0] * k))
    init = [cx.t(i) for i in range(n_state)]
    xs = []
    for j in range(m):
        x = cx.t(n_state + j)
        r = x.type.rank
        a = cx.axis(in_axes[j], r)
        if a:
            x = cx.emit("permute", self=x, dims=[a] + [d for d in range(r) if d != a])
        if in_dirs[j]:
            x = cx.emit("flip", self=x, dims=[0])
        xs.append(x)
    in_types = [v.type for v in init] + [TensorType(x.type.shape[1:], x.type.dtype) for x in xs]
    region, captured = cx.region(body, "combine", in_types)
    outs = cx.emit("scan", n=n_state + k, regions=[region], init=init, xs=xs, additional_inputs=captured)
    ys = []
    for j, y in enumerate(outs[n_state:]):
        if out_dirs[j]:
            y = cx.emit("flip", self=y, dims=[0])
        r = y.type.rank
        a = cx.axis(out_axes[j], r)
        if a:
            y = cx.emit("permute", self=y, dims=[*range(1, a + 1), 0, *range(a + 1, r)])
        ys.append(y)
    return list(outs[:n_state]) + ys


def _if(cx):
    then_g, else_g = cx.attr("then_branch"), cx.attr("else_branch")
    cond = cx.known(0)
    if cond is not None and cond.dtype != object:
        return cx.inline(then_g if bool(cond.reshape(-1)[0]) else else_g)   # decided at import
    from .onnx_import import free_names
    names = list(dict.fromkeys(free_names(then_g) + free_names(else_g)))
    t_region, operands = cx.region(then_g, "true_branch", [], names)
    e_region, _ = cx.region(else_g, "false_branch", [], names)
    pred = cx.t(0)
    if pred.type.rank:
        pred = cx.emit("reshape", self=pred, shape=[])
    return cx.emit("cond", n=len(then_g.output), regions=[t_region, e_region], pred=pred, operands=operands)


def _loop(cx):
    """ONNX Loop -> while_loop over (i, cond, v...): cond(i < M and c), body(i + 1, body's cond and v)."""
    body = cx.attr("body")
    n_v = cx.n_inputs - 2
    if len(body.output) != 1 + n_v:
        cx.fail("Loop with scan outputs (per-iteration results) is not supported")
    b = torch_dtype("bool")
    i0 = cx.emit("full", size=[], fill_value=0, dtype=torch_dtype("i64"))
    c0 = cx.t(1) if cx.has(1) else cx.emit("full", size=[], fill_value=True, dtype=b)
    if c0.type.rank:
        c0 = cx.emit("reshape", self=c0, shape=[])
    carried = [i0, c0] + [cx.t(2 + j) for j in range(n_v)]
    trip = cx.known(0) if cx.has(0) else None
    from .onnx_import import free_names
    captures = list(free_names(body))
    runtime_trip = cx.has(0) and trip is None
    if runtime_trip:
        captures = [cx.node.input[0]] + [n for n in captures if n != cx.node.input[0]]
    in_types = [v.type for v in carried]
    body_region, extra = cx.region(body, "body", in_types, captures)
    # the counter steps in the body region; the trip count is checked in the cond region
    step = cx.imp.emit(body_region, "add", {"self": body_region.inputs[0], "other": 1}, cx.loc)[0]
    outs = list(body_region.outputs)
    cond_out = outs[0]
    if cond_out.type.rank:
        cond_out = cx.imp.emit(body_region, "reshape", {"self": cond_out, "shape": []}, cx.loc)[0]
    body_region.set_outputs([step, cond_out] + outs[1:])
    cond_region = Graph("cond")
    types = in_types + [v.type for v in extra]
    ins = [cond_region.add_input(t, n) for t, n in zip(types, ["i", "cond"] + [f"v{j}" for j in range(len(types) - 2)])]
    keep = ins[1]
    if cx.has(0):
        limit = ins[len(in_types)] if runtime_trip else simplify(trip.reshape(-1)[0])
        if runtime_trip and limit.type.rank:
            limit = cx.imp.emit(cond_region, "reshape", {"self": limit, "shape": []}, cx.loc)[0]
        below = cx.imp.emit(cond_region, "lt", {"self": ins[0], "other": limit}, cx.loc)[0]
        keep = cx.imp.emit(cond_region, "logical_and", {"self": keep, "other": below}, cx.loc)[0]
    cond_region.set_outputs([keep])
    outs = cx.emit("while_loop", n=len(carried), regions=[cond_region, body_region],
                   carried_inputs=carried, additional_inputs=extra)
    return outs[2:]


# -- the table ------------------------------------------------------------------------
_A = {"alpha"}
RULES: dict[str, Rule] = {
    # elementwise unary
    "Abs": R(_unary("abs"), fold=_unary_fold(abs)), "Neg": R(_unary("neg"), fold=_unary_fold(lambda x: -x)),
    "Exp": R(_unary("exp")), "Log": R(_unary("log")), "Sqrt": R(_unary("sqrt")),
    "Reciprocal": R(_unary("reciprocal")), "Sigmoid": R(_unary("sigmoid")), "Relu": R(_unary("relu")),
    "Tanh": R(_unary("tanh")), "Erf": R(_unary("erf")), "Softplus": R(_unary("softplus")),
    "Sin": R(_unary("sin")), "Cos": R(_unary("cos")), "Tan": R(_unary("tan")), "Asin": R(_unary("asin")),
    "Acos": R(_unary("acos")), "Atan": R(_unary("atan")), "Sinh": R(_unary("sinh")), "Cosh": R(_unary("cosh")),
    "Floor": R(_unary("floor")), "Ceil": R(_unary("ceil")), "Round": R(_unary("round")),
    "Sign": R(_unary("sign")), "Not": R(_unary("logical_not"), fold=_unary_fold(lambda x: _decide(not x))),
    "BitwiseNot": R(_unary("bitwise_not")), "IsNaN": R(_unary("isnan")), "Mish": R(_unary("mish")),
    "IsInf": R(_isinf, {"detect_negative", "detect_positive"}),
    "Identity": R(_identity), "Gelu": R(_gelu, {"approximate"}),
    "LeakyRelu": R(lambda cx: cx.emit("leaky_relu", self=cx.t(0), negative_slope=float(cx.attr("alpha", 0.01))), _A),
    "Elu": R(lambda cx: cx.emit("elu", self=cx.t(0), alpha=float(cx.attr("alpha", 1.0))), _A),
    "Selu": R(_selu, {"alpha", "gamma"}), "Celu": R(_celu, _A),
    "HardSigmoid": R(_hard_sigmoid, {"alpha", "beta"}), "HardSwish": R(_hard_swish),
    "Softsign": R(_softsign), "ThresholdedRelu": R(_thresholded_relu, _A),
    "Shrink": R(_shrink, {"bias", "lambd"}), "PRelu": R(_prelu),
    "Clip": R(_clip, {"min", "max"}), "Swish": R(_swish, _A),
    # elementwise binary / variadic
    "Add": R(_binary("add", commutative=True), fold=_ew_fold(lambda a, b: a + b)),
    "Sub": R(_binary("sub"), fold=_ew_fold(lambda a, b: a - b)),
    "Mul": R(_binary("mul", commutative=True), fold=_ew_fold(lambda a, b: a * b)),
    "Div": R(_div, fold=_ew_fold(_trunc_div)),
    "Pow": R(_pow), "Mod": R(_mod, {"fmod"}, fold=_mod_fold),
    "Equal": R(_binary("eq"), fold=_cmp("eq")), "Less": R(_binary("lt"), fold=_cmp("lt")),
    "LessOrEqual": R(_binary("le"), fold=_cmp("le")), "Greater": R(_binary("gt"), fold=_cmp("gt")),
    "GreaterOrEqual": R(_binary("ge"), fold=_cmp("ge")),
    "And": R(_binary("logical_and", scalar=False), fold=_ew_fold(lambda a, b: _decide(a and b), "bool")),
    "Or": R(_binary("logical_or", scalar=False), fold=_ew_fold(lambda a, b: _decide(a or b), "bool")),
    "Xor": R(_binary("logical_xor", scalar=False)),
    "BitwiseAnd": R(_binary("bitwise_and")), "BitwiseOr": R(_binary("bitwise_or")),
    "BitwiseXor": R(_binary("bitwise_xor")), "BitShift": R(_bitshift, {"direction"}),
    "Max": R(_variadic("maximum"), fold=_minmax_fold(max)), "Min": R(_variadic("minimum"), fold=_minmax_fold(min)),
    "Sum": R(_variadic("add")), "Mean": R(_variadic("add", mean=True)),
    "Where": R(_where, fold=_where_fold, moves_only=True),
    # casts and constants
    "Cast": R(_cast, {"to", "saturate"}, fold=_cast_fold, moves_only=True), "CastLike": R(_cast_like, {"saturate"}),
    "Constant": R(_constant, {"value", "value_float", "value_floats", "value_int", "value_ints"}),
    "ConstantOfShape": R(_constant_of_shape, {"value"}, static=(0,), fold=_constant_of_shape_fold),
    "Range": R(_range, static=(0, 1, 2), fold=_range_fold),
    "Dropout": R(_dropout, {"seed", "ratio", "is_test"}, static=(2,)),
    # shapes
    "Shape": R(_shape, {"start", "end"}), "Size": R(_size),
    "Reshape": R(_reshape, {"allowzero"}, static=(1,), fold=_reshape_fold, moves_only=True),
    "Expand": R(_expand, static=(1,), fold=_expand_fold, moves_only=True),
    "Concat": R(_concat, {"axis"}, fold=_concat_fold, moves_only=True),
    "Split": R(_split, {"axis", "split", "num_outputs"}, static=(1,), fold=_split_fold, moves_only=True),
    "Slice": R(_slice, {"starts", "ends", "axes"}, static=(1, 2, 3, 4), fold=_slice_fold, moves_only=True),
    "Squeeze": R(_squeeze, {"axes"}, static=(1,), fold=_squeeze_fold, moves_only=True),
    "Unsqueeze": R(_unsqueeze, {"axes"}, static=(1,), fold=_unsqueeze_fold, moves_only=True),
    "Transpose": R(_transpose, {"perm"}, fold=lambda cx, a: [np.transpose(as_obj(a), _perm(cx))], moves_only=True),
    "Flatten": R(_flatten, {"axis"}), "Tile": R(_tile, static=(1,)),
    "Pad": R(_pad, {"mode", "pads", "value"}, static=(1, 2, 3)),
    # indexing
    "Gather": R(_gather, {"axis"}, fold=_gather_fold, moves_only=True), "GatherElements": R(_gather_elements, {"axis"}),
    "GatherND": R(_gather_nd, {"batch_dims"}),
    "ScatterElements": R(_scatter_elements, {"axis", "reduction"}), "Scatter": R(_scatter_elements, {"axis"}),
    "ScatterND": R(_scatter_nd, {"reduction"}),
    "NonZero": R(_nonzero), "TopK": R(_topk, {"axis", "largest", "sorted", "k"}, static=(1,)),
    "Trilu": R(_trilu, {"upper"}, static=(1,)), "OneHot": R(_one_hot, {"axis"}, static=(1,)),
    # reductions and scans
    "ReduceSum": R(_reduce("sum"), _REDUCE_ATTRS, static=(1,), fold=_reduce_fold(np.sum)),
    "ReduceMean": R(_reduce("mean"), _REDUCE_ATTRS, static=(1,)),
    "ReduceMax": R(_reduce("max"), _REDUCE_ATTRS, static=(1,), fold=_reduce_fold(np.max)),
    "ReduceMin": R(_reduce("min"), _REDUCE_ATTRS, static=(1,), fold=_reduce_fold(np.min)),
    "ReduceProd": R(_reduce("prod"), _REDUCE_ATTRS, static=(1,), fold=_reduce_fold(np.prod)),
    "ReduceL1": R(_reduce("l1"), _REDUCE_ATTRS, static=(1,)),
    "ReduceL2": R(_reduce("l2"), _REDUCE_ATTRS, static=(1,)),
    "ReduceLogSum": R(_reduce("log_sum"), _REDUCE_ATTRS, static=(1,)),
    "ReduceLogSumExp": R(_reduce("log_sum_exp"), _REDUCE_ATTRS, static=(1,)),
    "ReduceSumSquare": R(_reduce("sum_square"), _REDUCE_ATTRS, static=(1,)),
    "ArgMax": R(_arg("argmax"), {"axis", "keepdims", "select_last_index"}),
    "ArgMin": R(_arg("argmin"), {"axis", "keepdims", "select_last_index"}),
    "CumSum": R(_scan_op("cumsum", "sub"), {"exclusive", "reverse"}, static=(1,)),
    "CumProd": R(_scan_op("cumprod", None), {"exclusive", "reverse"}, static=(1,)),
    "Softmax": R(_softmax("softmax"), {"axis"}), "LogSoftmax": R(_softmax("log_softmax"), {"axis"}),
    "Hardmax": R(_hardmax, {"axis"}),
    # linear algebra and normalisation
    "MatMul": R(lambda cx: cx.emit("matmul", self=cx.t(0), other=cx.t(1))),
    "Gemm": R(_gemm, {"alpha", "beta", "transA", "transB"}), "Einsum": R(_einsum, {"equation"}),
    "LayerNormalization": R(_layer_norm, {"axis", "epsilon", "stash_type"}),
    "RMSNormalization": R(_rms_norm, {"axis", "epsilon", "stash_type"}),
    "BatchNormalization": R(_batch_norm, {"epsilon", "momentum", "training_mode"}),
    "InstanceNormalization": R(_instance_norm, {"epsilon"}),
    "LpNormalization": R(_lp_normalization, {"axis", "p"}),
    # control flow
    "Scan": R(_scan, {"body", "num_scan_inputs", "scan_input_axes", "scan_input_directions",
                      "scan_output_axes", "scan_output_directions"}),
    "If": R(_if, {"then_branch", "else_branch"}), "Loop": R(_loop, {"body"}),
}


def supported_ops() -> list[str]:
    """The ONNX op types (default domain) the importer handles."""
    return sorted(RULES)
