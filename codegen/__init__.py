"""spikec.codegen: the target registry and one backend per sub-folder.

    spikec.codegen.targets()            # name -> Target, with .native_ops()
    t = spikec.codegen.get_target("torch")
    mod = t.lower(graph)                # CompiledModule; mod.run(*inputs)

`spikec.compile` (the public API) wraps this in an Artifact.
"""
from .errors import LoweringError, TargetUnavailableError, UnknownTargetError
from .module import CompiledModule
from .rules import RuleTable
from .target import Target, describe_targets, get_target, register_target, target_names, targets

# Built-in backends, loaded on first use. Each sub-folder owns its target.
register_target("torch", "spikec.codegen.torch:TorchTarget",
                "generated Python over torch ops, fused ops as chunked kernels with autograd")
register_target("cpu", "spikec.codegen.tvm:CpuTarget",
                "TVM Relax + scheduled TensorIR kernels built for llvm")
register_target("cuda", "spikec.codegen.triton:CudaTarget",
                "Triton kernels for the fused ops, torch for the rest (NVIDIA)")
register_target("rocm", "spikec.codegen.triton:RocmTarget",
                "the cuda target's Triton kernels compiled for AMD gfx942 (compile-only)")
register_target("onnx", "spikec.codegen.onnx:OnnxTarget",
                "ONNX model, fused ops as model-local functions, run by onnxruntime")
register_target("mlir", "spikec.codegen.mlir:MlirTarget",
                "torch-mlir: linalg-on-tensors / tosa / stablehlo, run by the LLVM execution engine")

__all__ = ["Target", "RuleTable", "CompiledModule", "register_target", "get_target", "targets", "target_names",
           "describe_targets", "LoweringError", "UnknownTargetError", "TargetUnavailableError"]
