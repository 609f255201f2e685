"""The text form of a graph: stable, readable, and read back by `parser.py`.

    graph @main(%x: f32[2, T, 16]) -> (f32[2, T, 16]) {
      symbols {T: [2, 4096]}
      %w: f32[16, 16] = constant(name="l.weight")
      %0: f32[2, T, 16] = linear(%x, %w)  loc("model.py":12)
      return %0
    }

Tensor arguments come first and positionally while they can; everything else
is `name=value`. Arguments equal to their default are not printed.
"""
from __future__ import annotations

import json
import math

import sympy
import torch

from .graph import Graph, Node, Value
from .types import dim_str, dtype_name


def literal_str(a) -> str:
    if isinstance(a, Value):
        return "%" + a.name
    if a is None:
        return "none"
    if isinstance(a, bool):
        return "true" if a else "false"
    if isinstance(a, int):
        return str(a)
    if isinstance(a, float):
        if math.isnan(a):
            return "nan"
        if math.isinf(a):
            return "inf" if a > 0 else "-inf"
        return repr(a)
    if isinstance(a, str):
        return json.dumps(a)
    if isinstance(a, torch.dtype):
        return dtype_name(a)
    if isinstance(a, sympy.Expr):
        return dim_str(a if not a.is_Integer else int(a))
    if isinstance(a, (list, tuple)):
        return "[" + ", ".join(literal_str(x) for x in a) + "]"
    raise TypeError(f"cannot print an argument of type {type(a).__name__}: {a!r}")


def args_str(node: Node) -> str:
    opdef = node.opdef
    parts, positional = [], True
    for p in opdef.params:
        if p.name not in node.args:
            positional = False
            continue
        text = literal_str(node.args[p.name])
        if positional and p.is_tensor and not p.kw_only:
            parts.append(text)
        else:
            positional = False
            parts.append(f"{p.name}={text}")
    return ", ".join(parts)


def _loc_str(node: Node) -> str:
    return f"  loc({json.dumps(node.loc.file)}:{node.loc.line})" if node.loc else ""


def _symbols_str(symbols: dict) -> str:
    items = []
    for name, (lo, hi) in symbols.items():
        items.append(f"{name}: [{lo}, {'?' if hi is None else hi}]")
    return "symbols {" + ", ".join(items) + "}"


def _print(graph: Graph, indent: str, top: bool) -> list[str]:
    ins = ", ".join(f"%{v.name}: {v.type}" for v in graph.inputs)
    outs = ", ".join(str(v.type) for v in graph.outputs)
    lines = [f"{indent}graph @{graph.name}({ins}) -> ({outs}) {{"]
    inner = indent + "  "
    if top and graph.symbols:
        lines.append(inner + _symbols_str(graph.symbols))
    for node in graph.nodes:
        lhs = ", ".join(f"%{v.name}: {v.type}" for v in node.outputs)
        line = f"{inner}{lhs} = {node.op}({args_str(node)}){_loc_str(node)}"
        if node.regions:
            lines.append(line + " {")
            for r in node.regions:
                lines.extend(_print(r, inner + "  ", False))
            lines.append(inner + "}")
        else:
            lines.append(line)
    lines.append(f"{inner}return {', '.join('%' + v.name for v in graph.outputs)}".rstrip())
    lines.append(indent + "}")
    return lines


def print_graph(graph: Graph) -> str:
    return "\n".join(_print(graph, "", True)) + "\n"
