"""Patterns written as two small Python functions, traced to IR.

    def search(x, w):
        return torch.matmul(x, w.t())

    def replace(x, w):
        return torch.nn.functional.linear(x, w)

    rule = replacement("matmul-t-to-linear", search, replace, [torch.randn(4, 8), torch.randn(6, 8)])
    apply_patterns(graph, [rule])

Both functions are traced with the torch frontend on the example inputs. The
search graph becomes a `Pat` tree whose graph inputs are captures; on a match
the replacement graph is copied in with the captures as its inputs and its
result types inferred afresh. Literal arguments (dims, shapes) must match
exactly, so pick example inputs whose shapes do not leak into the pattern.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from spikec.ir import Graph, IRError, Value
from spikec.ir.graph import map_values

from .rewrite import Builder, Match, Pat, Rewrite, Var


class _Fn(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def trace_function(fn: Callable, example_inputs: Sequence[torch.Tensor]) -> Graph:
    from spikec.frontend import from_torch
    g = from_torch(_Fn(fn), tuple(example_inputs))
    from .canonicalize import canonicalize
    canonicalize(g)       # the same clean-up the target graph usually had
    if any(n.op == "constant" for n in g.nodes):
        raise IRError(f"pattern function {fn.__name__} reads a tensor constant; pass every tensor as an argument")
    return g


def _to_pattern(g: Graph) -> Pat:
    if len(g.outputs) != 1 or g.outputs[0].producer is None:
        raise IRError("a search function must return one tensor computed from its inputs")
    captures = {id(v): Var(f"in{i}") for i, v in enumerate(g.inputs)}

    def pat(v: Value):
        if id(v) in captures:
            return captures[id(v)]
        node = v.producer
        args = {k: _arg_pat(a) for k, a in node.args.items()}
        return Pat(node.op, output=v.index, **args)

    def _arg_pat(a):
        if isinstance(a, Value):
            return pat(a)
        if isinstance(a, list):
            return [_arg_pat(x) for x in a]
        return a

    return pat(g.outputs[0])


def _instantiate(g: Graph, m: Match, b: Builder) -> Value:
    env = {id(v): m[f"in{i}"] for i, v in enumerate(g.inputs)}
    for node in g.nodes:
        args = {k: map_values(a, lambda v: env[id(v)]) for k, a in node.args.items()}
        out = b.op(node.op, args)
        outs = out if isinstance(out, list) else [out]
        for old, new in zip(node.outputs, outs):
            env[id(old)] = new
    return env[id(g.outputs[0])]


def replacement(name: str, search: Callable, replace: Callable, example_inputs: Sequence[torch.Tensor],
                *, where: Callable[[Match], bool] | None = None) -> Rewrite:
    """A rewrite rule from a (search, replace) pair of tensor functions."""
    search_g = trace_function(search, example_inputs)
    replace_g = trace_function(replace, example_inputs)
    if len(search_g.inputs) != len(replace_g.inputs):
        raise IRError(f"{name}: search and replacement take different numbers of tensors")
    pattern = _to_pattern(search_g)
    if where is not None:
        pattern.where = where
    return Rewrite(name, pattern, lambda m, b: _instantiate(replace_g, m, b))
