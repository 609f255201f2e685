"""Banded flash attention forward: causal, optionally within a sliding window.

Query i (at absolute position p_i = i + Tk - Tq: queries are the last Tq
positions) sees keys j with p_i - WINDOW < j <= p_i (WINDOW = 0: no window).
One program per (query block, batch x head) visits only the key blocks that
intersect its band, so the cost is O(T * window), with an online softmax in
base 2. The row log-sum-exp (base 2) is stored for the backward.
"""
import triton
import triton.language as tl


@triton.jit
def attention_fwd_kernel(q, k, v, o, lse, scale, Tq, Tk, WINDOW,
                         H: tl.constexpr, HKV: tl.constexpr, D: tl.constexpr, DV: tl.constexpr,
                         BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BDV: tl.constexpr,
                         CAUSAL: tl.constexpr, PRECISION: tl.constexpr):
    i_m, i_bh = tl.program_id(0), tl.program_id(1)
    bidx, hq = i_bh // H, i_bh % H
    hk = hq // (H // HKV)
    offset = Tk - Tq
    rm = i_m * BM + tl.arange(0, BM)
    pos = rm + offset
    rd, rdv = tl.arange(0, BD), tl.arange(0, BDV)
    m_ok = rm < Tq
    seq_q = (bidx * H + hq).to(tl.int64) * Tq
    seq_kv = (bidx * HKV + hk).to(tl.int64) * Tk
    qb = tl.load(q + (seq_q + rm[:, None]) * D + rd[None, :], mask=m_ok[:, None] & (rd[None, :] < D), other=0.)
    qk_scale = scale * 1.4426950408889634

    # the key blocks that meet this query block's band
    lo = 0
    hi = Tk
    if CAUSAL:
        hi = tl.minimum(Tk, i_m * BM + BM + offset)
        if WINDOW > 0:
            lo = tl.maximum(0, i_m * BM + offset - WINDOW + 1)
            lo = (lo // BN) * BN

    m_i = tl.full([BM], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BM], dtype=tl.float32)
    acc = tl.zeros([BM, BDV], dtype=tl.float32)
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
        s = tl.where(allowed, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        m_safe = tl.where(m_new == float("-inf"), 0., m_new)    # rows that have seen no key yet
        p = tl.exp2(s - m_safe[:, None])
        alpha = tl.exp2(m_i - m_safe)
        l_i = l_i * alpha + tl.sum(p, axis=1)
        acc = acc * alpha[:, None] + tl.dot(p.to(vb.dtype), vb, input_precision=PRECISION)
        m_i = m_new
    l_safe = tl.where(l_i > 0., l_i, 1.)
    out = acc / l_safe[:, None]
    tl.store(o + (seq_q + rm[:, None]) * DV + rdv[None, :], out.to(o.dtype.element_ty),
             mask=m_ok[:, None] & (rdv[None, :] < DV))
    tl.store(lse + seq_q + rm, m_i + tl.log2(l_safe), mask=m_ok)
