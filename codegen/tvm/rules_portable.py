"""Device-neutral lowerings of the fused ops, for TVM source emission (sources.py).

The cpu target's hand-written kernels carry CPU schedules (parallel loops,
vector lanes, register tiles). For GPU and C source the fused ops are instead
plain TE computations that TVM's default per-device schedules (dlight on GPUs)
can map:

- linear attention in its exact quadratic form: b = cumsum of the log-decays,
  A[t,s] = Σ_k q_tk k_sk exp(b_tk - b_sk) for s ≤ t (exponents never positive),
  o = scale · (A v + (q ⊙ exp(b)) S0), S_T = exp(b_T) ⊙ S0 + Σ_s (k_s ⊙ exp(b_T - b_s))ᵀ v_s;
- softmax attention as masked scores -> softmax -> p·v, key/value heads shared
  by index (grouped-query).

O(T²) work: these are for emitting and compiling device source; the cpu
target's kernels are its fast path.
"""
from __future__ import annotations

import functools

from tvm import relax, te, tirx

from spikec.codegen.rules import RuleTable
from spikec.ir import Node

from .lower import Lowering
from .table import load_rules

op = relax.op
OVERRIDDEN = ("linear_attention", "attention", "sliding_window_attention")


def _f(x):
    return tirx.const(x, "float32")


# Kept out of operator fusion and scheduled on their own by sources.py: dlight's GPU
# reduction rule asserts on these reductions once an elementwise producer is fused in.
ATTRS = {"op_pattern": 8, "spikec.portable": 1}


def _te(cx: Lowering, fn, *args):
    return cx.bb.emit_te(fn, *args, primfunc_attrs=ATTRS)


def _prefix_sum(x):
    """Inclusive cumsum over axis 2 as a masked reduction (TVM's GPU scan
    dispatch fails on symbolic lengths)."""
    s = te.reduce_axis((0, x.shape[2]), name="s")
    return te.compute(x.shape, lambda n, h, t, r: te.sum(tirx.Select(s <= t, x[n, h, s, r], _f(0)), axis=s),
                      name="cum_decay")


def _linear_attention(cx: Lowering, node):
    a = node.args
    q, k, v = a["q"], a["k"], a["v"]
    kind = node.arg("gate_kind")
    scale = float(node.arg("scale"))
    H, K = q.type.shape[1], q.type.shape[3]
    Hkv, V = k.type.shape[1], v.type.shape[3]
    G = H // Hkv
    qe, ke, ve = (cx.operand(x, "f32") for x in (q, k, v))
    if kind in ("channel", "scalar"):
        gate = cx.operand(a["gate"], "f32")
    if G > 1:                 # grouped-query heads: repeat k, v (and the gate) to H heads
        ke, ve = (cx.emit(op.repeat(x, G, 1)) for x in (ke, ve))
        if kind in ("channel", "scalar"):
            gate = cx.emit(op.repeat(gate, G, 1))
    G = 1
    if kind == "channel":
        logd = gate
    elif kind == "scalar":
        logd = cx.emit(op.broadcast_to(op.expand_dims(gate, 3), cx.shape(q)))
    elif kind == "key_tied":      # decay 1 - k: exact for k < 1 (the models' sigmoid keys)
        logd = cx.bb.emit_te(lambda kk: te.compute(kk.shape, lambda *i: tirx.log(_f(1) - kk(*i)), name="logd"), ke)
    else:
        logd = cx.emit(op.zeros(cx.shape(q), "float32"))
    b = _te(cx, _prefix_sum, logd)

    def scores(qt, kt, bt):
        L = qt.shape[2]
        r = te.reduce_axis((0, K), name="r")
        return te.compute(
            (qt.shape[0], H, L, L),
            lambda n, h, t, s: te.sum(tirx.Select(
                s <= t, qt[n, h, t, r] * kt[n, h // G, s, r] * tirx.exp(bt[n, h // G, t, r] - bt[n, h // G, s, r]),
                _f(0)), axis=r), name="la_scores")
    A = _te(cx, scores, qe, ke, b)

    def attend(At, vt):
        L = At.shape[2]
        s = te.reduce_axis((0, L), name="s")
        return te.compute((At.shape[0], H, L, V),
                          lambda n, h, t, j: te.sum(At[n, h, t, s] * vt[n, h // G, s, j] * _f(scale), axis=s),
                          name="la_out")
    o = _te(cx, attend, A, ve)
    h0 = a.get("initial_state")
    if h0 is not None:
        def from_state(qt, bt, st):
            r = te.reduce_axis((0, K), name="r")
            return te.compute((qt.shape[0], H, qt.shape[2], V), lambda n, h, t, j: te.sum(
                qt[n, h, t, r] * tirx.exp(bt[n, h // G, t, r]) * st[n, h, r, j] * _f(scale), axis=r), name="la_s0")
        o = cx.emit(op.add(o, _te(cx, from_state, qe, b, cx.operand(h0, "f32"))))
    if not node.arg("output_final_state"):
        return o

    def final(kt, vt, bt):
        L = kt.shape[2]
        s = te.reduce_axis((0, L), name="s")
        return te.compute((kt.shape[0], H, K, V), lambda n, h, r, j: te.sum(
            kt[n, h // G, s, r] * tirx.exp(bt[n, h // G, L - 1, r] - bt[n, h // G, s, r]) * vt[n, h // G, s, j],
            axis=s), name="la_state")
    S = _te(cx, final, ke, ve, b)
    if h0 is not None:
        def carry(bt, st):
            L = bt.shape[2]
            return te.compute((bt.shape[0], H, K, V),
                              lambda n, h, r, j: tirx.exp(bt[n, h // G, L - 1, r]) * st[n, h, r, j], name="la_carry")
        S = cx.emit(op.add(S, _te(cx, carry, b, cx.operand(h0, "f32"))))
    return [o, S]


def _attention(cx: Lowering, node):
    a = node.args
    q, k, v = a["q"], a["k"], a["v"]
    scale = float(a.get("scale", 1.0))
    causal = bool(a.get("causal", True)) or node.op == "sliding_window_attention"
    window = int(a["window"]) if node.op == "sliding_window_attention" else None
    H, D, Hkv, Dv = q.type.shape[1], q.type.shape[3], k.type.shape[1], v.type.shape[3]
    G = H // Hkv
    qe, ke, ve = (cx.operand(x, "f32") for x in (q, k, v))
    if G > 1:
        ke, ve = (cx.emit(op.repeat(x, G, 1)) for x in (ke, ve))
    G = 1

    def scores(qt, kt):
        Lq, Lk = qt.shape[2], kt.shape[2]
        r = te.reduce_axis((0, D), name="r")
        raw = te.compute((qt.shape[0], H, Lq, Lk),
                         lambda n, h, i, j: te.sum(qt[n, h, i, r] * kt[n, h // G, j, r] * _f(scale), axis=r),
                         name="scores")

        def masked(n, h, i, j):
            pos = i + (Lk - Lq)
            ok = tirx.const(True, "bool")
            if causal:
                ok = tirx.all(ok, j <= pos)
            if window is not None:
                ok = tirx.all(ok, j > pos - window)
            return tirx.Select(ok, raw[n, h, i, j], _f(-3.0e38))
        return te.compute(raw.shape, masked, name="masked_scores")
    p = cx.emit(op.nn.softmax(_te(cx, scores, qe, ke), 3))

    def attend(pt, vt):
        s = te.reduce_axis((0, pt.shape[3]), name="s")
        return te.compute((pt.shape[0], H, pt.shape[2], Dv),
                          lambda n, h, i, j: te.sum(pt[n, h, i, s] * vt[n, h // G, s, j], axis=s), name="attend")
    return _te(cx, attend, p, ve)


@functools.lru_cache(maxsize=None)
def portable_rules() -> RuleTable:
    """The cpu rules with the fused ops replaced by the TE forms above."""
    cpu = load_rules()
    table = RuleTable("tvm-source")
    for name in cpu.ops():
        if name not in OVERRIDDEN:
            table.add(name, cpu.get(Node(name, {}, [])))
    table.add("linear_attention", _linear_attention)
    table.add("attention", _attention)
    table.add("sliding_window_attention", _attention)
    return table
