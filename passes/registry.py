"""The pass registry: `@register("name")` and the `spikec.passes` entry-point group.

A pass is a function `fn(graph, *, option=default, ...) -> Graph | None`
(None: it changed `graph` in place). Its keyword-only parameters are its
options; their defaults (or annotations) give the option types, and the first
line of its docstring is its one-line doc.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable

from .errors import PipelineError

ENTRY_POINT_GROUP = "spikec.passes"


@dataclass(frozen=True)
class Option:
    name: str
    type: type
    default: Any
    doc: str = ""

    def parse(self, text: str) -> Any:
        if self.type is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"expected true/false, got {text!r}")
        if self.type in (list, tuple):
            return [t for t in text.split("|") if t]
        value = self.type(text)
        if self.type is float and not math.isfinite(value):    # nan slips past every `k > 0` check
            raise ValueError(f"expected a finite number, got {text!r}")
        return value


@dataclass
class PassInfo:
    name: str
    fn: Callable
    options: dict[str, Option] = field(default_factory=dict)
    doc: str = ""
    source: str = "spikec"

    def describe(self) -> str:
        opts = ", ".join(f"{o.name}={o.default!r}" for o in self.options.values())
        return f"{self.name}{{{opts}}}" if opts else self.name


_PASSES: dict[str, PassInfo] = {}
_PIPELINES: dict[str, tuple[str, str]] = {}     # alias -> (pipeline text, doc)
_entry_points_loaded = False


def _options_of(fn: Callable) -> dict[str, Option]:
    out = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        default = None if p.default is inspect.Parameter.empty else p.default
        typ = p.annotation if isinstance(p.annotation, type) else type(default) if default is not None else str
        out[p.name] = Option(p.name, typ, default)
    return out


def register(name: str, *, doc: str | None = None, replace: bool = False):
    """Decorator: make `fn(graph, *, options...)` available in pipelines as `name`."""
    def deco(fn: Callable) -> Callable:
        if name in _PASSES and not replace and _PASSES[name].fn is not fn:
            raise PipelineError(f"a pass named {name!r} is already registered ({_PASSES[name].source})")
        text = doc or (inspect.getdoc(fn) or "").strip().splitlines()
        one_line = text if isinstance(text, str) else (text[0] if text else "")
        _PASSES[name] = PassInfo(name, fn, _options_of(fn), one_line, getattr(fn, "__module__", "?"))
        return fn
    return deco


def register_pipeline(alias: str, pipeline: str, doc: str) -> None:
    """Name a pipeline so it can be used as one pass (e.g. `default`)."""
    _PIPELINES[alias] = (pipeline, doc)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()          # importing the module runs its @register decorators
        except Exception as e:  # a broken plug-in must not break spikec
            import warnings
            warnings.warn(f"spikec pass plug-in {ep.name!r} ({ep.value}) failed to load: {e}")


def _ensure_builtin() -> None:
    from . import builtin  # noqa: F401
    _load_entry_points()


def get_pass(name: str) -> PassInfo:
    _ensure_builtin()
    if name not in _PASSES:
        raise PipelineError(f"unknown pass {name!r}", hint="valid passes: " + ", ".join(sorted({*_PASSES, *_PIPELINES})))
    return _PASSES[name]


def pipeline_alias(name: str) -> str | None:
    _ensure_builtin()
    return _PIPELINES.get(name, (None,))[0]


def available() -> list[PassInfo]:
    """Every registered pass (built-in and plug-ins), sorted by name."""
    _ensure_builtin()
    return [_PASSES[k] for k in sorted(_PASSES)]


def pipelines() -> dict[str, tuple[str, str]]:
    _ensure_builtin()
    return dict(_PIPELINES)
