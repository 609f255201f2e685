"""What every zoo model shares: weight init, loss, generation, checkpoint IO, and the
layer-by-layer driver for full-sequence, prefill and one-token decode passes.

Decoding contract (the eager baseline the runtime is compared against):
  cache = {"pos": 0-dim long tensor (tokens seen so far), "layers": [per-layer dict of tensors]}
  logits, cache = model.prefill(ids)          # from an empty cache
  logits, cache = model.step(ids, cache)      # ids: [B, n], fed one token at a time
The cache is never mutated in place: each call returns new tensors.
"""
from __future__ import annotations

import os
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoint
from .config_base import ModelConfig
from .generation import generate as _generate


class CausalLM(nn.Module):
    config_class: ClassVar[type[ModelConfig]]

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config

    # ---- init ------------------------------------------------------------------------
    def init_weights(self) -> None:
        std = getattr(self.config, "initializer_range", 0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=std)
            elif module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()   # norms, RWKV time-mix parameters, ...
        self.tie_weights()

    def tie_weights(self) -> None:
        if getattr(self.config, "tie_word_embeddings", False):
            self.output_embeddings().weight = self.input_embeddings().weight

    def tied_weight_keys(self) -> list[str]:
        return [self.output_embeddings_key()] if getattr(self.config, "tie_word_embeddings", False) else []

    def output_embeddings_key(self) -> str:
        return "lm_head.weight"

    def input_embeddings(self) -> nn.Embedding:
        raise NotImplementedError

    def output_embeddings(self) -> nn.Linear:
        raise NotImplementedError

    # ---- training --------------------------------------------------------------------
    def loss(self, input_ids: torch.Tensor, targets: torch.Tensor):
        """Next-token cross entropy; targets are already aligned with input_ids ([B, T]).

        Returns (loss, parts) where parts holds the separate terms (``ce``, and ``aux`` for MoE).
        """
        logits = self(input_ids)
        ce = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return ce, {"ce": ce.detach()}

    # ---- generation ------------------------------------------------------------------
    def generate(self, input_ids: torch.Tensor, max_new_tokens: int, **kwargs) -> torch.Tensor:
        return _generate(self, input_ids, max_new_tokens, **kwargs)

    # ---- checkpoints -----------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> None:
        self.config.save(directory)
        checkpoint.save_weights(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, dtype: torch.dtype | None = None,
                        device: str | torch.device | None = None) -> "CausalLM":
        config = cls.config_class.load(directory)
        with torch.device("meta"):
            model = cls(config)
        checkpoint.load_weights(model, directory, dtype=dtype or torch.float32, device=device)
        return model.eval()


class ResidualBlock(nn.Module):
    """Pre-norm block: x + attn(norm1(x)), then + mlp(norm2(x)). Subclasses name the parts."""

    def parts(self):
        raise NotImplementedError   # -> (norm1, attn, norm2, mlp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n1, attn, n2, mlp = self.parts()
        x = x + attn(n1(x))
        return x + mlp(n2(x))

    def init_cache(self, batch_size, device=None, dtype=torch.float32) -> dict:
        return self.parts()[1].init_cache(batch_size, device, dtype)

    def prefill(self, x):
        n1, attn, n2, mlp = self.parts()
        h, cache = attn.prefill(n1(x))
        x = x + h
        return x + mlp(n2(x)), cache

    def step(self, x, cache, pos):
        n1, attn, n2, mlp = self.parts()
        h, cache = attn.step(n1(x), cache, pos)
        x = x + h
        return x + mlp(n2(x)), cache


class DecoderLM(CausalLM):
    """embed -> blocks -> final norm -> lm_head, with the prefill / step drivers.

    The HF layout `self.model.{<embedding_attr>, layers, norm}` + `self.lm_head` is
    the default; `embedding_attr` names the embedding (release names differ)."""

    embedding_attr = "embeddings"

    def input_embeddings(self) -> nn.Embedding:
        return getattr(self.model, self.embedding_attr)

    def output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def decoder_layers(self) -> nn.ModuleList:
        return self.model.layers

    def final_norm(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.norm(x)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.input_embeddings()(input_ids)

    def logits_from_hidden(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_embeddings()(self.final_norm(x))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(input_ids)
        for block in self.decoder_layers():
            x = block(x)
        return self.logits_from_hidden(x)

    def init_cache(self, batch_size: int, device=None, dtype=torch.float32) -> dict:
        return {"pos": torch.zeros((), dtype=torch.long, device=device),
                "layers": [b.init_cache(batch_size, device, dtype) for b in self.decoder_layers()]}

    def prefill(self, input_ids: torch.Tensor):
        x = self.embed(input_ids)
        caches = []
        for block in self.decoder_layers():
            x, c = block.prefill(x)
            caches.append(c)
        # the position as a tensor op over the length (not torch.tensor(T)): a traced prefill
        # then computes it from the symbolic shape, which every backend can lower
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)[-1] + 1
        return self.logits_from_hidden(x), {"pos": pos, "layers": caches}

    def step(self, input_ids: torch.Tensor, cache: dict):
        """Feed [B, n] tokens one at a time through the cache; returns ([B, n, V], new cache)."""
        outs = []
        for t in range(input_ids.shape[1]):
            x = self.embed(input_ids[:, t:t + 1])
            pos, layers = cache["pos"], []
            for block, c in zip(self.decoder_layers(), cache["layers"]):
                x, c = block.step(x, c, pos)
                layers.append(c)
            cache = {"pos": pos + 1, "layers": layers}
            outs.append(self.logits_from_hidden(x))
        return torch.cat(outs, dim=1), cache
