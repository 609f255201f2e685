"""`rms_norm` (aten.rms_norm over the last dims): y = x · rsqrt(mean(x²) + eps) · w.

Written as plain TensorIR blocks (sum of squares, normalise) and scheduled
with TVM's Schedule API: rows in parallel, the normalise block moved under the
row loop of the sum of squares (one pass over a row in cache), its loop vectorised.
"""
from __future__ import annotations

import functools

from tvm import relax, s_tir
from tvm.script import tirx as T

VEC = 16


def _kernel(N: int, eps: float):
    @T.prim_func(s_tir=True)
    def rms_norm(x_h: T.handle, w_h: T.handle, y_h: T.handle):
        T.func_attr({"tir.noalias": True})
        R = T.int64()
        x = T.match_buffer(x_h, (R, N), "float32")
        w = T.match_buffer(w_h, (N,), "float32")
        y = T.match_buffer(y_h, (R, N), "float32")
        ss = T.alloc_buffer((R,), "float32")
        for r, n in T.grid(R, N):
            with T.sblock("sumsq"):
                vr, vn = T.axis.remap("SR", [r, n])
                with T.init():
                    ss[vr] = T.float32(0)
                ss[vr] = ss[vr] + x[vr, vn] * x[vr, vn]
        for r, n in T.grid(R, N):
            with T.sblock("norm"):
                vr, vn = T.axis.remap("SS", [r, n])
                y[vr, vn] = x[vr, vn] * T.rsqrt(ss[vr] / T.float32(N) + T.float32(eps)) * w[vn]
    return rms_norm


@functools.lru_cache(maxsize=None)
def make(N: int, eps: float):
    sch = s_tir.Schedule(_kernel(N, eps))
    r, _ = sch.get_loops(sch.get_sblock("sumsq"))
    sch.reverse_compute_at(sch.get_sblock("norm"), r)    # one row: reduce, then normalise
    sch.parallel(r)
    n = sch.get_loops(sch.get_sblock("norm"))[-1]
    if N % VEC == 0:
        _, vi = sch.split(n, [None, VEC])
        sch.vectorize(vi)
    return sch.mod["main"].with_attr("tirx.is_scheduled", True)


def lower(cx, node, x, w, axes, eps: float, dt: str):
    shape = cx.shape(x)
    inner = x.type.shape[axes[0]:]
    if not all(isinstance(d, int) for d in inner):
        cx.fail("rms_norm needs a static normalised shape")
    N = 1
    for d in inner:
        N *= d
    rows = 1
    for d in shape[:axes[0]]:
        rows = rows * d
    xe = cx.emit(relax.op.reshape(cx.operand(x, "f32"), [rows, N]))
    we = cx.emit(relax.op.reshape(cx.operand(w, "f32"), [N])) if w is not None else \
        cx.emit(relax.op.ones([N], "float32"))
    gv = cx.kernel(f"rms_norm_{N}", lambda: make(N, float(eps)), key=(float(eps),))
    y = cx.emit(relax.call_tir(gv, [xe, we], out_ty=relax.TensorType([rows, N], "float32")))
    return relax.op.reshape(y, shape)
