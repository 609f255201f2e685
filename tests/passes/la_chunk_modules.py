"""Chunkwise linear attention written the ways researchers write it, and near misses.

- ``ChunkLoop``: a Python loop over chunks (intra-chunk masked product, state carried
  from chunk to chunk), gate none / scalar (per head) / channel (per key) / key-tied
  (decay 1 - k, its log taken inside), the intra-chunk decay factorised
  ((q e^G)(k e^-G)ᵀ) or pairwise (exp(G_i - G_j) per channel); optional initial and
  final state.
- ``ChunkGather``: every chunk at once, chunks gathered from a zero-padded sequence
  (the sequence length may stay symbolic), the state entering each chunk as a masked
  product over the earlier chunks, with a cumsum of chunk decays.

``flaw`` turns either into a near miss that must not be fused:
  noncausal    no mask inside a chunk (the mask forgotten)
  strict       the diagonal masked too (j < i)
  anti_causal  the mask flipped (j >= i)
  gate_on_v    the state update decays v instead of k
  stale_state  a chunk reads the state after its own update
They never import spikec.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _intra_mask(c: int, flaw: str | None) -> torch.Tensor | None:
    """Which (i, j) of a chunk may interact; None: no mask at all (the non-causal flaw)."""
    i = torch.arange(c)
    if flaw == "noncausal":
        return None
    if flaw == "strict":
        return i[:, None] > i[None, :]
    if flaw == "anti_causal":
        return i[:, None] <= i[None, :]
    return i[:, None] >= i[None, :]


def _keep(x: torch.Tensor, mask: torch.Tensor | None, fill: float) -> torch.Tensor:
    """x where the mask allows, `fill` elsewhere (x itself without a mask)."""
    return x if mask is None else x.masked_fill(~mask, fill)


class _Heads(nn.Module):
    def __init__(self, d: int, heads: int, head_dim: int, gate: str):
        super().__init__()
        self.H, self.D, self.gate = heads, head_dim, gate
        self.qkv = nn.Linear(d, 3 * heads * head_dim)
        self.g = nn.Linear(d, heads * head_dim if gate == "channel" else heads)
        self.o = nn.Linear(heads * head_dim, d, bias=False)
        self.scale = head_dim ** -0.5

    def inputs(self, x):
        B, T, _ = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.H, self.D).permute(2, 0, 3, 1, 4)    # [B, H, T, D]
        q, k = F.relu(q), torch.sigmoid(k)
        if self.gate == "channel":
            g = (F.logsigmoid(self.g(x)) / 4).view(B, T, self.H, self.D).transpose(1, 2)
        elif self.gate == "scalar":
            g = F.logsigmoid(self.g(x)).transpose(1, 2)                                 # [B, H, T]
        else:
            g = None
        return q, k, v, g

    def merge(self, o):
        B, H, T, D = o.shape
        return self.o(o.transpose(1, 2).reshape(B, T, H * D))


class ChunkLoop(_Heads):
    def __init__(self, d=16, heads=2, head_dim=8, chunk=4, gate="channel", intra="factorised", flaw=None,
                 final=False, init=False):
        super().__init__(d, heads, head_dim, gate)
        self.C, self.intra, self.flaw, self.final, self.init = chunk, intra, flaw, final, init

    def forward(self, x, s0=None):
        q, k, v, g = self.inputs(x)
        B, H, T, D = q.shape
        S = s0 if self.init else x.new_zeros(B, H, D, D)
        outs = []
        for s in range(0, T, self.C):
            qc, kc, vc = q[:, :, s:s + self.C], k[:, :, s:s + self.C], v[:, :, s:s + self.C]
            mask = _intra_mask(qc.shape[2], self.flaw)
            if self.flaw == "stale_state":
                S_read = None            # filled after the update below
            if self.gate == "none":
                A = _keep(qc @ kc.transpose(-1, -2), mask, 0.0)
                q_in, S_new = qc, S + kc.transpose(-1, -2) @ vc
            elif self.gate == "scalar":
                G = g[:, :, s:s + self.C].cumsum(-1)                                        # [B, H, c]
                decay = _keep(G[..., :, None] - G[..., None, :], mask, float("-inf")).exp()
                A = (qc @ kc.transpose(-1, -2)) * decay
                last = G[..., -1:]
                q_in = qc * G[..., None].exp()
                S_new = last[..., None].exp() * S + (kc * (last - G)[..., None].exp()).transpose(-1, -2) @ vc
            else:
                gc = g[:, :, s:s + self.C] if self.gate == "channel" else torch.log1p(-kc)   # log decay per key
                G = gc.cumsum(2)                                                             # [B, H, c, D]
                if self.intra == "factorised":
                    A = (qc * G.exp()) @ (kc * (-G).exp()).transpose(-1, -2)
                else:
                    pair = _keep(G[:, :, :, None] - G[:, :, None], None if mask is None else mask[..., None],
                                 float("-inf"))
                    A = (qc[:, :, :, None] * kc[:, :, None] * pair.exp()).sum(-1)
                A = _keep(A, mask, 0.0)
                last = G[:, :, -1:]                                                          # [B, H, 1, D]
                q_in = qc * G.exp()
                if self.flaw == "gate_on_v":
                    upd = kc.transpose(-1, -2) @ (vc * (last - G).exp())
                else:
                    upd = (kc * (last - G).exp()).transpose(-1, -2) @ vc
                S_new = last.transpose(-1, -2).exp() * S + upd
            S_read = S_new if self.flaw == "stale_state" else S
            outs.append((A @ vc + q_in @ S_read) * self.scale)
            S = S_new
        o = self.merge(torch.cat(outs, 2))
        return (o, S) if self.final else o


class ChunkGather(_Heads):
    """Channel-gated GLA, all chunks at once (a padded gather, like the zoo's gla_chunk but
    with a factorised inter-chunk product and a plain cumsum of chunk decays)."""

    def __init__(self, d=16, heads=2, head_dim=8, chunk=4, flaw=None):
        super().__init__(d, heads, head_dim, "channel")
        self.C, self.flaw = chunk, flaw

    def forward(self, x):
        q, k, v, g = self.inputs(x)
        B, H, T, D = q.shape
        C = self.C
        N = (T + C - 1) // C + 1           # as in the zoo: padding > 0 and N >= 2 for every T,
        pad = N * C - T                    # so a symbolic T needs no guard
        idx = torch.arange(N)[:, None] * C + torch.arange(C)
        q, k, v, g = (F.pad(t, (0, 0, 0, pad))[:, :, idx] for t in (q, k, v, g))         # [B, H, N, C, D]
        G = g.cumsum(-2)
        mask = _intra_mask(C, self.flaw)
        A = (q * G.exp()) @ (k * (-G).exp()).transpose(-1, -2)
        o = _keep(A, mask, 0.0) @ v
        last = G[..., -1:, :]                                                                # [B, H, N, 1, D]
        vd = v * (last - G).exp() if self.flaw == "gate_on_v" else v
        kd = k if self.flaw == "gate_on_v" else k * (last - G).exp()
        dS = kd.transpose(-1, -2) @ vd                                                       # [B, H, N, D, D]
        # state entering chunk n: sum over m < n of dS_m decayed by the chunks m+1 .. n-1
        Lc = last[..., 0, :].cumsum(2)                                                       # [B, H, N, D]
        n = torch.arange(N)
        before = n[:, None] > n[None, :] if self.flaw != "stale_state" else n[:, None] >= n[None, :]
        rel = (Lc[:, :, :, None] - last[..., 0, :][:, :, :, None] - Lc[:, :, None]).masked_fill(
            ~before[..., None], float("-inf"))                                              # [B, H, N(n), N(m), D]
        S_in = torch.einsum("bhnmk,bhmkv->bhnkv", rel.exp(), dS)
        o = (o + (q * G.exp()) @ S_in) * self.scale
        o = o.reshape(B, H, N * C, D).index_select(2, torch.arange(T))      # a gather, not a guarded slice
        return self.merge(o)
