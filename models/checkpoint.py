"""safetensors checkpoint IO in the Hugging Face layout (config.json + model.safetensors,
or shards listed in model.safetensors.index.json). Loading is strict: a missing, unexpected
or mis-shaped tensor is an error that names the tensor.
"""
from __future__ import annotations

import json
import os

import torch
from safetensors import safe_open
from safetensors.torch import save_file

WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"


class CheckpointError(ValueError):
    """A checkpoint does not match the model it is loaded into."""


def savable_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """state_dict without tied duplicates (safetensors refuses shared storage)."""
    skip = set(getattr(model, "tied_weight_keys", lambda: [])())
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items() if k not in skip}


def save_weights(model: torch.nn.Module, directory: str | os.PathLike) -> str:
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, WEIGHTS_NAME)
    save_file(savable_state_dict(model), path, metadata={"format": "pt"})
    return path


def _weight_files(directory: str) -> list[str]:
    index = os.path.join(directory, INDEX_NAME)
    if os.path.exists(index):
        try:
            with open(index, encoding="utf-8") as f:
                weight_map = json.load(f)["weight_map"]
            shards = sorted(set(weight_map.values()))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as e:
            raise CheckpointError(f"{index} is damaged ({type(e).__name__}: {e}); it must hold a "
                                  "'weight_map' of tensor name -> shard file") from None
        bad = [s for s in shards if not isinstance(s, str) or os.path.isabs(s) or os.path.normpath(s).startswith("..")]
        if bad:
            raise CheckpointError(f"{index} names the shard {bad[0]!r}, which is not a file in {directory}")
        return [os.path.join(directory, s) for s in shards]
    single = os.path.join(directory, WEIGHTS_NAME)
    if os.path.exists(single):
        return [single]
    raise CheckpointError(f"no {WEIGHTS_NAME} or {INDEX_NAME} in {directory}")


def read_weights(directory: str | os.PathLike) -> dict[str, torch.Tensor]:
    tensors = {}
    for path in _weight_files(str(directory)):
        if not os.path.isfile(path):
            raise CheckpointError(f"the weights file {path} is missing")
        try:
            with safe_open(path, framework="pt") as f:
                for name in f.keys():
                    tensors[name] = f.get_tensor(name)
        except Exception as e:      # safetensors reports a damaged file as its own error type
            raise CheckpointError(f"{path} is not a readable safetensors file ({type(e).__name__}: {e})") from e
    return tensors


def load_weights(model: torch.nn.Module, directory: str | os.PathLike, dtype=None, device=None) -> None:
    """Load a checkpoint into ``model`` (which may live on the meta device)."""
    tensors = read_weights(directory)
    expected = savable_state_dict_shapes(model)
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise CheckpointError(f"checkpoint in {directory} is missing tensor {missing[0]!r}"
                              + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise CheckpointError(f"checkpoint in {directory} has unexpected tensor {unexpected[0]!r}"
                              + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            raise CheckpointError(f"tensor {name!r} has shape {tuple(tensors[name].shape)} in the "
                                  f"checkpoint but the model expects {shape}")
    ref = dict(model.state_dict())
    converted = {}
    for name, t in tensors.items():
        target_dtype = dtype or (ref[name].dtype if ref[name].is_floating_point() else t.dtype)
        converted[name] = t.to(device=device or "cpu", dtype=target_dtype if t.is_floating_point() else t.dtype)
    model.load_state_dict(converted, strict=False, assign=True)
    if hasattr(model, "tie_weights"):
        model.tie_weights()


def savable_state_dict_shapes(model: torch.nn.Module) -> dict[str, tuple]:
    skip = set(getattr(model, "tied_weight_keys", lambda: [])())
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if k not in skip}
