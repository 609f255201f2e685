"""The cuda target's rule table: the torch target's rules, with the fused ops
replaced by calls into the Triton kernels (spikec.codegen.triton.ops).

Everything else (the core aten ops, structured control flow, spike trains,
the MoE collectives) stays as the torch target writes it: torch ops, which
run on the GPU when the tensors live there.
"""
from __future__ import annotations

from spikec.codegen.torch import load_rules
from spikec.codegen.torch.rules_fused import kernel_call

from . import ops

CUDA_RULES = load_rules().copy("cuda")

TRITON_OPS = ("linear_attention", "attention", "sliding_window_attention", "spike_encode", "grouped_matmul", "moe")


@CUDA_RULES.override("linear_attention")
def _linear_attention(node, e):
    return kernel_call(node, e, ops.linear_attention, ("q", "k", "v", "gate", "initial_state"),
                       ("gate_kind", "scale", "output_final_state"))


@CUDA_RULES.override("attention")
def _attention(node, e):
    return kernel_call(node, e, ops.attention, ("q", "k", "v"), ("scale", "causal"))


@CUDA_RULES.override("sliding_window_attention")
def _sliding_window_attention(node, e):
    return kernel_call(node, e, ops.sliding_window_attention, ("q", "k", "v"), ("window", "scale"))


@CUDA_RULES.override("spike_encode")
def _spike_encode(node, e):
    return kernel_call(node, e, ops.spike_encode, ("x",), ("k", "axis"))


@CUDA_RULES.override("grouped_matmul")
def _grouped_matmul(node, e):
    return kernel_call(node, e, ops.grouped_matmul, ("x", "group_sizes", "weight"), ())


@CUDA_RULES.override("moe")
def _moe(node, e):
    return kernel_call(node, e, ops.moe, ("x", "router_weight", "w_gate", "w_up", "w_down", "shared_gate",
                                          "shared_up", "shared_down"), ("top_k", "activation", "renormalize"))
