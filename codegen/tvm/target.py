"""`cpu`: the graph as TVM Relax, fused ops as scheduled TensorIR, built for llvm."""
from __future__ import annotations

from spikec.codegen.target import Target
from spikec.ir import Graph

from .build import compile_module
from .host import host_target, set_threads
from .lower import Lowering
from .module import CpuModule
from .table import load_rules


class CpuTarget(Target):
    name = "cpu"
    description = "TVM Relax + scheduled TensorIR kernels built for llvm"
    device = "cpu"
    rules = load_rules()

    def lower(self, graph: Graph, *, num_threads: int | None = None, **options) -> CpuModule:
        """Options: `num_threads` (TVM thread pool size), `chunk` (linear-attention
        chunk length, default 64), `gemm` ("blas" | "tir", see gemm.py)."""
        set_threads(num_threads)
        lw = Lowering(graph, self.rules, options)
        irmod = lw.build()
        tgt = host_target()
        exe = compile_module(irmod, tgt)
        return CpuModule(graph, irmod, exe, lw.weights, tgt)
