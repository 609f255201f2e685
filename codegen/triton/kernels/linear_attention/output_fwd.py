"""The output pass: o for one sub-block of BC rows of one chunk, all in parallel.

    o_t = scale * [ (q_t * exp(b_t)) h[c]  +  sum_{s <= t in chunk} sum_k q_tk k_sk exp(b_tk - b_sk) v_s ]

The intra-chunk sum is split by sub-blocks so that every exponent stays <= 0:
  * earlier sub-blocks j < i: relative to r, the row before sub-block i,
    (q_i * exp(b_i - b_r)) (k_j * exp(b_r - b_j))^T, both factors in (0, 1];
  * the diagonal sub-block: exp(b_t - b_s) for s <= t exactly, all pairs at
    once for key blocks up to 32 wide, else one key row at a time.
"""
import triton
import triton.language as tl

from .seq import chunk_location


@triton.jit
def output_fwd_kernel(q, k, v, b, h, o, cu_seqlens, chunk_indices, scale, T,
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
        qk_mask = row_ok[:, None] & k_ok[None, :]

        qi = tl.load(q + (seq_q + rows[:, None]) * K + rk[None, :], mask=qk_mask, other=0.).to(tl.float32)
        if GATE:
            bi = tl.load(b + (seq_kv + rows[:, None]) * K + rk[None, :], mask=qk_mask, other=0.)
        else:
            bi = tl.zeros([BC, BK], dtype=tl.float32)
        # inter-chunk: the state at the chunk's start
        hc = tl.load(h + (i_c * H + hq).to(tl.int64) * K * V + rk[:, None] * V + rv[None, :],
                     mask=k_ok[:, None] & v_ok[None, :], other=0.)
        acc = tl.dot((qi * tl.exp(bi)).to(DT), hc.to(DT), input_precision=PRECISION)

        # earlier sub-blocks of the same chunk, relative to the row before this sub-block
        if GATE:
            br = tl.load(b + (seq_kv + t0 - 1) * K + rk, mask=rk < tl.where(i_i > 0, K, 0), other=0.)
        else:
            br = tl.zeros([BK], dtype=tl.float32)
        qr = tl.where(qk_mask, qi * tl.exp(bi - br[None, :]), 0.)
        for j in range(0, i_i):
            rj = ci * BT + j * BC + ar
            kj = tl.load(k + (seq_kv + rj[:, None]) * K + rk[None, :], mask=k_ok[None, :], other=0.).to(tl.float32)
            vj = tl.load(v + (seq_kv + rj[:, None]) * V + rv[None, :], mask=v_ok[None, :], other=0.)
            if GATE:
                bj = tl.load(b + (seq_kv + rj[:, None]) * K + rk[None, :], mask=k_ok[None, :], other=0.)
                kj = kj * tl.exp(br[None, :] - bj)
            A = tl.dot(qr.to(DT), tl.trans(kj.to(DT)), input_precision=PRECISION)
            acc += tl.dot(A.to(DT), vj.to(DT), input_precision=PRECISION)

        # the diagonal sub-block: the exact pairwise decays exp(b_t - b_s), s <= t
        if GATE and not DIAG_3D:
            for s in range(0, BC):          # one key row at a time: registers stay [BC, BK]
                rs = t0 + s
                # (a block mask `&` a scalar condition breaks Triton's interpreter: fold it into the bound)
                ks_ok = rk < tl.where(rs < length, K, 0)
                ks = tl.load(k + (seq_kv + rs) * K + rk, mask=ks_ok, other=0.).to(tl.float32)
                vs = tl.load(v + (seq_kv + rs) * V + rv, mask=rv < tl.where(rs < length, V, 0),
                             other=0.).to(tl.float32)
                bs = tl.load(b + (seq_kv + rs) * K + rk, mask=ks_ok, other=0.)
                causal = (ar >= s) & row_ok
                a = tl.sum(qi * ks[None, :] * tl.exp(tl.where(causal[:, None], bi - bs[None, :], 0.)), axis=1)
                acc += tl.where(causal, a, 0.)[:, None] * vs[None, :]
        else:
            ki = tl.load(k + (seq_kv + rows[:, None]) * K + rk[None, :], mask=qk_mask, other=0.).to(tl.float32)
            vi = tl.load(v + (seq_kv + rows[:, None]) * V + rv[None, :], mask=row_ok[:, None] & v_ok[None, :],
                         other=0.)
            causal = (ar[:, None] >= ar[None, :]) & row_ok[:, None]          # [t, s]
            if GATE:                        # all pairs at once: [BC, BC, BK] (small key blocks only)
                decay = tl.exp(tl.where(causal[:, :, None], bi[:, None, :] - bi[None, :, :], 0.))
                A = tl.sum(qi[:, None, :] * ki[None, :, :] * decay, axis=2)
            else:
                A = tl.dot(qi.to(DT), tl.trans(ki.to(DT)), input_precision=PRECISION)
            A = tl.where(causal, A, 0.)
            acc += tl.dot(A.to(DT), vi.to(DT), input_precision=PRECISION)

        tl.store(o + (seq_q + rows[:, None]) * V + rv[None, :], (acc * scale).to(o.dtype.element_ty),
                 mask=row_ok[:, None] & v_ok[None, :])
