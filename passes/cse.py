"""cse: one node for each distinct (op, arguments) computation."""
import sympy
import torch

from spikec.ir import Graph, Value

from .manager import stat
from .registry import register


def _key(a):
    if isinstance(a, Value):
        return ("v", id(a))
    if isinstance(a, (list, tuple)):
        return ("l", tuple(_key(x) for x in a))
    if isinstance(a, float) and a != a:
        return ("nan",)
    if isinstance(a, (torch.dtype, sympy.Expr)):
        return ("x", str(a))
    return (type(a).__name__, a)


@register("cse")
def cse(graph: Graph) -> None:
    """Replace a node by an earlier identical one (same op, arguments and result types)."""
    seen: dict[tuple, object] = {}
    keep = []
    for node in graph.nodes:
        if node.regions:
            keep.append(node)
            continue
        key = (node.op, tuple((k, _key(a)) for k, a in node.args.items()), tuple(str(v.type) for v in node.outputs))
        first = seen.get(key)
        if first is None:
            seen[key] = node
            keep.append(node)
            continue
        for old, new in zip(node.outputs, first.outputs):
            graph.replace_all_uses(old, new)
        stat("eliminated")
    graph.nodes = keep
