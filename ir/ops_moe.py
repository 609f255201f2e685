"""Mixture-of-experts ops: the fused `moe` layer and its expert-parallel pieces.

    moe            router (linear -> softmax|sigmoid -> top-k [-> renormalise]) + SwiGLU
                   experts (stacked weights [E, ...]) + weighted combine (+ shared expert)

`partition-moe` rewrites `moe` into an SPMD program that every rank runs on its own
tokens (x: [N, D], N symbolic):

    moe_route      x -> top-k weights [N, k], expert ids [N, k]
    moe_permute    token slots sorted by (destination device, local expert slot), with
                   the send counts per (device, slot) and the slot each row came from
    all_to_all     rows exchanged between ranks by those counts (a fresh row count)
    shard          this rank's rows of a stacked per-device weight ([P*L, ...] -> [L, ...])
    grouped_matmul one GEMM per segment of rows, segment g of each row of counts uses w[g]
    moe_combine    rows back to their slots, weighted and summed over k

Collectives go through the *current communicator* (`use_communicator`). The reference
implementation of `all_to_all` and `shard` is therefore single-process by default (world
size 1, an identity exchange); `spikec.runtime.distributed` supplies a communicator over
torch.distributed and one that simulates N ranks with threads in one process, so the
interpreter runs the same SPMD graph in both settings.

Load statistics: while `record_moe_load()` is active, every `moe_permute` that runs appends
{layer, rank, tokens, expert_counts, dropped} to the recorder.
"""
from __future__ import annotations

import contextlib
import math
import threading

import torch
import torch.nn.functional as F

from .errors import InterpretError
from .infer import WILDCARD_PREFIX
from .registry import OpDef, Param, register_op
from .types import TensorType, norm_dim, sym

ROUTER_ACTIVATIONS = ("softmax", "sigmoid")


# -- communicator --------------------------------------------------------------
class Communicator:
    """What the collective ops need: this rank, the world size and an all-to-all.

    `all_to_all(send, recv_shapes)`: send[d] goes to rank d; returns the list whose
    entry s came from rank s and has shape recv_shapes[s] (dtype of send[0])."""
    rank: int = 0
    world_size: int = 1

    def all_to_all(self, send: list[torch.Tensor], recv_shapes: list[tuple]) -> list[torch.Tensor]:
        raise NotImplementedError


class SingleProcess(Communicator):
    """World size 1: the exchange is the identity."""

    def all_to_all(self, send, recv_shapes):
        return [send[0]]


_thread = threading.local()
_process = {"comm": SingleProcess()}


def current_communicator() -> Communicator:
    return getattr(_thread, "comm", None) or _process["comm"]


def set_process_communicator(comm: Communicator | None) -> None:
    """The communicator every thread of this process uses (None: back to single process)."""
    _process["comm"] = comm or SingleProcess()


@contextlib.contextmanager
def use_communicator(comm: Communicator):
    """Run the collectives of this thread through `comm`."""
    old = getattr(_thread, "comm", None)
    _thread.comm = comm
    try:
        yield comm
    finally:
        _thread.comm = old


def _comm_for(devices: int, op: str) -> Communicator:
    comm = current_communicator()
    if comm.world_size != devices:
        raise InterpretError(
            f"{op} was partitioned for {devices} devices but runs with a communicator of world size "
            f"{comm.world_size}",
            hint="run each rank under torchrun / spikec.runtime.distributed, or simulate the ranks "
                 "in one process with spikec.runtime.distributed.simulate")
    return comm


# -- load statistics -------------------------------------------------------------
_recorders: list[list] = []
_recorders_lock = threading.Lock()


@contextlib.contextmanager
def record_moe_load():
    """Collect one record per executed `moe_permute` (any thread) into the yielded list."""
    records: list[dict] = []
    with _recorders_lock:
        _recorders.append(records)
    try:
        yield records
    finally:
        with _recorders_lock:
            _recorders.remove(records)


def _record(entry: dict) -> None:
    with _recorders_lock:
        for r in _recorders:
            r.append(dict(entry))


# -- reference math ----------------------------------------------------------------
def swiglu(x, w_gate, w_up, w_down):
    """down(silu(gate x) * up x) with weights in nn.Linear layout ([out, in])."""
    return F.linear(F.silu(F.linear(x, w_gate)) * F.linear(x, w_up), w_down)


def route_reference(x, router_weight, *, top_k, activation="softmax", renormalize=False):
    """x [..., D] -> (weights [N, k] in x's dtype, expert ids [N, k]); the router runs in fp32."""
    if activation not in ROUTER_ACTIVATIONS:
        raise InterpretError(f"router activation must be one of {ROUTER_ACTIVATIONS}, got {activation!r}")
    h = x.reshape(-1, x.shape[-1])
    logits = F.linear(h, router_weight).float()
    probs = logits.softmax(-1) if activation == "softmax" else logits.sigmoid()
    weights, experts = probs.topk(top_k, dim=-1)
    if renormalize:
        weights = weights / weights.sum(-1, keepdim=True)
    return weights.to(x.dtype), experts


def moe_reference(x, router_weight, w_gate, w_up, w_down, shared_gate=None, shared_up=None, shared_down=None,
                  *, top_k, activation="softmax", renormalize=False):
    """y_n = sum_j w_nj E_{i_nj}(x_n) (+ shared(x_n)), each expert run on its own tokens."""
    h = x.reshape(-1, x.shape[-1])
    weights, experts = route_reference(x, router_weight, top_k=top_k, activation=activation,
                                       renormalize=renormalize)
    out = torch.zeros_like(h)
    for e in range(w_gate.shape[0]):
        rows, slot = torch.where(experts == e)
        if rows.numel():
            y = swiglu(h[rows], w_gate[e], w_up[e], w_down[e]) * weights[rows, slot, None]
            out = out.index_add(0, rows, y)
    if shared_gate is not None:
        out = out + swiglu(h, shared_gate, shared_up, shared_down)
    return out.reshape(x.shape)


def capacity_of(num_slots: int, num_experts: int, capacity_factor: float, min_capacity: int) -> int:
    """GShard/Switch capacity per expert: ceil(factor * N*k / E), at least min_capacity."""
    return max(min_capacity, math.ceil(capacity_factor * num_slots / num_experts))


def capacity_keep(experts, num_experts, capacity):
    """bool [N, k]: slots within their expert's capacity. First choices fill the
    capacity before second choices (GShard), tokens in order within a choice."""
    by_choice = experts.t().reshape(-1)                              # j-major
    onehot = F.one_hot(by_choice, num_experts)
    position = (onehot.cumsum(0) * onehot).sum(-1) - 1               # index within its expert
    return (position < capacity).reshape(experts.shape[1], -1).t()


def _replica_table(slots, num_experts):
    reps = [[s for s, e in enumerate(slots) if e == g] for g in range(num_experts)]
    missing = [g for g, r in enumerate(reps) if not r]
    if missing:
        raise InterpretError(f"moe_permute: expert {missing[0]} has no slot in the placement {slots}")
    width = max(len(r) for r in reps)
    table = torch.tensor([r + [r[0]] * (width - len(r)) for r in reps], dtype=torch.long)
    return table, torch.tensor([len(r) for r in reps], dtype=torch.long)


def permute_reference(x, experts, *, num_experts, devices, slots, capacity_factor=0.0, min_capacity=0,
                      layer=""):
    """Sort this rank's token slots by destination (device, local slot).

    Returns send [N*k, D] (kept rows first, zero rows for dropped slots at the end),
    counts [devices, L] and order [N*k]: the flat slot n*k+j of each row, -1 if dropped.
    A replicated expert's slots alternate over its replicas ((token + rank) mod replicas)."""
    if len(slots) % devices:
        raise InterpretError(f"moe_permute: {len(slots)} slots do not split over {devices} devices")
    N, k = experts.shape
    L = len(slots) // devices
    rank = current_communicator().rank if devices > 1 else 0
    table, nrep = _replica_table(list(slots), num_experts)
    flat = experts.reshape(-1)
    token = torch.arange(N * k) // k
    slot_of = table[flat, (token + rank) % nrep[flat]]
    if capacity_factor > 0:
        keep = capacity_keep(experts, num_experts, capacity_of(N * k, num_experts, capacity_factor,
                                                               min_capacity)).reshape(-1)
    else:
        keep = torch.ones(N * k, dtype=torch.bool)
    order = torch.sort(torch.where(keep, slot_of, devices * L), stable=True).indices
    kept = keep[order]
    send = x[token[order]] * kept[:, None].to(x.dtype)
    counts = torch.bincount(slot_of[keep], minlength=devices * L).reshape(devices, L)
    if _recorders:
        _record({"layer": layer, "rank": rank, "tokens": N,
                 "expert_counts": torch.bincount(flat, minlength=num_experts).tolist(),
                 "dropped": int((~keep).sum())})
    return send, counts, torch.where(kept, order, -1)


def all_to_all_reference(x, counts, *, devices):
    """Rows of x grouped by peer (counts [P, L] rows per (peer, slot)) go to that peer;
    returns the rows received, grouped by source, and the counts they came with."""
    comm = _comm_for(devices, "all_to_all")
    P, L = counts.shape
    recv_counts = torch.stack(comm.all_to_all([counts[d].contiguous() for d in range(P)], [(L,)] * P))
    per_dest, per_src = counts.sum(1).tolist(), recv_counts.sum(1).tolist()
    chunks = [c.contiguous() for c in x[:sum(per_dest)].split(per_dest)]
    recv = comm.all_to_all(chunks, [(n, *x.shape[1:]) for n in per_src])
    return torch.cat(recv), recv_counts


def shard_reference(x, *, devices):
    """This rank's block of dim 0 (x holds `devices` equal blocks)."""
    if x.shape[0] % devices:
        raise InterpretError(f"shard: dim 0 of size {x.shape[0]} does not split over {devices} devices")
    rank = _comm_for(devices, "shard").rank if devices > 1 else 0
    n = x.shape[0] // devices
    return x[rank * n:(rank + 1) * n]


def grouped_matmul_reference(x, group_sizes, weight):
    """Rows of x in consecutive segments, one per entry of group_sizes (row-major);
    entry [..., g] multiplies its rows by weight[g]ᵀ (nn.Linear layout [G, O, K])."""
    G = weight.shape[0]
    if group_sizes.shape[-1] != G:
        raise InterpretError(f"grouped_matmul: group_sizes has {group_sizes.shape[-1]} groups per row, "
                             f"the weight {G}")
    sizes = group_sizes.reshape(-1).tolist()
    if sum(sizes) != x.shape[0]:
        raise InterpretError(f"grouped_matmul: group sizes sum to {sum(sizes)}, x has {x.shape[0]} rows")
    out = x.new_zeros(x.shape[0], weight.shape[1])
    off = 0
    for i, n in enumerate(sizes):
        out[off:off + n] = x[off:off + n] @ weight[i % G].t()
        off += n
    return out


def combine_reference(x, order, weights):
    """out[n] = sum_j weights[n, j] * row of slot n*k+j (zero for a dropped slot)."""
    N, k = weights.shape
    rows = order[:x.shape[0]]
    if bool((rows < 0).any()):
        raise InterpretError("moe_combine: more rows came back than slots were sent")
    buf = x.new_zeros(N * k, *x.shape[1:])
    buf[rows] = x
    return (buf.reshape(N, k, *x.shape[1:]) * weights.reshape(N, k, *([1] * (x.dim() - 1)))).sum(1)


# -- type inference -------------------------------------------------------------------
def _tokens(x: TensorType):
    n = 1
    for d in x.shape[:-1]:
        n = n * d
    return norm_dim(n)


def _fresh_rows() -> object:
    # A data-dependent row count: the pass that builds the node declares a real symbol.
    return sym(WILDCARD_PREFIX + "rows")


def _moe_infer(opdef, a, ctx):
    return [a["x"]]


def _route_infer(opdef, a, ctx):
    n, k = _tokens(a["x"]), a["top_k"]
    return [TensorType((n, k), a["x"].dtype), TensorType((n, k), "i64")]


def _permute_infer(opdef, a, ctx):
    (n, k), d = a["experts"].shape, a["x"].shape[-1]
    P = a["devices"]
    return [TensorType((norm_dim(n * k), d), a["x"].dtype), TensorType((P, len(a["slots"]) // P), "i64"),
            TensorType((norm_dim(n * k),), "i64")]


def _a2a_infer(opdef, a, ctx):
    x = a["x"]
    return [TensorType((_fresh_rows(), *x.shape[1:]), x.dtype), a["counts"]]


def _shard_infer(opdef, a, ctx):
    x, P = a["x"], a["devices"]
    return [TensorType((x.shape[0] // P, *x.shape[1:]), x.dtype)]    # stacked weights: static dim 0


def _gmm_infer(opdef, a, ctx):
    return [TensorType((a["x"].shape[0], a["weight"].shape[1]), a["x"].dtype)]


def _combine_infer(opdef, a, ctx):
    return [TensorType((a["weights"].shape[0], *a["x"].shape[1:]), a["x"].dtype)]


_ROUTER_PARAMS = [Param("top_k", "int"), Param("activation", "str", "softmax"), Param("renormalize", "bool", False)]

register_op(OpDef(
    "moe",
    [Param("x", "tensor"), Param("router_weight", "tensor"), Param("w_gate", "tensor"), Param("w_up", "tensor"),
     Param("w_down", "tensor"), Param("shared_gate", "tensor?", None), Param("shared_up", "tensor?", None),
     Param("shared_down", "tensor?", None), *_ROUTER_PARAMS],
    moe_reference, 1, infer=_moe_infer, category="fused",
    doc="Mixture of SwiGLU experts: router linear -> softmax|sigmoid (fp32) -> top-k [-> renormalise]; "
        "y = sum_j w_j E_{i_j}(x) + shared(x). x [..., D]; router [E, D]; w_gate/w_up [E, F, D]; w_down [E, D, F]."))

register_op(OpDef(
    "moe_route", [Param("x", "tensor"), Param("router_weight", "tensor"), *_ROUTER_PARAMS],
    route_reference, 2, infer=_route_infer, category="fused",
    doc="The MoE router: x [..., D] -> top-k weights [N, k] (x's dtype), expert ids [N, k] (i64)."))

register_op(OpDef(
    "moe_permute",
    [Param("x", "tensor"), Param("experts", "tensor"), Param("num_experts", "int"), Param("devices", "int"),
     Param("slots", "int[]"), Param("capacity_factor", "float", 0.0), Param("min_capacity", "int", 0),
     Param("layer", "str", "")],
    permute_reference, 3, infer=_permute_infer, category="fused",
    doc="Sort token slots by (device, local slot) of the placement `slots` (global expert per slot, "
        "device-major); capacity_factor 0 is dropless. -> send [N*k, D], counts [devices, L], order [N*k]."))

register_op(OpDef(
    "all_to_all", [Param("x", "tensor"), Param("counts", "tensor"), Param("devices", "int")],
    all_to_all_reference, 2, infer=_a2a_infer, category="fused",
    doc="Exchange rows between ranks: rows grouped by peer per counts [P, L]; returns the received rows "
        "(grouped by source) and their counts. Runs on the current communicator."))

register_op(OpDef(
    "shard", [Param("x", "tensor"), Param("devices", "int")],
    shard_reference, 1, infer=_shard_infer, category="fused",
    doc="This rank's block of dim 0 of a tensor stacked over `devices` ranks."))

register_op(OpDef(
    "grouped_matmul", [Param("x", "tensor"), Param("group_sizes", "tensor"), Param("weight", "tensor")],
    grouped_matmul_reference, 1, infer=_gmm_infer, category="fused",
    doc="Grouped GEMM: x [R, K] in consecutive row segments (group_sizes [..., G], row-major); "
        "a segment in column g is multiplied by weight[g]ᵀ ([G, O, K]) -> [R, O]."))

register_op(OpDef(
    "moe_combine", [Param("x", "tensor"), Param("order", "tensor"), Param("weights", "tensor")],
    combine_reference, 1, infer=_combine_infer, category="fused",
    doc="Un-permute expert outputs to their token slots (order) and sum them weighted: -> [N, D]."))
