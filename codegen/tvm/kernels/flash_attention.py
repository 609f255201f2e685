"""Softmax attention (full, causal or sliding-window), flash-style TensorIR.

For each query tile of QB rows the kernel walks only the key blocks the mask
can reach (causal: up to the tile's last position; window: from its first
position - window + 1), keeping a running max m, normaliser l and output
accumulator per row (online softmax), so memory stays O(QB·D) per tile and a
sliding window costs O(T·window) instead of O(T²).

Layout: q [B, H, Tq, D], k [B, Hkv, Tk, D], v [B, Hkv, Tk, Dv]; query i sits at
absolute position i + (Tk - Tq) (decode: the last Tq positions). Allowed keys:
j ≤ pos (causal) and j > pos - window (window).

Schedule: (batch·head·query-tile) in parallel; the key block is transposed once
([D, KB]) so scores are KB-wide vector FMAs; p·V is Dv-wide vector FMAs.
"""
from __future__ import annotations

import functools

from tvm.script import tirx as T

from .fastmath import fexp

QB = 16          # query rows per tile
KB = 16          # keys per block
NEG = -3.0e38


@functools.lru_cache(maxsize=None)
def make(H: int, Hkv: int, D: int, Dv: int, scale: float, causal: bool, window: int | None):
    G = H // Hkv
    sc = float(scale)
    win = int(window) if window is not None else 0
    windowed = window is not None

    @T.prim_func(s_tir=True)
    def flash_attention(q_h: T.handle, k_h: T.handle, v_h: T.handle, o_h: T.handle):
        T.func_attr({"tirx.is_scheduled": True, "tir.noalias": True})
        B = T.int64()
        Lq = T.int64()
        Lk = T.int64()
        q = T.match_buffer(q_h, (B, H, Lq, D), "float32")
        k = T.match_buffer(k_h, (B, Hkv, Lk, D), "float32")
        v = T.match_buffer(v_h, (B, Hkv, Lk, Dv), "float32")
        o = T.match_buffer(o_h, (B, H, Lq, Dv), "float32")
        with T.sblock("root"):
            for task in T.parallel(B * H * ((Lq + QB - 1) // QB)):
                with T.sblock("tile"):
                    T.reads(q[0:B, 0:H, 0:Lq, 0:D], k[0:B, 0:Hkv, 0:Lk, 0:D], v[0:B, 0:Hkv, 0:Lk, 0:Dv])
                    T.writes(o[0:B, 0:H, 0:Lq, 0:Dv])
                    Kt = T.alloc_buffer((D, KB), "float32")
                    Qs = T.alloc_buffer((QB, D), "float32")
                    Sc = T.alloc_buffer((QB, KB), "float32")
                    acc = T.alloc_buffer((QB, Dv), "float32")
                    m = T.alloc_buffer((QB,), "float32")
                    lsum = T.alloc_buffer((QB,), "float32")
                    tmp = T.alloc_buffer((3,), "float32")
                    nqt = (Lq + QB - 1) // QB
                    bh = task // nqt
                    qt = task % nqt
                    b = bh // H
                    h = bh % H
                    hk = h // G
                    r0 = qt * QB
                    off = Lk - Lq
                    for r in T.serial(QB):
                        m[r] = T.float32(NEG)
                        lsum[r] = T.float32(0)
                        for d in T.vectorized(Dv):
                            acc[r, d] = T.float32(0)
                        for d in T.vectorized(D):
                            Qs[r, d] = T.if_then_else(r0 + r < Lq, q[b, h, T.min(r0 + r, Lq - 1), d] * T.float32(sc),
                                                      T.float32(0))
                    # key range the tile can see
                    hi = T.min(Lk, r0 + QB + off) if causal else Lk
                    lo = T.max(r0 + off - win + 1, 0) if windowed else T.int64(0)
                    for kb in T.serial((hi - lo + KB - 1) // KB):
                        j0 = lo + kb * KB
                        for d, j in T.grid(D, KB):
                            Kt[d, j] = k[b, hk, T.min(j0 + j, Lk - 1), d]
                        # scores for the whole tile: rows innermost-but-one, so consecutive
                        # FMAs update different rows (no loop-carried dependency on one row)
                        for r in T.serial(QB):
                            for j in T.vectorized(KB):
                                Sc[r, j] = T.float32(0)
                        for d in T.serial(D):
                            for r in T.serial(QB):
                                for j in T.vectorized(KB):
                                    Sc[r, j] = Sc[r, j] + Qs[r, d] * Kt[d, j]
                        for r in T.serial(QB):
                            for j in T.vectorized(KB):
                                Sc[r, j] = T.Select(
                                    (j0 + j < hi)
                                    and ((not causal) or (j0 + j <= r0 + r + off))
                                    and ((not windowed) or (j0 + j > r0 + r + off - win)),
                                    Sc[r, j], T.float32(NEG))
                            # online softmax: new max, rescale; Sc becomes the tile's p (0 if masked)
                            tmp[0] = m[r]
                            for j in T.serial(KB):
                                tmp[0] = T.max(tmp[0], Sc[r, j])
                            if tmp[0] > T.float32(NEG):
                                tmp[1] = fexp(m[r] - tmp[0])
                                for j in T.vectorized(KB):
                                    Sc[r, j] = T.Select(Sc[r, j] > T.float32(NEG), fexp(Sc[r, j] - tmp[0]),
                                                        T.float32(0))
                                tmp[2] = T.float32(0)
                                for j in T.serial(KB):
                                    tmp[2] = tmp[2] + Sc[r, j]
                                lsum[r] = lsum[r] * tmp[1] + tmp[2]
                                m[r] = tmp[0]
                                for d in T.vectorized(Dv):
                                    acc[r, d] = acc[r, d] * tmp[1]
                            else:
                                for j in T.vectorized(KB):
                                    Sc[r, j] = T.float32(0)
                        # p·V, keys outer and rows inner: independent accumulators back to back
                        for j in T.serial(KB):
                            if j0 + j < hi:
                                for r in T.serial(QB):
                                    for d in T.vectorized(Dv):
                                        acc[r, d] = acc[r, d] + Sc[r, j] * v[b, hk, j0 + j, d]
                    for r in T.serial(QB):
                        if r0 + r < Lq:
                            for d in T.vectorized(Dv):
                                o[b, h, r0 + r, d] = acc[r, d] / lsum[r]

    return flash_attention
