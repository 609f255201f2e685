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


def test_subgraph_matching_finds_every_occurrence():
    import torch
    from spikec.ir import TensorType
    from spikec.ir.nx_view import find_subgraphs

    t = TensorType((4,), "f32")
    g = ir.Graph("g")
    x = g.add_input(t, "x")
    a = g.add_node("exp", {"self": x}, [t]).output
    b = g.add_node("neg", {"self": a}, [t]).output            # exp -> neg  (1)
    c = g.add_node("exp", {"self": b}, [t]).output
    d = g.add_node("neg", {"self": c}, [t]).output            # exp -> neg  (2)
    e = g.add_node("neg", {"self": x}, [t]).output            # a lone neg: no match
    g.set_outputs([g.add_node("add", {"self": d, "other": e}, [t]).output])
    p = ir.Graph("pattern")
    px = p.add_input(t, "x")
    p.set_outputs([p.add_node("neg", {"self": p.add_node("exp", {"self": px}, [t]).output}, [t]).output])
    matches = find_subgraphs(g, p)
    assert len(matches) == 2
    found = sorted((m[p.nodes[0]].outputs[0].name, m[p.nodes[1]].outputs[0].name) for m in matches)
    assert found == sorted([(a.name, b.name), (c.name, d.name)])
    torch.testing.assert_close(ir.interpret(g, torch.zeros(4)), torch.full((4,), -torch.e ** -1))   # -exp(-1) + -0
