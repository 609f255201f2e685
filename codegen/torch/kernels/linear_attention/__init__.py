"""`linear_attention` with the IR op's semantics (spikec.ir.ops_fused), on the
kernels of this folder.

The dispatcher turns the op's arguments into the kernels' canonical form:
grouped-query heads are repeated (autograd sums their gradients back), q is
scaled, the gate becomes a log decay g (scalar gates get a size-1 channel,
key-tied gates g = log(1 - k)), half precision is computed in float32. Then:
T <= RECURRENT_MAX_T runs the step recurrence (decode), longer sequences the
chunked kernel with its handwritten backward.

A key-tied gate with some k >= 1 has no log decay; that call runs the
recurrence with the multiplicative decay 1 - k instead (a data-dependent check).
"""
from __future__ import annotations

import torch

from .chunk import chunk_linear_attention
from .fused_recurrent import fused_recurrent_linear_attention
from .naive import naive_linear_attention

RECURRENT_MAX_T = 8        # at most this many steps: the recurrence beats a padded chunk
MAX_CHUNK = 64
MODES = ("auto", "chunk", "recurrent", "naive")


def _heads(x, H):
    if x is None or x.shape[1] == H:
        return x
    return x.repeat_interleave(H // x.shape[1], dim=1)


def chunk_size_for(T: int) -> int:
    """The smallest of 16, 32, 64 that covers T (short sequences pad less)."""
    c = 16
    while c < min(T, MAX_CHUNK):
        c *= 2
    return c


def linear_attention(q, k, v, gate=None, initial_state=None, *, gate_kind: str = "none", scale: float = 1.0,
                     output_final_state: bool = False, mode: str = "auto"):
    """o (and the final state when `output_final_state`) as the IR op defines them."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    out_dtype = q.dtype
    cdt = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
    H, T = q.shape[1], q.shape[2]
    q = q.to(cdt) * scale
    k, v = _heads(k, H).to(cdt), _heads(v, H).to(cdt)
    s0 = initial_state.to(cdt) if initial_state is not None else None
    g = decay = None
    if gate_kind == "scalar":
        g = _heads(gate, H).to(cdt)[..., None]
    elif gate_kind == "channel":
        g = _heads(gate, H).to(cdt)
    elif gate_kind == "key_tied":
        if bool((k < 1).all()):
            g = torch.log1p(-k)
        else:
            decay, mode = 1 - k, "recurrent"
    elif gate_kind != "none":
        raise ValueError(f"unknown gate_kind {gate_kind!r}")
    if mode == "auto":
        mode = "recurrent" if T <= RECURRENT_MAX_T else "chunk"
    if mode == "recurrent":
        o, S = fused_recurrent_linear_attention(q, k, v, g, s0, decay=decay)
    elif mode == "naive":
        o, S = naive_linear_attention(q, k, v, g, s0)
    else:
        o, S = chunk_linear_attention(q, k, v, g, s0, chunk_size=chunk_size_for(T))
    o = o.to(out_dtype)
    return (o, S.to(out_dtype)) if output_final_state else o


__all__ = ["linear_attention", "chunk_linear_attention", "fused_recurrent_linear_attention",
           "naive_linear_attention", "RECURRENT_MAX_T"]
