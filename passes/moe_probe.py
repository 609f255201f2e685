"""Evaluate a value of a graph on probe tensors bound to chosen leaf values.

fuse-moe matches the compute of an MoE layer by structure (router, SwiGLU experts,
accumulation chain) and checks the index bookkeeping between them (masks, nonzero,
gathers, scattered rows, combine weights) by running it on a random routing: the
dispatch code comes in many spellings, but what it computes is fixed.

`Probe(graph, {value: tensor})(v)` returns v computed from the leaves and the graph's
constants, or None when v depends on anything else (another graph input, a region).
"""
from __future__ import annotations

import sympy
import torch

from spikec.ir import Graph, Value
from spikec.ir.graph import iter_values, map_values
from spikec.ir.types import TensorType

PROBE_TOKENS = 32       # rows of a probe when the token count is symbolic


def probe_size(dim, symbols: dict) -> dict:
    """Symbol bindings that make `dim` concrete (a symbol gets PROBE_TOKENS, clipped to its range)."""
    if isinstance(dim, int):
        return {}
    out = {}
    for s in dim.free_symbols:
        lo, hi = symbols.get(s.name, (0, None))
        n = max(PROBE_TOKENS, lo or 0)
        out[s] = n if hi is None else min(n, hi)
    return out


class Probe:
    def __init__(self, graph: Graph, leaves: dict[Value, torch.Tensor], bindings: dict | None = None):
        self.graph = graph
        self.values: dict[int, torch.Tensor | None] = {id(v): t for v, t in leaves.items()}
        self.dims: dict[sympy.Symbol, int] = dict(bindings or {})
        for v, t in leaves.items():
            self._bind(v, t)

    def _bind(self, v: Value, t) -> bool:
        """Learn symbol values from a computed tensor; False when it contradicts its type."""
        if not isinstance(v.type, TensorType) or not isinstance(t, torch.Tensor) or t.dim() != v.type.rank:
            return False
        for d, n in zip(v.type.shape, t.shape):
            if isinstance(d, sympy.Symbol) and d not in self.dims:
                self.dims[d] = int(n)
            elif not isinstance(d, int) and d.free_symbols <= self.dims.keys():
                if int(d.xreplace(self.dims)) != n:
                    return False
            elif isinstance(d, int) and d != n:
                return False
        return True

    def _literal(self, a):
        if isinstance(a, list):
            return [self._literal(x) for x in a]
        if isinstance(a, sympy.Expr):
            if not a.free_symbols <= self.dims.keys():
                raise LookupError(a)
            return int(a.xreplace(self.dims))
        return a

    def __call__(self, v: Value) -> torch.Tensor | None:
        stack = [v]
        while stack:
            top = stack[-1]
            if id(top) in self.values:
                stack.pop()
                continue
            node = top.producer
            if node is None or node.regions or node.opdef.category == "structured" and node.op != "constant":
                self.values[id(top)] = None
                stack.pop()
                continue
            pending = [u for u in node.inputs if id(u) not in self.values]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            self._eval(node)
        return self.values[id(v)]

    def _eval(self, node) -> None:
        if any(self.values[id(u)] is None for u in node.inputs):
            self._fail(node)
            return
        try:
            if node.op == "constant":
                outs = [self.graph.constants[node.args["name"]]]
            else:
                args = {k: self._literal(map_values(a, lambda u: self.values[id(u)])) for k, a in node.args.items()}
                with torch.no_grad():
                    out = node.opdef.call(args)
                outs = list(out) if isinstance(out, (tuple, list)) else [out]
        except Exception:       # an op the probe cannot run (unbound size, bad shapes): no answer
            self._fail(node)
            return
        if len(outs) != len(node.outputs) or not all(self._bind(o, t) for o, t in zip(node.outputs, outs)):
            self._fail(node)
            return
        for o, t in zip(node.outputs, outs):
            self.values[id(o)] = t

    def _fail(self, node) -> None:
        for o in node.outputs:
            self.values[id(o)] = None


def constant_tensor(graph: Graph, v) -> torch.Tensor | None:
    """The value of `v` when it is computed from constants only (weights, their transposes, selects)."""
    if not isinstance(v, Value):
        return None
    seen, todo = set(), [v]
    while todo:
        u = todo.pop()
        if id(u) in seen:
            continue
        seen.add(id(u))
        if u.producer is None:
            return None
        todo.extend(iter_values(list(u.producer.args.values())))
    return Probe(graph, {})(v)
