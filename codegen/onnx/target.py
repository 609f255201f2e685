"""The `onnx` target: the IR lowered to one ONNX model, fused ops as model-local functions."""
from __future__ import annotations

import onnx

from spikec.codegen.errors import LoweringError
from spikec.codegen.target import Target
from spikec.ir import Graph

from .lower import lower_graph
from .module import OnnxModule
from .rules import RULES

OPTIONS = {"chunk": "chunk length of linear_attention's chunked form (default 64)",
           "intra_op_threads": "onnxruntime intra-op threads (default: onnxruntime's choice)",
           "providers": "onnxruntime execution providers (default ['CPUExecutionProvider'])",
           "check": "run onnx.checker.check_model(full_check=True) on the result (default True)"}


class OnnxTarget(Target):
    name = "onnx"
    description = "ONNX model, fused ops as model-local functions, run by onnxruntime"
    device = "cpu"
    rules = RULES
    requires = (("onnxruntime", "onnxruntime"),)

    def lower(self, graph: Graph, **options) -> OnnxModule:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise LoweringError(f"onnx target: unknown option {unknown[0]!r}",
                                hint="options: " + "; ".join(f"{k}: {v}" for k, v in OPTIONS.items()))
        model = lower_graph(graph, options)
        if options.get("check", True):
            onnx.checker.check_model(model, full_check=True)
        return OnnxModule(graph, model, intra_op_threads=options.get("intra_op_threads"),
                          providers=options.get("providers"))
