"""Core ops: the aten ops that torch.export produces after spikec's decompositions.

One row per IR op: the IR name (the aten packet name) and the aten overloads
that map onto it, primary first. Parameters, defaults and output counts come
from the aten schemas; the reference implementation is the aten op itself.
"""
from __future__ import annotations

import torch

from .registry import REQUIRED, OpDef, Param, register_op

aten = torch.ops.aten

# IR op -> overloads (primary first). Keep alphabetical within a group.
CORE_OPS: dict[str, tuple[str, ...]] = {
    # elementwise binary (a tensor slot may hold a python number)
    "add": ("Tensor", "Scalar"), "sub": ("Tensor", "Scalar"), "rsub": ("Tensor", "Scalar"),
    "mul": ("Tensor", "Scalar"), "div": ("Tensor", "Scalar", "Tensor_mode", "Scalar_mode"),
    "pow": ("Tensor_Tensor", "Tensor_Scalar", "Scalar"), "floor_divide": ("default", "Scalar"),
    "remainder": ("Tensor", "Scalar"), "fmod": ("Tensor", "Scalar"), "atan2": ("default",),
    "maximum": ("default",), "minimum": ("default",),
    "eq": ("Tensor", "Scalar"), "ne": ("Tensor", "Scalar"), "lt": ("Tensor", "Scalar"),
    "le": ("Tensor", "Scalar"), "gt": ("Tensor", "Scalar"), "ge": ("Tensor", "Scalar"),
    "logical_and": ("default",), "logical_or": ("default",), "logical_xor": ("default",),
    "bitwise_and": ("Tensor", "Scalar"), "bitwise_or": ("Tensor", "Scalar"), "bitwise_xor": ("Tensor", "Scalar"),
    "bitwise_left_shift": ("Tensor", "Tensor_Scalar"), "bitwise_right_shift": ("Tensor", "Tensor_Scalar"),
    "where": ("self", "ScalarSelf", "ScalarOther", "Scalar"),
    "clamp": ("Tensor", "default"), "clamp_min": ("default", "Tensor"), "clamp_max": ("default", "Tensor"),
    "heaviside": ("default",), "lerp": ("Scalar", "Tensor"),
    # elementwise unary
    "abs": ("default",), "neg": ("default",), "sign": ("default",), "sgn": ("default",),
    "exp": ("default",), "exp2": ("default",), "expm1": ("default",),
    "log": ("default",), "log1p": ("default",), "log2": ("default",), "log10": ("default",),
    "sqrt": ("default",), "rsqrt": ("default",), "reciprocal": ("default",), "square": ("default",),
    "sin": ("default",), "cos": ("default",), "tan": ("default",), "tanh": ("default",),
    "asin": ("default",), "acos": ("default",), "atan": ("default",), "sinh": ("default",), "cosh": ("default",),
    "sigmoid": ("default",), "relu": ("default",), "silu": ("default",), "gelu": ("default",),
    "erf": ("default",), "softplus": ("default",), "hardtanh": ("default",), "leaky_relu": ("default",),
    "elu": ("default",), "mish": ("default",), "logit": ("default",),
    "floor": ("default",), "ceil": ("default",), "round": ("default", "decimals"), "trunc": ("default",),
    "frac": ("default",), "logical_not": ("default",), "bitwise_not": ("default",),
    "isnan": ("default",), "isinf": ("default",), "isfinite": ("default",), "nan_to_num": ("default",),
    "clone": ("default",), "alias": ("default",), "lift_fresh_copy": ("default",), "detach": ("default",),
    "_to_copy": ("default",), "to": ("dtype", "dtype_layout"),
    # reductions and scans
    "sum": ("dim_IntList", "default"), "mean": ("dim", "default"), "prod": ("dim_int", "default"),
    "amax": ("default",), "amin": ("default",), "max": ("dim", "default"), "min": ("dim", "default"),
    "argmax": ("default",), "argmin": ("default",), "any": ("dims", "dim", "default"),
    "all": ("dims", "dim", "default"), "var": ("correction", "dim"), "std": ("correction", "dim"),
    "logsumexp": ("default",), "linalg_vector_norm": ("default",),
    "cumsum": ("default",), "cumprod": ("default",), "topk": ("default",), "sort": ("default", "stable"),
    "softmax": ("int",), "_softmax": ("default",), "log_softmax": ("int",), "_log_softmax": ("default",),
    "_safe_softmax": ("default",),
    # shape and layout
    "view": ("default",), "reshape": ("default",), "_unsafe_view": ("default",),
    "permute": ("default",), "transpose": ("int",), "t": ("default",), "expand": ("default",),
    "unsqueeze": ("default",), "squeeze": ("dims", "dim", "default"), "flatten": ("using_ints",),
    "unflatten": ("int",), "slice": ("Tensor",), "select": ("int",), "narrow": ("default",),
    "cat": ("default",), "stack": ("default",), "split": ("Tensor",), "split_with_sizes": ("default",),
    "chunk": ("default",), "unbind": ("int",), "repeat": ("default",),
    "repeat_interleave": ("self_int", "Tensor"), "flip": ("default",), "roll": ("default",),
    "tril": ("default",), "triu": ("default",), "constant_pad_nd": ("default",), "diagonal": ("default",),
    "index": ("Tensor",), "index_select": ("default",), "gather": ("default",),
    "scatter": ("src", "value"), "scatter_add": ("default",), "scatter_reduce": ("two",),
    "index_put": ("default",), "index_add": ("default",), "index_copy": ("default",),
    "index_fill": ("int_Scalar",), "masked_fill": ("Scalar", "Tensor"), "masked_scatter": ("default",),
    "nonzero": ("default",), "embedding": ("default",), "one_hot": ("default",),
    "copy": ("default",), "fill": ("Scalar",),
    # creation
    "full": ("default",), "full_like": ("default",), "zeros": ("default",), "zeros_like": ("default",),
    "ones": ("default",), "ones_like": ("default",), "empty": ("memory_format",), "empty_like": ("default",),
    "arange": ("start_step", "default", "start"), "scalar_tensor": ("default",),
    "_local_scalar_dense": ("default",),
    # linear algebra and nn (the frontend keeps these undecomposed)
    "mm": ("default",), "bmm": ("default",), "addmm": ("default",), "baddbmm": ("default",),
    "matmul": ("default",), "linear": ("default",), "einsum": ("default",),
    "rms_norm": ("default",), "layer_norm": ("default",), "native_layer_norm": ("default",),
    "scaled_dot_product_attention": ("default",),
}

# Arguments that only say where or how memory lives; values do not depend on them.
DROPPED_ARGS = {"device", "layout", "pin_memory", "memory_format", "generator"}

_TYPE_KINDS = {
    "Tensor": "tensor", "Optional[Tensor]": "tensor?", "List[Tensor]": "tensor[]",
    "List[Optional[Tensor]]": "tensor?[]",
    "int": "int", "SymInt": "int", "Optional[int]": "int?", "Optional[SymInt]": "int?",
    "List[int]": "int[]", "List[SymInt]": "int[]", "Optional[List[int]]": "int[]?",
    "Optional[List[SymInt]]": "int[]?",
    "float": "float", "Optional[float]": "float?", "List[float]": "float[]", "Optional[List[float]]": "float[]?",
    "bool": "bool", "Optional[bool]": "bool?", "List[bool]": "bool[]",
    "number": "scalar", "Optional[number]": "scalar?", "str": "str", "Optional[str]": "str?",
}


def _kind(arg) -> str:
    if arg.name in ("dtype", "out_dtype"):
        return "dtype?" if str(arg.type).startswith("Optional") else "dtype"
    return _TYPE_KINDS.get(str(arg.type), "any")


def _schema_params(overload) -> list[Param]:
    out = []
    for a in overload._schema.arguments:
        if a.name in DROPPED_ARGS:
            continue
        default = a.default_value if a.has_default_value() else REQUIRED
        out.append(Param(a.name, _kind(a), default, a.kwarg_only))
    return out


def _num_outputs(overload) -> int | None:
    rets = [str(r.type) for r in overload._schema.returns]
    if any(r.startswith("List") for r in rets):
        return None
    return len(rets)


def _merge(kind_a: str, kind_b: str) -> str:
    if kind_a == kind_b:
        return kind_a
    if kind_a.rstrip("?") == kind_b.rstrip("?"):
        return kind_a.rstrip("?") + "?"
    if "tensor" in kind_a or "tensor" in kind_b:
        return kind_a if "tensor" in kind_a else kind_b
    return "any"


def aten_opdef(name: str, overload_names: tuple[str, ...]) -> OpDef:
    packet = getattr(aten, name)
    overloads = [getattr(packet, o) for o in overload_names]
    params = {p.name: p for p in _schema_params(overloads[0])}
    counts = {_num_outputs(overloads[0])}
    for ov in overloads[1:]:
        alt = {p.name: p for p in _schema_params(ov)}
        counts.add(_num_outputs(ov))
        for pname, p in list(params.items()):
            if pname in alt:
                params[pname] = Param(pname, _merge(p.kind, alt[pname].kind), p.default, p.kw_only)
            elif p.required:
                # Absent from another overload: optional here, and omitted from the call.
                params[pname] = Param(pname, p.kind, None, p.kw_only)
        for pname, p in alt.items():
            if pname not in params:
                params[pname] = Param(pname, p.kind, None if p.required else p.default, True)
    return OpDef(
        name=name, params=list(params.values()),
        impl=lambda _packet=packet, **kw: _packet(**kw),
        num_outputs=counts.pop() if len(counts) == 1 else None,
        doc=f"aten.{name} ({', '.join(overload_names)})",
        category="core", torch_targets=tuple(overloads),
    )


# The IR has value semantics: strides are not part of a value, so a view is
# computed as a reshape (a copy where the layout demands one).
_VALUE_SEMANTICS_IMPLS = {
    "view": lambda **kw: aten.reshape(kw["self"], kw["size"]),
    "_unsafe_view": lambda **kw: aten.reshape(kw["self"], kw["size"]),
}

for _name, _overloads in CORE_OPS.items():
    _def = aten_opdef(_name, _overloads)
    if _name in _VALUE_SEMANTICS_IMPLS:
        _def.impl = _VALUE_SEMANTICS_IMPLS[_name]
    register_op(_def)
