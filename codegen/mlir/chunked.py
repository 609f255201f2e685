"""Loop-free torch forms of the fused ops, written so torch-mlir lowers them for any T:
no while_loop / scan (torch-mlir miscompiles or rejects them), only batched products,
masks and cumulative sums over a padded, chunked time axis.

linear_attention, per head, chunk length C, cumulative in-chunk log-decay b:
  intra   o_t += Σ_{s<=t in chunk} (q_t e^{b_t})·(k_s e^{-b_s}) v_s
  U_n      = Σ_s (k_s e^{b_C - b_s})ᵀ v_s                       (what chunk n adds to the state)
  S_before(n) = Σ_{m<n} e^{E_n - Bc_m} ⊙ U_m + e^{E_n} ⊙ S_0     (Bc: log-decay through chunk m,
                                                                  E_n: before chunk n; E_n - Bc_m <= 0)
  inter   o_t += (q_t e^{b_t}) S_before(n)
The inter-chunk sum is one masked [N, N] product per key channel instead of a loop.
A scalar gate uses the exact pairwise decay e^{b_t - b_s}; a per-channel gate splits it into
e^{b_t}·e^{-b_s}, so in f32 its cumulative log-decay inside one chunk must stay above about -80.
The key-tied gate (decay 1 - k, any sign) has no log form; it runs a pairwise O(T²·K) form.
"""
from __future__ import annotations

import torch


def _repeat_heads(x, heads: int):
    if x is None or x.shape[1] == heads:
        return x
    B, Hkv = x.shape[0], x.shape[1]
    rest = x.shape[2:]
    return x.unsqueeze(2).expand(B, Hkv, heads // Hkv, *rest).reshape(B, heads, *rest)


def linear_attention_chunked(q, k, v, gate=None, initial_state=None, gate_kind: str = "none", scale: float = 1.0,
                             chunk: int = 64):
    """Returns (o [B,H,T,V], final state [B,H,K,V]); matches ir.ops_fused.linear_attention_reference."""
    B, H, T, K = q.shape
    V = v.shape[-1]
    k, v, gate = (_repeat_heads(x, H) for x in (k, v, gate))
    C = chunk
    N = (T + C - 1) // C                             # no `%` on sizes: torch-mlir cannot lower aten.fmod.int

    def chunks(x):                                   # [B, H, T, D] -> [B, H, N, C, D], zero-padded
        # append C zeros and cut at N*C: no pad or allocation of run-time length, which
        # stablehlo cannot lower
        x = torch.cat([x, x.new_zeros(B, H, C, x.shape[-1])], dim=2)[:, :, :N * C]
        return x.reshape(B, H, N, C, x.shape[-1])

    if gate_kind == "key_tied":
        return _key_tied_pairwise(q, k, v, initial_state, scale)
    g = None if gate_kind == "none" else (gate.unsqueeze(-1) if gate_kind == "scalar" else gate)
    qc, kc, vc = chunks(q) * scale, chunks(k), chunks(v)
    causal = (torch.arange(C, device=q.device)[:, None] >= torch.arange(C, device=q.device)[None, :]).to(q.dtype)
    n = torch.arange(N, device=q.device)
    strict = (n[:, None] > n[None, :]).to(q.dtype)                      # [N, M]: 1 where m < n
    # Cumulative sums are products with triangular masks: stablehlo has no cumsum lowering.
    if g is None:
        q_state, kd = qc, kc
        scores = (qc @ kc.transpose(-1, -2)) * causal
    else:
        b = causal @ chunks(g)                       # in-chunk cumulative log-decay
        bC = b[:, :, :, C - 1:C]                     # [B, H, N, 1, Kg]
        q_state, kd = qc * b.exp(), kc * (bC - b).exp()          # both factors <= 1
        if gate_kind == "scalar":
            # exact pairwise decay e^{b_t - b_s} (C x C per head): stable for any decay
            pair = (b - b.transpose(-1, -2)).masked_fill(causal == 0, float("-inf")).exp()
            scores = (qc @ kc.transpose(-1, -2)) * pair
        else:
            scores = (q_state @ (kc * (-b).exp()).transpose(-1, -2)) * causal
    o = scores @ vc
    U = kd.transpose(-1, -2) @ vc                    # [B, H, N, K, V]
    if g is None:
        before = (strict @ U.reshape(B, H, N, -1)).reshape(U.shape)
        final = U.sum(2)
        if initial_state is not None:
            before = before + initial_state.unsqueeze(2)
            final = final + initial_state
    else:
        Lc = bC.squeeze(3)                           # log-decay of each whole chunk [B, H, N, Kg]
        Bc = (strict + torch.eye(N, dtype=q.dtype, device=q.device)) @ Lc   # through the end of chunk n
        E = Bc - Lc                                                          # before chunk n
        W = (E.unsqueeze(3) - Bc.unsqueeze(2)).masked_fill(strict.unsqueeze(-1) == 0, float("-inf")).exp()
        before = (W.permute(0, 1, 4, 2, 3) @ U.permute(0, 1, 3, 2, 4)).permute(0, 1, 3, 2, 4)
        wf = (Bc[:, :, N - 1:N] - Bc).exp()          # decay from the end of chunk m to the end
        final = (wf.unsqueeze(-1) * U).sum(2)
        if initial_state is not None:
            before = before + E.exp().unsqueeze(-1) * initial_state.unsqueeze(2)
            final = final + Bc[:, :, N - 1:N].exp().transpose(-1, -2) * initial_state   # slice, not select(N-1)
    o = o + q_state @ before
    o = o.reshape(B, H, N * C, V)[:, :, :T]
    return o, final


def masked_attention(q, k, v, scale: float, causal: bool, window: int):
    """softmax(q kᵀ·scale, masked) v; queries are the last Tq of Tk positions; window <= 0: none."""
    H, Tq, Tk = q.shape[1], q.shape[2], k.shape[2]
    k, v = _repeat_heads(k, H), _repeat_heads(v, H)
    scores = (q @ k.transpose(-1, -2)) * scale
    if causal or window > 0:
        i = torch.arange(Tq, device=q.device)[:, None] + (Tk - Tq)
        j = torch.arange(Tk, device=q.device)[None, :]
        allowed = j <= i
        if window > 0:
            allowed = allowed & (j > i - window)
        scores = scores.masked_fill(~allowed, float("-inf"))
    return scores.softmax(-1) @ v


def _key_tied_pairwise(q, k, v, initial_state, scale: float):
    """decay_t = 1 - k_t per key channel, of any sign: products of decays over (s, t] from
    cumulative sums of log|d|, of negative signs and of zeros, for every pair s <= t."""
    B, H, T, K = q.shape
    d = 1 - k
    zero = d == 0
    logabs = torch.where(zero, torch.ones_like(d), d).abs().log()
    t = torch.arange(T, device=q.device)
    incl = (t[:, None] >= t[None, :]).to(q.dtype)                  # [T, S]: s <= t
    La, Ln, Lz = (incl @ x for x in (logabs, (d < 0).to(q.dtype), zero.to(q.dtype)))   # inclusive cumsums

    def between(a, b):                                               # prod over (s, t]: [B, H, T, S, K]
        count_neg = a[0].unsqueeze(3) - b[0].unsqueeze(2)
        sign = 1 - 2 * (count_neg - 2 * torch.floor(count_neg / 2))
        alive = (a[1].unsqueeze(3) - b[1].unsqueeze(2)) == 0
        return torch.where(alive, sign * (a[2].unsqueeze(3) - b[2].unsqueeze(2)).exp(), torch.zeros_like(sign))

    D = between((Ln, Lz, La), (Ln, Lz, La))
    qs = q * scale
    A = (qs.unsqueeze(3) * D * k.unsqueeze(2)).sum(-1) * incl        # [B, H, T, S]
    o = A @ v
    last = (slice(None), slice(None), slice(T - 1, T))
    Dlast = between((Ln[last], Lz[last], La[last]), (Ln, Lz, La))[:, :, 0]   # [B, H, S, K]
    final = (Dlast * k).transpose(-1, -2) @ v
    if initial_state is not None:
        sign = 1 - 2 * (Ln - 2 * torch.floor(Ln / 2))
        P = torch.where(Lz == 0, sign * La.exp(), torch.zeros_like(La))          # prod over [0, t]
        o = o + (qs * P) @ initial_state
        final = final + P[:, :, T - 1:T].transpose(-1, -2) * initial_state     # a slice: select(T-1) fixes T
    return o, final
