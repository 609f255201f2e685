"""Multi-step LIF (`lif`) as a hand-written TensorIR scan.

    h = v + (x_t - (v - v_reset)) / tau,  s_t = h >= v_threshold,  v = s_t ? v_reset : h

Operands are flattened to x [B, T, N] and v0 [B, N] (N: the static product of the
channel dims). Schedule: the B·N neurons are independent, so they run in parallel
and each walks its T steps serially with the membrane in a register.
"""
from __future__ import annotations

import functools

from tvm import relax
from tvm.script import tirx as T

op = relax.op


@functools.lru_cache(maxsize=None)
def make(N: int, tau: float, v_threshold: float, v_reset: float):
    inv_tau, vth, vr = 1.0 / float(tau), float(v_threshold), float(v_reset)

    @T.prim_func(s_tir=True)
    def lif_scan(x_h: T.handle, v0_h: T.handle, s_h: T.handle, vn_h: T.handle):
        T.func_attr({"tirx.is_scheduled": True, "tir.noalias": True})
        B = T.int64()
        L = T.int64()
        x = T.match_buffer(x_h, (B, L, N), "float32")
        v0 = T.match_buffer(v0_h, (B, N), "float32")
        s = T.match_buffer(s_h, (B, L, N), "float32")
        vn = T.match_buffer(vn_h, (B, N), "float32")
        with T.sblock("root"):
            for bn in T.parallel(B * N):
                with T.sblock("neuron"):
                    T.reads(x[0:B, 0:L, 0:N], v0[0:B, 0:N])
                    T.writes(s[0:B, 0:L, 0:N], vn[0:B, 0:N])
                    v = T.alloc_buffer((1,), "float32", scope="local")
                    h = T.alloc_buffer((1,), "float32", scope="local")
                    b = bn // N
                    c = bn % N
                    v[0] = v0[b, c]
                    for t in T.serial(L):
                        h[0] = v[0] + (x[b, t, c] - (v[0] - T.float32(vr))) * T.float32(inv_tau)
                        if h[0] >= T.float32(vth):
                            s[b, t, c] = T.float32(1)
                            v[0] = T.float32(vr)
                        else:
                            s[b, t, c] = T.float32(0)
                            v[0] = h[0]
                    vn[b, c] = v[0]

    return lif_scan


def lower(cx, node):
    x, v0 = node.args["x"], node.args.get("v0")
    if x.type.dtype != "f32":
        cx.fail(f"lif: the cpu kernel is f32, got {x.type.dtype}", hint="cast to f32 before the neuron")
    chan = x.type.shape[2:]
    if not all(isinstance(d, int) for d in chan):
        cx.fail(f"lif needs static channel dims, got {list(chan)}")
    N = 1
    for d in chan:
        N *= d
    shp = cx.shape(x)
    B, L = shp[0], shp[1]
    xe = cx.emit(op.reshape(cx.operand(x, "f32"), [B, L, N]))
    if v0 is not None:
        ve = cx.emit(op.reshape(cx.operand(v0, "f32"), [B, N]))
    else:
        ve = cx.emit(op.full([B, N], relax.const(float(node.arg("v_reset")), "float32"), "float32"))
    tau, vth, vr = (float(node.arg(k)) for k in ("tau", "v_threshold", "v_reset"))
    gv = cx.kernel(f"lif_n{N}", lambda: make(N, tau, vth, vr), key=(tau, vth, vr))
    res = cx.emit(relax.call_tir(gv, [xe, ve], out_ty=[relax.TensorType([B, L, N], "float32"),
                                                      relax.TensorType([B, N], "float32")]))
    s = cx.emit(op.reshape(relax.TupleGetItem(res, 0), shp))
    vn = cx.emit(op.reshape(relax.TupleGetItem(res, 1), [B, *shp[2:]]))
    return [s, vn]
