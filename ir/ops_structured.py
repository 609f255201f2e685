"""Ops that are not plain aten calls: constants, structured control flow with
sub-graphs (scan, while_loop, cond), and opaque torch.library custom ops."""
from __future__ import annotations

import torch

from .errors import InterpretError
from .registry import OpDef, Param, register_op, _REGISTRY
from .types import TensorType


class RunContext:
    """What structured ops need from the interpreter: the constant table and a
    way to run their regions."""

    def __init__(self, constants, run_region):
        self.constants = constants
        self.run_region = run_region   # (index, list_of_tensors) -> list_of_tensors


# -- constant ---------------------------------------------------------------
def _constant_impl(name, _ctx=None):
    try:
        return _ctx.constants[name]
    except (KeyError, AttributeError):
        raise InterpretError(f"constant {name!r} has no data in the graph's constant table",
                             hint="pass the tensors with `constants=` (parse(text, constants=...))") from None


def _constant_infer(opdef, args, ctx):
    t = ctx.constants.get(args["name"]) if ctx.constants is not None else None
    return None if t is None else [TensorType.of(t)]


register_op(OpDef(
    "constant", [Param("name", "str")], _constant_impl, 1, infer=_constant_infer,
    doc="A tensor held by reference in the graph's constant table (weights, buffers, lifted constants).",
    category="structured"))


# -- scan -------------------------------------------------------------------
def _scan_impl(init, xs, additional_inputs=(), _ctx=None):
    carries = list(init)
    length = xs[0].shape[0] if xs else 0
    ys: list[list[torch.Tensor]] = []
    for i in range(length):
        out = _ctx.run_region(0, [*carries, *[x[i] for x in xs], *additional_inputs])
        carries, y = list(out[:len(carries)]), out[len(carries):]
        ys.append(y)
    if not ys:
        raise InterpretError("scan over a zero-length sequence has no defined outputs")
    stacked = [torch.stack([step[j] for step in ys]) for j in range(len(ys[0]))]
    return (*carries, *stacked)


def _scan_infer(opdef, args, ctx):
    region = ctx.regions[0]
    n = len(args["init"])
    outs = [v.type for v in region.outputs]
    length = args["xs"][0].shape[0]
    return outs[:n] + [TensorType((length, *t.shape), t.dtype) for t in outs[n:]]


register_op(OpDef(
    "scan", [Param("init", "tensor[]"), Param("xs", "tensor[]"), Param("additional_inputs", "tensor[]", [])],
    _scan_impl, None, infer=_scan_infer, regions=("combine",), category="structured",
    doc="carry = init; for each i along dim 0 of xs: carry, y_i = combine(carry, xs[i], *additional); "
        "returns final carries then the stacked y's (torch's scan higher-order op)."))


# -- while_loop -------------------------------------------------------------
def _while_impl(carried_inputs, additional_inputs=(), _ctx=None):
    carried = list(carried_inputs)
    while bool(_ctx.run_region(0, [*carried, *additional_inputs])[0]):
        carried = list(_ctx.run_region(1, [*carried, *additional_inputs]))
    return tuple(carried)


register_op(OpDef(
    "while_loop", [Param("carried_inputs", "tensor[]"), Param("additional_inputs", "tensor[]", [])],
    _while_impl, None, infer=lambda opdef, args, ctx: [v.type for v in ctx.regions[1].outputs],
    regions=("cond", "body"), category="structured",
    doc="while cond(carried, *additional): carried = body(carried, *additional); returns carried."))


# -- cond -------------------------------------------------------------------
def _cond_impl(pred, operands, _ctx=None):
    return tuple(_ctx.run_region(0 if bool(pred) else 1, list(operands)))


register_op(OpDef(
    "cond", [Param("pred", "tensor"), Param("operands", "tensor[]")],
    _cond_impl, None, infer=lambda opdef, args, ctx: [v.type for v in ctx.regions[0].outputs],
    regions=("true_branch", "false_branch"), category="structured",
    doc="true_branch(*operands) if pred else false_branch(*operands)."))


STRUCTURED = {"constant", "scan", "while_loop", "cond"}


# -- torch.library custom ops -----------------------------------------------
def custom_op_name(target: torch._ops.OpOverload) -> str:
    base = f"{target.namespace}::{target._schema.name.split('::', 1)[1]}"
    return base if target._overloadname == "default" else f"{base}.{target._overloadname}"


def register_torch_library_op(target: torch._ops.OpOverload) -> OpDef:
    """An opaque op backed by a torch.library custom op; it keeps its own name
    (`ns::op`) and needs a fake (meta) implementation for shape inference."""
    from .ops_aten import _num_outputs, _schema_params
    name = custom_op_name(target)
    if name in _REGISTRY:
        return _REGISTRY[name]
    return register_op(OpDef(
        name, _schema_params(target), lambda _t=target, **kw: _t(**kw), _num_outputs(target),
        doc=f"custom op {target} (torch.library)", category="custom", torch_targets=(target,)))
