"""Gradients of q and k for one sub-block of BC rows and one key block, in parallel.

With do' = scale * do, h[c] the state at the chunk's start and dH[c] the
gradient of the state at its end:

    dq_t = exp(b_t) * (do'_t h[c]^T)  +  sum_{s <= t} (do'_t . v_s) k_s * exp(b_t - b_s)
    dk_s = exp(b_L - b_s) * (v_s dH[c]^T)  +  sum_{t >= s} (do'_t . v_s) q_t * exp(b_t - b_s)

Sums over other sub-blocks go through a reference row so every exponent is
<= 0 (the row before this sub-block for dq, its last row for dk); the diagonal
sub-block uses the exact pairwise decays (all pairs at once for key blocks up
to 32 wide, else one row at a time). dk is per query head (summed over the group
on the host for grouped-query attention).
"""
import triton
import triton.language as tl

from .seq import chunk_location


@triton.jit
def grad_qk_kernel(q, k, v, b, h, do, dh, dq, dk, cu_seqlens, chunk_indices, scale, T,
                   H: tl.constexpr, HKV: tl.constexpr, K: tl.constexpr, V: tl.constexpr,
                   BT: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                   GATE: tl.constexpr, IS_VARLEN: tl.constexpr, PRECISION: tl.constexpr):
    i_k, i_s, hq = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    NC: tl.constexpr = BT // BC
    DIAG_3D: tl.constexpr = BK <= 32        # diagonal sub-block as one [BC, BC, BK] product, else row by row
    DT = q.dtype.element_ty                 # dot operands in the input precision (bf16 on tensor cores)
    i_c, i_i = i_s // NC, i_s % NC
    hk = hq // (H // HKV)
    n, ci, batch, bos, length = chunk_location(i_c, cu_seqlens, chunk_indices, T, BT, IS_VARLEN)
    t0 = ci * BT + i_i * BC
    if t0 < length:
        seq_q = (batch * H + hq).to(tl.int64) * T + bos
        seq_kv = (batch * HKV + hk).to(tl.int64) * T + bos
        ar = tl.arange(0, BC)
        rows = t0 + ar
        row_ok = rows < length
        rk = i_k * BK + tl.arange(0, BK)
        rv = tl.arange(0, BV)
        k_ok, v_ok = rk < K, rv < V
        m_k = row_ok[:, None] & k_ok[None, :]
        m_v = row_ok[:, None] & v_ok[None, :]
        chunk_end = tl.minimum(ci * BT + BT, length)

        ki = tl.load(k + (seq_kv + rows[:, None]) * K + rk[None, :], mask=m_k, other=0.).to(tl.float32)
        vi = tl.load(v + (seq_kv + rows[:, None]) * V + rv[None, :], mask=m_v, other=0.).to(tl.float32)
        doi = tl.load(do + (seq_q + rows[:, None]) * V + rv[None, :], mask=m_v, other=0.).to(tl.float32) * scale
        if GATE:
            bi = tl.load(b + (seq_kv + rows[:, None]) * K + rk[None, :], mask=m_k, other=0.)
            bl = tl.load(b + (seq_kv + chunk_end - 1) * K + rk, mask=k_ok, other=0.)
            br = tl.load(b + (seq_kv + t0 - 1) * K + rk, mask=rk < tl.where(i_i > 0, K, 0), other=0.)
            # this sub-block's last valid row: the reference for the later sub-blocks
            be = tl.load(b + (seq_kv + tl.minimum(t0 + BC, length) - 1) * K + rk, mask=k_ok, other=0.)
        else:
            bi = tl.zeros([BC, BK], dtype=tl.float32)
            bl = tl.zeros([BK], dtype=tl.float32)
            br = tl.zeros([BK], dtype=tl.float32)
            be = tl.zeros([BK], dtype=tl.float32)

        # through the chunk's states
        state = (i_c * H + hq).to(tl.int64) * K * V + rk[:, None] * V + rv[None, :]
        m_state = k_ok[:, None] & v_ok[None, :]
        hc = tl.load(h + state, mask=m_state, other=0.)
        dhc = tl.load(dh + state, mask=m_state, other=0.)
        dq_acc = tl.dot(doi.to(DT), tl.trans(hc.to(DT)), input_precision=PRECISION) * tl.exp(bi)
        dk_state = tl.dot(vi.to(DT), tl.trans(dhc.to(DT)), input_precision=PRECISION)
        dk_acc = tl.where(row_ok[:, None], dk_state * tl.exp(bl[None, :] - bi), 0.)

        # dq from earlier sub-blocks (keys), relative to the row before this sub-block
        dq_r = tl.zeros([BC, BK], dtype=tl.float32)
        for j in range(0, i_i):
            rj = ci * BT + j * BC + ar
            vj = tl.load(v + (seq_kv + rj[:, None]) * V + rv[None, :], mask=v_ok[None, :], other=0.).to(tl.float32)
            kj = tl.load(k + (seq_kv + rj[:, None]) * K + rk[None, :], mask=k_ok[None, :], other=0.).to(tl.float32)
            if GATE:
                bj = tl.load(b + (seq_kv + rj[:, None]) * K + rk[None, :], mask=k_ok[None, :], other=0.)
                kj = kj * tl.exp(br[None, :] - bj)
            A = tl.dot(doi.to(DT), tl.trans(vj.to(DT)), input_precision=PRECISION)
            dq_r += tl.dot(A.to(DT), kj.to(DT), input_precision=PRECISION)
        dq_acc += tl.where(row_ok[:, None], dq_r * tl.exp(bi - br[None, :]), 0.)

        # dk from later sub-blocks (queries), relative to this sub-block's last row
        n_sub = (chunk_end - ci * BT + BC - 1) // BC
        dk_r = tl.zeros([BC, BK], dtype=tl.float32)
        for j in range(i_i + 1, n_sub):
            rj = ci * BT + j * BC + ar
            rj_ok = rj < length
            qj = tl.load(q + (seq_q + rj[:, None]) * K + rk[None, :], mask=rj_ok[:, None] & k_ok[None, :],
                         other=0.).to(tl.float32)
            doj = tl.load(do + (seq_q + rj[:, None]) * V + rv[None, :], mask=rj_ok[:, None] & v_ok[None, :],
                          other=0.).to(tl.float32) * scale
            if GATE:
                bj = tl.load(b + (seq_kv + rj[:, None]) * K + rk[None, :], mask=rj_ok[:, None] & k_ok[None, :],
                             other=0.)
                qj = tl.where(rj_ok[:, None], qj * tl.exp(bj - be[None, :]), 0.)
            A = tl.dot(doj.to(DT), tl.trans(vi.to(DT)), input_precision=PRECISION)          # [t in j, s in i]
            dk_r += tl.dot(tl.trans(A.to(DT)), qj.to(DT), input_precision=PRECISION)
        dk_acc += tl.where(row_ok[:, None], dk_r * tl.exp(be[None, :] - bi), 0.)

        # the diagonal sub-block: exact pairwise decays
        if GATE and not DIAG_3D:
            for s in range(0, BC):          # one row s at a time (a key row for dq, a query row for dk)
                rs = t0 + s
                s_k = rk < tl.where(rs < length, K, 0)
                s_v = rv < tl.where(rs < length, V, 0)
                ks = tl.load(k + (seq_kv + rs) * K + rk, mask=s_k, other=0.).to(tl.float32)
                qs = tl.load(q + (seq_q + rs) * K + rk, mask=s_k, other=0.).to(tl.float32)
                vs = tl.load(v + (seq_kv + rs) * V + rv, mask=s_v, other=0.).to(tl.float32)
                dos = tl.load(do + (seq_q + rs) * V + rv, mask=s_v, other=0.).to(tl.float32) * scale
                bs = tl.load(b + (seq_kv + rs) * K + rk, mask=s_k, other=0.)
                later = (ar >= s) & row_ok                        # rows t >= s: queries that see key s
                earlier = ar <= tl.where(rs < length, s, -1)      # rows u <= s: keys query s sees
                a = tl.where(later, tl.sum(doi * vs[None, :], axis=1), 0.)
                c = tl.where(earlier, tl.sum(vi * dos[None, :], axis=1), 0.)
                dq_acc += a[:, None] * ks[None, :] * tl.exp(tl.where(later[:, None], bi - bs[None, :], 0.))
                dk_acc += c[:, None] * qs[None, :] * tl.exp(tl.where(earlier[:, None], bs[None, :] - bi, 0.))
        else:
            qi = tl.load(q + (seq_q + rows[:, None]) * K + rk[None, :], mask=m_k, other=0.).to(tl.float32)
            causal = (ar[:, None] >= ar[None, :]) & row_ok[:, None] & row_ok[None, :]      # [t, s]
            A = tl.where(causal, tl.dot(doi.to(DT), tl.trans(vi.to(DT)), input_precision=PRECISION), 0.)   # do'_t . v_s
            if GATE:                        # all pairs at once: [BC, BC, BK] (small key blocks only)
                E = tl.exp(tl.where(causal[:, :, None], bi[:, None, :] - bi[None, :, :], 0.))
                dq_acc += tl.sum(A[:, :, None] * ki[None, :, :] * E, axis=1)
                dk_acc += tl.sum(A[:, :, None] * qi[:, None, :] * E, axis=0)
            else:
                dq_acc += tl.dot(A.to(DT), ki.to(DT), input_precision=PRECISION)
                dk_acc += tl.dot(tl.trans(A.to(DT)), qi.to(DT), input_precision=PRECISION)

        tl.store(dq + (seq_q + rows[:, None]) * K + rk[None, :], dq_acc, mask=m_k)
        tl.store(dk + (seq_q + rows[:, None]) * K + rk[None, :], dk_acc, mask=m_k)
