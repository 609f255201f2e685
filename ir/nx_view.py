"""networkx views of a graph for analyses (order, dominators, matching, drawing).

The DiGraph is built on demand from the Graph and holds references to its
nodes; it is a view, never a second copy of the program."""
from __future__ import annotations

import networkx as nx

from .graph import Graph


def to_networkx(graph: Graph) -> nx.DiGraph:
    """Vertices: ("input", i), each Node, ("output", i). Edges carry the Value."""
    g = nx.DiGraph(name=graph.name)
    producer = {}
    for i, v in enumerate(graph.inputs):
        g.add_node(("input", i), op="input", value=v)
        producer[id(v)] = ("input", i)
    for node in graph.nodes:
        g.add_node(node, op=node.op)
        for v in node.inputs:
            g.add_edge(producer[id(v)], node, value=v)
        for v in node.outputs:
            producer[id(v)] = node
    for i, v in enumerate(graph.outputs):
        g.add_node(("output", i), op="output", value=v)
        g.add_edge(producer[id(v)], ("output", i), value=v)
    return g


def topological_order(graph: Graph) -> list:
    return [n for n in nx.topological_sort(to_networkx(graph)) if not isinstance(n, tuple)]


def immediate_dominators(graph: Graph) -> dict:
    """Dominator tree over the data-flow graph, rooted at a virtual entry that feeds every input."""
    g = to_networkx(graph)
    g.add_node("entry")
    for i in range(len(graph.inputs)):
        g.add_edge("entry", ("input", i))
    for n in list(g.nodes):
        if n != "entry" and g.in_degree(n) == 0:
            g.add_edge("entry", n)   # constants and other source nodes
    return nx.immediate_dominators(g, "entry")


def find_subgraphs(graph: Graph, pattern: Graph) -> list[dict]:
    """Occurrences of `pattern`'s nodes inside `graph`, matched by op and data-flow
    edges (networkx's subgraph isomorphism on the views). Each match maps a pattern
    Node to a graph Node; pattern inputs and outputs are free (any producer/consumer)."""
    from networkx.algorithms import isomorphism

    def ops_only(g: Graph) -> nx.DiGraph:
        v = to_networkx(g)
        v.remove_nodes_from([n for n in list(v.nodes) if isinstance(n, tuple)])
        return v

    big, small = ops_only(graph), ops_only(pattern)
    matcher = isomorphism.DiGraphMatcher(big, small, node_match=lambda a, b: a["op"] == b["op"])
    # The matcher is subgraph-*monomorphic* on edges we ask for: every pattern edge must
    # exist in the graph; extra graph edges (other uses) are allowed.
    return [{p: g for g, p in m.items()} for m in matcher.subgraph_monomorphisms_iter()]
