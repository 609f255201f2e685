"""The state pass: the recurrent state at the start of every chunk.

One program per (key block, value block, sequence x head) walks its sequence
chunk by chunk, the only sequential part of chunked linear attention:

    h[c] = S;   S = exp(b_L) * S + (k * exp(b_L - b))^T v        (L: last row of chunk c)

The exponents b_L - b_t and b_L are sums of log-gates over one chunk, <= 0 for
decays, so each factor lies in (0, 1]. States are kept in fp32.
"""
import triton
import triton.language as tl

from .seq import sequence_location


@triton.jit
def state_fwd_kernel(k, v, b, h, h0, ht, cu_seqlens, chunk_offsets, T,
                     H: tl.constexpr, HKV: tl.constexpr, K: tl.constexpr, V: tl.constexpr,
                     BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                     GATE: tl.constexpr, USE_H0: tl.constexpr, STORE_HT: tl.constexpr,
                     IS_VARLEN: tl.constexpr, PRECISION: tl.constexpr):
    i_k, i_v, i_nh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    n, hq = i_nh // H, i_nh % H
    hk = hq // (H // HKV)
    batch, bos, length, c0 = sequence_location(n, cu_seqlens, chunk_offsets, T, BT, IS_VARLEN)

    rk = i_k * BK + tl.arange(0, BK)
    rv = i_v * BV + tl.arange(0, BV)
    k_ok, v_ok = rk < K, rv < V
    state_offs = rk[:, None] * V + rv[None, :]
    state_mask = k_ok[:, None] & v_ok[None, :]

    S = tl.zeros([BK, BV], dtype=tl.float32)
    if USE_H0:
        S += tl.load(h0 + (n * H + hq).to(tl.int64) * K * V + state_offs, mask=state_mask, other=0.).to(tl.float32)

    seq_kv = (batch * HKV + hk).to(tl.int64) * T + bos
    NT = (length + BT - 1) // BT
    for ci in range(0, NT):
        tl.store(h + ((c0 + ci) * H + hq).to(tl.int64) * K * V + state_offs, S, mask=state_mask)
        rows = ci * BT + tl.arange(0, BT)
        row_ok = rows < length
        kc = tl.load(k + (seq_kv + rows[:, None]) * K + rk[None, :],
                     mask=row_ok[:, None] & k_ok[None, :], other=0.).to(tl.float32)
        vc = tl.load(v + (seq_kv + rows[:, None]) * V + rv[None, :], mask=row_ok[:, None] & v_ok[None, :], other=0.)
        if GATE:
            last = tl.minimum(ci * BT + BT, length) - 1
            bc = tl.load(b + (seq_kv + rows[:, None]) * K + rk[None, :], mask=row_ok[:, None] & k_ok[None, :],
                         other=0.)
            bl = tl.load(b + (seq_kv + last) * K + rk, mask=k_ok, other=0.)
            kc = tl.where(row_ok[:, None], kc * tl.exp(bl[None, :] - bc), 0.)
            S = S * tl.exp(bl)[:, None]
        S += tl.dot(tl.trans(kc.to(vc.dtype)), vc, input_precision=PRECISION)
    if STORE_HT:
        tl.store(ht + (n * H + hq).to(tl.int64) * K * V + state_offs, S, mask=state_mask)
