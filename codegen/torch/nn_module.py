"""The compiled module: an nn.Module holding the graph's constants and the
generated function, and the CompiledModule a target returns.

Constants are registered under their graph names, nested like the model's own
modules (`model.layers.0.attn.q_proj.weight`), so `state_dict()` keys match
the eager model's and `load_state_dict(model.state_dict())` works. Which
floating constants become trainable Parameters (the rest are buffers) is the
`parameters` option of the target:

- "auto" (default): tensors the frontend took from the model's parameters
  (nn.Parameter, or requiring grad); model buffers, lifted constants and
  values folded by passes stay buffers. A table with no such mark at all (a
  graph parsed from text or loaded from disk) makes every floating constant a
  Parameter except pass-folded ones (`folded.*`).
- "all" / "none", or a collection of constant names.

Parameters share storage with the graph's tensors (as torch.compile shares
them with the model): training the module updates them in place.
"""
from __future__ import annotations

from typing import Callable, Collection

import torch
from torch import nn

from spikec.ir import Graph

from ..errors import LoweringError
from ..module import CompiledModule

FOLDED_PREFIX = "folded."


def trainable_names(constants: dict, parameters) -> set[str]:
    floating = {n for n, t in constants.items() if isinstance(t, torch.Tensor) and t.is_floating_point()}
    if parameters == "all":
        return floating
    if parameters == "none":
        return set()
    if parameters == "auto":
        marked = {n for n in floating if isinstance(constants[n], nn.Parameter) or constants[n].requires_grad}
        if marked:
            return marked
        return {n for n in floating if not n.startswith(FOLDED_PREFIX)}
    if isinstance(parameters, str) or not isinstance(parameters, Collection):
        raise LoweringError(f"parameters= must be 'auto', 'all', 'none' or a collection of constant names, "
                            f"got {parameters!r}")
    unknown = sorted(set(parameters) - set(constants))
    if unknown:
        raise LoweringError(f"parameters= names constants the graph does not have: {', '.join(unknown[:5])}")
    return set(parameters) & floating


class _Holder(nn.Module):
    """A plain container: one level of a dotted constant name."""


class TorchModule(nn.Module, CompiledModule):
    """`module(*inputs)` runs the generated code (one output bare, several as a tuple);
    `run(*inputs)` returns the list; `sources()` the generated file."""

    target = "torch"

    def __init__(self, graph: Graph, fn: Callable, source: str, constants: dict, trainable: set[str],
                 target: str = "torch"):
        nn.Module.__init__(self)
        CompiledModule.__init__(self, graph)
        self.target = target
        self._fn = fn
        self._source = source
        self._slots: dict[str, tuple[nn.Module, str]] = {}
        self.register_buffer("_device_anchor", torch.empty(0), persistent=False)
        by_tensor: dict[int, str] = {}
        for name, t in constants.items():
            if id(t) in by_tensor:                          # tied weights: one Parameter, two names
                self._slots[name] = self._slots[by_tensor[id(t)]]
                continue
            by_tensor[id(t)] = name
            self._slots[name] = self._place(name, t, name in trainable)

    def _place(self, name: str, t: torch.Tensor, trainable: bool) -> tuple[nn.Module, str]:
        owner, parts = self, name.split(".")
        ok = all(parts)
        for p in parts[:-1] if ok else ():
            child = owner._modules.get(p)
            if child is None:
                if hasattr(owner, p):
                    ok = False
                    break
                child = _Holder()
                owner.add_module(p, child)
            owner = child
        leaf = parts[-1]
        if not ok or hasattr(owner, leaf) or "." in leaf:
            # A name that cannot nest (clashes with an attribute, or is a prefix of another).
            owner, leaf = self._escape(), f"c{len(self._escape()._parameters) + len(self._escape()._buffers)}"
        if trainable:
            owner.register_parameter(leaf, nn.Parameter(t.detach(), requires_grad=True))
        else:
            owner.register_buffer(leaf, t.detach())
        return owner, leaf

    def _escape(self) -> nn.Module:
        if "_spikec_constants" not in self._modules:
            self.add_module("_spikec_constants", _Holder())
        return self._modules["_spikec_constants"]

    def const(self, name: str) -> torch.Tensor:
        owner, leaf = self._slots[name]
        return getattr(owner, leaf)

    @property
    def device(self) -> torch.device:
        return self._device_anchor.device

    def run(self, *inputs) -> list:
        return list(self._fn(self, *inputs))

    def forward(self, *inputs):
        outs = self._fn(self, *inputs)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def sources(self) -> dict[str, str]:
        return {"model.py": self._source}

    def extra_repr(self) -> str:
        return f"target={self.target!r}, graph=@{self.graph.name}"
