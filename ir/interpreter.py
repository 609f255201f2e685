"""`interpret(graph, *inputs)`: run any graph with the ops' reference
implementations. This is the oracle every backend is compared against."""
from __future__ import annotations

from typing import Any

import sympy
import torch

from .errors import InterpretError, SpikecError
from .graph import Graph, Node, Value
from .ops_structured import RunContext
from .types import ScalarType, dtype_name


class _Env:
    """Concrete values of the symbolic dims, bound as tensors flow in."""

    def __init__(self):
        self.values: dict[sympy.Symbol, int] = {}

    def eval(self, d) -> int | None:
        if isinstance(d, int):
            return d
        if not d.free_symbols <= self.values.keys():
            return None
        return int(d.xreplace({s: sympy.Integer(self.values[s]) for s in d.free_symbols}))

    def bind(self, v: Value, x: Any, node: Node | None, check: bool) -> None:
        t = v.type
        if isinstance(t, ScalarType):
            return
        if not isinstance(x, torch.Tensor):
            raise InterpretError(f"%{v.name} should be a tensor {t}, got {type(x).__name__}",
                                 where=node.where() if node else None)
        if check and (x.dim() != t.rank or dtype_name(x.dtype) != t.dtype):
            raise InterpretError(f"%{v.name} is declared {t} but is {dtype_name(x.dtype)}{list(x.shape)}",
                                 where=node.where() if node else "graph input")
        for d, n in zip(t.shape, x.shape):
            if isinstance(d, sympy.Symbol) and d not in self.values:
                self.values[d] = int(n)
                continue
            want = self.eval(d)
            if check and want is not None and want != n:
                raise InterpretError(f"%{v.name} is declared {t} but has shape {list(x.shape)} "
                                     f"(dim {d} = {want} here)", where=node.where() if node else "graph input")

    def concrete(self, a: Any, vals: dict[int, Any]) -> Any:
        if isinstance(a, Value):
            return vals[id(a)]
        if isinstance(a, list):
            return [self.concrete(x, vals) for x in a]
        if isinstance(a, sympy.Expr):
            r = self.eval(a)
            if r is None:
                raise InterpretError(f"symbolic argument {a} is not bound yet")
            return r
        return a


def _region_constants(region: Graph, outer: dict) -> dict:
    # A region may hold constants of its own; they extend the enclosing table.
    return {**outer, **region.constants} if region.constants else outer


def _run(graph: Graph, inputs, constants, env: _Env, check: bool) -> list:
    if len(inputs) != len(graph.inputs):
        raise InterpretError(f"graph @{graph.name} takes {len(graph.inputs)} inputs "
                             f"({', '.join('%' + v.name for v in graph.inputs)}), got {len(inputs)}")
    vals: dict[int, Any] = {}
    for v, x in zip(graph.inputs, inputs):
        env.bind(v, x, None, check)
        vals[id(v)] = x
    for node in graph.nodes:
        opdef = node.opdef
        args = {k: env.concrete(a, vals) for k, a in node.args.items()}
        if opdef.category == "structured":
            args["_ctx"] = RunContext(
                constants, lambda i, xs, _n=node: _run(_n.regions[i], xs, _region_constants(_n.regions[i], constants),
                                                       env, check))
        try:
            out = opdef.call(args)
        except SpikecError:
            raise
        except Exception as e:
            raise InterpretError(f"{node.op} failed: {type(e).__name__}: {e}", where=node.where()) from e
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        if len(outs) != len(node.outputs):
            raise InterpretError(f"{node.op} produced {len(outs)} results, the node declares {len(node.outputs)}",
                                 where=node.where())
        for v, x in zip(node.outputs, outs):
            env.bind(v, x, node, check)
            vals[id(v)] = x
    return [vals[id(v)] for v in graph.outputs]


def interpret(graph: Graph, *inputs, constants: dict | None = None, check: bool = True):
    """Run `graph` on `inputs`; returns one tensor, or a tuple for several outputs.
    With `check`, every result is checked against its declared type."""
    with torch.no_grad():
        outs = _run(graph, list(inputs), constants if constants is not None else graph.constants, _Env(), check)
    return outs[0] if len(outs) == 1 else tuple(outs)
