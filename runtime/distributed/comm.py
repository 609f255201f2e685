"""The communicator over torch.distributed: all_to_all of ragged chunks as one
`all_to_all_single` with split sizes (gloo on CPU needs equal chunk shapes for
`all_to_all`, but takes splits here; NCCL takes both)."""
from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist

from spikec.ir.ops_moe import Communicator

DEFAULT_TIMEOUT_S = 120


class TorchDistCommunicator(Communicator):
    def __init__(self, group=None):
        if not dist.is_initialized():
            raise RuntimeError("torch.distributed is not initialised; call init_distributed() first")
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)

    def all_to_all(self, send, recv_shapes):
        dtype, device = send[0].dtype, send[0].device
        tail = tuple(send[0].shape[1:])
        flat_in = torch.cat([t.reshape(t.shape[0], *tail) for t in send]).contiguous()
        out = torch.empty((sum(int(s[0]) for s in recv_shapes), *tail), dtype=dtype, device=device)
        dist.all_to_all_single(out, flat_in, output_split_sizes=[int(s[0]) for s in recv_shapes],
                               input_split_sizes=[int(t.shape[0]) for t in send], group=self.group)
        return list(out.split([int(s[0]) for s in recv_shapes]))


def default_backend() -> str:
    return "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"


def init_distributed(rank: int | None = None, world_size: int | None = None, init_method: str | None = None,
                     backend: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> TorchDistCommunicator:
    """Join the process group (torchrun's RANK/WORLD_SIZE/MASTER_* when not given) and
    return a communicator for the collective ops."""
    rank = int(os.environ["RANK"]) if rank is None else rank
    world_size = int(os.environ["WORLD_SIZE"]) if world_size is None else world_size
    if not dist.is_initialized():
        dist.init_process_group(backend or default_backend(), init_method=init_method or "env://", rank=rank,
                                world_size=world_size, timeout=datetime.timedelta(seconds=timeout_s))
    return TorchDistCommunicator()
