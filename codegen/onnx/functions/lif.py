"""`lif` as an ONNX function: a Scan over the time axis (axis 1) with the membrane as state.

    h = v + (x_t - (v - v_reset)) / tau,  s_t = h >= v_threshold,  v = Where(s_t, v_reset, h)

The parameters (function attributes) ride along as loop-invariant Scan states, so the body
is a closed graph (no outer-scope names inside a function).
"""
from __future__ import annotations

from functools import lru_cache

from ..builder import BodySink
from .common import attr_const, body_graph, make_function


@lru_cache(maxsize=None)
def lif_function():
    """FunctionProto `Lif`: inputs x [B, T, *C], v0 [B, *C]; outputs spikes, final membrane.
    Attributes: tau, v_threshold, v_reset (float)."""
    s = BodySink("")
    tau = attr_const(s, "tau", "float")
    inv_tau = s.op("Div", [s.const(1.0, "f32"), tau])
    vth, vr = attr_const(s, "v_threshold", "float"), attr_const(s, "v_reset", "float")
    outs = s.op("Scan", ["v0", inv_tau, vth, vr, "x"], n_out=5, body=_step(), num_scan_inputs=1,
                scan_input_axes=[1], scan_output_axes=[1])
    s.op("Identity", [outs[4]], outputs=["spikes"])
    s.op("Identity", [outs[0]], outputs=["v_final"])
    return make_function("Lif", ["x", "v0"], ["spikes", "v_final"], s,
                         {"tau": 2.0, "v_threshold": 1.0, "v_reset": 0.0})


@lru_cache(maxsize=None)
def _step():
    b = BodySink("lif_")
    v, it, vth, vr, x = "lif_v", "lif_it", "lif_vth", "lif_vr", "lif_x"
    h = b.op("Add", [v, b.op("Mul", [b.op("Sub", [x, b.op("Sub", [v, vr])]), it])])
    fire = b.op("GreaterOrEqual", [h, vth])
    b.op("Where", [fire, vr, h], outputs=["lif_v_next"])
    b.op("Cast", [fire], outputs=["lif_s"], to=1)          # FLOAT
    for name in ("it", "vth", "vr"):
        b.op("Identity", [f"lif_{name}"], outputs=[f"lif_{name}_next"])
    return body_graph(b, "lif_step", [v, it, vth, vr, x],
                      ["lif_v_next", "lif_it_next", "lif_vth_next", "lif_vr_next", "lif_s"])
