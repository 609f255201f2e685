"""Gradient of the log-gates.

With B_t the cumulative log-gate over the whole sequence, every term of the
output and of the final state depends on B only through q_t * exp(B_t) and
k_s * exp(-B_s) (and exp(B_T) for the final state), so

    dB_t = q_t * dq_t - k_t * dk_t   (+ rowsum(h_T * dh_T) at the last row)
    dg_u = sum_{t >= u} dB_t                      (a reverse cumulative sum)

per key channel, summed over the query heads that share a key head. One
program per (sequence, key head) walks its chunks from the last to the first,
carrying the sum of everything after the chunk. A scalar gate (per head) gets
the sum over key channels.
"""
import triton
import triton.language as tl

from .seq import sequence_location


@triton.jit
def grad_gate_kernel(q, k, dq, dk, dg, dg_final, cu_seqlens, chunk_offsets, T,
                     H: tl.constexpr, HKV: tl.constexpr, K: tl.constexpr,
                     BT: tl.constexpr, BK: tl.constexpr,
                     SCALAR: tl.constexpr, USE_FINAL: tl.constexpr, IS_VARLEN: tl.constexpr):
    i_nh = tl.program_id(0)
    n, hk = i_nh // HKV, i_nh % HKV
    G: tl.constexpr = H // HKV
    batch, bos, length, c0 = sequence_location(n, cu_seqlens, chunk_offsets, T, BT, IS_VARLEN)
    rk = tl.arange(0, BK)
    k_ok = rk < K

    carry = tl.zeros([BK], dtype=tl.float32)
    if USE_FINAL:
        carry += tl.load(dg_final + (n * HKV + hk) * K + rk, mask=k_ok, other=0.)

    seq_kv = (batch * HKV + hk).to(tl.int64) * T + bos
    NT = (length + BT - 1) // BT
    for it in range(0, NT):
        ci = NT - 1 - it
        rows = ci * BT + tl.arange(0, BT)
        row_ok = rows < length
        m = row_ok[:, None] & k_ok[None, :]
        kc = tl.load(k + (seq_kv + rows[:, None]) * K + rk[None, :], mask=m, other=0.).to(tl.float32)
        d = tl.zeros([BT, BK], dtype=tl.float32)
        for g in range(0, G):
            seq_q = (batch * H + hk * G + g).to(tl.int64) * T + bos
            offs = (seq_q + rows[:, None]) * K + rk[None, :]
            qc = tl.load(q + offs, mask=m, other=0.).to(tl.float32)
            dqc = tl.load(dq + offs, mask=m, other=0.)
            dkc = tl.load(dk + offs, mask=m, other=0.)
            d += qc * dqc - kc * dkc
        total = tl.sum(d, axis=0)
        suffix = total[None, :] - tl.cumsum(d, axis=0) + d + carry[None, :]
        if SCALAR:
            tl.store(dg + seq_kv + rows, tl.sum(suffix, axis=1), mask=row_ok)
        else:
            tl.store(dg + (seq_kv + rows[:, None]) * K + rk[None, :], suffix, mask=m)
        carry += total
