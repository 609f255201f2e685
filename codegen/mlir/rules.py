"""The mlir target's rule table: IR op -> the torch call the generated program makes while
torch.export traces it. Core ops call the aten overload their OpDef names (the OpDef's
reference implementation is exactly that call); fused ops call spikec custom ops that the
decomposition table later turns into loop-free aten code."""
from __future__ import annotations

import torch

from spikec.codegen.errors import LoweringError
from spikec.codegen.rules import RuleTable
from spikec.ir.ops_aten import CORE_OPS

from . import custom_ops  # noqa: F401  (registers torch.ops.spikec.mlir_*)

RULES = RuleTable("mlir")

# aten ops torch-mlir cannot lower (they import as a generic torch.operator), or that
# return a host scalar rather than a tensor.
UNSUPPORTED = {"sort", "_local_scalar_dense"}
REWRITTEN = {"index", "index_put", "fmod", "remainder", "select", "gelu"}      # rules_rewrites.py


def _aten_call(prog, node, args):
    return node.opdef.call(args)


for _op in CORE_OPS:
    if _op not in UNSUPPORTED | REWRITTEN:
        RULES.add(_op, _aten_call)


@RULES.rule("constant")
def _constant(prog, node, args):
    return prog.constant(node.args["name"])


@RULES.rule("linear_attention")
def _linear_attention(prog, node, args):
    o, state = torch.ops.spikec.mlir_linear_attention(
        args["q"], args["k"], args["v"], args.get("gate"), args.get("initial_state"), node.arg("gate_kind"),
        float(node.arg("scale")), int(prog.options.get("chunk", 64)))
    return (o, state) if node.arg("output_final_state") else o


@RULES.rule("attention")
def _attention(prog, node, args):
    return torch.ops.spikec.mlir_attention(args["q"], args["k"], args["v"], float(node.arg("scale")),
                                           bool(node.arg("causal")))


@RULES.rule("sliding_window_attention")
def _sliding_window_attention(prog, node, args):
    return torch.ops.spikec.mlir_sliding_window_attention(args["q"], args["k"], args["v"], int(node.args["window"]),
                                                          float(node.arg("scale")))


@RULES.rule("lif")
def _lif(prog, node, args):
    # Unrolled over a static T: torch-mlir imports no loop that works here (while_loop with
    # captured values fails to import or miscompiles, scan is unimplemented; toolchain.md).
    T = node.args["x"].type.shape[1]
    if not isinstance(T, int):
        raise LoweringError(f"mlir: lif over a symbolic length {T} needs a loop, which torch-mlir cannot "
                            f"import{node.where()}", hint="lower with dynamic=False (one static length), "
                            "or use the torch, cpu or onnx target")
    x, tau = args["x"], float(node.arg("tau"))
    vth, vr = float(node.arg("v_threshold")), float(node.arg("v_reset"))
    v = args.get("v0")
    v = torch.full_like(x.select(1, 0), vr) if v is None else v.to(x.dtype)
    spikes = []
    for t in range(T):
        h = v + (x.select(1, t) - (v - vr)) / tau
        s = (h - vth >= 0).to(x.dtype)
        v = h * (1 - s) + vr * s
        spikes.append(s)
    return torch.stack(spikes, 1), v


from . import rules_rewrites  # noqa: E402,F401  (index, index_put, fmod/remainder, select, gelu)
