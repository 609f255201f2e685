"""The `options={...}` of `torch.compile(model, backend="spikec", options=...)`, checked
before anything is traced: a wrong option is the user's to fix, so it raises."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from spikec.codegen import TargetUnavailableError, get_target
from spikec.ir import SpikecError
from spikec.passes import parse_pipeline

DEFAULT_PIPELINE = "default,fuse-linear-attention,fuse-attention"
FALLBACKS = ("eager", "error")


class BackendOptionError(SpikecError):
    """An option of the spikec torch.compile backend that does not exist or has a wrong value."""


@dataclass(frozen=True)
class BackendOptions:
    target: str = "torch"
    pipeline: str = DEFAULT_PIPELINE
    # "eager": a subgraph spikec cannot compile runs eagerly (one log line);
    # "error": it raises instead (to find out why, or to prove nothing fell back).
    fallback: str = "eager"
    # keyword options of the target's `lower` (e.g. {"num_threads": 2} for cpu)
    target_options: dict = field(default_factory=dict)
    # new static compilations of one subgraph for shapes its first compilation does not accept
    max_specializations: int = 8


_FIELDS = tuple(BackendOptions.__dataclass_fields__)


def _lower_keywords(target) -> set[str] | None:
    """The keyword options `target.lower` declares; None when it takes any (**options)."""
    params = inspect.signature(target.lower).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind is p.KEYWORD_ONLY}


def parse_options(options: dict | None) -> BackendOptions:
    options = dict(options or {})
    unknown = sorted(set(options) - set(_FIELDS))
    if unknown:
        raise BackendOptionError(f"the spikec backend has no option {', '.join(map(repr, unknown))}",
                                 hint=f"valid options: {', '.join(_FIELDS)}")
    opts = BackendOptions(**options)
    target = get_target(opts.target)            # UnknownTargetError names the valid targets
    why = target.unavailable_reason()
    if why is not None:
        raise TargetUnavailableError(f"target {target.name!r} cannot run on this machine: {why}",
                                     hint="pick another target, e.g. options={'target': 'torch'}")
    parse_pipeline(opts.pipeline)               # PipelineError names an unknown pass
    if opts.fallback not in FALLBACKS:
        raise BackendOptionError(f"fallback={opts.fallback!r} is not one of {', '.join(FALLBACKS)}")
    if not isinstance(opts.target_options, dict):
        raise BackendOptionError(f"target_options must be a dict, got {type(opts.target_options).__name__}")
    known = _lower_keywords(target)
    bad = sorted(set(opts.target_options) - known) if known is not None else []
    if bad:
        raise BackendOptionError(f"target {target.name!r} has no option {', '.join(map(repr, bad))}",
                                 hint=f"its options: {', '.join(sorted(known)) or 'none'}")
    if not isinstance(opts.max_specializations, int) or opts.max_specializations < 0:
        raise BackendOptionError(f"max_specializations must be an int >= 0, got {opts.max_specializations!r}")
    return opts
