"""SpikeGPT (reference §7): RWKV-4 time-mix / channel-mix blocks whose outputs pass through a
multi-step LIF neuron (token axis = SNN time) before each residual add, with binarised
(Heaviside, ATan surrogate) embeddings. Parameter names follow SpikeGPT's ``src/model.py``.
"""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import torch
from torch import nn

from .base import DecoderLM
from .config_base import ModelConfig
from .spiking import atan_spike, lif_multistep
from .wkv import wkv_init_state, wkv_naive


@dataclasses.dataclass
class SpikeGPTConfig(ModelConfig):
    model_type: ClassVar[str] = "spikegpt"
    architecture: ClassVar[str] = "SpikeGPTForCausalLM"

    vocab_size: int = 260
    hidden_size: int = 128
    num_hidden_layers: int = 4
    attention_hidden_size: int | None = None   # default: hidden_size
    intermediate_size: int | None = None       # default: 4 * hidden_size
    context_length: int = 1024
    layer_norm_epsilon: float = 1e-5
    lif_tau: float = 2.0
    lif_v_threshold: float = 1.0
    lif_v_reset: float = 0.0
    surrogate_alpha: float = 2.0
    binary_embedding: bool = True

    def validate(self) -> None:
        if self.attention_hidden_size is None:
            self.attention_hidden_size = self.hidden_size
        if self.intermediate_size is None:
            self.intermediate_size = 4 * self.hidden_size


PRESETS = {
    "tiny": {},
    "small": dict(hidden_size=512, num_hidden_layers=8),
    # The released SpikeGPT-OpenWebText-216M: 18 layers, d=768, GPT-NeoX tokenizer.
    "216m": dict(vocab_size=50277, hidden_size=768, num_hidden_layers=18, bos_token_id=0,
                 eos_token_id=0, pad_token_id=1),
    # A ~1B scale-up of the same block (RWKV-4 1B5-style 24 x 2048 would be 1.5B; this is 24 x 1792).
    "1b": dict(vocab_size=50277, hidden_size=1792, num_hidden_layers=24, bos_token_id=0,
               eos_token_id=0, pad_token_id=1),
}


def _lif(config: SpikeGPTConfig, x: torch.Tensor, v0):
    return lif_multistep(x, v0, config.lif_tau, config.lif_v_threshold, config.lif_v_reset,
                         config.surrogate_alpha)


def token_shift(x: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
    """x shifted one step later in time; position 0 sees ``prev`` (zeros at sequence start)."""
    first = torch.zeros_like(x[:, :1]) if prev is None else prev.unsqueeze(1)
    return torch.cat([first, x[:, :-1]], dim=1)


class RWKVTimeMix(nn.Module):
    def __init__(self, config: SpikeGPTConfig, layer_id: int):
        super().__init__()
        C, A = config.hidden_size, config.attention_hidden_size
        self.layer_id, self.num_layers = layer_id, config.num_hidden_layers
        self.time_decay = nn.Parameter(torch.empty(A))
        self.time_first = nn.Parameter(torch.empty(A))
        self.time_mix_k = nn.Parameter(torch.empty(1, 1, C))
        self.time_mix_v = nn.Parameter(torch.empty(1, 1, C))
        self.time_mix_r = nn.Parameter(torch.empty(1, 1, C))
        self.key = nn.Linear(C, A, bias=False)
        self.value = nn.Linear(C, A, bias=False)
        self.receptance = nn.Linear(C, A, bias=False)
        self.output = nn.Linear(A, C, bias=False)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        # RWKV-4's layer-dependent init: decay speeds spread over channels, mixes ramping with depth.
        L, i = self.num_layers, self.layer_id
        r01 = i / max(L - 1, 1)
        r1_0 = 1.0 - i / L
        A, C = self.time_decay.shape[0], self.time_mix_k.shape[-1]
        h = torch.arange(A, dtype=torch.float32, device=self.time_decay.device)
        self.time_decay.copy_(-5 + 8 * (h / max(A - 1, 1)) ** (0.7 + 1.3 * r01))
        zigzag = ((h + 1) % 3 - 1) * 0.5
        self.time_first.copy_(math.log(0.3) + zigzag)
        ramp = (torch.arange(C, dtype=torch.float32, device=self.time_mix_k.device) / C).reshape(1, 1, C)
        self.time_mix_k.copy_(ramp ** r1_0)
        self.time_mix_v.copy_(ramp ** r1_0 + 0.3 * r01)
        self.time_mix_r.copy_(ramp ** (0.5 * r1_0))

    def forward(self, x, prev=None, state=None):
        """x: [B, T, C] (already layer-normed) -> (out, last x, wkv state)."""
        xx = token_shift(x, prev)
        xk = x * self.time_mix_k + xx * (1 - self.time_mix_k)
        xv = x * self.time_mix_v + xx * (1 - self.time_mix_v)
        xr = x * self.time_mix_r + xx * (1 - self.time_mix_r)
        k, v, r = self.key(xk), self.value(xv), torch.sigmoid(self.receptance(xr))
        wkv, state = wkv_naive(k.float(), v.float(), -torch.exp(self.time_decay.float()),
                               self.time_first.float(), state)
        return self.output(r * wkv.to(x.dtype)), x[:, -1], state


class RWKVChannelMix(nn.Module):
    def __init__(self, config: SpikeGPTConfig, layer_id: int):
        super().__init__()
        C, F = config.hidden_size, config.intermediate_size
        self.layer_id, self.num_layers = layer_id, config.num_hidden_layers
        self.time_mix_k = nn.Parameter(torch.empty(1, 1, C))
        self.time_mix_r = nn.Parameter(torch.empty(1, 1, C))
        self.key = nn.Linear(C, F, bias=False)
        self.receptance = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(F, C, bias=False)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        C = self.time_mix_k.shape[-1]
        r1_0 = 1.0 - self.layer_id / self.num_layers
        ramp = (torch.arange(C, dtype=torch.float32, device=self.time_mix_k.device) / C).reshape(1, 1, C)
        self.time_mix_k.copy_(ramp ** r1_0)
        self.time_mix_r.copy_(ramp ** r1_0)

    def forward(self, x, prev=None):
        xx = token_shift(x, prev)
        xk = x * self.time_mix_k + xx * (1 - self.time_mix_k)
        xr = x * self.time_mix_r + xx * (1 - self.time_mix_r)
        k = torch.square(torch.relu(self.key(xk)))
        return torch.sigmoid(self.receptance(xr)) * self.value(k), x[:, -1]


class SpikeGPTBlock(nn.Module):
    def __init__(self, config: SpikeGPTConfig, layer_id: int):
        super().__init__()
        C, eps = config.hidden_size, config.layer_norm_epsilon
        self.config = config
        if layer_id == 0:
            self.ln0 = nn.LayerNorm(C, eps=eps)
        self.ln1 = nn.LayerNorm(C, eps=eps)
        self.ln2 = nn.LayerNorm(C, eps=eps)
        self.att = RWKVTimeMix(config, layer_id)
        self.ffn = RWKVChannelMix(config, layer_id)

    def run(self, x, cache: dict | None):
        """Process [B, T, C] from ``cache`` (None = sequence start); return (y, new cache)."""
        c = cache or {}
        wkv_state = (c["a"], c["b"], c["p"]) if cache is not None else None
        if hasattr(self, "ln0"):
            x = self.ln0(x)
        a, att_x, (wa, wb, wp) = self.att(self.ln1(x), c.get("att_x"), wkv_state)
        s, att_v = _lif(self.config, a, c.get("att_v"))
        x = x + s
        f, ffn_x = self.ffn(self.ln2(x), c.get("ffn_x"))
        s, ffn_v = _lif(self.config, f, c.get("ffn_v"))
        return x + s, {"att_x": att_x, "a": wa, "b": wb, "p": wp, "att_v": att_v,
                       "ffn_x": ffn_x, "ffn_v": ffn_v}

    def forward(self, x):
        return self.run(x, None)[0]

    def init_cache(self, batch_size, device=None, dtype=torch.float32):
        C, A = self.config.hidden_size, self.config.attention_hidden_size
        a, b, p = wkv_init_state(batch_size, A, device, torch.float32)
        zeros = torch.zeros(batch_size, C, device=device, dtype=dtype)
        v0 = torch.full((batch_size, C), self.config.lif_v_reset, device=device, dtype=dtype)
        return {"att_x": zeros, "a": a, "b": b, "p": p, "att_v": v0, "ffn_x": zeros.clone(), "ffn_v": v0.clone()}

    def prefill(self, x):
        return self.run(x, None)

    def step(self, x, cache, pos):
        return self.run(x, cache)


class SpikeGPTForCausalLM(DecoderLM):
    config_class = SpikeGPTConfig

    def __init__(self, config: SpikeGPTConfig):
        super().__init__(config)
        self.emb = nn.Embedding(config.vocab_size, config.hidden_size)
        self.blocks = nn.ModuleList(SpikeGPTBlock(config, i) for i in range(config.num_hidden_layers))
        self.ln_out = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.init_weights()

    def input_embeddings(self):
        return self.emb

    def output_embeddings(self):
        return self.head

    def output_embeddings_key(self):
        return "head.weight"

    def decoder_layers(self):
        return self.blocks

    def embed(self, input_ids):
        x = self.emb(input_ids)
        return atan_spike(x, self.config.surrogate_alpha) if self.config.binary_embedding else x

    def final_norm(self, x):
        return self.ln_out(x)
