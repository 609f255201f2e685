"""spikec.codegen.mlir: the `mlir` target (torch-mlir; linalg run by the LLVM execution engine).

    mod = spikec.codegen.get_target("mlir").lower(graph)
    mod.run(*inputs); mod.sources()   # model.linalg.mlir, model.tosa.mlir, model.stablehlo.mlir
"""
from .kernels import linear_attention_module
from .target import MlirTarget

__all__ = ["MlirTarget", "linear_attention_module"]
