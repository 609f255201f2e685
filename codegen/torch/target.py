"""The `torch` target: generated Python over torch ops, fused ops as torch kernels
with their own backward. Runs everywhere; the training path."""
from __future__ import annotations

from spikec.ir import Graph, SpikecError

from ..target import Target
from .codegen import generate
from .nn_module import TorchModule, trainable_names
from .table import load_rules

OPTIONS = ("parameters", "device")


class TorchTarget(Target):
    name = "torch"
    description = "generated Python over torch ops, fused ops as chunked kernels with autograd"
    device = "cpu"

    def __init__(self, rules=None):
        self.rules = rules if rules is not None else load_rules()

    def lower(self, graph: Graph, *, parameters="auto", device=None, **options) -> TorchModule:
        """Options: `parameters` ("auto" | "all" | "none" | names: which floating constants
        train, see nn_module.py), `device` (move the module there)."""
        if options:
            raise SpikecError(f"target {self.name!r} has no option {', '.join(map(repr, options))}",
                              hint=f"options: {', '.join(OPTIONS)}")
        code = generate(graph, self.rules, self.name)
        module = TorchModule(graph, code.function, code.source, code.constants,
                             trainable_names(code.constants, parameters), target=self.name)
        return module.to(device) if device is not None else module
