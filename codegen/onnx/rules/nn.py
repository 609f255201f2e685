"""Matrix products and the nn ops the frontend keeps whole (linear, norms, einsum)."""
from __future__ import annotations

import math

import numpy as np
import torch

from spikec.codegen.errors import LoweringError
from ..builder import tensor_proto
from . import RULES


def _dt(node):
    return node.outputs[0].type.dtype


@RULES.rule("mm", "bmm", "matmul")
def _matmul(ctx, node):
    dt = _dt(node)
    return ctx.sink.op("MatMul", [ctx.operand(node.args["self"], dt), ctx.operand(node.args[
        "mat2" if node.op != "matmul" else "other"], dt)])


@RULES.rule("addmm", "baddbmm")
def _addmm(ctx, node):
    s, dt = ctx.sink, _dt(node)
    a, b = ("mat1", "mat2") if node.op == "addmm" else ("batch1", "batch2")
    prod = s.op("MatMul", [ctx.operand(node.args[a], dt), ctx.operand(node.args[b], dt)])
    alpha, beta = node.arg("alpha"), node.arg("beta")
    if alpha not in (None, 1):
        prod = s.op("Mul", [prod, s.scalar(alpha, dt)])
    if beta == 0:
        return prod
    base = ctx.operand(node.args["self"], dt)
    if beta not in (None, 1):
        base = s.op("Mul", [base, s.scalar(beta, dt)])
    return s.op("Add", [prod, base])


def _transposed_weight(ctx, w, dt):
    """Wᵀ; a constant weight is stored transposed, so the model runs a plain MatMul."""
    node = w.producer
    if node is not None and node.op == "constant" and w.type.rank == 2 and w.type.dtype == dt:
        tensor = ctx.graph.constants[node.args["name"]]
        return ctx.sink.add_initializer(ctx.unique(node.args["name"] + ".T"), tensor.detach().t().contiguous())
    return ctx.sink.op("Transpose", [ctx.operand(w, dt)], perm=[1, 0])


@RULES.rule("linear")
def _linear(ctx, node):
    s, dt = ctx.sink, _dt(node)
    out = s.op("MatMul", [ctx.operand(node.args["input"], dt), _transposed_weight(ctx, node.args["weight"], dt)])
    if node.arg("bias") is not None:
        out = s.op("Add", [out, ctx.operand(node.args["bias"], dt)])
    return out


@RULES.rule("einsum")
def _einsum(ctx, node):
    dt = _dt(node)
    return ctx.sink.op("Einsum", [ctx.operand(t, dt) for t in node.args["tensors"]],
                       equation=node.args["equation"].replace(" ", ""))


def _eps(eps, dt):
    if eps is not None:
        return float(eps)
    return torch.finfo({"f32": torch.float32, "f64": torch.float64, "f16": torch.float16,
                        "bf16": torch.bfloat16}[dt]).eps


@RULES.rule("rms_norm")
def _rms_norm(ctx, node):
    s, dt = ctx.sink, _dt(node)
    x = ctx.operand(node.args["input"], dt)
    n = len(node.args["normalized_shape"])
    rank = node.args["input"].type.rank
    ms = s.op("ReduceMean", [s.op("Mul", [x, x]), s.i64(list(range(rank - n, rank)))], keepdims=1)
    out = s.op("Mul", [x, s.op("Reciprocal", [s.op("Sqrt", [s.op("Add", [ms, s.scalar(_eps(node.arg("eps"), dt), dt)])])])])
    if node.arg("weight") is not None:
        out = s.op("Mul", [out, ctx.operand(node.args["weight"], dt)])
    return out


@RULES.rule("layer_norm", "native_layer_norm")
def _layer_norm(ctx, node):
    s, dt = ctx.sink, _dt(node)
    x = ctx.operand(node.args["input"], dt)
    shape = list(node.args["normalized_shape"])
    w, b = node.arg("weight"), node.arg("bias")
    if w is None:
        if not all(isinstance(d, int) for d in shape):
            raise LoweringError("onnx: layer_norm without a weight needs a static normalized_shape")
        w_name = s.const(torch.ones(shape).numpy(), dt)
    else:
        w_name = ctx.operand(w, dt)
    inputs = [x, w_name] + ([ctx.operand(b, dt)] if b is not None else [])
    return s.op("LayerNormalization", inputs, n_out=len(node.outputs), axis=-len(shape),
                epsilon=float(node.arg("eps")))


@RULES.rule("scaled_dot_product_attention")
def _sdpa(ctx, node):
    # torch's sdpa: an optional additive/boolean mask, top-left aligned causal mask, default scale 1/sqrt(E)
    s, dt = ctx.sink, _dt(node)
    q, k, v = (node.args[n] for n in ("query", "key", "value"))
    if node.arg("dropout_p"):
        raise LoweringError("onnx: scaled_dot_product_attention with dropout is a training op")
    scale = node.arg("scale")
    scale = 1.0 / math.sqrt(q.type.shape[-1]) if scale is None else float(scale)
    qn, kn, vn = (ctx.operand(x, dt) for x in (q, k, v))
    hq, hk = q.type.shape[-3] if q.type.rank >= 3 else 1, k.type.shape[-3] if k.type.rank >= 3 else 1
    if node.arg("enable_gqa") and hq != hk:
        from .fused import repeat_heads
        kn, vn = repeat_heads(ctx, kn, k.type, hq), repeat_heads(ctx, vn, v.type, hq)
    rank = q.type.rank
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    scores = s.op("Mul", [s.op("MatMul", [qn, s.op("Transpose", [kn], perm=perm)]), s.scalar(scale, dt)])
    mask = node.arg("attn_mask")
    if mask is not None:
        if mask.type.dtype == "bool":
            scores = s.op("Where", [ctx.get(mask), scores, s.scalar(float("-inf"), dt)])
        else:
            scores = s.op("Add", [scores, ctx.operand(mask, dt)])
    if node.arg("is_causal"):
        ones = s.op("ConstantOfShape", [s.op("Shape", [scores], start=-2)],
                    value=_one_bool())
        scores = s.op("Where", [s.op("Trilu", [ones], upper=0), scores, s.scalar(float("-inf"), dt)])
    return s.op("MatMul", [s.op("Softmax", [scores], axis=-1), vn])


def _one_bool():
    return tensor_proto("one", np.ones([1], dtype=np.bool_))
