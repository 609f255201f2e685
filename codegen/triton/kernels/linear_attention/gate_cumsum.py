"""Chunk-local cumulative log-gates: b_t = sum of g_s for s <= t within t's chunk.

Every later kernel works with differences of these sums (b_t - b_s over at
most one chunk), never with products of decays, so nothing overflows or
underflows through a long sequence. A scalar (per head) gate is broadcast over
the key channels here, so the other kernels see one layout: fp32 [.., T, K].
"""
import triton
import triton.language as tl

from .seq import chunk_location


@triton.jit
def gate_cumsum_kernel(g, b, cu_seqlens, chunk_indices, T,
                       HKV: tl.constexpr, K: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr,
                       SCALAR: tl.constexpr, IS_VARLEN: tl.constexpr):
    i_c, i_h = tl.program_id(0), tl.program_id(1)
    n, ci, batch, bos, length = chunk_location(i_c, cu_seqlens, chunk_indices, T, BT, IS_VARLEN)
    rows = ci * BT + tl.arange(0, BT)
    cols = tl.arange(0, BK)
    row_ok = rows < length
    seq = (batch * HKV + i_h).to(tl.int64) * T + bos
    if SCALAR:
        gs = tl.load(g + seq + rows, mask=row_ok, other=0.).to(tl.float32)
        gk = gs[:, None] + tl.zeros([BT, BK], dtype=tl.float32)
    else:
        offs = (seq + rows[:, None]) * K + cols[None, :]
        gk = tl.load(g + offs, mask=row_ok[:, None] & (cols[None, :] < K), other=0.).to(tl.float32)
    bk = tl.cumsum(gk, axis=0)
    out = (seq + rows[:, None]) * K + cols[None, :]
    tl.store(b + out, bk, mask=row_ok[:, None] & (cols[None, :] < K))
