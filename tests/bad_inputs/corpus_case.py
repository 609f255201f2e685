"""One case of the bad-input corpus, and the registry the corpus_*.py modules fill.

A case is
    id        unique name (the pytest parameter id)
    category  which kind of bad input (the summary counts them)
    match     regex searched in the error as one line (`spikec.cli.one_line`, the CLI's form),
              so the API and the CLI are held to the same words
    make      ctx -> dict of named inputs (paths made in the case's tmp dir); {name} in `cli`
              is filled from it, plus {tmp}
    api       (made, ctx) -> anything; must raise `error`
    cli       argv for `spikec` (run in-process through spikec.cli.main)
    error     the SpikecError subclass the API must raise
    after     (made) -> None, run after each channel (e.g. "no file was created")
    known     an open defect in a file this corpus may not change: the case runs as a strict
              xfail naming it, so the fix shows up as an XPASS
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from bad_makers import CASES as CASES_DIR
from spikec.ir import SpikecError


@dataclass(frozen=True)
class Case:
    id: str
    category: str
    match: str
    make: Callable[[Any], dict] = field(default=lambda c: {})
    api: Callable[[dict, Any], Any] | None = None
    cli: tuple[str, ...] | None = None     # {name} placeholders; other braces (pipelines) stay
    error: type = SpikecError
    after: Callable[[dict], None] | None = None
    known: str | None = None


CASES: list[Case] = []


def case(*a, **kw) -> None:
    CASES.append(Case(*a, **kw))


def fill(argv, made: dict) -> list[str]:
    """The CLI argv with {name} replaced from `made`; pipeline braces like {k=3} are left alone."""
    return [re.sub(r"\{(\w+)\}", lambda m: str(made.get(m.group(1), m.group(0))), a) for a in argv]


def static(*parts: str) -> str:
    """A committed input file under cases/."""
    return str(CASES_DIR.joinpath(*parts))
