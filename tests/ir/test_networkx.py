"""The networkx view: a view of the graph used by analyses."""
import networkx as nx

from spikec import ir
from spikec.ir.nx_view import immediate_dominators, topological_order
from graphs import small_graph


def test_view_mirrors_the_graph():
    g = small_graph()
    v = g.to_networkx()
    assert set(n for n in v.nodes if not isinstance(n, tuple)) == set(g.nodes)
    assert nx.is_directed_acyclic_graph(v)
    linear = next(n for n in g.nodes if n.op == "linear")
    assert v.nodes[linear]["op"] == "linear"
    assert {e[2]["value"].name for e in v.in_edges(linear, data=True)} == {"x", "proj.weight"}


def test_topological_order_and_dominators():
    g = small_graph()
    order = topological_order(g)
    pos = {n: i for i, n in enumerate(order)}
    for n in g.nodes:
        for v in n.inputs:
            if v.producer is not None:
                assert pos[v.producer] < pos[n]
    idom = immediate_dominators(g)
    cat = next(n for n in g.nodes if n.op == "cat")
    linear = next(n for n in g.nodes if n.op == "linear")
    assert idom[cat] is linear        # every path to cat passes through linear
