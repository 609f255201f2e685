"""Elementwise ops: unary math, binary arithmetic and comparisons, where/clamp.

Arithmetic is computed in the node's result dtype (the IR type already holds
torch's promotion); comparisons in the promoted operand dtype. Ops Relax has
no operator for (log1p, expm1, ...) are TE computes over TIR intrinsics.
"""
from __future__ import annotations

from tvm import relax, te, tirx

from .lower import Lowering, tvm_dtype
from .promote import promote
from .table import RULES

op = relax.op


def _out_dt(node) -> str:
    return node.outputs[0].type.dtype


def _te_unary(cx: Lowering, x: relax.Expr, fn, name: str) -> relax.Expr:
    return cx.bb.emit_te(lambda t: te.compute(t.shape, lambda *i: fn(t(*i)), name=name), x)


# -- unary: op -> builder on the input already cast to the result dtype ------
def _dt(x) -> str:
    return str(x.ty)


def _c(v, like):
    return tirx.const(v, _dt(like))


def _log1p(x):
    return tirx.log1p(x)


def _expm1(x):
    # exp(x) - 1 loses the digits near 0; Kahan's (u - 1)·x / log(u) keeps them.
    u = tirx.exp(x)
    return tirx.Select(u == _c(1, x), x,
                       tirx.Select(u - _c(1, x) == _c(-1, x), _c(-1, x), (u - _c(1, x)) * x / tirx.log(u)))


UNARY_RELAX = {
    "abs": op.abs, "neg": op.negative, "exp": op.exp, "log": op.log, "sqrt": op.sqrt, "rsqrt": op.rsqrt,
    "sin": op.sin, "cos": op.cos, "tan": op.tan, "tanh": op.tanh, "sinh": op.sinh, "cosh": op.cosh,
    "asin": op.asin, "acos": op.acos, "atan": op.atan, "sigmoid": op.sigmoid, "erf": op.erf,
    "floor": op.floor, "ceil": op.ceil, "trunc": op.trunc, "sign": op.sign, "sgn": op.sign,
    "relu": op.nn.relu, "silu": op.nn.silu, "square": op.square,
}
UNARY_TE = {
    "log1p": _log1p, "expm1": _expm1,
    "exp2": lambda x: tirx.exp2(x), "log2": lambda x: tirx.log2(x), "log10": lambda x: tirx.log10(x),
    "reciprocal": lambda x: _c(1, x) / x,
    "frac": lambda x: x - tirx.trunc(x),
    "round": lambda x: tirx.nearbyint(x),
}


def _unary_rule(fn, te_fn=None, name=""):
    def rule(cx: Lowering, node):
        x = node.args["self"]
        dt = _out_dt(node)
        e = cx.operand(x, dt)
        if node.op == "round" and node.args.get("decimals"):
            scale = 10.0 ** node.args["decimals"]
            e = cx.emit(op.multiply(e, cx.const(scale, dt)))
            e = _te_unary(cx, e, te_fn, name)
            return op.divide(e, cx.const(scale, dt))
        if dt in ("bool",) or (dt.startswith(("i", "u")) and node.op in ("floor", "ceil", "trunc", "round")):
            return e      # integer rounding is the identity
        return fn(e) if te_fn is None else _te_unary(cx, e, te_fn, name)
    return rule


for _op, _fn in UNARY_RELAX.items():
    RULES.add(_op, _unary_rule(_fn))
for _op, _fn in UNARY_TE.items():
    RULES.add(_op, _unary_rule(None, _fn, _op))


@RULES.rule("gelu")
def _gelu(cx: Lowering, node):
    x = cx.operand(node.args["self"], _out_dt(node))
    return op.nn.gelu_tanh(x) if node.args.get("approximate", "none") == "tanh" else op.nn.gelu(x)


@RULES.rule("softplus")
def _softplus(cx: Lowering, node):
    dt = _out_dt(node)
    x = cx.operand(node.args["self"], dt)
    beta, thr = float(node.args.get("beta", 1)), float(node.args.get("threshold", 20))
    bx = cx.emit(op.multiply(x, cx.const(beta, dt)))
    soft = _te_unary(cx, bx, lambda v: tirx.log1p(tirx.exp(v)) / _c(beta, v), "softplus")
    return op.where(op.greater(bx, cx.const(thr, dt)), x, soft)


@RULES.rule("leaky_relu")
def _leaky_relu(cx: Lowering, node):
    x = cx.operand(node.args["self"], _out_dt(node))
    return op.nn.leakyrelu(x, float(node.args.get("negative_slope", 0.01)))


@RULES.rule("hardtanh")
def _hardtanh(cx: Lowering, node):
    x = cx.operand(node.args["self"], _out_dt(node))
    return op.clip(x, float(node.args.get("min_val", -1)), float(node.args.get("max_val", 1)))


@RULES.rule("elu")
def _elu(cx: Lowering, node):
    dt = _out_dt(node)
    x = cx.operand(node.args["self"], dt)
    a, s, i = (float(node.args.get(k, 1)) for k in ("alpha", "scale", "input_scale"))
    neg = _te_unary(cx, x, lambda v: _c(a * s, v) * _expm1(v * _c(i, v)), "elu")
    return op.where(op.greater(x, cx.const(0, dt)), op.multiply(x, cx.const(s, dt)), neg)


@RULES.rule("mish")
def _mish(cx: Lowering, node):
    x = cx.operand(node.args["self"], _out_dt(node))
    return _te_unary(cx, x, lambda v: v * tirx.tanh(tirx.log1p(tirx.exp(v))), "mish")


@RULES.rule("logit")
def _logit(cx: Lowering, node):
    dt = _out_dt(node)
    x = cx.operand(node.args["self"], dt)
    eps = node.args.get("eps")
    if eps is not None:
        x = cx.emit(op.clip(x, float(eps), 1.0 - float(eps)))
    return op.log(op.divide(x, op.subtract(cx.const(1, dt), x)))


@RULES.rule("isnan", "isinf", "isfinite")
def _isclass(cx: Lowering, node):
    x = cx.expr(node.args["self"])
    return {"isnan": op.isnan, "isinf": op.isinf, "isfinite": op.isfinite}[node.op](x)


@RULES.rule("logical_not")
def _logical_not(cx: Lowering, node):
    x = node.args["self"]
    return op.logical_not(_truth(cx, x))


@RULES.rule("bitwise_not")
def _bitwise_not(cx: Lowering, node):
    x = cx.expr(node.args["self"])
    return op.logical_not(x) if node.args["self"].type.dtype == "bool" else op.bitwise_not(x)


@RULES.rule("nan_to_num")
def _nan_to_num(cx: Lowering, node):
    dt = _out_dt(node)
    x = cx.operand(node.args["self"], dt)
    import torch
    from spikec.ir.types import torch_dtype
    fi = torch.finfo(torch_dtype(dt))
    nan = node.args.get("nan") or 0.0
    pos = node.args.get("posinf")
    neg = node.args.get("neginf")
    pos = fi.max if pos is None else pos
    neg = fi.min if neg is None else neg
    y = cx.emit(op.where(op.isnan(x), cx.const(nan, dt), x))
    y = cx.emit(op.where(op.logical_and(op.isinf(y), op.greater(y, cx.const(0, dt))), cx.const(pos, dt), y))
    return op.where(op.logical_and(op.isinf(y), op.less(y, cx.const(0, dt))), cx.const(neg, dt), y)


def _truth(cx: Lowering, a) -> relax.Expr:
    """A Value as bool (nonzero is true)."""
    if a.type.dtype == "bool":
        return cx.expr(a)
    return cx.emit(op.not_equal(cx.expr(a), cx.const(0, a.type.dtype)))


# -- binary ------------------------------------------------------------------
def _arith(fn):
    def rule(cx: Lowering, node):
        dt = _out_dt(node)
        a = cx.operand(node.args["self"], dt)
        b = cx.operand(node.args["other"], dt)
        alpha = node.args.get("alpha", 1)
        if alpha != 1:
            b = cx.emit(op.multiply(b, cx.const(alpha, dt)))
        if node.op == "rsub":
            a, b = b, a
        return fn(a, b)
    return rule


RULES.add("add", _arith(op.add))
RULES.add("sub", _arith(op.subtract))
RULES.add("rsub", _arith(op.subtract))
RULES.add("mul", _arith(op.multiply))
RULES.add("maximum", _arith(op.maximum))
RULES.add("minimum", _arith(op.minimum))
RULES.add("atan2", _arith(op.atan2))
RULES.add("remainder", _arith(op.floor_mod))
RULES.add("fmod", _arith(op.mod))


@RULES.rule("floor_divide")
def _floor_divide(cx: Lowering, node):
    dt = _out_dt(node)
    a, b = cx.operand(node.args["self"], dt), cx.operand(node.args["other"], dt)
    return op.floor_divide(a, b) if dt.startswith(("i", "u")) else op.floor(op.divide(a, b))


@RULES.rule("div")
def _div(cx: Lowering, node):
    dt = _out_dt(node)
    mode = node.args.get("rounding_mode")
    if mode is None:
        return op.divide(cx.operand(node.args["self"], dt), cx.operand(node.args["other"], dt))
    if dt.startswith(("i", "u")):
        a, b = cx.operand(node.args["self"], dt), cx.operand(node.args["other"], dt)
        if mode == "floor":
            return op.floor_divide(a, b)
        # trunc: the quotient rounded toward zero
        fa, fb = cx.emit(op.astype(a, "float64")), cx.emit(op.astype(b, "float64"))
        return op.astype(op.trunc(op.divide(fa, fb)), tvm_dtype(dt))
    q = cx.emit(op.divide(cx.operand(node.args["self"], dt), cx.operand(node.args["other"], dt)))
    return op.floor(q) if mode == "floor" else op.trunc(q)


@RULES.rule("pow")
def _pow(cx: Lowering, node):
    dt = _out_dt(node)
    base, ex = node.args["self"], node.args["exponent"]
    if not hasattr(ex, "type") and ex == 2:
        b = cx.operand(base, dt)
        return op.multiply(b, b)
    if not hasattr(ex, "type") and ex == 1:
        return cx.operand(base, dt)
    if not hasattr(ex, "type") and ex == 0.5:
        return op.sqrt(cx.operand(base, dt))
    return op.power(cx.operand(base, dt), cx.operand(ex, dt))


def _compare(fn):
    def rule(cx: Lowering, node):
        a, b = node.args["self"], node.args["other"]
        dt = promote(a, b)
        return fn(cx.operand(a, dt), cx.operand(b, dt))
    return rule


for _op, _fn in {"eq": op.equal, "ne": op.not_equal, "lt": op.less, "le": op.less_equal,
                 "gt": op.greater, "ge": op.greater_equal}.items():
    RULES.add(_op, _compare(_fn))


def _logical(fn):
    def rule(cx: Lowering, node):
        a, b = node.args["self"], node.args["other"]
        ta = _truth(cx, a) if hasattr(a, "type") else cx.const(bool(a), "bool")
        tb = _truth(cx, b) if hasattr(b, "type") else cx.const(bool(b), "bool")
        return fn(ta, tb)
    return rule


RULES.add("logical_and", _logical(op.logical_and))
RULES.add("logical_or", _logical(op.logical_or))
RULES.add("logical_xor", _logical(op.logical_xor))


def _bitwise(fn_int, fn_bool):
    def rule(cx: Lowering, node):
        dt = _out_dt(node)
        a, b = cx.operand(node.args["self"], dt), cx.operand(node.args["other"], dt)
        return (fn_bool if dt == "bool" else fn_int)(a, b)
    return rule


RULES.add("bitwise_and", _bitwise(op.bitwise_and, op.logical_and))
RULES.add("bitwise_or", _bitwise(op.bitwise_or, op.logical_or))
RULES.add("bitwise_xor", _bitwise(op.bitwise_xor, op.logical_xor))
RULES.add("bitwise_left_shift", _bitwise(op.left_shift, None))
RULES.add("bitwise_right_shift", _bitwise(op.right_shift, None))


@RULES.rule("where")
def _where(cx: Lowering, node):
    dt = _out_dt(node)
    cond = _truth(cx, node.args["condition"])
    return op.where(cond, cx.operand(node.args["self"], dt), cx.operand(node.args["other"], dt))


@RULES.rule("masked_fill")
def _masked_fill(cx: Lowering, node):
    dt = _out_dt(node)
    return op.where(_truth(cx, node.args["mask"]), cx.operand(node.args["value"], dt),
                    cx.operand(node.args["self"], dt))


def _clamp_to(cx: Lowering, x, bound, dt, fn):
    if bound is None:
        return x
    return cx.emit(fn(x, cx.operand(bound, dt)))


def _nan_keep(cx: Lowering, x, y, dt):
    # torch's clamp propagates NaN; TVM's max/min may not.
    if dt.startswith(("i", "u")) or dt == "bool":
        return y
    return op.where(op.isnan(x), x, y)


@RULES.rule("clamp")
def _clamp(cx: Lowering, node):
    dt = _out_dt(node)
    x = cx.operand(node.args["self"], dt)
    y = _clamp_to(cx, x, node.args.get("min"), dt, op.maximum)
    y = _clamp_to(cx, y, node.args.get("max"), dt, op.minimum)
    return _nan_keep(cx, x, y, dt)


@RULES.rule("clamp_min")
def _clamp_min(cx: Lowering, node):
    dt = _out_dt(node)
    x = cx.operand(node.args["self"], dt)
    return _nan_keep(cx, x, _clamp_to(cx, x, node.args["min"], dt, op.maximum), dt)


@RULES.rule("clamp_max")
def _clamp_max(cx: Lowering, node):
    dt = _out_dt(node)
    x = cx.operand(node.args["self"], dt)
    return _nan_keep(cx, x, _clamp_to(cx, x, node.args["max"], dt, op.minimum), dt)


@RULES.rule("lerp")
def _lerp(cx: Lowering, node):
    dt = _out_dt(node)
    a, b, w = (cx.operand(node.args[k], dt) for k in ("self", "end", "weight"))
    return op.add(a, op.multiply(w, op.subtract(b, a)))


@RULES.rule("heaviside")
def _heaviside(cx: Lowering, node):
    dt = _out_dt(node)
    x, vals = cx.operand(node.args["self"], dt), cx.operand(node.args["values"], dt)
    zero = cx.const(0, dt)
    pos = cx.emit(op.astype(op.greater(x, zero), tvm_dtype(dt)))
    return op.where(op.equal(x, zero), vals, pos)
