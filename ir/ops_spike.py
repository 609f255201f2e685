"""Spike-coding ops (SpikingBrain's adaptive-threshold integer spikes) and their
reference implementations.

- `spike_encode(x, k, axis) -> (counts i32, v_th f32)`: v_th = clamp(mean(|x|)/k,
  1e-5, 1e4) per token over `axis` (kept as a size-1 dim), counts = round(x / v_th),
  signed and unbounded (W8ASpike's `dynamic_spikes`). x̂ = counts · v_th.
- `spike_train(counts, coding, steps) -> trains i8[T, ...]` and `spike_decode(trains,
  coding) -> counts`: the expansion into time steps and back (Int2Spike's neurons):
    binary   {0, 1}, counts >= 0 only, T = max(counts); decode Σ_t s_t
    ternary  {-1, 0, 1}, T = max|counts|;            decode Σ_t s_t
    bitwise  sign-magnitude bits MSB first, each ±1, T = max(1, ceil(log2(max|c|+1)));
             decode Σ_t 2^(T-1-t) s_t
  T is computed per tensor from its global max (a data-dependent size) unless `steps`
  fixes it; a count that does not fit in `steps` is an error, not a silent clamp.
- `spike_linear(s, v_th, weight, bias, coding, trains)`: y = v_th · Σ_t w_t W s_t + b
  (w_t = 1, or 2^(T-1-t) for bitwise), evaluated event by event: only non-zero
  spikes touch the weights (`spike_linear_events` also returns the accumulate count).
- `straight_through(x, y) -> y`: forward y, gradient the identity to x (the STE the
  spike-coded model is fine-tuned with); `int8_fake_quant(x, axis, group_size)`:
  symmetric absmax INT8 quantise-dequantise (KV cache, weights), also straight-through.
"""
from __future__ import annotations

import torch

from .errors import SpikecError
from .registry import OpDef, Param, register_op
from .types import TensorType, norm_dim, sym

CODINGS = ("binary", "ternary", "bitwise")
VTH_MIN, VTH_MAX = 1e-5, 1e4           # W8ASpike clamps the threshold to this range
STEPS_SYMBOL = "?steps"                 # the data-dependent time-step count of spike_train


class SpikeCodingError(SpikecError, ValueError):
    """Counts a coding cannot carry (negative binary counts, counts beyond `steps`)."""


def _check_coding(coding: str) -> None:
    if coding not in CODINGS:
        raise SpikeCodingError(f"unknown spike coding {coding!r}", hint=f"use one of {', '.join(CODINGS)}")


# -- reference implementations ----------------------------------------------------------------

def spike_encode_reference(x: torch.Tensor, k: float = 3.0, axis: int = -1):
    if k <= 0:
        raise SpikeCodingError(f"spike_encode: k must be positive, got {k}")
    xf = x.float()
    v_th = (xf.abs().mean(dim=axis, keepdim=True) / k).clamp(VTH_MIN, VTH_MAX)
    counts = (xf / v_th).round().to(torch.int32)
    return counts, v_th


def steps_needed(counts: torch.Tensor, coding: str) -> int:
    """T for `coding` from the tensor's global max, as Int2Spike computes it."""
    _check_coding(coding)
    if counts.numel() == 0:
        return 1 if coding == "bitwise" else 0
    if coding == "binary":
        return int(counts.max())
    m = int(counts.abs().max())
    return max(1, m.bit_length()) if coding == "bitwise" else m      # bit_length(m) == ceil(log2(m+1))


def max_count(coding: str, steps: int) -> int:
    """The largest |count| `steps` time steps of `coding` can carry."""
    _check_coding(coding)
    return (1 << steps) - 1 if coding == "bitwise" else steps


def spike_train_reference(counts: torch.Tensor, coding: str = "bitwise", steps: int = 0) -> torch.Tensor:
    _check_coding(coding)
    c = counts.to(torch.int64)
    if coding == "binary" and c.numel() and int(c.min()) < 0:
        raise SpikeCodingError(
            f"binary spike coding takes counts >= 0, got {int(c.min())}",
            hint="binary spikes are unsigned (Int2Spike's SpikeCountBinaryLIFNode); use ternary or bitwise for "
                 "signed counts, or shift by a zero point first (spike_linear does: counts - min(counts, 0))")
    T = steps if steps > 0 else steps_needed(c, coding)
    if steps > 0 and c.numel() and int(c.abs().max()) > max_count(coding, steps):
        raise SpikeCodingError(f"count {int(c.abs().max())} does not fit in {steps} {coding} time steps "
                               f"(at most {max_count(coding, steps)})",
                               hint="raise steps, or clamp the counts (insert-spike-coding{steps=N} does)")
    t = torch.arange(T, device=c.device).view(T, *([1] * c.dim()))
    mag, sign = c.abs(), c.sign()
    if coding == "bitwise":
        fired = (mag.unsqueeze(0) >> (T - 1 - t)) & 1
    else:
        fired = (mag.unsqueeze(0) > t).to(torch.int64)
    return (sign.unsqueeze(0) * fired).to(torch.int8)


def spike_decode_reference(trains: torch.Tensor, coding: str = "bitwise") -> torch.Tensor:
    _check_coding(coding)
    s = trains.to(torch.int64)
    if coding == "bitwise":
        T = s.shape[0]
        w = (1 << torch.arange(T - 1, -1, -1, device=s.device, dtype=torch.int64)).view(T, *([1] * (s.dim() - 1)))
        return (s * w).sum(0).to(torch.int32)
    return s.sum(0).to(torch.int32)


def binary_zero_point(counts: torch.Tensor) -> int:
    """Binary spikes are unsigned: signed counts are shifted by z = min(counts, 0) per tensor
    (Int2Spike's `spike_quant` zero point); x = (c - z) + z."""
    return min(int(counts.min()), 0) if counts.numel() else 0


def spike_linear_events(s: torch.Tensor, v_th: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                        coding: str = "bitwise", trains: bool = False):
    """Event-driven y = v_th · Σ_t w_t W s_t + b. Returns (y, accumulates): every non-zero
    spike adds (or subtracts) one weight column into the token's `out` accumulators, so
    accumulates = (number of spikes) · out_features. Zero spikes cost nothing."""
    _check_coding(coding)
    zero = 0
    if not trains:
        if coding == "binary":
            zero = binary_zero_point(s)
            s = s - zero
        s = spike_train_reference(s, coding)
    T, out_f, in_f = s.shape[0], weight.shape[0], weight.shape[-1]
    lead = s.shape[1:-1]
    tokens = 1
    for d in lead:
        tokens *= d
    steps = s.reshape(T, tokens, in_f)
    acc = torch.zeros(tokens, out_f, dtype=torch.float32, device=weight.device)
    cols = weight.float().t()                                          # [in, out]: one column per input channel
    accumulates = 0
    for t in range(T):
        tok, ch = steps[t].nonzero(as_tuple=True)                      # the events of step t
        if tok.numel() == 0:
            continue
        scale = float(1 << (T - 1 - t)) if coding == "bitwise" else 1.0
        acc.index_add_(0, tok, cols[ch] * (steps[t][tok, ch].float() * scale)[:, None])
        accumulates += tok.numel() * out_f
    if zero:
        acc = acc + zero * cols.sum(0)                                 # the zero point: once per token, not per spike
    y = acc * v_th.float().reshape(-1, 1)
    if bias is not None:
        y = y + bias.float()
    return y.reshape(*lead, out_f).to(weight.dtype), accumulates


def spike_linear_reference(s, v_th, weight, bias=None, coding="bitwise", trains=False):
    return spike_linear_events(s, v_th, weight, bias, coding, trains)[0]


def int8_fake_quant_reference(x: torch.Tensor, axis: int = -1, group_size: int = 0) -> torch.Tensor:
    """Symmetric INT8: scale = absmax/127 per slice along `axis` (per group of `group_size`
    elements of it when > 0), q = clamp(round(x/scale), -128, 127) · scale."""
    xf = x.float().movedim(axis, -1)
    n = xf.shape[-1]
    g = group_size if group_size > 0 else n
    if n % g:
        raise SpikeCodingError(f"int8_fake_quant: group_size {g} does not divide the axis size {n}")
    grouped = xf.reshape(*xf.shape[:-1], n // g, g)
    scale = (grouped.abs().amax(-1, keepdim=True) / 127.0).clamp_min(1e-12)
    q = (grouped / scale).round().clamp(-128, 127) * scale
    return q.reshape(xf.shape).movedim(-1, axis).to(x.dtype)


# -- shape and dtype inference ------------------------------------------------------------------

def _encode_infer(opdef, args, ctx):
    x = args["x"]
    axis = args.get("axis", -1) % x.rank
    vshape = tuple(1 if i == axis else d for i, d in enumerate(x.shape))
    return [TensorType(x.shape, "i32"), TensorType(vshape, "f32")]


def _train_infer(opdef, args, ctx):
    c = args["counts"]
    steps = args.get("steps", 0)
    return [TensorType((steps if steps > 0 else sym(STEPS_SYMBOL), *c.shape), "i8")]


def _decode_infer(opdef, args, ctx):
    return [TensorType(args["trains"].shape[1:], "i32")]


def _linear_infer(opdef, args, ctx):
    s, w = args["s"], args["weight"]
    shape = s.shape[1:] if args.get("trains", False) else s.shape
    return [TensorType((*shape[:-1], norm_dim(w.shape[0])), w.dtype)]


def _same_as(name):
    return lambda opdef, args, ctx: [args[name]]


register_op(OpDef(
    "spike_encode", [Param("x", "tensor"), Param("k", "float", 3.0), Param("axis", "int", -1)],
    spike_encode_reference, 2, infer=_encode_infer, category="fused",
    doc="Adaptive-threshold integer spikes: v_th = clamp(mean(|x|)/k over axis, 1e-5, 1e4) (kept dim, f32), "
        "counts = round(x / v_th) as i32 (signed, unbounded)."))

register_op(OpDef(
    "spike_train", [Param("counts", "tensor"), Param("coding", "str", "bitwise"), Param("steps", "int", 0)],
    spike_train_reference, 1, infer=_train_infer, category="fused",
    doc="Spike trains i8[T, ...] of integer counts: binary {0,1} (counts >= 0), ternary {-1,0,1}, bitwise "
        "(sign-magnitude, MSB first); T from the tensor's max unless steps > 0."))

register_op(OpDef(
    "spike_decode", [Param("trains", "tensor"), Param("coding", "str", "bitwise")],
    spike_decode_reference, 1, infer=_decode_infer, category="fused",
    doc="Counts (i32) of spike trains: Σ_t s_t (binary, ternary) or Σ_t 2^(T-1-t) s_t (bitwise)."))

register_op(OpDef(
    "spike_linear",
    [Param("s", "tensor"), Param("v_th", "tensor"), Param("weight", "tensor"), Param("bias", "tensor?", None),
     Param("coding", "str", "bitwise"), Param("trains", "bool", False)],
    spike_linear_reference, 1, infer=_linear_infer, category="fused",
    doc="Accumulate-only projection y = v_th · Σ_t w_t W s_t + b of spike trains (trains=true) or of counts "
        "expanded with `coding`; event-driven (zero spikes are skipped)."))

register_op(OpDef(
    "straight_through", [Param("x", "tensor"), Param("y", "tensor")],
    lambda x, y: y, 1, infer=_same_as("y"), category="fused",
    doc="Value of y, gradient of the identity to x (straight-through estimator)."))

register_op(OpDef(
    "int8_fake_quant", [Param("x", "tensor"), Param("axis", "int", -1), Param("group_size", "int", 0)],
    int8_fake_quant_reference, 1, infer=_same_as("x"), category="fused",
    doc="Symmetric INT8 quantise-dequantise with scale absmax/127 per slice along axis (per group_size "
        "elements when > 0); straight-through gradient."))


def name_steps(graph, value, coding: str | None = None) -> None:
    """Give a spike_train result's data-dependent T a named symbol of `graph` (the text
    form cannot hold an inference wildcard). Its range: bitwise i32 counts need at most 31."""
    t = value.type
    if not isinstance(t.shape[0], int) and t.shape[0].name == STEPS_SYMBOL:
        name, i = "S", 1
        while name in graph.symbols:
            name, i = f"S{i}", i + 1
        graph.symbols[name] = (1, 31) if coding == "bitwise" else (0, None)
        value.type = TensorType((sym(name), *t.shape[1:]), t.dtype)
