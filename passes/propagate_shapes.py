"""propagate-shapes: recompute every result type from its inputs, in order."""
from spikec.ir import Graph, InferContext, infer_types
from spikec.ir.infer import WILDCARD_PREFIX

from .errors import PassError
from .manager import stat
from .registry import register


def _has_wildcard(t) -> bool:
    return any(s.startswith(WILDCARD_PREFIX) for s in getattr(t, "symbols", lambda: set())())


def _refuse_specialised(node, v, t) -> None:
    # A symbolic dim inferred back as a number means an op's shape rule fixed it to the
    # example size: the graph would then run at one length only. Say so instead.
    old, new = getattr(v.type, "shape", None), getattr(t, "shape", None)
    if old is None or new is None or len(old) != len(new):
        return
    for a, b in zip(old, new):
        if not isinstance(a, int) and isinstance(b, int) and not getattr(a, "free_symbols", None) == set():
            raise PassError(f"shape inference of {node.op} turned the symbolic dim {a} of %{v.name} into {b}",
                            where=node.where(),
                            hint="the op's meta kernel specialises sizes; add it to "
                                 "spikec.ir.infer.PREFER_DECOMPOSITION or give it an infer rule")


@register("propagate-shapes")
def propagate_shapes(graph: Graph) -> None:
    """Re-infer result types (after inputs became symbolic or a rewrite changed a producer)."""
    ctx = InferContext(graph.symbols, graph.constants)
    for node in graph.nodes:
        inferred = infer_types(node.opdef, node.args, ctx, node.regions)
        if inferred is None:
            continue
        for v, t in zip(node.outputs, inferred):
            _refuse_specialised(node, v, t)
            if t != v.type and not _has_wildcard(t):
                v.type = t
                stat("updated")
