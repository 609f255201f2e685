"""SpikingBrain-7B architecture (reference §1): a Qwen2-style pre-norm decoder whose layers
alternate gated linear attention (even layers) and sliding-window softmax attention (odd).

Config fields and parameter names follow the release (``GLAswaConfig``, model_type
"gla_swa", ``GLAswaForCausalLM``) so that a SpikingBrain-7B checkpoint directory loads.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from torch import nn

from .base import DecoderLM, ResidualBlock
from .config_base import ConfigError, ModelConfig
from .ffn import SwiGLU
from .gla_layer import FEATURE_MAPS, GatedLinearAttention
from .norms import RMSNorm
from .softmax_attention import SoftmaxAttention


@dataclasses.dataclass
class SpikingBrainConfig(ModelConfig):
    model_type: ClassVar[str] = "gla_swa"
    architecture: ClassVar[str] = "GLAswaForCausalLM"
    # vLLM-only bookkeeping in released configs; derived from attn_layers here.
    ignored_keys: ClassVar[frozenset] = frozenset({"attn_type_list"})

    vocab_size: int = 260
    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int | None = None
    intermediate_size: int = 320
    hidden_act: str = "swish"
    attn_mode: str = "chunk"           # GLA form: "naive" (loop over time) | "chunk"
    chunk_size: int = 16
    sliding_window: int = 32
    max_position_embeddings: int = 2048
    rope_theta: float = 1e6
    norm_eps: float = 1e-6
    elementwise_affine: bool = True
    use_short_conv: bool = False
    conv_size: int = 4
    attn_layers: list[int] | None = None   # SWA layer indices; default: the odd layers
    gate_low_rank_dim: int = 16
    gate_logit_normalizer: float = 16.0
    feature_map: str = "relu"
    attention_bias: bool = True

    def validate(self) -> None:
        if self.attn_layers is None:
            self.attn_layers = list(range(1, self.num_hidden_layers, 2))
        self.attn_layers = list(self.attn_layers)
        if self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError("num_attention_heads must be a multiple of num_key_value_heads")
        if self.attn_mode not in ("naive", "chunk"):
            raise ConfigError(f"attn_mode must be 'naive' or 'chunk', got {self.attn_mode!r}")
        if self.use_short_conv:
            raise ConfigError("use_short_conv=True is not supported (the release keeps it off)")
        if self.hidden_act not in ("swish", "silu"):
            raise ConfigError(f"hidden_act must be 'swish'/'silu', got {self.hidden_act!r}")
        if self.feature_map not in FEATURE_MAPS:
            raise ConfigError(f"feature_map must be one of {sorted(FEATURE_MAPS)}, got {self.feature_map!r}")
        bad = [i for i in self.attn_layers if not 0 <= i < self.num_hidden_layers]
        if bad:
            raise ConfigError(f"attn_layers holds {bad[0]}, outside [0, {self.num_hidden_layers})")


PRESETS = {
    "tiny": {},
    "small": dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=2,
                  intermediate_size=1408, sliding_window=512),
    # A ~1B shape in the same family (the paper's 1B model is not released; this is our choice).
    "1b": dict(vocab_size=151936, hidden_size=2048, num_hidden_layers=16, num_attention_heads=16,
               num_key_value_heads=4, intermediate_size=5632, sliding_window=4096,
               max_position_embeddings=131072, tie_word_embeddings=True,
               bos_token_id=151643, eos_token_id=151643, pad_token_id=151643),
    # SpikingBrain-7B (W8ASpike/config.json, reference §1.4).
    "7b": dict(vocab_size=152064, hidden_size=3584, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, intermediate_size=18944, sliding_window=4096,
               max_position_embeddings=131072, bos_token_id=151643, eos_token_id=151643,
               pad_token_id=151643),
}


class HybridBlock(ResidualBlock):
    def __init__(self, config: SpikingBrainConfig, layer_idx: int):
        super().__init__()
        c = config
        self.attn_norm = RMSNorm(c.hidden_size, c.norm_eps, c.elementwise_affine)
        if layer_idx in c.attn_layers:
            self.attn = SoftmaxAttention(c.hidden_size, c.num_attention_heads, c.num_key_value_heads,
                                         c.head_dim, window=c.sliding_window, rope_theta=c.rope_theta,
                                         bias=c.attention_bias)
        else:
            self.attn = GatedLinearAttention(
                c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim,
                gate_low_rank_dim=c.gate_low_rank_dim, gate_logit_normalizer=c.gate_logit_normalizer,
                feature_map=c.feature_map, norm_eps=c.norm_eps, elementwise_affine=c.elementwise_affine,
                attn_mode=c.attn_mode, chunk_size=c.chunk_size, bias=c.attention_bias)
        self.mlp_norm = RMSNorm(c.hidden_size, c.norm_eps, c.elementwise_affine)
        self.mlp = SwiGLU(c.hidden_size, c.intermediate_size)

    def parts(self):
        return self.attn_norm, self.attn, self.mlp_norm, self.mlp


class HybridModel(nn.Module):
    def __init__(self, config: SpikingBrainConfig):
        super().__init__()
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(HybridBlock(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.norm_eps, config.elementwise_affine)


class SpikingBrainForCausalLM(DecoderLM):
    config_class = SpikingBrainConfig

    def __init__(self, config: SpikingBrainConfig):
        super().__init__(config)
        self.model = HybridModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.init_weights()
