"""Gradient of v for one sub-block of BC rows and one value block, in parallel.

    dv_s = (k_s * exp(b_L - b_s)) dH[c]  +  sum_{t >= s} A[t, s] do'_t,
    A[t, s] = sum_k q_tk k_sk exp(b_tk - b_sk),   do' = scale * do

Later sub-blocks go through this sub-block's last row as the reference (all
exponents <= 0); the diagonal sub-block uses the exact pairwise decays (all pairs
at once for key blocks up to 32 wide, else one query row at a time). dv is
per query head (summed over the group on the host).
"""
import triton
import triton.language as tl

from .seq import chunk_location


@triton.jit
def grad_v_kernel(q, k, b, do, dh, dv, cu_seqlens, chunk_indices, scale, T,
                  H: tl.constexpr, HKV: tl.constexpr, K: tl.constexpr, V: tl.constexpr,
                  BT: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                  GATE: tl.constexpr, IS_VARLEN: tl.constexpr, PRECISION: tl.constexpr):
    i_v, i_s, hq = tl.program_id(0), tl.program_id(1), tl.program_id(2)
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
        rk = tl.arange(0, BK)
        rv = i_v * BV + tl.arange(0, BV)
        k_ok, v_ok = rk < K, rv < V
        m_k = row_ok[:, None] & k_ok[None, :]
        chunk_end = tl.minimum(ci * BT + BT, length)

        ki = tl.load(k + (seq_kv + rows[:, None]) * K + rk[None, :], mask=m_k, other=0.).to(tl.float32)
        if GATE:
            bi = tl.load(b + (seq_kv + rows[:, None]) * K + rk[None, :], mask=m_k, other=0.)
            bl = tl.load(b + (seq_kv + chunk_end - 1) * K + rk, mask=k_ok, other=0.)
            # this sub-block's last valid row: the reference for the later sub-blocks
            be = tl.load(b + (seq_kv + tl.minimum(t0 + BC, length) - 1) * K + rk, mask=k_ok, other=0.)
            kd = tl.where(row_ok[:, None], ki * tl.exp(bl[None, :] - bi), 0.)
            kr = tl.where(row_ok[:, None], ki * tl.exp(be[None, :] - bi), 0.)
        else:
            bi = tl.zeros([BC, BK], dtype=tl.float32)
            be = tl.zeros([BK], dtype=tl.float32)
            kd = ki
            kr = ki

        # through the state at the chunk's end
        dhc = tl.load(dh + (i_c * H + hq).to(tl.int64) * K * V + rk[:, None] * V + rv[None, :],
                      mask=k_ok[:, None] & v_ok[None, :], other=0.)
        acc = tl.dot(kd.to(DT), dhc.to(DT), input_precision=PRECISION)

        # later sub-blocks of the chunk (queries t > this sub-block)
        n_sub = (chunk_end - ci * BT + BC - 1) // BC
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
            A = tl.dot(qj.to(DT), tl.trans(kr.to(DT)), input_precision=PRECISION)          # [t in j, s in i]
            acc += tl.dot(tl.trans(A.to(DT)), doj.to(DT), input_precision=PRECISION)

        # the diagonal sub-block: exact pairwise decays
        if GATE and not DIAG_3D:
            for s in range(0, BC):          # one query row s at a time
                rs = t0 + s
                s_k = rk < tl.where(rs < length, K, 0)
                qs = tl.load(q + (seq_q + rs) * K + rk, mask=s_k, other=0.).to(tl.float32)
                dos = tl.load(do + (seq_q + rs) * V + rv, mask=rv < tl.where(rs < length, V, 0),
                              other=0.).to(tl.float32) * scale
                bs = tl.load(b + (seq_kv + rs) * K + rk, mask=s_k, other=0.)
                earlier = ar <= tl.where(rs < length, s, -1)       # key rows u <= s
                c = tl.sum(ki * qs[None, :] * tl.exp(tl.where(earlier[:, None], bs[None, :] - bi, 0.)), axis=1)
                acc += tl.where(earlier, c, 0.)[:, None] * dos[None, :]
        else:
            qi = tl.load(q + (seq_q + rows[:, None]) * K + rk[None, :], mask=m_k, other=0.).to(tl.float32)
            doi = tl.load(do + (seq_q + rows[:, None]) * V + rv[None, :], mask=row_ok[:, None] & v_ok[None, :],
                          other=0.).to(tl.float32) * scale
            causal = (ar[:, None] >= ar[None, :]) & row_ok[:, None]          # [t, s]
            if GATE:                        # all pairs at once: [BC, BC, BK] (small key blocks only)
                E = tl.exp(tl.where(causal[:, :, None], bi[:, None, :] - bi[None, :, :], 0.))
                A = tl.sum(qi[:, None, :] * ki[None, :, :] * E, axis=2)
            else:
                A = tl.dot(qi.to(DT), tl.trans(ki.to(DT)), input_precision=PRECISION)
            A = tl.where(causal, A, 0.)
            acc += tl.dot(tl.trans(A.to(DT)), doi.to(DT), input_precision=PRECISION)

        tl.store(dv + (seq_q + rows[:, None]) * V + rv[None, :], acc, mask=row_ok[:, None] & v_ok[None, :])
