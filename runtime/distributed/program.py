"""A partitioned MoE graph on disk, and the per-rank graph a process loads from it.

    save_program(graph, "out/prog")          # graph.ir + weights.safetensors + program.json
    g = load_program("out/prog", rank=1)     # rank 1's graph: its expert slots only

The expert weights of a partitioned graph are stacked per device ([devices * L, ...])
and read through `shard` nodes. Loading for a rank reads only that rank's rows of those
tensors from the safetensors file (a slice, never the whole tensor) and replaces each
`shard(constant)` by a constant holding them, so a rank's memory holds its own experts
and the replicated (non-expert) weights, nothing else.
"""
from __future__ import annotations

import json
import os

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from spikec.ir import Graph, SpikecError, TensorType, parse

FORMAT = 1
GRAPH_FILE, WEIGHTS_FILE, META_FILE = "graph.ir", "weights.safetensors", "program.json"


class ProgramError(SpikecError):
    """A program directory that is missing, damaged, or does not fit the world size."""


def _sharded(graph: Graph) -> dict[str, int]:
    """Constants read only through `shard` nodes: name -> devices."""
    out: dict[str, int] = {}
    readers: dict[str, set] = {}
    users = graph.users()
    for n in graph.nodes:
        if n.op == "constant":
            readers[n.args["name"]] = {u.op for u in users.get(n.output, [])}
            if readers[n.args["name"]] == {"shard"}:
                out[n.args["name"]] = next(u.arg("devices") for u in users[n.output])
    return out


def program_devices(graph: Graph) -> int:
    """The device count a partitioned graph was built for (1 when it has no collectives)."""
    counts = {n.arg("devices") for n in graph.nodes if n.op in ("all_to_all", "shard", "moe_permute")}
    if len(counts) > 1:
        raise ProgramError(f"the graph mixes partitions for {sorted(counts)} devices")
    return counts.pop() if counts else 1


def save_program(graph: Graph, directory: str) -> str:
    os.makedirs(directory, exist_ok=True)
    live = {n.args["name"] for n in graph.walk() if n.op == "constant"}
    tensors = {name: t.detach().contiguous() for name, t in graph.constants.items() if name in live}
    save_file(tensors, os.path.join(directory, WEIGHTS_FILE))
    with open(os.path.join(directory, GRAPH_FILE), "w") as f:
        f.write(str(graph))
    meta = {"format": FORMAT, "devices": program_devices(graph), "sharded": _sharded(graph)}
    with open(os.path.join(directory, META_FILE), "w") as f:
        json.dump(meta, f, indent=1)
    return directory


def read_meta(directory: str) -> dict:
    path = os.path.join(directory, META_FILE)
    if not os.path.exists(path):
        raise ProgramError(f"{directory} is not a spikec MoE program (no {META_FILE})",
                           hint="write one with save_program or `python -m spikec.runtime.distributed.run_moe compile`")
    with open(path) as f:
        meta = json.load(f)
    if meta.get("format") != FORMAT:
        raise ProgramError(f"{path}: program format {meta.get('format')} is not {FORMAT}")
    return meta


def load_program(directory: str, rank: int = 0) -> Graph:
    """The graph rank `rank` runs, with only its rows of the sharded weights in memory."""
    meta = read_meta(directory)
    devices, sharded = meta["devices"], meta["sharded"]
    if not 0 <= rank < devices:
        raise ProgramError(f"rank {rank} is outside the {devices} device(s) the program was partitioned for")
    constants: dict[str, torch.Tensor] = {}
    with safe_open(os.path.join(directory, WEIGHTS_FILE), framework="pt") as f:
        for name in f.keys():
            if name in sharded:
                sl = f.get_slice(name)
                rows = sl.get_shape()[0] // devices
                constants[name] = sl[rank * rows:(rank + 1) * rows]
            else:
                constants[name] = f.get_tensor(name)
    with open(os.path.join(directory, GRAPH_FILE)) as f:
        graph = parse(f.read(), constants=constants)
    return localize(graph, set(sharded))


def localize(graph: Graph, sharded: set[str]) -> Graph:
    """Replace `shard(constant c)` by c itself, whose table entry already holds this rank's rows."""
    users = graph.users()
    for node in list(graph.nodes):
        if node.op != "constant" or node.args["name"] not in sharded:
            continue
        local = graph.constants[node.args["name"]]
        node.output.type = TensorType.of(local)
        for u in users.get(node.output, []):
            if u.op != "shard" or u.output.type != node.output.type:
                raise ProgramError(f"constant {node.args['name']!r} is sharded but read as {u.op} "
                                   f"with type {u.output.type}", where=u.where())
            graph.replace_all_uses(u.output, node.output)
            graph.nodes.remove(u)
    return graph


def parameter_count(graph: Graph) -> int:
    """Elements of the constants the graph reads (weights, buffers, folded tensors)."""
    live = {n.args["name"] for n in graph.walk() if n.op == "constant"}
    return sum(t.numel() for name, t in graph.constants.items() if name in live)
