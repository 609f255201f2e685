"""Softmax attention: full causal or sliding-window, GQA, NeoX RoPE, with explicit KV caches.

Window convention (one of the two off-by-one choices in SpikingBrain's code, see
reference §1.3): query i attends to keys j with ``i - window < j <= i`` -- exactly ``window``
keys including itself. This is the paper's mask M' and the SDPA variant of the release; the
flash-attn path (``window_size=(w, 0)``) sees one key more. The decode cache is therefore a
ring buffer of exactly ``window`` slots.
"""
from __future__ import annotations

import torch
from torch import nn

from .rope import apply_rope, rope_angles


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """[B, Hkv, T, D] -> [B, Hkv * n_rep, T, D] (each KV head serves n_rep query heads)."""
    if n_rep == 1:
        return x
    # repeat_interleave rather than expand+reshape: the reshape's stride guards
    # (min(a*P, b*P) == a*P) defeat torch.export's solver for a growing cache length P.
    return x.repeat_interleave(n_rep, dim=1)


def causal_mask(T: int, window: int | None, device=None) -> torch.Tensor:
    """Boolean [T, T] mask, True where query i may attend to key j."""
    i = torch.arange(T, device=device)[:, None]
    j = torch.arange(T, device=device)[None, :]
    allowed = j <= i
    if window is not None:
        allowed = allowed & (j > i - window)
    return allowed


def masked_softmax_attention(q, k, v, allowed: torch.Tensor, scale: float) -> torch.Tensor:
    """q: [B, H, Tq, D]; k, v: [B, Hkv, Tk, D]; allowed: bool, broadcastable to [B, H, Tq, Tk]."""
    n_rep = q.shape[1] // k.shape[1]
    k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
    scores = (q.float() @ k.float().transpose(-1, -2)) * scale
    scores = scores.masked_fill(~allowed, float("-inf"))
    return (scores.softmax(-1) @ v.float()).to(q.dtype)


def sliding_window_attention(q, k, v, window: int | None, scale: float) -> torch.Tensor:
    """Full-sequence causal attention, banded to ``window`` keys when window is not None."""
    return masked_softmax_attention(q, k, v, causal_mask(q.shape[2], window, q.device), scale)


def ring_from_sequence(x: torch.Tensor, window: int) -> torch.Tensor:
    """Place the last ``window`` positions of x [B, H, T, D] at their ring slots (pos % window).

    Written without branching on T and without T in scalar arithmetic, so the prefill
    traces with a symbolic length that every backend can lower: x is left-padded with
    ``window`` zeros (a concatenation), its last ``window`` rows (positions T-window .. T-1, zeros where
    negative) are routed to their slots by an exact one-hot product."""
    T = x.shape[2]
    zeros = x.new_zeros(x.shape[0], x.shape[1], window, x.shape[3])
    last = torch.cat([zeros, x], dim=2)[:, :, T:]                           # [B, H, window, D]
    padded_pos = torch.arange(T + window, device=x.device)[T:]               # p + window
    slot_of = padded_pos % window                                            # = p % window
    route = (slot_of[None, :] == torch.arange(window, device=x.device)[:, None]).to(x.dtype)
    return route @ last


def ring_attention_step(q_t, k_t, v_t, k_ring, v_ring, pos: torch.Tensor, scale: float):
    """One query against a ring buffer. q_t: [B,H,1,D]; k_t, v_t: [B,Hkv,1,D]; pos: 0-dim long.

    Writes the new key at slot pos % W, then attends to every filled slot. Keys carry their
    RoPE already, so slot order does not matter to softmax.
    """
    W = k_ring.shape[2]
    # the write as a select against the slot (not index_copy): the same values, and a form
    # every backend lowers
    at_slot = (torch.arange(W, device=k_ring.device) == pos % W)[:, None]     # [W, 1]
    k_ring = torch.where(at_slot, k_t, k_ring)
    v_ring = torch.where(at_slot, v_t, v_ring)
    filled = torch.arange(W, device=k_ring.device) <= pos       # all slots once pos >= W - 1
    return masked_softmax_attention(q_t, k_ring, v_ring, filled, scale), k_ring, v_ring


def full_attention_step(q_t, k_t, v_t, k_cache, v_cache, scale: float):
    """One query against a growing KV cache (every past key is visible)."""
    k_cache = torch.cat([k_cache, k_t], dim=2)
    v_cache = torch.cat([v_cache, v_t], dim=2)
    allowed = torch.ones((), dtype=torch.bool, device=k_cache.device)
    return masked_softmax_attention(q_t, k_cache, v_cache, allowed, scale), k_cache, v_cache


class QKVProjection(nn.Module):
    """q/k/v projections into head-first tensors (shared by softmax and linear attention)."""

    def __init__(self, hidden_size, num_heads, num_kv_heads, head_dim, bias=True):
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.q_proj = nn.Linear(hidden_size, num_heads * head_dim, bias=bias)
        self.k_proj = nn.Linear(hidden_size, num_kv_heads * head_dim, bias=bias)
        self.v_proj = nn.Linear(hidden_size, num_kv_heads * head_dim, bias=bias)
        self.o_proj = nn.Linear(num_heads * head_dim, hidden_size, bias=False)

    def heads(self, x: torch.Tensor, n: int) -> torch.Tensor:
        B, T, _ = x.shape
        return x.reshape(B, T, n, self.head_dim).transpose(1, 2)

    def qkv(self, x: torch.Tensor):
        return (self.heads(self.q_proj(x), self.num_heads),
                self.heads(self.k_proj(x), self.num_kv_heads),
                self.heads(self.v_proj(x), self.num_kv_heads))

    def merge(self, o: torch.Tensor) -> torch.Tensor:
        """[B, H, T, D] -> [B, T, H*D] (before o_proj)."""
        B, H, T, D = o.shape
        return o.transpose(1, 2).reshape(B, T, H * D)


class SoftmaxAttention(QKVProjection):
    """GQA softmax attention with NeoX RoPE; ``window=None`` is full causal attention."""

    def __init__(self, hidden_size, num_heads, num_kv_heads, head_dim, window=None,
                 rope_theta=1e6, bias=True, impl: str = "eager"):
        super().__init__(hidden_size, num_heads, num_kv_heads, head_dim, bias)
        self.window, self.rope_theta, self.impl = window, rope_theta, impl
        self.scale = head_dim ** -0.5

    def attend(self, q, k, v) -> torch.Tensor:
        """Full-sequence attention: the masked reference, or torch's fused SDPA kernel
        (``impl="sdpa"``, memory O(T) instead of a [T, T] score matrix)."""
        if self.impl != "sdpa":
            return sliding_window_attention(q, k, v, self.window, self.scale)
        n_rep = q.shape[1] // k.shape[1]
        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
        if self.window is None:
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        mask = causal_mask(q.shape[2], self.window, q.device)
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)

    def roped_qkv(self, x: torch.Tensor, positions: torch.Tensor):
        q, k, v = self.qkv(x)
        cos, sin = rope_angles(positions, self.head_dim, self.rope_theta)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.roped_qkv(x, torch.arange(x.shape[1], device=x.device))
        return self.o_proj(self.merge(self.attend(q, k, v)))

    # ---- decoding with an explicit cache -------------------------------------------------
    def init_cache(self, batch_size: int, device=None, dtype=torch.float32) -> dict:
        n = self.window if self.window is not None else 0
        shape = (batch_size, self.num_kv_heads, n, self.head_dim)
        return {"k": torch.zeros(shape, device=device, dtype=dtype),
                "v": torch.zeros(shape, device=device, dtype=dtype)}

    def prefill(self, x: torch.Tensor):
        q, k, v = self.roped_qkv(x, torch.arange(x.shape[1], device=x.device))
        y = self.o_proj(self.merge(self.attend(q, k, v)))
        if self.window is None:
            return y, {"k": k, "v": v}
        return y, {"k": ring_from_sequence(k, self.window), "v": ring_from_sequence(v, self.window)}

    def step(self, x_t: torch.Tensor, cache: dict, pos: torch.Tensor):
        q, k, v = self.roped_qkv(x_t, pos.reshape(1))
        if self.window is None:
            o, kc, vc = full_attention_step(q, k, v, cache["k"], cache["v"], self.scale)
        else:
            o, kc, vc = ring_attention_step(q, k, v, cache["k"], cache["v"], pos, self.scale)
        return self.o_proj(self.merge(o)), {"k": kc, "v": vc}
