"""The `cuda` and `rocm` targets.

cuda: the torch target's generated Python with the fused ops on Triton
kernels (forward and backward), so autograd and training work as on the torch
target. On a machine with a GPU the module and its inputs live on "cuda"; with
none, the kernels run in Triton's interpreter on CPU tensors (mode.py), which
is how CI checks them. `lower(graph, archs=("sm_90",))` also compiles the
graph's kernel specialisations ahead of time and ships PTX + cubin in
`sources()`.

rocm: the same kernels compiled ahead of time for AMD gfx942 (AMDGCN + hsaco
in `sources()`). Compile-only: nothing runs.
"""
from __future__ import annotations

from spikec.ir import Graph, SpikecError

from ..errors import TargetUnavailableError
from ..module import CompiledModule
from ..torch import TorchModule, TorchTarget, generate
from ..torch.nn_module import trainable_names
from . import mode
from .aot import ARCHS, binary_key, compile_kernels
from .graph_kernels import graph_specs
from .rules import CUDA_RULES

OPTIONS = ("parameters", "device", "archs", "backward")


def kernel_files(graph: Graph, archs, backward: bool) -> dict[str, str | bytes]:
    """`kernels/<arch>/<name>.<ext>` for every kernel specialisation the graph launches."""
    files: dict[str, str | bytes] = {}
    specs = graph_specs(graph, backward)
    for arch in archs:
        if arch not in ARCHS:
            raise SpikecError(f"unknown GPU architecture {arch!r}", hint=f"use one of {', '.join(ARCHS)}")
        if not specs:
            continue
        text = "amdgcn" if arch.startswith("gfx") else "ptx"
        for name, asm in compile_kernels(arch, specs=specs).items():
            files[f"kernels/{arch}/{name}.{text}"] = asm[text]
            files[f"kernels/{arch}/{name}.{binary_key(arch)}"] = asm[binary_key(arch)]
            files[f"kernels/{arch}/{name}.json"] = asm["metadata"]
    return files


class CudaModule(TorchModule):
    """A TorchModule whose tensor inputs are moved to its device, and whose
    sources include the ahead-of-time compiled kernels (if any)."""

    def __init__(self, *args, kernels: dict | None = None, **kw):
        super().__init__(*args, **kw)
        self.kernels = kernels or {}

    def _on_device(self, inputs):
        dev = self.device
        return [x.to(dev) if hasattr(x, "to") and getattr(x, "device", dev) != dev else x for x in inputs]

    def run(self, *inputs) -> list:
        return super().run(*self._on_device(inputs))

    def forward(self, *inputs):
        return super().forward(*self._on_device(inputs))

    def sources(self) -> dict:
        return {**super().sources(), **self.kernels}


class CudaTarget(TorchTarget):
    name = "cuda"
    description = "Triton kernels for the fused ops (forward + backward), torch for the rest (NVIDIA)"
    device = "cuda"

    def __init__(self, rules=None):
        super().__init__(rules if rules is not None else CUDA_RULES)

    def unavailable_reason(self) -> str | None:
        return mode.unavailable_reason()

    def lower(self, graph: Graph, *, parameters="auto", device=None, archs=(), backward=False,
              **options) -> CudaModule:
        """Options: `parameters` (as the torch target), `device` (default: "cuda" with a GPU, else
        "cpu" for the interpreter), `archs` (e.g. ("sm_80", "sm_90"): ship compiled kernels in
        sources()), `backward` (ship the backward kernels too)."""
        if options:
            raise SpikecError(f"target {self.name!r} has no option {', '.join(map(repr, options))}",
                              hint=f"options: {', '.join(OPTIONS)}")
        code = generate(graph, self.rules, self.name)
        module = CudaModule(graph, code.function, code.source, code.constants,
                            trainable_names(code.constants, parameters), target=self.name,
                            kernels=kernel_files(graph, archs, backward))
        return module.to(device or mode.device())


class RocmModule(CompiledModule):
    target = "rocm"

    def __init__(self, graph: Graph, source: str, kernels: dict):
        super().__init__(graph)
        self._source, self.kernels = source, kernels

    def run(self, *inputs) -> list:
        raise TargetUnavailableError(f"target 'rocm' is compile-only: {RocmTarget.REASON}",
                                     hint="run the graph on the cuda or torch target; dump() writes the "
                                          "hsaco kernels for an AMD machine")

    def sources(self) -> dict:
        return {"model.py": self._source, **self.kernels}


class RocmTarget(TorchTarget):
    name = "rocm"
    description = "the cuda target's Triton kernels compiled ahead of time for AMD gfx942 (compile-only)"
    device = "rocm"
    REASON = ("compile-only: the Triton kernels are compiled for gfx942 (AMDGCN + hsaco in sources()) "
              "but never run or tested on an AMD GPU")

    def __init__(self, rules=None):
        super().__init__(rules if rules is not None else CUDA_RULES.copy("rocm"))

    def unavailable_reason(self) -> str | None:
        return self.REASON

    def lower(self, graph: Graph, *, archs=("gfx942",), backward=False, **options) -> RocmModule:
        """Options: `archs` (AMD architectures, default gfx942), `backward` (the backward kernels too)."""
        if options:
            raise SpikecError(f"target {self.name!r} has no option {', '.join(map(repr, options))}",
                              hint="options: archs, backward")
        bad = [a for a in archs if not a.startswith("gfx")]
        if bad:
            raise SpikecError(f"target 'rocm' compiles for AMD architectures, not {bad}", hint="use gfx942")
        code = generate(graph, self.rules, self.name)
        return RocmModule(graph, code.source, kernel_files(graph, archs, backward))
