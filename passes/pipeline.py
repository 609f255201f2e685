"""Pipeline strings, MLIR style: `default,fuse-linear-attention,insert-spike-coding{coding=ternary,k=3}`.

Passes are separated by commas outside braces; options inside braces are
`key=value` separated by commas or spaces. A named pipeline (`default`)
expands in place.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import PipelineError
from .registry import get_pass, pipeline_alias


@dataclass
class PassStep:
    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.options:
            return self.name
        opts = ",".join(f"{k}={'|'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in self.options.items())
        return f"{self.name}{{{opts}}}"


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise PipelineError(f"unbalanced '}}' in pipeline {text!r}")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise PipelineError(f"unbalanced '{{' in pipeline {text!r}")
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_pipeline(text: str, _seen: tuple = ()) -> list[PassStep]:
    steps: list[PassStep] = []
    for item in _split_top(text or ""):
        name, _, rest = item.partition("{")
        name = name.strip()
        if rest and not rest.endswith("}"):
            raise PipelineError(f"options of {name!r} must end with '}}': {item!r}")
        alias = pipeline_alias(name)
        if alias is not None:
            if rest:
                raise PipelineError(f"named pipeline {name!r} takes no options")
            if name in _seen:
                raise PipelineError(f"named pipeline {name!r} refers to itself")
            steps.extend(parse_pipeline(alias, _seen + (name,)))
            continue
        info = get_pass(name)
        options: dict[str, Any] = {}
        body = rest[:-1].replace(",", " ").split() if rest else []
        for kv in body:
            key, eq, value = kv.partition("=")
            if not eq:
                raise PipelineError(f"option {kv!r} of pass {name!r} must be key=value")
            if key not in info.options:
                valid = ", ".join(f"{o.name} ({o.type.__name__}, default {o.default!r})"
                                  for o in info.options.values()) or "none"
                raise PipelineError(f"unknown option {key!r} for pass {name!r}", hint=f"valid options: {valid}")
            try:
                options[key] = info.options[key].parse(value)
            except (TypeError, ValueError) as e:
                raise PipelineError(f"bad value {value!r} for option {key!r} of pass {name!r}: {e}") from None
        steps.append(PassStep(name, options))
    return steps
