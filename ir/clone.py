"""Deep copy of a graph's structure (values, nodes, regions); constant
tensors stay shared by reference."""
from __future__ import annotations

import copy

from .graph import Graph, Node, Value, map_values


def clone_graph(graph: Graph, vmap: dict[int, Value] | None = None) -> Graph:
    vmap = {} if vmap is None else vmap
    g = Graph(graph.name)
    g.symbols = dict(graph.symbols)
    g.constants = dict(graph.constants)   # same tensors, own table
    g._names = set(graph._names)
    g._counter = copy.copy(graph._counter)
    for v in graph.inputs:
        nv = Value(v.name, v.type, None, v.index)
        g.inputs.append(nv)
        vmap[id(v)] = nv
    for n in graph.nodes:
        outs = [Value(v.name, v.type) for v in n.outputs]
        args = {k: map_values(a, lambda v: vmap[id(v)]) for k, a in n.args.items()}
        node = Node(n.op, args, outs, n.loc, [clone_graph(r) for r in n.regions])
        node.graph = g
        g.nodes.append(node)
        for old, new in zip(n.outputs, outs):
            vmap[id(old)] = new
    g.outputs = [vmap[id(v)] for v in graph.outputs]
    return g
