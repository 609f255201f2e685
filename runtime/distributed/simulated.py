"""N ranks simulated by N threads of one process, for tests and for the interpreter.

    results = simulate(lambda rank: spikec.ir.interpret(graph, inputs[rank]), world_size=4)

Each thread runs under its own `ThreadCommunicator`; an all-to-all is a mailbox
exchange between two barriers. If one rank raises, the barrier is broken so the
others stop instead of waiting forever, and the first error is raised.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

import torch

from spikec.ir.errors import SpikecError
from spikec.ir.ops_moe import Communicator, use_communicator

BARRIER_TIMEOUT_S = 120.0


class CollectiveError(SpikecError):
    """A collective that could not complete: a peer failed or the shapes disagree."""


class ThreadGroup:
    def __init__(self, world_size: int):
        self.world_size = world_size
        self.barrier = threading.Barrier(world_size, timeout=BARRIER_TIMEOUT_S)
        self.mailbox: list[list[Any]] = [[None] * world_size for _ in range(world_size)]


class ThreadCommunicator(Communicator):
    def __init__(self, group: ThreadGroup, rank: int):
        self.group, self.rank, self.world_size = group, rank, group.world_size

    def _wait(self) -> None:
        try:
            self.group.barrier.wait()
        except threading.BrokenBarrierError:
            raise CollectiveError(f"rank {self.rank}: a peer failed during an all_to_all") from None

    def all_to_all(self, send, recv_shapes):
        if len(send) != self.world_size:
            raise CollectiveError(f"rank {self.rank}: all_to_all needs {self.world_size} chunks, got {len(send)}")
        for d, t in enumerate(send):
            self.group.mailbox[self.rank][d] = t
        self._wait()
        recv = [self.group.mailbox[s][self.rank] for s in range(self.world_size)]
        self._wait()                        # every rank has read before the next exchange writes
        for s, (t, shape) in enumerate(zip(recv, recv_shapes)):
            if tuple(t.shape) != tuple(shape):
                raise CollectiveError(f"rank {self.rank}: expected {tuple(shape)} from rank {s}, got {tuple(t.shape)}")
        return [t.clone() for t in recv]


def simulate(fn: Callable[[int], Any], world_size: int) -> list:
    """Run fn(rank) for every rank in its own thread with a shared simulated communicator."""
    group = ThreadGroup(world_size)
    results: list[Any] = [None] * world_size
    errors: list[BaseException | None] = [None] * world_size

    def body(rank: int) -> None:
        try:
            with use_communicator(ThreadCommunicator(group, rank)), torch.no_grad():
                results[rank] = fn(rank)
        except BaseException as e:     # noqa: BLE001  (re-raised below, in the caller's thread)
            errors[rank] = e
            group.barrier.abort()

    threads = [threading.Thread(target=body, args=(r,), name=f"spikec-rank{r}") for r in range(world_size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = next((e for e in errors if e is not None and not isinstance(e, CollectiveError)), None)
    first = first or next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return results
