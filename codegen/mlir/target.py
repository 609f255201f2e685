"""The `mlir` target: the IR through torch.export and torch-mlir to linalg-on-tensors (run on
CPU by the LLVM execution engine), tosa and stablehlo."""
from __future__ import annotations

from spikec.codegen.errors import LoweringError
from spikec.codegen.target import Target
from spikec.ir import Graph

from .rules import RULES

OPTIONS = {"chunk": "chunk length of linear_attention's loop-free chunked form (default 64)",
           "dynamic": "keep the graph's symbolic dims symbolic in linalg and stablehlo (default True)",
           "static_length": "the length symbolic dims get where a static shape is needed: tosa (default 16)",
           "opt_level": "LLVM optimisation level of the execution engine (default 0: the tiny zoo models JIT "
                        "in ~6 s instead of ~17 s; 2 runs ~4x faster)"}


class MlirTarget(Target):
    name = "mlir"
    description = "torch-mlir: linalg-on-tensors / tosa / stablehlo, run by the LLVM execution engine"
    device = "cpu"
    rules = RULES
    requires = (("torch_mlir", "torch-mlir"),)

    def lower(self, graph: Graph, **options):
        from .export import export_program, import_torch_backend, lower_to
        from .jit import JitFunction
        from .module import MlirModule, _has_symbols, other_texts
        from .toolchain import private_tmpdir
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise LoweringError(f"mlir target: unknown option {unknown[0]!r}",
                                hint="options: " + "; ".join(f"{k}: {v}" for k, v in OPTIONS.items()))
        RULES.check(graph)
        dynamic = options.get("dynamic", True)
        static_length = int(options.get("static_length", 16))
        with private_tmpdir():
            backend = import_torch_backend(export_program(graph, options, dynamic, static_length))
            linalg = lower_to(backend, "linalg-on-tensors")
            linalg_text = str(linalg)
            jit = JitFunction(linalg, opt_level=int(options.get("opt_level", 0)))
        notes = {}
        if _has_symbols(graph):
            notes["tosa"] = (f"TOSA takes static shapes only (it rejects dynamic dims): the tosa text fixes every "
                             f"symbolic input dim to {static_length}")
            if not dynamic:
                notes["linalg-on-tensors"] = f"lowered with dynamic=False: symbolic dims fixed to {static_length}"
        return MlirModule(graph, linalg_text, jit,
                          lambda: other_texts(graph, options, backend, dynamic, static_length), notes)
