"""The compiled MLIR module: linalg-on-tensors run by the LLVM execution engine, plus the
tosa and stablehlo forms of the same program as text."""
from __future__ import annotations

import numpy as np
import torch

from spikec.codegen.errors import LoweringError
from spikec.codegen.module import CompiledModule
from spikec.ir import Graph, InterpretError

from .toolchain import private_tmpdir

SOURCE_NAMES = {"linalg-on-tensors": "model.linalg.mlir", "tosa": "model.tosa.mlir", "stablehlo": "model.stablehlo.mlir"}


class MlirModule(CompiledModule):
    target = "mlir"

    def __init__(self, graph: Graph, linalg_text: str, jit, texts_fn, notes: dict[str, str]):
        super().__init__(graph)
        self.linalg_text = linalg_text
        self.jit = jit
        self._texts_fn = texts_fn          # () -> ({output type: text}, {output type: error})
        self._texts: dict[str, str] | None = None
        self.failures: dict[str, str] = {}
        self.notes = notes                 # output type -> what was fixed to lower it (e.g. tosa's static T)

    def run(self, *inputs) -> list:
        if len(inputs) != len(self.graph.inputs):
            raise InterpretError(f"the MLIR module takes {len(self.graph.inputs)} input(s), got {len(inputs)}")
        arrays = [x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x) for x in inputs]
        return [torch.from_numpy(a) for a in self.jit(*arrays)]

    def texts(self) -> dict[str, str]:
        """{output type: MLIR text} for every type that lowers; `failures` says why the others did not."""
        if self._texts is None:
            self._texts, self.failures = self._texts_fn()
            self._texts = {"linalg-on-tensors": self.linalg_text, **self._texts}
        return self._texts

    def sources(self) -> dict[str, str]:
        out = {SOURCE_NAMES[k]: v for k, v in self.texts().items()}
        report = [f"{k}: {v}" for k, v in self.notes.items()]
        report += [f"{k}: FAILED\n{v}" for k, v in self.failures.items()]
        if report:
            out["mlir_report.txt"] = "\n\n".join(report) + "\n"
        return out


def other_texts(graph, options, torch_backend_dynamic, dynamic: bool, static_length: int):
    """tosa and stablehlo texts; tosa needs static shapes, so it comes from a second export."""
    from .export import export_program, import_torch_backend, lower_to
    texts, failures = {}, {}
    with private_tmpdir():
        for kind in ("tosa", "stablehlo"):
            try:
                base = torch_backend_dynamic
                if kind == "tosa" and dynamic and _has_symbols(graph):
                    base = import_torch_backend(export_program(graph, options, dynamic=False, length=static_length))
                texts[kind] = str(lower_to(base, kind))
            except LoweringError as e:
                failures[kind] = str(e)
    return texts, failures


def _has_symbols(graph) -> bool:
    return any(not isinstance(d, int) for v in graph.inputs for d in getattr(v.type, "shape", ()))
