"""Dense GEMM y = x · Wᵀ (+ b) in hand-scheduled TensorIR (the `linear` op).

The weight (a graph constant) is packed once at lowering time into column
panels Wp[N/NP, K, NP] so that a panel streams contiguously. Schedule: the
(row block × column panel) pairs run in parallel; inside, register tiles of
RT rows × NP columns (RT·NP·4 B < 1 KiB: LLVM keeps them in zmm registers)
accumulate over K with NP-wide vector FMAs of a broadcast x value. Rows past
M are clamped on load and skipped on store, so M (e.g. B·T) may be symbolic.
"""
from __future__ import annotations

import functools

from tvm.script import tirx as T

RT = 4           # rows per register tile
NP = 32          # columns per panel (2 zmm)
MB = 64          # rows per parallel task


@functools.lru_cache(maxsize=None)
def make(K: int, N: int, bias: bool):
    NPN = (N + NP - 1) // NP          # the last panel is zero-padded when NP does not divide N
    full = N % NP == 0

    @T.prim_func(s_tir=True)
    def dense(x_h: T.handle, wp_h: T.handle, b_h: T.handle, y_h: T.handle):
        T.func_attr({"tirx.is_scheduled": True, "tir.noalias": True})
        M = T.int64()
        NB = T.int64()
        x = T.match_buffer(x_h, (M, K), "float32")
        wp = T.match_buffer(wp_h, (NPN, K, NP), "float32")
        bv = T.match_buffer(b_h, (NB,), "float32")     # padded to NPN·NP when present
        y = T.match_buffer(y_h, (M, N), "float32")
        with T.sblock("root"):
            for task in T.parallel(((M + MB - 1) // MB) * NPN):
                with T.sblock("tile"):
                    T.reads(x[0:M, 0:K], wp[0:NPN, 0:K, 0:NP], bv[0:NB])
                    T.writes(y[0:M, 0:N])
                    acc = T.alloc_buffer((RT, NP), "float32")
                    mb = task // NPN
                    p = task % NPN
                    for rt in T.serial(MB // RT):
                        m0 = mb * MB + rt * RT
                        if m0 < M:
                            for ri in T.unroll(RT):
                                for j in T.vectorized(NP):
                                    if bias:
                                        acc[ri, j] = bv[p * NP + j]
                                    else:
                                        acc[ri, j] = T.float32(0)
                            for kk in T.serial(K):
                                for ri in T.unroll(RT):
                                    for j in T.vectorized(NP):
                                        acc[ri, j] = acc[ri, j] + x[T.min(m0 + ri, M - 1), kk] * wp[p, kk, j]
                            for ri in T.unroll(RT):
                                if m0 + ri < M:
                                    if full or p < NPN - 1:
                                        for j in T.vectorized(NP):
                                            y[m0 + ri, p * NP + j] = acc[ri, j]
                                    else:
                                        for j in T.serial(N - (NPN - 1) * NP):
                                            y[m0 + ri, p * NP + j] = acc[ri, j]

    return dense


def pack(w):
    """W [N, K] (torch) -> panels [ceil(N/NP), K, NP], zero-padded."""
    import torch
    N, K = w.shape
    n = -(-N // NP) * NP
    if n != N:
        w = torch.cat([w, w.new_zeros(n - N, K)])
    return w.reshape(n // NP, NP, K).permute(0, 2, 1).contiguous()


def pad_bias(b):
    import torch
    n = -(-b.shape[0] // NP) * NP
    return torch.cat([b, b.new_zeros(n - b.shape[0])]).contiguous() if n != b.shape[0] else b.contiguous()
