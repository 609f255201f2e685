"""Decode state: the flattened per-layer cache tensors an LM's decode entry
takes and returns, and their layout (recorded in the artifact's manifest)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

# kinds: the position counter; a GLA-style constant-size recurrent state; an SWA
# ring buffer of `window` slots; a full-attention KV cache growing by one per token.
STATE_KINDS = ("position", "recurrent", "ring", "kv_cache")


@dataclass
class StateSlot:
    """One flattened cache tensor."""
    name: str            # pytree path of the cache, e.g. "layers.0.state"
    shape: list          # ints, "B" for the batch, "P" for a growing length
    dtype: str
    kind: str

    def to_json(self) -> dict:
        return {"name": self.name, "shape": self.shape, "dtype": self.dtype, "kind": self.kind}

    @staticmethod
    def from_json(d: dict) -> "StateSlot":
        return StateSlot(d["name"], list(d["shape"]), d["dtype"], d["kind"])

    def empty(self, batch: int) -> torch.Tensor:
        """The slot before any token: zeros, with a zero-length KV cache."""
        shape = [batch if d == "B" else 0 if d == "P" else int(d) for d in self.shape]
        return torch.zeros(shape, dtype=getattr(torch, self.dtype))


class DecodeState:
    """The cache of one batch of sequences, as the decode entry wants it.

    Each call to `Session.decode` returns a new DecodeState; the old one is not
    mutated, so a state can be branched (beam search, retries) and two threads
    never share one."""

    def __init__(self, tensors: list[torch.Tensor], layout: list[StateSlot]):
        if len(tensors) != len(layout):
            raise ValueError(f"state has {len(tensors)} tensors, the layout {len(layout)}")
        self.tensors = list(tensors)
        self.layout = layout

    @property
    def pos(self) -> int:
        for t, s in zip(self.tensors, self.layout):
            if s.kind == "position":
                return int(t)
        return -1

    @property
    def batch_size(self) -> int:
        for t, s in zip(self.tensors, self.layout):
            if s.shape and s.shape[0] == "B":
                return int(t.shape[0])
        return 1

    def nbytes(self, kinds: tuple[str, ...] = STATE_KINDS) -> int:
        return sum(t.numel() * t.element_size() for t, s in zip(self.tensors, self.layout) if s.kind in kinds)

    def __repr__(self) -> str:
        return f"<DecodeState pos={self.pos} batch={self.batch_size} {self.nbytes()} bytes>"
