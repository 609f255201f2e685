"""partition-moe: each `moe` -> an expert-parallel SPMD program over N devices.

    w, e              = moe_route(x, W_r)
    send, cnt, order  = moe_permute(x, e, slots=placement, capacity_factor=...)
    recv, rcnt        = all_to_all(send, cnt)                      dispatch
    W_g, W_u, W_d     = shard(per-device stacked expert weights)   this rank's L slots
    y                 = grouped_matmul(silu(grouped_matmul(recv, rcnt, W_g)) * grouped_matmul(recv, rcnt, W_u),
                                       rcnt, W_d)
    back, _           = all_to_all(y, rcnt)                        combine
    out               = moe_combine(back, order, w) [+ shared expert, computed locally]

Every rank runs this same graph on its own tokens (data parallel outside the experts,
expert parallel inside); the collectives go through the current communicator, so it
runs under torchrun, in threads simulating N ranks, or (N = 1) alone. The row counts
that come out of an all_to_all are data dependent: each gets a fresh symbol.

Options: devices; capacity_factor "dropless" (default) or a number c > 0, giving each
expert ceil(c * N*k / E) (at least min_capacity) slots per source rank, first choices
first (GShard), the rest dropped (their term is zero); placement "contiguous",
"round_robin" or "0+1|2+3"; replicate: hot experts copied to every device ("3|5").
"""
from __future__ import annotations

import torch

from spikec.ir import Graph, Node, TensorType, Value, sym

from .errors import PipelineError
from .manager import stat
from .moe_placement import Placement, make_placement
from .moe_probe import constant_tensor
from .registry import register
from .rewrite import Builder, dead_code_elimination

SYMBOL_PREFIX = "a2a"


def parse_capacity(text) -> float:
    """'dropless' -> 0.0 (no capacity); a positive number -> that factor."""
    if isinstance(text, (int, float)):
        value = float(text)
    elif str(text).strip().lower() in ("dropless", "none", "0"):
        return 0.0
    else:
        try:
            value = float(text)
        except ValueError:
            raise PipelineError(f"capacity_factor must be 'dropless' or a positive number, got {text!r}") from None
    if value <= 0:
        raise PipelineError(f"capacity_factor must be positive (or 'dropless'), got {text!r}")
    return value


def _fresh_symbol(graph: Graph) -> str:
    i = 0
    while f"{SYMBOL_PREFIX}{i}" in graph.symbols:
        i += 1
    name = f"{SYMBOL_PREFIX}{i}"
    graph.symbols[name] = (0, None)
    return name


def _layer_name(node: Node, index: int) -> str:
    p = node.arg("router_weight").producer
    if p is not None and p.op == "constant":
        parts = p.args["name"].split(".")
        if len(parts) > 2:
            return ".".join(parts[:-2])
    return f"moe{index}"


def _by_device(graph: Graph, node: Node, name: str, placement: Placement) -> torch.Tensor:
    """The expert weights stacked in slot order ([devices * L, ...]; empty slots are zero)."""
    w = constant_tensor(graph, node.arg(name))
    if w is None:
        raise PipelineError(f"partition-moe: the {name} weights of this moe layer are not constants",
                            hint="run fold-constants first, or keep the expert weights as graph constants")
    zero = torch.zeros_like(w[0])
    return torch.stack([w[e] if e >= 0 else zero for e in placement.slots])


def _constant(graph: Graph, b: Builder, name: str, t: torch.Tensor) -> Value:
    base, i = name, 1
    while name in graph.constants:
        name, i = f"{base}_{i}", i + 1
    graph.constants[name] = t
    return b.op("constant", {"name": name}, types=[TensorType.of(t)])


def _weight_name(node: Node, param: str, layer: str) -> str:
    p = node.arg(param).producer
    base = p.args["name"] if p is not None and p.op == "constant" else f"{layer}.experts.{param}"
    return base + ".by_device"


def _swiglu(b: Builder, x: Value, gate: Value, up: Value, down: Value) -> Value:
    g = b.op("silu", {"self": b.op("linear", {"input": x, "weight": gate})})
    return b.op("linear", {"input": b.op("mul", {"self": g, "other": b.op("linear", {"input": x, "weight": up})}),
                           "weight": down})


def partition_node(graph: Graph, node: Node, placement: Placement, capacity_factor: float, min_capacity: int,
                   index: int) -> Value:
    P, L = placement.devices, placement.local_slots
    x = node.arg("x")
    D, dtype = x.type.shape[-1], x.type.dtype
    layer = _layer_name(node, index)
    weights = {p: _by_device(graph, node, p, placement) for p in ("w_gate", "w_up", "w_down")}
    rows_in, rows_out = sym(_fresh_symbol(graph)), sym(_fresh_symbol(graph))
    b = Builder(graph, node)                       # after the new symbols exist
    x2 = x if x.type.rank == 2 else b.op("reshape", {"self": x, "shape": [-1, D]})
    w, experts = b.op("moe_route", {"x": x2, "router_weight": node.arg("router_weight"),
                                    "top_k": node.arg("top_k"), "activation": node.arg("activation"),
                                    "renormalize": node.arg("renormalize")})
    send, counts, order = b.op("moe_permute", {
        "x": x2, "experts": experts, "num_experts": placement.num_experts, "devices": P,
        "slots": list(placement.slots), "capacity_factor": capacity_factor, "min_capacity": min_capacity,
        "layer": layer})
    recv, rcounts = b.op("all_to_all", {"x": send, "counts": counts, "devices": P},
                         types=[TensorType((rows_in, D), dtype), counts.type])
    local = {p: b.op("shard", {"x": _constant(graph, b, _weight_name(node, p, layer), t), "devices": P})
             for p, t in weights.items()}
    gate = b.op("grouped_matmul", {"x": recv, "group_sizes": rcounts, "weight": local["w_gate"]})
    up = b.op("grouped_matmul", {"x": recv, "group_sizes": rcounts, "weight": local["w_up"]})
    act = b.op("mul", {"self": b.op("silu", {"self": gate}), "other": up})
    y = b.op("grouped_matmul", {"x": act, "group_sizes": rcounts, "weight": local["w_down"]})
    back, _ = b.op("all_to_all", {"x": y, "counts": rcounts, "devices": P},
                   types=[TensorType((rows_out, D), dtype), rcounts.type])
    out = b.op("moe_combine", {"x": back, "order": order, "weights": w})
    if node.arg("shared_gate") is not None:
        shared = _swiglu(b, x2, node.arg("shared_gate"), node.arg("shared_up"), node.arg("shared_down"))
        out = b.op("add", {"self": out, "other": shared})
    if x.type.rank != 2:
        out = b.op("reshape", {"self": out, "shape": list(x.type.shape)})
    stat("expert_slots", P * L)
    return out


def _constant_names(graph: Graph) -> set[str]:
    return {n.args["name"] for n in graph.walk() if n.op == "constant"}


@register("partition-moe")
def partition_moe(graph: Graph, *, devices: int = 1, capacity_factor: str = "dropless", min_capacity: int = 0,
                  placement: str = "contiguous", replicate: list = []) -> None:  # noqa: B006 (option default)
    """Rewrite each `moe` into route/permute/all_to_all/grouped_matmul/all_to_all/combine over N devices."""
    cf = parse_capacity(capacity_factor)
    before = _constant_names(graph)
    for i, node in enumerate([n for n in graph.nodes if n.op == "moe"]):
        E = node.arg("router_weight").type.shape[0]
        table = make_placement(E, devices, placement, [int(e) for e in replicate])
        out = partition_node(graph, node, table, cf, min_capacity, i)
        graph.replace_all_uses(node.output, out)
        graph.nodes.remove(node)
        node.graph = None
        stat("partitioned")
        stat("replica_slots", sum(1 for e in table.slots if e >= 0) - E)
    dead_code_elimination(graph)
    for name in before - _constant_names(graph):
        graph.constants.pop(name, None)
