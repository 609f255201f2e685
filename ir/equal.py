"""Structural equality of graphs: same ops, arguments, types, locations and
regions, with values matched by position rather than by name."""
from __future__ import annotations

import math

from .graph import Graph, Value


def _arg_equal(a, b, vmap: dict[int, int]) -> bool:
    if isinstance(a, Value) or isinstance(b, Value):
        return isinstance(a, Value) and isinstance(b, Value) and vmap.get(id(a)) == id(b)
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b)
                and all(_arg_equal(x, y, vmap) for x, y in zip(a, b)))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def structural_diff(g1: Graph, g2: Graph, *, names: bool = False) -> str | None:
    """None when equal, else a sentence naming the first difference."""
    if g1.name != g2.name:
        return f"graph names differ: @{g1.name} vs @{g2.name}"
    if g1.symbols != g2.symbols:
        return f"symbols differ: {g1.symbols} vs {g2.symbols}"
    if [v.type for v in g1.inputs] != [v.type for v in g2.inputs]:
        return "input types differ"
    vmap = {id(a): id(b) for a, b in zip(g1.inputs, g2.inputs)}
    if len(g1.nodes) != len(g2.nodes):
        return f"node counts differ: {len(g1.nodes)} vs {len(g2.nodes)}"
    for i, (n1, n2) in enumerate(zip(g1.nodes, g2.nodes)):
        where = f"node {i} ({n1.where()})"
        if n1.op != n2.op:
            return f"{where}: op {n1.op} vs {n2.op}"
        if list(n1.args) != list(n2.args) or not all(_arg_equal(n1.args[k], n2.args[k], vmap) for k in n1.args):
            return f"{where}: arguments differ"
        if [v.type for v in n1.outputs] != [v.type for v in n2.outputs]:
            return f"{where}: result types differ"
        if names and [v.name for v in n1.outputs] != [v.name for v in n2.outputs]:
            return f"{where}: result names differ"
        if n1.loc != n2.loc:
            return f"{where}: locations differ ({n1.loc} vs {n2.loc})"
        if len(n1.regions) != len(n2.regions):
            return f"{where}: region counts differ"
        for r1, r2 in zip(n1.regions, n2.regions):
            d = structural_diff(r1, r2, names=names)
            if d:
                return f"{where}, region @{r1.name}: {d}"
        vmap.update({id(a): id(b) for a, b in zip(n1.outputs, n2.outputs)})
    if [vmap.get(id(v)) for v in g1.outputs] != [id(v) for v in g2.outputs]:
        return "returned values differ"
    return None


def structurally_equal(g1: Graph, g2: Graph, *, names: bool = False) -> bool:
    return structural_diff(g1, g2, names=names) is None
