"""Elementwise ops. Arithmetic computes in the node's output dtype (torch's promotion
already decided it); comparisons compute in the promoted dtype of their operands."""
from __future__ import annotations

import math

from ..dtypes import is_float, promoted
from . import RULES


def _out(node) -> str:
    return node.outputs[0].type.dtype


# -- binary arithmetic ------------------------------------------------------------
def _scaled(ctx, node, name, dt):
    """`node.args[name] * alpha` (aten's add/sub/rsub alpha)."""
    x = ctx.operand(node.args[name], dt)
    alpha = node.arg("alpha")
    return x if alpha in (None, 1) else ctx.sink.op("Mul", [x, ctx.sink.scalar(alpha, dt)])


@RULES.rule("add", "sub")
def _add_sub(ctx, node):
    dt = _out(node)
    a = ctx.operand(node.args["self"], dt)
    b = _scaled(ctx, node, "other", dt)
    if dt == "bool":          # bool + bool is logical or in torch
        return ctx.sink.op("Or", [a, b])
    return ctx.sink.op("Add" if node.op == "add" else "Sub", [a, b])


@RULES.rule("rsub")
def _rsub(ctx, node):
    dt = _out(node)
    return ctx.sink.op("Sub", [ctx.operand(node.args["other"], dt), _scaled(ctx, node, "self", dt)])


@RULES.rule("mul")
def _mul(ctx, node):
    dt = _out(node)
    a, b = ctx.operand(node.args["self"], dt), ctx.operand(node.args["other"], dt)
    return ctx.sink.op("And" if dt == "bool" else "Mul", [a, b])


def _trunc(ctx, x, dt):
    s = ctx.sink
    return s.op("Where", [s.op("Less", [x, s.scalar(0, dt)]), s.op("Ceil", [x]), s.op("Floor", [x])])


@RULES.rule("div")
def _div(ctx, node):
    dt, s = _out(node), ctx.sink
    mode = node.arg("rounding_mode")
    a, b = ctx.operand(node.args["self"], dt), ctx.operand(node.args["other"], dt)
    q = s.op("Div", [a, b])
    if mode is None or (mode == "trunc" and not is_float(dt)):
        return q                                   # true division, or ONNX's truncating integer Div
    if mode == "trunc":
        return _trunc(ctx, q, dt)
    if is_float(dt):
        return s.op("Floor", [q])
    # integer floor division: (a - a mod b) / b with Python's sign convention for mod
    return s.op("Div", [s.op("Sub", [a, s.op("Mod", [a, b])]), b])


@RULES.rule("floor_divide")
def _floor_divide(ctx, node):
    dt, s = _out(node), ctx.sink
    a, b = ctx.operand(node.args["self"], dt), ctx.operand(node.args["other"], dt)
    if is_float(dt):
        return s.op("Floor", [s.op("Div", [a, b])])
    return s.op("Div", [s.op("Sub", [a, s.op("Mod", [a, b])]), b])


@RULES.rule("remainder")
def _remainder(ctx, node):
    dt, s = _out(node), ctx.sink
    a, b = ctx.operand(node.args["self"], dt), ctx.operand(node.args["other"], dt)
    if not is_float(dt):
        return s.op("Mod", [a, b])                 # fmod=0: the result takes the divisor's sign, like torch
    return s.op("Sub", [a, s.op("Mul", [s.op("Floor", [s.op("Div", [a, b])]), b])])


@RULES.rule("fmod")
def _fmod(ctx, node):
    dt = _out(node)
    return ctx.sink.op("Mod", [ctx.operand(node.args["self"], dt), ctx.operand(node.args["other"], dt)], fmod=1)


@RULES.rule("pow")
def _pow(ctx, node):
    dt = _out(node)
    return ctx.sink.op("Pow", [ctx.operand(node.args["self"], dt), ctx.operand(node.args["exponent"], dt)])


@RULES.rule("maximum", "minimum")
def _max_min(ctx, node):
    dt = _out(node)
    a, b = ctx.operand(node.args["self"], dt), ctx.operand(node.args["other"], dt)
    return ctx.sink.op("Max" if node.op == "maximum" else "Min", [a, b])


@RULES.rule("atan2")
def _atan2(ctx, node):
    # atan(y/x) corrected by quadrant: +pi for x<0,y>=0; -pi for x<0,y<0; +-pi/2 for x=0
    dt, s = _out(node), ctx.sink
    y, x = ctx.operand(node.args["self"], dt), ctx.operand(node.args["other"], dt)
    zero, pi = s.scalar(0, dt), s.scalar(math.pi, dt)
    base = s.op("Atan", [s.op("Div", [y, x])])
    neg_x = s.op("Less", [x, zero])
    shift = s.op("Where", [s.op("Less", [y, zero]), s.op("Neg", [pi]), pi])
    out = s.op("Where", [neg_x, s.op("Add", [base, shift]), base])
    half = s.op("Mul", [s.op("Sign", [y]), s.scalar(math.pi / 2, dt)])
    return s.op("Where", [s.op("Equal", [x, zero]), half, out])


# -- comparisons and logic -------------------------------------------------------
_COMPARE = {"eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater", "ge": "GreaterOrEqual"}


@RULES.rule("eq", "ne", "lt", "le", "gt", "ge")
def _compare(ctx, node):
    dt = promoted(node.args["self"], node.args["other"])
    a, b = ctx.operand(node.args["self"], dt), ctx.operand(node.args["other"], dt)
    if node.op == "ne":
        return ctx.sink.op("Not", [ctx.sink.op("Equal", [a, b])])
    return ctx.sink.op(_COMPARE[node.op], [a, b])


_LOGICAL = {"logical_and": "And", "logical_or": "Or", "logical_xor": "Xor"}


@RULES.rule(*_LOGICAL)
def _logical(ctx, node):
    a, b = ctx.operand(node.args["self"], "bool"), ctx.operand(node.args["other"], "bool")
    out = ctx.sink.op(_LOGICAL[node.op], [a, b])
    return out if _out(node) == "bool" else ctx.sink.cast(out, _out(node))


@RULES.rule("logical_not")
def _logical_not(ctx, node):
    out = ctx.sink.op("Not", [ctx.operand(node.args["self"], "bool")])
    return out if _out(node) == "bool" else ctx.sink.cast(out, _out(node))


_BITWISE = {"bitwise_and": ("And", "BitwiseAnd"), "bitwise_or": ("Or", "BitwiseOr"),
            "bitwise_xor": ("Xor", "BitwiseXor")}


@RULES.rule(*_BITWISE)
def _bitwise(ctx, node):
    dt = _out(node)
    a, b = ctx.operand(node.args["self"], dt), ctx.operand(node.args["other"], dt)
    return ctx.sink.op(_BITWISE[node.op][0 if dt == "bool" else 1], [a, b])


@RULES.rule("bitwise_not")
def _bitwise_not(ctx, node):
    dt = _out(node)
    return ctx.sink.op("Not" if dt == "bool" else "BitwiseNot", [ctx.operand(node.args["self"], dt)])


@RULES.rule("where")
def _where(ctx, node):
    dt = _out(node)
    cond = ctx.operand(node.args["condition"], "bool")
    return ctx.sink.op("Where", [cond, ctx.operand(node.args["self"], dt), ctx.operand(node.args["other"], dt)])


def _clamp(ctx, x, lo, hi, dt):
    # Where-based, so NaN passes through as in torch (ONNX Max/Min may drop it).
    s = ctx.sink
    if lo is not None:
        lo = ctx.operand(lo, dt)
        x = s.op("Where", [s.op("Less", [x, lo]), lo, x])
    if hi is not None:
        hi = ctx.operand(hi, dt)
        x = s.op("Where", [s.op("Greater", [x, hi]), hi, x])
    return x


@RULES.rule("clamp")
def _clamp_rule(ctx, node):
    dt = _out(node)
    return _clamp(ctx, ctx.operand(node.args["self"], dt), node.arg("min"), node.arg("max"), dt)


@RULES.rule("clamp_min")
def _clamp_min(ctx, node):
    dt = _out(node)
    return _clamp(ctx, ctx.operand(node.args["self"], dt), node.args["min"], None, dt)


@RULES.rule("clamp_max")
def _clamp_max(ctx, node):
    dt = _out(node)
    return _clamp(ctx, ctx.operand(node.args["self"], dt), None, node.args["max"], dt)


@RULES.rule("hardtanh")
def _hardtanh(ctx, node):
    dt = _out(node)
    return _clamp(ctx, ctx.operand(node.args["self"], dt), float(node.arg("min_val")), float(node.arg("max_val")), dt)


@RULES.rule("heaviside")
def _heaviside(ctx, node):
    dt, s = _out(node), ctx.sink
    x, vals = ctx.operand(node.args["self"], dt), ctx.operand(node.args["values"], dt)
    zero = s.scalar(0, dt)
    step = s.op("Where", [s.op("Greater", [x, zero]), s.scalar(1, dt), zero])
    return s.op("Where", [s.op("Equal", [x, zero]), vals, step])


@RULES.rule("lerp")
def _lerp(ctx, node):
    dt, s = _out(node), ctx.sink
    a, b, w = (ctx.operand(node.args[k], dt) for k in ("self", "end", "weight"))
    return s.op("Add", [a, s.op("Mul", [w, s.op("Sub", [b, a])])])


# -- unary -----------------------------------------------------------------------
_UNARY = {"neg": "Neg", "abs": "Abs", "sign": "Sign", "sgn": "Sign", "exp": "Exp", "log": "Log", "sqrt": "Sqrt",
          "reciprocal": "Reciprocal", "sin": "Sin", "cos": "Cos", "tan": "Tan", "tanh": "Tanh", "asin": "Asin",
          "acos": "Acos", "atan": "Atan", "sinh": "Sinh", "cosh": "Cosh", "sigmoid": "Sigmoid", "relu": "Relu",
          "erf": "Erf", "floor": "Floor", "ceil": "Ceil", "isnan": "IsNaN", "isinf": "IsInf"}


@RULES.rule(*_UNARY)
def _unary(ctx, node):
    src = node.args["self"]
    # predicates read their input as is; the rest compute in the output dtype (int -> float promotes)
    dt = src.type.dtype if node.op in ("isnan", "isinf") else _out(node)
    return ctx.sink.op(_UNARY[node.op], [ctx.operand(src, dt)])


def _x(ctx, node):
    return ctx.operand(node.args["self"], _out(node))


@RULES.rule("rsqrt")
def _rsqrt(ctx, node):
    return ctx.sink.op("Reciprocal", [ctx.sink.op("Sqrt", [_x(ctx, node)])])


@RULES.rule("square")
def _square(ctx, node):
    x = _x(ctx, node)
    return ctx.sink.op("Mul", [x, x])


@RULES.rule("exp2")
def _exp2(ctx, node):
    return ctx.sink.op("Pow", [ctx.sink.scalar(2.0, _out(node)), _x(ctx, node)])


@RULES.rule("expm1")
def _expm1(ctx, node):
    s, dt = ctx.sink, _out(node)
    return s.op("Sub", [s.op("Exp", [_x(ctx, node)]), s.scalar(1, dt)])


@RULES.rule("log1p")
def _log1p(ctx, node):
    s, dt = ctx.sink, _out(node)
    return s.op("Log", [s.op("Add", [_x(ctx, node), s.scalar(1, dt)])])


@RULES.rule("log2", "log10")
def _log_base(ctx, node):
    s, dt = ctx.sink, _out(node)
    inv = 1 / math.log(2 if node.op == "log2" else 10)
    return s.op("Mul", [s.op("Log", [_x(ctx, node)]), s.scalar(inv, dt)])


@RULES.rule("round")
def _round(ctx, node):
    s, dt = ctx.sink, _out(node)
    decimals = node.arg("decimals") or 0
    if not decimals:
        return s.op("Round", [_x(ctx, node)])          # both round half to even
    f = s.scalar(10.0 ** decimals, dt)
    return s.op("Div", [s.op("Round", [s.op("Mul", [_x(ctx, node), f])]), f])


@RULES.rule("trunc")
def _trunc_rule(ctx, node):
    return _trunc(ctx, _x(ctx, node), _out(node))


@RULES.rule("frac")
def _frac(ctx, node):
    x = _x(ctx, node)
    return ctx.sink.op("Sub", [x, _trunc(ctx, x, _out(node))])


@RULES.rule("silu")
def _silu(ctx, node):
    x = _x(ctx, node)
    return ctx.sink.op("Mul", [x, ctx.sink.op("Sigmoid", [x])])


@RULES.rule("gelu")
def _gelu(ctx, node):
    s, dt, x = ctx.sink, _out(node), _x(ctx, node)
    half, one = s.scalar(0.5, dt), s.scalar(1.0, dt)
    if node.arg("approximate") == "tanh":
        inner = s.op("Mul", [s.scalar(math.sqrt(2 / math.pi), dt),
                             s.op("Add", [x, s.op("Mul", [s.scalar(0.044715, dt), s.op("Pow", [x, s.scalar(3.0, dt)])])])])
        t = s.op("Tanh", [inner])
    else:
        t = s.op("Erf", [s.op("Mul", [x, s.scalar(1 / math.sqrt(2), dt)])])
    return s.op("Mul", [s.op("Mul", [half, x]), s.op("Add", [one, t])])


def _softplus(ctx, x, dt, beta=1.0, threshold=20.0):
    # torch: x where beta*x > threshold, else log1p(exp(beta*x)) / beta
    s = ctx.sink
    bx = s.op("Mul", [x, s.scalar(beta, dt)])
    soft = s.op("Div", [s.op("Log", [s.op("Add", [s.op("Exp", [bx]), s.scalar(1.0, dt)])]), s.scalar(beta, dt)])
    return s.op("Where", [s.op("Greater", [bx, s.scalar(threshold, dt)]), x, soft])


@RULES.rule("softplus")
def _softplus_rule(ctx, node):
    return _softplus(ctx, _x(ctx, node), _out(node), float(node.arg("beta")), float(node.arg("threshold")))


@RULES.rule("mish")
def _mish(ctx, node):
    x = _x(ctx, node)
    return ctx.sink.op("Mul", [x, ctx.sink.op("Tanh", [_softplus(ctx, x, _out(node))])])


@RULES.rule("leaky_relu")
def _leaky_relu(ctx, node):
    return ctx.sink.op("LeakyRelu", [_x(ctx, node)], alpha=float(node.arg("negative_slope")))


@RULES.rule("elu")
def _elu(ctx, node):
    s, dt, x = ctx.sink, _out(node), _x(ctx, node)
    alpha, scale, in_scale = (float(node.arg(k)) for k in ("alpha", "scale", "input_scale"))
    neg = s.op("Mul", [s.scalar(alpha, dt), s.op("Sub", [s.op("Exp", [s.op("Mul", [x, s.scalar(in_scale, dt)])]),
                                                         s.scalar(1.0, dt)])])
    out = s.op("Where", [s.op("Greater", [x, s.scalar(0.0, dt)]), x, neg])
    return out if scale == 1.0 else s.op("Mul", [out, s.scalar(scale, dt)])


@RULES.rule("logit")
def _logit(ctx, node):
    s, dt, x = ctx.sink, _out(node), _x(ctx, node)
    eps = node.arg("eps")
    if eps is not None:
        x = _clamp(ctx, x, float(eps), 1.0 - float(eps), dt)
    return s.op("Log", [s.op("Div", [x, s.op("Sub", [s.scalar(1.0, dt), x])])])


@RULES.rule("isfinite")
def _isfinite(ctx, node):
    s, x = ctx.sink, ctx.get(node.args["self"])
    if not is_float(node.args["self"].type.dtype):
        return s.op("Equal", [x, x])                       # integers are always finite
    return s.op("Not", [s.op("Or", [s.op("IsNaN", [x]), s.op("IsInf", [x])])])


@RULES.rule("nan_to_num")
def _nan_to_num(ctx, node):
    import torch
    s, dt, x = ctx.sink, _out(node), _x(ctx, node)
    fi = torch.finfo(getattr(torch, {"f32": "float32", "f64": "float64", "f16": "float16", "bf16": "bfloat16"}[dt]))
    nan, pinf, ninf = node.arg("nan"), node.arg("posinf"), node.arg("neginf")
    x = s.op("Where", [s.op("IsNaN", [x]), s.scalar(0.0 if nan is None else nan, dt), x])
    x = s.op("Where", [s.op("IsInf", [x], detect_negative=0), s.scalar(fi.max if pinf is None else pinf, dt), x])
    return s.op("Where", [s.op("IsInf", [x], detect_positive=0), s.scalar(fi.min if ninf is None else ninf, dt), x])


@RULES.rule("clone", "alias", "lift_fresh_copy", "detach", "_to_copy", "to")
def _copy_cast(ctx, node):
    src, dt = node.args["self"], _out(node)
    if src.type.dtype == dt:
        return ctx.sink.op("Identity", [ctx.get(src)])
    return ctx.sink.cast(ctx.get(src), dt)
