"""spikec.runtime.distributed: expert-parallel execution of partitioned MoE graphs.

A graph from `partition-moe{devices=N}` is one SPMD program: every rank runs it on its
own tokens, the `all_to_all` nodes exchange token rows through the current
communicator and the `shard` nodes pick the rank's expert weights.

    simulate(fn, world_size)          N ranks as threads of one process (tests, interpreter)
    init_distributed(...)             join torch.distributed (gloo on CPU, NCCL on GPU)
    save_program / load_program       a partitioned graph on disk; a rank loads only its experts
    run_rank(program_dir, inputs)     one rank's forward (the body of both launchers)
    python -m spikec.runtime.distributed.run_moe compile|run   the torchrun entry point (docs/moe.md)
"""
from .comm import TorchDistCommunicator, init_distributed
from .program import ProgramError, load_program, parameter_count, save_program
from .simulated import CollectiveError, ThreadCommunicator, simulate
from .worker import RankResult, run_rank

__all__ = ["simulate", "ThreadCommunicator", "CollectiveError", "TorchDistCommunicator", "init_distributed",
           "save_program", "load_program", "parameter_count", "ProgramError", "run_rank", "RankResult"]
