"""Grouped GEMM over rows sorted by group (expert), each group padded to BM rows.

`row_ids[r]` names the row that padded position r stands for (-1: padding) and
`block_group[i]` the group (expert) of the i-th block of BM positions. Each
program computes one [BM, BN] tile of

    out[row_ids[r]] = x[row_ids[r] // ROW_DIV] @ w[g]^T  (* row_weight[row_ids[r]])

gathering its rows of x and scattering its rows of out, so callers never
materialise the sorted copy. For MoE, rows are (token, choice) slots and
ROW_DIV = top_k maps a slot to its token. w is in nn.Linear layout [G, N, K]
(any strides).
"""
import triton
import triton.language as tl


@triton.jit
def grouped_gemm_kernel(x, w, out, row_ids, block_group, row_weight, N, K,
                        stride_xm, stride_wg, stride_wn, stride_wk, stride_om,
                        ROW_DIV: tl.constexpr, HAS_WEIGHT: tl.constexpr,
                        BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, PRECISION: tl.constexpr):
    pid_m, pid_n = tl.program_id(0), tl.program_id(1)
    g = tl.load(block_group + pid_m)
    if g >= 0:
        rm = pid_m * BM + tl.arange(0, BM)
        ids = tl.load(row_ids + rm)
        ok = ids >= 0
        src = tl.where(ok, ids // ROW_DIV, 0).to(tl.int64)
        rn = pid_n * BN + tl.arange(0, BN)
        n_ok = rn < N
        w_g = w + g.to(tl.int64) * stride_wg
        acc = tl.zeros([BM, BN], dtype=tl.float32)
        for k0 in range(0, K, BK):
            rk = k0 + tl.arange(0, BK)
            k_ok = rk < K
            a = tl.load(x + src[:, None] * stride_xm + rk[None, :], mask=ok[:, None] & k_ok[None, :], other=0.)
            b = tl.load(w_g + rn[None, :] * stride_wn + rk[:, None] * stride_wk, mask=k_ok[:, None] & n_ok[None, :],
                        other=0.)
            acc += tl.dot(a, b.to(a.dtype), input_precision=PRECISION)
        if HAS_WEIGHT:
            acc = acc * tl.load(row_weight + ids, mask=ok, other=0.).to(tl.float32)[:, None]
        dst = tl.where(ok, ids, 0).to(tl.int64)
        tl.store(out + dst[:, None] * stride_om + rn[None, :], acc.to(out.dtype.element_ty),
                 mask=ok[:, None] & n_ok[None, :])
