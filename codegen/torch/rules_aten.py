"""Rules for the core aten ops.

Most are generated from the registry: the rule calls the aten overload the
OpDef names that fits the node's arguments (`aten.add.Tensor(x, y)`,
`aten.mul.Scalar(x, 0.5)`), tensors positionally, the rest as Python literals.
Factory ops get the module's device. The handwritten rules above the
generator are the ops whose IR meaning differs from the aten call.
"""
from __future__ import annotations

import sympy
import torch

from spikec.ir import ScalarType, TensorType, Value, ops
from spikec.ir.ops_aten import DROPPED_ARGS

from .table import TORCH_RULES

_TENSOR_TYPES = ("Tensor", "Optional[Tensor]", "List[Tensor]", "List[Optional[Tensor]]")


def _is_tensor(arg) -> bool:
    return isinstance(arg, Value) and isinstance(arg.type, TensorType)


def _is_int(arg) -> bool:
    if isinstance(arg, Value):
        return isinstance(arg.type, ScalarType)
    return (isinstance(arg, int) and not isinstance(arg, bool)) or isinstance(arg, sympy.Expr)


def _fit(arg, type_str: str, name: str) -> int | None:
    """How well a node argument fits a schema type: 0 exactly, 1 with a coercion aten
    performs (a number wrapped as a tensor, an int for an int list), None not at all."""
    if type_str.startswith("Optional["):
        return 0 if arg is None else _fit(arg, type_str[9:-1], name)
    if type_str == "Tensor":
        return 0 if _is_tensor(arg) else (1 if isinstance(arg, (int, float, bool, sympy.Expr, Value)) else None)
    if type_str.startswith("List["):
        inner = type_str[5:-1]
        if isinstance(arg, (list, tuple)):
            fits = [_fit(a, inner, name) for a in arg]
            return None if None in fits else max(fits, default=0)
        return 1 if inner == "int" and _is_int(arg) else None
    if _is_tensor(arg):
        return None
    if name in ("dtype", "out_dtype"):
        return 0 if isinstance(arg, torch.dtype) else None
    if type_str == "int":
        return 0 if _is_int(arg) else None
    if type_str == "float":
        return 0 if (isinstance(arg, (int, float)) and not isinstance(arg, bool)) or _is_int(arg) else None
    if type_str == "bool":
        return 0 if isinstance(arg, bool) else None
    if type_str == "str":
        return 0 if isinstance(arg, str) else None
    return 0                               # number, Device, ...: aten converts


def _mismatch(overload, node) -> int | None:
    """None if `overload` cannot take the node's arguments; else the number of coercions."""
    schema = {a.name: a for a in overload._schema.arguments}
    if any(k not in schema for k in node.args):
        return None
    cost = 0
    for a in overload._schema.arguments:
        if a.name in DROPPED_ARGS:
            continue
        if a.name not in node.args:
            if not a.has_default_value():
                return None
            continue
        fit = _fit(node.args[a.name], str(a.type), a.name)
        if fit is None:
            return None
        cost += fit
    return cost


def pick_overload(opdef, node):
    """The first of the OpDef's overloads that fits best, or None (call the packet)."""
    best, best_cost = None, None
    for ov in opdef.torch_targets:
        cost = _mismatch(ov, node)
        if cost is not None and (best_cost is None or cost < best_cost):
            best, best_cost = ov, cost
    return best


def aten_call(node, e, name: str | None = None) -> str:
    """`aten.<op>.<overload>(...)` for a node of a core op (`name` renames the packet)."""
    opdef = node.opdef
    ov = pick_overload(opdef, node) if name is None else None
    if ov is None:
        # The packet resolves the overload at run time, as the interpreter does.
        kwargs = {k: e.lit(a) for k, a in node.args.items()}
        return e.call(f"aten.{name or opdef.name}", **kwargs)
    args, kwargs, positional = [], {}, True
    for a in ov._schema.arguments:
        if a.name in DROPPED_ARGS:
            continue
        if a.name not in node.args:
            positional = False
            continue
        src = e.lit(node.args[a.name])
        if positional and not a.kwarg_only:
            args.append(src)
        else:
            kwargs[a.name] = src
    names = {a.name for a in ov._schema.arguments}
    if "device" in names and not node.inputs:
        kwargs["device"] = e.device              # factories create on the module's device
    returns = [str(r.type) for r in ov._schema.returns]
    e.unpack_one = len(node.outputs) == 1 and (len(returns) > 1 or returns[0].startswith("List"))
    return e.call(f"aten.{ov._schema.name.split('::')[1]}.{ov._overloadname}", *args, **kwargs)


# -- ops whose IR meaning is not the aten call ---------------------------------------------
@TORCH_RULES.rule("view", "_unsafe_view")
def _view(node, e):
    # IR values have no strides: a view of a non-contiguous value is a reshape.
    return e.call("aten.reshape.default", e.arg("self"), e.arg("size"))


# -- every other core op: generated from the registry -------------------------------------
def _generated_rule(node, e):
    return aten_call(node, e)


def _register_core_rules() -> None:
    for name, opdef in ops().items():
        if opdef.category == "core" and name not in TORCH_RULES:
            TORCH_RULES.add(name, _generated_rule)


_register_core_rules()
