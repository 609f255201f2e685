"""Fused recurrent decode: a few new tokens against the state, updated in place.

    S = exp(g_t) * S + k_t^T v_t;   o_t = scale * q_t S        for each new token t

One program per (value block, batch x query head) keeps its [K, BV] slice of
the fp32 state in registers for all tokens and writes it back once, so decode
costs one read and one write of the state per call.
"""
import triton
import triton.language as tl


@triton.jit
def recurrent_step_kernel(q, k, v, g, state, o, scale, T,
                          H: tl.constexpr, HKV: tl.constexpr, K: tl.constexpr, V: tl.constexpr,
                          BK: tl.constexpr, BV: tl.constexpr, GATE: tl.constexpr, SCALAR: tl.constexpr):
    i_v, i_bh = tl.program_id(0), tl.program_id(1)
    bidx, hq = i_bh // H, i_bh % H
    hk = hq // (H // HKV)
    rk = tl.arange(0, BK)
    rv = i_v * BV + tl.arange(0, BV)
    k_ok, v_ok = rk < K, rv < V
    state_ptr = state + i_bh.to(tl.int64) * K * V + rk[:, None] * V + rv[None, :]
    state_mask = k_ok[:, None] & v_ok[None, :]
    S = tl.load(state_ptr, mask=state_mask, other=0.).to(tl.float32)
    seq_q = (bidx * H + hq).to(tl.int64) * T
    seq_kv = (bidx * HKV + hk).to(tl.int64) * T
    for t in range(0, T):
        qt = tl.load(q + (seq_q + t) * K + rk, mask=k_ok, other=0.).to(tl.float32)
        kt = tl.load(k + (seq_kv + t) * K + rk, mask=k_ok, other=0.).to(tl.float32)
        vt = tl.load(v + (seq_kv + t) * V + rv, mask=v_ok, other=0.).to(tl.float32)
        if GATE:
            if SCALAR:
                S = S * tl.exp(tl.load(g + seq_kv + t).to(tl.float32))
            else:
                gt = tl.load(g + (seq_kv + t) * K + rk, mask=k_ok, other=0.).to(tl.float32)
                S = S * tl.exp(gt)[:, None]
        S += kt[:, None] * vt[None, :]
        ot = tl.sum(qt[:, None] * S, axis=0) * scale
        tl.store(o + (seq_q + t) * V + rv, ot.to(o.dtype.element_ty), mask=v_ok)
    tl.store(state_ptr, S.to(state.dtype.element_ty), mask=state_mask)
