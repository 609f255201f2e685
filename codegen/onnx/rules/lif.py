"""`lif` -> a call of the model-local `Lif` function (a Scan over time, f32 inside)."""
from __future__ import annotations

from ..functions.common import DOMAIN, INT64_MAX
from ..functions.lif import lif_function
from . import RULES
from .fused import _back, _f32


@RULES.rule("lif")
def _lif(ctx, node):
    fn = ctx.function(lif_function())
    x = _f32(ctx, node.args["x"])
    v0 = node.args.get("v0")
    if v0 is not None:
        v0 = _f32(ctx, v0)
    else:                       # v_reset everywhere, shaped like x without its time axis
        s = ctx.sink
        shape = s.op("Shape", [x])
        keep = s.op("Concat", [s.op("Slice", [shape, s.i64([0]), s.i64([1])]),
                               s.op("Slice", [shape, s.i64([2]), s.i64([INT64_MAX])])], axis=0)
        v0 = s.op("Expand", [s.scalar(float(node.arg("v_reset")), "f32"), keep])
    outs = ctx.sink.op(fn, [x, v0], n_out=2, domain=DOMAIN, hint="lif", tau=float(node.arg("tau")),
                       v_threshold=float(node.arg("v_threshold")), v_reset=float(node.arg("v_reset")))
    return _back(ctx, outs, node)
