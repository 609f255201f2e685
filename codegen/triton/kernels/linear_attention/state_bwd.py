"""The backward state pass: the gradient of the state at the end of every chunk.

The mirror image of the forward state pass, walking chunks from last to first:

    dH[c] = dS;   dS = exp(b_L) * dS + scale * (q * exp(b))^T do        (L: last row of chunk c)

starting from the final state's gradient (or zero). What is left at the end
is the gradient of the initial state.
"""
import triton
import triton.language as tl

from .seq import sequence_location


@triton.jit
def state_bwd_kernel(q, do, b, dh, dht, dh0, cu_seqlens, chunk_offsets, scale, T,
                     H: tl.constexpr, HKV: tl.constexpr, K: tl.constexpr, V: tl.constexpr,
                     BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                     GATE: tl.constexpr, USE_DHT: tl.constexpr, STORE_DH0: tl.constexpr,
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

    dS = tl.zeros([BK, BV], dtype=tl.float32)
    if USE_DHT:
        dS += tl.load(dht + (n * H + hq).to(tl.int64) * K * V + state_offs, mask=state_mask, other=0.)

    seq_q = (batch * H + hq).to(tl.int64) * T + bos
    seq_kv = (batch * HKV + hk).to(tl.int64) * T + bos
    NT = (length + BT - 1) // BT
    for it in range(0, NT):
        ci = NT - 1 - it
        tl.store(dh + ((c0 + ci) * H + hq).to(tl.int64) * K * V + state_offs, dS, mask=state_mask)
        rows = ci * BT + tl.arange(0, BT)
        row_ok = rows < length
        qc = tl.load(q + (seq_q + rows[:, None]) * K + rk[None, :],
                     mask=row_ok[:, None] & k_ok[None, :], other=0.).to(tl.float32)
        doc = tl.load(do + (seq_q + rows[:, None]) * V + rv[None, :], mask=row_ok[:, None] & v_ok[None, :], other=0.)
        if GATE:
            last = tl.minimum(ci * BT + BT, length) - 1
            bc = tl.load(b + (seq_kv + rows[:, None]) * K + rk[None, :], mask=row_ok[:, None] & k_ok[None, :],
                         other=0.)
            bl = tl.load(b + (seq_kv + last) * K + rk, mask=k_ok, other=0.)
            qc = qc * tl.exp(bc)
            dS = dS * tl.exp(bl)[:, None]
        dS += tl.dot(tl.trans((qc * scale).to(doc.dtype)), doc, input_precision=PRECISION)
    if STORE_DH0:
        tl.store(dh0 + (n * H + hq).to(tl.int64) * K * V + state_offs, dS, mask=state_mask)
