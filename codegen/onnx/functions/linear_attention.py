"""`linear_attention` as an ONNX function: the chunked algorithm.

Per head, with chunk length C and cumulative in-chunk log-decay b (b_t = Σ_{s<=t} g_s):

    intra  o_t += Σ_{s<=t, same chunk} (q_t e^{b_t}) · (k_s e^{-b_s}) v_s      (masked C x C products)
    state  S_n  = e^{b_C} ⊙ S_{n-1} + Σ_s (k_s e^{b_C - b_s})ᵀ v_s              (Scan over chunks)
    inter  o_t += (q_t e^{b_t}) S_{n-1}

T is padded to a multiple of C with zeros (a zero key adds nothing, a zero log-gate keeps
the state), so T stays symbolic. Without a gate the state is an exclusive CumSum, no loop.
The key-tied gate (decay 1 - k, which may be <= 0, so no log form) runs a Scan over time.

Numerics: a scalar gate uses the exact pairwise decay e^{b_t - b_s} (a C x C matrix per head),
stable for any decay (RWKV/SpikeGPT decays reach e^{-20} per step). A per-channel gate would
need C x C x K, so it splits the pair into e^{b_t}·e^{-b_s}: in f32 the cumulative log-decay
inside one chunk must stay above about -80 (GLA's logsigmoid/16 gates stay far above it).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..builder import BodySink, tensor_proto
from .common import INT64_MAX, attr_const, body_graph, dim, make_function, repeat_kv_heads

GATE_SUFFIX = {"none": "", "scalar": "ScalarGate", "channel": "ChannelGate", "key_tied": "KeyTiedGate"}


def function_name(gate_kind: str, has_init: bool, gqa: bool) -> str:
    return "LinearAttention" + GATE_SUFFIX[gate_kind] + ("Init" if has_init else "") + ("Gqa" if gqa else "")


@lru_cache(maxsize=None)
def linear_attention_function(gate_kind: str, has_init: bool, gqa: bool):
    """FunctionProto for one variant. Inputs q [B,H,T,K], k/v [B,Hkv,T,*], gate (scalar [B,Hkv,T],
    channel [B,Hkv,T,K]), initial state [B,H,K,V]; outputs o [B,H,T,V] and the final state.
    Attributes: scale (float), chunk (int)."""
    s = BodySink("")
    ins = ["q", "k", "v"] + (["gate"] if gate_kind in ("scalar", "channel") else []) + (["s0"] if has_init else [])
    shape_q, shape_v = s.op("Shape", ["q"]), s.op("Shape", ["v"])
    B, H, T, K = (dim(s, shape_q, i) for i in range(4))
    V = dim(s, shape_v, 3)
    k, v = "k", "v"
    g = None
    if gate_kind == "scalar":
        g = s.op("Unsqueeze", ["gate", s.i64([-1])])
    elif gate_kind == "channel":
        g = "gate"
    if gqa:
        k, v = repeat_kv_heads(s, k, H), repeat_kv_heads(s, v, H)
        g = repeat_kv_heads(s, g, H) if g is not None else None
    scale = attr_const(s, "scale", "float")
    state_shape = s.op("Concat", [B, H, K, V], axis=0)
    s0 = "s0" if has_init else s.op("ConstantOfShape", [state_shape], value=_zero_f32())
    if gate_kind == "key_tied":
        o, sn = _key_tied_scan(s, "q", k, v, s0, scale)
    else:
        o, sn = _chunked(s, "q", k, v, g, s0, scale, T, V, scalar=gate_kind == "scalar")
    s.op("Identity", [o], outputs=["o"])
    s.op("Identity", [sn], outputs=["final_state"])
    return make_function(function_name(gate_kind, has_init, gqa), ins, ["o", "final_state"], s,
                         {"scale": 1.0, "chunk": 64})


def _zero_f32():
    return tensor_proto("zero", np.zeros([1], dtype=np.float32))


def _chunked(s: BodySink, q, k, v, g, s0, scale, T, V, scalar: bool):
    C = s.op("Reshape", [attr_const(s, "chunk", "int"), s.i64([1])])
    one = s.i64([1])
    N = s.op("Div", [s.op("Sub", [s.op("Add", [T, C]), one]), C])
    pad = s.op("Sub", [s.op("Mul", [N, C]), T])
    pads = s.op("Concat", [s.i64([0] * 6), pad, s.i64([0])], axis=0)   # pad the end of axis 2 (time)

    def chunks(x):   # [B, H, T, D] -> [B, H, N, C, D]
        xp = s.op("Pad", [x, pads])
        d = s.op("Shape", [x], start=3)
        return s.op("Reshape", [xp, s.op("Concat", [s.i64([0, 0, -1]), C, d], axis=0)])

    qc, kc, vc = chunks(q), chunks(k), chunks(v)
    qs = s.op("Mul", [qc, scale])
    swap = [0, 1, 2, 4, 3]
    kT = s.op("Transpose", [kc], perm=swap)
    if g is None:
        scores = s.op("Trilu", [s.op("MatMul", [qs, kT])], upper=0)
        kd, q_state = kc, qs
    else:
        b = s.op("CumSum", [chunks(g), s.scalar(3, "i64")])                  # in-chunk log-decay
        bC = s.op("Slice", [b, s.i64([-1]), s.i64([INT64_MAX]), s.i64([3])])  # decay of the whole chunk
        q_state = s.op("Mul", [qs, s.op("Exp", [b])])                       # e^{b_t} <= 1
        kd = s.op("Mul", [kc, s.op("Exp", [s.op("Sub", [bC, b])])])         # e^{b_C - b_s} <= 1
        if scalar:
            # one log-decay per step: the pairwise decay e^{b_t - b_s} is a C x C matrix, exact for
            # any decay; Trilu overwrites the s > t half (where e^{...} may overflow)
            pair = s.op("Exp", [s.op("Sub", [b, s.op("Transpose", [b], perm=swap)])])
            scores = s.op("Trilu", [s.op("Mul", [s.op("MatMul", [qs, kT]), pair])], upper=0)
        else:
            ks = s.op("Mul", [kc, s.op("Exp", [s.op("Neg", [b])])])
            scores = s.op("Trilu", [s.op("MatMul", [q_state, s.op("Transpose", [ks], perm=swap)])], upper=0)
    o = s.op("MatMul", [scores, vc])                                           # intra-chunk part
    U = s.op("MatMul", [s.op("Transpose", [kd], perm=swap), vc])              # [B, H, N, K, V]
    if g is None:
        # no decay: the state entering chunk n is s0 + Σ_{m<n} U_m
        before = s.op("Add", [s.op("CumSum", [U, s.scalar(2, "i64")], exclusive=1),
                              s.op("Unsqueeze", [s0, s.i64([2])])])
        final = s.op("Add", [s0, s.op("ReduceSum", [U, s.i64([2])], keepdims=0)])
    else:
        decay = s.op("Exp", [s.op("Transpose", [bC], perm=swap)])            # [B, H, N, K|1, 1]
        final, before = s.op("Scan", [s0, U, decay], n_out=2, body=_state_step(), num_scan_inputs=2,
                             scan_input_axes=[2, 2], scan_output_axes=[2])
    o = s.op("Add", [o, s.op("MatMul", [q_state, before])])                  # inter-chunk part
    o = s.op("Reshape", [o, s.op("Concat", [s.i64([0, 0, -1]), V], axis=0)])
    o = s.op("Slice", [o, s.i64([0]), T, s.i64([2])])
    return o, final


@lru_cache(maxsize=None)
def _state_step():
    """Scan body: S' = decay ⊙ S + U; emits the state the chunk started from."""
    b = BodySink("st_")
    b.op("Add", [b.op("Mul", ["st_decay", "st_S"]), "st_U"], outputs=["st_S_next"])
    b.op("Identity", ["st_S"], outputs=["st_S_before"])
    return body_graph(b, "state_step", ["st_S", "st_U", "st_decay"], ["st_S_next", "st_S_before"])


def _key_tied_scan(s: BodySink, q, k, v, s0, scale):
    """decay 1 - k_t per key channel: one Scan step per time step."""
    qs = s.op("Mul", [q, scale])
    final, o = s.op("Scan", [s0, qs, k, v], n_out=2, body=_key_tied_step(), num_scan_inputs=3,
                    scan_input_axes=[2, 2, 2], scan_output_axes=[2])
    return o, final


@lru_cache(maxsize=None)
def _key_tied_step():
    b = BodySink("kt_")
    kcol = b.op("Unsqueeze", ["kt_k", b.i64([-1])])                          # [B, H, K, 1]
    vrow = b.op("Unsqueeze", ["kt_v", b.i64([-2])])                          # [B, H, 1, V]
    decay = b.op("Sub", [b.const(1.0, "f32"), kcol])
    b.op("Add", [b.op("Mul", [decay, "kt_S"]), b.op("Mul", [kcol, vrow])], outputs=["kt_S_next"])
    o = b.op("MatMul", [b.op("Unsqueeze", ["kt_q", b.i64([-2])]), "kt_S_next"])
    b.op("Squeeze", [o, b.i64([-2])], outputs=["kt_o"])
    return body_graph(b, "key_tied_step", ["kt_S", "kt_q", "kt_k", "kt_v"], ["kt_S_next", "kt_o"])
