"""Where a chunk or a sequence lies, for batched and packed (varlen) inputs.

Tensors are head-first. A batched input is [B, H, T, D]; a packed input is
[1, H, T_total, D] with sequence n at rows cu_seqlens[n] : cu_seqlens[n+1].
Both reduce to one formula for the first row of (sequence n, head h):

    ((batch * H + h) * T + bos) * D

with batch = n, bos = 0 for batched inputs and batch = 0, bos = cu_seqlens[n]
for packed ones. Chunks are numbered globally over all sequences; for packed
inputs `chunk_indices[c] = (n, chunk-in-sequence)` comes from the host.
"""
import triton
import triton.language as tl


@triton.jit
def chunk_location(i_c, cu_seqlens, chunk_indices, T, BT: tl.constexpr, IS_VARLEN: tl.constexpr):
    """Global chunk id -> (sequence n, chunk within the sequence, batch, bos, sequence length)."""
    if IS_VARLEN:
        n = tl.load(chunk_indices + i_c * 2).to(tl.int32)
        ci = tl.load(chunk_indices + i_c * 2 + 1).to(tl.int32)
        bos = tl.load(cu_seqlens + n).to(tl.int32)
        length = tl.load(cu_seqlens + n + 1).to(tl.int32) - bos
        batch = 0
    else:
        NT = (T + BT - 1) // BT
        n = i_c // NT
        ci = i_c % NT
        bos = 0
        length = T
        batch = n
    return n, ci, batch, bos, length


@triton.jit
def sequence_location(n, cu_seqlens, chunk_offsets, T, BT: tl.constexpr, IS_VARLEN: tl.constexpr):
    """Sequence n -> (batch, bos, length, global id of its first chunk)."""
    if IS_VARLEN:
        bos = tl.load(cu_seqlens + n).to(tl.int32)
        length = tl.load(cu_seqlens + n + 1).to(tl.int32) - bos
        c0 = tl.load(chunk_offsets + n).to(tl.int32)
        batch = 0
    else:
        bos = 0
        length = T
        c0 = n * (T + BT - 1) // BT
        batch = n
    return batch, bos, length, c0
