"""The spikec error hierarchy: every error says what went wrong, where, and what to do."""
from __future__ import annotations


class SpikecError(Exception):
    """Base of every error spikec raises on purpose."""

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        text = message
        if where:
            text += f"\n  at {where}"
        if hint:
            text += f"\n  hint: {hint}"
        super().__init__(text)


class IRError(SpikecError):
    """A malformed graph or IR construct."""


class ParseError(IRError):
    """IR text that cannot be read; names the line and column."""


class VerifyError(IRError):
    """A graph that breaks SSA, typing or op-attribute rules; names the node and its source line."""


class UnsupportedOpError(SpikecError):
    """An op the frontend or a target cannot handle; names the op and its source line."""


class InterpretError(SpikecError):
    """A failure while running a graph with the reference implementations."""


class FrontendError(SpikecError):
    """A model or file that cannot be imported."""
