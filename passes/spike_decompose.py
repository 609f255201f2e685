"""decompose-spike-coding: spike ops as core aten ops, for targets without spike kernels.

    spike_encode(x, k, axis)   -> abs, mean(keepdim), div k, clamp [1e-5, 1e4], div, round, cast i32
    straight_through(x, y)     -> y          (inference: the gradient path is not needed)
    int8_fake_quant(x, -1, g)  -> [reshape to groups] amax|x|/127, div, round, clamp, mul [reshape back]
    spike_linear(c, v_th, W, b) (counts form) -> linear(c · v_th, W, b), its dense equivalent

The op sequence is the reference implementation's, so the result is bit-identical under
torch and within float rounding elsewhere. spike_train / spike_decode (data-dependent T)
are left alone; a target that cannot lower them says so.
"""
from __future__ import annotations

import torch

from spikec.ir import torch_dtype
from spikec.ir.ops_spike import VTH_MAX, VTH_MIN

from .errors import PassError
from .manager import stat
from .registry import register
from .rewrite import Builder, Pat, Rewrite, apply_patterns


def _f32(b: Builder, x):
    return x if x.type.dtype == "f32" else b.op("_to_copy", {"self": x, "dtype": torch.float32})


def _encode(m, b: Builder):
    node = m.root
    x, k, axis = node.arg("x"), node.arg("k"), node.arg("axis")
    xf = _f32(b, x)
    mean = b.op("mean", {"self": b.op("abs", {"self": xf}), "dim": [axis], "keepdim": True})
    vth = b.op("clamp", {"self": b.op("div", {"self": mean, "other": float(k)}), "min": VTH_MIN, "max": VTH_MAX})
    counts = b.op("_to_copy", {"self": b.op("round", {"self": b.op("div", {"self": xf, "other": vth})}),
                               "dtype": torch.int32})
    return [counts, vth]


def _fake_quant(m, b: Builder):
    node = m.root
    x, axis, group = node.arg("x"), node.arg("axis"), node.arg("group_size")
    if axis not in (-1, x.type.rank - 1):
        raise PassError(f"decompose-spike-coding: int8_fake_quant on axis {axis} (only the last axis is supported)",
                        where=node.where(), hint="quantize along the last axis (the pass always does)")
    shape = list(x.type.shape)
    n = shape[-1]
    xf = _f32(b, x)
    if group and group != n:
        xf = b.op("view", {"self": xf, "size": [*shape[:-1], n // group, group]})
    scale = b.op("clamp", {"self": b.op("div", {"self": b.op("amax", {"self": b.op("abs", {"self": xf}),
                                                                      "dim": [-1], "keepdim": True}),
                                                "other": 127.0}),
                           "min": 1e-12})
    q = b.op("clamp", {"self": b.op("round", {"self": b.op("div", {"self": xf, "other": scale})}),
                       "min": -128, "max": 127})
    out = b.op("mul", {"self": q, "other": scale})
    if group and group != n:
        out = b.op("view", {"self": out, "size": shape})
    return out if x.type.dtype == "f32" else b.op("_to_copy", {"self": out, "dtype": _dtype(x)})


def _dtype(v):
    return torch_dtype(v.type.dtype)


def _spike_linear(m, b: Builder):
    node = m.root
    if node.arg("trains"):
        return None
    xh = b.op("mul", {"self": node.arg("s"), "other": node.arg("v_th")})
    w = node.arg("weight")
    if xh.type.dtype != w.type.dtype:
        xh = b.op("_to_copy", {"self": xh, "dtype": _dtype(w)})
    return b.op("linear", {"input": xh, "weight": w, "bias": node.arg("bias")})


RULES = [
    Rewrite("spike-encode", Pat("spike_encode"), _encode),
    Rewrite("straight-through", Pat("straight_through"), lambda m, b: m.root.arg("y")),
    Rewrite("int8-fake-quant", Pat("int8_fake_quant"), _fake_quant),
    Rewrite("spike-linear", Pat("spike_linear"), _spike_linear),
]


@register("decompose-spike-coding")
def decompose_spike_coding(graph) -> None:
    """Rewrite spike_encode, straight_through, int8_fake_quant and spike_linear into core ops."""
    stat("decomposed", apply_patterns(graph, RULES))
