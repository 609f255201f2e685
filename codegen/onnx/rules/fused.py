"""Fused spikec ops -> calls of model-local functions in the "spikec" domain. The function
bodies compute in f32; other float dtypes are cast in and out around the call."""
from __future__ import annotations

from spikec.ir import TensorType

from ..functions import DOMAIN, attention_function, linear_attention_function
from . import RULES


def repeat_heads(ctx, x: str, t: TensorType, heads) -> str:
    """[..., Hkv, T, D] -> [..., H, T, D] in the model graph (sdpa with enable_gqa)."""
    from ..functions.common import repeat_kv_heads
    return repeat_kv_heads(ctx.sink, x, ctx.dims.vec(heads))


def _f32(ctx, v):
    return None if v is None else ctx.operand(v, "f32")


def _back(ctx, names, node):
    outs = []
    for name, v in zip(names, node.outputs):
        outs.append(name if v.type.dtype == "f32" else ctx.sink.cast(name, v.type.dtype))
    return outs


def _gqa(node) -> bool:
    return node.args["q"].type.shape[1] != node.args["k"].type.shape[1]


@RULES.rule("linear_attention")
def _linear_attention(ctx, node):
    kind = node.arg("gate_kind")
    init = node.arg("initial_state")
    fn = ctx.function(linear_attention_function(kind, init is not None, _gqa(node)))
    ins = [_f32(ctx, node.args[n]) for n in ("q", "k", "v")]
    if kind in ("scalar", "channel"):
        ins.append(_f32(ctx, node.args["gate"]))
    if init is not None:
        ins.append(_f32(ctx, init))
    outs = ctx.sink.op(fn, ins, n_out=2, domain=DOMAIN, hint="linear_attention",
                       scale=float(node.arg("scale")), chunk=int(ctx.options.get("chunk", 64)))
    return _back(ctx, outs[:len(node.outputs)], node)


@RULES.rule("attention", "sliding_window_attention")
def _attention(ctx, node):
    if node.op == "sliding_window_attention":
        kind, extra = "window", {"window": int(node.args["window"])}
    else:
        kind, extra = ("causal" if node.arg("causal") else "full"), {}
    fn = ctx.function(attention_function(kind, _gqa(node)))
    ins = [_f32(ctx, node.args[n]) for n in ("q", "k", "v")]
    out = ctx.sink.op(fn, ins, domain=DOMAIN, hint=node.op, scale=float(node.arg("scale")), **extra)
    return _back(ctx, [out], node)
