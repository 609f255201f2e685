"""Pattern rewriting: patterns as (match, rewrite) pairs in tables, driven to a fixpoint.

    x = Var("x")
    RULES = [
        Rewrite("mul-by-one", Pat("mul", x, 1.0), lambda m, b: m["x"]),
    ]
    apply_patterns(graph, RULES)

A `Pat(op, *positional, **named)` matches a node of `op` whose arguments match
the sub-patterns: another `Pat` (matched against the producer of the value),
a `Var` (captures any value or literal; the same name must bind the same thing),
or a literal (compared with the argument, defaults included). `where=` adds a
predicate on the match. A rewrite returns the replacement value(s) for the root
node's outputs, or None to decline.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from spikec.ir import Graph, InferContext, Node, Value, get_op, infer_types
from spikec.ir.graph import iter_values

from .manager import stat


@dataclass(frozen=True)
class Var:
    name: str
    where: Callable[[Any], bool] | None = None


class Pat:
    # `pat, op` are positional-only so that ops may have parameters named `self` or `op`.
    def __init__(pat, op: str, /, *positional, where: Callable[["Match"], bool] | None = None, output: int = 0,
                 **named):
        pat.op = op
        pat.where = where
        pat.output = output
        opdef = get_op(op)
        pos_params = [p.name for p in opdef.params if not p.kw_only]
        pat.args: dict[str, Any] = {}
        for i, a in enumerate(positional):
            pat.args[pos_params[i]] = a
        for k, a in named.items():
            opdef.param(k)
            pat.args[k] = a

    def __repr__(self) -> str:
        return f"Pat({self.op}, {self.args})"


@dataclass
class Match:
    root: Node
    bindings: dict[str, Any] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)

    def __getitem__(self, name: str) -> Any:
        return self.bindings[name]

    def get(self, name: str, default=None):
        return self.bindings.get(name, default)


def _same(a, b) -> bool:
    if isinstance(a, Value) or isinstance(b, Value):
        return a is b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b or (isinstance(a, (int, float)) and isinstance(b, (int, float))
                                             and not isinstance(a, bool) and not isinstance(b, bool) and a == b)


def _match_arg(p, a, m: Match) -> bool:
    if isinstance(p, Var):
        if p.where is not None and not p.where(a):
            return False
        if p.name in m.bindings:
            return _same(m.bindings[p.name], a)
        m.bindings[p.name] = a
        return True
    if isinstance(p, Pat):
        return isinstance(a, Value) and a.producer is not None and a.index == p.output and _match_node(p, a.producer, m)
    if isinstance(p, (list, tuple)):
        return isinstance(a, (list, tuple)) and len(a) == len(p) and all(_match_arg(x, y, m) for x, y in zip(p, a))
    return _same(p, a)


def _match_node(p: Pat, node: Node, m: Match) -> bool:
    if node.op != p.op:
        return False
    for name, sub in p.args.items():
        if not _match_arg(sub, node.arg(name), m):
            return False
    m.nodes.append(node)
    return p.where is None or p.where(m)


def match(p: Pat, node: Node) -> Match | None:
    m = Match(node)
    return m if _match_node(p, node, m) else None


class Builder:
    """Creates nodes just before `anchor`, inferring their result types."""

    def __init__(self, graph: Graph, anchor: Node, ctx: InferContext | None = None):
        self.graph = graph
        self.anchor = anchor
        self.ctx = ctx or InferContext(graph.symbols, graph.constants)
        self.loc = anchor.loc

    def op(self, name: str, args: dict[str, Any], *, types=None, regions=None) -> Value | list[Value]:
        opdef = get_op(name)
        if types is None:
            types = infer_types(opdef, args, self.ctx, regions or ())
        node = self.graph.make_node(name, args, types, loc=self.loc, regions=regions)
        self.graph.insert_before(self.anchor, node)
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs


@dataclass
class Rewrite:
    name: str
    pattern: Pat
    replace: Callable[[Match, Builder], Value | list[Value] | None]


def replace_node(graph: Graph, node: Node, new: Value | list[Value]) -> None:
    news = new if isinstance(new, list) else [new]
    if len(news) != len(node.outputs):
        raise ValueError(f"rewrite of {node.op} returned {len(news)} values for {len(node.outputs)} results")
    for old, nv in zip(node.outputs, news):
        if old is not nv:
            graph.replace_all_uses(old, nv)


def try_replace(graph: Graph, anchor: Node, build: Callable[[Builder], Value]) -> bool:
    """Build a replacement for `anchor`'s single result in front of it; keep it only
    when its type is the result's type, else remove what was built. True if replaced."""
    before = {id(n) for n in graph.nodes}
    new = build(Builder(graph, anchor))
    if new is None or new.type != anchor.outputs[0].type:
        graph.nodes = [n for n in graph.nodes if id(n) in before]
        return False
    graph.replace_all_uses(anchor.outputs[0], new)
    graph.nodes.remove(anchor)
    anchor.graph = None
    return True


def per_head(b: Builder, rank: int, tensors, fn):
    """Run `fn(b, *tensors)` head-first: rank-3 [N, T, D] operands get a head axis and lose it after."""
    if rank == 3:
        tensors = [None if t is None else b.op("unsqueeze", {"self": t, "dim": 1}) for t in tensors]
    out = fn(b, *tensors)
    return b.op("squeeze", {"self": out, "dim": [1]}) if rank == 3 else out


def dead_code_elimination(graph: Graph) -> int:
    """Remove nodes none of whose results is used. Returns how many were removed."""
    live = {id(v) for v in graph.outputs}
    keep = []
    removed = 0
    for node in reversed(graph.nodes):
        if any(id(v) in live for v in node.outputs):
            keep.append(node)
            live.update(id(v) for v in node.inputs)
        else:
            removed += 1
    if removed:
        graph.nodes = keep[::-1]
        graph._names = {v.name for v in graph.values()}
    return removed


def apply_patterns(graph: Graph, rules: list[Rewrite], *, max_iterations: int = 20) -> int:
    """Apply `rules` greedily in program order until nothing matches. Returns the rewrite count."""
    by_op: dict[str, list[Rewrite]] = {}
    for r in rules:
        by_op.setdefault(r.pattern.op, []).append(r)
    ctx = InferContext(graph.symbols, graph.constants)
    total = 0
    for _ in range(max_iterations):
        changed = 0
        for node in list(graph.nodes):
            if node.graph is not graph or node not in _alive(graph):
                continue
            for rule in by_op.get(node.op, ()):
                m = match(rule.pattern, node)
                if m is None:
                    continue
                stat(f"matched:{rule.name}")
                new = rule.replace(m, Builder(graph, node, ctx))
                if new is None:
                    continue
                replace_node(graph, node, new)
                graph.nodes.remove(node)
                node.graph = None
                stat(f"rewritten:{rule.name}")
                changed += 1
                break
        total += changed
        if not changed:
            break
    dead_code_elimination(graph)
    return total


def _alive(graph: Graph):
    # Cheap membership: nodes removed by a rewrite have node.graph reset to None.
    return _AliveView(graph)


class _AliveView:
    def __init__(self, graph):
        self.graph = graph

    def __contains__(self, node):
        return node.graph is self.graph


def uses_inside(m: Match, value: Value, graph: Graph) -> bool:
    """True when every use of `value` is inside the match (the match may delete it)."""
    inside = {id(n) for n in m.nodes}
    return all(id(n) in inside for n in graph.nodes if any(v is value for v in n.inputs)) and value not in graph.outputs


__all__ = ["Pat", "Var", "Match", "Rewrite", "Builder", "match", "apply_patterns", "replace_node", "try_replace", "per_head",
           "dead_code_elimination", "uses_inside", "iter_values"]
