"""Constants become initializers (the weights of the model)."""
from __future__ import annotations

from spikec.codegen.errors import LoweringError

from . import RULES


@RULES.rule("constant")
def _constant(ctx, node):
    name = node.args["name"]
    if name not in ctx.graph.constants:
        raise LoweringError(f"onnx: constant {name!r} has no data in the graph's constant table")
    if name not in ctx.initializer_names:
        # added to the model on first use: a weight only read pre-transposed (linear) is not stored twice
        onnx_name = ctx.unique(name)
        ctx.initializer_names[name] = onnx_name
        ctx.pending_constants[onnx_name] = ctx.graph.constants[name]
    return ctx.initializer_names[name]
