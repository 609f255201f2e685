"""Summaries of a graph for `spikec inspect --stats` and the demo."""
from __future__ import annotations

import torch

from spikec.ir import Graph


def constant_bytes(graph: Graph) -> tuple[int, int]:
    """(number of elements, bytes) of the tensors the graph's constants refer to."""
    n = b = 0
    seen = set()
    for node in graph.walk():
        if node.op != "constant":
            continue
        t = graph.constants.get(node.args["name"])
        if isinstance(t, torch.Tensor) and node.args["name"] not in seen:
            seen.add(node.args["name"])
            n += t.numel()
            b += t.numel() * t.element_size()
    return n, b


def human(n: float, unit: str = "") -> str:
    for suffix in ("", "K", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.3g}{suffix}{unit}"
        n /= 1000
    return f"{n:.3g}P{unit}"


def format_stats(graph: Graph, top: int = 40) -> str:
    counts = graph.op_counts()
    n_nodes = sum(counts.values())
    numel, nbytes = constant_bytes(graph)
    lines = [f"graph @{graph.name}: {len(graph.inputs)} inputs, {n_nodes} nodes "
             f"({len(counts)} distinct ops), {len(graph.outputs)} outputs"]
    if graph.symbols:
        shown = [f"{k} in [{lo}, {'?' if hi is None else hi}]" for k, (lo, hi) in graph.symbols.items()
                 if not k.startswith("u")]
        data_dependent = sum(1 for k in graph.symbols if k.startswith("u"))
        if data_dependent:
            shown.append(f"{data_dependent} data-dependent size(s) u0..u{data_dependent - 1}")
        lines.append(f"symbols: {', '.join(shown)}")
    lines.append(f"constants: {counts.get('constant', 0)} tensors, {human(numel)} elements, {human(nbytes, 'B')}")
    lines.append("op counts:")
    width = max((len(k) for k in counts), default=0)
    for op, c in list(counts.items())[:top]:
        lines.append(f"  {op:<{width}}  {c}")
    if len(counts) > top:
        lines.append(f"  ... {len(counts) - top} more ops")
    return "\n".join(lines)
