"""Graph / Node / Value: the SSA program every part of spikec works on.

A node's arguments are kept by parameter name (``node.args``); an argument is
a Value, a literal (int, float, bool, None, str, dtype name, symbolic dim) or a
list of those. ``node.inputs`` is the flat list of Values, ``node.attrs`` the
arguments that hold no Value.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from .errors import IRError
from .types import Type, TensorType


@dataclass(frozen=True)
class Loc:
    """Where a node came from: file and line of the user's model code."""
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Value:
    __slots__ = ("name", "type", "producer", "index")

    def __init__(self, name: str, type: Type, producer: "Node | None" = None, index: int = 0):
        self.name = name
        self.type = type
        self.producer = producer   # None for graph inputs
        self.index = index         # output position in the producer, or input position

    def __repr__(self) -> str:
        return f"%{self.name}: {self.type}"


def iter_values(arg: Any) -> Iterator[Value]:
    """Yield every Value inside an argument (which may be a nested list)."""
    if isinstance(arg, Value):
        yield arg
    elif isinstance(arg, (list, tuple)):
        for a in arg:
            yield from iter_values(a)


def map_values(arg: Any, fn) -> Any:
    if isinstance(arg, Value):
        return fn(arg)
    if isinstance(arg, (list, tuple)):
        return [map_values(a, fn) for a in arg]
    return arg


class Node:
    __slots__ = ("op", "args", "outputs", "loc", "regions", "graph")

    def __init__(self, op: str, args: dict[str, Any], outputs: list[Value],
                 loc: Loc | None = None, regions: list["Graph"] | None = None):
        self.op = op
        self.args = args
        self.outputs = outputs
        self.loc = loc
        self.regions = regions or []
        self.graph: Graph | None = None
        for i, v in enumerate(outputs):
            v.producer, v.index = self, i

    @property
    def opdef(self):
        from .registry import get_op
        return get_op(self.op)

    @property
    def inputs(self) -> list[Value]:
        return [v for a in self.args.values() for v in iter_values(a)]

    @property
    def attrs(self) -> dict[str, Any]:
        return {k: a for k, a in self.args.items() if not any(True for _ in iter_values(a))}

    @property
    def output(self) -> Value:
        if len(self.outputs) != 1:
            raise IRError(f"node {self.op} has {len(self.outputs)} outputs, not one", where=self.where())
        return self.outputs[0]

    def arg(self, name: str) -> Any:
        """The argument named `name`, or its declared default."""
        if name in self.args:
            return self.args[name]
        return self.opdef.param(name).default

    def replace_input(self, old: Value, new: Value) -> None:
        self.args = {k: map_values(a, lambda v: new if v is old else v) for k, a in self.args.items()}

    def where(self) -> str:
        outs = ", ".join("%" + v.name for v in self.outputs) or "(no outputs)"
        text = f"{outs} = {self.op}(...)"
        return f"{text} ({self.loc})" if self.loc else text

    def __repr__(self) -> str:
        return f"<Node {self.where()}>"


class Graph:
    """An ordered SSA program with typed inputs and outputs.

    `constants` maps a name to a tensor held by reference (weights, buffers);
    `constant` nodes refer to it by name, so no node owns a copy. `symbols`
    maps each symbolic dim name to its inclusive range (lo, hi); hi may be None.
    """

    def __init__(self, name: str = "main"):
        self.name = name
        self.inputs: list[Value] = []
        self.nodes: list[Node] = []
        self.outputs: list[Value] = []
        self.symbols: dict[str, tuple[int, int | None]] = {}
        self.constants: dict[str, Any] = {}
        self._names: set[str] = set()
        self._counter = itertools.count()

    # -- construction -------------------------------------------------------
    def fresh_name(self, hint: str | None = None) -> str:
        if hint:
            base = "".join(c if (c.isalnum() or c in "_.") else "_" for c in hint) or "v"
            if base[0].isdigit() or base[0] == ".":
                base = "v" + base
            name, i = base, 1
            while name in self._names:
                name, i = f"{base}_{i}", i + 1
        else:
            name = str(next(self._counter))
            while name in self._names:
                name = str(next(self._counter))
        self._names.add(name)
        return name

    def rename(self, value: Value, hint: str) -> str:
        """Give `value` a fresh name based on `hint`; returns the new name."""
        self._names.discard(value.name)
        value.name = self.fresh_name(hint)
        return value.name

    def add_input(self, type: Type, name: str | None = None) -> Value:
        v = Value(self.fresh_name(name), type, None, len(self.inputs))
        self.inputs.append(v)
        return v

    def make_node(self, op: str, args: dict[str, Any], out_types: Iterable[Type],
                  loc: Loc | None = None, regions: list["Graph"] | None = None,
                  names: Iterable[str | None] | None = None) -> Node:
        """Build a node (not yet placed) with fresh output names."""
        from .registry import get_op
        opdef = get_op(op)
        out_types = list(out_types)
        names = list(names) if names is not None else [None] * len(out_types)
        outs = [Value(self.fresh_name(n), t) for n, t in zip(names, out_types)]
        node = Node(op, opdef.normalize_args(args), outs, loc, regions)
        node.graph = self
        return node

    def add_node(self, op: str, args: dict[str, Any], out_types: Iterable[Type], **kw) -> Node:
        node = self.make_node(op, args, out_types, **kw)
        self.nodes.append(node)
        return node

    def insert_before(self, anchor: Node, node: Node) -> Node:
        self.nodes.insert(self.nodes.index(anchor), node)
        node.graph = self
        return node

    def remove_node(self, node: Node) -> None:
        self.nodes.remove(node)
        for v in node.outputs:
            self._names.discard(v.name)

    def set_outputs(self, values: Iterable[Value]) -> None:
        self.outputs = list(values)

    def replace_all_uses(self, old: Value, new: Value) -> None:
        for n in self.nodes:
            if any(v is old for v in n.inputs):
                n.replace_input(old, new)
        self.outputs = [new if v is old else v for v in self.outputs]

    def add_constant(self, name: str, tensor, loc: Loc | None = None) -> Value:
        """Register `tensor` (by reference) and add the node that reads it."""
        self.constants[name] = tensor
        return self.add_node("constant", {"name": name}, [TensorType.of(tensor)],
                             loc=loc, names=[name]).output

    # -- queries ------------------------------------------------------------
    def users(self) -> dict[Value, list[Node]]:
        out: dict[Value, list[Node]] = {}
        for n in self.nodes:
            for v in n.inputs:
                out.setdefault(v, []).append(n)
        return out

    def values(self) -> Iterator[Value]:
        yield from self.inputs
        for n in self.nodes:
            yield from n.outputs

    def op_counts(self, recursive: bool = True) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n in self.walk() if recursive else self.nodes:
            counts[n.op] = counts.get(n.op, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def walk(self) -> Iterator[Node]:
        """Every node, including those inside regions, in program order."""
        for n in self.nodes:
            yield n
            for r in n.regions:
                yield from r.walk()

    def copy(self) -> "Graph":
        """A structural copy; constant tensors stay shared."""
        from .clone import clone_graph
        return clone_graph(self)

    def to_networkx(self):
        from .nx_view import to_networkx
        return to_networkx(self)

    def __str__(self) -> str:
        from .printer import print_graph
        return print_graph(self)

    def __repr__(self) -> str:
        return f"<Graph @{self.name}: {len(self.inputs)} inputs, {len(self.nodes)} nodes, {len(self.outputs)} outputs>"
