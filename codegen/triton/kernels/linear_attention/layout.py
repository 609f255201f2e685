"""Host-side bookkeeping shared by the linear-attention launchers: block sizes,
the chunk maps of packed (varlen) batches, and argument checks."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import triton

from spikec.ir.errors import SpikecError

GATE_KINDS = ("none", "scalar", "channel")
MAX_HEAD_DIM = 128   # one key/value tile of a head lives in registers (compiled and checked up to 128)


class KernelArgumentError(SpikecError):
    """Inputs a Triton kernel launcher cannot take (shape, dtype, device)."""


@dataclass(frozen=True)
class Chunking:
    """BT rows per chunk (the state is stored once per chunk), split into BT // BC
    sub-blocks of BC rows (the unit of the parallel output and gradient passes)."""
    BT: int = 64
    BC: int = 16

    @classmethod
    def for_length(cls, T: int, most: int = 64) -> "Chunking":
        """Chunks of 16, 32 or 64 rows: the smallest that covers T (short sequences launch fewer programs)."""
        return cls(BT=min(most, pow2(T)), BC=16)

    def __post_init__(self):
        if self.BC < 16 or self.BT % self.BC or self.BT & (self.BT - 1) or self.BC & (self.BC - 1):
            raise KernelArgumentError(f"chunking BT={self.BT}, BC={self.BC}: both must be powers of two, "
                                      f"BC >= 16 (tl.dot's smallest tile) and BC must divide BT")


def pow2(n: int, least: int = 16) -> int:
    return max(least, triton.next_power_of_2(int(n)))


@dataclass
class Sequences:
    """How the T axis splits into sequences.

    Batched input [B, H, T, D]: N = B sequences of length T, cu_seqlens None.
    Packed input [1, H, T_total, D] with cu_seqlens [N + 1]: sequence n is rows
    cu_seqlens[n]:cu_seqlens[n+1]. chunk_indices[c] = (n, chunk within n) and
    chunk_offsets[n] = first global chunk of n (packed input only)."""
    N: int
    T: int                              # the T axis of the tensors (T_total when packed)
    num_chunks: int
    cu_seqlens: torch.Tensor | None
    chunk_indices: torch.Tensor | None
    chunk_offsets: torch.Tensor | None

    @property
    def varlen(self) -> bool:
        return self.cu_seqlens is not None


def sequences(q: torch.Tensor, cu_seqlens: torch.Tensor | None, BT: int) -> Sequences:
    B, _, T, _ = q.shape
    if cu_seqlens is None:
        return Sequences(B, T, B * triton.cdiv(T, BT), None, None, None)
    if B != 1:
        raise KernelArgumentError(f"packed sequences (cu_seqlens given) need batch size 1, got {B}",
                                  hint="concatenate the sequences along T and pass their offsets as cu_seqlens")
    cu = cu_seqlens.to(device=q.device, dtype=torch.int32)
    lengths = (cu[1:] - cu[:-1]).tolist()
    if int(cu[0]) != 0 or int(cu[-1]) != T or any(n < 0 for n in lengths):
        raise KernelArgumentError(f"cu_seqlens must rise from 0 to T={T}, got {cu.tolist()}")
    per = [triton.cdiv(n, BT) for n in lengths]
    idx = [(n, c) for n, count in enumerate(per) for c in range(count)]
    chunk_indices = torch.tensor(idx or [(0, 0)], dtype=torch.int32, device=q.device)
    offsets = torch.tensor([0] + per, dtype=torch.int32, device=q.device).cumsum(0).to(torch.int32)
    return Sequences(len(lengths), T, len(idx), cu, chunk_indices, offsets)


def state_tiles(K: int, V: int, programs: int, want: int = 128) -> tuple[int, int]:
    """(BK, BV) of the sequential state passes. They run one program per (key
    block, value block, sequence x head), so with few heads the tiles shrink
    (value side to 16, then key side to 32) until about `want` programs run."""
    BK, BV = min(pow2(K), 64), min(pow2(V), 64)
    while programs * triton.cdiv(K, BK) * triton.cdiv(V, BV) < want and (BV > 16 or BK > 32):
        if BV > 16:
            BV //= 2
        else:
            BK //= 2
    return BK, BV


def dot_precision(dtype: torch.dtype) -> str:
    """fp32 dots in IEEE precision unless torch allows TF32 (torch.backends.cuda.matmul.allow_tf32)."""
    if dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return "ieee"


def check_inputs(q, k, v, gate, gate_kind, initial_state, cu_seqlens):
    if gate_kind not in GATE_KINDS:
        raise KernelArgumentError(f"gate_kind {gate_kind!r}: the Triton kernels take {', '.join(GATE_KINDS)}",
                                  hint="key_tied gates run through the torch target's kernel")
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise KernelArgumentError("q, k, v must be head-first [B, H, T, D] tensors")
    B, H, T, K = q.shape
    HKV, V = k.shape[1], v.shape[-1]
    if k.shape != (B, HKV, T, K) or v.shape[:3] != (B, HKV, T) or H % HKV:
        raise KernelArgumentError(f"shapes q {list(q.shape)}, k {list(k.shape)}, v {list(v.shape)} do not fit "
                                  f"[B, H, T, K], [B, Hkv, T, K], [B, Hkv, T, V] with H a multiple of Hkv")
    if max(K, V) > MAX_HEAD_DIM:
        raise KernelArgumentError(f"head dims K={K}, V={V}: the kernels take at most {MAX_HEAD_DIM}")
    want = {"scalar": (B, HKV, T), "channel": (B, HKV, T, K)}.get(gate_kind)
    if want is not None and (gate is None or tuple(gate.shape) != want):
        raise KernelArgumentError(f"gate_kind {gate_kind!r} needs a gate of shape {list(want)}, "
                                  f"got {None if gate is None else list(gate.shape)}")
    N = B if cu_seqlens is None else len(cu_seqlens) - 1
    if initial_state is not None and tuple(initial_state.shape) != (N, H, K, V):
        raise KernelArgumentError(f"initial_state must be [{N}, {H}, {K}, {V}] (one per sequence and head), "
                                  f"got {list(initial_state.shape)}")
