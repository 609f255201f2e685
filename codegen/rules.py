"""One lowering rule per op, in a table per backend.

A backend builds one `RuleTable` and fills it with `@table.rule("op", ...)`.
The table answers which ops the target supports natively and checks a whole
graph up front, so a target that cannot lower an op says which op, which
target and where, before any code is generated.
"""
from __future__ import annotations

from typing import Callable

from spikec.ir import Graph, Node

from .errors import LoweringError


class RuleTable:
    def __init__(self, target: str):
        self.target = target
        self._rules: dict[str, Callable] = {}

    def rule(self, *ops: str):
        """Decorator: `fn` lowers every op in `ops`."""
        def deco(fn):
            for op in ops:
                if op in self._rules:
                    raise ValueError(f"target {self.target!r}: op {op!r} already has a lowering rule")
                self._rules[op] = fn
            return fn
        return deco

    def add(self, op: str, fn: Callable) -> None:
        self.rule(op)(fn)

    def ops(self) -> list[str]:
        return sorted(self._rules)

    def __contains__(self, op: str) -> bool:
        return op in self._rules

    def get(self, node: Node) -> Callable:
        fn = self._rules.get(node.op)
        if fn is None:
            raise LoweringError(f"target {self.target!r} cannot lower op {node.op!r}", where=node.where(),
                                hint=f"choose another target, or run a pass that removes {node.op!r}; "
                                     f"`spikec targets` lists what each target supports")
        return fn

    def missing(self, graph: Graph) -> list[Node]:
        """Nodes (regions included) that have no rule, one per op, in program order."""
        seen: dict[str, Node] = {}
        for n in graph.walk():
            if n.op not in self._rules and n.op not in seen:
                seen[n.op] = n
        return list(seen.values())

    def check(self, graph: Graph) -> None:
        miss = self.missing(graph)
        if not miss:
            return
        first = miss[0]
        ops = ", ".join(repr(n.op) for n in miss)
        raise LoweringError(f"target {self.target!r} cannot lower op{'s' if len(miss) > 1 else ''} {ops}",
                            where=first.where(),
                            hint=f"choose another target, or run a pass that removes them; "
                                 f"`spikec targets` lists what each target supports")
