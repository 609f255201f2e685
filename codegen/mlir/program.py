"""An nn.Module that runs an IR graph op by op through the mlir rule table; torch.export
traces it into the aten graph torch-mlir imports. Weights are buffers, so the exported
program carries them and torch-mlir inlines them as constants."""
from __future__ import annotations

import re

import sympy
import torch

from spikec.codegen.errors import LoweringError
from spikec.ir import Graph, TensorType
from spikec.ir.types import torch_dtype

from .rules import RULES
from .symbolic import bind, concrete


class IRProgram(torch.nn.Module):
    def __init__(self, graph: Graph, options: dict | None = None):
        super().__init__()
        self.graph = graph
        self.options = options or {}
        self._buffer_of: dict[str, str] = {}
        for n in graph.walk():
            if n.op == "constant" and n.args["name"] not in self._buffer_of:
                name = n.args["name"]
                attr = f"c{len(self._buffer_of)}_" + re.sub(r"\W", "_", name)[:40]
                self.register_buffer(attr, graph.constants[name])
                self._buffer_of[name] = attr

    @staticmethod
    def dtype_of(value) -> torch.dtype:
        return torch_dtype(value.type.dtype)

    def constant(self, name: str) -> torch.Tensor:
        return getattr(self, self._buffer_of[name])

    @staticmethod
    def _unfrozen(arg, value):
        # torch-mlir's frozen import inlines weights as literals, and a literal inside a tensor
        # list (index, cat, stack) is rejected ("Heterogeneous lists are not supported"):
        # a clone makes such an entry a computed value.
        if not isinstance(arg, list):
            return value
        return [x.clone() if getattr(a, "producer", None) is not None and a.producer.op == "constant" else x
                for a, x in zip(arg, value)]

    def forward(self, *inputs):
        env: dict = {}
        vals: dict = {}
        for v, x in zip(self.graph.inputs, inputs):
            bind(v, x, env)
            vals[id(v)] = x
        for node in self.graph.nodes:
            args = {k: self._unfrozen(a, concrete(a, env, vals)) for k, a in node.args.items()}
            out = RULES.get(node)(self, node, args)
            outs = list(out) if isinstance(out, (tuple, list)) else [out]
            for v, x in zip(node.outputs, outs):
                bind(v, x, env)
                vals[id(v)] = x
        return tuple(vals[id(v)] for v in self.graph.outputs)


def example_length(lo: int, hi: int | None, prefer: int = 16) -> int:
    """A trace length inside [lo, hi] that is not 0 or 1 (torch.export specialises those)."""
    n = max(prefer, lo, 2)
    return n if hi is None else min(n, hi)


def example_inputs(graph: Graph, lengths: dict[str, int]) -> list[torch.Tensor]:
    out = []
    for v in graph.inputs:
        if not isinstance(v.type, TensorType):
            raise LoweringError(f"mlir: graph input %{v.name} is a host scalar ({v.type}); inputs must be tensors")
        shape = []
        for d in v.type.shape:
            if isinstance(d, int):
                shape.append(d)
            elif isinstance(d, sympy.Symbol) and d.name in lengths:
                shape.append(lengths[d.name])
            else:
                raise LoweringError(f"mlir: input %{v.name} has the dim {d}, which is not a plain symbol",
                                    hint="give inputs plain symbolic dims (T), or static ones")
        dt = torch_dtype(v.type.dtype)
        out.append(torch.randn(shape).to(dt) if dt.is_floating_point else torch.zeros(shape, dtype=dt))
    return out


def dynamic_shapes(graph: Graph, lengths: dict[str, int]):
    """torch.export's dynamic_shapes for `forward(*inputs)`: Dim.DYNAMIC with the graph's range for
    every symbolic input dim. A named Dim would make export reject any guard its solver cannot
    prove from the range alone, e.g. min(32(P+1), 64(P+1)) == 32(P+1) from a reshape of an
    expanded KV cache, true for every P >= 0; DYNAMIC records such guards instead. What DYNAMIC
    allows silently, a narrowed range, `export.check_still_symbolic` turns into an error."""
    specs = []
    for v in graph.inputs:
        spec = {}
        for i, d in enumerate(v.type.shape):
            if isinstance(d, sympy.Symbol):
                lo, hi = graph.symbols.get(d.name, (2, None))
                spec[i] = torch.export.Dim.DYNAMIC(min=max(lo, 0), max=hi)
        specs.append(spec or None)
    return (tuple(specs),)
