"""What one rank does: join the group, load its part of the program, run its tokens.

`run_rank` is the body of both launchers: `torchrun ... -m spikec.runtime.distributed.run_moe run`
and `torch.multiprocessing.spawn(spawn_entry, ...)` (the tests). Each rank runs the same
graph on its own batch rows; the MoE layers exchange token rows with all_to_all.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from spikec.ir import Graph, interpret
from spikec.ir.ops_moe import record_moe_load, set_process_communicator

from .comm import init_distributed
from .program import load_program, parameter_count


@dataclass
class RankResult:
    rank: int
    outputs: list
    parameters: int                       # elements of the constants this rank's graph reads
    constants: dict[str, tuple] = field(default_factory=dict)   # name -> shape
    load: list = field(default_factory=list)                    # moe_permute load records


def executor(graph: Graph, target: str):
    """A callable running `graph`: the interpreter ("interpret") or a compiled target."""
    if target == "interpret":
        return lambda *xs: interpret(graph, *xs)
    from spikec.codegen import get_target
    module = get_target(target).lower(graph)
    return lambda *xs: module.run(*xs)


def run_rank(program_dir: str, inputs: list, *, rank: int | None = None, world_size: int | None = None,
             init_method: str | None = None, target: str = "torch") -> RankResult:
    """inputs: this rank's graph inputs. Returns its outputs, kept parameters and load records."""
    comm = init_distributed(rank, world_size, init_method)
    set_process_communicator(comm)
    try:
        graph = load_program(program_dir, comm.rank)
        run = executor(graph, target)
        with record_moe_load() as load, torch.no_grad():
            out = run(*inputs)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        return RankResult(comm.rank, outs, parameter_count(graph),
                          {k: tuple(v.shape) for k, v in graph.constants.items()}, load)
    finally:
        set_process_communicator(None)


def spawn_entry(rank: int, world_size: int, program_dir: str, inputs_per_rank: list, init_method: str,
                out_dir: str, target: str) -> None:
    """torch.multiprocessing.spawn body: run rank `rank` and save its RankResult to out_dir."""
    import torch.distributed as dist
    torch.set_num_threads(1)
    try:
        res = run_rank(program_dir, inputs_per_rank[rank], rank=rank, world_size=world_size,
                       init_method=init_method, target=target)
        torch.save(res.__dict__, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
