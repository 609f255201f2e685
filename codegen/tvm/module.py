"""The cpu target's compiled module: a Relax VM over the built executable."""
from __future__ import annotations

import torch
import tvm
from tvm import relax

from spikec.codegen.module import CompiledModule
from spikec.ir import Graph, InterpretError
from spikec.ir.types import dtype_name


def to_tvm(t: torch.Tensor):
    """A torch CPU tensor as a TVM tensor sharing its memory (DLPack)."""
    if t.device.type != "cpu":
        t = t.cpu()
    t = t.contiguous()
    if t.data_ptr() % 64:      # TVM refuses DLPack buffers off its 64-byte alignment (views into a state)
        t = t.clone()
    return tvm.runtime.from_dlpack(t)


def to_torch(x) -> torch.Tensor:
    return torch.from_dlpack(x)


class CpuModule(CompiledModule):
    target = "cpu"

    def __init__(self, graph: Graph, irmod: tvm.IRModule, executable, weights: list, tvm_target):
        super().__init__(graph)
        self.irmod = irmod
        self.executable = executable
        self.tvm_target = tvm_target
        self._weights = [to_tvm(w) for w in weights]   # converted once, memory shared with the graph
        self._keep = weights
        self.vm = relax.VirtualMachine(executable, tvm.cpu())
        self._main = self.vm["main"]

    def _check(self, inputs) -> None:
        want = self.graph.inputs
        if len(inputs) != len(want):
            raise InterpretError(f"the cpu module takes {len(want)} inputs, got {len(inputs)}")
        for v, x in zip(want, inputs):
            if not isinstance(x, torch.Tensor):
                raise InterpretError(f"input %{v.name} must be a torch tensor, got {type(x).__name__}")
            if x.dim() != v.type.rank or dtype_name(x.dtype) != v.type.dtype:
                raise InterpretError(f"input %{v.name} is declared {v.type} but is "
                                     f"{dtype_name(x.dtype)}{list(x.shape)}")

    def run(self, *inputs) -> list:
        self._check(inputs)
        args = [to_tvm(x) for x in inputs]
        out = self._main(*args, *self._weights)
        return [to_torch(o) for o in out]

    def sources(self) -> dict[str, str]:
        return {"relax_module.py": self.irmod.script()}
