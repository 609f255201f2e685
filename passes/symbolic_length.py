"""Make the sequence length symbolic again after a loop over time was traced at a fixed length.

A Python loop over time unrolls at trace time, so `from_torch` must specialise
T. Once fuse-linear-attention has collapsed the loop, what is left of T in the
graph is shapes and integer literals (view sizes, `arange(end=T)`, ...).
`trace_symbolic` traces the model at two (or more) lengths, runs the same
pipeline on each, and `unify_lengths` merges the results:

- the graphs must be structurally identical (same ops, values wired the same
  way, same float / string / bool literals, same constant tensors);
- every integer (a literal argument or a dim of a result type) that differs
  between the traces becomes an affine expression a*T + b fitted from the
  first two lengths, with a, b integers; a third length, when given, must
  agree with the fit;
- T is declared in `graph.symbols` with range `t_range`.

It lives in passes (not the frontend) because it is only meaningful after a
pass removed the per-step structure; the frontend's `from_torch` is used as is.
The default pipeline leaves out fold-constants: folding would turn T-dependent
computations (causal masks, RoPE tables) into constant tensors that differ
between the traces; `post_pipeline` (default: `default`) runs after unifying,
when those computations are symbolic and are no longer folded.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable, Sequence

import sympy
import torch

from spikec.ir import Graph, TensorType, Value, sym, verify
from spikec.ir.types import norm_dim

from .errors import PassError

DEFAULT_PIPELINE = "canonicalize,cse,dce,fuse-linear-attention"


class _Unifier:
    def __init__(self, lengths: Sequence[int], symbol: str, t_range):
        self.lengths = list(lengths)
        self.T = sym(symbol)
        self.t_range = tuple(t_range)

    def fail(self, where: str, what: str):
        raise PassError(f"cannot make the length symbolic: {what}", where=where,
                        hint="the traces differ by more than the length; trace a model whose structure "
                             "does not depend on T (after fusion), or change the pipeline")

    def int_(self, vals: list, where: str):
        if all(v == vals[0] for v in vals):
            return vals[0]
        if not all(isinstance(v, int) for v in vals):
            self.fail(where, f"symbolic dims differ between the traces: {vals}")
        (l0, l1), (v0, v1) = self.lengths[:2], vals[:2]
        a = Fraction(v1 - v0, l1 - l0)
        b = v0 - a * l0
        if a.denominator != 1 or b.denominator != 1:
            self.fail(where, f"{vals} at T={self.lengths} is not a*T + b with integer a, b")
        for L, v in zip(self.lengths[2:], vals[2:]):
            if a * L + b != v:
                self.fail(where, f"{vals} at T={self.lengths} is not affine in T "
                                 f"(the fit {a}*T + {b} gives {a * L + b} at T={L})")
        return norm_dim(int(a) * self.T + int(b))

    def literal(self, vals: list, where: str):
        a0 = vals[0]
        if isinstance(a0, (list, tuple)):
            if not all(isinstance(v, (list, tuple)) and len(v) == len(a0) for v in vals):
                self.fail(where, "list arguments differ in length")
            return [self.literal([v[i] for v in vals], where) for i in range(len(a0))]
        if isinstance(a0, int) and not isinstance(a0, bool) or isinstance(a0, sympy.Expr):
            if not all((isinstance(v, int) and not isinstance(v, bool)) or isinstance(v, sympy.Expr) for v in vals):
                self.fail(where, f"arguments differ: {vals}")
            return self.int_(vals, where)
        if not all(type(v) is type(a0) and (v == a0 or (v != v and a0 != a0)) for v in vals):
            self.fail(where, f"a non-integer argument depends on T: {vals}")
        return a0

    def type_(self, types: list, where: str):
        t0 = types[0]
        if not isinstance(t0, TensorType):
            if any(t != t0 for t in types):
                self.fail(where, f"types differ: {types}")
            return t0
        if any(not isinstance(t, TensorType) or t.rank != t0.rank or t.dtype != t0.dtype for t in types):
            self.fail(where, f"types differ in rank or dtype: {', '.join(map(str, types))}")
        return TensorType(tuple(self.int_([t.shape[i] for t in types], where) for i in range(t0.rank)), t0.dtype)

    def graph(self, gs: list[Graph], top: bool = True) -> Graph:
        out = Graph(gs[0].name)
        out.symbols = dict(gs[0].symbols)
        if top:
            out.symbols[self.T.name] = self.t_range
        out.constants = dict(gs[0].constants)
        vmap: dict[int, Value] = {}
        if len({len(g.inputs) for g in gs}) != 1 or len({len(g.nodes) for g in gs}) != 1 \
                or len({len(g.outputs) for g in gs}) != 1:
            self.fail(f"graph @{gs[0].name}", "the traces differ in structure "
                      f"(node counts {[len(g.nodes) for g in gs]}): a loop over time is still unrolled?")
        for i, vs in enumerate(zip(*(g.inputs for g in gs))):
            nv = out.add_input(self.type_([v.type for v in vs], f"input %{vs[0].name}"), vs[0].name)
            for v in vs:
                vmap[id(v)] = nv
        for ns in zip(*(g.nodes for g in gs)):
            n0 = ns[0]
            where = n0.where()
            if any(n.op != n0.op or list(n.args) != list(n0.args) or len(n.outputs) != len(n0.outputs)
                   or len(n.regions) != len(n0.regions) for n in ns):
                self.fail(where, f"ops differ: {[n.op for n in ns]}")
            if n0.op == "constant":
                self._same_constant([g.constants.get(n.args["name"]) for g, n in zip(gs, ns)], n0.args["name"], where)
            args = {k: self.arg([n.args[k] for n in ns], vmap, where) for k in n0.args}
            regions = [self.graph([n.regions[r] for n in ns], top=False) for r in range(len(n0.regions))]
            types = [self.type_([n.outputs[j].type for n in ns], where) for j in range(len(n0.outputs))]
            node = out.add_node(n0.op, args, types, loc=n0.loc, regions=regions,
                                names=[None if v.name[0].isdigit() else v.name for v in n0.outputs])
            for j in range(len(n0.outputs)):
                for n in ns:
                    vmap[id(n.outputs[j])] = node.outputs[j]
        outs = []
        for vs in zip(*(g.outputs for g in gs)):
            if len({id(vmap.get(id(v))) for v in vs}) != 1:
                self.fail(f"graph @{gs[0].name}", "the traces return different values")
            outs.append(vmap[id(vs[0])])
        out.set_outputs(outs)
        return out

    def arg(self, vals: list, vmap, where: str):
        a0 = vals[0]
        if isinstance(a0, Value):
            mapped = {id(vmap.get(id(v))) for v in vals if isinstance(v, Value)}
            if len(mapped) != 1 or not all(isinstance(v, Value) for v in vals) or id(vmap.get(id(a0))) != next(iter(mapped)):
                self.fail(where, "an argument is wired differently in the traces")
            return vmap[id(a0)]
        if isinstance(a0, (list, tuple)) and any(isinstance(x, Value) for x in a0):
            if not all(isinstance(v, (list, tuple)) and len(v) == len(a0) for v in vals):
                self.fail(where, "list arguments differ in length")
            return [self.arg([v[i] for v in vals], vmap, where) for i in range(len(a0))]
        return self.literal(vals, where)

    def _same_constant(self, tensors: list, name: str, where: str):
        t0 = tensors[0]
        for t in tensors[1:]:
            if t is t0:
                continue
            if not (isinstance(t, torch.Tensor) and isinstance(t0, torch.Tensor) and t.shape == t0.shape
                    and t.dtype == t0.dtype and torch.equal(t, t0)):
                self.fail(where, f"constant {name!r} differs between the traces (a folded T-dependent tensor? "
                                 "leave fold-constants out of the pipeline)")


def unify_lengths(graphs: Sequence[Graph], lengths: Sequence[int], symbol: str = "T",
                  t_range: tuple[int, int | None] = (1, None)) -> Graph:
    """One graph with a symbolic length from graphs traced at `lengths` (see module doc)."""
    if len(graphs) != len(lengths) or len(lengths) < 2 or len(set(lengths)) != len(lengths):
        raise PassError("unify_lengths needs one graph per length and at least two distinct lengths")
    if any(symbol in g.symbols for g in graphs):
        raise PassError(f"symbol {symbol!r} is already declared in the traced graph")
    g = _Unifier(lengths, symbol, t_range).graph(list(graphs))
    verify(g)
    return g


def trace_symbolic(model: torch.nn.Module, make_inputs: Callable[[int], Any], lengths: Sequence[int] = (16, 17),
                   pipeline: str = DEFAULT_PIPELINE, post_pipeline: str | None = "default", symbol: str = "T",
                   t_range: tuple[int, int | None] = (1, None)) -> Graph:
    """Trace `model` on `make_inputs(L)` for each L in `lengths`, run `pipeline` on each,
    unify into one graph whose length `symbol` is symbolic, then run `post_pipeline`."""
    from spikec.frontend import from_torch

    from .manager import run
    graphs = []
    for L in lengths:
        inputs = make_inputs(L)
        graphs.append(run(from_torch(model, inputs if isinstance(inputs, tuple) else (inputs,)), pipeline))
    g = unify_lengths(graphs, lengths, symbol, t_range)
    return run(g, post_pipeline) if post_pipeline else g
