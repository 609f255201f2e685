"""SpikingBrain-76B architecture (reference §2; the code is not public, so the choices below
are ours and are documented in docs/models.md).

Every layer runs linear attention in parallel with softmax attention over the same input:
sliding-window attention, or full attention at every 7th layer (1-based 7, 14, 21, 28). The
two branches share the q/k/v/o projections (both start from the same pretrained attention
weights); each branch output is RMS-normalised over the hidden width, the two are averaged,
then o_proj. The linear branch is GLA with a sigmoid feature map and the key-tied gate
g_t = 1 - k_t (paper §3.1), or SpikingBrain-7B's low-rank gate (config). The FFN is MoE
(routed experts, top-k, one shared expert) except at the dense layers listed in the config.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .base import DecoderLM, ResidualBlock
from .config_base import ConfigError, ModelConfig
from .ffn import SwiGLU
from .gla_layer import FEATURE_MAPS, run_gla
from .linear_attention import gla_step
from .moe import SparseMoE
from .norms import RMSNorm
from .rope import apply_rope, rope_angles
from .softmax_attention import (SoftmaxAttention, full_attention_step, repeat_kv, ring_attention_step,
                                ring_from_sequence, sliding_window_attention)


@dataclasses.dataclass
class SpikingBrainMoEConfig(ModelConfig):
    model_type: ClassVar[str] = "spikingbrain_moe"
    architecture: ClassVar[str] = "SpikingBrainMoEForCausalLM"

    vocab_size: int = 260
    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int | None = None
    intermediate_size: int = 320              # dense FFN layers
    moe_intermediate_size: int = 128          # each routed expert
    shared_expert_intermediate_size: int = 128
    num_experts: int = 4
    num_experts_per_tok: int = 2
    dense_layers: list[int] | None = None     # layers with a dense FFN; default: none
    full_attn_layers: list[int] | None = None # layers whose softmax branch is full attention; default every 7th
    router_activation: str = "softmax"        # "softmax" | "sigmoid"
    norm_topk_prob: bool = False
    router_aux_loss_coef: float = 0.001
    moe_impl: str = "sparse"                  # "sparse" (dispatch) | "dense" (compute all, mask)
    linear_attn_feature_map: str = "sigmoid"
    linear_attn_gate: str = "key_tied"        # "key_tied" (g = 1 - k) | "low_rank" (7B-style)
    gate_low_rank_dim: int = 16
    gate_logit_normalizer: float = 16.0
    attn_mode: str = "chunk"
    chunk_size: int = 16
    sliding_window: int = 32
    max_position_embeddings: int = 2048
    rope_theta: float = 1e6
    norm_eps: float = 1e-6
    attention_bias: bool = True

    def validate(self) -> None:
        L = self.num_hidden_layers
        if self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.dense_layers is None:
            self.dense_layers = []
        if self.full_attn_layers is None:
            self.full_attn_layers = [i for i in range(L) if (i + 1) % 7 == 0]
        self.dense_layers, self.full_attn_layers = list(self.dense_layers), list(self.full_attn_layers)
        for name in ("dense_layers", "full_attn_layers"):
            bad = [i for i in getattr(self, name) if not 0 <= i < L]
            if bad:
                raise ConfigError(f"{name} holds {bad[0]}, outside [0, {L})")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError("num_attention_heads must be a multiple of num_key_value_heads")
        if not 1 <= self.num_experts_per_tok <= self.num_experts:
            raise ConfigError("num_experts_per_tok must be in [1, num_experts]")
        choices = {"router_activation": ("softmax", "sigmoid"), "moe_impl": ("sparse", "dense"),
                   "linear_attn_gate": ("key_tied", "low_rank"), "attn_mode": ("naive", "chunk"),
                   "linear_attn_feature_map": tuple(FEATURE_MAPS)}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.linear_attn_gate == "key_tied" and self.linear_attn_feature_map != "sigmoid":
            raise ConfigError("linear_attn_gate='key_tied' needs linear_attn_feature_map='sigmoid' "
                              "(the gate 1 - k must lie in (0, 1))")


PRESETS = {
    "tiny": dict(dense_layers=[0], full_attn_layers=[3]),
    "small": dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=2,
                  intermediate_size=1408, moe_intermediate_size=704, shared_expert_intermediate_size=704,
                  num_experts=8, num_experts_per_tok=2, dense_layers=[0], full_attn_layers=[6],
                  sliding_window=512),
    "1b": dict(vocab_size=151936, hidden_size=1024, num_hidden_layers=16, num_attention_heads=16,
               num_key_value_heads=4, intermediate_size=2816, moe_intermediate_size=2048,
               shared_expert_intermediate_size=2048, num_experts=8, num_experts_per_tok=1,
               dense_layers=[0, 1], sliding_window=4096, max_position_embeddings=131072,
               tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151643, pad_token_id=151643),
    # SpikingBrain-76B-A12B (reference §2): 28 layers of Qwen2.5-7B width; full attention at
    # 1-based layers 7/14/21/28; dense FFN at 1-based 1,2,3,5,7,9,11; 16 experts, top-1, + 1 shared,
    # each expert a copy of the 18944-wide dense FFN.
    "76b": dict(vocab_size=152064, hidden_size=3584, num_hidden_layers=28, num_attention_heads=28,
                num_key_value_heads=4, intermediate_size=18944, moe_intermediate_size=18944,
                shared_expert_intermediate_size=18944, num_experts=16, num_experts_per_tok=1,
                dense_layers=[0, 1, 2, 4, 6, 8, 10], full_attn_layers=[6, 13, 20, 27],
                sliding_window=4096, max_position_embeddings=131072,
                bos_token_id=151643, eos_token_id=151643, pad_token_id=151643),
}


class ParallelHybridAttention(SoftmaxAttention):
    """Linear attention and softmax attention side by side on shared q/k/v/o projections."""

    def __init__(self, config: SpikingBrainMoEConfig, window: int | None):
        c = config
        super().__init__(c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim,
                         window=window, rope_theta=c.rope_theta, bias=c.attention_bias)
        width = c.num_attention_heads * c.head_dim
        if c.linear_attn_gate == "low_rank":
            self.gk_proj = nn.Sequential(nn.Linear(c.hidden_size, c.gate_low_rank_dim, bias=False),
                                         nn.Linear(c.gate_low_rank_dim, c.num_key_value_heads * c.head_dim))
        self.linear_norm = RMSNorm(width, c.norm_eps)
        self.softmax_norm = RMSNorm(width, c.norm_eps)
        self.gate_kind, self.gate_logit_normalizer = c.linear_attn_gate, c.gate_logit_normalizer
        self.feature_map = FEATURE_MAPS[c.linear_attn_feature_map]
        self.attn_mode, self.chunk_size = c.attn_mode, c.chunk_size

    def linear_inputs(self, x, q, k, v):
        """Feature-mapped q/k, v and the log-gate, repeated to all query heads."""
        if self.gate_kind == "key_tied":
            g = F.logsigmoid(-k)          # log(1 - sigmoid(k)) = log(1 - k_mapped), computed stably
        else:
            g = self.heads(F.logsigmoid(self.gk_proj(x)) / self.gate_logit_normalizer, self.num_kv_heads)
        n = self.num_heads // self.num_kv_heads
        return self.feature_map(q), repeat_kv(self.feature_map(k), n), repeat_kv(v, n), repeat_kv(g, n)

    def combine(self, o_lin, o_soft):
        return self.o_proj((self.linear_norm(self.merge(o_lin)) + self.softmax_norm(self.merge(o_soft))) / 2)

    def _both(self, x, positions):
        q, k, v = self.qkv(x)
        cos, sin = rope_angles(positions, self.head_dim, self.rope_theta)
        return q, k, v, apply_rope(q, cos, sin), apply_rope(k, cos, sin)

    def forward(self, x):
        q, k, v, qr, kr = self._both(x, torch.arange(x.shape[1], device=x.device))
        o_lin, _ = run_gla(*self.linear_inputs(x, q, k, v), self.scale, self.attn_mode, self.chunk_size)
        return self.combine(o_lin, sliding_window_attention(qr, kr, v, self.window, self.scale))

    def init_cache(self, batch_size, device=None, dtype=torch.float32):
        cache = super().init_cache(batch_size, device, dtype)
        cache["state"] = torch.zeros(batch_size, self.num_heads, self.head_dim, self.head_dim,
                                     device=device, dtype=dtype)
        return cache

    def prefill(self, x):
        q, k, v, qr, kr = self._both(x, torch.arange(x.shape[1], device=x.device))
        o_lin, state = run_gla(*self.linear_inputs(x, q, k, v), self.scale, self.attn_mode, self.chunk_size)
        y = self.combine(o_lin, sliding_window_attention(qr, kr, v, self.window, self.scale))
        if self.window is None:
            return y, {"k": kr, "v": v, "state": state}
        return y, {"k": ring_from_sequence(kr, self.window), "v": ring_from_sequence(v, self.window),
                   "state": state}

    def step(self, x_t, cache, pos):
        q, k, v, qr, kr = self._both(x_t, pos.reshape(1))
        ql, kl, vl, gl = (t[:, :, 0] for t in self.linear_inputs(x_t, q, k, v))
        o_lin, state = gla_step(ql, kl, vl, gl, cache["state"], self.scale)
        if self.window is None:
            o_soft, kc, vc = full_attention_step(qr, kr, v, cache["k"], cache["v"], self.scale)
        else:
            o_soft, kc, vc = ring_attention_step(qr, kr, v, cache["k"], cache["v"], pos, self.scale)
        return self.combine(o_lin.unsqueeze(2), o_soft), {"k": kc, "v": vc, "state": state}


class MoEHybridBlock(ResidualBlock):
    def __init__(self, config: SpikingBrainMoEConfig, layer_idx: int):
        super().__init__()
        c = config
        window = None if layer_idx in c.full_attn_layers else c.sliding_window
        self.attn_norm = RMSNorm(c.hidden_size, c.norm_eps)
        self.attn = ParallelHybridAttention(c, window)
        self.mlp_norm = RMSNorm(c.hidden_size, c.norm_eps)
        if layer_idx in c.dense_layers:
            self.mlp = SwiGLU(c.hidden_size, c.intermediate_size)
        else:
            self.mlp = SparseMoE(c.hidden_size, c.moe_intermediate_size, c.num_experts,
                                 c.num_experts_per_tok, c.shared_expert_intermediate_size,
                                 c.router_activation, c.norm_topk_prob, c.moe_impl)

    def parts(self):
        return self.attn_norm, self.attn, self.mlp_norm, self.mlp

    def forward_with_aux(self, x):
        x = x + self.attn(self.attn_norm(x))
        if isinstance(self.mlp, SparseMoE):
            y, aux = self.mlp.forward_with_aux(self.mlp_norm(x))
            return x + y, aux
        return x + self.mlp(self.mlp_norm(x)), None


class MoEHybridModel(nn.Module):
    def __init__(self, config: SpikingBrainMoEConfig):
        super().__init__()
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(MoEHybridBlock(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.norm_eps)


class SpikingBrainMoEForCausalLM(DecoderLM):
    config_class = SpikingBrainMoEConfig

    def __init__(self, config: SpikingBrainMoEConfig):
        super().__init__(config)
        self.model = MoEHybridModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.init_weights()

    def forward(self, input_ids: torch.Tensor, return_aux_loss: bool = False):
        """Logits [B, T, V]; with ``return_aux_loss`` also the load-balancing loss
        (mean over MoE layers, times ``router_aux_loss_coef``)."""
        x = self.embed(input_ids)
        aux_terms = []
        for block in self.decoder_layers():
            x, aux = block.forward_with_aux(x)
            if aux is not None:
                aux_terms.append(aux)
        logits = self.logits_from_hidden(x)
        if not return_aux_loss:
            return logits
        aux = torch.stack(aux_terms).mean() if aux_terms else logits.new_zeros(())
        return logits, aux * self.config.router_aux_loss_coef

    def loss(self, input_ids, targets):
        logits, aux = self(input_ids, return_aux_loss=True)
        ce = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return ce + aux, {"ce": ce.detach(), "aux": aux.detach()}
