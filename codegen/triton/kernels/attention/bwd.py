"""Banded flash attention backward.

With P = softmax(S) recomputed from the stored base-2 log-sum-exp and
delta_i = sum_d dO_id O_id:

    dV = P^T dO,   dS = P * (dO V^T - delta),   dK = scale * dS^T Q,   dQ = scale * dS K

`attention_dkdv_kernel` owns a key block and visits the query blocks whose
band reaches it; `attention_dq_kernel` owns a query block and visits its key
band, as the forward does. dK and dV are per query head (summed over each
group on the host).
"""
import triton
import triton.language as tl


@triton.jit
def attention_delta_kernel(o, do, delta, Tq, DV: tl.constexpr, BM: tl.constexpr, BDV: tl.constexpr):
    i_m, i_bh = tl.program_id(0), tl.program_id(1)
    rm = i_m * BM + tl.arange(0, BM)
    rdv = tl.arange(0, BDV)
    base = i_bh.to(tl.int64) * Tq
    mask = (rm[:, None] < Tq) & (rdv[None, :] < DV)
    ob = tl.load(o + (base + rm[:, None]) * DV + rdv[None, :], mask=mask, other=0.).to(tl.float32)
    dob = tl.load(do + (base + rm[:, None]) * DV + rdv[None, :], mask=mask, other=0.).to(tl.float32)
    tl.store(delta + base + rm, tl.sum(ob * dob, axis=1), mask=rm < Tq)


@triton.jit
def attention_dkdv_kernel(q, k, v, do, lse, delta, dk, dv, scale, Tq, Tk, WINDOW,
                          H: tl.constexpr, HKV: tl.constexpr, D: tl.constexpr, DV: tl.constexpr,
                          BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BDV: tl.constexpr,
                          CAUSAL: tl.constexpr, PRECISION: tl.constexpr):
    i_n, i_bh = tl.program_id(0), tl.program_id(1)
    bidx, hq = i_bh // H, i_bh % H
    hk = hq // (H // HKV)
    offset = Tk - Tq
    rn = i_n * BN + tl.arange(0, BN)
    n_ok = rn < Tk
    rd, rdv = tl.arange(0, BD), tl.arange(0, BDV)
    seq_q = (bidx * H + hq).to(tl.int64) * Tq
    seq_kv = (bidx * HKV + hk).to(tl.int64) * Tk
    kb = tl.load(k + (seq_kv + rn[:, None]) * D + rd[None, :], mask=n_ok[:, None] & (rd[None, :] < D), other=0.)
    vb = tl.load(v + (seq_kv + rn[:, None]) * DV + rdv[None, :], mask=n_ok[:, None] & (rdv[None, :] < DV), other=0.)
    qk_scale = scale * 1.4426950408889634

    # the query blocks whose band reaches this key block
    lo = 0
    hi = Tq
    if CAUSAL:
        lo = tl.maximum(0, i_n * BN - offset)
        lo = (lo // BM) * BM
        if WINDOW > 0:
            hi = tl.minimum(Tq, i_n * BN + BN + WINDOW - 1 - offset)

    dk_acc = tl.zeros([BN, BD], dtype=tl.float32)
    dv_acc = tl.zeros([BN, BDV], dtype=tl.float32)
    for start in range(lo, hi, BM):
        rm = start + tl.arange(0, BM)
        m_ok = rm < Tq
        pos = rm + offset
        qb = tl.load(q + (seq_q + rm[:, None]) * D + rd[None, :], mask=m_ok[:, None] & (rd[None, :] < D), other=0.)
        dob = tl.load(do + (seq_q + rm[:, None]) * DV + rdv[None, :], mask=m_ok[:, None] & (rdv[None, :] < DV),
                      other=0.)
        lse_b = tl.load(lse + seq_q + rm, mask=m_ok, other=0.)
        delta_b = tl.load(delta + seq_q + rm, mask=m_ok, other=0.)
        s = tl.dot(qb, tl.trans(kb), input_precision=PRECISION) * qk_scale
        allowed = n_ok[None, :] & m_ok[:, None]
        if CAUSAL:
            allowed = allowed & (rn[None, :] <= pos[:, None])
            if WINDOW > 0:
                allowed = allowed & (rn[None, :] > pos[:, None] - WINDOW)
        p = tl.where(allowed, tl.exp2(s - lse_b[:, None]), 0.)
        dv_acc += tl.dot(tl.trans(p.to(dob.dtype)), dob, input_precision=PRECISION)
        dp = tl.dot(dob, tl.trans(vb), input_precision=PRECISION)
        ds = p * (dp - delta_b[:, None])
        dk_acc += tl.dot(tl.trans(ds.to(qb.dtype)), qb, input_precision=PRECISION)
    seq_dkv = i_bh.to(tl.int64) * Tk       # dk, dv are per query head: [B, H, Tk, .]
    tl.store(dk + (seq_dkv + rn[:, None]) * D + rd[None, :], dk_acc * scale, mask=n_ok[:, None] & (rd[None, :] < D))
    tl.store(dv + (seq_dkv + rn[:, None]) * DV + rdv[None, :], dv_acc, mask=n_ok[:, None] & (rdv[None, :] < DV))


@triton.jit
def attention_dq_kernel(q, k, v, do, lse, delta, dq, scale, Tq, Tk, WINDOW,
                        H: tl.constexpr, HKV: tl.constexpr, D: tl.constexpr, DV: tl.constexpr,
                        BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BDV: tl.constexpr,
                        CAUSAL: tl.constexpr, PRECISION: tl.constexpr):
    i_m, i_bh = tl.program_id(0), tl.program_id(1)
    bidx, hq = i_bh // H, i_bh % H
    hk = hq // (H // HKV)
    offset = Tk - Tq
    rm = i_m * BM + tl.arange(0, BM)
    m_ok = rm < Tq
    pos = rm + offset
    rd, rdv = tl.arange(0, BD), tl.arange(0, BDV)
    seq_q = (bidx * H + hq).to(tl.int64) * Tq
    seq_kv = (bidx * HKV + hk).to(tl.int64) * Tk
    qb = tl.load(q + (seq_q + rm[:, None]) * D + rd[None, :], mask=m_ok[:, None] & (rd[None, :] < D), other=0.)
    dob = tl.load(do + (seq_q + rm[:, None]) * DV + rdv[None, :], mask=m_ok[:, None] & (rdv[None, :] < DV), other=0.)
    lse_b = tl.load(lse + seq_q + rm, mask=m_ok, other=0.)
    delta_b = tl.load(delta + seq_q + rm, mask=m_ok, other=0.)
    qk_scale = scale * 1.4426950408889634

    lo = 0
    hi = Tk
    if CAUSAL:
        hi = tl.minimum(Tk, i_m * BM + BM + offset)
        if WINDOW > 0:
            lo = tl.maximum(0, i_m * BM + offset - WINDOW + 1)
            lo = (lo // BN) * BN

    dq_acc = tl.zeros([BM, BD], dtype=tl.float32)
    for start in range(lo, hi, BN):
        rn = start + tl.arange(0, BN)
        n_ok = rn < Tk
        kb = tl.load(k + (seq_kv + rn[:, None]) * D + rd[None, :], mask=n_ok[:, None] & (rd[None, :] < D), other=0.)
        vb = tl.load(v + (seq_kv + rn[:, None]) * DV + rdv[None, :], mask=n_ok[:, None] & (rdv[None, :] < DV),
                     other=0.)
        s = tl.dot(qb, tl.trans(kb), input_precision=PRECISION) * qk_scale
        allowed = n_ok[None, :] & m_ok[:, None]
        if CAUSAL:
            allowed = allowed & (rn[None, :] <= pos[:, None])
            if WINDOW > 0:
                allowed = allowed & (rn[None, :] > pos[:, None] - WINDOW)
        p = tl.where(allowed, tl.exp2(s - lse_b[:, None]), 0.)
        dp = tl.dot(dob, tl.trans(vb), input_precision=PRECISION)
        ds = p * (dp - delta_b[:, None])
        dq_acc += tl.dot(ds.to(kb.dtype), kb, input_precision=PRECISION)
    tl.store(dq + (seq_q + rm[:, None]) * D + rd[None, :], dq_acc * scale, mask=m_ok[:, None] & (rd[None, :] < D))
