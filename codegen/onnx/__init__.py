"""spikec.codegen.onnx: the `onnx` target (onnxruntime runs the model).

    mod = spikec.codegen.get_target("onnx").lower(graph, chunk=64, intra_op_threads=2)
    mod.run(*inputs); mod.sources()["model.onnx.txt"]
"""
from .kernels import linear_attention_model
from .target import OnnxTarget

__all__ = ["OnnxTarget", "linear_attention_model"]
