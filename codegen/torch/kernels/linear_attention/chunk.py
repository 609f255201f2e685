"""Chunked gated linear attention: forward and a handwritten backward.

Canonical form as in naive.py. The sequence is padded to a multiple of the
chunk C (padding has k = v = 0 and g = 0, so it changes nothing) and cut into
chunks; inside a chunk b is the local inclusive cumsum of g, Λ = b at the
chunk's end.

Forward, per chunk (S_prev = state before the chunk):
    o      = A v + (q ⊙ exp(b)) S_prev                     A[i,j] = Σ_K q_iK k_jK exp(b_iK - b_jK), j ≤ i
    S_next = exp(Λ) ⊙ S_prev + (k ⊙ exp(Λ - b))ᵀ v
Only the state update runs as a loop over chunks; everything else is batched.

Stability: no exp(+x)·exp(-x) pairs. Every factor above is exp of a
non-positive number when g <= 0. A is built by halving (see _Decay): the pairs
between the two halves of a block use the log decay at the split as reference,
q_i exp(b_i - b_m) and k_j exp(b_m - b_j), both <= 1; the halves recurse down
to the diagonal. O(T·K·log C) exps and one batched matmul per level.

Backward (dA = tril(do vᵀ); dS_after = gradient of the state after each chunk,
run backwards over chunks: dS_before = exp(Λ) ⊙ dS_after + (q ⊙ exp(b))ᵀ do):
    dq = intra(dA, k) + (do S_prevᵀ) ⊙ exp(b)
    dk = intra(dAᵀ, q) + (v dS_afterᵀ) ⊙ exp(Λ - b)
    dv = Aᵀ do + (k ⊙ exp(Λ - b)) dS_after
    dg_t = Σ_{t' ≥ t} (q ⊙ dq - k ⊙ dk)_t' + Σ_V (dS_T ⊙ S_T)      (the last term if S_T is an output)
    dS_0 = dS_before of the first chunk
The dg identity holds because b enters only as exp(b_t - b_s) (query side +,
key side -) and through the final state exp(b_T) (whose derivative is S_T).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


class _Decay:
    """Decay factors of one chunked layout, g [B, H, N, C, K'] (K' = K or 1), C a power of two.

    The intra-chunk scores are built by halving: a block of s rows is split at its
    middle m, and the pairs (i in the second half, j in the first) get
        exp(b_i - b_j) = exp(b_i - b_m) · exp(b_m - b_j),
    both factors <= 1 for non-positive gates; the halves recurse down to single
    rows (the diagonal, decay 1). Level by level (s = C, C/2, .., 2) that is one
    batched matmul per level and O(T·K·log C) exps."""

    def __init__(self, g: torch.Tensor):
        C = g.shape[-2]
        self.b = g.cumsum(-2)                                    # inclusive, chunk-local
        self.lam = self.b[..., -1:, :]                           # [.., 1, K']
        self.levels = []                                         # (half, q factor, k factor) per level
        s = C
        while s >= 2:
            h = s // 2
            bs = self.b.unflatten(-2, (C // s, 2, h))            # [.., blocks, half, h, K']
            ref = bs[..., 0, h - 1:, :]                          # b at the split: [.., blocks, 1, K']
            self.levels.append((h, (bs[..., 1, :, :] - ref).exp(), (ref - bs[..., 0, :, :]).exp()))
            s = h


def _halves(x, h: int):
    """[.., C, D] -> (second halves, first halves) of the blocks of 2h rows: each [.., C/2h, h, D]."""
    xs = x.unflatten(-2, (x.shape[-2] // (2 * h), 2, h))
    return xs[..., 1, :, :], xs[..., 0, :, :]


def _quadrant(A, h: int):
    """The view of A [.., C, C] holding rows of second halves x columns of first halves,
    as [.., C/2h, h, h]."""
    C = A.shape[-1]
    nb = C // (2 * h)
    blocks = A.unflatten(-1, (nb, 2, h)).unflatten(-4, (nb, 2, h)).diagonal(dim1=-6, dim2=-3)   # [.., 2, h, 2, h, nb]
    return blocks.select(-5, 1).select(-3, 0).movedim(-1, -3)


def _intra_scores(q, k, dec: _Decay | None):
    """A [.., C, C]: the causal (j <= i) decayed scores inside each chunk."""
    if dec is None:
        return (q @ k.transpose(-1, -2)).tril()
    A = q.new_zeros(*q.shape[:-1], q.shape[-2])
    A.diagonal(dim1=-2, dim2=-1).copy_((q * k).sum(-1))
    for h, fq, fk in dec.levels:
        (q2, _), (_, k1) = _halves(q, h), _halves(k, h)
        _quadrant(A, h).copy_((q2 * fq) @ (k1 * fk).transpose(-1, -2))
    return A


def _intra_grads(dA, q, k, dec: _Decay | None):
    """(dq, dk) of the intra-chunk scores, given dA (zero above the diagonal)."""
    if dec is None:
        return dA @ k, dA.transpose(-1, -2) @ q
    diag = dA.diagonal(dim1=-2, dim2=-1)[..., None]
    dq, dk = diag * k, diag * q
    for h, fq, fk in dec.levels:
        (q2, _), (_, k1) = _halves(q, h), _halves(k, h)
        dAq = _quadrant(dA, h)
        _halves(dq, h)[0].add_((dAq @ (k1 * fk)) * fq)
        _halves(dk, h)[1].add_((dAq.transpose(-1, -2) @ (q2 * fq)) * fk)
    return dq, dk


def _chunked(x, pad: int, C: int):
    """[B, H, T, D] -> [B, H, N, C, D], zero padding at the end of time."""
    if x is None:
        return None
    if pad:
        x = F.pad(x, (0, 0, 0, pad))
    return x.unflatten(2, (x.shape[2] // C, C))


class _Layout:
    """Inputs in chunks plus the decay factors (rebuilt in backward rather than saved)."""

    def __init__(self, q, k, v, g, C: int):
        self.T = q.shape[2]
        self.pad = (-self.T) % C
        self.q, self.k, self.v, self.g = (_chunked(x, self.pad, C) for x in (q, k, v, g))
        self.dec = _Decay(self.g) if g is not None else None
        if self.dec is None:
            self.q_in, self.k_out, self.chunk_decay = self.q, self.k, None
        else:
            self.q_in = self.q * self.dec.b.exp()                        # q ⊙ exp(b)
            self.k_out = self.k * (self.dec.lam - self.dec.b).exp()      # k ⊙ exp(Λ - b)
            self.chunk_decay = self.dec.lam.squeeze(-2).exp()[..., None]  # [B, H, N, K', 1]

    def unchunk(self, x):
        return x.flatten(2, 3)[:, :, :self.T]


def _forward(L: _Layout, s0):
    B, H, N, C, K = L.q.shape
    V = L.v.shape[-1]
    A = _intra_scores(L.q, L.k, L.dec)
    o = A @ L.v
    kv = L.k_out.transpose(-1, -2) @ L.v                          # [B, H, N, K, V]: each chunk's addition
    S = L.q.new_zeros(B, H, K, V) if s0 is None else s0
    before = []
    for n in range(N):
        before.append(S)
        S = (S * L.chunk_decay[:, :, n] if L.chunk_decay is not None else S) + kv[:, :, n]
    states = torch.stack(before, 2)                              # [B, H, N, K, V]
    o = o + L.q_in @ states
    return A, o, states, S


class ChunkLinearAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, g, s0, chunk_size: int):
        L = _Layout(q, k, v, g, chunk_size)
        _, o, states, S = _forward(L, s0)
        ctx.save_for_backward(q, k, v, g, s0, states, S)
        ctx.chunk_size = chunk_size
        ctx.set_materialize_grads(False)
        return L.unchunk(o), S

    @staticmethod
    def backward(ctx, do, dS_final):
        q, k, v, g, s0, states, S_final = ctx.saved_tensors
        L = _Layout(q, k, v, g, ctx.chunk_size)
        B, H, N, C, K = L.q.shape
        V = L.v.shape[-1]
        do = _chunked(do if do is not None else torch.zeros_like(v), L.pad, C)
        A = _intra_scores(L.q, L.k, L.dec)
        # gradient of the state after each chunk, run backwards over chunks
        q_do = L.q_in.transpose(-1, -2) @ do                        # [B, H, N, K, V]
        dS = dS_final if dS_final is not None else q.new_zeros(B, H, K, V)
        after = [None] * N
        for n in range(N - 1, -1, -1):
            after[n] = dS
            dS = (dS * L.chunk_decay[:, :, n] if L.chunk_decay is not None else dS) + q_do[:, :, n]
        dS_after = torch.stack(after, 2)
        dA = (do @ L.v.transpose(-1, -2)).tril()
        dq, dk = _intra_grads(dA, L.q, L.k, L.dec)
        dq_inter = do @ states.transpose(-1, -2)
        dk_state = L.v @ dS_after.transpose(-1, -2)
        if L.dec is not None:
            dq_inter = dq_inter * L.dec.b.exp()
            dk_state = dk_state * (L.dec.lam - L.dec.b).exp()
        dq, dk = dq + dq_inter, dk + dk_state
        dv = A.transpose(-1, -2) @ do + L.k_out @ dS_after
        dg = None
        if g is not None and ctx.needs_input_grad[3]:
            db = L.q * dq - L.k * dk
            if g.shape[-1] == 1:
                db = db.sum(-1, keepdim=True)
            db = db.flatten(2, 3)
            dg = db.flip(2).cumsum(2).flip(2)                      # Σ over t' >= t
            if dS_final is not None:
                last = (dS_final * S_final).sum(-1)                  # [B, H, K]
                dg = dg + (last.sum(-1, keepdim=True) if g.shape[-1] == 1 else last)[:, :, None, :]
            dg = dg[:, :, :L.T]
        ds0 = dS if s0 is not None else None
        return L.unchunk(dq), L.unchunk(dk), L.unchunk(dv), dg, ds0, None


def chunk_linear_attention(q, k, v, g=None, initial_state=None, chunk_size: int = 64):
    """(o, final state) of the canonical form; `chunk_size` a power of two."""
    if chunk_size < 1 or chunk_size & (chunk_size - 1):
        raise ValueError(f"chunk_size must be a power of two, got {chunk_size}")
    return ChunkLinearAttention.apply(q, k, v, g, initial_state, chunk_size)
