"""The target registry.

A target has a name, a one-line description, the device it runs on, the ops it
lowers natively (its rule table) and `lower(graph, **options) -> CompiledModule`.
Backends register lazily (`module:attr`) so that asking for the torch target
does not import TVM or Triton.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.util
from dataclasses import dataclass

from spikec.ir import Graph

from .errors import UnknownTargetError
from .module import CompiledModule
from .rules import RuleTable


class Target:
    name: str = "?"
    description: str = ""
    device: str = "cpu"
    rules: RuleTable
    requires: tuple[tuple[str, str], ...] = ()   # (python module, pip package) the target runs with

    def native_ops(self) -> list[str]:
        return self.rules.ops()

    def unavailable_reason(self) -> str | None:
        """None when compiled modules run on this machine; otherwise why not
        (a missing package, no GPU): such a target still compiles, and says so."""
        for module, package in self.requires:
            if importlib.util.find_spec(module) is None:
                return f"{package} is not installed (pip install {package})"
        return None

    def lower(self, graph: Graph, **options) -> CompiledModule:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<Target {self.name}: {self.description}>"


@dataclass(frozen=True)
class _Entry:
    name: str
    loader: str          # "module:attr", attr is a Target subclass or instance
    description: str


_REGISTRY: dict[str, _Entry] = {}
_LOADED: dict[str, Target] = {}


def register_target(name: str, loader: str, description: str) -> None:
    """Register a target whose implementation `loader` ("pkg.module:attr") imports on first use."""
    _REGISTRY[name] = _Entry(name, loader, description)
    _LOADED.pop(name, None)


def target_names() -> list[str]:
    return sorted(_REGISTRY)


def get_target(name: str) -> Target:
    if isinstance(name, Target):
        return name
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=1)
        raise UnknownTargetError(f"unknown target {name!r}; valid targets: {', '.join(target_names())}",
                                 hint=f"did you mean {close[0]!r}?" if close else None)
    if name not in _LOADED:
        mod, attr = _REGISTRY[name].loader.split(":")
        obj = getattr(importlib.import_module(mod), attr)
        _LOADED[name] = obj() if isinstance(obj, type) else obj
    return _LOADED[name]


def targets() -> dict[str, Target]:
    """Every registered target, loaded: name -> Target (with `.native_ops()`)."""
    return {n: get_target(n) for n in target_names()}


def describe_targets(all_ops: bool = False) -> str:
    """One paragraph per target: what it is, whether it runs here, which fused ops it lowers
    natively (all native ops with `all_ops`)."""
    from spikec.ir import get_op
    lines = []
    for name, t in targets().items():
        why = t.unavailable_reason()
        ops = t.native_ops()
        fused = [o for o in ops if get_op(o).category == "fused"]
        lines.append(f"{name:<6} {t.description}")
        lines.append(f"       {'runs on this machine' if why is None else why}")
        lines.append(f"       {len(ops)} ops; fused: {', '.join(fused) or 'none'}")
        if all_ops:
            lines.append(f"       all: {', '.join(ops)}")
    return "\n".join(lines)
