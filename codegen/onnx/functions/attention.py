"""`attention` and `sliding_window_attention` as ONNX functions: masked softmax(q kᵀ·scale) v.
Queries are the last Tq of Tk positions (the IR's convention); key j is visible to query i
when j <= i (causal) and, with a window, j > i - window."""
from __future__ import annotations

from functools import lru_cache

from ..builder import BodySink
from .common import attr_const, dim, make_function, repeat_kv_heads


def function_name(kind: str, gqa: bool) -> str:
    return {"full": "Attention", "causal": "CausalAttention", "window": "SlidingWindowAttention"}[kind] \
        + ("Gqa" if gqa else "")


@lru_cache(maxsize=None)
def attention_function(kind: str, gqa: bool):
    """kind: full | causal | window. Inputs q [B,H,Tq,D], k [B,Hkv,Tk,D], v [B,Hkv,Tk,Dv];
    attributes scale (float) and, for window, window (int)."""
    s = BodySink("")
    k, v = "k", "v"
    if gqa:
        H = dim(s, s.op("Shape", ["q"]), 1)
        k, v = repeat_kv_heads(s, k, H), repeat_kv_heads(s, v, H)
    scale = attr_const(s, "scale", "float")
    scores = s.op("Mul", [s.op("MatMul", ["q", s.op("Transpose", [k], perm=[0, 1, 3, 2])]), scale])
    if kind != "full":
        zero, one = s.scalar(0, "i64"), s.scalar(1, "i64")
        tq = s.op("Squeeze", [dim(s, s.op("Shape", ["q"]), 2), s.i64([0])])
        tk = s.op("Squeeze", [dim(s, s.op("Shape", [k]), 2), s.i64([0])])
        i = s.op("Add", [s.op("Range", [zero, tq, one]), s.op("Sub", [tk, tq])])
        i = s.op("Unsqueeze", [i, s.i64([1])])                                  # [Tq, 1]
        j = s.op("Unsqueeze", [s.op("Range", [zero, tk, one]), s.i64([0])])     # [1, Tk]
        allowed = s.op("LessOrEqual", [j, i])
        if kind == "window":
            w = attr_const(s, "window", "int")
            allowed = s.op("And", [allowed, s.op("Greater", [j, s.op("Sub", [i, w])])])
        scores = s.op("Where", [allowed, scores, s.const(float("-inf"), "f32")])
    probs = s.op("Softmax", [scores], axis=-1)
    s.op("MatMul", [probs, v], outputs=["o"])
    attrs = {"scale": 1.0, **({"window": 1} if kind == "window" else {})}
    ins = ["q", "k", "v"]
    return make_function(function_name(kind, gqa), ins, ["o"], s, attrs)
