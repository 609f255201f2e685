"""Resolve the MODEL argument of the CLI into a Graph (and, when there is one,
the eager model and example inputs it came from).

MODEL is one of:
  zoo name          `spikingbrain:tiny`   (spikec.models, preset after the colon)
  python factory    `path/to/file.py:make` (returns a module, or (module, example_inputs))
  ONNX file         `model.onnx`
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

import torch

from spikec.ir import FrontendError, Graph


@dataclass
class Loaded:
    graph: Graph
    model: torch.nn.Module | None = None
    inputs: tuple | None = None
    description: str = ""


def _zoo(name: str, preset: str, seq_len: int, batch: int, dynamic, meta: bool, overrides: dict) -> Loaded:
    try:
        from spikec import models
    except ImportError as e:
        raise FrontendError(f"the model zoo is not available: {e}") from e
    if name not in models.names():
        raise FrontendError(f"unknown zoo model {name!r}; known: {', '.join(models.names())}")
    try:
        with torch.device("meta") if meta else _nullctx():
            model = models.create(name, preset, **overrides)
    except KeyError as e:           # unknown preset: the zoo's lookup error
        raise FrontendError(str(e.args[0]) if e.args else f"unknown preset {preset!r} for {name}") from None
    except models.ConfigError as e:
        raise FrontendError(f"bad config for {name}:{preset}: {e}") from None
    model.eval()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (batch, seq_len), generator=g)
    if meta:
        ids = ids.to("meta")
    from spikec.frontend import from_torch
    graph = from_torch(model, (ids,), dynamic=dynamic)
    return Loaded(graph, model, (ids,), f"{name}:{preset}")


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def _factory(path: str, fn: str, seq_len: int, batch: int, dynamic) -> Loaded:
    if not os.path.exists(path):
        raise FrontendError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception as e:
        raise FrontendError(f"importing {path} failed: {type(e).__name__}: {e}") from e
    if not hasattr(mod, fn):
        raise FrontendError(f"{path} has no function {fn!r}")
    try:
        made = getattr(mod, fn)()
    except Exception as e:
        raise FrontendError(f"{path}:{fn}() raised {type(e).__name__}: {e}") from e
    model, inputs = made if isinstance(made, tuple) else (made, None)
    if inputs is None:
        raise FrontendError(f"{path}:{fn} returned only a module; return (module, example_inputs) so it can be traced")
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    from spikec.frontend import from_torch
    return Loaded(from_torch(model, inputs, dynamic=dynamic), model, inputs, f"{path}:{fn}")


def load(spec: str, *, seq_len: int = 16, batch: int = 1, dynamic: dict | None = None,
         meta: bool = False, overrides: dict | None = None) -> Loaded:
    """`overrides` are config fields for a zoo model (e.g. {"attn_mode": "naive"})."""
    overrides = overrides or {}
    if overrides and (spec.endswith(".onnx") or ".py:" in spec):
        raise FrontendError("config overrides apply to zoo models only")
    if spec.endswith(".onnx"):
        from spikec.frontend import from_onnx
        return Loaded(from_onnx(spec), description=spec)
    if ":" in spec:
        left, right = spec.rsplit(":", 1)
        if left.endswith(".py"):
            return _factory(left, right, seq_len, batch, dynamic)
        return _zoo(left, right, seq_len, batch, dynamic, meta, overrides)
    if spec.endswith(".py"):
        raise FrontendError(f"{spec}: name the factory too, as {spec}:make_model")
    return _zoo(spec, "tiny", seq_len, batch, dynamic, meta, overrides)
