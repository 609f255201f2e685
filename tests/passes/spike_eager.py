"""Eager oracles for the spike-coding tests: W8ASpike's QuantLinear behaviour put on an
nn.Module with forward pre-hooks, written independently of spikec's ops."""
from __future__ import annotations

import fnmatch

import torch
from torch import nn


def dynamic_spikes(x: torch.Tensor, k: float) -> torch.Tensor:
    """x̂ = round(x / v_th) · v_th, v_th = clamp(mean|x| / k, 1e-5, 1e4) over the last dim."""
    vth = (x.abs().mean(-1, keepdim=True).float() / k).clamp(min=1e-5, max=1e4)
    return ((x / vth).round() * vth).to(x.dtype)


def spike_hooks(model: nn.Module, patterns, k: float = 3.0, clamp: tuple[int, int] | None = None):
    """Spike the inputs of the nn.Linear modules whose names match; returns the hook handles."""
    handles = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear) and any(fnmatch.fnmatchcase(name, p) for p in patterns):
            def pre(m, args, _k=k):
                x = args[0]
                vth = (x.abs().mean(-1, keepdim=True).float() / _k).clamp(min=1e-5, max=1e4)
                c = (x / vth).round()
                if clamp is not None:
                    c = c.clamp(*clamp)
                return ((c * vth).to(x.dtype),)
            handles.append(mod.register_forward_pre_hook(pre))
    return handles


class TinyBlock(nn.Module):
    """Attention-ish and FFN projections named like the zoo's."""

    def __init__(self, d: int = 16):
        super().__init__()
        self.attn = nn.ModuleDict({"q_proj": nn.Linear(d, d), "k_proj": nn.Linear(d, d // 2),
                                   "o_proj": nn.Linear(d, d, bias=False)})
        self.mlp = nn.ModuleDict({"gate_proj": nn.Linear(d, 2 * d, bias=False), "up_proj": nn.Linear(d, 2 * d, bias=False),
                                  "down_proj": nn.Linear(2 * d, d, bias=False)})
        self.lm_head = nn.Linear(d, 11, bias=False)

    def forward(self, x):
        a = self.attn
        h = a["q_proj"](x) + a["k_proj"](x).repeat(1, 1, 2)
        h = x + a["o_proj"](torch.tanh(h))
        m = self.mlp
        h = h + m["down_proj"](nn.functional.silu(m["gate_proj"](h)) * m["up_proj"](h))
        return self.lm_head(h)


class TinyLM(nn.Module):
    """Token ids -> logits through one TinyBlock (a fast model for CLI tests)."""

    def __init__(self, vocab: int = 260, d: int = 16):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.block = TinyBlock(d)

    def forward(self, ids):
        return self.block(self.embed(ids))
