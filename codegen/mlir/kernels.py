"""One fused op as a runnable MLIR module, for kernel benchmarks (bench/kernels.py)."""
from __future__ import annotations

from spikec.codegen.onnx.kernels import linear_attention_graph

from .target import MlirTarget


def linear_attention_module(B: int, H: int, T: int | None, D: int, chunk: int = 64, gate_kind: str = "channel",
                            opt_level: int = 2):
    """Compiled fused GLA forward through torch-mlir's linalg path and the LLVM execution
    engine; `mod.run(q, k, v, gate) -> [o]`. T=None compiles one function for every length."""
    return MlirTarget().lower(linear_attention_graph(B, H, T, D, gate_kind), chunk=chunk, opt_level=opt_level)
