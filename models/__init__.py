"""spikec.models -- the reference model zoo (plain PyTorch; knows nothing of the compiler).

    import spikec.models as zoo
    zoo.names()                                  # ['spikegpt', 'spikingbrain', 'spikingbrain_moe', 'transformer']
    zoo.presets("spikingbrain")                  # ['tiny', 'small', '1b', '7b']
    m = zoo.create("spikingbrain", "tiny", attn_mode="naive")
    logits = m(input_ids)                        # [B, T, vocab]
    zoo.param_counts(m)                          # {'total': ..., 'active': ...}
    m.save_pretrained("out/sb"); zoo.from_pretrained("out/sb")
"""
from __future__ import annotations

import os

import torch

from . import spikegpt, spikingbrain, spikingbrain_moe, transformer
from .base import CausalLM
from .checkpoint import CheckpointError
from .config_base import ConfigError, ModelConfig, read_model_type
from .convert import convert_to_hybrid
from .corpus import build_corpus, random_batch
from .stats import param_counts
from .tokenizer import ByteTokenizer, HFTokenizer, load_tokenizer
from .training import TrainResult, evaluate, train_eager
from .upcycle import upcycle_alpha, upcycle_ffn, upcycle_ffns, upcycle_spikingbrain  # noqa: F401

# name -> (config class, model class, presets)
_REGISTRY = {
    "spikingbrain": (spikingbrain.SpikingBrainConfig, spikingbrain.SpikingBrainForCausalLM, spikingbrain.PRESETS),
    "spikingbrain_moe": (spikingbrain_moe.SpikingBrainMoEConfig, spikingbrain_moe.SpikingBrainMoEForCausalLM,
                         spikingbrain_moe.PRESETS),
    "spikegpt": (spikegpt.SpikeGPTConfig, spikegpt.SpikeGPTForCausalLM, spikegpt.PRESETS),
    "transformer": (transformer.TransformerConfig, transformer.TransformerForCausalLM, transformer.PRESETS),
}


def names() -> list[str]:
    return sorted(_REGISTRY)


def _entry(name: str):
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(names())}")
    return _REGISTRY[name]


def parse_spec(spec: str, preset: str | None = None) -> tuple[str, str]:
    """'spikingbrain:7b' -> ('spikingbrain', '7b'); a bare name uses ``preset`` (default tiny)."""
    if ":" in spec:
        name, p = spec.split(":", 1)
        return name, p
    return spec, preset or "tiny"


def presets(name: str) -> list[str]:
    return list(_entry(name)[2])


def config(name: str, preset: str = "tiny", **overrides) -> ModelConfig:
    name, preset = parse_spec(name, preset)
    cfg_cls, _, table = _entry(name)
    if preset not in table:
        raise KeyError(f"unknown preset {preset!r} for {name}; known: {', '.join(table)}")
    unknown = sorted(set(overrides) - cfg_cls.field_names())
    if unknown:
        raise ConfigError(f"unknown config field {unknown[0]!r} for model {name!r}")
    return cfg_cls(**{**table[preset], **overrides})


def model_class(name: str) -> type[CausalLM]:
    return _entry(name)[1]


def create(name: str, preset: str = "tiny", **overrides) -> CausalLM:
    """Build a freshly initialised model. Honors ``with torch.device('meta'):`` for big presets."""
    name, preset = parse_spec(name, preset)
    return model_class(name)(config(name, preset, **overrides))


def from_config(cfg: ModelConfig) -> CausalLM:
    for cfg_cls, model_cls, _ in _REGISTRY.values():
        if type(cfg) is cfg_cls:
            return model_cls(cfg)
    raise TypeError(f"no model for config class {type(cfg).__name__}")


def name_for_model_type(model_type: str) -> str:
    for name, (cfg_cls, _, _) in _REGISTRY.items():
        if cfg_cls.model_type == model_type:
            return name
    raise ConfigError(f"unknown model_type {model_type!r}; known: "
                      + ", ".join(sorted(c.model_type for c, _, _ in _REGISTRY.values())))


def from_pretrained(directory: str | os.PathLike, dtype: torch.dtype | None = None,
                    device: str | torch.device | None = None) -> CausalLM:
    """Load any zoo model from a directory with config.json + safetensors (model_type picks the class)."""
    return model_class(name_for_model_type(read_model_type(directory))).from_pretrained(directory, dtype, device)


__all__ = [
    "names", "presets", "config", "create", "from_config", "from_pretrained", "model_class", "parse_spec",
    "param_counts", "train_eager", "evaluate", "TrainResult", "build_corpus", "random_batch",
    "ByteTokenizer", "HFTokenizer", "load_tokenizer", "CausalLM", "ModelConfig", "ConfigError",
    "CheckpointError", "convert_to_hybrid",
]
