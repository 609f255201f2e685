"""Sparse upcycling: an MoE model whose experts all start as copies of a dense FFN.

SpikingBrain-76B (reference §2) initialises every routed and shared expert from the
dense FFN and rescales the expert weights by

    α = (1 / (S + k/N))^(1/3)

(S shared experts, top-k of N routed). Why: with the router at init every routed
probability is 1/N (softmax over equal logits) and the routed outputs are weighted by
those unrenormalised probabilities, so the layer computes S·E(x) + k·(1/N)·E(x) =
(S + k/N)·E(x) with E = the dense FFN. Scaling the expert output by α³ = 1/(S + k/N)
restores E(x); the paper spreads that factor as α on each of SwiGLU's three matrices,
which is exact only if the activation is positively homogeneous. silu is not
(silu(αz) != α·silu(z)), so `scaling="exact"` (default) puts the same total α³ on the
two matrices outside the activation (up by α², down by α): the upcycled layer then
equals the dense FFN exactly at uniform routing. `scaling="paper"` applies α to all
three (off by ~1e-3 relative for α ≈ 0.98), `scaling="none"` copies unscaled.

    moe = upcycle_ffn(dense_swiglu, num_experts=16, top_k=1)              # one layer
    upcycle_ffns(model, num_experts=4, top_k=2)                           # in place, any zoo model's SwiGLU FFNs
    moe_model = upcycle_spikingbrain(dense_spikingbrain, num_experts=4, top_k=2)   # a spikingbrain_moe checkpoint

The router starts as N(0, router_std²) noise; router_std=0 gives the exactly uniform
routing of the derivation (and identical experts get identical tokens, so training
wants some noise). A sigmoid router has probability 1/2 at zero logits, so its α uses
k/2 in place of k/N.
"""
from __future__ import annotations

import torch
from torch import nn

from .ffn import SwiGLU
from .moe import SparseMoE

SCALINGS = ("exact", "paper", "none")


def init_probability(router_activation: str, num_experts: int) -> float:
    """A routed expert's weight when all router logits are equal."""
    return 1.0 / num_experts if router_activation == "softmax" else 0.5


def upcycle_alpha(num_shared: int, top_k: int, num_experts: int, router_activation: str = "softmax") -> float:
    """α = (1 / (S + k·p0))^(1/3); p0 = 1/N for softmax (the reference's formula)."""
    return (1.0 / (num_shared + top_k * init_probability(router_activation, num_experts))) ** (1.0 / 3.0)


def _scaled_copy(dense: SwiGLU, alpha: float, scaling: str) -> SwiGLU:
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}")
    f_gate, f_up, f_down = {"exact": (1.0, alpha ** 2, alpha), "paper": (alpha, alpha, alpha),
                            "none": (1.0, 1.0, 1.0)}[scaling]
    out = SwiGLU(dense.gate_proj.in_features, dense.gate_proj.out_features)
    with torch.no_grad():
        out.gate_proj.weight.copy_(dense.gate_proj.weight * f_gate)
        out.up_proj.weight.copy_(dense.up_proj.weight * f_up)
        out.down_proj.weight.copy_(dense.down_proj.weight * f_down)
    return out.to(dense.gate_proj.weight.dtype)


def upcycle_ffn(dense: SwiGLU, num_experts: int, top_k: int, *, num_shared: int = 1,
                router_activation: str = "softmax", scaling: str = "exact", router_std: float = 0.02,
                moe_impl: str = "sparse", generator: torch.Generator | None = None) -> SparseMoE:
    """A SparseMoE with every routed (and the shared) expert a rescaled copy of `dense`."""
    if num_shared not in (0, 1):
        raise ValueError(f"the zoo's MoE layer has 0 or 1 shared expert, not {num_shared}")
    d, f = dense.gate_proj.in_features, dense.gate_proj.out_features
    alpha = upcycle_alpha(num_shared, top_k, num_experts, router_activation)
    moe = SparseMoE(d, f, num_experts, top_k, f if num_shared else 0, router_activation, False, moe_impl)
    moe.experts = nn.ModuleList(_scaled_copy(dense, alpha, scaling) for _ in range(num_experts))
    if num_shared:
        moe.shared_expert = _scaled_copy(dense, alpha, scaling)
    with torch.no_grad():
        moe.gate.weight.copy_(torch.randn(num_experts, d, generator=generator) * router_std)
    return moe.to(dense.gate_proj.weight.dtype)


def upcycle_ffns(model: nn.Module, num_experts: int, top_k: int, *, layers: list[int] | None = None,
                 **kwargs) -> nn.Module:
    """Replace the SwiGLU `mlp` of each decoder layer (all, or `layers`) by its upcycled
    MoE, in place. The architecture stays the model's own (an in-memory model: its
    config does not describe MoE layers)."""
    for i, block in enumerate(model.model.layers):
        if (layers is None or i in layers) and isinstance(block.mlp, SwiGLU):
            block.mlp = upcycle_ffn(block.mlp, num_experts, top_k, **kwargs)
    return model


def _copy_linear(dst: nn.Linear, src: nn.Linear) -> None:
    dst.weight.copy_(src.weight)
    if dst.bias is not None:
        dst.bias.copy_(src.bias)


def upcycle_spikingbrain(dense, *, num_experts: int = 4, top_k: int = 2, dense_layers: list[int] | None = None,
                         num_shared: int = 1, router_activation: str = "softmax", scaling: str = "exact",
                         router_std: float = 0.02, seed: int = 0, **overrides):
    """A spikingbrain_moe model from a dense spikingbrain one: embeddings, norms, q/k/v/o
    (and the low-rank GLA gate of GLA layers) copied; each FFN upcycled into experts,
    except at `dense_layers`, which keep a verbatim copy. The attention becomes the MoE
    model's parallel linear + softmax hybrid, so only the FFNs compute what they did."""
    from .spikingbrain_moe import SpikingBrainMoEConfig, SpikingBrainMoEForCausalLM

    c = dense.config
    cfg = SpikingBrainMoEConfig(
        vocab_size=c.vocab_size, hidden_size=c.hidden_size, num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads, num_key_value_heads=c.num_key_value_heads, head_dim=c.head_dim,
        intermediate_size=c.intermediate_size, moe_intermediate_size=c.intermediate_size,
        shared_expert_intermediate_size=c.intermediate_size if num_shared else 0, num_experts=num_experts,
        num_experts_per_tok=top_k, dense_layers=list(dense_layers or []), router_activation=router_activation,
        linear_attn_feature_map=c.feature_map, linear_attn_gate="low_rank", gate_low_rank_dim=c.gate_low_rank_dim,
        gate_logit_normalizer=c.gate_logit_normalizer, attn_mode=c.attn_mode, chunk_size=c.chunk_size,
        sliding_window=c.sliding_window, max_position_embeddings=c.max_position_embeddings,
        rope_theta=c.rope_theta, norm_eps=c.norm_eps, attention_bias=c.attention_bias,
        tie_word_embeddings=c.tie_word_embeddings, bos_token_id=c.bos_token_id, eos_token_id=c.eos_token_id,
        pad_token_id=c.pad_token_id, **overrides)
    torch.manual_seed(seed)
    moe = SpikingBrainMoEForCausalLM(cfg).to(dense.lm_head.weight.dtype)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        moe.model.embeddings.weight.copy_(dense.model.embeddings.weight)
        moe.model.norm.load_state_dict(dense.model.norm.state_dict())
        moe.lm_head.weight.copy_(dense.lm_head.weight)
        for i, (dst, src) in enumerate(zip(moe.model.layers, dense.model.layers)):
            dst.attn_norm.load_state_dict(src.attn_norm.state_dict())
            dst.mlp_norm.load_state_dict(src.mlp_norm.state_dict())
            for p in ("q_proj", "k_proj", "v_proj", "o_proj"):
                _copy_linear(getattr(dst.attn, p), getattr(src.attn, p))
            if hasattr(src.attn, "gk_proj"):
                dst.attn.gk_proj.load_state_dict(src.attn.gk_proj.state_dict())
            if i in cfg.dense_layers:
                dst.mlp.load_state_dict(src.mlp.state_dict())
            else:
                dst.mlp = upcycle_ffn(src.mlp, num_experts, top_k, num_shared=num_shared,
                                      router_activation=router_activation, scaling=scaling, router_std=router_std,
                                      moe_impl=cfg.moe_impl, generator=gen)
    return moe.eval()
