"""`attention` / `sliding_window_attention` (and SDPA without a mask) -> call_tir
of the flash-style kernel in flash_attention.py."""
from __future__ import annotations

from tvm import relax

from . import flash_attention
from .linear_attention import share_heads


def lower(cx, node, q, k, v, scale: float, causal: bool, window: int | None):
    B, H, L, D = q.type.shape
    Hk, Hv, Dv = k.type.shape[1], v.type.shape[1], v.type.shape[3]
    for name, d in (("heads", H), ("key heads", Hk), ("value heads", Hv), ("head dim", D), ("value dim", Dv)):
        if not isinstance(d, int):
            cx.fail(f"{node.op} needs a static {name}, got {d}")
    for name, d in (("key", Hk), ("value", Hv)):
        if H % d:
            cx.fail(f"{node.op}: {H} query heads is not a multiple of {d} {name} heads")
    if window is not None and window < 1:
        cx.fail(f"{node.op}: window must be >= 1, got {window}")
    qe, ke, ve = (cx.operand(x, "f32") for x in (q, k, v))
    (ke, ve), Hkv = share_heads(cx, [ke, ve], [Hk, Hv], H)
    name = f"attention_{'swa' + str(window) if window else ('causal' if causal else 'full')}_h{H}x{Hkv}_d{D}"
    gv = cx.kernel(name, lambda: flash_attention.make(H, Hkv, D, Dv, scale, causal, window), key=(scale,))
    shp = cx.shape(q)
    return relax.call_tir(gv, [qe, ke, ve], out_ty=relax.TensorType([shp[0], H, shp[2], Dv], "float32"))
