"""Gated linear attention, step by step (the recurrent form), hand-scheduled TensorIR.

    S_t = decay_t ⊙ S_{t-1} + k_tᵀ v_t ,   o_t = (scale · q_t) S_t

Used for decoding (a few new tokens against a carried state) and for the
`key_tied` gate (decay 1 - k_t may be zero or negative, which the chunked
form's logarithms cannot express). Exact for every gate kind.

Schedule: heads in parallel; per step one pass over the K rows of S, each row
updated and folded into o_t with V-wide vector FMAs; S stays in the head's
scratch (K·V floats, L1-resident for K = V = 64).
"""
from __future__ import annotations

import functools

from tvm.script import tirx as T


@functools.lru_cache(maxsize=None)
def make(H: int, Hkv: int, K: int, V: int, gate: str, scale: float):
    G = H // Hkv
    sc = float(scale)
    chan = gate == "channel"
    scal = gate == "scalar"
    tied = gate == "key_tied"

    @T.prim_func(s_tir=True)
    def gla_recurrent(q_h: T.handle, k_h: T.handle, v_h: T.handle, g_h: T.handle, h0_h: T.handle,
                      o_h: T.handle, hn_h: T.handle):
        T.func_attr({"tirx.is_scheduled": True, "tir.noalias": True})
        B = T.int64()
        L = T.int64()
        GK = T.int64()
        GL = T.int64()
        q = T.match_buffer(q_h, (B, H, L, K), "float32")
        k = T.match_buffer(k_h, (B, Hkv, L, K), "float32")
        v = T.match_buffer(v_h, (B, Hkv, L, V), "float32")
        g = T.match_buffer(g_h, (B, Hkv, GL, GK), "float32")
        h0 = T.match_buffer(h0_h, (B, H, K, V), "float32")
        o = T.match_buffer(o_h, (B, H, L, V), "float32")
        hn = T.match_buffer(hn_h, (B, H, K, V), "float32")
        with T.sblock("root"):
            for bh in T.parallel(B * H):
                with T.sblock("head"):
                    T.reads(q[0:B, 0:H, 0:L, 0:K], k[0:B, 0:Hkv, 0:L, 0:K], v[0:B, 0:Hkv, 0:L, 0:V],
                            g[0:B, 0:Hkv, 0:GL, 0:GK], h0[0:B, 0:H, 0:K, 0:V])
                    T.writes(o[0:B, 0:H, 0:L, 0:V], hn[0:B, 0:H, 0:K, 0:V])
                    S = T.alloc_buffer((K, V), "float32")
                    acc = T.alloc_buffer((V,), "float32", scope="local")
                    d = T.alloc_buffer((1,), "float32", scope="local")
                    b = bh // H
                    h = bh % H
                    hk = h // G
                    for kk, vv in T.grid(K, V):
                        S[kk, vv] = h0[b, h, kk, vv]
                    for t in T.serial(L):
                        for vv in T.vectorized(V):
                            acc[vv] = T.float32(0)
                        for kk in T.serial(K):
                            if chan:
                                d[0] = T.exp(g[b, hk, t, kk])
                            elif scal:
                                d[0] = T.exp(g[b, hk, t, 0])
                            elif tied:
                                d[0] = T.float32(1) - k[b, hk, t, kk]
                            else:
                                d[0] = T.float32(1)
                            for vv in T.vectorized(V):
                                S[kk, vv] = d[0] * S[kk, vv] + k[b, hk, t, kk] * v[b, hk, t, vv]
                                acc[vv] = acc[vv] + q[b, h, t, kk] * T.float32(sc) * S[kk, vv]
                        for vv in T.vectorized(V):
                            o[b, h, t, vv] = acc[vv]
                    for kk, vv in T.grid(K, V):
                        hn[b, h, kk, vv] = S[kk, vv]

    return gla_recurrent
