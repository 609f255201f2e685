"""Chunked gated linear attention forward, hand-scheduled TensorIR.

    S_t = diag(exp(g_t)) S_{t-1} + k_tᵀ v_t ,   o_t = (scale · q_t) S_t        (per head)

The sequence is cut into chunks of C = 64 steps; within a chunk every product
is a small dense GEMM, between chunks the state S [K, V] is carried:

    b      = cumsum of the log-decays g inside the chunk              [C, K]
    o      = (q ⊙ exp(b)) S  +  tril(A) v,   A[t,s] = Σ_k q_tk k_sk exp(b_tk - b_sk)
    S_new  = diag(exp(b_last)) S + (k ⊙ exp(b_last - b))ᵀ v

Numerics: exp(b_t - b_s) is factorised through one reference per sub-chunk
of 16 steps (the cumulative decay at the sub-chunk's start), so no factor
exceeds the decay over 16 steps: exact while the log-decay summed over any
16 consecutive steps stays above -80 (a per-step decay factor above ~0.007).

Schedule (explicit, per kernel): the B·H heads run in parallel; each head walks
its chunks in order. The three GEMMs use register tiles of RT=4 rows × VT
columns (VT = 32 → 8 zmm accumulators with AVX-512) with the reduction loop
outside the tile, the column loop vectorised and the row loop unrolled; exps
use the vectorisable `fexp`. Scratch buffers live per head (thread-local); the
accumulator tile stays under 1 KiB so LLVM keeps it in registers (TVM places
larger or `local`-scoped buffers in heap workspace, which forces a store per FMA).
Rows past the end of the sequence are zero-padded, so any T works.

gate: "none" (decay 1), "scalar" (g [B, Hkv, T, 1], one decay per head and step)
or "channel" (g [B, Hkv, T, K], one decay per key channel).
"""
from __future__ import annotations

import functools

from tvm.script import tirx as T

from .fastmath import fexp

CS = 16          # sub-chunk: the numerics reference interval
RT = 4           # rows per register tile


def _vtile(n: int) -> int:
    for t in (32, 16):
        if n % t == 0:
            return t
    return n


@functools.lru_cache(maxsize=None)
def make(H: int, Hkv: int, K: int, V: int, gate: str, scale: float, C: int = 64):
    assert C % CS == 0 and C % RT == 0 and K % RT == 0, (C, K)
    G = H // Hkv
    NS = C // CS
    VT = _vtile(V)
    CT = _vtile(C)
    NVT = V // VT
    NCT = C // CT
    sc = float(scale)
    gated = gate != "none"
    chan = gate == "channel"

    @T.prim_func(s_tir=True)
    def gla_chunk_fwd(q_h: T.handle, k_h: T.handle, v_h: T.handle, g_h: T.handle, h0_h: T.handle,
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
                    Bc = T.alloc_buffer((C, K), "float32")        # cumulative log-decay in the chunk
                    Rf = T.alloc_buffer((NS + 1, K), "float32")   # reference per sub-chunk (+ chunk end)
                    QT = T.alloc_buffer((C, K), "float32")        # q·scale·exp(b - ref)
                    Q2 = T.alloc_buffer((C, K), "float32")        # q·scale·exp(b)
                    KJ = T.alloc_buffer((C, K), "float32")        # k·exp(ref - b)
                    KD = T.alloc_buffer((C, K), "float32")        # k·exp(b_last - b)
                    KT = T.alloc_buffer((NS, K, C), "float32")    # per query sub-chunk, transposed
                    Vc = T.alloc_buffer((C, V), "float32")
                    A = T.alloc_buffer((C, C), "float32")
                    ER = T.alloc_buffer((NS + 1, K), "float32")
                    ED = T.alloc_buffer((NS + 1, K), "float32")
                    E = T.alloc_buffer((NS, NS, K), "float32")
                    KJt = T.alloc_buffer((K, C), "float32")
                    ex = T.alloc_buffer((K,), "float32")
                    acc = T.alloc_buffer((RT, 32), "float32")
                    b = bh // H
                    h = bh % H
                    hk = h // G
                    for kk, vv in T.grid(K, V):
                        S[kk, vv] = h0[b, h, kk, vv]
                    for c in T.serial((L + C - 1) // C):
                        t0 = c * C
                        # -- load the chunk, zero past the end; cumulative gates ------------
                        for t in T.serial(C):
                            if t0 + t < L:
                                for kk in T.vectorized(K):
                                    QT[t, kk] = q[b, h, t0 + t, kk] * T.float32(sc)
                                    KJ[t, kk] = k[b, hk, t0 + t, kk]
                                for vv in T.vectorized(V):
                                    Vc[t, vv] = v[b, hk, t0 + t, vv]
                                if gated:
                                    for kk in T.vectorized(K):
                                        if chan:
                                            Bc[t, kk] = g[b, hk, t0 + t, kk]
                                        else:
                                            Bc[t, kk] = g[b, hk, t0 + t, 0]
                            else:
                                for kk in T.vectorized(K):
                                    QT[t, kk] = T.float32(0)
                                    KJ[t, kk] = T.float32(0)
                                    Bc[t, kk] = T.float32(0)
                                for vv in T.vectorized(V):
                                    Vc[t, vv] = T.float32(0)
                        if gated:
                            for t in T.serial(C - 1):
                                for kk in T.vectorized(K):
                                    Bc[t + 1, kk] = Bc[t + 1, kk] + Bc[t, kk]
                            for kk in T.vectorized(K):
                                Rf[0, kk] = T.float32(0)
                            for i in T.serial(NS):
                                for kk in T.vectorized(K):
                                    Rf[i + 1, kk] = Bc[i * CS + CS - 1, kk]
                            for i in T.serial(NS + 1):
                                for kk in T.vectorized(K):
                                    ER[i, kk] = fexp(Rf[i, kk])                  # decay to sub-chunk i
                                    ED[i, kk] = fexp(Rf[NS, kk] - Rf[i, kk])     # sub-chunk i to chunk end
                            for i, j in T.grid(NS, NS):
                                for kk in T.vectorized(K):
                                    E[i, j, kk] = fexp(Rf[i, kk] - Rf[j, kk])
                            for t in T.serial(C):
                                for kk in T.vectorized(K):
                                    ex[kk] = fexp(Bc[t, kk] - Rf[t // CS, kk])
                                    QT[t, kk] = QT[t, kk] * ex[kk]
                                    Q2[t, kk] = QT[t, kk] * ER[t // CS, kk]
                                    KJ[t, kk] = KJ[t, kk] / ex[kk]
                                    KD[t, kk] = KJ[t, kk] * ED[t // CS, kk]
                            for kk in T.serial(K):
                                for s in T.vectorized(C):
                                    KJt[kk, s] = KJ[s, kk]
                            for i, kk, j in T.grid(NS, K, NS):
                                for si in T.vectorized(CS):
                                    KT[i, kk, j * CS + si] = T.Select(
                                        j <= i, KJt[kk, j * CS + si] * E[i, j, kk], T.float32(0))
                        else:
                            for t in T.serial(C):
                                for kk in T.vectorized(K):
                                    Q2[t, kk] = QT[t, kk]
                                    KD[t, kk] = KJ[t, kk]
                            for kk in T.serial(K):
                                for s in T.vectorized(C):
                                    KJt[kk, s] = KJ[s, kk]
                            for i, kk in T.grid(NS, K):
                                for s in T.vectorized(C):
                                    KT[i, kk, s] = KJt[kk, s]
                        # -- A = tril(QT · KTᵀ): RT×CT register tiles, reduction over K ---
                        for tr in T.serial(C // RT):
                            for ct in T.serial(NCT):
                                for ri in T.unroll(RT):
                                    for cc in T.vectorized(CT):
                                        acc[ri, cc] = T.float32(0)
                                if ct * CT <= tr * RT + RT - 1:          # tiles above the diagonal stay 0
                                    for kk in T.serial(K):
                                        for ri in T.unroll(RT):
                                            for cc in T.vectorized(CT):
                                                acc[ri, cc] = acc[ri, cc] + QT[tr * RT + ri, kk] * \
                                                    KT[(tr * RT) // CS, kk, ct * CT + cc]
                                for ri in T.unroll(RT):
                                    for cc in T.vectorized(CT):
                                        A[tr * RT + ri, ct * CT + cc] = T.Select(
                                            ct * CT + cc <= tr * RT + ri, acc[ri, cc], T.float32(0))
                        # -- o = Q2 · S + A · V (A is zero above the diagonal) --------------
                        for tr in T.serial(C // RT):
                            for vt in T.serial(NVT):
                                for ri in T.unroll(RT):
                                    for vv in T.vectorized(VT):
                                        acc[ri, vv] = T.float32(0)
                                for kk in T.serial(K):
                                    for ri in T.unroll(RT):
                                        for vv in T.vectorized(VT):
                                            acc[ri, vv] = acc[ri, vv] + Q2[tr * RT + ri, kk] * S[kk, vt * VT + vv]
                                for s in T.serial(tr * RT + RT):
                                    for ri in T.unroll(RT):
                                        for vv in T.vectorized(VT):
                                            acc[ri, vv] = acc[ri, vv] + A[tr * RT + ri, s] * Vc[s, vt * VT + vv]
                                for ri in T.unroll(RT):
                                    if t0 + tr * RT + ri < L:
                                        for vv in T.vectorized(VT):
                                            o[b, h, t0 + tr * RT + ri, vt * VT + vv] = acc[ri, vv]
                        # -- S = diag(decay over the chunk) S + KDᵀ · V --------------------------------------
                        for kr in T.serial(K // RT):
                            for vt in T.serial(NVT):
                                for ri in T.unroll(RT):
                                    for vv in T.vectorized(VT):
                                        if gated:
                                            acc[ri, vv] = S[kr * RT + ri, vt * VT + vv] * ED[0, kr * RT + ri]
                                        else:
                                            acc[ri, vv] = S[kr * RT + ri, vt * VT + vv]
                                for s in T.serial(C):
                                    for ri in T.unroll(RT):
                                        for vv in T.vectorized(VT):
                                            acc[ri, vv] = acc[ri, vv] + KD[s, kr * RT + ri] * Vc[s, vt * VT + vv]
                                for ri in T.unroll(RT):
                                    for vv in T.vectorized(VT):
                                        S[kr * RT + ri, vt * VT + vv] = acc[ri, vv]
                    for kk, vv in T.grid(K, V):
                        hn[b, h, kk, vv] = S[kk, vv]

    return gla_chunk_fwd


def executed_flops(T: int, heads: int, K: int, V: int, C: int = 64) -> float:
    """Multiply-adds ×2 the kernel issues for `heads` heads of length T: A (column
    tiles up to the diagonal), Q2·S, A·V (rows up to the diagonal), the state update."""
    CT = _vtile(C)
    a_cols = sum(CT * sum(1 for ct in range(C // CT) if ct * CT <= tr * RT + RT - 1) for tr in range(C // RT))
    av_cols = sum(tr * RT + RT for tr in range(C // RT))
    per_chunk = 2 * RT * (a_cols * K + av_cols * V) + 2 * C * K * V * 2
    return heads * -(-T // C) * per_chunk
