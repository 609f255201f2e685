"""The fused IR ops on the Triton kernels, with the ops' exact semantics
(spikec.ir.ops_fused / ops_spike / ops_moe). The code the cuda target
generates calls these.

Where a kernel does not cover a case, the torch target's kernel runs it:
key-tied linear-attention gates (no log form when some k >= 1) and head dims
above MAX_HEAD_DIM (128).

Triton's interpreter stores bf16 wrongly (it writes zeros), so in interpreter
mode half-precision inputs are widened to fp32 around the kernels and the
results narrowed back; on a GPU the kernels take bf16/fp16 natively.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from . import mode
from .kernels.attention import api as attn
from .kernels.linear_attention import api as la
from .kernels.linear_attention.layout import MAX_HEAD_DIM
from .kernels.moe.api import align_by_expert, align_segments
from .kernels.moe.function import grouped_linear
from .kernels.spike import api as spike

DECODE_MAX_T = 8     # at most this many new tokens without autograd: the fused recurrent kernel
HALF = (torch.float16, torch.bfloat16)


def _widen_in_interpreter(fn):
    """Run `fn` in fp32 when interpreting and a floating input is half precision."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        half = next((t.dtype for t in tensors if t.dtype in HALF), None)
        if half is None or not mode.interpreting():
            return fn(*args, **kwargs)
        wide = [a.float() if isinstance(a, torch.Tensor) and a.dtype in HALF else a for a in args]
        kw = {k: a.float() if isinstance(a, torch.Tensor) and a.dtype in HALF else a for k, a in kwargs.items()}
        out = fn(*wide, **kw)
        narrow = lambda t: t.to(half) if isinstance(t, torch.Tensor) and t.dtype == torch.float32 else t  # noqa: E731
        return tuple(narrow(t) for t in out) if isinstance(out, tuple) else narrow(out)
    return wrapper


def _share_heads(*tensors):
    """The kernels index k, v and the gate with one head group; operands with fewer heads
    than the widest (SpikingBrain: keys and gate shared, values per head) are repeated up to it."""
    heads = [t.shape[1] for t in tensors if t is not None]
    widest = max(heads)
    return tuple(t if t is None or t.shape[1] == widest else t.repeat_interleave(widest // t.shape[1], 1)
                 for t in tensors)


def _needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


@_widen_in_interpreter
def linear_attention(q, k, v, gate=None, initial_state=None, *, gate_kind: str = "none", scale: float = 1.0,
                     output_final_state: bool = False):
    """o (and the final state, in q's dtype) as the IR op defines them."""
    if gate_kind == "key_tied" or max(q.shape[-1], v.shape[-1]) > MAX_HEAD_DIM:
        from spikec.codegen.torch.kernels.linear_attention import linear_attention as torch_kernel
        return torch_kernel(q, k, v, gate, initial_state, gate_kind=gate_kind, scale=scale,
                            output_final_state=output_final_state)
    gated = gate_kind in ("scalar", "channel")
    k, v, shared_gate = _share_heads(k, v, gate if gated else None)
    gate = shared_gate if gated else gate
    if q.shape[2] <= DECODE_MAX_T and not _needs_grad(q, k, v, gate, initial_state):
        B, H, _, K = q.shape
        state = (initial_state.float().clone() if initial_state is not None
                 else torch.zeros(B, H, K, v.shape[-1], dtype=torch.float32, device=q.device))
        o = la.recurrent_step(q, k, v, gate, state, gate_kind=gate_kind, scale=scale)
        return (o, state.to(q.dtype)) if output_final_state else o
    out = la.linear_attention(q, k, v, gate, initial_state, gate_kind=gate_kind, scale=scale,
                              output_final_state=output_final_state)
    if output_final_state:
        o, ht = out
        return o, ht.to(q.dtype)
    return out


@_widen_in_interpreter
def attention(q, k, v, scale: float = 1.0, causal: bool = True):
    if max(q.shape[-1], v.shape[-1]) > MAX_HEAD_DIM:
        from spikec.codegen.torch.kernels.attention import attention as torch_kernel
        return torch_kernel(q, k, v, scale, causal)
    k, v = _share_heads(k, v)
    return attn.attention(q, k, v, scale, causal)


@_widen_in_interpreter
def sliding_window_attention(q, k, v, window: int, scale: float = 1.0):
    if max(q.shape[-1], v.shape[-1]) > MAX_HEAD_DIM:
        from spikec.codegen.torch.kernels.sliding_window_attention import sliding_window_attention as torch_kernel
        return torch_kernel(q, k, v, window, scale)
    k, v = _share_heads(k, v)
    return attn.sliding_window_attention(q, k, v, window, scale)


def spike_encode(x, k: float = 3.0, axis: int = -1):
    """(counts int32, v_th fp32): integers, so no gradient flows (as in the torch target)."""
    return spike.spike_encode(x.detach(), k, axis)


@_widen_in_interpreter
def grouped_matmul(x, group_sizes, weight):
    """Row segments (group_sizes [..., G], row-major) times weight[g]^T ([G, O, K])."""
    row_ids, blocks = align_segments(group_sizes.to("cpu"), weight.shape[0])
    return grouped_linear(x, weight, row_ids.to(x.device), blocks.to(x.device))


def _route(h, router_weight, top_k, activation, renormalize):
    probs = F.linear(h, router_weight).float()
    probs = probs.softmax(-1) if activation == "softmax" else probs.sigmoid()
    weights, experts = probs.topk(top_k, dim=-1)
    if renormalize:
        weights = weights / weights.sum(-1, keepdim=True)
    return weights.to(h.dtype), experts


@_widen_in_interpreter
def moe(x, router_weight, w_gate, w_up, w_down, shared_gate=None, shared_up=None, shared_down=None, *,
        top_k: int, activation: str = "softmax", renormalize: bool = False):
    """Route, sort the N*k token slots by expert (padded to the kernel block),
    SwiGLU experts as three grouped GEMMs, weighted sum over the k choices."""
    D = x.shape[-1]
    h = x.reshape(-1, D)
    weights, experts = _route(h, router_weight, top_k, activation, renormalize)
    N, k = experts.shape
    row_ids, blocks = align_by_expert(experts, w_gate.shape[0])
    slots = h.repeat_interleave(k, dim=0)                       # slot n*k + j reads token n
    act = F.silu(grouped_linear(slots, w_gate, row_ids, blocks)) * grouped_linear(slots, w_up, row_ids, blocks)
    y = grouped_linear(act, w_down, row_ids, blocks).reshape(N, k, D)
    y = (y * weights.unsqueeze(-1)).sum(1)
    if shared_gate is not None:
        y = y + F.linear(F.silu(F.linear(h, shared_gate)) * F.linear(h, shared_up), shared_down)
    return y.reshape(x.shape)
