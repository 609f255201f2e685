"""Qwen2-style full-attention decoder: the baseline, and the input of convert-attention.

Config fields and parameter names follow Hugging Face Qwen2 (model_type "qwen2"), so a
Qwen2 / Qwen2.5 checkpoint directory loads. q/k/v have biases, o_proj does not.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from torch import nn

from .base import DecoderLM, ResidualBlock
from .config_base import ConfigError, ModelConfig
from .ffn import SwiGLU
from .norms import RMSNorm
from .softmax_attention import SoftmaxAttention


@dataclasses.dataclass
class TransformerConfig(ModelConfig):
    model_type: ClassVar[str] = "qwen2"
    architecture: ClassVar[str] = "Qwen2ForCausalLM"

    vocab_size: int = 260
    hidden_size: int = 128
    intermediate_size: int = 320
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int | None = None
    hidden_act: str = "silu"
    max_position_embeddings: int = 2048
    rope_theta: float = 1e6
    rope_scaling: dict | None = None
    rms_norm_eps: float = 1e-6
    use_sliding_window: bool = False
    sliding_window: int | None = None
    max_window_layers: int = 0
    attn_implementation: str = "eager"   # eager (masked softmax, the reference) | sdpa (torch's fused kernel)

    def validate(self) -> None:
        if self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError("num_attention_heads must be a multiple of num_key_value_heads")
        if self.hidden_act not in ("silu", "swish"):
            raise ConfigError(f"hidden_act must be 'silu', got {self.hidden_act!r}")
        if self.attn_implementation not in ("eager", "sdpa"):
            raise ConfigError(f"attn_implementation must be 'eager' or 'sdpa', got {self.attn_implementation!r}")
        if self.rope_scaling is not None:
            raise ConfigError("rope_scaling is not supported")
        if self.use_sliding_window and not self.sliding_window:
            raise ConfigError("use_sliding_window=True needs sliding_window")

    def window_for(self, layer_idx: int) -> int | None:
        # Qwen2 applies the window to layers >= max_window_layers when enabled.
        if self.use_sliding_window and layer_idx >= self.max_window_layers:
            return self.sliding_window
        return None


PRESETS = {
    "tiny": {},
    "small": dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=2,
                  intermediate_size=1408),
    "1b": dict(vocab_size=151936, hidden_size=2048, num_hidden_layers=16, num_attention_heads=16,
               num_key_value_heads=4, intermediate_size=5632, max_position_embeddings=131072,
               tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151643, pad_token_id=151643),
    # Qwen2.5-7B: the model SpikingBrain-7B was converted from.
    "7b": dict(vocab_size=152064, hidden_size=3584, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, intermediate_size=18944, max_position_embeddings=131072,
               bos_token_id=151643, eos_token_id=151643, pad_token_id=151643),
}


class Qwen2DecoderLayer(ResidualBlock):
    def __init__(self, config: TransformerConfig, layer_idx: int):
        super().__init__()
        c = config
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.self_attn = SoftmaxAttention(c.hidden_size, c.num_attention_heads, c.num_key_value_heads,
                                          c.head_dim, window=c.window_for(layer_idx),
                                          rope_theta=c.rope_theta, bias=True, impl=c.attn_implementation)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.mlp = SwiGLU(c.hidden_size, c.intermediate_size)

    def parts(self):
        return self.input_layernorm, self.self_attn, self.post_attention_layernorm, self.mlp


class Qwen2Model(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Qwen2DecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class TransformerForCausalLM(DecoderLM):
    config_class = TransformerConfig
    embedding_attr = "embed_tokens"     # Qwen2's name

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        self.model = Qwen2Model(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.init_weights()
