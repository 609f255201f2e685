"""propagate-shapes: recompute every result type from its inputs, in order."""
from spikec.ir import Graph, InferContext, infer_types
from spikec.ir.infer import WILDCARD_PREFIX

from .manager import stat
from .registry import register


def _has_wildcard(t) -> bool:
    return any(s.startswith(WILDCARD_PREFIX) for s in getattr(t, "symbols", lambda: set())())


@register("propagate-shapes")
def propagate_shapes(graph: Graph) -> None:
    """Re-infer result types (after inputs became symbolic or a rewrite changed a producer)."""
    ctx = InferContext(graph.symbols, graph.constants)
    for node in graph.nodes:
        inferred = infer_types(node.opdef, node.args, ctx, node.regions)
        if inferred is None:
            continue
        for v, t in zip(node.outputs, inferred):
            if t != v.type and not _has_wildcard(t):
                v.type = t
                stat("updated")
