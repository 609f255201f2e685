"""The onnx target's rule table: IR op -> the ONNX nodes it becomes.

A rule is `fn(ctx, node) -> output name(s)`; `ctx` (lower.LowerCtx) hands out the ONNX
names of the node's operands, constants, run-time dims and model-local functions.
One module per family of ops registers into the one table."""
from spikec.codegen.rules import RuleTable

RULES = RuleTable("onnx")

from . import elementwise, reduce, shape, index, create, nn, fused, structured, lif  # noqa: E402,F401
