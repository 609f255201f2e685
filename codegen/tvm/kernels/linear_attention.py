"""`linear_attention` -> call_tir of the chunked kernel (prefill) or the recurrent
kernel (decode-sized static T, and the key_tied gate)."""
from __future__ import annotations

from tvm import relax

from spikec.ir import Node

from . import gla_chunk, gla_recurrent

op = relax.op
RECURRENT_MAX_T = 16      # static lengths up to this run step by step (decode)


def choose(node: Node, options: dict) -> str:
    """recurrent for key_tied gates and key dims the chunk kernel's 4-row tiles do not
    divide; otherwise the forced kernel, or by length: decode-sized static T steps."""
    forced = options.get("linear_attention", "auto")
    if forced not in ("auto", "chunk", "recurrent"):
        raise ValueError(f"linear_attention option must be 'auto', 'chunk' or 'recurrent', got {forced!r}")
    if node.arg("gate_kind") == "key_tied" or node.args["q"].type.shape[3] % gla_chunk.RT:
        return "recurrent"
    if forced != "auto":
        return forced
    T = node.args["q"].type.shape[2]
    return "recurrent" if isinstance(T, int) and T <= RECURRENT_MAX_T else "chunk"


def share_heads(cx, exprs: list, heads: list, H: int) -> tuple[list, int]:
    """The kernels index k, v and the gate with one head group; operands with fewer
    heads than the widest (keys shared, values per head) are repeated up to it."""
    widest = max(heads)
    if any(widest % h for h in heads):
        widest = H
    out = [e if h == widest else cx.emit(op.repeat(e, widest // h, axis=1)) for e, h in zip(exprs, heads)]
    return out, widest


def lower(cx, node: Node):
    a = node.args
    q, k, v = a["q"], a["k"], a["v"]
    gate_kind = node.arg("gate_kind")
    gate, h0 = a.get("gate"), a.get("initial_state")
    B, H, L, K = q.type.shape
    Hk, Hv, V = k.type.shape[1], v.type.shape[1], v.type.shape[3]
    Hg = gate.type.shape[1] if gate is not None and gate_kind in ("scalar", "channel") else Hk
    for name, d in (("heads", H), ("key heads", Hk), ("value heads", Hv), ("gate heads", Hg),
                    ("key dim", K), ("value dim", V)):
        if not isinstance(d, int):
            cx.fail(f"linear_attention needs static {name}, got {d}")
    for name, d in (("key", Hk), ("value", Hv), ("gate", Hg)):
        if H % d:
            cx.fail(f"linear_attention: {H} query heads is not a multiple of {d} {name} heads")
    f32 = "f32"
    qe, ke, ve = (cx.operand(x, f32) for x in (q, k, v))
    shp = cx.shape(q)
    if gate_kind == "channel":
        ge = cx.operand(gate, f32)
    elif gate_kind == "scalar":
        ge = cx.emit(op.expand_dims(cx.operand(gate, f32), 3))
    else:                               # unused by the kernel: a [B, Hk, 1, 1] placeholder
        ge = cx.emit(op.zeros([shp[0], Hk, 1, 1], "float32"))
    (ke, ve, ge), Hkv = share_heads(cx, [ke, ve, ge], [Hk, Hv, Hg], H)
    he = cx.operand(h0, f32) if h0 is not None else cx.emit(op.zeros([shp[0], H, K, V], "float32"))
    kind = choose(node, cx.options)
    scale = float(node.arg("scale"))
    if kind == "chunk":
        if gate_kind not in ("none", "scalar", "channel"):
            cx.fail(f"the chunked linear_attention kernel has no gate_kind {gate_kind!r}")
        C = int(cx.options.get("chunk", 64))
        if C <= 0 or C % gla_chunk.CS:
            cx.fail(f"chunk={C}: the chunked linear_attention kernel needs a positive multiple of {gla_chunk.CS}")
        name = f"gla_chunk_{gate_kind}_h{H}x{Hkv}_k{K}_v{V}_c{C}"
        gv = cx.kernel(name, lambda: gla_chunk.make(H, Hkv, K, V, gate_kind, scale, C), key=(scale,))
    else:
        name = f"gla_recurrent_{gate_kind}_h{H}x{Hkv}_k{K}_v{V}"
        gv = cx.kernel(name, lambda: gla_recurrent.make(H, Hkv, K, V, gate_kind, scale), key=(scale,))
    o_ty = relax.TensorType([shp[0], H, shp[2], V], "float32")
    s_ty = relax.TensorType([shp[0], H, K, V], "float32")
    res = cx.emit(relax.call_tir(gv, [qe, ke, ve, ge, he], out_ty=[o_ty, s_ty]))
    o = relax.TupleGetItem(res, 0)
    if node.arg("output_final_state"):
        return [o, relax.TupleGetItem(res, 1)]
    return o
