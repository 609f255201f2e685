"""Config dataclasses that read and write Hugging Face style ``config.json``.

Each model's config is a dataclass subclass of ``ModelConfig``. Loading is strict: a field the
class does not know is an error naming the field, so a typo in a config never silently
falls back to a default. HF bookkeeping keys (``architectures``, ``auto_map``, ...) that carry
no architecture information are accepted and dropped.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from typing import Any, ClassVar

# Keys written by transformers / training frameworks that do not change the architecture.
HF_METADATA_KEYS = frozenset({
    "architectures", "auto_map", "transformers_version", "_name_or_path", "torch_dtype",
    "use_cache", "fuse_cross_entropy", "fuse_norm", "fuse_swiglu", "initializer_range",
    "quant_weight_group_size", "attention_dropout", "output_attentions", "output_hidden_states",
    "return_dict", "pruned_heads", "is_encoder_decoder",
})

CONFIG_NAME = "config.json"

# Sizes and counts: a value < 1 builds an empty or broken model, so it is refused by name.
POSITIVE_INT_FIELDS = frozenset({
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
    "intermediate_size", "moe_intermediate_size", "shared_expert_intermediate_size", "num_experts",
    "num_experts_per_tok", "gate_low_rank_dim", "chunk_size", "sliding_window", "max_position_embeddings",
    "attention_hidden_size", "context_length", "conv_size",
})
POSITIVE_FLOAT_FIELDS = frozenset({"norm_eps", "rms_norm_eps", "layer_norm_epsilon", "rope_theta",
                                   "gate_logit_normalizer"})
# HF writes a token id as an int or a list of ints; the model reads them, it does not size anything by them.
_UNCHECKED_FIELDS = frozenset({"bos_token_id", "eos_token_id", "pad_token_id"})


def _fits(value: Any, hint: Any) -> bool:
    """Does a JSON-ish value fit a dataclass field annotation (int, float, str, bool, list[int], X | None)?"""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint in (list, tuple) or origin in (list, tuple):
        args = typing.get_args(hint)
        return isinstance(value, (list, tuple)) and (not args or all(_fits(v, args[0]) for v in value))
    if hint is dict or origin is dict:
        return isinstance(value, dict)
    return True            # anything else: the model's own validate() decides


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


class ConfigError(ValueError):
    """A config.json or an override names an unknown field or holds an invalid value."""


@dataclasses.dataclass
class ModelConfig:
    model_type: ClassVar[str] = ""
    architecture: ClassVar[str] = ""          # class name written to "architectures"
    # Extra keys this model accepts and ignores (e.g. release-specific fields).
    ignored_keys: ClassVar[frozenset] = frozenset()

    # Fields every model shares (defaults fit the byte tokenizer: 256 = eos, 257 = pad).
    tie_word_embeddings: bool = False
    initializer_range: float = 0.02
    bos_token_id: int | None = None
    eos_token_id: int | None = 256
    pad_token_id: int | None = 257

    def __post_init__(self) -> None:
        self._check_values()
        self.validate()

    def _check_values(self) -> None:
        """Types, finiteness and sizes of every field, before a model is built from them."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _UNCHECKED_FIELDS:
                continue
            if not _fits(value, hints.get(f.name, Any)):
                raise ConfigError(f"config field {f.name} must be {_type_name(hints[f.name])}, "
                                  f"got {value!r} ({type(value).__name__})")
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"config field {f.name} must be a finite number, got {value!r}")
            if f.name in POSITIVE_INT_FIELDS and value is not None and value < 1:
                raise ConfigError(f"config field {f.name} must be >= 1, got {value!r}")
            if f.name in POSITIVE_FLOAT_FIELDS and value is not None and not value > 0:
                raise ConfigError(f"config field {f.name} must be > 0, got {value!r}")

    def validate(self) -> None:  # overridden by subclasses
        pass

    # ---- dict / json ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {"model_type": self.model_type, "architectures": [self.architecture]}
        d.update(dataclasses.asdict(self))
        return d

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        d = dict(d)
        mt = d.pop("model_type", cls.model_type)
        if mt != cls.model_type:
            raise ConfigError(f"config has model_type {mt!r}, expected {cls.model_type!r}")
        known = cls.field_names()
        kwargs = {}
        for key, value in d.items():
            if key in known:
                kwargs[key] = value
            elif key in HF_METADATA_KEYS or key in cls.ignored_keys:
                continue
            else:
                raise ConfigError(f"unknown config field {key!r} for model_type {cls.model_type!r}")
        return cls(**kwargs)

    def replace(self, **overrides: Any) -> "ModelConfig":
        unknown = sorted(set(overrides) - self.field_names())
        if unknown:
            raise ConfigError(f"unknown config field {unknown[0]!r} for model_type {self.model_type!r}")
        return dataclasses.replace(self, **overrides)

    def save(self, directory: str | os.PathLike) -> str:
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, CONFIG_NAME)
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=True)
            f.write("\n")
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "ModelConfig":
        return cls.from_dict(read_config_json(directory))


def read_config_json(directory: str | os.PathLike) -> dict[str, Any]:
    """The config.json of a checkpoint directory as a dict; a damaged file is a ConfigError naming it."""
    path = os.path.join(directory, CONFIG_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{path} holds a JSON {type(d).__name__}, not an object of config fields")
    return d


def read_model_type(directory: str | os.PathLike) -> str:
    d = read_config_json(directory)
    if "model_type" not in d:
        raise ConfigError(f"{os.path.join(directory, CONFIG_NAME)} has no 'model_type' field")
    return d["model_type"]
