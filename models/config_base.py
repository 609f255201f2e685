"""Config dataclasses that read and write Hugging Face style ``config.json``.

Each model's config is a dataclass subclass of ``ModelConfig``. Loading is strict: a field the
class does not know is an error naming the field, so a typo in a config never silently
falls back to a default. HF bookkeeping keys (``architectures``, ``auto_map``, ...) that carry
no architecture information are accepted and dropped.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, ClassVar

# Keys written by transformers / training frameworks that do not change the architecture.
HF_METADATA_KEYS = frozenset({
    "architectures", "auto_map", "transformers_version", "_name_or_path", "torch_dtype",
    "use_cache", "fuse_cross_entropy", "fuse_norm", "fuse_swiglu", "initializer_range",
    "quant_weight_group_size", "attention_dropout", "output_attentions", "output_hidden_states",
    "return_dict", "pruned_heads", "is_encoder_decoder",
})

CONFIG_NAME = "config.json"


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
        self.validate()

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
        with open(os.path.join(directory, CONFIG_NAME)) as f:
            return cls.from_dict(json.load(f))


def read_model_type(directory: str | os.PathLike) -> str:
    with open(os.path.join(directory, CONFIG_NAME)) as f:
        d = json.load(f)
    if "model_type" not in d:
        raise ConfigError(f"{os.path.join(directory, CONFIG_NAME)} has no 'model_type' field")
    return d["model_type"]
