"""Rules for the MoE ops. `moe` and `grouped_matmul` run the grouped GEMM kernel (tokens
sorted by expert, padded to a block: 1 row on CPU, 16 on CUDA, chosen at run time from
the tensors' device). Routing, permutation, combine and the collectives call the IR's
vectorised reference functions, so load statistics and the current communicator work
the same as in the interpreter."""
from __future__ import annotations

from spikec.ir import ops_moe as R

from .kernels import grouped_gemm as K
from .table import TORCH_RULES


@TORCH_RULES.rule("moe")
def _moe(node, e):
    return e.call(e.use(K.moe_forward), *(e.arg(p) for p in ("x", "router_weight", "w_gate", "w_up", "w_down",
                                                              "shared_gate", "shared_up", "shared_down")),
                  top_k=e.arg("top_k"), activation=e.arg("activation"), renormalize=e.arg("renormalize"))


@TORCH_RULES.rule("grouped_matmul")
def _grouped_matmul(node, e):
    return e.call(e.use(K.grouped_matmul), e.arg("x"), e.arg("group_sizes"), e.arg("weight"))


@TORCH_RULES.rule("moe_route")
def _moe_route(node, e):
    return e.call(e.use(R.route_reference, "moe_route"), e.arg("x"), e.arg("router_weight"), top_k=e.arg("top_k"),
                  activation=e.arg("activation"), renormalize=e.arg("renormalize"))


@TORCH_RULES.rule("moe_permute")
def _moe_permute(node, e):
    keys = ("num_experts", "devices", "slots", "capacity_factor", "min_capacity", "layer")
    return e.call(e.use(R.permute_reference, "moe_permute"), e.arg("x"), e.arg("experts"),
                  **{k: e.arg(k) for k in keys})


@TORCH_RULES.rule("all_to_all")
def _all_to_all(node, e):
    return e.call(e.use(R.all_to_all_reference, "all_to_all"), e.arg("x"), e.arg("counts"), devices=e.arg("devices"))


@TORCH_RULES.rule("shard")
def _shard(node, e):
    return e.call(e.use(R.shard_reference, "shard"), e.arg("x"), devices=e.arg("devices"))


@TORCH_RULES.rule("moe_combine")
def _moe_combine(node, e):
    return e.call(e.use(R.combine_reference, "moe_combine"), e.arg("x"), e.arg("order"), e.arg("weights"))
