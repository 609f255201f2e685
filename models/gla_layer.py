"""SpikingBrain-7B's gated linear attention layer (reference §1.2).

ReLU feature map on q and k; low-rank per-key-channel gate ``logsigmoid(W2 W1 x + b) / 16``
computed per KV head and broadcast to the query heads with k and v (GQA); no RoPE; per-head
RMSNorm (``g_norm``) on the output, then ``o_proj``; no output gate. q/k/v carry biases.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .linear_attention import gla_chunk, gla_naive, gla_step
from .norms import RMSNorm
from .softmax_attention import QKVProjection, repeat_kv

FEATURE_MAPS = {
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "identity": lambda x: x,
}


def run_gla(q, k, v, g, scale, mode: str, chunk_size: int, initial_state=None):
    if mode == "naive":
        return gla_naive(q, k, v, g, scale, initial_state)
    if mode == "chunk":
        return gla_chunk(q, k, v, g, scale, initial_state, chunk_size)
    raise ValueError(f"attn_mode must be 'naive' or 'chunk', got {mode!r}")


class GatedLinearAttention(QKVProjection):
    def __init__(self, hidden_size, num_heads, num_kv_heads, head_dim, gate_low_rank_dim=16,
                 gate_logit_normalizer=16.0, feature_map="relu", norm_eps=1e-6,
                 elementwise_affine=True, attn_mode="chunk", chunk_size=16, bias=True):
        super().__init__(hidden_size, num_heads, num_kv_heads, head_dim, bias)
        self.gk_proj = nn.Sequential(
            nn.Linear(hidden_size, gate_low_rank_dim, bias=False),
            nn.Linear(gate_low_rank_dim, num_kv_heads * head_dim, bias=True),
        )
        self.g_norm = RMSNorm(head_dim, norm_eps, elementwise_affine)
        self.feature_map = FEATURE_MAPS[feature_map]
        self.gate_logit_normalizer = gate_logit_normalizer
        self.attn_mode, self.chunk_size = attn_mode, chunk_size
        self.scale = head_dim ** -0.5

    def qkvg(self, x: torch.Tensor):
        """Head-first q, k, v, g, with k/v/g already repeated to every query head."""
        q, k, v = self.qkv(x)
        g = self.heads(F.logsigmoid(self.gk_proj(x)) / self.gate_logit_normalizer, self.num_kv_heads)
        n_rep = self.num_heads // self.num_kv_heads
        q, k = self.feature_map(q), self.feature_map(k)
        return q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), repeat_kv(g, n_rep)

    def output(self, o: torch.Tensor) -> torch.Tensor:
        return self.o_proj(self.merge(self.g_norm(o)))   # g_norm over head_dim, per head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o, _ = run_gla(*self.qkvg(x), self.scale, self.attn_mode, self.chunk_size)
        return self.output(o)

    # ---- decoding with an explicit recurrent state ---------------------------------------
    def init_cache(self, batch_size: int, device=None, dtype=torch.float32) -> dict:
        shape = (batch_size, self.num_heads, self.head_dim, self.head_dim)
        return {"state": torch.zeros(shape, device=device, dtype=dtype)}

    def prefill(self, x: torch.Tensor):
        o, state = run_gla(*self.qkvg(x), self.scale, self.attn_mode, self.chunk_size)
        return self.output(o), {"state": state}

    def step(self, x_t: torch.Tensor, cache: dict, pos: torch.Tensor):
        q, k, v, g = (t[:, :, 0] for t in self.qkvg(x_t))
        o, state = gla_step(q, k, v, g, cache["state"], self.scale)
        return self.output(o.unsqueeze(2)), {"state": state}
