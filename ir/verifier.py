"""`verify(graph)`: SSA, op signatures, attribute kinds and types.

Every error names the node (its results and op) and the source line it came from.
"""
from __future__ import annotations

from .errors import UnsupportedOpError, VerifyError
from .graph import Graph, Node, Value, iter_values
from .infer import InferContext, infer_types, types_match
from .registry import check_literal
from .types import TensorType


def _fail(node: Node | None, message: str, hint: str | None = None):
    raise VerifyError(message, where=node.where() if node is not None else None, hint=hint)


def _check_args(node: Node, opdef) -> None:
    for p in opdef.params:
        if p.name not in node.args:
            if p.required:
                _fail(node, f"{node.op}: missing required argument {p.name!r} ({p.kind})")
            continue
        a = node.args[p.name]
        has_values = any(True for _ in iter_values(a))
        if has_values and not p.is_tensor:
            _fail(node, f"{node.op}: argument {p.name!r} is a {p.kind} attribute but holds a value")
        if p.is_tensor and p.kind in ("tensor[]", "tensor?[]") and not isinstance(a, list):
            _fail(node, f"{node.op}: argument {p.name!r} must be a list of tensors")
        if not has_values and not check_literal(p.kind, a):
            _fail(node, f"{node.op}: argument {p.name!r} = {a!r} does not fit kind {p.kind}")
        if p.kind == "tensor[]" and any(not isinstance(x, Value) for x in a):
            _fail(node, f"{node.op}: every element of {p.name!r} must be a tensor value")


def _verify_graph(graph: Graph, symbols: dict, ctx: InferContext, infer: bool) -> None:
    defined: set[int] = set()
    names: set[str] = set()

    def define(v: Value, node: Node | None):
        if v.name in names:
            _fail(node, f"value %{v.name} is defined more than once (SSA)")
        names.add(v.name)
        defined.add(id(v))
        if isinstance(v.type, TensorType):
            undeclared = {s for s in v.type.symbols() if s not in symbols}
            if undeclared:
                _fail(node, f"type {v.type} of %{v.name} uses undeclared symbol(s) {', '.join(sorted(undeclared))}",
                      hint="declare every symbolic dim in graph.symbols")

    for v in graph.inputs:
        define(v, None)
    for node in graph.nodes:
        try:
            opdef = node.opdef
        except UnsupportedOpError as e:
            _fail(node, e.message, e.hint)
        for v in node.inputs:
            if id(v) not in defined:
                _fail(node, f"{node.op} uses %{v.name} before it is defined (or from another graph)")
        _check_args(node, opdef)
        if len(node.regions) != len(opdef.regions):
            _fail(node, f"{node.op} needs {len(opdef.regions)} region(s) ({', '.join(opdef.regions) or 'none'}), "
                        f"has {len(node.regions)}")
        for r in node.regions:
            _verify_graph(r, symbols, ctx, infer)
        if opdef.num_outputs is not None and len(node.outputs) != opdef.num_outputs:
            _fail(node, f"{node.op} has {len(node.outputs)} results; the op defines {opdef.num_outputs}")
        for v in node.outputs:
            define(v, node)
        if infer:
            try:
                inferred = infer_types(opdef, node.args, ctx, node.regions)
            except Exception as e:  # a meta kernel rejecting the inputs is a type error
                _fail(node, f"{node.op}: inputs rejected by shape inference: {type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''}")
            if inferred is not None:
                if len(inferred) != len(node.outputs):
                    _fail(node, f"{node.op} has {len(node.outputs)} results; its inputs give {len(inferred)}")
                for v, t in zip(node.outputs, inferred):
                    if not types_match(v.type, t, ctx):
                        _fail(node, f"type mismatch for %{v.name}: declared {v.type}, inferred {t}")
    for v in graph.outputs:
        if id(v) not in defined:
            _fail(None, f"graph @{graph.name} returns %{v.name}, which it does not define")


def verify(graph: Graph, *, infer_types: bool = True) -> Graph:
    """Check `graph`; raise VerifyError on the first problem, return the graph otherwise."""
    ctx = InferContext(graph.symbols, graph.constants)
    _verify_graph(graph, graph.symbols, ctx, infer_types)
    return graph
