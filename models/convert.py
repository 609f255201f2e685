"""SpikingBrain's conversion step: a pretrained Qwen2-style Transformer -> the GLA/SWA hybrid.

Every weight the two architectures share is copied (embeddings, norms, q/k/v/o with their
biases, MLP, final norm, lm_head); each layer's softmax attention becomes, per a plan,
either sliding-window attention (same q/k/v/o, RoPE kept) or gated linear attention (same
q/k/v/o, ReLU feature map, no RoPE) with two new parameters:

- ``gk_proj`` (low-rank gate ``Linear(h->r) -> Linear(r->Hkv*D, bias)``). The report is silent
  on its init; we take fla's GLA init for the bias (zero) and small random weights (std =
  ``initializer_range``), so every channel starts at ``logsigmoid(≈0)/16 ≈ -0.043``: a mild,
  nearly data-independent decay of 0.958 per token, which fine-tuning then makes selective.
  Measured on the tiny Transformer (300 steps, window 64, 100 fine-tune steps at lr 1e-3):
  validation loss right after conversion / after fine-tuning 2.78 / 2.07 with bias 0, 2.90 /
  2.10 with bias 2 (decay 0.992), 2.92 / 2.11 with bias 4 (decay 0.999); the local decay wins.
- ``g_norm`` (per-head RMSNorm) weights = 1.

``gla_init`` is deterministic in (seed, layer): the graph pass ``convert-attention`` calls the
same function, so the eager and the compiled conversion carry identical new weights.
"""
from __future__ import annotations

import torch

from .spikingbrain import SpikingBrainConfig, SpikingBrainForCausalLM
from .transformer import TransformerForCausalLM

PLANS = ("alternate", "all-swa", "all-gla")
KINDS = ("gla", "swa")
DEFAULT_WINDOW = 4096          # SpikingBrain-7B's sliding_window (reference §1.4)
GATE_BIAS = 0.0                # gk_proj.1 bias at conversion (fla's init; see the module doc)
GATE_STD = 0.02


def resolve_plan(plan, num_layers: int) -> list[str]:
    """'alternate' | 'all-swa' | 'all-gla' | 'gla|swa|...' | ['gla', 'swa', ...] -> one kind per layer."""
    if plan is None:
        plan = "alternate"
    if isinstance(plan, str):
        if plan == "alternate":          # the release: even layers GLA, odd layers SWA
            return ["gla" if i % 2 == 0 else "swa" for i in range(num_layers)]
        if plan in ("all-swa", "all-gla"):
            return [plan[4:]] * num_layers
        if "|" not in plan and plan not in KINDS:
            raise ValueError(f"unknown plan {plan!r}; expected one of {', '.join(PLANS)}, "
                             "a list of 'gla'/'swa' per layer, or 'gla|swa|...'")
        plan = plan.split("|")
    plan = list(plan)
    for i, kind in enumerate(plan):
        if kind not in KINDS:
            raise ValueError(f"plan entry for layer {i} is {kind!r}; expected 'gla' or 'swa'")
    if len(plan) != num_layers:
        raise ValueError(f"plan has {len(plan)} entries but the model has {num_layers} attention layers")
    return plan


def gla_init(layer_idx: int, hidden_size: int, num_kv_heads: int, head_dim: int, *, low_rank_dim: int = 16,
             seed: int = 0, std: float = GATE_STD, gate_bias: float = GATE_BIAS,
             dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """The new GLA parameters of layer ``layer_idx`` (names relative to the layer's ``attn``)."""
    # One generator per (seed, layer): any subset of layers can be rebuilt independently.
    g = torch.Generator().manual_seed(seed * 1_000_003 + layer_idx)
    return {
        "gk_proj.0.weight": (torch.randn(low_rank_dim, hidden_size, generator=g) * std).to(dtype),
        "gk_proj.1.weight": (torch.randn(num_kv_heads * head_dim, low_rank_dim, generator=g) * std).to(dtype),
        "gk_proj.1.bias": torch.full((num_kv_heads * head_dim,), gate_bias, dtype=dtype),
        "g_norm.weight": torch.ones(head_dim, dtype=dtype),
    }


def hybrid_config(tcfg, plan: list[str], window: int | None, **overrides) -> SpikingBrainConfig:
    """The spikingbrain config with the transformer's sizes and the plan's SWA layers."""
    if window is None:
        window = tcfg.sliding_window or DEFAULT_WINDOW
    return SpikingBrainConfig(
        vocab_size=tcfg.vocab_size, hidden_size=tcfg.hidden_size, num_hidden_layers=tcfg.num_hidden_layers,
        num_attention_heads=tcfg.num_attention_heads, num_key_value_heads=tcfg.num_key_value_heads,
        head_dim=tcfg.head_dim, intermediate_size=tcfg.intermediate_size, sliding_window=int(window),
        max_position_embeddings=tcfg.max_position_embeddings, rope_theta=tcfg.rope_theta,
        norm_eps=tcfg.rms_norm_eps, attn_layers=[i for i, k in enumerate(plan) if k == "swa"],
        tie_word_embeddings=tcfg.tie_word_embeddings, initializer_range=tcfg.initializer_range,
        bos_token_id=tcfg.bos_token_id, eos_token_id=tcfg.eos_token_id, pad_token_id=tcfg.pad_token_id,
        **overrides)


def weight_name_map(num_layers: int) -> dict[str, str]:
    """Qwen2 parameter name -> SpikingBrain release name (reference §1.5)."""
    names = {"model.embed_tokens.weight": "model.embeddings.weight", "model.norm.weight": "model.norm.weight",
             "lm_head.weight": "lm_head.weight"}
    for i in range(num_layers):
        t, s = f"model.layers.{i}.", f"model.layers.{i}."
        names[t + "input_layernorm.weight"] = s + "attn_norm.weight"
        names[t + "post_attention_layernorm.weight"] = s + "mlp_norm.weight"
        for p in ("q_proj.weight", "q_proj.bias", "k_proj.weight", "k_proj.bias", "v_proj.weight",
                  "v_proj.bias", "o_proj.weight"):
            names[t + "self_attn." + p] = s + "attn." + p
        for p in ("gate_proj", "up_proj", "down_proj"):
            names[t + f"mlp.{p}.weight"] = s + f"mlp.{p}.weight"
    return names


def convert_to_hybrid(transformer_model: TransformerForCausalLM, plan=None, *, window: int | None = None,
                      seed: int = 0, gate_bias: float = GATE_BIAS, **config_overrides) -> SpikingBrainForCausalLM:
    """A SpikingBrainForCausalLM carrying ``transformer_model``'s weights (see module doc).

    plan: 'alternate' (default: even GLA, odd SWA), 'all-swa', 'all-gla', or one 'gla'/'swa'
    per layer. window: the SWA window (default: the transformer's sliding_window, else 4096).
    """
    if not isinstance(transformer_model, TransformerForCausalLM):
        raise TypeError(f"convert_to_hybrid takes a TransformerForCausalLM, got {type(transformer_model).__name__}")
    tcfg = transformer_model.config
    kinds = resolve_plan(plan, tcfg.num_hidden_layers)
    cfg = hybrid_config(tcfg, kinds, window, **config_overrides)
    src = transformer_model.state_dict()
    ref = next(iter(src.values()))
    with torch.device("meta"):           # every tensor is assigned below; skip the random init
        model = SpikingBrainForCausalLM(cfg)
    state = {dst: src[name] for name, dst in weight_name_map(cfg.num_hidden_layers).items()}
    for i, kind in enumerate(kinds):
        if kind == "gla":
            new = gla_init(i, cfg.hidden_size, cfg.num_key_value_heads, cfg.head_dim,
                           low_rank_dim=cfg.gate_low_rank_dim, seed=seed, std=cfg.initializer_range,
                           gate_bias=gate_bias, dtype=ref.dtype)
            state.update({f"model.layers.{i}.attn.{k}": v.to(ref.device) for k, v in new.items()})
    expected = set(model.state_dict())
    missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or extra:      # a zoo change that the name map does not know about
        raise RuntimeError(f"conversion name map out of date: missing {missing[:3]}, unexpected {extra[:3]}")
    # clone: the hybrid must not alias the transformer's storage (fine-tuning one must not move the other)
    model.load_state_dict({k: v.detach().clone() for k, v in state.items()}, assign=True)
    model.tie_weights()
    return model.train(transformer_model.training)

