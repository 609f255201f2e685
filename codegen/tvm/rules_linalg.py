"""Matrix products and normalisations.

`linear` (and 2-D `mm` / `matmul` against a weight) goes through `gemm.dense`,
which picks the GEMM implementation (see gemm.py for the measured choice).
"""
from __future__ import annotations

from tvm import relax

from . import gemm
from .lower import Lowering
from .table import RULES

op = relax.op


def _dt(node) -> str:
    return node.outputs[0].type.dtype


@RULES.rule("linear")
def _linear(cx: Lowering, node):
    dt = _dt(node)
    x, w, b = node.args["input"], node.args["weight"], node.args.get("bias")
    return gemm.linear(cx, cx.operand(x, dt), x, cx.operand(w, dt), w,
                       None if b is None else cx.operand(b, dt), b, dt)


@RULES.rule("matmul", "mm", "bmm")
def _matmul(cx: Lowering, node):
    dt = _dt(node)
    a, b = node.args["self"], node.args["other" if node.op == "matmul" else "mat2"]
    return gemm.matmul(cx, cx.operand(a, dt), a, cx.operand(b, dt), b, dt)


@RULES.rule("addmm", "baddbmm")
def _addmm(cx: Lowering, node):
    dt = _dt(node)
    m1, m2 = (node.args["mat1"], node.args["mat2"]) if node.op == "addmm" else \
        (node.args["batch1"], node.args["batch2"])
    prod = cx.emit(gemm.matmul(cx, cx.operand(m1, dt), m1, cx.operand(m2, dt), m2, dt))
    beta, alpha = node.args.get("beta", 1), node.args.get("alpha", 1)
    if alpha != 1:
        prod = cx.emit(op.multiply(prod, cx.const(alpha, dt)))
    base = cx.operand(node.args["self"], dt)
    if beta == 0:
        return op.broadcast_to(prod, cx.shape(node.output))
    if beta != 1:
        base = cx.emit(op.multiply(base, cx.const(beta, dt)))
    return op.add(base, prod)


@RULES.rule("einsum")
def _einsum(cx: Lowering, node):
    dt = _dt(node)
    return op.einsum([cx.operand(t, dt) for t in node.args["tensors"]], node.args["equation"])


def _norm_axes(node, x) -> list[int]:
    n = len(node.args["normalized_shape"])
    return list(range(x.type.rank - n, x.type.rank))


def _eps(node, dt: str, default=None) -> float:
    eps = node.args.get("eps", default)
    if eps is None:
        import torch
        from spikec.ir.types import torch_dtype
        eps = torch.finfo(torch_dtype(dt)).eps
    return float(eps)


@RULES.rule("rms_norm")
def _rms_norm(cx: Lowering, node):
    from .kernels import rms_norm as k
    dt = _dt(node)
    x, w = node.args["input"], node.args.get("weight")
    axes = _norm_axes(node, x)
    if cx.options.get("portable"):           # device source: TVM's own op, scheduled per device
        we = cx.operand(w, dt) if w is not None else cx.emit(op.ones(cx.shape(x)[axes[0]:], "float32"))
        return op.nn.rms_norm(cx.operand(x, dt), we, axes, _eps(node, dt))
    return k.lower(cx, node, x, w, axes, _eps(node, dt), dt)


@RULES.rule("layer_norm")
def _layer_norm(cx: Lowering, node):
    dt = _dt(node)
    x = node.args["input"]
    axes = _norm_axes(node, x)
    wshape = cx.shape(x)[axes[0]:]
    w = node.args.get("weight")
    b = node.args.get("bias")
    w = cx.operand(w, dt) if w is not None else cx.emit(op.ones(wshape, "float32" if dt == "f32" else dt))
    b = cx.operand(b, dt) if b is not None else cx.emit(op.zeros(wshape, "float32" if dt == "f32" else dt))
    return op.nn.layer_norm(cx.operand(x, dt), w, b, axes, _eps(node, dt, 1e-5))


@RULES.rule("native_layer_norm")
def _native_layer_norm(cx: Lowering, node):
    dt = _dt(node)
    x = node.args["input"]
    axes = _norm_axes(node, x)
    e = cx.operand(x, dt)
    mean = cx.emit(op.mean(e, axes, True))
    d = cx.emit(op.subtract(e, mean))
    var = cx.emit(op.mean(op.multiply(d, d), axes, True))
    rstd = cx.emit(op.rsqrt(op.add(var, cx.const(_eps(node, dt), dt))))
    y = cx.emit(op.multiply(d, rstd))
    if node.args.get("weight") is not None:
        y = cx.emit(op.multiply(y, cx.operand(node.args["weight"], dt)))
    if node.args.get("bias") is not None:
        y = cx.emit(op.add(y, cx.operand(node.args["bias"], dt)))
    return [y, mean, rstd]


@RULES.rule("scaled_dot_product_attention")
def _sdpa(cx: Lowering, node):
    q, k, v = (node.args[n] for n in ("query", "key", "value"))
    if node.args.get("dropout_p", 0.0):
        cx.fail("scaled_dot_product_attention with dropout is training-only", hint="set dropout_p=0")
    mask = node.args.get("attn_mask")
    if mask is None and q.type.rank == 4 and not node.args.get("enable_gqa", False) \
            and q.type.shape[1] == k.type.shape[1]:
        from .kernels import attention as att
        scale = node.args.get("scale")
        scale = (1.0 / float(q.type.shape[-1]) ** 0.5) if scale is None else float(scale)
        return att.lower(cx, node, q, k, v, scale, bool(node.args.get("is_causal")), None)
    cx.fail("scaled_dot_product_attention with an explicit mask or GQA flag is not supported yet",
            hint="run fuse-attention first, which turns masked softmax attention into `attention`")
