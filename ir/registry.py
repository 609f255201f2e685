"""The op registry: one OpDef per op, declared once.

An OpDef gives the op's parameters (name, kind, default), how many outputs it
has, a reference implementation in torch (the interpreter's oracle), shape and
dtype inference, and the torch overloads the frontend maps onto it.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

import sympy
import torch

from .errors import IRError, UnsupportedOpError
from .graph import iter_values

REQUIRED = object()  # marker: the parameter has no default

TENSOR_KINDS = ("tensor", "tensor?", "tensor[]", "tensor?[]")


@dataclass(frozen=True)
class Param:
    """One parameter. Tensor kinds are bound to Values (a tensor-kind parameter
    may also hold a number, as aten's `mul(x, 0.5)` does); every other kind is a
    literal attribute: int, int[], float, float[], bool, bool[], str, scalar,
    dtype, sym (int or symbolic dim), any. A trailing '?' allows None."""
    name: str
    kind: str
    default: Any = REQUIRED
    kw_only: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def is_tensor(self) -> bool:
        return self.kind in TENSOR_KINDS


def _is_int(v) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, sympy.Expr) and v.is_integer is not False)


_ATTR_CHECKS: dict[str, Callable[[Any], bool]] = {
    "int": _is_int,
    "sym": _is_int,
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "scalar": lambda v: isinstance(v, (int, float, bool)) or isinstance(v, sympy.Expr),
    "dtype": lambda v: isinstance(v, torch.dtype),
    "any": lambda v: True,
}


def check_literal(kind: str, value: Any) -> bool:
    """Does a literal `value` fit a parameter of `kind`?"""
    if kind.endswith("?"):
        if value is None:
            return True
        kind = kind[:-1]
    if kind.endswith("[]"):
        inner = kind[:-2]
        if not isinstance(value, (list, tuple)):
            # aten accepts a bare int where it wants int[] (e.g. sum(x, 1)).
            return inner == "int" and _is_int(value)
        return all(check_literal(inner, v) for v in value)
    if kind in TENSOR_KINDS or kind.startswith("tensor"):
        # Literal in a tensor slot: a python number (scalar operand) or None for optional.
        return isinstance(value, (int, float, bool)) or isinstance(value, sympy.Expr)
    return _ATTR_CHECKS.get(kind, lambda v: True)(value)


def _literal_equal(a, b) -> bool:
    if type(a) is not type(b) and not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_literal_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and a != a:
        return b != b
    return a == b


@dataclass
class OpDef:
    name: str
    params: list[Param]
    impl: Callable[..., Any]
    num_outputs: int | None = 1          # None: decided per call (e.g. split, max.dim)
    infer: Callable | None = None        # (opdef, args-with-types, ctx) -> list[Type]; None: fake-tensor inference
    doc: str = ""
    category: str = "core"               # core | fused | structured | custom
    torch_targets: tuple = ()            # torch OpOverloads the frontend maps here
    regions: tuple[str, ...] = ()        # names of the sub-graphs a node of this op carries
    _by_name: dict[str, Param] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self._by_name = {p.name: p for p in self.params}

    def param(self, name: str) -> Param:
        try:
            return self._by_name[name]
        except KeyError:
            raise IRError(f"op {self.name!r} has no parameter {name!r}; "
                          f"parameters: {', '.join(p.name for p in self.params) or '(none)'}") from None

    def normalize_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """Order args by parameter and drop literals equal to their default."""
        for k in args:
            self.param(k)
        out = {}
        for p in self.params:
            if p.name not in args:
                continue
            a = args[p.name]
            if isinstance(a, tuple):
                a = list(a)
            if (not p.required and not any(True for _ in iter_values(a))
                    and _literal_equal(a, p.default)):
                continue
            out[p.name] = a
        return out

    def call(self, args: dict[str, Any]):
        """Run the reference implementation on concrete arguments."""
        return self.impl(**args)

    def signature(self) -> str:
        parts = []
        for p in self.params:
            s = f"{p.name}: {p.kind}"
            if not p.required:
                s += f" = {p.default!r}"
            parts.append(("*" if p.kw_only else "") + s)
        outs = "?" if self.num_outputs is None else str(self.num_outputs)
        return f"{self.name}({', '.join(parts)}) -> {outs} output(s)"


_REGISTRY: dict[str, OpDef] = {}
_BY_TORCH: dict[Any, str] = {}


def register_op(opdef: OpDef, *, replace: bool = False) -> OpDef:
    if opdef.name in _REGISTRY and not replace:
        raise IRError(f"op {opdef.name!r} is already registered")
    _REGISTRY[opdef.name] = opdef
    for t in opdef.torch_targets:
        _BY_TORCH[t] = opdef.name
    return opdef


def _ensure_loaded() -> None:
    # The op tables register themselves on import; import them lazily so that
    # `graph.py` and `registry.py` stay importable on their own.
    from . import ops_aten, ops_fused, ops_moe, ops_spike, ops_spiking_neuron, ops_structured  # noqa: F401


def get_op(name: str) -> OpDef:
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        pass
    custom = _try_torch_library_op(name)
    if custom is not None:
        return custom
    close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "see `spikec.ir.ops()` for the registered ops"
    raise UnsupportedOpError(f"unknown op {name!r}", hint=hint)


def has_op(name: str) -> bool:
    try:
        get_op(name)
        return True
    except UnsupportedOpError:
        return False


def ops() -> dict[str, OpDef]:
    _ensure_loaded()
    return dict(sorted(_REGISTRY.items()))


def lookup_torch(target) -> OpDef | None:
    """The OpDef a torch OpOverload maps to, registering torch.library custom ops on first sight."""
    _ensure_loaded()
    name = _BY_TORCH.get(target)
    if name is not None:
        return _REGISTRY[name]
    if isinstance(target, torch._ops.OpOverload) and target.namespace not in ("aten", "prims", "higher_order"):
        from .ops_structured import register_torch_library_op
        return register_torch_library_op(target)
    return None


def _try_torch_library_op(name: str) -> OpDef | None:
    # Text form of a custom op is `ns::op` or `ns::op.overload`.
    if "::" not in name:
        return None
    ns, rest = name.split("::", 1)
    opname, _, overload = rest.partition(".")
    try:
        target = getattr(getattr(getattr(torch.ops, ns), opname), overload or "default")
    except (AttributeError, RuntimeError):
        return None
    from .ops_structured import register_torch_library_op
    return register_torch_library_op(target)
