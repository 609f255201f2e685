"""Gated linear attention (GLA) recurrence, three ways that must agree.

All functions take head-first tensors:
  q, k: [B, H, T, K]   v: [B, H, T, V]   g: [B, H, T, K] (log of the per-key-channel decay, <= 0)
and compute, per head,
  S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t
  o_t = (q_t * scale) S_t
with S: [B, H, K, V]. They return (o: [B, H, T, V], final_state: [B, H, K, V]).

- ``gla_naive``: the recurrence as a Python loop over time (what a researcher writes first).
- ``gla_chunk``: chunkwise-parallel form; the inter-chunk recurrence is also done with masked
  tensors (no Python loop over chunks), so it traces with a symbolic sequence length.
- ``gla_step``: one token of the recurrence, for decoding with an explicit state.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _zero_state(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    B, H, _, K = q.shape
    return q.new_zeros(B, H, K, v.shape[-1])


def gla_step(q_t, k_t, v_t, g_t, state, scale: float):
    """One step. q_t, k_t, g_t: [B, H, K]; v_t: [B, H, V]; state: [B, H, K, V]."""
    state = state * g_t.exp().unsqueeze(-1) + k_t.unsqueeze(-1) * v_t.unsqueeze(-2)
    o_t = ((q_t * scale).unsqueeze(-2) @ state).squeeze(-2)
    return o_t, state


def gla_naive(q, k, v, g, scale: float, initial_state=None):
    """Token-by-token loop. Specialises T when traced (the loop is unrolled)."""
    state = _zero_state(q, v) if initial_state is None else initial_state
    outs = []
    for t in range(q.shape[2]):
        o_t, state = gla_step(q[:, :, t], k[:, :, t], v[:, :, t], g[:, :, t], state, scale)
        outs.append(o_t)
    return torch.stack(outs, dim=2), state


def segsum(x: torch.Tensor, dim: int, exclusive: bool = False) -> torch.Tensor:
    """Pairwise segment sums along ``dim`` (size N), inserted as a new axis after it.

    out[..., i, j, ...] = sum_{l=j+1..i} x[..., l, ...] for j <= i, and -inf for j > i.
    With ``exclusive`` the sum stops at i-1 and the diagonal is -inf too (strictly j < i).
    Built as a masked cumsum rather than as a difference of prefix sums, so long
    sequences with strong decay do not lose precision to cancellation.
    """
    dim = dim % x.dim()
    n = x.shape[dim]
    xi = x.unsqueeze(dim + 1)                                   # [..., N(i), 1, ...]
    xi = xi.expand(*x.shape[: dim + 1], n, *x.shape[dim + 1:])  # [..., N(i), N(j), ...]
    idx = torch.arange(n, device=x.device)
    shape = [1] * xi.dim()
    shape[dim], shape[dim + 1] = n, n
    strict = (idx[:, None] > idx[None, :]).reshape(shape)       # keep x_i only where i > j
    out = torch.where(strict, xi, torch.zeros((), dtype=x.dtype, device=x.device)).cumsum(dim)
    if exclusive:
        out, keep = out - xi, strict
    else:
        keep = (idx[:, None] >= idx[None, :]).reshape(shape)
    return torch.where(keep, out, torch.full((), float("-inf"), dtype=x.dtype, device=x.device))


def gla_chunk(q, k, v, g, scale: float, initial_state=None, chunk_size: int = 16):
    """Chunkwise-parallel GLA. Exact (up to rounding) for any T.

    T is padded with k = v = 0 and g = 0 (decay 1), which leaves the state untouched, up to
    ceil(T/C) + 1 chunks: the extra chunk keeps the chunk count >= 2 and the padding > 0
    for every T, so ``torch.export`` with a symbolic T needs no guard on either.
    """
    B, H, T, K = q.shape
    Vd = v.shape[-1]
    C = chunk_size
    N = (T + C - 1) // C + 1
    pad = N * C - T
    q, k, v, g = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v, g))
    # Gather (not reshape) T into chunks: with a symbolic T a reshape needs a divisibility
    # guard the exporter cannot prove; an index of shape [N, C] needs none.
    chunk_idx = torch.arange(N, device=q.device)[:, None] * C + torch.arange(C, device=q.device)
    q, k, v, g = (t[:, :, chunk_idx] for t in (q, k, v, g))                 # [B,H,N,C,D]
    q = q * scale

    G = g.cumsum(-2)                       # inclusive log-decay from chunk start, [B,H,N,C,K]
    G_end = G[..., -1, :]                  # total log-decay of each chunk, [B,H,N,K]

    # Intra-chunk: A_ij = sum_k q_ik k_jk exp(sum_{l=j+1..i} g_lk), causal within the chunk.
    decay_ij = segsum(g, dim=-2).exp()     # [B,H,N,C(i),C(j),K]
    A = (q.unsqueeze(-2) * k.unsqueeze(-3) * decay_ij).sum(-1)
    o = A @ v

    # What each chunk adds to the state by its end: sum_j exp(G_end - G_j) k_j^T v_j.
    k_to_end = k * (G_end.unsqueeze(-2) - G).exp()
    dS = k_to_end.transpose(-1, -2) @ v    # [B,H,N,K,V]

    # State entering chunk n: masked sum over earlier chunks m < n, each decayed by the
    # chunks strictly between them (plus the initial state decayed by all chunks before n).
    decay_nm = segsum(G_end, dim=-2, exclusive=True).exp()        # [B,H,N(n),N(m),K]
    # sum_m decay[n,m,k] dS[m,k,:] as a matmul batched over k (never materialises [N,N,K,V])
    S_in = (decay_nm.permute(0, 1, 4, 2, 3) @ dS.transpose(2, 3)).transpose(2, 3)   # [B,H,N,K,V]
    if initial_state is not None:
        G_before = G_end.cumsum(-2) - G_end                       # log-decay of chunks < n
        S_in = S_in + G_before.exp().unsqueeze(-1) * initial_state.unsqueeze(2)

    o = o + (q * G.exp()) @ S_in
    o = o.reshape(B, H, -1, Vd)
    o = o.index_select(2, torch.arange(T, device=o.device))      # a gather, not a guarded slice
    final = S_in[:, :, -1] * G_end[:, :, -1].exp().unsqueeze(-1) + dS[:, :, -1]
    return o, final
