"""spikec.codegen.tvm: the `cpu` target (TVM Relax + scheduled TensorIR for llvm)
and TVM source emission for other device kinds."""
from .sources import emit_sources
from .target import CpuTarget

__all__ = ["CpuTarget", "emit_sources"]
