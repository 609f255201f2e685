"""Fused ops that passes create: linear attention (the GLA family), causal and
sliding-window softmax attention. Head-first layout: q [B, H, T, K], k [B, Hkv,
T, K], v [B, Hkv, T, V]; H must be a multiple of Hkv (grouped-query attention).

The reference implementations are the plain definitions (a loop over time
for the recurrence, a masked softmax for attention): the oracle the fusion
passes and every backend kernel are checked against.
"""
from __future__ import annotations

import torch

from .registry import OpDef, Param, register_op
from .types import TensorType

GATE_KINDS = ("none", "scalar", "channel", "key_tied")


def _repeat_heads(x: torch.Tensor | None, heads: int) -> torch.Tensor | None:
    if x is None or x.shape[1] == heads:
        return x
    return x.repeat_interleave(heads // x.shape[1], dim=1)


def linear_attention_reference(q, k, v, gate=None, initial_state=None, *, gate_kind="none", scale=1.0,
                               output_final_state=False):
    """S_t = decay_t ⊙ S_{t-1} + k_tᵀ v_t ;  o_t = (q_t · scale) S_t, per head.

    decay_t: 1 (none), exp(gate_t) per head (scalar, gate [B, Hkv, T]), exp(gate_t)
    per key channel (channel, gate [B, Hkv, T, K]) or 1 - k_t (key_tied)."""
    if gate_kind not in GATE_KINDS:
        raise ValueError(f"gate_kind must be one of {GATE_KINDS}, got {gate_kind!r}")
    B, H, T, K = q.shape
    k, v, gate = (_repeat_heads(t, H) for t in (k, v, gate))
    S = q.new_zeros(B, H, K, v.shape[-1]) if initial_state is None else initial_state.to(q.dtype)
    outs = []
    for t in range(T):
        kv = k[:, :, t, :, None] * v[:, :, t, None, :]
        if gate_kind == "none":
            S = S + kv
        elif gate_kind == "scalar":
            S = gate[:, :, t, None, None].exp() * S + kv
        elif gate_kind == "channel":
            S = gate[:, :, t, :, None].exp() * S + kv
        else:
            S = (1 - k[:, :, t, :, None]) * S + kv
        outs.append(((q[:, :, t] * scale)[:, :, None, :] @ S)[:, :, 0])
    o = torch.stack(outs, dim=2) if outs else q.new_zeros(B, H, 0, v.shape[-1])
    return (o, S) if output_final_state else o


def _la_infer(opdef, args, ctx):
    q, v = args["q"], args["v"]
    out = TensorType((*q.shape[:-1], v.shape[-1]), q.dtype)
    if args.get("output_final_state", False):
        return [out, TensorType((q.shape[0], q.shape[1], q.shape[-1], v.shape[-1]), q.dtype)]
    return [out]


def _band_mask(Tq: int, Tk: int, window: int | None, device) -> torch.Tensor:
    i = torch.arange(Tq, device=device)[:, None] + (Tk - Tq)     # queries are the last Tq positions
    j = torch.arange(Tk, device=device)[None, :]
    allowed = j <= i
    if window is not None:
        allowed = allowed & (j > i - window)
    return allowed


def _softmax_attention(q, k, v, scale, causal, window):
    H = q.shape[1]
    k, v = _repeat_heads(k, H), _repeat_heads(v, H)
    scores = (q @ k.transpose(-1, -2)) * scale
    if causal or window is not None:
        scores = scores.masked_fill(~_band_mask(q.shape[2], k.shape[2], window, q.device), float("-inf"))
    return scores.softmax(-1) @ v


def _attn_infer(opdef, args, ctx):
    q, v = args["q"], args["v"]
    return [TensorType((*q.shape[:-1], v.shape[-1]), q.dtype)]


register_op(OpDef(
    "linear_attention",
    [Param("q", "tensor"), Param("k", "tensor"), Param("v", "tensor"), Param("gate", "tensor?", None),
     Param("initial_state", "tensor?", None), Param("gate_kind", "str", "none"), Param("scale", "float", 1.0),
     Param("output_final_state", "bool", False)],
    lambda q, k, v, gate=None, initial_state=None, **kw: linear_attention_reference(q, k, v, gate, initial_state, **kw),
    None, infer=_la_infer, category="fused",
    doc="Gated linear attention: S_t = decay_t ⊙ S_{t-1} + k_tᵀv_t, o_t = (q_t·scale) S_t; "
        "gate_kind none | scalar | channel | key_tied; optional initial and final state."))

register_op(OpDef(
    "attention",
    [Param("q", "tensor"), Param("k", "tensor"), Param("v", "tensor"), Param("scale", "float", 1.0),
     Param("causal", "bool", True)],
    lambda q, k, v, scale=1.0, causal=True: _softmax_attention(q, k, v, scale, causal, None),
    1, infer=_attn_infer, category="fused",
    doc="Softmax attention softmax(q kᵀ · scale [+ causal mask]) v with grouped-query heads."))

register_op(OpDef(
    "sliding_window_attention",
    [Param("q", "tensor"), Param("k", "tensor"), Param("v", "tensor"), Param("window", "int"),
     Param("scale", "float", 1.0)],
    lambda q, k, v, window, scale=1.0: _softmax_attention(q, k, v, scale, True, window),
    1, infer=_attn_infer, category="fused",
    doc="Causal softmax attention over the last `window` keys (i - window < j <= i), grouped-query heads."))
